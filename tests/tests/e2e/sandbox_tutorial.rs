//! Acceptance (issue 3): the seed tutorial's kubectl commands, verbatim, with the real kubectl against a fresh
//! sandbox, each command with its own `--cache-dir`; the same with kubectl 1.27, 1.30 and 1.33 (the installed
//! dispatcher picks the client from the version the sandbox reports). etcdctl shows the plaintext protobuf value;
//! a client certificate CN=john,O=marketing issued through the CSR API lists secrets in marketing and gets the
//! exact Forbidden message in default; the mirror pods show in kube-system. The steps are
//! [`atrest_e2e::tutorial`]'s (`real_tutorial.rs` walks them on the real control plane). Always on atrest's API
//! server: only it impersonates these releases.

use atrest_e2e::bed;
use atrest_e2e::run::Kubectl;
use atrest_e2e::tutorial::tutorial_steps;
use atrest_sandbox::{ControlPlane, SandboxOptions};

fn tutorial(version: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = SandboxOptions::new(tmp.path().join("node"));
    opts.kube_version = version.into();
    opts.control_plane = ControlPlane::Atrest;
    let sb = bed::start(opts);
    let k = Kubectl::new(&sb, tmp.path());
    let minor = version.split('.').nth(1).unwrap();

    // The dispatcher ran the kubectl matching the server's version.
    let v: serde_json::Value = serde_json::from_str(&k.ok(&["version", "-o", "json"])).unwrap();
    // The built-in 1.32 client reports minor "32+" (a `-dispatcher` build); the versioned binaries plain minors.
    assert_eq!(
        v["clientVersion"]["minor"]
            .as_str()
            .map(|m| m.trim_end_matches('+')),
        Some(minor),
        "client {v}"
    );
    assert_eq!(v["serverVersion"]["minor"], minor, "server {v}");

    tutorial_steps(&k);
    sb.shutdown();
}

#[test]
fn tutorial_with_kubectl_1_32() {
    tutorial("1.32");
}

#[test]
fn tutorial_with_kubectl_1_27() {
    tutorial("1.27");
}

#[test]
fn tutorial_with_kubectl_1_30() {
    tutorial("1.30");
}

#[test]
fn tutorial_with_kubectl_1_33() {
    tutorial("1.33");
}
