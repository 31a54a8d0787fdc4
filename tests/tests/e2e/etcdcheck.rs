//! `kubectl etcdcheck` end to end: the built binary against a real TLS etcd.

use std::path::Path;
use std::process::Output;

use atrest_e2e::etcd::TlsEtcd;
use atrest_e2e::run::plugin_command;
use serde_json::{Value, json};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(etcd: &TlsEtcd, args: &[&str]) -> Run {
    let out: Output = plugin_command("etcdcheck")
        .args(etcd.etcdctl_args())
        .args(args)
        .output()
        .expect("run kubectl-etcdcheck");
    Run {
        code: out.status.code().expect("exit code"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json_of(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        )
    })
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
    serde_json::to_vec(
        &json!({"kind":"Secret","apiVersion":"v1","metadata":{"name":name,"namespace":ns,
        "uid":"0b7e7a4c-9d0e-4b7e-8d3c-1f6f0e0e0e0e","creationTimestamp":"2024-05-01T10:00:00Z"},
        "data":{"password":"aHVudGVyMg=="},"type":"Opaque"}),
    )
    .unwrap()
}

#[tokio::test]
async fn plaintext_and_garbage_values() {
    let etcd = TlsEtcd::start();
    etcd.put(
        "/registry/secrets/default/plain-json",
        json_secret("default", "plain-json"),
    )
    .await;
    etcd.put(
        "/registry/secrets/default/moved",
        json_secret("other", "moved"),
    )
    .await;
    etcd.put(
        "/registry/secrets/kube-system/garbage",
        b"\x00\x01not a kubernetes value".to_vec(),
    )
    .await;
    etcd.put(
        "/registry/configmaps/default/ignored",
        json_secret("default", "ignored"),
    )
    .await;

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
    assert!(
        moved["error"].as_str().unwrap().contains("other/moved"),
        "{moved}"
    );

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
    assert!(
        !r.stdout.contains("aHVudGVyMg"),
        "a value leaked into the output"
    );

    // One object by name; table output.
    let r = run(&etcd, &["plain-json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first = r.stdout.lines().next().unwrap();
    assert!(
        first.starts_with("NAMESPACE") && first.contains("STATUS"),
        "{}",
        r.stdout
    );
    let row = r.stdout.lines().nth(1).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        ["default", "plain-json", "identity", "-", "ok"],
        "{}",
        r.stdout
    );

    // --fail-on-plaintext turns plaintext into a finding.
    let r = run(&etcd, &["plain-json", "--fail-on-plaintext"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("plaintext"), "{}", r.stderr);

    // YAML parses to the same items.
    let r = run(&etcd, &["-A", "-o", "yaml"]);
    assert_eq!(r.code, 2);
    let y: Value =
        serde_saphyr::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{}", r.stdout));
    assert_eq!(y["items"].as_array().unwrap().len(), 3);
    assert_eq!(y["summary"]["total"], 3);

    // Paging: many keys, small pages, one revision; -v logs each round trip but never values.
    for i in 0..23 {
        let name = format!("paged-{i:02}");
        etcd.put(
            &format!("/registry/secrets/paged/{name}"),
            json_secret("paged", &name),
        )
        .await;
    }
    let r = run(
        &etcd,
        &["-n", "paged", "-o", "json", "--page-size", "4", "-v"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json_of(&r);
    let names: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..23).map(|i| format!("paged-{i:02}")).collect();
    assert_eq!(names, want);
    assert_eq!(r.stderr.matches("etcd range").count(), 6, "{}", r.stderr);
    assert!(
        !r.stderr.contains("aHVudGVyMg"),
        "a value leaked into the log"
    );

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

    // Missing certificates under --root.
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = plugin_command("etcdcheck");
    let out = cmd
        .args(["--endpoints", &etcd.endpoint(), "--root"])
        .arg(empty.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("etc/kubernetes/pki/etcd/ca.crt: file not found; pass --cacert"),
        "{err}"
    );

    // --root pointing at the node directory works with the kubeadm default paths, and the
    // ETCDCTL_* variables are honoured.
    let mut cmd = plugin_command("etcdcheck");
    let out = cmd
        .env("ETCDCTL_ENDPOINTS", etcd.endpoint())
        .arg("--root")
        .arg(etcd.root())
        .arg("-A")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

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
    let out = run_with(&etcd, &wrong_ca, &files.cert, &files.key);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("--cacert"), "{}", out.stderr);

    // A client certificate from another CA is refused by etcd.
    let key =
        atrest_core::pki::PrivateKey::generate(atrest_core::pki::KeyAlgorithm::EcdsaP256).unwrap();
    let cert = ca
        .issue(
            &key,
            "intruder",
            &[],
            &atrest_core::pki::LeafProfile::Client,
            atrest_core::pki::LEAF_VALIDITY,
        )
        .unwrap();
    let (c, k) = (other.path().join("c.crt"), other.path().join("c.key"));
    atrest_core::pki::write_cert_and_key(&cert, &key, &c, &k).unwrap();
    let out = run_with(&etcd, &files.ca, &c, &k);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("error: etcd at https://127.0.0.1:"),
        "{}",
        out.stderr
    );

    // A certificate file that is not PEM.
    std::fs::write(&c, b"not pem").unwrap();
    let out = run_with(&etcd, &files.ca, &c, &k);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("c.crt: not a PEM certificate"),
        "{}",
        out.stderr
    );

    // Bad flags exit 1 too.
    let out = plugin_command("etcdcheck")
        .args(["-A", "-n", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = plugin_command("etcdcheck")
        .args(["x", "-A"])
        .args(etcd.etcdctl_args())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // --help exits 0 and shows examples.
    let out = plugin_command("etcdcheck").arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Examples:") && help.contains("`default`"),
        "{help}"
    );
}

fn run_with(etcd: &TlsEtcd, ca: &Path, cert: &Path, key: &Path) -> Run {
    let out = plugin_command("etcdcheck")
        .args([
            "--endpoints",
            &etcd.endpoint(),
            "--dial-timeout",
            "2s",
            "--cacert",
        ])
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

// ---------------------------------------------------------------------------------------------
// Encrypted values

/// 32-byte keys, base64 (fixed so failures are reproducible).
const K_GCM1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const K_CBC1: &str = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=";
const K_CBC2: &str = "YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI=";
const K_BOX2: &str = "Y2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2M=";
const K_BOX3: &str = "ZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGRkZGQ=";
const K_BOX3_OTHER: &str = "ZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWVlZWU=";

/// The configuration etcdcheck reads with.
fn enc_yaml() -> String {
    format!(
        "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources:
  - secrets
  providers:
  - aesgcm:
      keys:
      - name: key1
        secret: {K_GCM1}
  - aescbc:
      keys:
      - name: key1
        secret: {K_CBC1}
      - name: key2
        secret: {K_CBC2}
  - secretbox:
      keys:
      - name: key2
        secret: {K_BOX2}
      - name: key3
        secret: {K_BOX3}
  - kms:
      apiVersion: v2
      name: kms-provider
      endpoint: unix:///var/run/kms-provider.sock
  - identity: {{}}
"
    )
}

/// Upstream `oldSecret` (kubernetes/kubernetes test/integration/controlplane/transformation/transformation_test.go):
/// a protobuf Secret `secret-encryption-test/test-secret`.
const OLD_SECRET_B64: &str = "azhzAAoMCgJ2MRIGU2VjcmV0En4KXwoLdGVzdC1zZWNyZXQSABoWc2VjcmV0LWVuY3J5cHRpb24tdGVzdCIAKiQ3MmRmZTVjNC0xNDU2LTQyMzktYjFlZC1hZGZmYTJmMWY3YmEyADgAQggI5Jy/7wUQAHoAEhMKB2FwaV9rZXkSCPCfpJfwn5C8GgZPcGFxdWUaACIA";
/// Upstream kms v2 value (kmsv2_transformation_test.go `testKMSv2ProviderLegacyData`, AES_GCM_KEY source).
const KMSV2_B64: &str = "azhzOmVuYzprbXM6djI6a21zLXByb3ZpZGVyOgqKA7DGmdwBypo7AAAAAIyAC/AdS297MAu11cWDGrUOz9dWZe3pgrjfRe1Na88hFcALCYJXaCCejxtcOQikgAJt9FAUeu73jBqEbjX9R4N2Iw7UDINZd0jhHL8Sxhu6i3IIgnr422CnXVCx5iFMYo24SRpFTKCuK74VUo6bBjT2ULY7n6aNlrIBoY7kYd8vkHXeNprCzbtiiCsWmD3pA93XSHZDCuWMdgV+CqtYX06ahHdwqBMPglk5eO2JFbnh6qaQxmBSCjAE8qbRpYUKa/TP5HVsHCpbQRKg2fK1IYLkAKRMJyb1cGxuIuA9DFvhsFU5NxF82k5rwz3C8oU8Nx4BuKn0idt+4YzhHwVCQFfKvFMK6IGbTFmGJPYB3Z3NHekCXfRp2vrCDlVyxUTKvWRiE77+HMXhhMzfJpNqHksEugYWhQ4fygiQBhFLnVsNVuhF1SiRDG7UEJxIHNydWJTIgTUbjLt6+Uhvex0RMpBG59hoqKH2jIx2yrIx+SOCo743ZWTZFPMG/7ffq2kSATEaLGdhZkl2d1QwQVNvS2RaL0QxTDJTbEg3M0xVTWo1cWEzaHJvbGpmUzUxd2M9IjIKG2xvY2FsLWtlay5rbXMua3ViZXJuZXRlcy5pbxITZW5jcnlwdGVkLWxvY2FsLWtlaw==";

fn b64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

#[tokio::test]
async fn every_storage_kind_decrypts_and_verifies() {
    let etcd = TlsEtcd::start();
    let dir = tempfile::tempdir().unwrap();
    let enc = dir.path().join("enc.yaml");
    std::fs::write(&enc, enc_yaml()).unwrap();
    let k = |name: &str| format!("/registry/secrets/enc/{name}");
    let plain = |name: &str| json_secret("enc", name);

    let old_key = "/registry/secrets/secret-encryption-test/test-secret";
    let old = b64(OLD_SECRET_B64);
    // Values of every kind.
    etcd.put(old_key, old.clone()).await; // identity, protobuf (published vector)
    etcd.put(&k("plain"), plain("plain")).await; // identity, JSON
    etcd.put(
        &k("gcm"),
        atrest_e2e::run::seal("aesgcm", "key1", K_GCM1, &k("gcm"), &plain("gcm")),
    )
    .await;
    let gcm_proto_key = "/registry/secrets/secret-encryption-test/test-secret-gcm";
    etcd.put(
        &k("cbc"),
        atrest_e2e::run::seal("aescbc", "key1", K_CBC1, &k("cbc"), &plain("cbc")),
    )
    .await;
    etcd.put(
        &k("cbc-stale"),
        atrest_e2e::run::seal(
            "aescbc",
            "key2",
            K_CBC2,
            &k("cbc-stale"),
            &plain("cbc-stale"),
        ),
    )
    .await;
    etcd.put(
        &k("box"),
        atrest_e2e::run::seal("secretbox", "key2", K_BOX2, &k("box"), &plain("box")),
    )
    .await;
    // Findings.
    etcd.put(
        &k("wrong-key"),
        atrest_e2e::run::seal(
            "secretbox",
            "key3",
            K_BOX3_OTHER,
            &k("wrong-key"),
            &plain("wrong-key"),
        ),
    )
    .await;
    let mut tampered =
        atrest_e2e::run::seal("aesgcm", "key1", K_GCM1, &k("tampered"), &plain("tampered"));
    *tampered.last_mut().unwrap() ^= 0x01;
    etcd.put(&k("tampered"), tampered).await;
    etcd.put(
        &k("unknown-key"),
        atrest_e2e::run::seal(
            "aescbc",
            "key9",
            K_CBC1,
            &k("unknown-key"),
            &plain("unknown-key"),
        ),
    )
    .await;
    // An aesgcm value copied to another key: the AD (the key) no longer matches.
    etcd.put(
        &k("copied"),
        atrest_e2e::run::seal("aesgcm", "key1", K_GCM1, &k("gcm"), &plain("gcm")),
    )
    .await;
    // An aescbc value copied to another key decrypts (no AD) but names another object.
    etcd.put(
        &k("cbc-copied"),
        atrest_e2e::run::seal("aescbc", "key1", K_CBC1, &k("cbc"), &plain("cbc")),
    )
    .await;
    etcd.put(&k("garbage"), b"k8s:enc:rot13:v1:key1:xyz".to_vec())
        .await;
    // protobuf inside aesgcm, bound to its key.
    etcd.put(
        gcm_proto_key,
        atrest_e2e::run::seal("aesgcm", "key1", K_GCM1, gcm_proto_key, &old),
    )
    .await;

    let enc_arg = enc.to_str().unwrap();
    let r = run(&etcd, &["-A", "-o", "json", "--encryption-config", enc_arg]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let v = json_of(&r);
    let check = |name: &str, storage: &str, key_name: Value, verified: Value| {
        let it = item(&v, &k(name));
        assert_eq!(it["storage"], storage, "{name}: {it}");
        assert_eq!(it["keyName"], key_name, "{name}: {it}");
        assert_eq!(it["verified"], verified, "{name}: {it}");
        it.clone()
    };
    let ok = check("plain", "identity", Value::Null, json!(true));
    assert_eq!(ok["encoding"], "json");
    assert_eq!(ok["error"], Value::Null);
    let ok = check("gcm", "aesgcm", json!("key1"), json!(true));
    assert_eq!(ok["encoding"], "json");
    check("cbc", "aescbc", json!("key1"), json!(true));
    check("cbc-stale", "aescbc", json!("key2"), json!(true));
    check("box", "secretbox", json!("key2"), json!(true));
    let bad = check("wrong-key", "secretbox", json!("key3"), json!(false));
    assert!(bad["error"].as_str().unwrap().contains("key3"), "{bad}");
    check("tampered", "aesgcm", json!("key1"), json!(false));
    check("copied", "aesgcm", json!("key1"), json!(false));
    let moved = check("cbc-copied", "aescbc", json!("key1"), json!(false));
    assert!(
        moved["error"].as_str().unwrap().contains("enc/cbc"),
        "{moved}"
    );
    let unknown = check("unknown-key", "aescbc", json!("key9"), Value::Null);
    assert!(
        unknown["error"].as_str().unwrap().contains("key9"),
        "{unknown}"
    );
    let garbage = check("garbage", "unknown", Value::Null, json!(false));
    assert!(garbage["error"].is_string());

    let old_item = item(&v, old_key);
    assert_eq!(old_item["storage"], "identity");
    assert_eq!(old_item["encoding"], "protobuf");
    assert_eq!(old_item["verified"], true, "{old_item}");
    // The vector renamed under another key does not verify: the object says test-secret.
    let p = item(&v, gcm_proto_key);
    assert_eq!(p["storage"], "aesgcm");
    assert_eq!(p["encoding"], "protobuf");
    assert_eq!(p["verified"], false, "{p}");
    assert!(p["error"].as_str().unwrap().contains("test-secret"), "{p}");

    let s = &v["summary"];
    assert_eq!(s["total"], 13);
    assert_eq!(s["findings"], 7, "{s}");
    assert_eq!(s["byKey"]["aescbc:key2"], 1);
    assert!(s["stale"].as_u64().unwrap() >= 2, "{s}");

    // Without the configuration: encrypted values are unverified (null), not findings.
    let r = run(&etcd, &["-n", "enc", "-o", "json"]);
    let v = json_of(&r);
    assert_eq!(item(&v, &k("gcm"))["verified"], Value::Null);
    assert_eq!(item(&v, &k("tampered"))["verified"], Value::Null);
    assert!(r.stderr.contains("--encryption-config"), "{}", r.stderr);
    assert_eq!(r.code, 2, "garbage is still a finding");

    // Only good values in a namespace → exit 0; table shows storage and key columns.
    let r = run(&etcd, &["gcm", "-n", "enc", "--encryption-config", enc_arg]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let row: Vec<&str> = r
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row, ["enc", "gcm", "aesgcm", "key1", "ok"], "{}", r.stdout);
    // Not the first provider: readable, but the apiserver would rewrite it.
    let r = run(&etcd, &["box", "-n", "enc", "--encryption-config", enc_arg]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("ok (stale"), "{}", r.stdout);

    // The published kms v2 value, under its own prefix: kmsv2, provider name, cannot be verified
    // without the KMS plugin (null), not a finding.
    let kms_key = "/43da1478-5e9c-4ef3-a92a-2b19d540c8a5/registry/secrets/kms-v2-legacy-data/a";
    etcd.put(kms_key, b64(KMSV2_B64)).await;
    let r = run(
        &etcd,
        &[
            "-A",
            "-o",
            "json",
            "--prefix",
            "/43da1478-5e9c-4ef3-a92a-2b19d540c8a5/registry",
            "--encryption-config",
            enc_arg,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = json_of(&r);
    let kv = item(&v, kms_key);
    assert_eq!(kv["storage"], "kmsv2");
    assert_eq!(kv["keyName"], "kms-provider");
    assert_eq!(kv["verified"], Value::Null);
    assert_eq!(kv["namespace"], "kms-v2-legacy-data");

    // The default configuration comes from the kube-apiserver manifest under --root.
    let manifests = etcd.root().join("etc/kubernetes/manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let enc_dir = etcd.root().join("etc/kubernetes/enc");
    std::fs::create_dir_all(&enc_dir).unwrap();
    std::fs::write(enc_dir.join("enc.yaml"), enc_yaml()).unwrap();
    std::fs::write(
        manifests.join("kube-apiserver.yaml"),
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - command:\n    - kube-apiserver\n    - --encryption-provider-config=/etc/kubernetes/enc/enc.yaml\n    - --etcd-servers=https://127.0.0.1:2379\n    volumeMounts:\n    - mountPath: /etc/kubernetes/enc\n      name: encryption-config\n      readOnly: true\n  volumes:\n  - hostPath:\n      path: /etc/kubernetes/enc\n      type: DirectoryOrCreate\n    name: encryption-config\n",
    )
    .unwrap();
    let out = plugin_command("etcdcheck")
        .args(["--endpoints", &etcd.endpoint(), "--root"])
        .arg(etcd.root())
        .args(["gcm", "-n", "enc", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["items"][0]["verified"], true, "{v}");

    // A broken configuration file is exit 1 naming the file.
    std::fs::write(&enc, "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: key1\n        secret: dG9vc2hvcnQ=\n").unwrap();
    let r = run(&etcd, &["-A", "--encryption-config", enc_arg]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("enc.yaml"), "{}", r.stderr);
}
