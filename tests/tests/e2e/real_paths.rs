//! Issue 14 item 1: each verb's main paths on the real control plane (`ControlPlane::Real`: etcd 3.6,
//! kube-apiserver and kube-controller-manager of the release `tests/k8s` pins, run by the stand-in kubelet from the
//! manifests). Every value checked here was written by the real kube-apiserver: `kubectl etcdcheck` classifies
//! secrets stored under identity, aescbc, aesgcm, secretbox and kms v2 (through the test KMS v2 plugin,
//! `tests/k8s/cmd/kms-plugin`) with their key names and verifies them. Needs Go (see `atrest-sandbox k8s`).

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use atrest_core::manifest::Manifest;
use atrest_e2e::bed::{self, READY_REAL};
use atrest_e2e::bins;
use atrest_e2e::kms::KmsPlugin;
use atrest_e2e::run::{
    create_secret, create_secret_in, encrypt, etcd_value, kubectl, ok, openssl, read_secret,
    sandbox_plugin, text,
};
use atrest_sandbox::Sandbox;
use serde_json::Value;

/// The EncryptionConfiguration's path on the node (under the `k8s-certs` hostPath kubeadm mounts, read-only).
const CONFIG: &str = "/etc/kubernetes/pki/enc.yaml";
/// The KMS v2 plugin's socket, under the same mount so that the API server's mount namespace sees it (connecting
/// to a unix socket works on a read-only mount).
const KMS_SOCKET: &str = "/etc/kubernetes/pki/kms/plugin.sock";
const KMS_NAME: &str = "kms-test";

/// Set the pod annotation `atrest.test/generation` to `generation`: a manifest change that makes the kubelet
/// restart the pod, as the config-hash annotation `kubectl encrypt` maintains does.
fn bump(manifest: String, generation: u32) -> String {
    let kept: Vec<&str> = manifest
        .lines()
        .filter(|l| !l.starts_with("    atrest.test/generation:"))
        .collect();
    let mut out = String::new();
    for l in kept {
        out.push_str(l);
        out.push('\n');
        if l == "  annotations:" {
            out.push_str(&format!("    atrest.test/generation: \"{generation}\"\n"));
        }
    }
    out
}

/// A fresh base64 key of `len` random bytes.
fn key(len: usize) -> String {
    let mut k = vec![0u8; len];
    openssl::rand::rand_bytes(&mut k).unwrap();
    openssl::base64::encode_block(&k)
}

/// An EncryptionConfiguration for secrets with these providers, in order (the first one writes).
fn config(providers: &[String]) -> String {
    let mut s = String::from(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources:\n  - secrets\n  providers:\n",
    );
    for p in providers {
        s.push_str(p);
    }
    s
}

fn aes_like(kind: &str, name: &str, secret: &str) -> String {
    format!("  - {kind}:\n      keys:\n      - name: {name}\n        secret: {secret}\n")
}

fn kms_v2() -> String {
    format!(
        "  - kms:\n      apiVersion: v2\n      name: {KMS_NAME}\n      endpoint: unix://{KMS_SOCKET}\n      timeout: 10s\n"
    )
}

/// Write the config 0600 as `kubectl encrypt` does.
fn write_config(sb: &Sandbox, text: &str) {
    let path = sb.layout().host(CONFIG);
    atrest_core::fsutil::write_private(&path, text.as_bytes()).unwrap();
}

/// `kubectl etcdcheck -n default --root ROOT -o json ARGS`: the items by name.
fn etcdcheck_items(sb: &Sandbox, home: &Path, args: &[&str]) -> (Output, Vec<Value>) {
    let root = sb.root().display().to_string();
    let mut all = vec!["-n", "default", "--root", &root, "-o", "json"];
    all.extend_from_slice(args);
    let out = sandbox_plugin(sb, home, "etcdcheck", &all);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "etcdcheck output is not JSON ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    let items = v["items"].as_array().cloned().unwrap_or_default();
    (out, items)
}

fn item<'a>(items: &'a [Value], name: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {items:?}"))
}

#[test]
fn etcdcheck_on_what_the_real_server_wrote_under_every_provider() {
    let tmp = tempfile::tempdir().unwrap();
    let home = bed::home(tmp.path());
    let sb = bed::real_node(tmp.path());
    let _kms = KmsPlugin::start(&sb.layout().host(KMS_SOCKET));

    // One provider more at a time: each new one writes, the earlier ones stay to read what they wrote.
    let mut providers = vec!["  - identity: {}\n".to_string()];
    let steps: Vec<(&str, Option<String>, String)> = vec![
        ("identity", None, "k8s\0".into()),
        (
            "aescbc",
            Some(aes_like("aescbc", "cbc1", &key(32))),
            "k8s:enc:aescbc:v1:cbc1:".into(),
        ),
        (
            "aesgcm",
            Some(aes_like("aesgcm", "gcm1", &key(32))),
            "k8s:enc:aesgcm:v1:gcm1:".into(),
        ),
        (
            "secretbox",
            Some(aes_like("secretbox", "sbox1", &key(32))),
            "k8s:enc:secretbox:v1:sbox1:".into(),
        ),
        (
            "kmsv2",
            Some(kms_v2()),
            format!("k8s:enc:kms:v2:{KMS_NAME}:"),
        ),
    ];
    for (generation, (kind, provider, prefix)) in steps.into_iter().enumerate() {
        if let Some(p) = provider {
            providers.insert(0, p);
        }
        write_config(&sb, &config(&providers));
        let t0 = Instant::now();
        bed::edit_apiserver_manifest(&sb, |m| {
            let m = if generation == 0 {
                bed::with_apiserver_flags(&m, &[&format!("--encryption-provider-config={CONFIG}")])
            } else {
                m
            };
            bump(m, generation as u32)
        });
        eprintln!(
            "manifest edit → real kube-apiserver restarted and ready: {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        let name = format!("s-{kind}");
        create_secret(&sb, &home, &name, &format!("value-{kind}"));
        let stored = etcd_value(&sb, &name);
        assert!(
            stored.starts_with(prefix.as_bytes()),
            "{name}: {:?}",
            String::from_utf8_lossy(&stored[..stored.len().min(40)])
        );
        let plain = format!("value-{kind}");
        assert_eq!(
            stored.windows(plain.len()).any(|w| w == plain.as_bytes()),
            kind == "identity",
            "{name}: the value in etcd"
        );
    }
    // The real server reads each back through its own config.
    for kind in ["identity", "aescbc", "aesgcm", "secretbox", "kmsv2"] {
        assert_eq!(
            read_secret(&sb, &home, &format!("s-{kind}")),
            format!("value-{kind}")
        );
    }

    // etcdcheck finds the config through the manifest and classifies each value with its key name; without
    // --kms the kms v2 value is classified but not verified (the plugin is not called).
    let expect = [
        ("s-identity", "identity", None),
        ("s-aescbc", "aescbc", Some("cbc1")),
        ("s-aesgcm", "aesgcm", Some("gcm1")),
        ("s-secretbox", "secretbox", Some("sbox1")),
        ("s-kmsv2", "kmsv2", Some(KMS_NAME)),
    ];
    let (out, items) = etcdcheck_items(&sb, &home, &[]);
    for (name, storage, key_name) in expect {
        let i = item(&items, name);
        assert_eq!(i["storage"], storage, "{i}\n{}", text(&out.stderr));
        assert_eq!(i["keyName"].as_str(), key_name, "{i}");
        if storage == "kmsv2" {
            assert_ne!(i["verified"], true, "verified without --kms: {i}");
        } else {
            assert_eq!(i["verified"], true, "{i}");
            assert!(i["error"].is_null(), "{i}");
        }
    }
    // With --kms: every one verified, the kms v2 value through the plugin the real server used.
    let (out, items) = etcdcheck_items(&sb, &home, &["--kms"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for (name, storage, key_name) in expect {
        let i = item(&items, name);
        assert_eq!(i["storage"], storage, "{i}");
        assert_eq!(i["keyName"].as_str(), key_name, "{i}");
        assert_eq!(i["verified"], true, "{i}");
        assert!(i["error"].is_null(), "{i}");
    }
    sb.shutdown();
}

fn starts_with(v: &[u8], prefix: &str) -> bool {
    v.starts_with(prefix.as_bytes())
}

/// The key names of the first provider of the config on the node.
fn first_provider_keys(sb: &Sandbox) -> Vec<String> {
    bed::first_provider_keys(&sb.layout().host(CONFIG))
}

/// `text` with a key `name: secret` put first in the first `keys:` list, indented as the keys there.
fn with_first_key(text: &str, name: &str, secret: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_end().ends_with("keys:"))
        .unwrap_or_else(|| panic!("no keys in {text}"))
        + 1;
    let indent = &lines[at][..lines[at].len() - lines[at].trim_start().len()];
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    out.insert(
        at,
        format!("{indent}- name: {name}\n{indent}  secret: {secret}"),
    );
    out.join("\n") + "\n"
}

/// Without `--encryption-provider-config-automatic-reload` each step restarts the real kube-apiserver through the
/// manifest: enable, `status`, a full `rotate` (add-key, promote, rewrite, remove-old), a config with a key of the
/// wrong size refused before anything changes, `disable` (identity first); then an enable the real server never
/// becomes ready with (a KMS v2 plugin that is not there: `/readyz` fails `kms-providers`) is rolled back, the
/// manifest restored byte for byte and the server ready again.
#[test]
fn encrypt_status_rotate_disable_and_rollback_on_the_real_server() {
    let tmp = tempfile::tempdir().unwrap();
    let home = bed::home(tmp.path());
    let sb = bed::real_node(tmp.path());
    create_secret(&sb, &home, "before", "v-before");

    let starts = sb.apiserver_starts();
    ok(encrypt(&sb, &home, &["--timeout", "240s"]), "enable");
    assert!(sb.apiserver_starts() > starts, "restarted");
    create_secret(&sb, &home, "after", "v-after");
    assert!(starts_with(
        &etcd_value(&sb, "after"),
        "k8s:enc:secretbox:v1:key1:"
    ));
    let status: Value = serde_json::from_str(&ok(
        encrypt(&sb, &home, &["status", "-o", "json"]),
        "status",
    ))
    .unwrap();
    let pods = status["mirrorPods"].as_array().expect("mirror pods listed");
    assert!(
        pods.iter()
            .any(|p| p["encryptionProviderConfig"] == CONFIG && p["ready"] == true),
        "{status:#}"
    );
    let count = |storage: &str, key: &str| -> u64 {
        status["storage"]
            .as_array()
            .expect("etcd counts")
            .iter()
            .find(|r| r["storage"] == storage && r["key"].as_str().unwrap_or("-") == key)
            .and_then(|r| r["count"].as_u64())
            .unwrap_or(0)
    };
    assert!(count("identity", "-") >= 1, "{status:#}");
    assert_eq!(count("secretbox", "key1"), 1, "{status:#}");

    // A full rotation: three restarts and a rewrite; every secret ends on key2 and reads back.
    let t0 = Instant::now();
    let out = ok(
        encrypt(&sb, &home, &["rotate", "--timeout", "240s"]),
        "rotate",
    );
    eprintln!(
        "rotate on the real server: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    assert!(out.contains("Rotate complete"), "{out}");
    assert_eq!(first_provider_keys(&sb), ["key2"]);
    for (name, value) in [("before", "v-before"), ("after", "v-after")] {
        assert!(
            starts_with(&etcd_value(&sb, name), "k8s:enc:secretbox:v1:key2:"),
            "{name} on key2"
        );
        assert_eq!(read_secret(&sb, &home, name), value);
    }

    // A key of the wrong size put in the config by hand: rotate refuses up front with kube-apiserver's own
    // validation message (apiserver `pkg/apis/apiserver/validation/validation_encryption.go`), naming the file,
    // line and field, and changes nothing.
    let config_path = sb.layout().host(CONFIG);
    let good = std::fs::read(&config_path).unwrap();
    let manifest_path = sb.manifest("kube-apiserver");
    let manifest_before = std::fs::read(&manifest_path).unwrap();
    let bad = with_first_key(&String::from_utf8(good.clone()).unwrap(), "short", &key(20));
    atrest_core::fsutil::write_private(&config_path, bad.as_bytes()).unwrap();
    let starts = sb.apiserver_starts();
    let o = encrypt(&sb, &home, &["rotate", "--timeout", "240s"]);
    let stderr = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("enc.yaml:")
            && stderr.contains("secretbox.keys[0].secret")
            && stderr.contains("got 20, expected one of"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&config_path).unwrap(), bad.as_bytes());
    assert_eq!(std::fs::read(&manifest_path).unwrap(), manifest_before);
    assert_eq!(sb.apiserver_starts(), starts, "nothing restarted");
    atrest_core::fsutil::write_private(&config_path, &good).unwrap();

    // Disable: identity first, rewrite, then the flag goes.
    let out = ok(
        encrypt(&sb, &home, &["disable", "--timeout", "240s"]),
        "disable",
    );
    assert!(out.contains("Disable complete"), "{out}");
    let m = Manifest::load(&manifest_path).unwrap();
    assert_eq!(m.encryption_provider_config(), None);
    for (name, value) in [("before", "v-before"), ("after", "v-after")] {
        assert!(starts_with(&etcd_value(&sb, name), "k8s\0"), "{name}");
        assert_eq!(read_secret(&sb, &home, name), value);
    }

    // The real server never becomes ready with a KMS v2 plugin that is not there: rolled back byte for byte.
    let original = std::fs::read(&manifest_path).unwrap();
    let starts = sb.apiserver_starts();
    let out = encrypt(
        &sb,
        &home,
        &[
            bed::MISSING_KMS_PLUGIN,
            // disable leaves the identity-first config in place; this one goes beside it.
            &[
                "--config",
                "/etc/kubernetes/pki/enc-kms.yaml",
                "--timeout",
                "45s",
            ],
        ]
        .concat(),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("kube-apiserver was not ready with the change after 45s")
            && stderr.contains("kms-providers")
            && stderr.contains("restored the previous manifest from")
            && stderr.contains("is ready again"),
        "{stderr}"
    );
    assert!(
        sb.apiserver_starts() >= starts + 2,
        "the server ran with the change and again after the restore"
    );
    assert_eq!(std::fs::read(&manifest_path).unwrap(), original);
    sb.wait_ready(READY_REAL).expect("ready again");
    create_secret(&sb, &home, "still-plain", "v");
    assert!(starts_with(&etcd_value(&sb, "still-plain"), "k8s\0"));
    sb.shutdown();
}

/// With `--encryption-provider-config-automatic-reload` the real kube-apiserver polls the config file (once a
/// minute: apiserver `encryptionconfig/controller`, `EncryptionConfigFileChangePollDuration`): `rotate`'s phases
/// write the file and wait for the server's reload metric instead of restarting it; the promoted key writes.
#[test]
fn rotate_with_automatic_reload_on_the_real_server() {
    let tmp = tempfile::tempdir().unwrap();
    let home = bed::home(tmp.path());
    let sb = bed::real_node(tmp.path());
    ok(
        encrypt(&sb, &home, &["--automatic-reload", "--timeout", "240s"]),
        "enable --automatic-reload",
    );
    assert!(
        Manifest::load(&sb.manifest("kube-apiserver"))
            .unwrap()
            .automatic_reload()
    );
    create_secret(&sb, &home, "a", "v-a");
    assert!(starts_with(
        &etcd_value(&sb, "a"),
        "k8s:enc:secretbox:v1:key1:"
    ));

    let starts = sb.apiserver_starts();
    for (phase, writer) in [("add-key", "key1"), ("promote", "key2")] {
        let t0 = Instant::now();
        let o = encrypt(
            &sb,
            &home,
            &["rotate", "--phase", phase, "--timeout", "180s"],
        );
        let stderr = text(&o.stderr);
        ok(o, &format!("rotate --phase {phase}"));
        eprintln!(
            "rotate --phase {phase} (reload, no restart): {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        assert!(
            stderr.contains("reload the file (no restart)")
                && stderr.contains("kube-apiserver reloaded sha256:"),
            "{stderr}"
        );
        let name = format!("w-{phase}");
        create_secret(&sb, &home, &name, "v");
        assert!(
            starts_with(
                &etcd_value(&sb, &name),
                &format!("k8s:enc:secretbox:v1:{writer}:")
            ),
            "{name} written with {writer}"
        );
    }
    assert_eq!(
        sb.apiserver_starts(),
        starts,
        "no restart during the rotation"
    );
    assert_eq!(read_secret(&sb, &home, "a"), "v-a");
    // The real server's own count of the two reloads.
    let metrics = ok(
        kubectl(&sb, &home, &["get", "--raw", "/metrics"]),
        "metrics",
    );
    assert!(
        metrics.lines().any(|l| l
            .starts_with("apiserver_encryption_config_controller_automatic_reloads_total{")
            && l.contains("status=\"success\"")
            && l.ends_with(" 2")),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("encryption_config"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    sb.shutdown();
}

/// `openssl x509 -checkend SECONDS`: whether `crt` is still valid `seconds` from now.
fn valid_in(crt: &Path, seconds: u64) -> bool {
    Command::new("openssl")
        .args(["x509", "-noout", "-checkend", &seconds.to_string(), "-in"])
        .arg(crt)
        .output()
        .expect("openssl on PATH")
        .status
        .success()
}

/// `kubectl onboard` on the real server: a certificate from kube-controller-manager's signer with the asked
/// `--ttl` (`expirationSeconds`), the issuance record in `--list`, `--signer local` with the cluster CA, and the
/// preflight refusal of a user who may not approve CSRs (the real server's SelfSubjectAccessReviews), nothing
/// created.
#[test]
fn onboard_ttl_list_local_signer_and_preflight_on_the_real_server() {
    let tmp = tempfile::tempdir().unwrap();
    let home = bed::home(tmp.path());
    let sb = bed::real_node(tmp.path());
    ok(
        kubectl(&sb, &home, &["create", "ns", "marketing"]),
        "create ns",
    );
    create_secret_in(&sb, &home, "marketing", "m1", "v");

    // --ttl 2h through the real CSR signer: notAfter is two hours away (give or take the signer's backdating).
    let out = ok(
        sandbox_plugin(
            &sb,
            &home,
            "onboard",
            &["john", "-n", "marketing", "--ttl", "2h"],
        ),
        "onboard john --ttl 2h",
    );
    assert!(
        out.contains("whoami with the new kubeconfig: john"),
        "{out}"
    );
    let crt = home.join("john.crt");
    assert!(valid_in(&crt, 100 * 60), "valid for 100 minutes");
    assert!(!valid_in(&crt, 130 * 60), "expires within 130 minutes");
    let ca = sb.ca_cert().display().to_string();
    assert_eq!(
        openssl(&home, &["verify", "-CAfile", &ca, "john.crt"]).trim(),
        "john.crt: OK"
    );
    let serial = openssl(&home, &["x509", "-in", "john.crt", "-noout", "-serial"]);
    let serial = serial.trim().trim_start_matches("serial=").to_uppercase();

    // --list: the record of the real signer's certificate.
    let list: Value = serde_json::from_str(&ok(
        sandbox_plugin(&sb, &home, "onboard", &["--list", "-o", "json"]),
        "onboard --list",
    ))
    .unwrap();
    let records = list.as_array().expect("a list");
    assert_eq!(records.len(), 1, "{list}");
    assert_eq!(records[0]["user"], "john", "{list}");
    assert_eq!(
        records[0]["serial"]
            .as_str()
            .unwrap_or_default()
            .to_uppercase(),
        serial,
        "{list}"
    );
    let table = ok(
        sandbox_plugin(&sb, &home, "onboard", &["--list"]),
        "onboard --list",
    );
    assert!(table.contains("john") && table.contains("valid"), "{table}");

    // --signer local with the cluster CA: the real server authenticates the certificate.
    let ca_key = sb.ca_key().display().to_string();
    let out = ok(
        sandbox_plugin(
            &sb,
            &home,
            "onboard",
            &[
                "bob",
                "-n",
                "marketing",
                "--signer",
                "local",
                "--ca-cert",
                &ca,
                "--ca-key",
                &ca_key,
                "--clusterrole",
                "view",
                "--resources",
                "pods,configmaps,secrets",
                "--verbs",
                "get,list",
            ],
        ),
        "onboard bob --signer local",
    );
    assert!(out.contains("signed locally"), "{out}");
    assert!(out.contains("whoami with the new kubeconfig: bob"), "{out}");
    let bob = home.join("bob.kubeconfig").display().to_string();
    assert!(
        kubectl(
            &sb,
            &home,
            &["--kubeconfig", &bob, "get", "pods", "-n", "marketing"]
        )
        .status
        .success()
    );
    let denied = kubectl(
        &sb,
        &home,
        &["--kubeconfig", &bob, "get", "secrets", "-n", "marketing"],
    );
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        text(&denied.stderr).contains("User \"bob\" cannot list resource \"secrets\""),
        "{}",
        text(&denied.stderr)
    );

    // bob may not approve CSRs: preflight refuses before anything is created.
    let csrs = || text(&kubectl(&sb, &home, &["get", "csr", "-o", "name"]).stdout);
    let before = csrs();
    let out = sandbox_plugin(
        &sb,
        &home,
        "onboard",
        &[
            "--kubeconfig",
            &bob,
            "mallory",
            "-n",
            "marketing",
            "--out",
            "mallory.kubeconfig",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "preflight: you (bob) are missing permissions this run needs; nothing was changed"
        ) && stderr.contains("approve"),
        "{stderr}"
    );
    assert_eq!(csrs(), before, "no CSR was created");
    assert!(
        !kubectl(
            &sb,
            &home,
            &["get", "role", "mallory-marketing", "-n", "marketing"]
        )
        .status
        .success()
    );
    assert!(!home.join("mallory.kubeconfig").exists() && !home.join("mallory.key").exists());
    sb.shutdown();
}

/// `kubectl etcdcheck posture --root` on the real node after `kubectl encrypt`: the real etcd's and
/// kube-apiserver's flags from the manifests, the files, and live probes of the real etcd 3.6.
#[test]
fn posture_on_the_real_node_after_encrypt() {
    let tmp = tempfile::tempdir().unwrap();
    let home = bed::home(tmp.path());
    let sb = bed::real_node(tmp.path());
    ok(encrypt(&sb, &home, &["--timeout", "240s"]), "enable");
    let root = sb.root().display().to_string();
    let out = sandbox_plugin(
        &sb,
        &home,
        "etcdcheck",
        &["posture", "--root", &root, "-o", "json"],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "posture output is not JSON ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "{v:#}\n{}", text(&out.stderr));
    let checks = v["checks"].as_array().expect("checks");
    let not_pass: Vec<&Value> = checks.iter().filter(|c| c["result"] != "PASS").collect();
    assert!(
        not_pass.is_empty(),
        "every row PASS on the real node: {not_pass:#?}"
    );
    let names: Vec<&str> = checks.iter().filter_map(|c| c["check"].as_str()).collect();
    for want in [
        "etcd-client-cert-auth",
        "apiserver-encryption-provider-config",
        "apiserver-encryption-providers",
        "encryption-config-mode",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    // Each of the real etcd's listeners (client and peer) is probed live: plain HTTP, no client certificate and a
    // foreign CA refused, the serving certificate chains to the etcd CA.
    for probe in [
        "probe-plain-http",
        "probe-no-client-cert",
        "probe-foreign-ca",
        "probe-serving-cert",
    ] {
        assert_eq!(
            names
                .iter()
                .filter(|n| n.starts_with(&format!("{probe} ")))
                .count(),
            2,
            "{probe} on both listeners: {names:?}"
        );
    }
    sb.shutdown();
}

const TEAMS: usize = 4;
const PER_TEAM: usize = 25;

/// Every test object (TEAMS namespaces × PER_TEAM secrets and configmaps) with `value`, as one YAML stream.
fn team_objects(value: &str, with_namespaces: bool) -> String {
    let mut y = String::new();
    for t in 0..TEAMS {
        if with_namespaces {
            y.push_str(&format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-{t}\n---\n"
            ));
        }
        for i in 0..PER_TEAM {
            y.push_str(&format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s-{i}\n  namespace: team-{t}\nstringData:\n  v: {value}\n---\n\
                 apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c-{i}\n  namespace: team-{t}\ndata:\n  v: {value}\n---\n"
            ));
        }
    }
    y
}

/// The key (`namespace/name`) through which the state file says every object of `resource` is done (a
/// cluster-wide run saves its progress so: `done_through`).
fn done_through(state: &Path, resource: &str) -> Option<String> {
    std::fs::read_to_string(state)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| {
            v.pointer(&format!("/resources/{resource}/done_through"))
                .and_then(Value::as_str)
                .map(String::from)
        })
}

/// `kubectl reencrypt secrets configmaps` on the real server after `kubectl encrypt --resources
/// secrets,configmaps`: a run killed (SIGKILL) after its first namespaces, then `--resume` (at `--qps 20`) while a writer replaces every test object twice (`kubectl replace`): the resumed run skips what was done, nothing fails, no update of the writer is lost,
/// and etcdcheck finds every secret and configmap (the cluster's own included) on the new key and verified.
#[test]
fn reencrypt_with_concurrent_writers_and_resume_on_the_real_server() {
    let tmp = tempfile::tempdir().unwrap();
    let home = bed::home(tmp.path());
    let sb = bed::real_node(tmp.path());
    for (file, value, with_ns) in [
        ("round-0.yaml", "round-0", true),
        ("round-1.yaml", "round-1", false),
        ("round-2.yaml", "round-2", false),
    ] {
        std::fs::write(home.join(file), team_objects(value, with_ns)).unwrap();
    }
    let f = home.join("round-0.yaml").display().to_string();
    ok(
        kubectl(&sb, &home, &["create", "-f", &f]),
        "create the test objects",
    );
    ok(
        encrypt(
            &sb,
            &home,
            &[
                "--provider",
                "aesgcm",
                "--resources",
                "secrets,configmaps",
                "--timeout",
                "240s",
            ],
        ),
        "encrypt secrets and configmaps",
    );
    let key_name = first_provider_keys(&sb)[0].clone();

    // A slow run, killed once it has finished a test namespace.
    let state = home.join("reencrypt-state.json");
    let state_s = state.display().to_string();
    let mut child = Command::new(bins::plugin("reencrypt"))
        .args([
            "secrets",
            "configmaps",
            "--concurrency",
            "1",
            "--qps",
            "20",
            "--burst",
            "1",
            "--state-file",
            &state_s,
            "-o",
            "json",
        ])
        .envs(sb.env())
        .env("HOME", &home)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !done_through(&state, "secrets").is_some_and(|k| k.starts_with("team-")) {
        assert!(Instant::now() < deadline, "no test secret done");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = done_through(&state, "secrets").expect("progress saved");
    assert!(
        done.as_str() < format!("team-{}/", TEAMS - 1).as_str(),
        "killed before the end: done through {done}"
    );

    // The writer replaces every test object twice while the resumed run goes on.
    let writer = {
        let (sb_kubeconfig, home) = (sb.kubeconfig(), home.clone());
        let program = atrest_e2e::run::kubectl_program(&sb);
        std::thread::spawn(move || {
            for round in ["round-1.yaml", "round-2.yaml"] {
                let out = Command::new(&program)
                    .arg("--kubeconfig")
                    .arg(&sb_kubeconfig)
                    .arg("--cache-dir")
                    .arg(home.join("writer-cache"))
                    .args(["replace", "-f"])
                    .arg(home.join(round))
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "writer {round}: {}",
                    text(&out.stderr)
                );
            }
            Instant::now()
        })
    };
    let run_started = Instant::now();
    let out = sandbox_plugin(
        &sb,
        &home,
        "reencrypt",
        &[
            "secrets",
            "configmaps",
            "--resume",
            "--qps",
            "20",
            "--state-file",
            &state_s,
            "-o",
            "json",
        ],
    );
    let run_ended = Instant::now();
    let writer_ended = writer.join().expect("the writer");
    // Both started together; each rewrite of the run raced the writer's replaces until the first of them ended.
    eprintln!(
        "resumed run and writer overlapped for {:.1} s",
        run_ended
            .min(writer_ended)
            .duration_since(run_started)
            .as_secs_f64()
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    // What the killed run finished (every secret through `done`, in key order) is not sent again.
    assert!(
        r["totals"]["skipped"].as_u64().unwrap_or(0) >= 1,
        "nothing skipped on resume after {done}: {r:#}"
    );
    assert_eq!(r["totals"]["failed"], 0, "{r:#}");
    eprintln!(
        "conflicts met by the resumed run: {}",
        r["totals"]["conflicts"]
    );

    // No lost update: every test object holds the writer's last value.
    let all: Value = serde_json::from_str(&ok(
        kubectl(
            &sb,
            &home,
            &["get", "secrets,configmaps", "-A", "-o", "json"],
        ),
        "list",
    ))
    .unwrap();
    let mut seen = 0;
    for o in all["items"].as_array().unwrap() {
        if !o["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .starts_with("team-")
            || o["metadata"]["name"] == "kube-root-ca.crt"
        {
            continue;
        }
        seen += 1;
        let v = match o["kind"].as_str() {
            Some("Secret") => String::from_utf8(
                openssl::base64::decode_block(o["data"]["v"].as_str().unwrap()).unwrap(),
            )
            .unwrap(),
            _ => o["data"]["v"].as_str().unwrap().to_string(),
        };
        assert_eq!(v, "round-2", "{}: the writer's last write", o["metadata"]);
    }
    assert_eq!(seen, 2 * TEAMS * PER_TEAM);

    // etcd: every secret and configmap, the cluster's own included, on the new key and verified.
    let root = sb.root().display().to_string();
    for resource in ["secrets", "configmaps"] {
        let out = sandbox_plugin(
            &sb,
            &home,
            "etcdcheck",
            &[
                "-A",
                "--resource",
                resource,
                "--root",
                &root,
                "--fail-on-plaintext",
                "-o",
                "json",
            ],
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let items = v["items"].as_array().unwrap();
        assert!(
            items.len() >= TEAMS * PER_TEAM,
            "{resource}: {}",
            items.len()
        );
        for i in items {
            assert_eq!(i["storage"], "aesgcm", "{i}");
            assert_eq!(i["keyName"].as_str(), Some(key_name.as_str()), "{i}");
            assert_eq!(i["verified"], true, "{i}");
        }
    }
    sb.shutdown();
}
