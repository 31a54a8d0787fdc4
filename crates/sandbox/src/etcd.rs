//! The etcd static pod, run as a real process. On atrest's control plane: the machine's `etcd` with the manifest's
//! command line, every absolute path in a flag mapped through the pod's mounts (a path outside the mounts makes the
//! start fail, as the container would not see the file). On the real control plane: etcd 3.6 built from
//! `tests/k8s` with the command line verbatim, in the pod's mount namespace ([`crate::container`]).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::container::PodProcess;
use crate::pod::StaticPod;

/// The etcd binary run for the `etcd` container.
pub const ETCD_BIN: &str = "/usr/bin/etcd";

/// A running etcd; killed on drop.
#[derive(Debug)]
pub struct EtcdProcess {
    process: PodProcess,
    metrics: Option<String>,
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
        let mut cmd = Command::new(ETCD_BIN);
        cmd.args(&args);
        let process = PodProcess::start_on_host(cmd, log)?;
        tracing::info!(pid = process.pid(), "started etcd");
        Ok(Self::watching(process, pod))
    }

    /// Start etcd `binary` (the real control plane's) with the pod's command line verbatim in its mount namespace.
    pub fn start_in_pod(
        pod: &StaticPod,
        binary: &Path,
        hostname: &str,
        log: PathBuf,
    ) -> Result<Self, String> {
        let process = PodProcess::start_in_pod(pod, binary, hostname, log)?;
        tracing::info!(pid = process.pid(), binary = %binary.display(), "started etcd");
        Ok(Self::watching(process, pod))
    }

    fn watching(process: PodProcess, pod: &StaticPod) -> Self {
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
        EtcdProcess { process, metrics }
    }

    /// Wait until etcd reports healthy on its metrics listener (`/health`), or exits, or the timeout passes.
    /// Without a metrics listener this only checks that etcd stays up for a second.
    pub fn wait_healthy(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.process.exit_status() {
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
        self.process.is_running()
    }

    /// The last lines of etcd's log (for error messages).
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Stop etcd: SIGTERM, wait up to 5 s, then SIGKILL.
    pub fn stop(self) {
        self.process.stop(Duration::from_secs(5));
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
