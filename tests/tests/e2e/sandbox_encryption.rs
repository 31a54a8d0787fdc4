//! Acceptance (issue 3): encryption at rest through the kubeadm manifest, with the real kubectl and etcdctl.
//! Adding `--encryption-provider-config` (secretbox) plus its volume to kube-apiserver.yaml restarts the server
//! with the new flags; new secrets are stored `k8s:enc:secretbox:v1:…`; the tutorial's
//! `kubectl get secrets -A -o json | kubectl replace -f -` re-encrypts old ones; a second replace writes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use atrest_e2e::bed;
use atrest_e2e::run::{Kubectl, etcdctl, wait_for};
use atrest_sandbox::Sandbox;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// key → (value, mod revision) of every secret in etcd, read with etcdctl.
fn secrets_in_etcd(sb: &Sandbox) -> BTreeMap<String, (Vec<u8>, i64)> {
    let out = etcdctl(sb, &["get", "--prefix", "/registry/secrets/", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let dec = |s: &serde_json::Value| STANDARD.decode(s.as_str().unwrap()).unwrap();
    v["kvs"]
        .as_array()
        .map(|kvs| {
            kvs.iter()
                .map(|kv| {
                    let key = String::from_utf8(dec(&kv["key"])).unwrap();
                    (
                        key,
                        (dec(&kv["value"]), kv["mod_revision"].as_i64().unwrap()),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn secretbox_through_the_manifest_and_the_replace_pipeline() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = bed::node(tmp.path());
    let kubectl = Kubectl::new(&sb, tmp.path());
    let k = |args: &[&str], stdin: Option<&[u8]>| kubectl.ok_with(args, stdin);
    k(
        &[
            "create",
            "secret",
            "generic",
            "old",
            "--from-literal=password=123456",
        ],
        None,
    );
    k(&["create", "ns", "marketing"], None);
    k(
        &[
            "create",
            "secret",
            "generic",
            "old2",
            "-n",
            "marketing",
            "--from-literal=a=b",
        ],
        None,
    );
    let before = secrets_in_etcd(&sb);
    assert!(
        before["/registry/secrets/default/old"]
            .0
            .starts_with(b"k8s\x00"),
        "identity protobuf"
    );

    // The documented edit: config under /etc/kubernetes/enc, flag, volumeMount and hostPath volume.
    let enc_dir = sb.root().join("etc/kubernetes/enc");
    std::fs::create_dir_all(&enc_dir).unwrap();
    let mut key = [0u8; 32];
    {
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .read_exact(&mut key)
            .unwrap();
    }
    let key_b64 = STANDARD.encode(key);
    let config = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n      - secrets\n    providers:\n      - secretbox:\n          keys:\n            - name: key1\n              secret: {key_b64}\n      - identity: {{}}\n"
    );
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(enc_dir.join("enc.yaml"))
            .unwrap();
        f.write_all(config.as_bytes()).unwrap();
    }
    let manifest = sb.manifest("kube-apiserver");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text
        .replace("    - --enable-bootstrap-token-auth=true\n", "    - --enable-bootstrap-token-auth=true\n    - --encryption-provider-config=/etc/kubernetes/enc/enc.yaml\n")
        .replace("    volumeMounts:\n", "    volumeMounts:\n    - mountPath: /etc/kubernetes/enc\n      name: enc\n      readOnly: true\n")
        .replace("  volumes:\n", "  volumes:\n  - hostPath:\n      path: /etc/kubernetes/enc\n      type: DirectoryOrCreate\n    name: enc\n");
    let starts = sb.apiserver_starts();
    std::fs::write(manifest.with_file_name(".kube-apiserver.yaml.tmp"), &text).unwrap();
    std::fs::rename(
        manifest.with_file_name(".kube-apiserver.yaml.tmp"),
        &manifest,
    )
    .unwrap();
    sb.wait_restarted(starts, Duration::from_secs(60)).unwrap();

    // The mirror pod shows the running flags (the kubelet replaces it; NotFound in between is fine).
    let pod = format!("kube-apiserver-{}", sb.node_name());
    let flags = wait_for(
        "the mirror pod updated with the new flags",
        Duration::from_secs(60),
        || {
            let out = kubectl.run(&[
                "get",
                "pod",
                &pod,
                "-n",
                "kube-system",
                "-o",
                "jsonpath={.spec.containers[0].command}",
            ]);
            let out = String::from_utf8_lossy(&out.stdout).into_owned();
            out.contains("--encryption-provider-config=/etc/kubernetes/enc/enc.yaml")
                .then_some(out)
        },
    );
    assert!(flags.contains("kube-apiserver"));

    k(
        &[
            "create",
            "secret",
            "generic",
            "new",
            "--from-literal=password=s3cr3t",
        ],
        None,
    );
    let after = secrets_in_etcd(&sb);
    assert!(
        after["/registry/secrets/default/new"]
            .0
            .starts_with(b"k8s:enc:secretbox:v1:key1:")
    );
    assert!(
        !after["/registry/secrets/default/new"]
            .0
            .windows(6)
            .any(|w| w == b"s3cr3t")
    );
    assert_eq!(
        after["/registry/secrets/default/old"], before["/registry/secrets/default/old"],
        "old secret untouched"
    );
    // Reads of old (identity) secrets still work.
    assert!(k(&["get", "secret", "old", "-o", "yaml"], None).contains("password: MTIzNDU2"));

    // The tutorial's pipeline re-encrypts everything.
    let all = k(&["get", "secrets", "-A", "-o", "json"], None);
    let out = k(&["replace", "-f", "-"], Some(all.as_bytes()));
    assert!(
        out.contains("secret/old replaced\n") && out.contains("secret/old2 replaced\n"),
        "{out}"
    );
    let once = secrets_in_etcd(&sb);
    for (key, (value, _)) in &once {
        assert!(
            value.starts_with(b"k8s:enc:secretbox:v1:key1:"),
            "{key} not re-encrypted"
        );
    }
    assert!(once["/registry/secrets/default/old"].1 > before["/registry/secrets/default/old"].1);

    // A second replace writes nothing: same values, same mod revisions (resourceVersions).
    let all = k(&["get", "secrets", "-A", "-o", "json"], None);
    k(&["replace", "-f", "-"], Some(all.as_bytes()));
    let twice = secrets_in_etcd(&sb);
    assert_eq!(twice, once, "a no-op replace rewrote etcd");
    let rv_json: serde_json::Value =
        serde_json::from_str(&k(&["get", "secrets", "-A", "-o", "json"], None)).unwrap();
    for item in rv_json["items"].as_array().unwrap() {
        let key = format!(
            "/registry/secrets/{}/{}",
            item["metadata"]["namespace"].as_str().unwrap(),
            item["metadata"]["name"].as_str().unwrap()
        );
        assert_eq!(
            item["metadata"]["resourceVersion"].as_str().unwrap(),
            once[&key].1.to_string(),
            "{key}"
        );
    }
    sb.shutdown();
}
