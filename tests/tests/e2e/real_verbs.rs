//! Issue 13: the tutorial through atrest's verbs on the real control plane (`--control-plane real`): `kubectl
//! encrypt --root` edits the manifest and the stand-in kubelet restarts the real kube-apiserver from it; a new
//! Secret is stored encrypted (read straight from etcd 3.6); `kubectl reencrypt` rewrites the old one; `kubectl
//! etcdcheck -A` finds every Secret encrypted and verified; `kubectl onboard john -n marketing` goes through the
//! real CSR API and kube-controller-manager's signer, john's kubeconfig lists marketing's Secrets and gets the real
//! server's Forbidden message in default; `--remove` takes the access away. Needs Go (see `atrest-sandbox k8s`).

use std::path::Path;
use std::process::Output;
use std::time::Instant;

use atrest_e2e::bed;
use atrest_e2e::run::{
    Kubectl, create_secret, create_secret_in, encrypt_on_node, etcd_value, kubectl, ok,
    read_secret, sandbox_plugin, text,
};
use atrest_sandbox::Sandbox;

/// `kubectl` with john's kubeconfig.
fn as_john(sb: &Sandbox, dir: &Path, args: &[&str]) -> Output {
    Kubectl::new(sb, dir).run_as(&dir.join("john.kubeconfig"), args, None)
}

#[test]
fn the_verbs_on_the_real_control_plane() {
    let tmp = tempfile::tempdir().unwrap();
    let home = bed::home(tmp.path());
    let sb = bed::real_node(tmp.path());
    let root = sb.root().to_path_buf();
    let server = text(&kubectl(&sb, &home, &["version", "-o", "json"]).stdout);
    assert!(server.contains("\"gitVersion\": \"v1.34."), "{server}");

    // Before: stored as protobuf in plaintext.
    create_secret(&sb, &home, "demo", "123456");
    assert!(etcd_value(&sb, "demo").starts_with(b"k8s\x00"));

    // encrypt: the manifest edit restarts the real kube-apiserver (the kubelet runs it from the manifest).
    let starts = sb.apiserver_starts();
    let t0 = Instant::now();
    let out = ok(encrypt_on_node(&root, &home, &[]), "kubectl encrypt");
    eprintln!(
        "kubectl encrypt (manifest edit → real kube-apiserver restarted and Ready): {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    assert!(out.contains("encryption at rest is enabled"), "{out}");
    assert!(
        sb.apiserver_starts() > starts,
        "the API server was not restarted"
    );
    let manifest = std::fs::read_to_string(sb.manifest("kube-apiserver")).unwrap();
    assert!(
        manifest.contains("--encryption-provider-config="),
        "{manifest}"
    );
    let pods = text(
        &kubectl(
            &sb,
            &home,
            &["get", "pods", "-n", "kube-system", "-o", "json"],
        )
        .stdout,
    );
    assert!(
        pods.contains("--encryption-provider-config="),
        "mirror pod: {pods}"
    );

    // A new secret is stored encrypted by the real server; the old one is still plaintext until rewritten.
    create_secret(&sb, &home, "new1", "s3cret");
    let v = etcd_value(&sb, "new1");
    assert!(
        v.starts_with(b"k8s:enc:"),
        "{:?}",
        String::from_utf8_lossy(&v)
    );
    assert!(!v.windows(6).any(|w| w == b"s3cret"));
    assert_eq!(read_secret(&sb, &home, "new1"), "s3cret");
    assert!(etcd_value(&sb, "demo").starts_with(b"k8s\x00"));

    // reencrypt, then etcdcheck: every secret encrypted and verified.
    let out = ok(
        sandbox_plugin(&sb, &home, "reencrypt", &[]),
        "kubectl reencrypt",
    );
    assert!(out.contains("TOTAL"), "{out}");
    assert!(etcd_value(&sb, "demo").starts_with(b"k8s:enc:"));
    let root_s = root.display().to_string();
    let out = ok(
        sandbox_plugin(
            &sb,
            &home,
            "etcdcheck",
            &["-A", "--root", &root_s, "--fail-on-plaintext"],
        ),
        "kubectl etcdcheck -A",
    );
    let summary = out
        .lines()
        .rev()
        .find(|l| l.starts_with("verified:"))
        .unwrap_or_default();
    assert!(
        summary.contains(" failed: 0") && summary.contains("not verified: 0"),
        "{out}"
    );
    let verified: usize = summary
        .trim_start_matches("verified:")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(verified >= 2, "{out}");
    assert!(!out.contains("identity"), "{out}");
    assert_eq!(read_secret(&sb, &home, "demo"), "123456");

    // onboard john through the real CSR API and kube-controller-manager's signer.
    ok(
        kubectl(&sb, &home, &["create", "ns", "marketing"]),
        "create ns",
    );
    create_secret_in(&sb, &home, "marketing", "m1", "v");
    let out = ok(
        sandbox_plugin(&sb, &home, "onboard", &["john", "-n", "marketing"]),
        "kubectl onboard john -n marketing",
    );
    assert!(
        out.contains("whoami with the new kubeconfig: john"),
        "{out}"
    );
    let listed = ok(
        as_john(&sb, &home, &["get", "secrets", "-n", "marketing"]),
        "john lists marketing's secrets",
    );
    assert!(listed.contains("\nm1 "), "{listed}");
    let denied = as_john(&sb, &home, &["get", "secrets", "-n", "default"]);
    assert_eq!(denied.status.code(), Some(1));
    assert_eq!(
        text(&denied.stderr),
        "Error from server (Forbidden): secrets is forbidden: User \"john\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\"\n"
    );
    let csrs = text(&kubectl(&sb, &home, &["get", "csr", "-o", "json"]).stdout);
    assert!(
        csrs.contains("\"signerName\": \"kubernetes.io/kube-apiserver-client\""),
        "{csrs}"
    );

    // --remove: the Role and RoleBinding go; john's certificate still authenticates but is forbidden.
    ok(
        sandbox_plugin(
            &sb,
            &home,
            "onboard",
            &["john", "-n", "marketing", "--remove"],
        ),
        "kubectl onboard john --remove",
    );
    let after = as_john(&sb, &home, &["get", "secrets", "-n", "marketing"]);
    assert_eq!(after.status.code(), Some(1), "{}", text(&after.stdout));
    assert!(
        text(&after.stderr).contains("User \"john\" cannot list resource \"secrets\""),
        "{}",
        text(&after.stderr)
    );
    sb.shutdown();
}
