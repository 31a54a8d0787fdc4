//! Storage exactly as kube-apiserver: protobuf envelope by default, JSON with `--storage-media-type`,
//! EncryptionConfiguration transformers (first provider writes, all read), GuaranteedUpdate's stale-read
//! rewrite, optimistic concurrency (409), pagination and expired continue tokens (410).

use crate::support::{Cluster, kubectl, kubectl_ok};

const SECRETBOX_KEY1: &str = "c2VjcmV0LWtleS1vbmUtdGhpcnR5LXR3by1ieXRlcyE=";
const SECRETBOX_KEY2: &str = "c2VjcmV0LWtleS10d28tdGhpcnR5LXR3by1ieXRlcyE=";

fn encryption_config(keys: &[(&str, &str)]) -> String {
    let mut s = String::from(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources:\n  - secrets\n  providers:\n  - secretbox:\n      keys:\n",
    );
    for (name, secret) in keys {
        s.push_str(&format!("      - name: {name}\n        secret: {secret}\n"));
    }
    s.push_str("  - identity: {}\n");
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_then_secretbox_and_stale_rewrite() {
    let mut c = Cluster::start("1.32", &[]).await;
    let admin = c.admin();
    let out = kubectl(
        &admin,
        &["create", "secret", "generic", "old", "--from-literal=k=v1"],
        None,
    )
    .await;
    out.ok();
    let raw = c.etcd.get_raw("/registry/secrets/default/old");
    assert_eq!(&raw[..4], b"k8s\0", "protobuf envelope by default");
    assert!(
        raw.ends_with(&[0x1a, 0x00, 0x22, 0x00]),
        "empty contentEncoding/contentType emitted"
    );

    // Restart with secretbox first, identity second (reads old plaintext).
    let cfg = c.pki.path("enc.yaml");
    std::fs::write(&cfg, encryption_config(&[("key1", SECRETBOX_KEY1)])).unwrap();
    c.stop_server().await;
    c.extra_flags = vec![
        format!("--encryption-provider-config={}", cfg.display()),
        "--encryption-provider-config-automatic-reload=true".into(),
    ];
    c.start_server().await.unwrap();
    kubectl_ok(
        &admin,
        &["create", "secret", "generic", "new", "--from-literal=k=v2"],
    )
    .await;
    let raw = c.etcd.get_raw("/registry/secrets/default/new");
    assert!(
        raw.starts_with(b"k8s:enc:secretbox:v1:key1:"),
        "{:?}",
        String::from_utf8_lossy(&raw[..30])
    );
    // The old secret still reads (identity provider), and is stale.
    assert_eq!(
        kubectl_ok(
            &admin,
            &["get", "secret", "old", "-o", "jsonpath={.data.k}"]
        )
        .await,
        "djE="
    );

    let old_rev = c
        .etcd
        .mod_revision("/registry/secrets/default/old")
        .unwrap();
    let new_rev = c
        .etcd
        .mod_revision("/registry/secrets/default/new")
        .unwrap();
    let json = kubectl(&admin, &["get", "secrets", "-A", "-o", "json"], None).await;
    let out = kubectl(&admin, &["replace", "-f", "-"], Some(json.ok())).await;
    assert!(out.ok().contains("secret/old replaced"), "{}", out.stdout);
    assert!(
        c.etcd
            .get_raw("/registry/secrets/default/old")
            .starts_with(b"k8s:enc:secretbox:v1:key1:")
    );
    assert_ne!(
        c.etcd
            .mod_revision("/registry/secrets/default/old")
            .unwrap(),
        old_rev,
        "stale read rewritten"
    );
    assert_eq!(
        c.etcd
            .mod_revision("/registry/secrets/default/new")
            .unwrap(),
        new_rev,
        "current one not rewritten"
    );

    // A second replace writes nothing.
    let revs = |c: &Cluster| {
        (
            c.etcd
                .mod_revision("/registry/secrets/default/old")
                .unwrap(),
            c.etcd
                .mod_revision("/registry/secrets/default/new")
                .unwrap(),
        )
    };
    let before = revs(&c);
    let json = kubectl(&admin, &["get", "secrets", "-A", "-o", "json"], None).await;
    kubectl(&admin, &["replace", "-f", "-"], Some(json.ok()))
        .await
        .ok();
    assert_eq!(revs(&c), before);

    // Automatic reload: key2 first; new writes use it, key1 values are stale and get rewritten.
    std::fs::write(
        &cfg,
        encryption_config(&[("key2", SECRETBOX_KEY2), ("key1", SECRETBOX_KEY1)]),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut n = 0;
    loop {
        n += 1;
        let name = format!("probe{n}");
        kubectl_ok(
            &admin,
            &["create", "secret", "generic", &name, "--from-literal=k=v"],
        )
        .await;
        if c.etcd
            .get_raw(&format!("/registry/secrets/default/{name}"))
            .starts_with(b"k8s:enc:secretbox:v1:key2:")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "reload not picked up");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let json = kubectl(&admin, &["get", "secret", "old", "-o", "json"], None).await;
    kubectl(&admin, &["replace", "-f", "-"], Some(json.ok()))
        .await
        .ok();
    assert!(
        c.etcd
            .get_raw("/registry/secrets/default/old")
            .starts_with(b"k8s:enc:secretbox:v1:key2:")
    );

    // A broken file on reload keeps the old transformers.
    std::fs::write(
        &cfg,
        "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources: []\n",
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    kubectl_ok(
        &admin,
        &[
            "create",
            "secret",
            "generic",
            "after-bad",
            "--from-literal=k=v",
        ],
    )
    .await;
    assert!(
        c.etcd
            .get_raw("/registry/secrets/default/after-bad")
            .starts_with(b"k8s:enc:secretbox:v1:key2:")
    );

    // The same broken file at start is a start error with the apiserver's wording.
    c.stop_server().await;
    let err = c.start_server().await.expect_err("start must fail");
    assert!(
        err.to_string().starts_with("error while parsing file: "),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_storage_conflict_and_pagination() {
    let c = Cluster::start(
        "1.32",
        &[
            "--storage-media-type=application/json",
            "--etcd-prefix=/custom",
        ],
    )
    .await;
    let admin = c.admin();
    for n in ["a", "b", "c"] {
        kubectl_ok(
            &admin,
            &["create", "secret", "generic", n, "--from-literal=k=v"],
        )
        .await;
    }
    let raw = c.etcd.get_raw("/custom/secrets/default/a");
    let v: serde_json::Value = serde_json::from_slice(&raw).expect("JSON storage");
    assert_eq!(v["kind"], "Secret");
    assert!(
        raw.starts_with(b"{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\""),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert!(
        v["metadata"].get("resourceVersion").is_none(),
        "resourceVersion is not stored"
    );

    // Pages of one: kubectl follows continue tokens.
    assert_eq!(
        kubectl_ok(&admin, &["get", "secrets", "--chunk-size=1", "-o", "name"]).await,
        "secret/a\nsecret/b\nsecret/c\n"
    );
    let page = kubectl(
        &admin,
        &["get", "--raw", "/api/v1/namespaces/default/secrets?limit=1"],
        None,
    )
    .await;
    let page = page.json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["metadata"]["remainingItemCount"], 2);
    let tok = page["metadata"]["continue"].as_str().unwrap().to_string();
    // Touch a key so compaction removes the listed revision, then the token has expired.
    kubectl_ok(&admin, &["label", "secret", "a", "x=y"]).await;
    c.etcd.compact();
    let out = kubectl(
        &admin,
        &[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/default/secrets?limit=1&continue={tok}"),
        ],
        None,
    )
    .await;
    out.fails_with("Error from server (Expired): The provided continue parameter is too old to display a consistent list result.");

    // Optimistic concurrency: replace with a stale resourceVersion.
    let stale = kubectl(&admin, &["get", "secret", "b", "-o", "yaml"], None).await;
    let stale = stale.ok().to_string();
    kubectl_ok(&admin, &["label", "secret", "b", "x=y"]).await;
    let out = kubectl(&admin, &["replace", "-f", "-"], Some(&stale)).await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim(),
        "Error from server (Conflict): error when replacing \"STDIN\": Operation cannot be fulfilled on secrets \"b\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // AlreadyExists and NotFound texts.
    let out = kubectl(&admin, &["create", "ns", "default"], None).await;
    assert_eq!(
        out.stderr.trim(),
        "Error from server (AlreadyExists): namespaces \"default\" already exists"
    );
    let out = kubectl(&admin, &["get", "secret", "nope"], None).await;
    assert_eq!(
        out.stderr.trim(),
        "Error from server (NotFound): secrets \"nope\" not found"
    );
    let out = kubectl(
        &admin,
        &[
            "create",
            "secret",
            "generic",
            "x",
            "-n",
            "nonexist",
            "--from-literal=a=b",
        ],
        None,
    )
    .await;
    assert_eq!(
        out.stderr.trim(),
        "error: failed to create secret namespaces \"nonexist\" not found"
    );

    // Namespace deletion removes its contents.
    kubectl_ok(&admin, &["create", "ns", "tmp"]).await;
    kubectl_ok(
        &admin,
        &[
            "create",
            "secret",
            "generic",
            "s",
            "-n",
            "tmp",
            "--from-literal=a=b",
        ],
    )
    .await;
    assert_eq!(
        kubectl_ok(&admin, &["delete", "ns", "tmp"]).await.trim(),
        "namespace \"tmp\" deleted"
    );
    assert!(c.etcd.keys("/custom/secrets/tmp/").is_empty());
    assert!(c.etcd.keys("/custom/namespaces/tmp").is_empty());
}
