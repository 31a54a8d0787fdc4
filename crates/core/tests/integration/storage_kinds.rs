//! Hand-checked protobuf vectors for every supported kind: the expected bytes are assembled
//! field by field here, independently of the codec, from the upstream generated.proto numbers
//! and the gogo-protobuf rules (non-pointer fields always written, pointers only when set).

use atrest_core::storage::{MediaType, decode, encode, normalize};
use serde_json::{Value, json};

use crate::support::{ld, vf};

fn st(num: u32, s: &str) -> Vec<u8> {
    ld(num, s.as_bytes())
}
/// Map entry {key=1, value=2}.
fn entry(num: u32, k: &str, v: &[u8]) -> Vec<u8> {
    ld(num, &[st(1, k), ld(2, v)].concat())
}
/// ObjectMeta with only name/namespace set (creationTimestamp zero: empty message).
fn meta(name: &str, ns: &str) -> Vec<u8> {
    [
        st(1, name),
        st(2, ""),
        st(3, ns),
        st(4, ""),
        st(5, ""),
        st(6, ""),
        vf(7, 0),
        ld(8, b""),
    ]
    .concat()
}
fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    [
        b"k8s\0".to_vec(),
        ld(1, &[st(1, api_version), st(2, kind)].concat()),
        ld(2, raw),
        vec![0x1a, 0x00, 0x22, 0x00],
    ]
    .concat()
}

/// Encodes `obj` and compares with the hand-built bytes.
fn check_bytes(obj: &Value, raw: &[u8]) -> Vec<u8> {
    let api_version = obj["apiVersion"].as_str().unwrap();
    let kind = obj["kind"].as_str().unwrap();
    let got = encode(obj, MediaType::Protobuf).unwrap();
    assert_eq!(got, envelope(api_version, kind, raw), "{kind}");
    got
}

/// [`check_bytes`], then the protobuf round trip gives the normalized JSON back.
fn check(obj: Value, raw: Vec<u8>) {
    let got = check_bytes(&obj, &raw);
    assert_eq!(decode(&got).unwrap(), normalize(&obj).unwrap());
}

#[test]
fn configmap_namespace_serviceaccount() {
    check(
        json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"n"},
               "data":{"k":"v"},"binaryData":{"b":"AAE="}}),
        [
            ld(1, &meta("c", "n")),
            entry(2, "k", b"v"),
            entry(3, "b", &[0, 1]),
        ]
        .concat(),
    );
    check(
        json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"marketing"},
               "spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}}),
        [
            ld(1, &meta("marketing", "")),
            ld(2, &st(1, "kubernetes")),
            ld(3, &st(1, "Active")),
        ]
        .concat(),
    );
    check(
        json!({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default","namespace":"d"},
               "automountServiceAccountToken":false,"imagePullSecrets":[{"name":"reg"}]}),
        [ld(1, &meta("default", "d")), ld(3, &st(1, "reg")), vf(4, 0)].concat(),
    );
}

#[test]
fn rbac_kinds() {
    let rule = [
        st(1, "get"),
        st(1, "list"),
        st(2, ""),
        st(3, "pods"),
        st(3, "secrets"),
    ]
    .concat();
    check(
        json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role",
               "metadata":{"name":"john-marketing","namespace":"marketing"},
               "rules":[{"verbs":["get","list"],"apiGroups":[""],"resources":["pods","secrets"]}]}),
        [ld(1, &meta("john-marketing", "marketing")), ld(2, &rule)].concat(),
    );
    let selector = [entry(1, "rbac.example.com/aggregate-to-view", b"true")].concat();
    check(
        json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"view"},
               "aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{"rbac.example.com/aggregate-to-view":"true"}}]},
               "rules":[{"nonResourceURLs":["/healthz"],"verbs":["get"]}]}),
        [
            ld(1, &meta("view", "")),
            ld(2, &[st(1, "get"), st(5, "/healthz")].concat()),
            ld(3, &ld(1, &selector)),
        ]
        .concat(),
    );
    let subject = [
        st(1, "User"),
        st(2, "rbac.authorization.k8s.io"),
        st(3, "john"),
        st(4, ""),
    ]
    .concat();
    let role_ref = [
        st(1, "rbac.authorization.k8s.io"),
        st(2, "Role"),
        st(3, "john-marketing"),
    ]
    .concat();
    check(
        json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding",
               "metadata":{"name":"b","namespace":"marketing"},
               "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"john-marketing"},
               "subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"john"}]}),
        [
            ld(1, &meta("b", "marketing")),
            ld(2, &subject),
            ld(3, &role_ref),
        ]
        .concat(),
    );
    let sa = [
        st(1, "ServiceAccount"),
        st(2, ""),
        st(3, "default"),
        st(4, "kube-system"),
    ]
    .concat();
    let cr_ref = [
        st(1, "rbac.authorization.k8s.io"),
        st(2, "ClusterRole"),
        st(3, "cluster-admin"),
    ]
    .concat();
    check(
        json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"x"},
               "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},
               "subjects":[{"kind":"ServiceAccount","name":"default","namespace":"kube-system"}]}),
        [ld(1, &meta("x", "")), ld(2, &sa), ld(3, &cr_ref)].concat(),
    );
}

#[test]
fn empty_role_serves_rules_null_like_go() {
    let obj = json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"r","namespace":"n"}});
    let stored = String::from_utf8(encode(&obj, MediaType::Json).unwrap()).unwrap();
    assert_eq!(
        stored,
        "{\"kind\":\"Role\",\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"metadata\":{\"name\":\"r\",\"namespace\":\"n\",\"creationTimestamp\":null},\"rules\":null}\n"
    );
    check(obj, ld(1, &meta("r", "n")));
}

#[test]
fn certificate_signing_request() {
    let csr = json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "john"},
        "spec": {
            "request": "LS0tLS1CRUdJTg==",
            "signerName": "kubernetes.io/kube-apiserver-client",
            "expirationSeconds": 86400,
            "usages": ["client auth"],
            "username": "kubernetes-admin",
            "groups": ["system:masters", "system:authenticated"],
            "extra": {"scopes": ["a", "b"], "empty": []}
        },
        "status": {
            "conditions": [{"type": "Approved", "status": "True", "reason": "KubectlApprove",
                            "message": "ok", "lastUpdateTime": "2024-05-01T10:00:00Z",
                            "lastTransitionTime": "2024-05-01T10:00:00Z"}],
            "certificate": "Q0VSVA=="
        }
    });
    let ts = [vf(1, 1_714_557_600), vf(2, 0)].concat();
    let spec = [
        ld(1, b"-----BEGIN"),
        st(2, "kubernetes-admin"),
        st(3, ""),
        st(4, "system:masters"),
        st(4, "system:authenticated"),
        st(5, "client auth"),
        ld(6, &[st(1, "empty"), ld(2, b"")].concat()),
        ld(
            6,
            &[st(1, "scopes"), ld(2, &[st(1, "a"), st(1, "b")].concat())].concat(),
        ),
        st(7, "kubernetes.io/kube-apiserver-client"),
        vf(8, 86400),
    ]
    .concat();
    let cond = [
        st(1, "Approved"),
        st(2, "KubectlApprove"),
        st(3, "ok"),
        ld(4, &ts),
        ld(5, &ts),
        st(6, "True"),
    ]
    .concat();
    let status = [ld(1, &cond), ld(2, b"CERT")].concat();
    check_bytes(
        &csr,
        &[ld(1, &meta("john", "")), ld(2, &spec), ld(3, &status)].concat(),
    );
    // An empty ExtraValue is written as an empty message and unmarshals to a nil slice, which
    // Go serves as null.
    let back = decode(&encode(&csr, MediaType::Protobuf).unwrap()).unwrap();
    assert_eq!(
        back["spec"]["extra"],
        json!({"empty": null, "scopes": ["a", "b"]})
    );
}

#[test]
fn authorization_reviews() {
    let attrs = [
        st(1, "marketing"),
        st(2, "list"),
        st(3, ""),
        st(4, ""),
        st(5, "secrets"),
        st(6, ""),
        st(7, ""),
    ]
    .concat();
    check(
        json!({"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","metadata":{},
               "spec":{"resourceAttributes":{"namespace":"marketing","verb":"list","resource":"secrets"}},
               "status":{"allowed":true,"reason":"RBAC"}}),
        [
            ld(1, &meta("", "")),
            ld(2, &ld(1, &attrs)),
            ld(3, &[vf(1, 1), st(2, "RBAC"), st(3, ""), vf(4, 0)].concat()),
        ]
        .concat(),
    );
    let sar_spec = [
        ld(2, &[st(1, "/healthz"), st(2, "get")].concat()),
        st(3, "john"),
        st(4, "marketing"),
        st(6, ""),
    ]
    .concat();
    let status = [vf(1, 0), st(2, ""), st(3, ""), vf(4, 0)].concat();
    for kind in ["SubjectAccessReview", "LocalSubjectAccessReview"] {
        check(
            json!({"apiVersion":"authorization.k8s.io/v1","kind":kind,"metadata":{"namespace":"marketing"},
                   "spec":{"nonResourceAttributes":{"path":"/healthz","verb":"get"},"user":"john","groups":["marketing"]}}),
            [
                ld(1, &meta("", "marketing")),
                ld(2, &sar_spec),
                ld(3, &status),
            ]
            .concat(),
        );
    }
    let rr = [st(1, "get"), st(2, ""), st(3, "pods")].concat();
    let nrr = [st(1, "get"), st(2, "/api")].concat();
    check(
        json!({"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectRulesReview","metadata":{},
               "spec":{"namespace":"marketing"},
               "status":{"resourceRules":[{"verbs":["get"],"apiGroups":[""],"resources":["pods"]}],
                         "nonResourceRules":[{"verbs":["get"],"nonResourceURLs":["/api"]}],"incomplete":false}}),
        [
            ld(1, &meta("", "")),
            ld(2, &st(1, "marketing")),
            ld(3, &[ld(1, &rr), ld(2, &nrr), vf(3, 0), st(4, "")].concat()),
        ]
        .concat(),
    );
}

#[test]
fn self_subject_review_and_its_go_json() {
    let obj = json!({"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview","metadata":{},
                     "status":{"userInfo":{"username":"john","groups":["marketing","system:authenticated"]}}});
    let user = [
        st(1, "john"),
        st(2, ""),
        st(3, "marketing"),
        st(3, "system:authenticated"),
    ]
    .concat();
    check(
        obj.clone(),
        [ld(1, &meta("", "")), ld(2, &ld(1, &user))].concat(),
    );
    assert_eq!(
        String::from_utf8(encode(&obj, MediaType::Json).unwrap()).unwrap(),
        "{\"kind\":\"SelfSubjectReview\",\"apiVersion\":\"authentication.k8s.io/v1\",\"metadata\":{\"creationTimestamp\":null},\"status\":{\"userInfo\":{\"username\":\"john\",\"groups\":[\"marketing\",\"system:authenticated\"]}}}\n"
    );
}

#[test]
fn object_meta_in_full() {
    let obj = json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{
        "name":"m","generateName":"m-","namespace":"n","selfLink":"/x","uid":"u","resourceVersion":"7",
        "generation":3,"creationTimestamp":"2024-05-01T10:00:00Z","deletionTimestamp":"2024-05-01T10:00:01Z",
        "deletionGracePeriodSeconds":0,"labels":{"a":"b"},"annotations":{"k":""},
        "ownerReferences":[{"apiVersion":"v1","kind":"Pod","name":"p","uid":"pu","controller":true}],
        "finalizers":["f"],
        "managedFields":[{"manager":"kubectl","operation":"Update","apiVersion":"v1",
                          "time":"2024-05-01T10:00:00Z","fieldsType":"FieldsV1",
                          "fieldsV1":{"f:data":{".":{},"f:k":{}}}}]}});
    let ts = |s: u64| ld(0, &[vf(1, s), vf(2, 0)].concat())[2..].to_vec();
    let owner = [st(1, "Pod"), st(3, "p"), st(4, "pu"), st(5, "v1"), vf(6, 1)].concat();
    let mf = [
        st(1, "kubectl"),
        st(2, "Update"),
        st(3, "v1"),
        ld(4, &ts(1_714_557_600)),
        st(6, "FieldsV1"),
        ld(7, &st(1, r#"{"f:data":{".":{},"f:k":{}}}"#)),
        st(8, ""),
    ]
    .concat();
    let m = [
        st(1, "m"),
        st(2, "m-"),
        st(3, "n"),
        st(4, "/x"),
        st(5, "u"),
        st(6, "7"),
        vf(7, 3),
        ld(8, &ts(1_714_557_600)),
        ld(9, &ts(1_714_557_601)),
        vf(10, 0),
        entry(11, "a", b"b"),
        entry(12, "k", b""),
        ld(13, &owner),
        st(14, "f"),
        ld(17, &mf),
    ]
    .concat();
    check(obj.clone(), ld(1, &m));
    let back = decode(&encode(&obj, MediaType::Protobuf).unwrap()).unwrap();
    assert_eq!(back["metadata"], obj["metadata"]);
}
