//! Storage envelope and Secret codec against the upstream `oldSecret` vector and hand-built bytes.

use atrest_core::storage::{
    self, MediaType, ObjectSummary, StorageEnvelope, StorageError, decode, encode, normalize,
};
use base64::Engine as _;
use serde_json::json;

use crate::support::ld;

/// `oldSecret` from kubernetes/kubernetes
/// `test/integration/controlplane/transformation/transformation_test.go`: a Secret stored by a
/// 2019 kube-apiserver, including the since-removed ObjectMeta field 15 (`clusterName`, empty).
const OLD_SECRET_B64: &str = "azhzAAoMCgJ2MRIGU2VjcmV0En4KXwoLdGVzdC1zZWNyZXQSABoWc2VjcmV0LWVuY3J5cHRpb24tdGVzdCIAKiQ3MmRmZTVjNC0xNDU2LTQyMzktYjFlZC1hZGZmYTJmMWY3YmEyADgAQggI5Jy/7wUQAHoAEhMKB2FwaV9rZXkSCPCfpJfwn5C8GgZPcGFxdWUaACIA";
/// `oldSecretVal` from the same file.
const OLD_SECRET_VAL: &[u8] = b"\xf0\x9f\xa4\x97\xf0\x9f\x90\xbc";

fn old_secret() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(OLD_SECRET_B64)
        .unwrap()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn old_secret_envelope_decodes_to_documented_fields() {
    let bytes = old_secret();
    let env = StorageEnvelope::decode(&bytes).unwrap();
    assert_eq!(env.api_version, "v1");
    assert_eq!(env.kind, "Secret");
    assert_eq!(env.content_encoding, "");
    assert_eq!(env.content_type, "");
    assert_eq!(env.raw.len(), 0x7e);
    // The envelope re-encodes byte-identically: all four Unknown fields are written.
    assert_eq!(env.encode(), bytes);
    assert!(bytes.ends_with(&[0x1a, 0x00, 0x22, 0x00]));
    // Debug never shows the raw message.
    let dbg = format!("{env:?}");
    assert!(
        dbg.contains("raw_len: 126") && !dbg.contains("api_key"),
        "{dbg}"
    );
}

#[test]
fn old_secret_decodes_to_json() {
    let v = decode(&old_secret()).unwrap();
    let expected = json!({
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {
            "name": "test-secret",
            "namespace": "secret-encryption-test",
            "uid": "72dfe5c4-1456-4239-b1ed-adffa2f1f7ba",
            "creationTimestamp": "2019-12-10T16:57:08Z"
        },
        "data": {"api_key": base64::engine::general_purpose::STANDARD.encode(OLD_SECRET_VAL)},
        "type": "Opaque"
    });
    assert_eq!(v, expected);
    // Key order is Go's struct order.
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["kind", "apiVersion", "metadata", "data", "type"]);
}

/// Re-encoding gives the original bytes except the obsolete ObjectMeta field 15 (`7a 00`),
/// which current kube-apiservers no longer have and therefore never write: the decoder skips
/// it and the encoder drops it, shrinking the ObjectMeta and Secret lengths by 2.
#[test]
fn old_secret_reencodes_identically_modulo_field_15() {
    let original = old_secret();
    let json = decode(&original).unwrap();
    let reencoded = encode(&json, MediaType::Protobuf).unwrap();

    let mut expected = original.clone();
    let pos = expected
        .windows(4)
        .position(|w| w == [0x10, 0x00, 0x7a, 0x00])
        .unwrap()
        + 2;
    expected.drain(pos..pos + 2);
    // Secret length at offset 19 (0x7e), ObjectMeta length at offset 21 (0x5f).
    assert_eq!((expected[19], expected[21]), (0x7e, 0x5f));
    expected[19] -= 2;
    expected[21] -= 2;
    assert_eq!(reencoded, expected);
    // And decoding the re-encoded bytes gives the same JSON.
    assert_eq!(decode(&reencoded).unwrap(), json);
}

#[test]
fn hand_built_secret_vector() {
    let obj = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "demo",
            "namespace": "default",
            "uid": "u1",
            "resourceVersion": "",
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"b": "2", "a": "1"}
        },
        "immutable": false,
        "data": {"password": "MTIzNDU2", "username": "bXlhcHA="},
        "type": "Opaque"
    });
    // 2024-05-01T10:00:00Z = 1714557600 = 0x6632_12a0; 7-bit groups low first:
    // 0x20, 0x25, 0x48, 0x31, 0x06 -> varint a0 a5 c8 b1 06.
    let ts = [0x08, 0xa0, 0xa5, 0xc8, 0xb1, 0x06, 0x10, 0x00];
    let meta = cat(&[
        &ld(1, b"demo"),
        &ld(2, b""),
        &ld(3, b"default"),
        &ld(4, b""),
        &ld(5, b"u1"),
        &ld(6, b""),
        &[0x38, 0x00], // generation 0
        &ld(8, &ts),
        &ld(11, &cat(&[&ld(1, b"a"), &ld(2, b"1")])),
        &ld(11, &cat(&[&ld(1, b"b"), &ld(2, b"2")])),
    ]);
    let secret = cat(&[
        &ld(1, &meta),
        &ld(2, &cat(&[&ld(1, b"password"), &ld(2, b"123456")])),
        &ld(2, &cat(&[&ld(1, b"username"), &ld(2, b"myapp")])),
        &ld(3, b"Opaque"),
        &[0x28, 0x00], // immutable: *bool set to false is written
    ]);
    let expected = cat(&[
        b"k8s\0",
        &ld(1, &cat(&[&ld(1, b"v1"), &ld(2, b"Secret")])),
        &ld(2, &secret),
        &[0x1a, 0x00, 0x22, 0x00],
    ]);
    let got = encode(&obj, MediaType::Protobuf).unwrap();
    assert_eq!(got, expected);
    let back = decode(&got).unwrap();
    assert_eq!(back, normalize(&obj).unwrap());
    assert_eq!(back["immutable"], json!(false));
    assert_eq!(back["metadata"].get("resourceVersion"), None);
}

#[test]
fn secret_json_storage_matches_go_encoder() {
    let obj = json!({
        "type": "Opaque",
        "data": {"z": "eg==", "a<b": "YQ=="},
        "metadata": {"namespace": "default", "name": "demo", "creationTimestamp": "2024-05-01T12:00:00+02:00"},
        "kind": "Secret",
        "apiVersion": "v1"
    });
    let got = encode(&obj, MediaType::Json).unwrap();
    assert_eq!(
        String::from_utf8(got).unwrap(),
        concat!(
            r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"demo","namespace":"default","#,
            r#""creationTimestamp":"2024-05-01T10:00:00Z"},"data":{"a\u003cb":"YQ==","z":"eg=="},"#,
            r#""type":"Opaque"}"#,
            "\n"
        )
    );
}

#[test]
fn unknown_and_mistyped_fields_are_errors_naming_them() {
    let e = encode(
        &json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"x","nmespace":"y"}}),
        MediaType::Protobuf,
    )
    .unwrap_err();
    assert!(matches!(e, StorageError::UnknownField { .. }));
    assert!(e.to_string().contains("metadata.nmespace"), "{e}");

    let e = encode(
        &json!({"apiVersion":"v1","kind":"Secret","data":{"k":"not base64!!"}}),
        MediaType::Protobuf,
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("data[k]") && !msg.contains("not base64!!"),
        "{msg}"
    );

    let e = encode(&json!({"apiVersion":"v9","kind":"Secret"}), MediaType::Json).unwrap_err();
    assert!(matches!(e, StorageError::UnknownKind { .. }), "{e}");
}

#[test]
fn summary_of_protobuf_and_json_secret() {
    let s = ObjectSummary::from_stored(&old_secret()).unwrap();
    assert_eq!(s.encoding, MediaType::Protobuf);
    assert_eq!((s.api_version.as_str(), s.kind.as_str()), ("v1", "Secret"));
    assert_eq!(s.name, "test-secret");
    assert_eq!(s.namespace, "secret-encryption-test");
    assert_eq!(s.uid, "72dfe5c4-1456-4239-b1ed-adffa2f1f7ba");
    assert_eq!(
        s.creation_timestamp.as_deref(),
        Some("2019-12-10T16:57:08Z")
    );
    assert_eq!(s.secret_type.as_deref(), Some("Opaque"));
    assert_eq!(s.data_keys, ["api_key"]);
    assert!(!format!("{s:?}").contains("8J+kl"));

    let json = encode(&decode(&old_secret()).unwrap(), MediaType::Json).unwrap();
    let j = ObjectSummary::from_stored(&json).unwrap();
    assert_eq!(j.encoding, MediaType::Json);
    assert_eq!(
        ObjectSummary {
            encoding: MediaType::Protobuf,
            ..j
        },
        s
    );

    let yaml = b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: web1\n  labels: {app: web}\ndata:\n  k: dg==\n";
    let y = ObjectSummary::from_stored(yaml).unwrap();
    assert_eq!((y.encoding, y.name.as_str()), (MediaType::Yaml, "web1"));
    assert_eq!(y.labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(y.data_keys, ["k"]);
}

#[test]
fn encrypted_and_garbage_values_are_reported_not_decoded() {
    let e = ObjectSummary::from_stored(b"k8s:enc:aescbc:v1:key1:\x00\x01secret").unwrap_err();
    assert!(
        matches!(&e, StorageError::Encrypted { prefix } if prefix == "k8s:enc:aescbc:v1:key1"),
        "{e}"
    );
    assert!(ObjectSummary::from_stored(b"").is_err());
    assert!(ObjectSummary::from_stored(b"k8s\x01abc").is_err());
    assert!(ObjectSummary::from_stored(b"k8s\0\x0a\x05ab").is_err());
    assert!(storage::decode(b"{\"apiVersion\":").is_err());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
    #[test]
    fn arbitrary_bytes_never_panic(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        let _ = StorageEnvelope::decode(&tail);
        let _ = decode(&tail);
        let mut with_magic = b"k8s\0".to_vec();
        with_magic.extend_from_slice(&tail);
        let _ = decode(&with_magic);
        let _ = ObjectSummary::from_stored(&with_magic);
        let _ = storage::from_protobuf_message("v1", "Secret", &tail);
    }

    #[test]
    fn mutated_old_secret_never_panics(pos in 0usize..150, byte in proptest::num::u8::ANY) {
        let mut v = old_secret();
        let p = pos % v.len();
        v[p] = byte;
        let _ = decode(&v);
        let _ = ObjectSummary::from_stored(&v);
    }
}

#[test]
fn yaml_storage_has_sorted_keys_and_decodes_back() {
    let obj = decode(&old_secret()).unwrap();
    // Same text as sigs.k8s.io/yaml writes for this object (timestamps quoted, keys sorted).
    let yaml = String::from_utf8(encode(&obj, MediaType::Yaml).unwrap()).unwrap();
    assert_eq!(
        yaml,
        "apiVersion: v1\ndata:\n  api_key: 8J+kl/CfkLw=\nkind: Secret\nmetadata:\n  creationTimestamp: \"2019-12-10T16:57:08Z\"\n  name: test-secret\n  namespace: secret-encryption-test\n  uid: 72dfe5c4-1456-4239-b1ed-adffa2f1f7ba\ntype: Opaque\n"
    );
    let (back, media) = storage::decode_with_media(yaml.as_bytes()).unwrap();
    assert_eq!((back, media), (obj, MediaType::Yaml));
}

#[test]
fn syntax_errors_give_positions_not_content() {
    let e = decode(b"{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"data\":{\"k\":\"c2VjcmV0\"")
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("JSON") && msg.contains("line 1") && !msg.contains("c2VjcmV0"),
        "{msg}"
    );
    let e = decode(b"apiVersion: v1\nkind: Secret\ndata:\n  k: [c2VjcmV0\n").unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("YAML") && !msg.contains("c2VjcmV0"), "{msg}");
}
