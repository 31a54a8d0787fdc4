//! Independent check of the protobuf codec with the real `protoc`: the same object is written
//! in protobuf text format against our own transcription of the upstream .proto files
//! (tests/fixtures/storage/k8s-subset.proto) and encoded by `protoc --encode`; the bytes must
//! equal the codec's. Needs `protoc` (protobuf-compiler, which `cargo xtask test` installs); only this test does:
//! the build never runs protoc.

use atrest_core::storage::{MediaType, StorageEnvelope, encode, to_protobuf_message};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};

const PROTO_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/storage");

fn protoc_available() -> bool {
    Command::new("protoc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn protoc_encode(message: &str, text: &str) -> Vec<u8> {
    let mut child = Command::new("protoc")
        .arg(format!("--encode=atrest.check.{message}"))
        .arg(format!("-I{PROTO_DIR}"))
        .arg("k8s-subset.proto")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run protoc");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "protoc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Text-format ObjectMeta with gogo's always-written fields.
fn meta_text(name: &str, ns: &str, extra: &str) -> String {
    format!(
        r#"name: "{name}" generateName: "" namespace: "{ns}" selfLink: "" uid: "" resourceVersion: "" generation: 0 creationTimestamp {{ }} {extra}"#
    )
}

fn check(obj: Value, message: &str, text: &str) {
    assert!(
        protoc_available(),
        "this cross-check runs the real protoc: install protobuf-compiler (`cargo xtask test` does)"
    );
    let ours = to_protobuf_message(&obj).unwrap();
    assert_eq!(ours.raw, protoc_encode(message, text), "{message}");

    // The envelope too: Unknown with raw given as an escaped byte string.
    let escaped: String = ours.raw.iter().map(|b| format!("\\{b:03o}")).collect();
    let env_text = format!(
        r#"typeMeta {{ apiVersion: "{}" kind: "{}" }} raw: "{escaped}" contentEncoding: "" contentType: """#,
        ours.api_version, ours.kind
    );
    let mut expected = b"k8s\0".to_vec();
    expected.extend(protoc_encode("Unknown", &env_text));
    assert_eq!(
        encode(&obj, MediaType::Protobuf).unwrap(),
        expected,
        "{message} envelope"
    );
    assert_eq!(StorageEnvelope::decode(&expected).unwrap(), ours);
}

#[test]
fn secret_matches_protoc() {
    check(
        json!({"apiVersion":"v1","kind":"Secret",
               "metadata":{"name":"demo","namespace":"default","uid":"u-1","creationTimestamp":"2024-05-01T10:00:00Z",
                           "labels":{"app":"web","tier":"a<b"},"annotations":{"note":""},"finalizers":["x"],
                           "ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"o","uid":"ou","blockOwnerDeletion":false}],
                           "managedFields":[{"manager":"kubectl-create","operation":"Update","apiVersion":"v1",
                                             "time":"2024-05-01T10:00:00Z","fieldsType":"FieldsV1",
                                             "fieldsV1":{"f:data":{"f:password":{}}}}]},
               "immutable":true,
               "data":{"password":"MTIzNDU2","username":"bXlhcHA="},
               "type":"Opaque"}),
        "Secret",
        &format!(
            r#"metadata {{ {} }} data {{ key: "password" value: "123456" }} data {{ key: "username" value: "myapp" }} type: "Opaque" immutable: true"#,
            r#"name: "demo" generateName: "" namespace: "default" selfLink: "" uid: "u-1" resourceVersion: "" generation: 0
               creationTimestamp { seconds: 1714557600 nanos: 0 }
               labels { key: "app" value: "web" } labels { key: "tier" value: "a<b" }
               annotations { key: "note" value: "" }
               ownerReferences { kind: "ConfigMap" name: "o" uid: "ou" apiVersion: "v1" blockOwnerDeletion: false }
               finalizers: "x"
               managedFields { manager: "kubectl-create" operation: "Update" apiVersion: "v1"
                 time { seconds: 1714557600 nanos: 0 } fieldsType: "FieldsV1"
                 fieldsV1 { Raw: "{\"f:data\":{\"f:password\":{}}}" } subresource: "" }"#
        ),
    );
}

#[test]
fn role_and_binding_match_protoc() {
    check(
        json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"r","namespace":"marketing"},
               "rules":[{"verbs":["get","list","watch"],"apiGroups":[""],"resources":["pods","secrets"],"resourceNames":["a"]}]}),
        "Role",
        &format!(
            r#"metadata {{ {} }} rules {{ verbs: "get" verbs: "list" verbs: "watch" apiGroups: "" resources: "pods" resources: "secrets" resourceNames: "a" }}"#,
            meta_text("r", "marketing", "")
        ),
    );
    check(
        json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"b","namespace":"marketing"},
               "subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"john"},{"kind":"Group","name":"devs"}],
               "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r"}}),
        "RoleBinding",
        &format!(
            r#"metadata {{ {} }} subjects {{ kind: "User" apiGroup: "rbac.authorization.k8s.io" name: "john" namespace: "" }} subjects {{ kind: "Group" apiGroup: "" name: "devs" namespace: "" }} roleRef {{ apiGroup: "rbac.authorization.k8s.io" kind: "Role" name: "r" }}"#,
            meta_text("b", "marketing", "")
        ),
    );
}

#[test]
fn csr_and_access_review_match_protoc() {
    check(
        json!({"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{"name":"john"},
               "spec":{"request":"AAEC/w==","signerName":"kubernetes.io/kube-apiserver-client","expirationSeconds":600,
                       "usages":["client auth"],"username":"admin","groups":["system:masters"],
                       "extra":{"a":["1","2"]}},
               "status":{"conditions":[{"type":"Approved","status":"True","reason":"R","message":"M",
                                        "lastUpdateTime":"2024-05-01T10:00:00Z"}]}}),
        "CertificateSigningRequest",
        &format!(
            r#"metadata {{ {} }} spec {{ request: "\000\001\002\377" username: "admin" uid: "" groups: "system:masters" usages: "client auth" extra {{ key: "a" value {{ items: "1" items: "2" }} }} signerName: "kubernetes.io/kube-apiserver-client" expirationSeconds: 600 }} status {{ conditions {{ type: "Approved" reason: "R" message: "M" lastUpdateTime {{ seconds: 1714557600 nanos: 0 }} lastTransitionTime {{ }} status: "True" }} }}"#,
            meta_text("john", "", "")
        ),
    );
    check(
        json!({"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","metadata":{},
               "spec":{"resourceAttributes":{"namespace":"default","verb":"get","resource":"secrets","name":"demo"}},
               "status":{"allowed":false,"denied":true}}),
        "SelfSubjectAccessReview",
        &format!(
            r#"metadata {{ {} }} spec {{ resourceAttributes {{ namespace: "default" verb: "get" group: "" version: "" resource: "secrets" subresource: "" name: "demo" }} }} status {{ allowed: false reason: "" evaluationError: "" denied: true }}"#,
            meta_text("", "", "")
        ),
    );
}
