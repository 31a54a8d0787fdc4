//! `kubectl encrypt rotate --phase` on an HA control plane: two sandbox nodes, each with its own kube-apiserver
//! (restarted by its own kubelet from its own manifest), sharing one real etcd. The admin runs each phase on every
//! node (copying the config as the Kubernetes docs require: "the encryption configuration file must be the same"
//! on all control-plane nodes); a step that needs every API server on the new key refuses until the other node
//! has it, and no Secret is ever unreadable through either server.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use atrest_core::config;
use atrest_e2e::bed::{self};
use atrest_e2e::run::{create_secret, encrypt, etcd_value, kubectl, ok, read_secret, text};
use atrest_sandbox::{Sandbox, SandboxOptions};

fn refused(o: Output, what: &str) -> String {
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{what} was not refused: {stderr}");
    stderr
}

/// The admin's `scp` of node1's config (and, when given, the phase file) to node2, mode 0600.
fn copy_config(from: &Sandbox, to: &Sandbox, phase_file: bool) {
    let mut names = vec!["enc.yaml"];
    if phase_file {
        names.push("enc.yaml.rotation");
    }
    for n in names {
        let src = from.root().join("etc/kubernetes/pki").join(n);
        let dst = to.root().join("etc/kubernetes/pki").join(n);
        std::fs::copy(&src, &dst).unwrap();
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn key_names(sb: &Sandbox) -> Vec<String> {
    bed::first_provider_keys(&sb.root().join("etc/kubernetes/pki/enc.yaml"))
}

#[test]
fn rotation_phase_by_phase_on_two_api_servers() {
    let dir = tempfile::tempdir().unwrap();
    let home = bed::home(dir.path());
    let mut o1 = SandboxOptions::new(dir.path().join("node1"));
    o1.node = "node1".into();
    let n1 = bed::start(o1);
    let mut o2 = SandboxOptions::new(dir.path().join("node2"));
    o2.node = "node2".into();
    o2.join = Some(n1.root().to_path_buf());
    let n2 = bed::start(o2);
    assert_ne!(n1.apiserver_url(), n2.apiserver_url());
    assert_eq!(n1.etcd_endpoint(), n2.etcd_endpoint(), "one etcd");

    // Enable on node1, then the same config on node2.
    ok(encrypt(&n1, &home, &["--timeout", "90s"]), "enable node1");
    copy_config(&n1, &n2, false);
    let out = ok(encrypt(&n2, &home, &["--timeout", "90s"]), "enable node2");
    assert!(out.contains("encryption at rest is enabled"), "{out}");
    create_secret(&n1, &home, "s0", "v-s0");
    assert!(etcd_value(&n1, "s0").starts_with(b"k8s:enc:secretbox:v1:key1:"));
    assert_eq!(read_secret(&n2, &home, "s0"), "v-s0");

    // add-key on node1 only: promoting now would let node1 write key2, which node2 cannot read.
    ok(
        encrypt(
            &n1,
            &home,
            &["rotate", "--phase", "add-key", "--timeout", "90s"],
        ),
        "add-key node1",
    );
    let after_add_key = std::fs::read(n1.root().join("etc/kubernetes/pki/enc.yaml")).unwrap();
    let stderr = refused(
        encrypt(
            &n1,
            &home,
            &["rotate", "--phase", "promote", "--timeout", "90s"],
        ),
        "promote before node2 has the key",
    );
    assert!(
        stderr.contains("not every API server can decrypt with key2: kube-apiserver-node2 (node node2) runs config sha256:")
            && stderr.contains("run `kubectl encrypt rotate --phase add-key` there first"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(n1.root().join("etc/kubernetes/pki/enc.yaml")).unwrap(),
        after_add_key,
        "a refused phase changes nothing"
    );
    copy_config(&n1, &n2, true);
    ok(
        encrypt(
            &n2,
            &home,
            &["rotate", "--phase", "add-key", "--timeout", "90s"],
        ),
        "add-key node2",
    );
    let out = encrypt(
        &n1,
        &home,
        &["rotate", "--phase", "promote", "--timeout", "90s"],
    );
    let stderr = text(&out.stderr);
    ok(out, "promote node1");
    assert!(
        stderr.contains("all 1 other API server(s) can decrypt with key2"),
        "{stderr}"
    );
    create_secret(&n1, &home, "s1", "v-s1");
    assert!(etcd_value(&n1, "s1").starts_with(b"k8s:enc:secretbox:v1:key2:"));
    assert_eq!(
        read_secret(&n2, &home, "s1"),
        "v-s1",
        "node2 reads node1's key2 writes"
    );
    create_secret(&n2, &home, "s2", "v-s2");
    assert!(
        etcd_value(&n1, "s2").starts_with(b"k8s:enc:secretbox:v1:key1:"),
        "node2 still writes key1"
    );

    // The rewrite would be undone by node2's key1 writes: refused until node2 is promoted too.
    let stderr = refused(
        encrypt(
            &n1,
            &home,
            &["rotate", "--phase", "rewrite", "--timeout", "90s"],
        ),
        "rewrite before node2 writes key2",
    );
    assert!(
        stderr.contains("not every API server writes with key2: kube-apiserver-node2"),
        "{stderr}"
    );
    copy_config(&n1, &n2, true);
    ok(
        encrypt(
            &n2,
            &home,
            &["rotate", "--phase", "promote", "--timeout", "90s"],
        ),
        "promote node2",
    );
    create_secret(&n2, &home, "s3", "v-s3");
    assert!(etcd_value(&n1, "s3").starts_with(b"k8s:enc:secretbox:v1:key2:"));

    // Rewrite and verify once (node1), then remove-old on both nodes.
    ok(
        encrypt(
            &n1,
            &home,
            &["rotate", "--phase", "rewrite", "--timeout", "90s"],
        ),
        "rewrite",
    );
    ok(
        encrypt(
            &n1,
            &home,
            &["rotate", "--phase", "verify", "--timeout", "90s"],
        ),
        "verify",
    );
    copy_config(&n1, &n2, true);
    let out = ok(
        encrypt(
            &n1,
            &home,
            &["rotate", "--phase", "remove-old", "--timeout", "90s"],
        ),
        "remove-old node1",
    );
    assert!(out.contains("Rotate complete"), "{out}");
    let out = ok(
        encrypt(
            &n2,
            &home,
            &["rotate", "--phase", "remove-old", "--timeout", "90s"],
        ),
        "remove-old node2",
    );
    assert!(out.contains("Rotate complete"), "{out}");
    assert_eq!(key_names(&n1), ["key2"]);
    assert_eq!(
        std::fs::read(n1.root().join("etc/kubernetes/pki/enc.yaml")).unwrap(),
        std::fs::read(n2.root().join("etc/kubernetes/pki/enc.yaml")).unwrap(),
        "both nodes end with the same config"
    );
    for name in ["s0", "s1", "s2", "s3"] {
        assert!(
            etcd_value(&n1, name).starts_with(b"k8s:enc:secretbox:v1:key2:"),
            "{name} on key2"
        );
        for sb in [&n1, &n2] {
            assert_eq!(read_secret(sb, &home, name), format!("v-{name}"));
        }
    }
    n2.shutdown();
    n1.shutdown();
}

fn two_nodes(dir: &Path) -> (Sandbox, Sandbox) {
    let mut o1 = SandboxOptions::new(dir.join("node1"));
    o1.node = "node1".into();
    let n1 = bed::start(o1);
    let mut o2 = SandboxOptions::new(dir.join("node2"));
    o2.node = "node2".into();
    o2.join = Some(n1.root().to_path_buf());
    let n2 = bed::start(o2);
    (n1, n2)
}

/// `kubectl encrypt` on a second control-plane node while the first one's API server already encrypts: without
/// the first node's config it would generate its own `key1` and each server could not read the other's writes,
/// so it refuses before touching anything (naming the node and what to copy where), also when this node holds a
/// different config; with the copy (here through `--config FILE`) every Secret reads back through both servers.
#[test]
fn enable_on_a_second_node_needs_the_first_nodes_config() {
    let dir = tempfile::tempdir().unwrap();
    let home = bed::home(dir.path());
    let (n1, n2) = two_nodes(dir.path());
    ok(encrypt(&n1, &home, &["--timeout", "90s"]), "enable node1");
    create_secret(&n1, &home, "s0", "v-s0");
    assert!(etcd_value(&n1, "s0").starts_with(b"k8s:enc:secretbox:v1:key1:"));
    let manifest2 = n2.manifest("kube-apiserver");
    let original = std::fs::read(&manifest2).unwrap();
    let enc2 = n2.root().join("etc/kubernetes/pki/enc.yaml");

    let stderr = refused(
        encrypt(&n2, &home, &["--timeout", "90s"]),
        "enable node2 without node1's config",
    );
    assert!(
        stderr.contains("kube-apiserver-node1 (node node1) runs with --encryption-provider-config=/etc/kubernetes/pki/enc.yaml")
            && stderr.contains("copy /etc/kubernetes/pki/enc.yaml from node node1 to /etc/kubernetes/pki/enc.yaml on this node")
            && stderr.contains("--config FILE"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&manifest2).unwrap(),
        original,
        "manifest untouched"
    );
    assert!(!enc2.exists(), "no config written");

    // A config of its own (another key1) is refused too.
    let own = atrest_core::encrypt::new_config(
        &atrest_core::encrypt::ProviderChoice::Local(config::ProviderKind::Secretbox),
        &["secrets".to_string()],
    )
    .unwrap();
    let text = atrest_core::encrypt::render_config(&own, "enc.yaml").unwrap();
    std::fs::write(&enc2, text.expose()).unwrap();
    std::fs::set_permissions(&enc2, std::fs::Permissions::from_mode(0o600)).unwrap();
    let stderr = refused(
        encrypt(&n2, &home, &["--timeout", "90s"]),
        "enable node2 with a config of its own",
    );
    assert!(
        stderr
            .contains("kube-apiserver-node1 (node node1) runs with a different encryption config"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&manifest2).unwrap(),
        original,
        "manifest untouched"
    );

    // The admin copies node1's config somewhere on node2 and names it.
    let copied = n2.root().join("etc/kubernetes/enc/enc.yaml");
    std::fs::create_dir_all(copied.parent().unwrap()).unwrap();
    std::fs::copy(n1.root().join("etc/kubernetes/pki/enc.yaml"), &copied).unwrap();
    std::fs::set_permissions(&copied, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = ok(
        encrypt(
            &n2,
            &home,
            &[
                "--config",
                "/etc/kubernetes/enc/enc.yaml",
                "--timeout",
                "90s",
            ],
        ),
        "enable node2 with the copy",
    );
    assert!(out.contains("encryption at rest is enabled"), "{out}");
    create_secret(&n2, &home, "s1", "v-s1");
    assert!(etcd_value(&n1, "s1").starts_with(b"k8s:enc:secretbox:v1:key1:"));
    create_secret(&n1, &home, "s2", "v-s2");
    for name in ["s0", "s1", "s2"] {
        for sb in [&n1, &n2] {
            assert_eq!(read_secret(sb, &home, name), format!("v-{name}"));
        }
    }
    n2.shutdown();
    n1.shutdown();
}

/// HA with automatic reload behind a load balancer: node2's `kubectl encrypt rotate` uses a kubeconfig that reaches
/// node1's API server. The reload it waits for is node2's, so it must ask node2's server (its advertise address)
/// and count only series labelled with node2's `apiserver_id_hash`; node1's `/metrics` says nothing about it.
#[test]
fn the_reload_check_asks_this_nodes_api_server() {
    let dir = tempfile::tempdir().unwrap();
    let home = bed::home(dir.path());
    let (n1, n2) = two_nodes(dir.path());
    ok(
        encrypt(&n1, &home, &["--automatic-reload", "--timeout", "90s"]),
        "enable node1",
    );
    copy_config(&n1, &n2, false);
    ok(
        encrypt(&n2, &home, &["--automatic-reload", "--timeout", "90s"]),
        "enable node2",
    );
    let lb = n1.kubeconfig();
    let o = encrypt(
        &n2,
        &home,
        &[
            "rotate",
            "--phase",
            "add-key",
            "--kubeconfig",
            &lb.to_string_lossy(),
            "--timeout",
            "30s",
        ],
    );
    let stderr = text(&o.stderr);
    ok(o, "add-key on node2 through node1's endpoint");
    assert!(
        stderr.contains("(no restart)") && stderr.contains("kube-apiserver reloaded sha256:"),
        "{stderr}"
    );
    let node2_id = atrest_core::encrypt::apiserver_id_hash("node2");
    let metrics = |sb: &Sandbox| ok(kubectl(sb, &home, &["get", "--raw", "/metrics"]), "metrics");
    let m2 = metrics(&n2);
    assert!(
        m2.lines().any(|l| l
            .starts_with("apiserver_encryption_config_controller_automatic_reloads_total{")
            && l.contains(&format!("apiserver_id_hash=\"{node2_id}\""))
            && l.contains("status=\"success\"")),
        "{m2}"
    );
    let m1 = metrics(&n1);
    assert!(
        !m1.contains(&node2_id) && !m1.contains("status=\"success\""),
        "node1 reloaded nothing: {m1}"
    );
    assert_eq!(key_names(&n2), ["key1", "key2"]);
    create_secret(&n2, &home, "s", "v-s");
    assert_eq!(read_secret(&n1, &home, "s"), "v-s");
    n2.shutdown();
    n1.shutdown();
}
