//! Start-up, flags, `/version` (the kubectl dispatcher picks its client from it), health endpoints and
//! authentication, driven by the real kubectl against a real etcd.

use std::sync::Arc;

use crate::support::{Cluster, kubectl, kubectl_ok};
use atrest_sandbox::apiserver::{ApiServer, Faults, HostPaths};

/// Why a second server with the cluster's command line plus `flag` does not start.
async fn start_error(c: &Cluster, flag: &str) -> String {
    let mut cmd = c.command();
    cmd.push(flag.into());
    let err = ApiServer::start(&cmd, Arc::new(HostPaths), Arc::new(Faults::new()), "1.32")
        .await
        .err()
        .expect("the server refuses to start");
    err.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_health_and_flag_errors() {
    let c = Cluster::start("1.30", &[]).await;
    let admin = c.admin();
    // The dispatcher execs the 1.30 client because /version says minor 30.
    let out = kubectl(&admin, &["version", "-o", "json"], None).await;
    let v = out.json();
    assert_eq!(v["serverVersion"]["minor"], "30");
    assert_eq!(v["serverVersion"]["gitVersion"], "v1.30.0");
    assert!(
        v["clientVersion"]["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1.30."),
        "{v}"
    );
    for p in ["/readyz", "/livez", "/healthz"] {
        assert_eq!(kubectl_ok(&admin, &["get", "--raw", p]).await, "ok");
    }

    // Unknown flag: the real server's pflag message.
    assert_eq!(start_error(&c, "--foo=bar").await, "unknown flag: --foo");
    // A client CA that is not there.
    assert_eq!(
        start_error(&c, "--client-ca-file=/nonexistent/ca.crt").await,
        "--client-ca-file: open /nonexistent/ca.crt: no such file or directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_from_another_ca_is_unauthorized() {
    let c = Cluster::start("1.32", &[]).await;
    let other = crate::support::Pki::new();
    let (cert, key) = other.issue("mallory", "mallory", &["system:masters"], false);
    let kc = c.write_kubeconfig("mallory", &cert, &key);
    let out = kubectl(&kc, &["get", "--raw", "/api"], None).await;
    out.fails_with("Unauthorized");
}
