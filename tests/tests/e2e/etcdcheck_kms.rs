//! `kubectl etcdcheck --kms` (issue 15 item 10) against the KMS v2 test plugin (`tests/k8s/cmd/kms-plugin`, a real
//! `k8s.io/kms/pkg/service` gRPC server on a unix socket): kms v2 values of both data-key sources that KMS v2
//! writes — the HKDF-SHA256 seed (the default since 1.29) and an encrypted AES-GCM key — are decrypted by asking
//! the plugin to unwrap the key, then decoded and verified; without `--kms` the plugin is never called; a value
//! whose key the plugin does not hold is reported as failing.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use atrest_core::config::{EncryptionConfiguration, GroupResource};
use atrest_core::storage::{self, MediaType};
use atrest_core::transform::{
    AES_GCM_KEY, EncryptedObject, EncryptionTransformers, EnvelopeService, KmsPluginService,
};
use atrest_e2e::etcd::TlsEtcd;
use atrest_e2e::kms::KmsPlugin;
use atrest_e2e::run::plugin_command;
use serde_json::{Value, json};

const PROVIDER: &str = "kms-test";
const SOCKET: &str = "/run/kms/plugin.sock";

fn secret(ns: &str, name: &str) -> Vec<u8> {
    let obj = json!({"kind":"Secret","apiVersion":"v1","metadata":{"name":name,"namespace":ns,
        "uid":"0b7e7a4c-9d0e-4b7e-8d3c-1f6f0e0e0e0e","creationTimestamp":"2024-05-01T10:00:00Z"},
        "data":{"password":"aHVudGVyMg=="},"type":"Opaque"});
    storage::encode(&obj, MediaType::Protobuf).unwrap()
}

/// A kms v2 value with an `AES_GCM_KEY` data-key source, as kube-apiserver before 1.29 (or with the KDF gate
/// off) wrote it: a random AES-256 key wrapped by the plugin, the object sealed with AES-GCM (12-byte nonce ‖
/// ciphertext ‖ tag, AD = the etcd key) (apiserver `envelope/kmsv2/envelope.go`, `aestransformer.NewGCMTransformer`).
fn aes_gcm_key_value(plugin: &dyn EnvelopeService, key: &str, plain: &[u8]) -> Vec<u8> {
    use prost::Message;
    let mut dek = [0u8; 32];
    let mut nonce = [0u8; 12];
    openssl::rand::rand_bytes(&mut dek).unwrap();
    openssl::rand::rand_bytes(&mut nonce).unwrap();
    let wrapped = plugin.encrypt(&dek).unwrap();
    let mut tag = [0u8; 16];
    let ct = openssl::symm::encrypt_aead(
        openssl::symm::Cipher::aes_256_gcm(),
        &dek,
        Some(&nonce),
        key.as_bytes(),
        plain,
        &mut tag,
    )
    .unwrap();
    let obj = EncryptedObject {
        encrypted_data: [&nonce[..], &ct, &tag].concat(),
        key_id: wrapped.key_id,
        encrypted_dek_source: wrapped.ciphertext,
        annotations: wrapped.annotations,
        encrypted_dek_source_type: AES_GCM_KEY,
    };
    [
        format!("k8s:enc:kms:v2:{PROVIDER}:").into_bytes(),
        obj.encode_to_vec(),
    ]
    .concat()
}

fn etcdcheck(etcd: &TlsEtcd, root: &Path, config: &Path, args: &[&str]) -> Output {
    plugin_command("etcdcheck")
        .args(etcd.etcdctl_args())
        .arg("--root")
        .arg(root)
        .arg("--encryption-config")
        .arg(config)
        .args(["-o", "json"])
        .args(args)
        .output()
        .expect("run kubectl-etcdcheck")
}

fn items(out: &Output) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    v["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn kms_v2_values_of_both_key_sources_decrypt_through_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let socket = root.join(SOCKET.trim_start_matches('/'));
    let _plugin = KmsPlugin::start(&socket);
    let config_text = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - kms:\n      apiVersion: v2\n      name: {PROVIDER}\n      endpoint: unix://{SOCKET}\n      timeout: 10s\n  - identity: {{}}\n"
    );
    let config_file = root.join("enc.yaml");
    atrest_core::fsutil::write_private(&config_file, config_text.as_bytes()).unwrap();

    // Write as kube-apiserver does, with the same plugin: the seed source (default) ...
    let (service, status) = KmsPluginService::connect(&socket, Duration::from_secs(10)).unwrap();
    assert_eq!(status.healthz, "ok");
    let service: Arc<dyn EnvelopeService> = Arc::new(service);
    let config = EncryptionConfiguration::from_text(&config_text, "test").unwrap();
    let t =
        EncryptionTransformers::from_config_with_kms(&config, |_| Some(service.clone())).unwrap();
    let secrets = t.for_resource(&GroupResource::core("secrets"));
    let etcd = TlsEtcd::start();
    let seed_key = "/registry/secrets/good/seed";
    let seed_value = secrets
        .write(&secret("good", "seed"), seed_key.as_bytes())
        .unwrap();
    assert!(seed_value.starts_with(format!("k8s:enc:kms:v2:{PROVIDER}:").as_bytes()));
    etcd.put(seed_key, seed_value).await;
    // ... and an encrypted AES-GCM key.
    let gcm_key = "/registry/secrets/good/aesgcmkey";
    etcd.put(
        gcm_key,
        aes_gcm_key_value(&*service, gcm_key, &secret("good", "aesgcmkey")),
    )
    .await;
    // A value whose data key was wrapped under a key ID the plugin does not hold.
    let bad_key = "/registry/secrets/bad/otherkms";
    let mut bad = aes_gcm_key_value(&*service, bad_key, &secret("bad", "otherkms"));
    {
        use prost::Message;
        let prefix = format!("k8s:enc:kms:v2:{PROVIDER}:").len();
        let mut obj = EncryptedObject::decode(&bad[prefix..]).unwrap();
        obj.key_id = "retired-kms-key".into();
        bad.truncate(prefix);
        bad.extend(obj.encode_to_vec());
    }
    etcd.put(bad_key, bad).await;
    drop(t);

    // Without --kms: classified, not verified, the plugin untouched.
    let out = etcdcheck(&etcd, root, &config_file, &["-n", "good"]);
    let listed = items(&out);
    assert_eq!(listed.len(), 2, "{listed:?}");
    for i in &listed {
        assert_eq!(i["storage"], "kmsv2", "{i}");
        assert_eq!(i["keyName"], PROVIDER, "{i}");
        assert_ne!(i["verified"], true, "verified without --kms: {i}");
    }

    // With --kms: both sources decrypt, decode and match their keys.
    let out = etcdcheck(&etcd, root, &config_file, &["-n", "good", "--kms"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = items(&out);
    assert_eq!(listed.len(), 2, "{listed:?}");
    for i in &listed {
        assert_eq!(i["storage"], "kmsv2", "{i}");
        assert_eq!(i["verified"], true, "{i}");
        assert!(i["error"].is_null(), "{i}");
    }

    // A key the plugin does not hold: reported, exit 2.
    let out = etcdcheck(&etcd, root, &config_file, &["-n", "bad", "--kms"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = items(&out);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let err = listed[0]["error"].as_str().unwrap_or_default();
    assert!(
        listed[0]["verified"] != true && err.contains("retired-kms-key"),
        "{:?}",
        listed[0]
    );

    // A plugin that is not there: --kms fails up front, naming the provider and the socket.
    drop(_plugin);
    let out = etcdcheck(&etcd, root, &config_file, &["-n", "good", "--kms"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(PROVIDER) && stderr.contains("plugin.sock"),
        "{stderr}"
    );
}
