//! etcd keys of other resources: `kubectl etcdcheck --resource` and `kubectl reencrypt --verify` find objects where
//! kube-apiserver puts them (core's `scan::StoredResource`), decrypt them with the transformers of their
//! group/resource and check them as the object their key names. On the sandbox with an EncryptionConfiguration
//! covering configmaps, APIServices (`/registry/apiregistration.k8s.io/apiservices/`), a CRD's custom resources
//! (`/registry/stable.example.com/crontabs/`) and Deployments: the sandbox stores the first two itself; it serves no
//! CRDs or Deployments, so those values are written to etcd exactly as kube-apiserver writes them (JSON for custom
//! resources, the protobuf envelope for Deployments), sealed with the same configuration and the key as
//! authenticated data.

use std::process::Output;

use atrest_core::config::{EncryptionConfiguration, GroupResource};
use atrest_core::transform::EncryptionTransformers;
use atrest_e2e::bed;
use atrest_e2e::run::{self, kubectl, ok, plugin_command, text};
use atrest_sandbox::Sandbox;
use serde_json::Value;

/// A test key (32 bytes), not a secret.
const KEY: &str = "YXRyZXN0LWV0Y2Qta2V5cy10ZXN0LWtleS0zMmJ5dGU=";

fn config_text() -> String {
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n      - secrets\n      - configmaps\n      - apiservices.apiregistration.k8s.io\n      - crontabs.stable.example.com\n      - deployments.apps\n    providers:\n      - aescbc:\n          keys:\n            - name: key1\n              secret: {KEY}\n      - identity: {{}}\n"
    )
}

/// Stores `plain` at `key` sealed for `resource` as the configured kube-apiserver would.
fn put_sealed(
    sb: &Sandbox,
    rt: &tokio::runtime::Runtime,
    resource: GroupResource,
    key: &str,
    plain: &[u8],
) {
    let cfg = EncryptionConfiguration::from_text(&config_text(), "test").unwrap();
    let t = EncryptionTransformers::from_config(&cfg).unwrap();
    let sealed = t
        .for_resource(&resource)
        .write(plain, key.as_bytes())
        .unwrap();
    rt.block_on(async {
        let etcd = sb.etcd_client().await.unwrap();
        etcd.put(key, sealed).await.unwrap();
    });
}

fn etcd_value(sb: &Sandbox, rt: &tokio::runtime::Runtime, key: &str) -> Vec<u8> {
    rt.block_on(async {
        let etcd = sb.etcd_client().await.unwrap();
        let r = etcd.get(key, None).await.unwrap();
        r.kvs()
            .first()
            .map(|kv| kv.value().to_vec())
            .unwrap_or_default()
    })
}

fn etcdcheck(sb: &Sandbox, cfg: &std::path::Path, args: &[&str]) -> Output {
    plugin_command("etcdcheck")
        .arg("--root")
        .arg(sb.root())
        .args(["--endpoints", sb.etcd_endpoint(), "--encryption-config"])
        .arg(cfg)
        .args(["-o", "json"])
        .args(args)
        .output()
        .unwrap()
}

/// The JSON items etcdcheck printed (one object per line or an array).
fn items(out: &Output) -> Vec<Value> {
    let s = text(&out.stdout);
    let v: Value = serde_json::from_str(&s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"));
    match v {
        Value::Array(a) => a,
        Value::Object(ref o) if o.contains_key("items") => {
            o["items"].as_array().cloned().unwrap_or_default()
        }
        other => vec![other],
    }
}

#[test]
fn other_resources_are_found_decrypted_and_decoded_where_the_apiserver_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let home = bed::home(dir.path());
    let sb = bed::node(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cfg = bed::enable_encryption(&sb, &config_text());

    run::create_configmap(&sb, &home, "c1");
    let apiservice = dir.path().join("apiservice.yaml");
    std::fs::write(&apiservice, bed::MISSING_APISERVICE).unwrap();
    ok(
        kubectl(&sb, &home, &["apply", "-f", apiservice.to_str().unwrap()]),
        "create the APIService",
    );
    // The sandbox stored both encrypted under kube-apiserver's keys.
    for key in [
        "/registry/configmaps/default/c1",
        "/registry/apiregistration.k8s.io/apiservices/v1beta1.metrics.k8s.io",
    ] {
        assert!(
            etcd_value(&sb, &rt, key).starts_with(b"k8s:enc:aescbc:v1:key1:"),
            "{key}"
        );
    }
    // A custom resource (JSON) and a Deployment (protobuf, a kind atrest's codecs do not know).
    let cr_key = "/registry/stable.example.com/crontabs/default/tab1";
    let cr = serde_json::json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab",
        "metadata": {"name": "tab1", "namespace": "default", "uid": "0c4d0c3c-1d2b-4c89-9a7e-1f2d3c4b5a69"},
        "spec": {"cronSpec": "* * * * */5", "image": "my-cron-image"}});
    put_sealed(
        &sb,
        &rt,
        GroupResource::new("stable.example.com", "crontabs"),
        cr_key,
        &serde_json::to_vec(&cr).unwrap(),
    );
    let deploy_key = "/registry/deployments/default/web";
    let deployment = atrest_core::storage::StorageEnvelope {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        // metadata { name: "web", namespace: "default" }
        raw: [
            &[0x0a, 0x0e, 0x0a, 0x03][..],
            b"web",
            &[0x1a, 0x07],
            b"default",
        ]
        .concat(),
        content_encoding: String::new(),
        content_type: String::new(),
    };
    put_sealed(
        &sb,
        &rt,
        GroupResource::new("apps", "deployments"),
        deploy_key,
        &deployment.encode(),
    );

    // etcdcheck --resource as kubectl names them.
    for (resource, ns_args, key, want_verified) in [
        (
            "configmaps",
            vec!["-n", "default"],
            "/registry/configmaps/default/c1",
            Some(true),
        ),
        (
            "apiservices.apiregistration.k8s.io",
            vec![],
            "/registry/apiregistration.k8s.io/apiservices/v1beta1.metrics.k8s.io",
            Some(true),
        ),
        (
            "crontabs.stable.example.com",
            vec!["-n", "default"],
            cr_key,
            Some(true),
        ),
        ("deployments.apps", vec!["-n", "default"], deploy_key, None),
    ] {
        let mut args = vec!["--resource", resource];
        args.extend(ns_args);
        let out = etcdcheck(&sb, &cfg, &args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{resource}: {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let items = items(&out);
        let item = items
            .iter()
            .find(|i| i["key"] == key)
            .unwrap_or_else(|| panic!("{resource}: no {key} in {items:?}"));
        assert_eq!(item["storage"], "aescbc", "{resource}: {item}");
        assert_eq!(item["keyName"], "key1", "{resource}: {item}");
        assert_eq!(
            item["verified"],
            serde_json::json!(want_verified),
            "{resource}: {item}"
        );
        if want_verified.is_none() {
            let e = item["error"].as_str().unwrap_or_default();
            assert!(e.starts_with("decrypted, kind not decoded"), "{item}");
        }
    }
    // The etcd segment itself is accepted too.
    let out = etcdcheck(
        &sb,
        &cfg,
        &["--resource", "apiregistration.k8s.io/apiservices"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(items(&out).len(), 1);

    // reencrypt --verify counts the APIServices where they are.
    let out = plugin_command("reencrypt")
        .arg("--kubeconfig")
        .arg(sb.kubeconfig())
        .args([
            "configmaps",
            "apiservices.apiregistration.k8s.io",
            "--dry-run",
            "-A",
            "--progress",
            "none",
            "-o",
            "json",
            "--verify",
            "--root",
        ])
        .arg(sb.root())
        .args(["--endpoints", sb.etcd_endpoint(), "--encryption-config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{}", text(&out.stderr)));
    let rows = v["verify"]["namespaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let apiservices = rows
        .iter()
        .find(|r| r["resource"] == "apiservices.apiregistration.k8s.io")
        .unwrap_or_else(|| panic!("no apiservices row: {v}"));
    assert_eq!(apiservices["objects"], 1, "{v}");
    assert_eq!(apiservices["current"], 1, "{v}");
    let configmaps: u64 = rows
        .iter()
        .filter(|r| r["resource"] == "configmaps")
        .map(|r| r["current"].as_u64().unwrap_or(0))
        .sum();
    assert!(configmaps >= 1, "{v}");
}
