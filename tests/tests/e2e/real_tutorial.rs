//! Issue 13: the seed tutorial's kubectl commands, verbatim ([`atrest_e2e::tutorial`]), on the real control plane
//! (`--control-plane real`: etcd 3.6, kube-apiserver and kube-controller-manager of the release `tests/k8s` pins,
//! run by the stand-in kubelet from the manifests). `kubectl version` shows the real release; john's certificate
//! is issued by the real CSR signer; the Forbidden message is the real server's. Needs Go (the binaries are built
//! into the cache on first use; see `atrest-sandbox k8s`).

use std::time::Instant;

use atrest_e2e::bed;
use atrest_e2e::run::Kubectl;
use atrest_e2e::tutorial::tutorial_steps;
use atrest_sandbox::k8s;

#[test]
fn tutorial_on_the_real_control_plane() {
    let tmp = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let sb = bed::real_node(tmp.path());
    eprintln!(
        "real control plane: up → ready in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let release = k8s::ensure().unwrap().kubernetes_version; // cached by `up`
    let server_minor: u32 = release.split('.').nth(1).unwrap().parse().unwrap();

    let k = Kubectl::new(&sb, tmp.path());
    let v: serde_json::Value = serde_json::from_str(&k.ok(&["version", "-o", "json"])).unwrap();
    assert_eq!(v["serverVersion"]["gitVersion"], release.as_str(), "{v}");
    assert_eq!(v["serverVersion"]["minor"], server_minor.to_string(), "{v}");
    let client_minor: u32 = v["clientVersion"]["minor"]
        .as_str()
        .and_then(|m| m.trim_end_matches('+').parse().ok())
        .unwrap_or_else(|| panic!("client version in {v}"));
    assert!(
        server_minor - client_minor <= 1,
        "no kubectl within the supported skew of {release} (client 1.{client_minor}): put kubectl 1.{} or newer on \
         PATH",
        server_minor - 1
    );
    // Plain `kubectl version`, as the tutorial's reader sees it: the real release and no skew warning.
    let out = k.run_as(&sb.kubeconfig(), &["version"], None);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("Server Version: {release}\n")),
        "{stdout}"
    );
    assert!(
        !stdout.contains("atrest") && !stderr.contains("WARNING"),
        "{stdout}{stderr}"
    );

    tutorial_steps(&k);
    sb.shutdown();
}
