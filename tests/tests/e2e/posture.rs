//! `kubectl etcdcheck posture` end to end, the built plugin against real etcd:
//! * the sandbox node (kubeadm layout, real etcd with TLS): before `kubectl encrypt` the missing
//!   `--encryption-provider-config` FAILs (CIS 1.2.27) and nothing else does; after it every check
//!   PASSes, live probes included, exit 0;
//! * a real etcd started without `--client-cert-auth`, described by a systemd unit: the flag check
//!   (2.2) and the live probes (no client certificate, a foreign CA) FAIL; the same etcd with the flag
//!   passes them;
//! * a kubeadm node directory (no processes) weakened one way at a time: `--auto-tls=true` (2.3), a
//!   world-readable key (1.1.21), a 0644 manifest (1.1.7), a 0755 data dir (1.1.11), identity first
//!   (1.2.28 FAIL), aescbc (1.2.28 WARN).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use atrest_e2e::bed;
use atrest_e2e::etcd::TlsEtcd;
use atrest_e2e::run::{plugin_command, text};
use atrest_sandbox::layout::Ports;
use atrest_sandbox::{KubeVersion, NodeLayout};
use serde_json::Value;

fn posture(args: &[&str]) -> Output {
    plugin_command("etcdcheck")
        .arg("posture")
        .args(args)
        .output()
        .unwrap()
}

/// Run with `-o json`; returns (exit code, checks by name).
fn report(args: &[&str]) -> (i32, Vec<Value>) {
    let mut a = args.to_vec();
    a.extend(["-o", "json"]);
    let o = posture(&a);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "posture output is not JSON ({e}):\nstdout: {}\nstderr: {}",
            text(&o.stdout),
            text(&o.stderr)
        )
    });
    (
        o.status.code().unwrap(),
        v["checks"].as_array().unwrap().clone(),
    )
}

fn get<'a>(checks: &'a [Value], name: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["check"].as_str().unwrap().starts_with(name))
        .unwrap_or_else(|| panic!("no check {name} in {checks:#?}"))
}

fn assert_result(checks: &[Value], name: &str, result: &str, cis: Option<&str>) {
    let c = get(checks, name);
    assert_eq!(c["result"], result, "{name}: {c:#}");
    assert_eq!(c["cis"].as_str(), cis, "{name}: {c:#}");
}

fn not_passing(checks: &[Value]) -> Vec<&Value> {
    checks.iter().filter(|c| c["result"] != "PASS").collect()
}

#[test]
fn sandbox_node_passes_once_encryption_is_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let sb = bed::node(dir.path());
    let root = sb.root().display().to_string();

    let (code, checks) = report(&["--root", &root]);
    let bad = not_passing(&checks);
    assert_eq!(bad.len(), 1, "only the encryption flag fails: {bad:#?}");
    assert_result(
        &checks,
        "apiserver-encryption-provider-config",
        "FAIL",
        Some("1.2.27"),
    );
    assert_eq!(code, 2);

    let home = bed::home(dir.path());
    let o = plugin_command("encrypt")
        .args(["--root", &root, "--timeout", "90s"])
        .env_remove("KUBECONFIG")
        .env("HOME", &home)
        .output()
        .unwrap();
    assert!(o.status.success(), "kubectl encrypt: {}", text(&o.stderr));
    sb.wait_ready(Duration::from_secs(90)).expect("ready again");

    let (code, checks) = report(&["--root", &root]);
    assert_eq!(not_passing(&checks), Vec::<&Value>::new());
    assert_eq!(code, 0);
    let endpoint = sb.etcd_endpoint().to_string();
    for (name, cis) in [
        ("etcd-cert-file", Some("2.1")),
        ("etcd-client-cert-auth", Some("2.2")),
        ("etcd-auto-tls", Some("2.3")),
        ("etcd-peer-cert-file", Some("2.4")),
        ("etcd-peer-client-cert-auth", Some("2.5")),
        ("etcd-peer-auto-tls", Some("2.6")),
        ("etcd-trusted-ca-file", Some("2.7")),
        ("etcd-listen-addresses", None),
        ("apiserver-etcd-certfile", Some("1.2.23")),
        ("apiserver-etcd-cafile", Some("1.2.26")),
        ("apiserver-encryption-provider-config", Some("1.2.27")),
        ("apiserver-encryption-providers", Some("1.2.28")),
        ("apiserver-manifest-mode", Some("1.1.1")),
        ("etcd-manifest-mode", Some("1.1.7")),
        ("etcd-data-dir-mode", Some("1.1.11")),
        ("etcd-data-dir-owner", Some("1.1.12")),
        ("pki-owner", Some("1.1.19")),
        ("pki-key-mode", Some("1.1.21")),
        ("encryption-config-mode", None),
    ] {
        assert_result(&checks, name, "PASS", cis);
    }
    // Live probes of the client listener, through the real TLS path.
    for (probe, cis) in [
        ("probe-plain-http", "2.1"),
        ("probe-no-client-cert", "2.2"),
        ("probe-foreign-ca", "2.7"),
        ("probe-serving-cert", "2.1"),
    ] {
        assert_result(&checks, &format!("{probe} {endpoint}"), "PASS", Some(cis));
    }
    assert!(
        get(&checks, &format!("probe-client-cert {endpoint}"))["detail"]
            .as_str()
            .unwrap()
            .contains("200 OK")
    );
    let no_cert_rows = checks
        .iter()
        .filter(|c| {
            c["check"]
                .as_str()
                .unwrap()
                .starts_with("probe-no-client-cert ")
        })
        .count();
    assert_eq!(
        no_cert_rows, 2,
        "the client and the peer listener are probed"
    );

    // The table: one row per check, a CIS column, exit status 0.
    let o = posture(&["--root", &root]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("CHECK") && out.contains("CIS") && out.contains("REMEDIATION"));
    assert!(
        out.lines().any(|l| l.contains("etcd-client-cert-auth")
            && l.contains("PASS")
            && l.contains("2.2"))
    );
    sb.shutdown();
}

/// The unit a node would run this etcd with: the harness's arguments with the node root removed
/// from every path (the unit's paths are node paths; posture resolves them under --root).
fn write_unit(etcd: &TlsEtcd) -> std::path::PathBuf {
    let root = etcd.root().display().to_string();
    let mut unit = String::from(
        "[Unit]\nDescription=etcd\n\n[Service]\nType=notify\nEnvironment=ETCD_AUTO_TLS=false\nExecStart=/usr/bin/etcd \\\n",
    );
    let args: Vec<String> = etcd.args().iter().map(|a| a.replace(&root, "")).collect();
    for (i, a) in args.iter().enumerate() {
        unit.push_str(&format!(
            "  {a}{}\n",
            if i + 1 < args.len() { " \\" } else { "" }
        ));
    }
    unit.push_str("Restart=always\n\n[Install]\nWantedBy=multi-user.target\n");
    let path = etcd.root().join("etcd.service");
    std::fs::write(&path, unit).unwrap();
    path
}

fn etcd_report(etcd: &TlsEtcd) -> (i32, Vec<Value>) {
    let unit = write_unit(etcd);
    let f = etcd.client_files();
    let root = etcd.root().display().to_string();
    report(&[
        "--root",
        &root,
        "--etcd-unit",
        &unit.display().to_string(),
        "--cacert",
        &f.ca.display().to_string(),
        "--cert",
        &f.cert.display().to_string(),
        "--key",
        &f.key.display().to_string(),
        "--timeout",
        "2s",
    ])
}

#[test]
fn etcd_without_client_cert_auth_is_caught_by_flags_and_probes() {
    let weak = TlsEtcd::start_with(false);
    let endpoint = weak.endpoint();
    let (code, checks) = etcd_report(&weak);
    assert_eq!(code, 2);
    assert_result(&checks, "etcd-client-cert-auth", "FAIL", Some("2.2"));
    assert_eq!(
        get(&checks, "etcd-client-cert-auth")["detail"],
        "--client-cert-auth=false"
    );
    assert_result(
        &checks,
        &format!("probe-no-client-cert {endpoint}"),
        "FAIL",
        Some("2.2"),
    );
    assert!(
        get(&checks, &format!("probe-no-client-cert {endpoint}"))["detail"]
            .as_str()
            .unwrap()
            .contains("was served: HTTP/1.1 200 OK")
    );
    assert_result(
        &checks,
        &format!("probe-foreign-ca {endpoint}"),
        "FAIL",
        Some("2.7"),
    );
    assert_result(&checks, "etcd-trusted-ca-file", "FAIL", Some("2.7"));
    assert_result(
        &checks,
        &format!("probe-serving-cert {endpoint}"),
        "PASS",
        Some("2.1"),
    );
    // Peers still require certificates: their probes pass.
    assert_result(&checks, "etcd-peer-client-cert-auth", "PASS", Some("2.5"));
    assert_result(&checks, "apiserver-manifest", "SKIP", None);
    drop(weak);

    let strong = TlsEtcd::start();
    let endpoint = strong.endpoint();
    let (code, checks) = etcd_report(&strong);
    assert_eq!(not_passing(&checks).len(), 1, "{:#?}", not_passing(&checks));
    assert_result(&checks, "apiserver-manifest", "SKIP", None);
    assert_eq!(code, 0);
    for (probe, cis) in [
        ("probe-plain-http", "2.1"),
        ("probe-no-client-cert", "2.2"),
        ("probe-foreign-ca", "2.7"),
        ("probe-serving-cert", "2.1"),
    ] {
        assert_result(&checks, &format!("{probe} {endpoint}"), "PASS", Some(cis));
    }
    assert_result(&checks, "etcd-auto-tls", "PASS", Some("2.3"));
    assert_eq!(
        get(&checks, "etcd-auto-tls")["detail"],
        "ETCD_AUTO_TLS=false"
    );
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn edit(p: &Path, from: &str, to: &str) {
    let t = std::fs::read_to_string(p).unwrap();
    assert!(t.contains(from), "{} has no {from:?}", p.display());
    std::fs::write(p, t.replacen(from, to, 1)).unwrap();
}

#[test]
fn weakened_node_directory_fails_with_the_right_ids() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeLayout::new(dir.path().join("node"));
    node.init(
        "cp1",
        &KubeVersion::parse("1.32").unwrap(),
        Ports::pick(0, 0).unwrap(),
    )
    .unwrap();
    let root = node.root().display().to_string();
    let run = || report(&["--root", &root, "--skip-probes"]);

    // A kubeadm node with Secrets encrypted by secretbox, the config visible through the pki mount.
    let enc = node.pki_dir().join("enc.yaml");
    let key =
        atrest_core::config::Key::generate("k1", atrest_core::config::ProviderKind::Secretbox)
            .unwrap();
    let write_config = |provider: &str| {
        let cfg = format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n{provider}"
        );
        atrest_core::fsutil::write_private(&enc, cfg.as_bytes()).unwrap();
    };
    let secretbox = format!(
        "  - secretbox:\n      keys:\n      - name: k1\n        secret: {}\n  - identity: {{}}\n",
        key.secret.expose_base64()
    );
    write_config(&secretbox);
    let apiserver = node.manifest("kube-apiserver");
    edit(
        &apiserver,
        "    - kube-apiserver\n",
        "    - kube-apiserver\n    - --encryption-provider-config=/etc/kubernetes/pki/enc.yaml\n",
    );
    let (code, checks) = run();
    assert_eq!(not_passing(&checks), Vec::<&Value>::new());
    assert_eq!(code, 0);

    // identity first: FAIL 1.2.28; aescbc first: WARN 1.2.28 (exit 0).
    write_config("  - identity: {}\n");
    let (code, checks) = run();
    assert_result(
        &checks,
        "apiserver-encryption-providers",
        "FAIL",
        Some("1.2.28"),
    );
    assert_eq!(code, 2);
    let aes = atrest_core::config::Key::generate("a1", atrest_core::config::ProviderKind::Aescbc)
        .unwrap();
    write_config(&format!(
        "  - aescbc:\n      keys:\n      - name: a1\n        secret: {}\n",
        aes.secret.expose_base64()
    ));
    let (code, checks) = run();
    assert_result(
        &checks,
        "apiserver-encryption-providers",
        "WARN",
        Some("1.2.28"),
    );
    assert_eq!(code, 0);
    write_config(&secretbox);

    // --auto-tls=true in the etcd manifest: FAIL 2.3.
    let etcd = node.manifest("etcd");
    edit(&etcd, "    - etcd\n", "    - etcd\n    - --auto-tls=true\n");
    let (code, checks) = run();
    assert_result(&checks, "etcd-auto-tls", "FAIL", Some("2.3"));
    assert_eq!(not_passing(&checks).len(), 1);
    assert_eq!(code, 2);
    edit(&etcd, "    - --auto-tls=true\n", "");

    // A world-readable private key: FAIL 1.1.21, naming the key.
    let server_key = node.pki_dir().join("etcd/server.key");
    chmod(&server_key, 0o644);
    let (_, checks) = run();
    assert_result(&checks, "pki-key-mode", "FAIL", Some("1.1.21"));
    assert!(
        get(&checks, "pki-key-mode")["detail"]
            .as_str()
            .unwrap()
            .contains("etcd/server.key (0644)")
    );
    chmod(&server_key, 0o600);

    // A world-readable etcd manifest, a world-readable data dir.
    chmod(&etcd, 0o644);
    chmod(&node.etcd_data_dir(), 0o755);
    let (_, checks) = run();
    assert_result(&checks, "etcd-manifest-mode", "FAIL", Some("1.1.7"));
    assert_result(&checks, "etcd-data-dir-mode", "FAIL", Some("1.1.11"));
    assert_eq!(not_passing(&checks).len(), 2);
    chmod(&etcd, 0o600);
    chmod(&node.etcd_data_dir(), 0o700);

    // The kube-apiserver without the encryption flag: FAIL 1.2.27.
    edit(
        &apiserver,
        "    - --encryption-provider-config=/etc/kubernetes/pki/enc.yaml\n",
        "",
    );
    let (code, checks) = run();
    assert_result(
        &checks,
        "apiserver-encryption-provider-config",
        "FAIL",
        Some("1.2.27"),
    );
    assert_eq!(not_passing(&checks).len(), 1);
    assert_eq!(code, 2);

    // No manifests at all: exit 1, saying what to pass.
    let empty = tempfile::tempdir().unwrap();
    let o = posture(&[
        "--root",
        &empty.path().display().to_string(),
        "--skip-probes",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("could not check etcd-config") && err.contains("--etcd-unit FILE"),
        "{err}"
    );
}
