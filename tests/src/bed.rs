//! A test's sandbox: started under a temporary directory and ready, with one readiness deadline for all tests.
//! Deadlines are generous: several tests start sandboxes at once on a loaded machine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use atrest_sandbox::{ControlPlane, Sandbox, SandboxOptions};
use tempfile::TempDir;

/// How long a sandbox on atrest's API server may take to be ready.
pub const READY: Duration = Duration::from_secs(120);

/// How long the real control plane (etcd 3.6, kube-apiserver, kube-controller-manager) may take to be ready.
pub const READY_REAL: Duration = Duration::from_secs(240);

/// The readiness deadline of `sb`'s control plane.
pub fn ready_within(sb: &Sandbox) -> Duration {
    match sb.control_plane() {
        ControlPlane::Real => READY_REAL,
        _ => READY,
    }
}

/// Starts a sandbox with `opts` and waits until it is ready; panics with the reason otherwise.
pub fn start(opts: SandboxOptions) -> Sandbox {
    let sb = Sandbox::up(opts).unwrap_or_else(|e| panic!("sandbox up: {e:#}"));
    sb.wait_ready(ready_within(&sb))
        .unwrap_or_else(|e| panic!("sandbox {} ready: {e:#}", sb.node_name()));
    sb
}

/// A sandbox node of the default options under `dir/node`, ready.
pub fn node(dir: &Path) -> Sandbox {
    start(SandboxOptions::new(dir.join("node")))
}

/// A sandbox node on the real control plane under `dir/node`, ready.
pub fn real_node(dir: &Path) -> Sandbox {
    let mut opts = SandboxOptions::new(dir.join("node"));
    opts.control_plane = ControlPlane::Real;
    start(opts)
}

/// `dir/home`, created: HOME and working directory of the kubectl and plugin runs of a test.
pub fn home(dir: &Path) -> PathBuf {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    home
}

/// A fresh temporary directory with a ready sandbox node of the default options in it.
pub fn up() -> (TempDir, Sandbox) {
    let dir = tempfile::tempdir().unwrap();
    let sb = node(dir.path());
    (dir, sb)
}
