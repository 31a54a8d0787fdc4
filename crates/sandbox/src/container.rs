//! A static pod's container run as a process of the node: its log, its lifetime, and (for the real control plane)
//! a mount namespace of its own in which the pod's `hostPath` volumes are bind-mounted at their `mountPath`s.
//!
//! The namespace follows what the container runtime does for a kubeadm static pod, with the host's `/` as the
//! container's root filesystem: mounts in order of destination depth so parents come first (containerd's CRI
//! plugin, `pkg/cri/opts/spec_linux.go` `orderedMounts`), a missing destination created as a directory or an empty
//! file, `readOnly` mounts remounted read-only (runc, `libcontainer/rootfs_linux.go` `mountToRootfs`). The process
//! runs the manifest's command line verbatim and sees `/etc/kubernetes/pki` etc. exactly where the manifest says,
//! backed by the sandbox root's directories, while the rest of the host stays visible (its libraries, `/proc`,
//! `/dev`). A single-file `hostPath` (kube-controller-manager's `controller-manager.conf`) is a bind mount of that
//! one file, as in a container.
//!
//! Missing mount points: the host is never modified. When a `mountPath` or one of its parents does not exist
//! (`/etc/kubernetes` on a machine that is not a node), the deepest existing host directory on the way (`/etc`) is
//! *shadowed* inside the namespace: a tmpfs is mounted over it, every entry of the host directory is bind-mounted
//! back into the tmpfs at its name (from the hidden directory, the child's working directory while it mounts;
//! symbolic links are recreated), and the missing directories and file mount points are created in the tmpfs. The
//! process sees the host's `/etc` plus `/etc/kubernetes`; the host's `/etc` is untouched. Only `/` itself cannot
//! be shadowed (a `mountPath` under a missing top-level directory is refused with an error naming it).
//! Directories missing inside a bind mount from the sandbox root are created there (they belong to the sandbox).
//!
//! The process also gets a UTS namespace of its own whose hostname is the node's (`<root>/etc/hostname`, the node
//! name): a static pod shares its node's UTS namespace, so a real kube-apiserver derives its identity (the
//! `apiserver_id_hash` of its metrics, apiserver `pkg/server/config.go` `NewConfig`) from the node's name, not from
//! the machine the sandbox runs on.
//!
//! Every path and message is prepared before `fork`; the child between `fork` and `exec` only makes system calls
//! (`unshare(CLONE_NEWNS | CLONE_NEWUTS)`, `sethostname`, `mount(2)` with `MS_PRIVATE` propagation first so nothing leaks back to the host,
//! `mkdir`, `open`, `symlink`, `chdir`, `prctl(PR_SET_PDEATHSIG)`), and on a failure writes which step failed to
//! the container's log before the spawn fails.

use std::collections::BTreeSet;
use std::ffi::{CString, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::pod::{Mount, StaticPod};

/// A process the kubelet runs for a container; SIGTERM then SIGKILL on [`stop`](Self::stop) or drop, SIGKILL
/// when the sandbox process dies.
#[derive(Debug)]
pub struct PodProcess {
    child: Child,
    log: PathBuf,
    /// Dropped after the child is reaped; ends the thread that spawned it (see [`spawn_held`]).
    _parent: std::sync::mpsc::Sender<()>,
}

/// Spawn `cmd` from a dedicated thread that stays alive until the returned sender is dropped. The child is
/// spawned with `PR_SET_PDEATHSIG`, which fires when the *spawning thread* exits; a short-lived (e.g. tokio
/// blocking-pool) thread would kill the process seconds after its start.
fn spawn_held(mut cmd: Command) -> std::io::Result<(Child, std::sync::mpsc::Sender<()>)> {
    let (child_tx, child_rx) = std::sync::mpsc::channel();
    let (hold_tx, hold_rx) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("pod-parent".into())
        .spawn(move || {
            let _ = child_tx.send(cmd.spawn());
            let _ = hold_rx.recv(); // returns when the PodProcess is dropped
        })?;
    let child = child_rx
        .recv()
        .map_err(|_| std::io::Error::other("process spawner thread died"))??;
    Ok((child, hold_tx))
}

fn cstr(p: impl AsRef<OsStr>) -> Result<CString, String> {
    CString::new(p.as_ref().as_bytes())
        .map_err(|_| format!("{}: contains a NUL byte", Path::new(p.as_ref()).display()))
}

impl PodProcess {
    /// Spawn `cmd` with stdout and stderr appended to `log` and SIGKILL on the sandbox's death. `setup` runs in the
    /// child before `exec` (it must only make system calls).
    fn spawn(
        mut cmd: Command,
        log: PathBuf,
        setup: Option<NamespaceSetup>,
    ) -> Result<PodProcess, String> {
        if let Some(d) = log.parent() {
            fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: the closure only makes async-signal-safe system calls on memory prepared before fork.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                match &setup {
                    Some(s) => s.run(),
                    None => Ok(()),
                }
            });
        }
        let program = cmd.get_program().to_string_lossy().into_owned();
        let (child, parent) = spawn_held(cmd).map_err(|e| {
            let mut msg = format!("{program}: {e}");
            let tail = tail_of(&log, 3);
            if !tail.is_empty() {
                msg.push_str(&format!(": {tail}"));
            }
            msg
        })?;
        Ok(PodProcess {
            child,
            log,
            _parent: parent,
        })
    }

    /// Start a command on the host (its paths already host paths).
    pub fn start_on_host(cmd: Command, log: PathBuf) -> Result<PodProcess, String> {
        Self::spawn(cmd, log, None)
    }

    /// Start `binary` with the static pod's command line (after its first word, which names the binary) and
    /// environment, in a mount namespace with the pod's volumes at their mount paths and a UTS namespace named
    /// `hostname` (the node's; see the module doc). The kubelet's hostPath type checks and creations
    /// ([`crate::pod::MountTable::prepare`]) run first.
    pub fn start_in_pod(
        pod: &StaticPod,
        binary: &Path,
        hostname: &str,
        log: PathBuf,
    ) -> Result<PodProcess, String> {
        pod.mounts.prepare()?;
        let plan = MountPlan::new(&pod.mounts.mounts)?;
        let setup = plan.setup(hostname)?;
        let mut cmd = Command::new(binary);
        cmd.arg0(
            pod.command
                .first()
                .map(String::as_str)
                .unwrap_or("container"),
        )
        .args(pod.command.iter().skip(1))
        .current_dir("/")
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .envs(crate::apiserver::container_env(&pod.pod));
        Self::spawn(cmd, log, Some(setup))
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// How it ended, if it did.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines of its log (for error messages).
    pub fn log_tail(&self) -> String {
        tail_of(&self.log, 5)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stop it: SIGTERM, wait up to `grace`, then SIGKILL.
    pub fn stop(mut self, grace: Duration) {
        self.terminate(grace);
    }

    fn terminate(&mut self, grace: Duration) {
        terminate(&mut self.child, grace);
    }
}

impl Drop for PodProcess {
    fn drop(&mut self) {
        self.terminate(Duration::from_secs(5));
    }
}

fn tail_of(log: &Path, n: usize) -> String {
    let mut s = String::new();
    if let Ok(mut f) = File::open(log) {
        let _ = f.read_to_string(&mut s);
    }
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One step of the namespace setup.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// A tmpfs over a directory (shadowing it).
    Tmpfs(PathBuf),
    Mkdir(PathBuf),
    /// An empty file as a mount point.
    Mkfile(PathBuf),
    /// Change the working directory (a relative `Bind` source is resolved from it).
    Chdir(PathBuf),
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    /// A bind mount (recursive); a relative `src` is relative to the working directory.
    Bind {
        src: PathBuf,
        dst: PathBuf,
    },
    RemountReadOnly(PathBuf),
}

/// What the namespace will look like, computed on the host before the fork.
#[derive(Debug)]
struct MountPlan {
    steps: Vec<Step>,
    /// Directories created inside tmpfs.
    created: BTreeSet<PathBuf>,
    shadowed: BTreeSet<PathBuf>,
    /// (mountPath, host path) planned so far.
    binds: Vec<(PathBuf, PathBuf)>,
}

/// Where a path of the namespace lives.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// Inside a bind mount from the sandbox root (writable, the sandbox's own).
    Sandbox {
        is_dir: bool,
    },
    /// A directory the plan creates or shadows (tmpfs).
    Tmpfs,
    /// The host's own file or directory.
    Host {
        is_dir: bool,
    },
    Missing,
}

impl MountPlan {
    fn new(mounts: &[Mount]) -> Result<MountPlan, String> {
        let mut plan = MountPlan {
            steps: Vec::new(),
            created: BTreeSet::new(),
            shadowed: BTreeSet::new(),
            binds: Vec::new(),
        };
        let mut ordered: Vec<&Mount> = mounts.iter().collect();
        // runc mounts in the order given; the kubelet hands them over sorted by path, and a mount under another's
        // path must come after it: order by depth, then path.
        ordered.sort_by(|a, b| {
            (a.mount_path.components().count(), &a.mount_path)
                .cmp(&(b.mount_path.components().count(), &b.mount_path))
        });
        for m in ordered {
            let is_dir = !m.host_path.exists() || m.host_path.is_dir();
            plan.ensure(&m.mount_path, is_dir)?;
            plan.steps.push(Step::Bind {
                src: m.host_path.clone(),
                dst: m.mount_path.clone(),
            });
            if m.read_only {
                plan.steps.push(Step::RemountReadOnly(m.mount_path.clone()));
            }
            plan.binds.push((m.mount_path.clone(), m.host_path.clone()));
        }
        plan.steps.push(Step::Chdir(PathBuf::from("/")));
        Ok(plan)
    }

    fn seen(&self, p: &Path) -> Seen {
        if let Some((dst, src)) = self
            .binds
            .iter()
            .filter(|(dst, _)| p.starts_with(dst))
            .max_by_key(|(dst, _)| dst.components().count())
        {
            let rest = p.strip_prefix(dst).unwrap_or(Path::new(""));
            let host = src.join(rest);
            return match fs::metadata(&host) {
                Ok(md) => Seen::Sandbox {
                    is_dir: md.is_dir(),
                },
                Err(_) => Seen::Missing,
            };
        }
        if self.created.contains(p) || self.shadowed.contains(p) {
            return Seen::Tmpfs;
        }
        // Below a created directory nothing exists but what the plan made; below a shadowed one the host's
        // entries are bound back, so the host decides.
        let created_above = p
            .ancestors()
            .skip(1)
            .find(|a| self.created.contains(*a) || self.shadowed.contains(*a));
        if created_above.is_some_and(|a| self.created.contains(a)) {
            return Seen::Missing;
        }
        match fs::symlink_metadata(p) {
            Ok(md) if md.file_type().is_symlink() => match fs::metadata(p) {
                Ok(md) => Seen::Host {
                    is_dir: md.is_dir(),
                },
                Err(_) => Seen::Missing,
            },
            Ok(md) => Seen::Host {
                is_dir: md.is_dir(),
            },
            Err(_) => Seen::Missing,
        }
    }

    /// Make `p` exist in the namespace as a directory (or a file) to mount on.
    fn ensure(&mut self, p: &Path, is_dir: bool) -> Result<(), String> {
        let kind = |d: bool| if d { "a directory" } else { "a file" };
        match self.seen(p) {
            Seen::Sandbox { is_dir: d } | Seen::Host { is_dir: d } if d != is_dir => Err(format!(
                "mountPath {}: the container would mount {} on {}",
                p.display(),
                kind(is_dir),
                kind(d)
            )),
            Seen::Tmpfs if !is_dir => Err(format!(
                "mountPath {}: the container would mount a file on a directory",
                p.display()
            )),
            Seen::Sandbox { .. } | Seen::Host { .. } | Seen::Tmpfs => Ok(()),
            Seen::Missing => {
                let parent = p
                    .parent()
                    .ok_or_else(|| format!("mountPath {}: no parent", p.display()))?;
                self.writable_dir(parent, p)?;
                if is_dir {
                    self.steps.push(Step::Mkdir(p.to_path_buf()));
                    if !matches!(self.seen(parent), Seen::Sandbox { .. }) {
                        self.created.insert(p.to_path_buf());
                    }
                } else {
                    self.steps.push(Step::Mkfile(p.to_path_buf()));
                }
                Ok(())
            }
        }
    }

    /// Make `d` an existing directory that can be written in the namespace without touching the host.
    fn writable_dir(&mut self, d: &Path, for_path: &Path) -> Result<(), String> {
        match self.seen(d) {
            Seen::Sandbox { is_dir: true } | Seen::Tmpfs => Ok(()),
            Seen::Host { is_dir: true } => self.shadow(d, for_path),
            Seen::Sandbox { is_dir: false } | Seen::Host { is_dir: false } => Err(format!(
                "mountPath {}: {} is a file",
                for_path.display(),
                d.display()
            )),
            Seen::Missing => self.ensure(d, true),
        }
    }

    /// Hide host directory `d` under a tmpfs and bind its entries back (see the module doc).
    fn shadow(&mut self, d: &Path, for_path: &Path) -> Result<(), String> {
        if d == Path::new("/") {
            return Err(format!(
                "mountPath {}: creating {} would need a tmpfs over the host's /; create it on the host",
                for_path.display(),
                for_path
                    .ancestors()
                    .find(|a| a.parent() == Some(Path::new("/")))
                    .unwrap_or(for_path)
                    .display()
            ));
        }
        let mut entries: Vec<_> = fs::read_dir(d)
            .map_err(|e| format!("{}: {e}", d.display()))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        // In the directory before the tmpfs covers it, the working directory keeps the hidden host directory at
        // hand: its entries are bound back by relative name (a descriptor opened before `unshare` would belong to
        // the host's mount namespace, which mount(2) refuses as a bind source).
        self.steps.push(Step::Chdir(d.to_path_buf()));
        self.steps.push(Step::Tmpfs(d.to_path_buf()));
        for e in entries {
            let name = e.file_name();
            let at = d.join(&name);
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_symlink() {
                if let Ok(target) = fs::read_link(e.path()) {
                    self.steps.push(Step::Symlink { target, link: at });
                }
                continue;
            }
            self.steps.push(if ft.is_dir() {
                Step::Mkdir(at.clone())
            } else {
                Step::Mkfile(at.clone())
            });
            self.steps.push(Step::Bind {
                src: PathBuf::from(&name),
                dst: at,
            });
        }
        self.shadowed.insert(d.to_path_buf());
        Ok(())
    }

    /// The steps as system-call arguments, with a message for each.
    fn setup(&self, hostname: &str) -> Result<NamespaceSetup, String> {
        let mut calls = Vec::with_capacity(self.steps.len());
        for s in &self.steps {
            let (call, what) = match s {
                Step::Tmpfs(d) => (Call::Tmpfs(cstr(d)?), format!("tmpfs over {}", d.display())),
                Step::Mkdir(d) => (Call::Mkdir(cstr(d)?), format!("mkdir {}", d.display())),
                Step::Mkfile(f) => (Call::Mkfile(cstr(f)?), format!("create {}", f.display())),
                Step::Chdir(d) => (Call::Chdir(cstr(d)?), format!("chdir {}", d.display())),
                Step::Symlink { target, link } => (
                    Call::Symlink(cstr(target)?, cstr(link)?),
                    format!("symlink {}", link.display()),
                ),
                Step::Bind { src, dst } => (
                    Call::Bind(cstr(src)?, cstr(dst)?),
                    format!("bind mount {} at {}", src.display(), dst.display()),
                ),
                Step::RemountReadOnly(d) => (
                    Call::ReadOnly(cstr(d)?),
                    format!("remount {} read-only", d.display()),
                ),
            };
            calls.push((
                call,
                format!("atrest-sandbox: container mount namespace: {what} failed\n").into_bytes(),
            ));
        }
        Ok(NamespaceSetup {
            calls,
            root: c"/".to_owned(),
            tmpfs: c"tmpfs".to_owned(),
            tmpfs_opts: c"mode=755".to_owned(),
            unshare_failed:
                b"atrest-sandbox: unshare(CLONE_NEWNS | CLONE_NEWUTS) failed (needs root)\n"
                    .to_vec(),
            hostname: hostname.as_bytes().to_vec(),
            sethostname_failed: format!(
                "atrest-sandbox: container UTS namespace: sethostname({hostname}) failed\n"
            )
            .into_bytes(),
        })
    }
}

enum Call {
    Tmpfs(CString),
    Mkdir(CString),
    Mkfile(CString),
    Chdir(CString),
    Symlink(CString, CString),
    Bind(CString, CString),
    ReadOnly(CString),
}

/// The child's side: system calls only.
struct NamespaceSetup {
    calls: Vec<(Call, Vec<u8>)>,
    root: CString,
    tmpfs: CString,
    tmpfs_opts: CString,
    unshare_failed: Vec<u8>,
    /// The node's hostname, set in the container's UTS namespace.
    hostname: Vec<u8>,
    sethostname_failed: Vec<u8>,
}

impl NamespaceSetup {
    /// Runs between fork and exec.
    fn run(&self) -> std::io::Result<()> {
        let fail = |msg: &[u8]| {
            let err = std::io::Error::last_os_error();
            // SAFETY: write(2) of a buffer we own to the child's stderr (the container log).
            unsafe {
                libc::write(2, msg.as_ptr().cast(), msg.len());
            }
            Err(err)
        };
        let null = std::ptr::null::<libc::c_char>();
        // SAFETY: unshare/mount/mkdir/open/close/symlink with NUL-terminated strings prepared before the fork.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWUTS) != 0 {
                return fail(&self.unshare_failed);
            }
            if libc::sethostname(self.hostname.as_ptr().cast(), self.hostname.len()) != 0 {
                return fail(&self.sethostname_failed);
            }
            if libc::mount(
                null,
                self.root.as_ptr(),
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return fail(&self.unshare_failed);
            }
            for (call, msg) in &self.calls {
                let rc = match call {
                    Call::Tmpfs(d) => libc::mount(
                        self.tmpfs.as_ptr(),
                        d.as_ptr(),
                        self.tmpfs.as_ptr(),
                        libc::MS_NOSUID | libc::MS_NODEV,
                        self.tmpfs_opts.as_ptr().cast(),
                    ),
                    Call::Mkdir(d) => {
                        let rc = libc::mkdir(d.as_ptr(), 0o755);
                        if rc != 0 && *libc::__errno_location() == libc::EEXIST {
                            0
                        } else {
                            rc
                        }
                    }
                    Call::Mkfile(f) => {
                        let fd = libc::open(
                            f.as_ptr(),
                            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                            0o644,
                        );
                        if fd >= 0 {
                            libc::close(fd);
                            0
                        } else {
                            -1
                        }
                    }
                    Call::Chdir(d) => libc::chdir(d.as_ptr()),
                    Call::Symlink(t, l) => libc::symlink(t.as_ptr(), l.as_ptr()),
                    Call::Bind(s, d) => libc::mount(
                        s.as_ptr(),
                        d.as_ptr(),
                        null,
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    ),
                    Call::ReadOnly(d) => libc::mount(
                        null,
                        d.as_ptr(),
                        null,
                        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                        std::ptr::null(),
                    ),
                };
                if rc != 0 {
                    return fail(msg);
                }
            }
        }
        Ok(())
    }
}

/// Stop a child process as the kubelet stops a container: SIGTERM, up to `grace` for it to exit, then SIGKILL.
/// Its exit status when it exited by itself (or had already), None when it had to be killed.
pub fn terminate(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(st);
    }
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(path: &str, host: &Path, ro: bool) -> Mount {
        Mount {
            mount_path: PathBuf::from(path),
            host_path: host.to_path_buf(),
            host_type: String::new(),
            read_only: ro,
            pinned: None,
        }
    }

    #[test]
    fn missing_mount_points_shadow_the_deepest_host_directory_once() {
        let root = tempfile::tempdir().unwrap();
        let pki = root.path().join("pki");
        fs::create_dir(&pki).unwrap();
        let conf = root.path().join("cm.conf");
        fs::write(&conf, "x").unwrap();
        // A host directory standing for /etc, with a missing `kubernetes` below it.
        let etc = tempfile::tempdir().unwrap();
        fs::create_dir(etc.path().join("ssl")).unwrap();
        let e = etc.path();
        let plan = MountPlan::new(&[
            mount(
                &format!("{}/kubernetes/controller-manager.conf", e.display()),
                &conf,
                true,
            ),
            mount(&format!("{}/kubernetes/pki", e.display()), &pki, true),
            mount(&format!("{}/ssl", e.display()), &pki, false),
        ])
        .unwrap();
        let tmpfs: Vec<_> = plan
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Tmpfs(_)))
            .collect();
        assert_eq!(tmpfs, [&Step::Tmpfs(e.to_path_buf())], "{:?}", plan.steps);
        let pos = |s: &Step| plan.steps.iter().position(|x| x == s).unwrap();
        let kube = e.join("kubernetes");
        // The host's entry is bound back; the missing dirs and the file mount point are created in the tmpfs.
        assert!(pos(&Step::Mkdir(e.join("ssl"))) < pos(&Step::Mkdir(kube.clone())));
        assert!(pos(&Step::Mkdir(kube.clone())) < pos(&Step::Mkdir(kube.join("pki"))));
        assert!(
            pos(&Step::Mkdir(kube.clone()))
                < pos(&Step::Mkfile(kube.join("controller-manager.conf")))
        );
        assert!(
            plan.steps
                .contains(&Step::RemountReadOnly(kube.join("pki")))
        );
        assert!(!plan.steps.contains(&Step::RemountReadOnly(e.join("ssl"))));
        assert!(plan.steps.contains(&Step::Bind {
            src: PathBuf::from("ssl"),
            dst: e.join("ssl")
        }));
        // Nothing was created on the host.
        assert!(!kube.exists());
    }

    #[test]
    fn existing_mount_points_are_used_as_they_are_and_kinds_must_match() {
        let host = tempfile::tempdir().unwrap();
        let d = host.path().join("d");
        fs::create_dir(&d).unwrap();
        let plan = MountPlan::new(&[mount(&d.display().to_string(), host.path(), false)]).unwrap();
        assert_eq!(
            plan.steps,
            [
                Step::Bind {
                    src: host.path().to_path_buf(),
                    dst: d.clone()
                },
                Step::Chdir(PathBuf::from("/"))
            ]
        );
        let f = host.path().join("f");
        fs::write(&f, "").unwrap();
        let e = MountPlan::new(&[mount(&f.display().to_string(), host.path(), false)]).unwrap_err();
        assert!(e.contains("a directory on a file"), "{e}");
        let e =
            MountPlan::new(&[mount("/atrest-no-such-top-dir/x", host.path(), false)]).unwrap_err();
        assert!(e.contains("host's /"), "{e}");
    }

    #[test]
    fn a_pod_process_sees_its_volumes_at_their_mount_paths() {
        // Needs root (mount namespaces), as the real control plane does.
        if unsafe { libc::geteuid() } != 0 {
            panic!("this test needs root: mount namespaces");
        }
        let root = tempfile::tempdir().unwrap();
        let pki = root.path().join("pki");
        fs::create_dir(&pki).unwrap();
        fs::write(pki.join("ca.crt"), "CA").unwrap();
        let conf = root.path().join("cm.conf");
        fs::write(&conf, "CONF").unwrap();
        let manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: t\n  namespace: kube-system\nspec:\n  containers:\n  - command:\n    - sh\n    - -c\n    - cat /etc/kubernetes/pki/ca.crt /etc/kubernetes/c.conf; test -e /etc/passwd && echo host-etc; touch /etc/kubernetes/pki/x 2>/dev/null || echo read-only; echo $FOO; cat /proc/sys/kernel/hostname\n    env:\n    - name: FOO\n      value: bar\n    image: x\n    name: t\n    volumeMounts:\n    - mountPath: /etc/kubernetes/pki\n      name: pki\n      readOnly: true\n    - mountPath: /etc/kubernetes/c.conf\n      name: conf\n  volumes:\n  - hostPath:\n      path: /pki\n    name: pki\n  - hostPath:\n      path: /cm.conf\n      type: FileOrCreate\n    name: conf\n";
        let layout = crate::layout::NodeLayout::new(root.path());
        let sp = crate::pod::parse(Path::new("t.yaml"), manifest.as_bytes(), &layout).unwrap();
        let log = root.path().join("t.log");
        let mut p =
            PodProcess::start_in_pod(&sp, Path::new("/bin/sh"), "podnode", log.clone()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while p.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            fs::read_to_string(&log).unwrap(),
            "CACONFhost-etc\nread-only\nbar\npodnode\n"
        );
        assert_ne!(
            fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap()
                .trim(),
            "podnode",
            "the host's hostname is untouched"
        );
        assert!(!Path::new("/etc/kubernetes/c.conf").exists());
    }
}
