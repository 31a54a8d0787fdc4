//! The etcd static pod, run as a real process: the machine's `etcd` with the manifest's command line, every
//! absolute path in a flag mapped through the pod's mounts (a path outside the mounts makes the start fail, as
//! the container would not see the file).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::pod::StaticPod;

/// The etcd binary run for the `etcd` container.
pub const ETCD_BIN: &str = "/usr/bin/etcd";

/// A running etcd; killed on drop.
#[derive(Debug)]
pub struct EtcdProcess {
    child: Child,
    log: PathBuf,
    metrics: Option<String>,
    /// Dropped after the child is reaped; ends the thread that spawned it (see [`spawn_held`]).
    _parent: std::sync::mpsc::Sender<()>,
}

/// Spawn `cmd` from a dedicated thread that stays alive until the returned sender is dropped. The child is
/// spawned with `PR_SET_PDEATHSIG`, which fires when the *spawning thread* exits; a short-lived (e.g. tokio
/// blocking-pool) thread would kill etcd seconds after its start.
fn spawn_held(mut cmd: Command) -> std::io::Result<(Child, std::sync::mpsc::Sender<()>)> {
    let (child_tx, child_rx) = std::sync::mpsc::channel();
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("etcd-parent".into())
        .spawn(move || {
            let _ = child_tx.send(cmd.spawn());
            let _ = hold_rx.recv(); // returns when the EtcdProcess is dropped
        })?;
    let child = child_rx
        .recv()
        .map_err(|_| std::io::Error::other("etcd spawner thread died"))??;
    Ok((child, hold_tx))
}

/// Flags whose values are URLs or names, never host paths, even when they begin with `/`.
fn is_path_flag(flag: &str) -> bool {
    matches!(
        flag,
        "--cert-file"
            | "--key-file"
            | "--trusted-ca-file"
            | "--peer-cert-file"
            | "--peer-key-file"
            | "--peer-trusted-ca-file"
            | "--data-dir"
            | "--wal-dir"
            | "--client-crl-file"
            | "--peer-crl-file"
            | "--config-file"
    )
}

impl EtcdProcess {
    /// Start etcd from its static pod; `log` receives its stdout and stderr (appended).
    pub fn start(pod: &StaticPod, log: PathBuf) -> Result<Self, String> {
        pod.mounts.prepare()?;
        let mut args = Vec::new();
        for a in pod.command.iter().skip(1) {
            if let Some((flag, value)) = a.split_once('=')
                && is_path_flag(flag)
            {
                let host = pod
                    .mounts
                    .resolve(std::path::Path::new(value))
                    .ok_or_else(|| {
                        format!(
                            "{flag}={value}: {value} is not inside any volumeMount of the etcd pod"
                        )
                    })?;
                args.push(format!("{flag}={}", host.display()));
                continue;
            }
            args.push(a.clone());
        }
        if let Some(d) = log.parent() {
            fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(ETCD_BIN);
        cmd.args(&args).stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to SIGKILL etcd when its parent dies,
        // so no etcd outlives a killed test process.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let (child, parent) = spawn_held(cmd).map_err(|e| format!("{ETCD_BIN}: {e}"))?;
        tracing::info!(pid = child.id(), "started etcd");
        let metrics = pod.flag("listen-metrics-urls").and_then(|u| {
            u.split(',')
                .next()
                .and_then(|s| s.strip_prefix("http://"))
                .map(str::to_string)
        });
        if metrics.is_none() {
            tracing::warn!(
                "etcd has no plain-HTTP --listen-metrics-urls; its health cannot be checked"
            );
        }
        Ok(EtcdProcess {
            child,
            log,
            metrics,
            _parent: parent,
        })
    }

    /// Wait until etcd reports healthy on its metrics listener (`/health`), or exits, or the timeout passes.
    /// Without a metrics listener this only checks that etcd stays up for a second.
    pub fn wait_healthy(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("etcd exited ({st}): {}", self.log_tail()));
            }
            match self.metrics.as_deref() {
                Some(addr) if http_health(addr) => return Ok(()),
                None if Instant::now() + timeout > deadline + Duration::from_secs(1) => {
                    return Ok(());
                }
                _ => {}
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "etcd not healthy after {timeout:?}: {}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of etcd's log (for error messages).
    pub fn log_tail(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stop etcd: SIGTERM, wait up to 5 s, then SIGKILL.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// GET /health on etcd's plain-HTTP metrics listener.
fn http_health(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.") && buf.contains("\"health\":\"true\"")
}
