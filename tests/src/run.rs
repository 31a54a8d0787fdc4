//! Running the built plugins from tests: output as text, success checks with the whole output in the
//! failure message, and sealing values the way a configured kube-apiserver would.

use std::path::Path;
use std::process::{Command, Output};

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
