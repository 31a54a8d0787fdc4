//! Peak RSS and CPU time of a measured command, taken from `wait4` in a small process of its own.
//!
//! A command spawned straight from the benchmark would report the benchmark's RSS when that is larger: Linux carries
//! the peak RSS of the address space a process had before `exec` into its `ru_maxrss` (`setmax_mm_hiwater_rss` in
//! `fs/exec.c`), and a child spawned from this process starts as a copy of it (fork, or vfork sharing it). So the
//! command runs under a fresh exec of this binary (`atrest-bench --measure-child CMD ARGS…`), which spawns it with
//! the stdio it was given, reaps it and writes one marker line to stderr.

use std::io::{Read, Seek};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

/// The marker line `--measure-child` writes to stderr: `<peak RSS KiB> <CPU seconds> <exit code>`.
const MARKER: &str = "atrest-bench rusage: ";

/// What `wait4` said of a measured command.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Peak RSS (KiB): the largest of the command and the descendants it waited for (e.g. the kubectl
    /// version dispatcher and the kubectl it runs).
    pub peak_rss_kib: u64,
    /// User + system CPU seconds of the command and its waited-for descendants.
    pub cpu: f64,
    /// Exit code (128 + signal number when killed).
    pub code: i32,
}

/// A command started under `--measure-child`; [`Running::finish`] waits for it.
pub struct Running {
    child: Child,
    stderr: std::fs::File,
}

/// Starts `cmd` (its program, arguments, environment and working directory) under `--measure-child`. `stdin` and
/// `stdout` are the command's; its stderr is captured (and echoed by `finish` when it fails).
pub fn spawn(cmd: &Command, stdin: Stdio, stdout: Stdio) -> Result<Running> {
    let mut wrapped = Command::new(std::env::current_exe()?);
    wrapped
        .arg("--measure-child")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        wrapped.current_dir(d);
    }
    let stderr = tempfile::tempfile()?;
    let child = wrapped
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr.try_clone()?)
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    Ok(Running { child, stderr })
}

impl Running {
    /// The measured command's stdout, when it was piped.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Waits for the command; its usage, from the marker line.
    pub fn finish(mut self) -> Result<Usage> {
        self.child.wait()?;
        let mut text = String::new();
        self.stderr.seek(std::io::SeekFrom::Start(0))?;
        self.stderr.read_to_string(&mut text)?;
        let Some(line) = text.lines().rev().find_map(|l| l.strip_prefix(MARKER)) else {
            bail!(
                "the measuring child reported nothing; its stderr:\n{}",
                text.trim()
            );
        };
        let f: Vec<&str> = line.split_whitespace().collect();
        let usage = match f.as_slice() {
            [rss, cpu, code] => Usage {
                peak_rss_kib: rss.parse()?,
                cpu: cpu.parse()?,
                code: code.parse()?,
            },
            _ => bail!("malformed rusage line {line:?}"),
        };
        if usage.code != 0 {
            eprintln!(
                "bench: the command exited {}; its stderr:\n{}",
                usage.code,
                text.trim()
            );
        }
        Ok(usage)
    }
}

/// Spawns `cmd` and waits for it: its usage.
pub fn run(cmd: &Command) -> Result<Usage> {
    spawn(cmd, Stdio::null(), Stdio::null())?.finish()
}

/// `atrest-bench --measure-child CMD ARGS…`: runs CMD with this process's stdio, reports its usage on stderr
/// and exits 0 (the command's exit code is in the report).
pub fn measure_child(cmd: &[String]) -> Result<()> {
    let (program, args) = cmd
        .split_first()
        .context("--measure-child needs a command")?;
    let child = Command::new(program)
        .args(args)
        .spawn()
        .with_context(|| format!("spawn {program}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 only writes into the two out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped (std's Child is never waited on here).
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    // Linux reports ru_maxrss in KiB.
    eprintln!(
        "{MARKER}{} {:.3} {code}",
        usage.ru_maxrss,
        secs(usage.ru_utime) + secs(usage.ru_stime)
    );
    Ok(())
}
