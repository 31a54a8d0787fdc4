//! Pod codec against real kubeadm static pod manifests and a hand-built protobuf vector.

use atrest_core::storage::{MediaType, StorageError, decode, decode_with_media, encode, normalize};
use serde_json::{Value, json};

use crate::support::{fixture_files, fixtures, ld, vf};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures("storage").join(name)).unwrap()
}

fn manifests() -> Vec<String> {
    let names: Vec<String> = fixture_files("storage", Some("yaml"))
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    names
}

#[test]
fn every_static_pod_manifest_round_trips_through_protobuf_and_json_storage() {
    for name in manifests() {
        let (json, media) = match decode_with_media(&fixture(&name)) {
            Ok(v) => v,
            Err(e) if name.starts_with("mstelles") => {
                // The upstream file has the typo `readOlny: true`; a typed decode must not drop it.
                assert!(matches!(e, StorageError::UnknownField { .. }), "{e}");
                assert!(
                    e.to_string()
                        .contains("spec.containers[0].volumeMounts[0].readOlny"),
                    "{e}"
                );
                continue;
            }
            Err(e) => panic!("{name}: {e}"),
        };
        assert!(!name.starts_with("mstelles"), "typo not detected");
        assert_eq!(media, MediaType::Yaml);
        assert_eq!(json["kind"], "Pod", "{name}");
        let proto = encode(&json, MediaType::Protobuf).unwrap();
        assert!(
            proto.starts_with(b"k8s\0\x0a\x09\x0a\x02v1\x12\x03Pod"),
            "{name}"
        );
        assert_eq!(decode(&proto).unwrap(), json, "{name}: protobuf round trip");
        let stored_json = encode(&json, MediaType::Json).unwrap();
        assert_eq!(
            decode(&stored_json).unwrap(),
            json,
            "{name}: JSON round trip"
        );
        // Protobuf re-encoding of the decoded value is stable.
        assert_eq!(
            encode(&decode(&proto).unwrap(), MediaType::Protobuf).unwrap(),
            proto
        );
    }
}

/// An object's keys in order.
fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[test]
fn kubeadm_1_29_manifest_decodes_with_go_field_order_and_defaults() {
    let json = decode(&fixture("cppntn-kubernetes-1.29.0.yaml")).unwrap();
    let c = &json["spec"]["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], json!(6443));
    assert_eq!(c["livenessProbe"]["httpGet"]["scheme"], "HTTPS");
    assert_eq!(c["resources"]["requests"]["cpu"], "250m");
    assert_eq!(json["spec"]["priority"], json!(2000001000));
    assert_eq!(
        json["spec"]["volumes"][0]["hostPath"]["type"],
        "DirectoryOrCreate"
    );
    assert_eq!(
        json["spec"]["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    // creationTimestamp: null and status: {} are kept, as Go writes them.
    assert_eq!(json["metadata"]["creationTimestamp"], Value::Null);
    assert_eq!(json["status"], json!({}));
    assert_eq!(
        keys(c),
        [
            "name",
            "image",
            "command",
            "resources",
            "volumeMounts",
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
            "imagePullPolicy"
        ]
    );
    assert_eq!(
        keys(&json["spec"]),
        [
            "volumes",
            "containers",
            "hostNetwork",
            "securityContext",
            "priorityClassName",
            "priority"
        ]
    );
    assert_eq!(
        keys(&c["livenessProbe"]),
        [
            "httpGet",
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "failureThreshold"
        ]
    );
}

#[test]
fn placeholder_port_is_an_int_or_string_string() {
    let json = decode(&fixture("spark-design-cluster-example-1.30.0.yaml")).unwrap();
    let port = &json["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"];
    assert_eq!(port, "<port>");
    let proto = encode(&json, MediaType::Protobuf).unwrap();
    // IntOrString{type=1, intVal=0, strVal="<port>"}
    let needle = [
        &[0x12u8, 0x0c, 0x08, 0x01, 0x10, 0x00, 0x1a, 0x06][..],
        b"<port>",
    ]
    .concat();
    assert!(proto.windows(needle.len()).any(|w| w == needle));
}

#[test]
fn hand_built_pod_vector() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "etcd-n1", "namespace": "kube-system"},
        "spec": {
            "containers": [{
                "name": "etcd",
                "image": "registry.k8s.io/etcd:3.5.10-0",
                "command": ["etcd", "--data-dir=/var/lib/etcd"],
                "resources": {"requests": {"memory": "100Mi", "cpu": "100m"}},
                "livenessProbe": {
                    "httpGet": {"host": "127.0.0.1", "path": "/health", "port": 2381, "scheme": "HTTP"},
                    "failureThreshold": 8, "initialDelaySeconds": 10, "periodSeconds": 10, "timeoutSeconds": 15
                },
                "volumeMounts": [{"mountPath": "/var/lib/etcd", "name": "etcd-data"}]
            }],
            "hostNetwork": true,
            "priority": -5,
            "volumes": [{"name": "etcd-data", "hostPath": {"path": "/var/lib/etcd", "type": "DirectoryOrCreate"}}]
        },
        "status": {}
    });
    let meta = [
        ld(1, b"etcd-n1"),
        ld(2, b""),
        ld(3, b"kube-system"),
        ld(4, b""),
        ld(5, b""),
        ld(6, b""),
        vf(7, 0),
        ld(8, b""),
    ]
    .concat();
    let q = |s: &str| ld(1, s.as_bytes());
    let resources = [
        ld(2, &[ld(1, b"cpu"), ld(2, &q("100m"))].concat()),
        ld(2, &[ld(1, b"memory"), ld(2, &q("100Mi"))].concat()),
    ]
    .concat();
    let http_get = [
        ld(1, b"/health"),
        ld(2, &[vf(1, 0), vf(2, 2381), ld(3, b"")].concat()),
        ld(3, b"127.0.0.1"),
        ld(4, b"HTTP"),
    ]
    .concat();
    let probe = [
        ld(1, &ld(2, &http_get)), // ProbeHandler{httpGet}
        vf(2, 10),
        vf(3, 15),
        vf(4, 10),
        vf(5, 0),
        vf(6, 8),
    ]
    .concat();
    let mount = [
        ld(1, b"etcd-data"),
        vf(2, 0),
        ld(3, b"/var/lib/etcd"),
        ld(4, b""),
        ld(6, b""),
    ]
    .concat();
    let container = [
        ld(1, b"etcd"),
        ld(2, b"registry.k8s.io/etcd:3.5.10-0"),
        ld(3, b"etcd"),
        ld(3, b"--data-dir=/var/lib/etcd"),
        ld(5, b""),
        ld(8, &resources),
        ld(9, &mount),
        ld(10, &probe),
        ld(13, b""),
        ld(14, b""),
        vf(16, 0),
        vf(17, 0),
        vf(18, 0),
        ld(20, b""),
    ]
    .concat();
    let volume = [
        ld(1, b"etcd-data"),
        ld(
            2,
            &ld(
                1,
                &[ld(1, b"/var/lib/etcd"), ld(2, b"DirectoryOrCreate")].concat(),
            ),
        ),
    ]
    .concat();
    let spec = [
        ld(1, &volume),
        ld(2, &container),
        ld(3, b""),
        ld(6, b""),
        ld(8, b""),
        ld(9, b""),
        ld(10, b""),
        vf(11, 1),
        vf(12, 0),
        vf(13, 0),
        ld(16, b""),
        ld(17, b""),
        ld(19, b""),
        ld(24, b""),
        vf(25, (-5i64) as u64), // *int32 priority, sign-extended to ten bytes
    ]
    .concat();
    let status = [
        ld(1, b""),
        ld(3, b""),
        ld(4, b""),
        ld(5, b""),
        ld(6, b""),
        ld(9, b""),
        ld(11, b""),
        ld(14, b""),
        vf(17, 0),
    ]
    .concat();
    let expected = [
        b"k8s\0".to_vec(),
        ld(1, &[ld(1, b"v1"), ld(2, b"Pod")].concat()),
        ld(2, &[ld(1, &meta), ld(2, &spec), ld(3, &status)].concat()),
        vec![0x1a, 0x00, 0x22, 0x00],
    ]
    .concat();
    let got = encode(&pod, MediaType::Protobuf).unwrap();
    assert_eq!(got, expected);
    assert_eq!(decode(&got).unwrap(), normalize(&pod).unwrap());
}

#[test]
fn pod_json_storage_is_go_ordered() {
    let pod = json!({
        "kind": "Pod", "apiVersion": "v1",
        "status": {"phase": "Running", "startTime": "2024-05-01T10:00:00Z", "conditions": [{"status": "True", "type": "Ready"}]},
        "spec": {"containers": [{"image": "x", "name": "c", "ports": [{"containerPort": 80}]}]},
        "metadata": {"name": "p", "namespace": "d", "creationTimestamp": "2024-05-01T10:00:00Z"}
    });
    let got = String::from_utf8(encode(&pod, MediaType::Json).unwrap()).unwrap();
    assert_eq!(
        got,
        concat!(
            r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"d","creationTimestamp":"2024-05-01T10:00:00Z"},"#,
            r#""spec":{"containers":[{"name":"c","image":"x","ports":[{"containerPort":80}],"resources":{}}]},"#,
            r#""status":{"phase":"Running","conditions":[{"type":"Ready","status":"True","lastProbeTime":null,"lastTransitionTime":null}],"#,
            r#""startTime":"2024-05-01T10:00:00Z"}}"#,
            "\n"
        )
    );
}

#[test]
fn quantities_are_stored_and_served_canonically() {
    let pod = json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"q"},
        "spec":{"containers":[{"name":"c","resources":{
            "requests":{"cpu":0.5,"memory":"1024Mi"},"limits":{"cpu":"1000m","memory":"1.5Gi"}}}]}});
    let n = normalize(&pod).unwrap();
    let r = &n["spec"]["containers"][0]["resources"];
    assert_eq!(
        r,
        &json!({"limits":{"cpu":"1","memory":"1536Mi"},"requests":{"cpu":"500m","memory":"1Gi"}})
    );
    let proto = encode(&pod, MediaType::Protobuf).unwrap();
    // Quantity{string="500m"} inside the requests map entry.
    let needle = b"\x12\x06\x0a\x04500m";
    assert!(proto.windows(needle.len()).any(|w| w == needle));
    assert_eq!(decode(&proto).unwrap(), n);
    let e = encode(&json!({"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"name":"c","resources":{"limits":{"cpu":"1K"}}}]}}), MediaType::Protobuf).unwrap_err();
    assert!(
        e.to_string()
            .contains("spec.containers[0].resources.limits[cpu]")
            && e.to_string().contains("suffix"),
        "{e}"
    );
}
