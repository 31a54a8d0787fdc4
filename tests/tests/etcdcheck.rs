//! `kubectl etcdcheck` end to end: the built binary against a real TLS etcd.

use std::path::Path;
use std::process::{Command, Output};

use atrest_e2e::bins;
use atrest_e2e::etcd::TlsEtcd;
use serde_json::{Value, json};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(etcd: &TlsEtcd, args: &[&str]) -> Run {
    let out: Output = Command::new(bins::plugin("etcdcheck"))
        .args(etcd.etcdctl_args())
        .args(args)
        .env_remove("ETCDCTL_ENDPOINTS")
        .env_remove("ETCDCTL_CACERT")
        .env_remove("ETCDCTL_CERT")
        .env_remove("ETCDCTL_KEY")
        .output()
        .expect("run kubectl-etcdcheck");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json_of(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", r.stdout, r.stderr))
}

fn item<'a>(v: &'a Value, key: &str) -> &'a Value {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == key)
        .unwrap_or_else(|| panic!("no item {key} in {v:#}"))
}

fn json_secret(ns: &str, name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"kind":"Secret","apiVersion":"v1","metadata":{"name":name,"namespace":ns,
        "uid":"0b7e7a4c-9d0e-4b7e-8d3c-1f6f0e0e0e0e","creationTimestamp":"2024-05-01T10:00:00Z"},
        "data":{"password":"aHVudGVyMg=="},"type":"Opaque"}))
    .unwrap()
}

#[tokio::test]
async fn plaintext_and_garbage_values() {
    let etcd = TlsEtcd::start();
    etcd.put("/registry/secrets/default/plain-json", json_secret("default", "plain-json")).await;
    etcd.put("/registry/secrets/default/moved", json_secret("other", "moved")).await;
    etcd.put("/registry/secrets/kube-system/garbage", b"\x00\x01not a kubernetes value".to_vec()).await;
    etcd.put("/registry/configmaps/default/ignored", json_secret("default", "ignored")).await;

    // -n default: only the default namespace, plaintext JSON verified; the moved value fails.
    let r = run(&etcd, &["-o", "json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let v = json_of(&r);
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        item(&v, "/registry/secrets/default/plain-json"),
        &json!({"key":"/registry/secrets/default/plain-json","resource":"secrets","namespace":"default",
            "name":"plain-json","storage":"identity","encoding":"json","keyName":null,"verified":true,"error":null})
    );
    let moved = item(&v, "/registry/secrets/default/moved");
    assert_eq!(moved["verified"], false);
    assert!(moved["error"].as_str().unwrap().contains("other/moved"), "{moved}");

    // -A: the garbage value is unknown with an error; the JSON never contains a value.
    let r = run(&etcd, &["-A", "-o", "json"]);
    assert_eq!(r.code, 2);
    let v = json_of(&r);
    let g = item(&v, "/registry/secrets/kube-system/garbage");
    assert_eq!(g["storage"], "unknown");
    assert_eq!(g["verified"], false);
    assert_eq!(g["encoding"], Value::Null);
    assert!(g["error"].is_string());
    assert_eq!(v["summary"]["total"], 3);
    assert_eq!(v["summary"]["findings"], 2);
    assert!(!r.stdout.contains("aHVudGVyMg"), "a value leaked into the output");

    // One object by name; table output.
    let r = run(&etcd, &["plain-json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first = r.stdout.lines().next().unwrap();
    assert!(first.starts_with("NAMESPACE") && first.contains("STATUS"), "{}", r.stdout);
    let row = r.stdout.lines().nth(1).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells, ["default", "plain-json", "identity", "-", "ok"], "{}", r.stdout);

    // --fail-on-plaintext turns plaintext into a finding.
    let r = run(&etcd, &["plain-json", "--fail-on-plaintext"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("plaintext"), "{}", r.stderr);

    // YAML parses to the same items.
    let r = run(&etcd, &["-A", "-o", "yaml"]);
    assert_eq!(r.code, 2);
    let y: Value = serde_saphyr::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{}", r.stdout));
    assert_eq!(y["items"].as_array().unwrap().len(), 3);
    assert_eq!(y["summary"]["total"], 3);

    // An empty namespace: nothing found, exit 0, and the JSON/YAML is still well formed.
    let r = run(&etcd, &["-n", "empty", "-o", "yaml"]);
    assert_eq!(r.code, 0);
    let y: Value = serde_saphyr::from_str(&r.stdout).unwrap();
    assert_eq!(y["items"], json!([]));
}

#[tokio::test]
async fn certificate_problems_exit_1_with_what_to_fix() {
    let etcd = TlsEtcd::start();
    let files = etcd.client_files();
    let plugin = bins::plugin("etcdcheck");
    let base = |cmd: &mut Command| {
        cmd.env_remove("ETCDCTL_ENDPOINTS")
            .env_remove("ETCDCTL_CACERT")
            .env_remove("ETCDCTL_CERT")
            .env_remove("ETCDCTL_KEY");
    };

    // Missing certificates under --root.
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(&plugin);
    base(&mut cmd);
    let out = cmd
        .args(["--endpoints", &etcd.endpoint(), "--root"])
        .arg(empty.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("etc/kubernetes/pki/etcd/ca.crt: file not found; pass --cacert"), "{err}");

    // --root pointing at the node directory works with the kubeadm default paths, and the
    // ETCDCTL_* variables are honoured.
    let mut cmd = Command::new(&plugin);
    base(&mut cmd);
    let out = cmd
        .env("ETCDCTL_ENDPOINTS", etcd.endpoint())
        .arg("--root")
        .arg(etcd.root())
        .arg("-A")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    // A CA that did not sign etcd's certificate.
    let other = tempfile::tempdir().unwrap();
    let ca = atrest_core::pki::CertificateAuthority::new_self_signed(
        "etcd-ca",
        atrest_core::pki::KeyAlgorithm::EcdsaP256,
        atrest_core::pki::CA_VALIDITY,
    )
    .unwrap();
    let wrong_ca = other.path().join("ca.crt");
    std::fs::write(&wrong_ca, ca.cert.to_pem().unwrap()).unwrap();
    let out = run_with(&plugin, &etcd, &wrong_ca, &files.cert, &files.key);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("--cacert"), "{}", out.stderr);

    // A client certificate from another CA is refused by etcd.
    let key = atrest_core::pki::PrivateKey::generate(atrest_core::pki::KeyAlgorithm::EcdsaP256).unwrap();
    let cert = ca
        .issue(&key, "intruder", &[], &atrest_core::pki::LeafProfile::Client, atrest_core::pki::LEAF_VALIDITY)
        .unwrap();
    let (c, k) = (other.path().join("c.crt"), other.path().join("c.key"));
    atrest_core::pki::write_cert_and_key(&cert, &key, &c, &k).unwrap();
    let out = run_with(&plugin, &etcd, &files.ca, &c, &k);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("error: etcd at https://127.0.0.1:"), "{}", out.stderr);

    // A certificate file that is not PEM.
    std::fs::write(&c, b"not pem").unwrap();
    let out = run_with(&plugin, &etcd, &files.ca, &c, &k);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("c.crt: not a PEM certificate"), "{}", out.stderr);

    // Bad flags exit 1 too.
    let out = Command::new(&plugin).args(["-A", "-n", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(&plugin).args(["x", "-A"]).args(etcd.etcdctl_args()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    // --help exits 0 and shows examples.
    let out = Command::new(&plugin).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Examples:") && help.contains("`default`"), "{help}");
}

fn run_with(plugin: &Path, etcd: &TlsEtcd, ca: &Path, cert: &Path, key: &Path) -> Run {
    let out = Command::new(plugin)
        .env_remove("ETCDCTL_ENDPOINTS")
        .args(["--endpoints", &etcd.endpoint(), "--dial-timeout", "2s", "--cacert"])
        .arg(ca)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .arg("-A")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
