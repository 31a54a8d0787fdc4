//! End-to-end tests of `kubectl reencrypt` on the sandbox: real etcd, our API server with an
//! EncryptionConfiguration enabled through the kube-apiserver manifest, the built plugin (and once through the
//! real kubectl's plugin dispatch). Storage is checked by reading etcd directly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use atrest_core::etcd::GetOptions;
use atrest_e2e::bed;
use atrest_e2e::bins;
use atrest_sandbox::k8s_openapi::ByteString;
use atrest_sandbox::k8s_openapi::api::core::v1::{Namespace, Secret};
use atrest_sandbox::kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use atrest_sandbox::{Sandbox, kube};
use serde_json::Value;

/// A test key (32 bytes: "atrest-reencrypt-test-key-32byte"), not a secret.
const KEY: &str = "YXRyZXN0LXJlZW5jcnlwdC10ZXN0LWtleS0zMmJ5dGU=";
const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:aescbc:v1:key1:";

struct Bed {
    sb: Sandbox,
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    client: kube::Client,
    total: usize,
}

fn ns_name(i: usize) -> String {
    format!("team-{i:03}")
}

fn secret_name(i: usize) -> String {
    format!("s-{i:04}")
}

/// A sandbox with `namespaces × per_ns` plaintext secrets (~1 KiB each), then encryption enabled (aescbc first,
/// identity second) by editing the kube-apiserver manifest; returns once the API server runs with it.
fn bed(namespaces: usize, per_ns: usize) -> Bed {
    let dir = tempfile::tempdir().unwrap();
    let sb = bed::node(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(sb.kube_client(&sb.kubeconfig())).unwrap();
    rt.block_on(seed(&client, namespaces, per_ns));
    let mut bed = Bed {
        sb,
        dir,
        rt,
        client,
        total: namespaces * per_ns,
    };
    assert_eq!(
        bed.storage().get("plaintext").copied().unwrap_or(0),
        bed.total,
        "seeded in plaintext"
    );
    bed::enable_encryption(&bed.sb, &config_text());
    bed.wait_encrypting();
    bed
}

async fn seed(client: &kube::Client, namespaces: usize, per_ns: usize) {
    let nsapi: Api<Namespace> = Api::all(client.clone());
    for n in 0..namespaces {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(ns_name(n)),
                ..Default::default()
            },
            ..Default::default()
        };
        nsapi.create(&PostParams::default(), &ns).await.unwrap();
    }
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = Vec::new();
    for n in 0..namespaces {
        for i in 0..per_ns {
            let api: Api<Secret> = Api::namespaced(client.clone(), &ns_name(n));
            let permit = sem.clone().acquire_owned().await.unwrap();
            tasks.push(tokio::spawn(async move {
                let s = Secret {
                    metadata: ObjectMeta {
                        name: Some(secret_name(i)),
                        ..Default::default()
                    },
                    data: Some(BTreeMap::from([(
                        "v".to_string(),
                        ByteString(vec![b'x'; 1000]),
                    )])),
                    ..Default::default()
                };
                // Transient connection errors are retried; an API error is a test failure.
                let mut attempts = 0;
                loop {
                    match api.create(&PostParams::default(), &s).await {
                        Ok(_) => break,
                        Err(kube::Error::Api(e)) => panic!("creating {}: {e}", secret_name(i)),
                        Err(e) if attempts < 20 => {
                            attempts += 1;
                            eprintln!("retrying after a connection error: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(e) => panic!("creating {}: {e}", secret_name(i)),
                    }
                }
                drop(permit);
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// An aescbc-first EncryptionConfiguration for secrets with one key.
fn config_text() -> String {
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n      - secrets\n    providers:\n      - aescbc:\n          keys:\n            - name: key1\n              secret: {KEY}\n      - identity: {{}}\n"
    )
}

impl Bed {
    /// Waits until a new secret is stored encrypted (the API server runs with the configuration), then makes a
    /// fresh client (new connections).
    fn wait_encrypting(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for attempt in 0.. {
            assert!(
                Instant::now() < deadline,
                "the API server does not encrypt new secrets"
            );
            let client = self
                .rt
                .block_on(self.sb.kube_client(&self.sb.kubeconfig()))
                .unwrap();
            let name = format!("probe-{attempt}");
            let created = self.rt.block_on(async {
                let api: Api<Secret> = Api::namespaced(client, "default");
                let s = Secret {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                api.create(&PostParams::default(), &s).await.is_ok()
            });
            let encrypted = created
                && self.rt.block_on(async {
                    let etcd = self.sb.etcd_client().await.unwrap();
                    let v = etcd
                        .get(format!("/registry/secrets/default/{name}"), None)
                        .await
                        .unwrap();
                    v.kvs()
                        .first()
                        .is_some_and(|kv| kv.value().starts_with(ENCRYPTED_PREFIX))
                });
            if encrypted {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.client = self
            .rt
            .block_on(self.sb.kube_client(&self.sb.kubeconfig()))
            .unwrap();
    }

    /// How the secrets are stored in etcd: counts per class (`aescbc:key1`, `plaintext`, `other`).
    fn storage(&self) -> BTreeMap<&'static str, usize> {
        let values = self.rt.block_on(async {
            let etcd = self.sb.etcd_client().await.unwrap();
            let resp = etcd
                .get("/registry/secrets/", Some(GetOptions::new().with_prefix()))
                .await
                .unwrap();
            resp.kvs()
                .iter()
                .filter(|kv| kv.key().starts_with(b"/registry/secrets/team-"))
                .map(|kv| kv.value().to_vec())
                .collect::<Vec<_>>()
        });
        let mut out = BTreeMap::new();
        for v in values {
            let class = if v.starts_with(ENCRYPTED_PREFIX) {
                "aescbc:key1"
            } else if v.starts_with(b"k8s\0") || v.starts_with(b"{") {
                "plaintext"
            } else {
                "other"
            };
            *out.entry(class).or_insert(0) += 1;
        }
        out
    }

    fn assert_all_encrypted(&self, expected: usize) {
        let s = self.storage();
        assert_eq!(
            s.get("aescbc:key1").copied().unwrap_or(0),
            expected,
            "storage classes: {s:?}"
        );
        assert_eq!(s.len(), 1, "storage classes: {s:?}");
    }

    fn state_file(&self) -> PathBuf {
        self.dir.path().join("reencrypt-state.json")
    }

    fn plugin(&self) -> Command {
        let mut cmd = Command::new(bins::plugin("reencrypt"));
        cmd.env("KUBECONFIG", self.sb.kubeconfig())
            .env("HOME", self.dir.path())
            .arg("--state-file")
            .arg(self.state_file())
            .args(["--progress", "lines"]);
        cmd
    }

    /// `--verify` with the sandbox's etcd (kubeadm's certificate paths under its root) and encryption config.
    fn verify_flags(&self) -> Vec<String> {
        vec![
            "--verify".into(),
            "--root".into(),
            self.sb.root().display().to_string(),
            "--endpoints".into(),
            self.sb.etcd_endpoint().to_string(),
            "--encryption-config".into(),
            self.sb
                .root()
                .join("etc/kubernetes/pki/atrest-enc.yaml")
                .display()
                .to_string(),
        ]
    }

    /// The key (`namespace/name`) through which the state file records every secret done (cluster-wide runs).
    fn done_through(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.state_file()).ok()?;
        let v = serde_json::from_str::<Value>(&text).ok()?;
        v.pointer("/resources/secrets/done_through")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Test secrets (`team-*`) at or before `key` in etcd's key order, and how many of them are in plaintext.
    fn team_secrets_through(&self, key: &str) -> (usize, usize) {
        self.rt.block_on(async {
            let etcd = self.sb.etcd_client().await.unwrap();
            let resp = etcd
                .get(
                    "/registry/secrets/team-",
                    Some(GetOptions::new().with_prefix()),
                )
                .await
                .unwrap();
            let through: Vec<_> = resp
                .kvs()
                .iter()
                .filter(|kv| {
                    std::str::from_utf8(kv.key())
                        .unwrap_or("")
                        .strip_prefix("/registry/secrets/")
                        .is_some_and(|k| k <= key)
                })
                .collect();
            let plain = through
                .iter()
                .filter(|kv| !kv.value().starts_with(ENCRYPTED_PREFIX))
                .count();
            (through.len(), plain)
        })
    }

    /// Every test secret (in the `team-*` namespaces), as the API server returns it.
    fn team_secrets(&self) -> Vec<Secret> {
        self.rt.block_on(async {
            let api: Api<Secret> = Api::all(self.client.clone());
            api.list(&ListParams::default())
                .await
                .unwrap()
                .items
                .into_iter()
                .filter(|s| {
                    s.metadata
                        .namespace
                        .as_deref()
                        .unwrap_or("")
                        .starts_with("team-")
                })
                .collect()
        })
    }

    /// resourceVersion of every test secret.
    fn resource_versions(&self) -> BTreeMap<String, String> {
        self.team_secrets()
            .into_iter()
            .map(|s| {
                (
                    format!(
                        "{}/{}",
                        s.metadata.namespace.unwrap(),
                        s.metadata.name.unwrap()
                    ),
                    s.metadata.resource_version.unwrap(),
                )
            })
            .collect()
    }
}

fn report(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}); status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn totals(r: &Value, field: &str) -> u64 {
    r["totals"][field]
        .as_u64()
        .unwrap_or_else(|| panic!("no totals.{field} in {r}"))
}

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PATH with the built plugins first, so `kubectl reencrypt` dispatches to ours.
fn path_with_plugins() -> String {
    let dir: &Path = &bins::target_profile_dir();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn rewrites_every_namespace_then_nothing_through_kubectl() {
    let bed = bed(4, 25);
    let before = bed.resource_versions();

    // Dry run: counts, writes nothing; with --verify, etcd tells how many a run would rewrite.
    let out = bed
        .plugin()
        .args(["--dry-run", "-o", "json"])
        .args(bed.verify_flags())
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let r = report(&out);
    assert!(totals(&r, "listed") >= 100, "{r}");
    assert_eq!(r["verify"]["totals"]["stale"], 100, "{r}");
    assert_eq!(r["verify"]["totals"]["plaintext"], 100, "{r}");
    assert_eq!(totals(&r, "rewritten"), 0);
    assert_eq!(bed.resource_versions(), before, "a dry run writes nothing");
    assert_eq!(bed.storage().get("plaintext").copied(), Some(100));

    // The real kubectl finds and runs the plugin; default: secrets in all namespaces.
    let out = atrest_e2e::run::kubectl_command(&bed.sb)
        .args([
            "reencrypt",
            "-o",
            "json",
            "--progress",
            "none",
            "--state-file",
        ])
        .arg(bed.state_file())
        .env("PATH", path_with_plugins())
        .env("KUBECONFIG", bed.sb.kubeconfig())
        .env("HOME", bed.dir.path())
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let r = report(&out);
    assert_eq!(totals(&r, "failed"), 0, "{r}");
    assert!(totals(&r, "rewritten") >= 100, "{r}");
    for n in 0..4 {
        let row = r["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["namespace"] == ns_name(n).as_str())
            .unwrap_or_else(|| panic!("no row for {} in {r}", ns_name(n)));
        assert_eq!(row["status"], "done");
        assert_eq!(row["rewritten"], 25);
    }
    bed.assert_all_encrypted(100);
    let after_first = bed.resource_versions();
    assert!(
        after_first.iter().all(|(k, rv)| before[k] != *rv),
        "every stale secret got a new resourceVersion"
    );

    // Second run: nothing is stale any more; etcd agrees (--verify exits 2 otherwise).
    let out = bed
        .plugin()
        .args(["-A"])
        .args(bed.verify_flags())
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("CURRENT KEY") && text.contains("STALE"),
        "{text}"
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("NAMESPACE") && table.contains("REWRITTEN") && table.contains("team-003"),
        "{table}"
    );
    let out = bed.plugin().args(["-o", "json"]).output().unwrap();
    let r = report(&out);
    assert_eq!(totals(&r, "rewritten"), 0, "{r}");
    assert!(totals(&r, "current") >= 100, "{r}");
    assert_eq!(
        bed.resource_versions(),
        after_first,
        "a second run writes nothing"
    );

    // One namespace only.
    let out = bed
        .plugin()
        .args(["secrets", "-n", &ns_name(1), "-o", "json"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let r = report(&out);
    assert_eq!(r["namespaces"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(totals(&r, "current"), 25);

    // Unknown resource: could not run.
    let out = bed.plugin().args(["widgets"]).output().unwrap();
    assert_exit(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("widgets"));
}

#[test]
fn concurrent_writer_always_wins() {
    let bed = bed(5, 100);
    let client = bed.client.clone();
    let writer = bed.rt.spawn(async move {
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
        for round in 1..=2u32 {
            let mut tasks = Vec::new();
            for n in 0..5 {
                for i in 0..100 {
                    let api: Api<Secret> = Api::namespaced(client.clone(), &ns_name(n));
                    let permit = sem.clone().acquire_owned().await.unwrap();
                    tasks.push(tokio::spawn(async move {
                        let name = secret_name(i);
                        loop {
                            let mut s = match api.get(&name).await {
                                Ok(s) => s,
                                Err(kube::Error::Api(e)) => panic!("writer: get {name}: {e}"),
                                Err(_) => continue, // a transient connection error
                            };
                            s.data = Some(BTreeMap::from([(
                                "v".to_string(),
                                ByteString(format!("round-{round}").into_bytes()),
                            )]));
                            match api.replace(&name, &PostParams::default(), &s).await {
                                Ok(_) => break,
                                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                                Err(kube::Error::Api(e)) => panic!("writer: {e}"),
                                Err(_) => continue, // a transient connection error
                            }
                        }
                        drop(permit);
                    }));
                }
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
    });
    let out = bed.plugin().args(["-o", "json"]).output().unwrap();
    bed.rt.block_on(writer).unwrap();
    assert_exit(&out, 0);
    let r = report(&out);
    assert_eq!(totals(&r, "failed"), 0, "{r}");
    eprintln!("conflicts met: {}", totals(&r, "conflicts"));
    let values: Vec<(String, Vec<u8>)> = bed
        .team_secrets()
        .into_iter()
        .map(|s| (s.metadata.name.unwrap(), s.data.unwrap()["v"].0.clone()))
        .collect();
    assert_eq!(values.len(), 500);
    for (name, v) in values {
        assert_eq!(v, b"round-2", "{name}: the writer's last write must win");
    }
    bed.assert_all_encrypted(500);
}

#[test]
fn kill_9_then_resume_continues_after_the_last_key_done() {
    let bed = bed(8, 40);
    let mut child = bed
        .plugin()
        .args([
            "--concurrency",
            "1",
            "--qps",
            "40",
            "--burst",
            "1",
            "-o",
            "json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The state records a key past the first two test namespaces (`team-002/…`).
    wait_until(
        "progress past two test namespaces in the state file",
        Duration::from_secs(90),
        || {
            bed.done_through()
                .is_some_and(|k| k.as_str() >= "team-002/")
        },
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // A PUT the killed process sent may still be in the API server: let it land before looking at etcd.
    std::thread::sleep(Duration::from_millis(500));
    let through = bed.done_through().expect("progress saved");
    let (done, plain_done) = bed.team_secrets_through(&through);
    assert!((80..320).contains(&done), "killed mid-run: {through}");
    assert_eq!(plain_done, 0, "everything up to {through} is rewritten");
    let plain = bed.storage().get("plaintext").copied().unwrap_or(0);
    assert!(plain > 0, "killed before the end");

    let out = bed
        .plugin()
        .args(["--resume", "-o", "json"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let r = report(&out);
    // Everything up to the saved key (the test namespaces sort last) is skipped, not listed again.
    assert!(totals(&r, "skipped") >= done as u64, "{r}");
    let team_listed: u64 = r["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["namespace"].as_str().unwrap_or("").starts_with("team-"))
        .map(|n| n["listed"].as_u64().unwrap())
        .sum();
    assert_eq!(team_listed, (320 - done) as u64, "{r}");
    // Exactly what was still plaintext is rewritten; what the killed run did after the saved key is current.
    assert_eq!(totals(&r, "rewritten"), plain as u64, "{r}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not sent again"));
    bed.assert_all_encrypted(320);
    // The state now says complete: resuming again does nothing.
    let out = bed
        .plugin()
        .args(["--resume", "-o", "json"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    assert_eq!(totals(&report(&out), "listed"), 0);
}

#[test]
fn survives_an_api_server_restart() {
    let bed = bed(6, 40);
    let child = bed
        .plugin()
        .args([
            "--concurrency",
            "4",
            "--qps",
            "60",
            "--burst",
            "1",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        "progress into the test namespaces",
        Duration::from_secs(60),
        || bed.done_through().is_some_and(|k| k.starts_with("team-")),
    );
    bed.sb.restart_apiserver(Duration::from_secs(90)).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    let r = report(&out);
    assert_eq!(totals(&r, "failed"), 0, "{r}");
    assert!(
        std::fs::read_to_string(bed.state_file())
            .unwrap()
            .contains("\"complete\": true")
    );
    bed.assert_all_encrypted(240);
}

#[test]
fn twenty_percent_throttled_writes_complete() {
    let bed = bed(4, 50);
    bed.sb.faults().fail_writes_too_many_requests(0.2, 1);
    let out = bed.plugin().args(["-o", "json"]).output().unwrap();
    bed.sb.faults().clear();
    assert_exit(&out, 0);
    let r = report(&out);
    assert_eq!(totals(&r, "failed"), 0, "{r}");
    assert_eq!(totals(&r, "rewritten"), 200, "{r}");
    bed.assert_all_encrypted(200);
}

#[test]
fn objects_deleted_mid_run_are_gone_not_failed() {
    let bed = bed(1, 120);
    let child = bed
        .plugin()
        .args([
            "--concurrency",
            "1",
            "--qps",
            "30",
            "--burst",
            "1",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the first rewrites", Duration::from_secs(60), || {
        bed.storage().get("aescbc:key1").copied().unwrap_or(0) >= 5
    });
    bed.rt.block_on(async {
        let api: Api<Secret> = Api::namespaced(bed.client.clone(), &ns_name(0));
        for i in 100..120 {
            api.delete(&secret_name(i), &DeleteParams::default())
                .await
                .unwrap();
        }
    });
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 0);
    let r = report(&out);
    assert_eq!(totals(&r, "gone"), 20, "{r}");
    assert_eq!(totals(&r, "failed"), 0, "{r}");
    assert_eq!(totals(&r, "rewritten"), 100, "{r}");
    bed.assert_all_encrypted(100);
}

/// Shape B: many namespaces with one secret each, all rewritten with one cluster-wide listing (`-v` logs how each
/// resource is listed), one row per namespace in `-o json`.
#[test]
fn many_namespaces_with_one_secret_each_in_one_listing() {
    let bed = bed(120, 1);
    let out = bed
        .plugin()
        .args(["-v", "--chunk-size", "50", "-o", "json"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let r = report(&out);
    assert_eq!(totals(&r, "failed"), 0, "{r}");
    let rows: Vec<&Value> = r["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["namespace"].as_str().unwrap_or("").starts_with("team-"))
        .collect();
    assert_eq!(rows.len(), 120);
    assert!(
        rows.iter()
            .all(|n| n["status"] == "done" && n["rewritten"] == 1),
        "{r}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("listing secrets across all namespaces").count(),
        1,
        "{err}"
    );
    assert!(!err.contains("listing secrets in namespace"), "{err}");
    bed.assert_all_encrypted(120);

    // The table fits a screen: nothing conflicted or failed, so only the totals; -o wide has every namespace.
    let out = bed.plugin().output().unwrap();
    assert_exit(&out, 0);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().count() <= 5, "{table}");
    assert!(!table.contains("team-"), "{table}");
    assert!(
        table.contains("namespaces)") && table.contains("TOTAL"),
        "{table}"
    );
    let out = bed.plugin().args(["-o", "wide"]).output().unwrap();
    assert_exit(&out, 0);
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(table.matches("team-").count(), 120, "{table}");
}

/// An expired continue token (410 Gone, injected by the sandbox) mid-listing: the listing starts again after the
/// last key handled; every secret is listed once and rewritten.
#[test]
fn expired_continue_token_lists_again_after_the_last_key() {
    let bed = bed(3, 30);
    let all_secrets = bed.rt.block_on(async {
        let api: Api<Secret> = Api::all(bed.client.clone());
        api.list(&ListParams::default()).await.unwrap().items.len()
    });
    bed.sb.faults().expire_continue_tokens(2);
    let out = bed
        .plugin()
        .args(["--chunk-size", "7", "-o", "json"])
        .output()
        .unwrap();
    let expired = bed.sb.faults().continue_tokens_expired();
    bed.sb.faults().clear();
    assert_exit(&out, 0);
    assert_eq!(expired, 2, "the fault fired");
    let r = report(&out);
    assert_eq!(
        totals(&r, "listed"),
        all_secrets as u64,
        "each listed once: {r}"
    );
    assert_eq!(totals(&r, "failed"), 0, "{r}");
    bed.assert_all_encrypted(90);
}

/// A user who may list secrets only in some namespaces (the cluster-wide list is Forbidden) gets the
/// namespace-by-namespace path, said once; the namespace it may write is rewritten, the others fail.
#[test]
fn namespace_only_rights_fall_back_to_namespace_by_namespace() {
    let bed = bed(3, 10);
    let kubectl = |args: &[&str]| {
        let out = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", bed.sb.kubeconfig())
            .env("HOME", bed.dir.path())
            .output()
            .unwrap();
        assert_exit(&out, 0);
    };
    kubectl(&[
        "create",
        "clusterrole",
        "ns-lister",
        "--verb=list",
        "--resource=namespaces",
    ]);
    kubectl(&[
        "create",
        "clusterrolebinding",
        "jane-ns",
        "--clusterrole=ns-lister",
        "--user=jane",
    ]);
    let ns = ns_name(1);
    kubectl(&[
        "create",
        "role",
        "rewriter",
        "-n",
        &ns,
        "--verb=get,list,update",
        "--resource=secrets",
    ]);
    kubectl(&[
        "create",
        "rolebinding",
        "jane",
        "-n",
        &ns,
        "--role=rewriter",
        "--user=jane",
    ]);
    let out = bed
        .plugin()
        .args(["--as", "jane", "-o", "json"])
        .output()
        .unwrap();
    // Namespaces jane may not list fail: exit 2.
    assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("listing namespace by namespace").count(),
        1,
        "{err}"
    );
    let r = report(&out);
    assert_eq!(r["notes"].as_array().unwrap().len(), 1, "{r}");
    let row = |n: &str| {
        r["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["namespace"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("no row for {n} in {r}"))
    };
    assert_eq!(row(&ns)["status"], "done");
    assert_eq!(row(&ns)["rewritten"], 10);
    assert_eq!(row(&ns_name(0))["status"], "failed");
    assert!(err.contains("forbidden"), "{err}");
    let s = bed.storage();
    assert_eq!(s.get("aescbc:key1").copied(), Some(10), "{s:?}");
    assert_eq!(s.get("plaintext").copied(), Some(20), "{s:?}");
}

/// Both wires against the sandbox: `--wire protobuf` sends every secret back as Kubernetes protobuf (atrest's API
/// server answers lists in JSON and takes protobuf bodies, like kube-apiserver), and a second run finds every
/// object current (the server recognises the unchanged object); `--wire auto` sends JSON to a server answering in
/// JSON; `--wire json` is the default.
#[test]
fn protobuf_and_json_wires() {
    let bed = bed(2, 20);
    let protobuf_puts = |out: &Output| {
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| {
                l.contains("method=PUT")
                    && l.contains("content_type=application/vnd.kubernetes.protobuf")
            })
            .count()
    };
    let out = bed
        .plugin()
        .args(["--wire", "protobuf", "-vvv", "-o", "json"])
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let r = report(&out);
    assert_eq!(r["notes"].as_array().unwrap().len(), 0, "{r}");
    assert!(totals(&r, "rewritten") >= 40, "{r}");
    assert_eq!(
        protobuf_puts(&out) as u64,
        totals(&r, "listed"),
        "every PUT in protobuf: {}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.contains("PUT"))
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
    );
    bed.assert_all_encrypted(40);
    let before = bed.resource_versions();
    for wire in ["protobuf", "auto", "json"] {
        let out = bed
            .plugin()
            .args(["--wire", wire, "-vvv", "-o", "json"])
            .output()
            .unwrap();
        assert_exit(&out, 0);
        let r = report(&out);
        assert_eq!(totals(&r, "rewritten"), 0, "{wire}: {r}");
        assert!(totals(&r, "current") >= 40, "{wire}: {r}");
        let expected = if wire == "protobuf" {
            totals(&r, "listed") as usize
        } else {
            0
        };
        assert_eq!(protobuf_puts(&out), expected, "{wire}");
    }
    assert_eq!(bed.resource_versions(), before, "nothing written again");
}
