//! The largest secrets kube-apiserver takes (issue 15, item 2) on atrest's API server (real etcd): ten secrets of
//! 1 MiB of data each (`core.MaxSecretSize`, validated by both API servers), about 10 MiB in all, more than twice
//! gRPC's default 4 MiB receive limit in one etcd range.
//! * `kubectl encrypt status` counts them per storage and key (its etcd scan pages and halves a page that is too
//!   large, instead of failing with "decoded message length too large");
//! * `kubectl reencrypt` lists and rewrites them through the API server (whose etcd client takes messages as
//!   large as kube-apiserver's does);
//! * `kubectl encrypt rotate` rewrites them and its verify phase proves from etcd that none uses the old key.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use atrest_e2e::bed;
use atrest_e2e::bins;
use atrest_e2e::run::{encrypt, kubectl, ok, text};
use atrest_sandbox::Sandbox;
use serde_json::Value;

/// 1 MiB of data per secret: the most a Secret may hold (`core.MaxSecretSize`; kube-apiserver refuses more with
/// `data: Too long`); with the object's metadata and an encryption envelope still under etcd's
/// `--max-request-bytes` default (1.5 MiB).
const DATA_BYTES: usize = 1024 * 1024;
const SECRETS: usize = 10;
const NAMESPACE: &str = "big";

fn payload(i: usize) -> Vec<u8> {
    // Printable and different per secret, so a mixed-up read back shows.
    (0..DATA_BYTES)
        .map(|j| b'a' + ((i * 7 + j * 13 + j / 1024) % 26) as u8)
        .collect()
}

/// `(storage, key) -> count` of secrets from `kubectl encrypt status -o json`; fails on an etcd error.
fn secret_counts(sb: &Sandbox, home: &Path) -> Vec<(String, String, u64)> {
    let status: Value =
        serde_json::from_str(&ok(encrypt(sb, home, &["status", "-o", "json"]), "status")).unwrap();
    assert!(
        status.get("etcdError").is_none_or(Value::is_null),
        "status could not read etcd: {status:#}"
    );
    status["storage"]
        .as_array()
        .unwrap_or_else(|| panic!("no etcd counts: {status:#}"))
        .iter()
        .filter(|r| r["resource"] == "secrets")
        .map(|r| {
            (
                r["storage"].as_str().unwrap().to_string(),
                r["key"].as_str().unwrap_or("-").to_string(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn count_of(counts: &[(String, String, u64)], storage: &str, key: &str) -> u64 {
    counts
        .iter()
        .filter(|(s, k, _)| s == storage && k == key)
        .map(|c| c.2)
        .sum()
}

#[test]
fn secrets_near_the_request_limit_are_counted_listed_rewritten_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let home = bed::home(dir.path());
    let sb = bed::node(dir.path());

    ok(
        kubectl(&sb, &home, &["create", "namespace", NAMESPACE]),
        "create namespace",
    );
    for i in 0..SECRETS {
        let file = dir.path().join(format!("data-{i}"));
        std::fs::write(&file, payload(i)).unwrap();
        ok(
            kubectl(
                &sb,
                &home,
                &[
                    "create",
                    "secret",
                    "generic",
                    &format!("big-{i}"),
                    "-n",
                    NAMESPACE,
                    &format!("--from-file=k={}", file.display()),
                ],
            ),
            &format!("create big-{i}"),
        );
        std::fs::remove_file(&file).unwrap();
    }

    // Enable; status counts the plaintext secrets from etcd.
    ok(encrypt(&sb, &home, &["--timeout", "120s"]), "enable");
    let counts = secret_counts(&sb, &home);
    assert!(
        count_of(&counts, "identity", "-") >= SECRETS as u64,
        "{counts:?}"
    );

    // reencrypt lists them through the API server (one etcd range of ~10 MiB) and rewrites each.
    let out = Command::new(bins::plugin("reencrypt"))
        .env("KUBECONFIG", sb.kubeconfig())
        .env("HOME", &home)
        .args(["-n", NAMESPACE, "-o", "json", "--state-file"])
        .arg(dir.path().join("reencrypt.state"))
        .output()
        .unwrap();
    let report: Value = serde_json::from_str(&ok(out, "reencrypt")).unwrap();
    assert_eq!(report["totals"]["failed"], 0, "{report:#}");
    assert_eq!(report["totals"]["listed"], SECRETS as u64, "{report:#}");
    assert_eq!(report["totals"]["rewritten"], SECRETS as u64, "{report:#}");
    let counts = secret_counts(&sb, &home);
    assert_eq!(
        count_of(&counts, "secretbox", "key1"),
        counts.iter().map(|c| c.2).sum::<u64>(),
        "every secret on key1 after reencrypt: {counts:?}"
    );
    assert!(count_of(&counts, "secretbox", "key1") >= SECRETS as u64);

    // rotate: rewrite through the API server, then the verify phase scans etcd for key1.
    let out = ok(
        encrypt(&sb, &home, &["rotate", "--timeout", "120s"]),
        "rotate",
    );
    assert!(out.contains("Rotate complete"), "{out}");
    let counts = secret_counts(&sb, &home);
    assert_eq!(count_of(&counts, "secretbox", "key1"), 0, "{counts:?}");
    assert!(
        count_of(&counts, "secretbox", "key2") >= SECRETS as u64,
        "{counts:?}"
    );

    // And each reads back whole through the API server.
    for i in [0, SECRETS - 1] {
        let got = kubectl(
            &sb,
            &home,
            &[
                "get",
                "secret",
                &format!("big-{i}"),
                "-n",
                NAMESPACE,
                "-o",
                "go-template={{.data.k | base64decode}}",
            ],
        );
        assert!(got.status.success(), "{}", text(&got.stderr));
        assert!(got.stdout == payload(i), "big-{i} reads back changed");
    }
}

/// The one etcd read path ([`atrest_core::etcd::EtcdReader`]) on a range larger than its own 32 MiB receive
/// limit: the page that is too large is asked again with half the keys until it fits, and every key is read.
#[tokio::test]
async fn etcd_pages_larger_than_the_receive_limit_are_halved() {
    use atrest_core::etcd::{EtcdConfig, EtcdReader, prefix_range_end};
    let etcd = atrest_e2e::etcd::TlsEtcd::start();
    const N: usize = 36; // 36 x 1 MiB
    for i in 0..N {
        etcd.put(&format!("/registry/secrets/big/s-{i:02}"), payload(i))
            .await;
    }
    let files = etcd.client_files();
    let reader = EtcdReader::connect(&EtcdConfig {
        endpoints: vec![etcd.endpoint()],
        cacert: files.ca,
        cert: files.cert,
        key: files.key,
        dial_timeout: Duration::from_secs(10),
    })
    .await
    .unwrap();
    let start = b"/registry/secrets/big/".to_vec();
    let end = prefix_range_end(&start);
    let mut pager = reader.pages(start, end, 2000);
    let mut keys = Vec::new();
    while let Some(page) = pager.next_page().await.unwrap() {
        for kv in &page {
            let i: usize = String::from_utf8_lossy(kv.key())
                .rsplit('-')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(kv.value() == payload(i), "{i} read back changed");
            keys.push(i);
        }
    }
    assert_eq!(keys, (0..N).collect::<Vec<_>>());
    assert!(
        pager.round_trips() >= 2,
        "36 MiB cannot come in one 32 MiB message: {} round trips",
        pager.round_trips()
    );
}
