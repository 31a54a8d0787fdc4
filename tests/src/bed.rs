//! A test's sandbox: started under a temporary directory and ready, with one readiness deadline for all tests.
//! Deadlines are generous: several tests start sandboxes at once on a loaded machine.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
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

/// Rewrites `sb`'s kube-apiserver manifest with `edit` as an operator's editor saves it (a temporary file renamed
/// over it: the kubelet never reads half a manifest), then waits until the kubelet has restarted the server from it
/// and it is ready. Panics when the edit changes nothing (no restart would come).
pub fn edit_apiserver_manifest(sb: &Sandbox, edit: impl FnOnce(String) -> String) {
    let manifest = sb.manifest("kube-apiserver");
    let before = std::fs::read_to_string(&manifest).unwrap();
    let after = edit(before.clone());
    assert_ne!(after, before, "the edit changed nothing: {before}");
    let starts = sb.apiserver_starts();
    atrest_core::fsutil::write_atomic(&manifest, after.as_bytes()).unwrap();
    sb.nudge();
    sb.wait_restarted(starts, ready_within(sb))
        .unwrap_or_else(|e| panic!("kube-apiserver after the manifest edit: {e}"));
}

/// `manifest` with `flags` added right after the `- kube-apiserver` command line, at its indentation, as an
/// operator adds them. Panics when there is no such line.
pub fn with_apiserver_flags(manifest: &str, flags: &[&str]) -> String {
    let mut out = String::new();
    let mut done = false;
    for line in manifest.lines() {
        out.push_str(line);
        out.push('\n');
        if !done && line.trim() == "- kube-apiserver" {
            let indent = &line[..line.len() - line.trim_start().len()];
            for flag in flags {
                out.push_str(&format!("{indent}- {flag}\n"));
            }
            done = true;
        }
    }
    assert!(done, "no `- kube-apiserver` command line in {manifest}");
    out
}

/// Writes the EncryptionConfiguration `config` to `/etc/kubernetes/pki/atrest-enc.yaml` (mounted into the
/// kube-apiserver pod by kubeadm) and points kube-apiserver at it through its manifest, as an operator would; waits
/// for the restarted server. Returns the file's path on the host.
pub fn enable_encryption(sb: &Sandbox, config: &str) -> PathBuf {
    let path = sb.root().join("etc/kubernetes/pki/atrest-enc.yaml");
    std::fs::write(&path, config).unwrap();
    edit_apiserver_manifest(sb, |m| {
        with_apiserver_flags(
            &m,
            &["--encryption-provider-config=/etc/kubernetes/pki/atrest-enc.yaml"],
        )
    });
    path
}

/// Every file under `root` with its bytes and mode.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                out.insert(
                    e.path(),
                    (std::fs::read(e.path()).unwrap(), meta.permissions().mode()),
                );
            }
        }
    }
    out
}

/// The key names of the first provider of the first resource in the EncryptionConfiguration at `path` (the
/// write key first).
pub fn first_provider_keys(path: &Path) -> Vec<String> {
    let cfg = atrest_core::config::load(path).unwrap();
    cfg.resources[0].providers[0]
        .keys()
        .unwrap()
        .iter()
        .map(|k| k.name.clone())
        .collect()
}

/// `kubectl encrypt` flags for a KMS v2 provider whose plugin socket does not exist: kube-apiserver starts but
/// never becomes ready (`/readyz` fails its `kms-providers` check), the rollback tests' faithful trigger.
pub const MISSING_KMS_PLUGIN: &[&str] = &[
    "--provider",
    "kms",
    "--kms-name",
    "x",
    "--kms-endpoint",
    "unix:///nonexistent.sock",
];

/// The APIService of a metrics-server that is not installed: the aggregator answers 503 for its group version
/// (partial discovery), and the object itself is stored like any other (etcd keys of other resources). Its
/// `insecureSkipTLSVerify` is only there because an APIService must have either that or a `caBundle`: the
/// aggregator never connects (there is no service).
pub const MISSING_APISERVICE: &str = r#"apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.metrics.k8s.io
spec:
  service:
    name: metrics-server
    namespace: kube-system
  group: metrics.k8s.io
  version: v1beta1
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
"#;
