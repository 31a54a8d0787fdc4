use super::*;

fn req(scope: Scope) -> ScanRequest {
    ScanRequest {
        prefix: "/registry".into(),
        resource: "secrets".into(),
        scope,
    }
}

#[test]
fn keys_and_ranges() {
    let r = req(Scope::AllNamespaces);
    assert_eq!(r.resource_prefix(), "/registry/secrets/");
    assert_eq!(r.range_start(), "/registry/secrets/");
    assert_eq!(
        req(Scope::Namespace("kube-system".into())).range_start(),
        "/registry/secrets/kube-system/"
    );
    let one = req(Scope::Object {
        namespace: "default".into(),
        name: "a".into(),
    });
    assert_eq!(
        one.single_key().as_deref(),
        Some("/registry/secrets/default/a")
    );
    let ns = ScanRequest {
        prefix: "registry/".into(),
        resource: "namespaces".into(),
        scope: Scope::Namespace("default".into()),
    };
    assert_eq!(ns.range_start(), "/registry/namespaces/");
    assert_eq!(
        parse_key("/registry/secrets/", "/registry/secrets/ns/n").unwrap(),
        KeyParts {
            namespace: Some("ns".into()),
            name: "n".into()
        }
    );
    assert_eq!(
        parse_key("/registry/namespaces/", "/registry/namespaces/kube-system")
            .unwrap()
            .namespace,
        None
    );
    assert!(parse_key("/registry/secrets/", "/registry/secrets/a/b/c").is_err());
    assert!(parse_key("/registry/secrets/", "/registry/secrets/a/").is_err());
    assert!(parse_key("/registry/secrets/", "/other/x").is_err());
}

#[test]
fn garbage_and_truncated_values_are_unknown_findings() {
    let c = Checker::without_keys();
    for v in [
        &b""[..],
        b"\xff\x00garbage",
        b"k8s:enc:aescbc:v1:",
        b"k8s:enc:aescbc:v1:nocolon",
    ] {
        let item = c.check(
            "/registry/secrets/",
            "secrets",
            "/registry/secrets/default/x",
            v,
        );
        assert_eq!(item.storage, StorageKind::Unknown, "{v:?}");
        assert_eq!(item.verified, Some(false));
        assert!(item.finding);
        assert!(item.error.is_some());
    }
}

#[test]
fn encrypted_without_keys_is_unverified_not_a_finding() {
    let c = Checker::without_keys();
    let item = c.check(
        "/registry/secrets/",
        "secrets",
        "/registry/secrets/default/x",
        b"k8s:enc:secretbox:v1:key1:0123456789",
    );
    assert_eq!(item.storage, StorageKind::Secretbox);
    assert_eq!(item.key_name.as_deref(), Some("key1"));
    assert_eq!(item.verified, None);
    assert!(!item.finding);
    let json = serde_json::to_value(&item).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"key":"/registry/secrets/default/x","resource":"secrets","namespace":"default","name":"x",
            "storage":"secretbox","encoding":null,"keyName":"key1","verified":null,
            "error":"no encryption configuration given (--encryption-config)"})
    );
}

#[test]
fn summary_counts() {
    let c = Checker::without_keys();
    let mut s = ScanSummary::default();
    s.add(&c.check(
        "/registry/secrets/",
        "secrets",
        "/registry/secrets/a/x",
        b"k8s:enc:aescbc:v1:k1:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ));
    s.add(&c.check(
        "/registry/secrets/",
        "secrets",
        "/registry/secrets/b/y",
        b"garbage",
    ));
    assert_eq!(s.total, 2);
    assert_eq!(s.findings, 1);
    assert_eq!(s.by_key.get("aescbc:k1"), Some(&1));
    assert_eq!(s.by_namespace["b"].findings, 1);
}
