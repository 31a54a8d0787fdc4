//! The TLS etcd test harness itself: starts, serves TLS with client-cert auth, cleans up.

use atrest_e2e::etcd::{ETCDCTL_BIN, TlsEtcd};
use atrest_e2e::run::ok;
use std::process::Command;

#[tokio::test]
async fn tls_etcd_serves_and_requires_client_certificates() {
    let etcd = TlsEtcd::start();
    etcd.put("/registry/secrets/default/a", b"hello".to_vec())
        .await;
    let client = etcd.client().await;
    let resp = client
        .get("/registry/secrets/default/a", None)
        .await
        .unwrap();
    assert_eq!(resp.kvs()[0].value(), b"hello");

    // etcdctl with the harness's flags reads it too.
    let out = Command::new(ETCDCTL_BIN)
        .args(etcd.etcdctl_args())
        .args(["get", "--print-value-only", "/registry/secrets/default/a"])
        .output()
        .unwrap();
    assert_eq!(ok(out, "etcdctl get").trim(), "hello");

    // Without a client certificate the server refuses.
    let files = etcd.client_files();
    let out = Command::new(ETCDCTL_BIN)
        .arg(format!("--endpoints={}", etcd.endpoint()))
        .arg(format!("--cacert={}", files.ca.display()))
        .args([
            "--dial-timeout=1s",
            "--command-timeout=2s",
            "get",
            "/registry/secrets/default/a",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());

    // Drop kills etcd and removes the directory.
    let root = etcd.root().to_path_buf();
    drop(client);
    drop(etcd);
    assert!(!root.exists());
}
