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

fn secret_json(ns: &str, name: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"apiVersion":"v1","kind":"Secret",
        "metadata":{"name":name,"namespace":ns},"type":"Opaque"}))
    .unwrap()
}

fn config(providers: &str) -> crate::config::EncryptionConfiguration {
    let text = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n{providers}"
    );
    crate::config::EncryptionConfiguration::from_text(&text, "test").unwrap()
}

const GCM: &str = "  - aesgcm:\n      keys:\n      - name: k1\n        secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n";

#[test]
fn decrypts_with_the_key_as_authenticated_data() {
    let cfg = config(GCM);
    let c = Checker::with_config(&cfg, "secrets").unwrap();
    let t = crate::transform::EncryptionTransformers::from_config(&cfg).unwrap();
    let t = t.for_resource(&group_resource("secrets"));
    let key = "/registry/secrets/a/s";
    let value = t.write(&secret_json("a", "s"), key.as_bytes()).unwrap();
    let ok = c.check("/registry/secrets/", "secrets", key, &value);
    assert_eq!(
        (ok.storage, ok.verified, ok.finding),
        (StorageKind::Aesgcm, Some(true), false),
        "{ok:?}"
    );
    assert_eq!(ok.key_name.as_deref(), Some("k1"));
    assert_eq!(ok.encoding, Some(Encoding::Json));
    // The same bytes under another key: the AD differs, so decryption fails.
    let moved = c.check(
        "/registry/secrets/",
        "secrets",
        "/registry/secrets/a/t",
        &value,
    );
    assert_eq!(
        (moved.verified, moved.finding),
        (Some(false), true),
        "{moved:?}"
    );
    // No identity provider: a plaintext value is unreadable for the apiserver.
    let plain = c.check("/registry/secrets/", "secrets", key, &secret_json("a", "s"));
    assert_eq!(
        (plain.storage, plain.verified, plain.finding),
        (StorageKind::Identity, None, true),
        "{plain:?}"
    );
    // A resource the configuration does not cover reads with identity.
    let cm = Checker::with_config(&cfg, "configmaps").unwrap();
    let obj = serde_json::to_vec(&serde_json::json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"a"}})).unwrap();
    let item = cm.check(
        "/registry/configmaps/",
        "configmaps",
        "/registry/configmaps/a/c",
        &obj,
    );
    assert_eq!(item.verified, Some(true), "{item:?}");
    // A Secret key holding a ConfigMap does not verify.
    let item = Checker::without_keys().check(
        "/registry/secrets/",
        "secrets",
        "/registry/secrets/a/c",
        &obj,
    );
    assert_eq!(item.verified, Some(false), "{item:?}");
    assert!(item.error.unwrap().contains("ConfigMap"));
}

#[test]
fn kms_without_a_plugin_is_unverified_and_unknown_keys_are_findings() {
    let cfg = config(&format!(
        "  - kms:\n      apiVersion: v2\n      name: p\n      endpoint: unix:///tmp/none.sock\n{GCM}  - identity: {{}}\n"
    ));
    let c = Checker::with_config(&cfg, "secrets").unwrap();
    let kms = c.check(
        "/registry/secrets/",
        "secrets",
        "/registry/secrets/a/s",
        b"k8s:enc:kms:v2:p:\x0a\x01x\x12\x011\x1a\x01y",
    );
    assert_eq!(kms.storage, StorageKind::Kmsv2);
    assert_eq!((kms.verified, kms.finding), (None, false), "{kms:?}");
    let unknown = c.check(
        "/registry/secrets/",
        "secrets",
        "/registry/secrets/a/s",
        b"k8s:enc:aesgcm:v1:k9:0123456789abcdef0123456789",
    );
    assert_eq!(
        (unknown.verified, unknown.finding),
        (None, true),
        "{unknown:?}"
    );
    assert!(unknown.error.unwrap().contains("k9"));
}

proptest::proptest! {
    #[test]
    fn check_never_panics(value in proptest::collection::vec(proptest::num::u8::ANY, 0..256), prefix in 0usize..4) {
        let heads: [&[u8]; 4] = [b"", b"k8s\0", b"k8s:enc:aesgcm:v1:k1:", b"{"];
        let mut v = heads[prefix].to_vec();
        v.extend(value);
        let c = Checker::with_config(&config(GCM), "secrets").unwrap();
        let item = c.check("/registry/secrets/", "secrets", "/registry/secrets/a/b", &v);
        proptest::prop_assert!(item.verified != Some(true) || item.error.is_none());
        let _ = Checker::without_keys().check("/registry/secrets/", "secrets", "/registry/x", &v);
    }
}

/// The seam other sources (e.g. `etcdctl get -w json` in a pod) use: pages in, items out in key
/// order, each page's items handed to the sink before the next page is given, whatever the
/// number of threads; every value is decrypted and verified.
#[test]
fn page_checker_streams_pages_in_order_on_any_thread_count() {
    let cfg = config(&format!("{GCM}  - identity: {{}}\n"));
    let c = Checker::with_config(&cfg, "secrets").unwrap();
    let t = crate::transform::EncryptionTransformers::from_config(&cfg).unwrap();
    let t = t.for_resource(&group_resource("secrets"));
    let r = req(Scope::AllNamespaces);
    // Two pages, each larger than the parallel threshold; every 3rd value encrypted, one tampered.
    let pages: Vec<Vec<(String, Vec<u8>)>> = (0..2)
        .map(|p| {
            (0..150)
                .map(|i| {
                    let name = format!("s{p}-{i:03}");
                    let key = format!("/registry/secrets/ns/{name}");
                    let mut value = secret_json("ns", &name);
                    if i % 3 == 0 {
                        value = t.write(&value, key.as_bytes()).unwrap();
                    }
                    if p == 1 && i == 7 {
                        value = secret_json("ns", "someone-else");
                    }
                    (key, value)
                })
                .collect()
        })
        .collect();
    for threads in [1, 2, 3] {
        let mut seen: Vec<(String, Option<bool>)> = Vec::new();
        let mut pc = PageChecker::new(&r, &c, |item: &ScanItem| {
            seen.push((item.key.clone(), item.verified));
            Ok(())
        })
        .threads(threads);
        pc.page(&pages[0]).unwrap();
        // Streaming: the first page is fully reported before the second exists for the checker.
        assert_eq!(pc.summary().total, 150);
        pc.page(&pages[1]).unwrap();
        let s = pc.finish(42);
        assert_eq!(
            (s.total, s.verified, s.failed, s.revision),
            (300, 299, 1, 42)
        );
        assert_eq!(s.by_key.get("aesgcm:k1"), Some(&100));
        let keys: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
        let want: Vec<&str> = pages.iter().flatten().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, want, "threads={threads}: items out of key order");
        assert_eq!(seen[157].1, Some(false));
    }
}

#[test]
fn page_checker_sink_errors_stop_the_page() {
    let r = req(Scope::AllNamespaces);
    let c = Checker::without_keys();
    let page: Vec<(Vec<u8>, Vec<u8>)> = (0..100)
        .map(|i| {
            let name = format!("s{i}");
            (
                format!("/registry/secrets/a/{name}").into_bytes(),
                secret_json("a", &name),
            )
        })
        .collect();
    let mut n = 0;
    let mut pc = PageChecker::new(&r, &c, |_: &ScanItem| {
        n += 1;
        if n == 10 {
            Err(std::io::Error::other("stdout closed"))
        } else {
            Ok(())
        }
    });
    let err = pc.page(&page).unwrap_err();
    assert_eq!(err.to_string(), "stdout closed");
    assert_eq!(pc.summary().total, 10);
}

/// kube-apiserver's resource → etcd prefix mapping (`SpecialDefaultResourcePrefixes`, the resource name for built-in
/// groups, `<group>/<resource>` for the apiextensions and aggregator servers and for custom resources), and back.
#[test]
fn stored_resources_map_to_the_apiservers_etcd_segments() {
    for (group, resource, segment, kind) in [
        ("", "secrets", "secrets", Some("Secret")),
        ("", "services", "services/specs", Some("Service")),
        ("", "endpoints", "services/endpoints", Some("Endpoints")),
        ("", "nodes", "minions", Some("Node")),
        (
            "",
            "replicationcontrollers",
            "controllers",
            Some("ReplicationController"),
        ),
        ("networking.k8s.io", "ingresses", "ingress", Some("Ingress")),
        ("apps", "deployments", "deployments", Some("Deployment")),
        ("rbac.authorization.k8s.io", "roles", "roles", Some("Role")),
        (
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "apiextensions.k8s.io/customresourcedefinitions",
            Some("CustomResourceDefinition"),
        ),
        (
            "apiregistration.k8s.io",
            "apiservices",
            "apiregistration.k8s.io/apiservices",
            Some("APIService"),
        ),
        (
            "stable.example.com",
            "crontabs",
            "stable.example.com/crontabs",
            None,
        ),
        // A CRD group ending in .k8s.io is still a CRD.
        (
            "gateway.networking.k8s.io",
            "gateways",
            "gateway.networking.k8s.io/gateways",
            None,
        ),
    ] {
        let r = StoredResource::new(group, resource);
        assert_eq!(r.etcd_segment(), segment, "{group}/{resource}");
        assert_eq!(r.kind(), kind, "{group}/{resource}");
        let back = StoredResource::from_etcd_segment(segment);
        // extensions/ingresses share `ingress` with networking.k8s.io; the segment names the latter.
        assert_eq!(back, r, "{segment}");
        assert_eq!(StoredResource::parse(segment), r, "{segment}");
        assert_eq!(StoredResource::parse(&r.display_name()), r);
    }
    assert_eq!(
        StoredResource::parse("deployments"),
        StoredResource::new("apps", "deployments")
    );
    assert_eq!(
        StoredResource::parse("Events"),
        StoredResource::new("", "events")
    );
    assert_eq!(
        StoredResource::new("extensions", "ingresses").etcd_segment(),
        "ingress"
    );
    assert_eq!(
        super::check::group_resource("services/specs"),
        crate::config::GroupResource::core("services")
    );
    assert!(is_cluster_scoped("minions"));
    assert!(is_cluster_scoped("apiregistration.k8s.io/apiservices"));
    assert!(!is_cluster_scoped("services/specs"));
    assert!(!is_cluster_scoped("stable.example.com/crontabs"));
}

/// Any kind is decoded as the object its key names: a custom resource (JSON) under `<group>/<plural>` with the
/// transformers of that group/resource, a Deployment under `deployments`; a protobuf kind the codecs do not know
/// is "decrypted, kind not decoded", not a failure.
#[test]
fn other_kinds_decode_as_their_key_says() {
    let text = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [crontabs.stable.example.com, deployments.apps]\n  providers:\n{GCM}"
    );
    let cfg = crate::config::EncryptionConfiguration::from_text(&text, "test").unwrap();
    let all = crate::transform::EncryptionTransformers::from_config(&cfg).unwrap();
    let seg = StoredResource::new("stable.example.com", "crontabs").etcd_segment();
    let c = Checker::with_config(&cfg, &seg).unwrap();
    let t = all.for_resource(&group_resource(&seg));
    let key = "/registry/stable.example.com/crontabs/ns1/tab";
    let cr = serde_json::to_vec(
        &serde_json::json!({"apiVersion":"stable.example.com/v1","kind":"CronTab",
        "metadata":{"name":"tab","namespace":"ns1"},"spec":{"cronSpec":"* * * * */5"}}),
    )
    .unwrap();
    let item = c.check(
        "/registry/stable.example.com/crontabs/",
        &seg,
        key,
        &t.write(&cr, key.as_bytes()).unwrap(),
    );
    assert_eq!(
        (item.storage, item.verified, item.finding),
        (StorageKind::Aesgcm, Some(true), false),
        "{item:?}"
    );
    // Its identity is still checked against the key.
    let other = "/registry/stable.example.com/crontabs/ns1/other";
    let item = c.check(
        "/registry/stable.example.com/crontabs/",
        &seg,
        other,
        &t.write(&cr, other.as_bytes()).unwrap(),
    );
    assert_eq!(
        (item.verified, item.finding),
        (Some(false), true),
        "{item:?}"
    );

    // A protobuf Deployment: the codecs do not know apps/v1 Deployment.
    let env = crate::storage::StorageEnvelope {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        raw: vec![0x0a, 0x05, 0x0a, 0x03, b'w', b'e', b'b'],
        content_encoding: String::new(),
        content_type: String::new(),
    };
    let d = Checker::with_config(&cfg, "deployments").unwrap();
    let t = all.for_resource(&group_resource("deployments"));
    let key = "/registry/deployments/ns1/web";
    let item = d.check(
        "/registry/deployments/",
        "deployments",
        key,
        &t.write(&env.encode(), key.as_bytes()).unwrap(),
    );
    assert_eq!(
        (item.storage, item.verified, item.finding),
        (StorageKind::Aesgcm, None, false),
        "{item:?}"
    );
    assert_eq!(
        item.status(),
        "not verified: decrypted, kind not decoded (apps/v1 Deployment is not known to atrest's codecs)"
    );
}
