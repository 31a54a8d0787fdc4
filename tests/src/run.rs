//! Running the built plugins, the real kubectl and etcdctl from tests: output as text, success checks with the
//! whole output in the failure message, secrets through a sandbox's API server and straight from its etcd, and
//! sealing values the way a configured kube-apiserver would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use atrest_sandbox::Sandbox;

use crate::bins;

/// Process output as text (lossy UTF-8).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts that `o` succeeded (printing status, stdout and stderr otherwise) and returns its stdout.
pub fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\nstdout: {}\nstderr: {}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// Runs `kubectl-encrypt --root ROOT ARGS` with no KUBECONFIG and `home` as HOME: the plugin must find
/// `<root>/etc/kubernetes/admin.conf` by itself.
pub fn encrypt_on_node(root: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(bins::plugin("encrypt"))
        .arg("--root")
        .arg(root)
        .env_remove("KUBECONFIG")
        .env("HOME", home)
        .args(args)
        .output()
        .unwrap()
}

/// `plain` sealed for etcd key `key` by a one-provider EncryptionConfiguration for secrets (`kind`: aescbc,
/// aesgcm, secretbox) with one key named `key_name`.
pub fn seal(kind: &str, key_name: &str, secret: &str, key: &str, plain: &[u8]) -> Vec<u8> {
    let text = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - {kind}:\n      keys:\n      - name: {key_name}\n        secret: {secret}\n"
    );
    let cfg = atrest_core::config::EncryptionConfiguration::from_text(&text, "test").unwrap();
    let t = atrest_core::transform::EncryptionTransformers::from_config(&cfg).unwrap();
    t.for_resource(&atrest_core::config::GroupResource::core("secrets"))
        .write(plain, key.as_bytes())
        .unwrap()
}

/// The machine's `kubectl` may be a dispatcher (Google Cloud SDK's) that runs `kubectl.1.<minor>` from its own
/// directory for the server's minor and falls back to its built-in client otherwise (1.32 there, outside the
/// supported skew of the real control plane's 1.34); kubectl supports a server one minor away. The newest
/// versioned client beside the `kubectl` on PATH within that skew of `server_minor`, if there is one.
pub fn kubectl_within_skew(server_minor: u32) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let kubectl = std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())?
        .canonicalize()
        .ok()?;
    let sdk_bin = kubectl.parent()?;
    [server_minor, server_minor.saturating_sub(1)]
        .iter()
        .map(|m| sdk_bin.join(format!("kubectl.1.{m}")))
        .find(|p| p.is_file())
}

/// The kubectl program for talking to `sb`: a versioned client within the skew of its server's release
/// ([`kubectl_within_skew`]), else `kubectl` from PATH. Every test that runs kubectl against a sandbox starts it
/// with this, so the real control plane (`ATREST_CONTROL_PLANE=real`) gets a supported client.
pub fn kubectl_program(sb: &Sandbox) -> PathBuf {
    kubectl_within_skew(sb.kube_version().minor).unwrap_or_else(|| PathBuf::from("kubectl"))
}

/// A `kubectl` command ([`kubectl_program`]) for `sb`, with nothing set yet.
pub fn kubectl_command(sb: &Sandbox) -> Command {
    Command::new(kubectl_program(sb))
}

/// Runs the real `kubectl` against `sb`'s API server with its admin kubeconfig. Each node's server gets its own
/// discovery cache under `home` (HA tests talk to several servers).
pub fn kubectl(sb: &Sandbox, home: &Path, args: &[&str]) -> Output {
    kubectl_command(sb)
        .arg("--kubeconfig")
        .arg(sb.kubeconfig())
        .arg("--cache-dir")
        .arg(home.join(sb.node_name()).join("kube-cache"))
        .args(args)
        .output()
        .unwrap()
}

/// `kubectl create secret generic NAME --from-literal=k=VALUE` in `default`.
pub fn create_secret(sb: &Sandbox, home: &Path, name: &str, value: &str) {
    ok(
        kubectl(
            sb,
            home,
            &[
                "create",
                "secret",
                "generic",
                name,
                &format!("--from-literal=k={value}"),
            ],
        ),
        &format!("create {name}"),
    );
}

/// The secret's `k` in `default` as `sb`'s API server reads it back (decrypted by it).
pub fn read_secret(sb: &Sandbox, home: &Path, name: &str) -> String {
    ok(
        kubectl(
            sb,
            home,
            &[
                "get",
                "secret",
                name,
                "-o",
                "go-template={{.data.k | base64decode}}",
            ],
        ),
        &format!("get {name} through {}", sb.node_name()),
    )
}

/// The bytes etcd holds for secret `name` in `default`, read with the real `etcdctl`.
pub fn etcd_value(sb: &Sandbox, name: &str) -> Vec<u8> {
    let out = Command::new("etcdctl")
        .envs(sb.env())
        .env("ETCDCTL_API", "3")
        .args([
            "get",
            &format!("/registry/secrets/default/{name}"),
            "--print-value-only",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "etcdctl: {}", text(&out.stderr));
    out.stdout
}
