//! `kubectl encrypt` end to end on the sandbox node (real etcd, our API server restarted by the kubelet from the
//! manifest), with the real kubectl and etcdctl:
//! * `--dry-run` changes no byte; enable → the server restarts with the flag → new Secrets are
//!   `k8s:enc:secretbox:v1:key1:` in etcd, old ones stay plaintext; `status` shows the running flag;
//! * rotate phase by phase with writes between phases → no Secret lost or unreadable, the old key is gone only
//!   after the etcd scan shows zero uses;
//! * disable → every value identity, the flag removed;
//! * a config the server rejects (KMS v2 plugin unreachable: `/readyz` fails `kms-providers`) → the backup is
//!   restored byte for byte, the cluster is ready again and the command fails naming the backup and the check.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use atrest_core::config;
use atrest_core::manifest::Manifest;
use atrest_e2e::bed::{self, READY, up};
use atrest_e2e::run::{self, create_secret, encrypt, etcd_value, kubectl, ok, read_secret, text};

fn starts(v: &[u8], prefix: &str) -> bool {
    v.starts_with(prefix.as_bytes())
}

#[test]
fn enable_rotate_disable_on_the_sandbox() {
    let (dir, sb) = up();
    let home = bed::home(dir.path());
    let root = sb.root().to_path_buf();
    create_secret(&sb, &home, "before", "v-before");
    assert!(
        starts(&etcd_value(&sb, "before"), "k8s\0"),
        "plaintext protobuf before enabling"
    );

    // --dry-run: no byte changes anywhere under etc/.
    let before = bed::snapshot(&root.join("etc"));
    let out = ok(encrypt(&sb, &home, &["--dry-run"]), "dry run");
    assert!(
        out.contains("secret: <redacted>")
            && out.contains("+    - --encryption-provider-config=/etc/kubernetes/pki/enc.yaml"),
        "{out}"
    );
    assert_eq!(
        bed::snapshot(&root.join("etc")),
        before,
        "--dry-run changed files"
    );

    // Enable: waits for the restarted server and its mirror pod.
    let starts_before = sb.apiserver_starts();
    ok(encrypt(&sb, &home, &["--timeout", "90s"]), "enable");
    assert!(
        sb.apiserver_starts() > starts_before,
        "the API server was restarted"
    );
    assert!(
        starts(&etcd_value(&sb, "before"), "k8s\0"),
        "old secrets stay plaintext until rewritten"
    );
    create_secret(&sb, &home, "after", "v-after");
    assert!(
        starts(&etcd_value(&sb, "after"), "k8s:enc:secretbox:v1:key1:"),
        "{:?}",
        text(&etcd_value(&sb, "after")[..40])
    );
    assert_eq!(read_secret(&sb, &home, "after"), "v-after");
    let key1 = config::load(&root.join("etc/kubernetes/pki/enc.yaml"))
        .unwrap()
        .resources[0]
        .providers[0]
        .keys()
        .unwrap()[0]
        .secret
        .expose_base64()
        .to_string();
    // A second run is a no-op.
    let out = ok(encrypt(&sb, &home, &[]), "enable again");
    assert!(out.contains("already enabled as asked"), "{out}");

    let status: serde_json::Value = serde_json::from_str(&ok(
        encrypt(&sb, &home, &["status", "-o", "json"]),
        "status",
    ))
    .unwrap();
    let pods = status["mirrorPods"].as_array().expect("mirror pods listed");
    assert!(
        pods.iter().any(
            |p| p["encryptionProviderConfig"] == "/etc/kubernetes/pki/enc.yaml"
                && p["ready"] == true
        ),
        "{status:#}"
    );

    let counts: Vec<(String, String, u64)> = status["storage"]
        .as_array()
        .expect("etcd counts")
        .iter()
        .map(|r| {
            (
                r["storage"].as_str().unwrap().to_string(),
                r["key"].as_str().unwrap_or("-").to_string(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        counts.contains(&("identity".into(), "-".into(), 1))
            && counts.contains(&("secretbox".into(), "key1".into(), 1)),
        "{counts:?}"
    );

    // Rotate one phase at a time, writing between phases.
    ok(
        encrypt(
            &sb,
            &home,
            &["rotate", "--phase", "add-key", "--timeout", "90s"],
        ),
        "rotate add-key",
    );
    assert!(
        root.join("etc/kubernetes/pki/enc.yaml.rotation").exists(),
        "phase file kept beside the config"
    );
    let mode = std::fs::metadata(root.join("etc/kubernetes/pki/enc.yaml.rotation"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    create_secret(&sb, &home, "w1", "v-w1");
    assert!(
        starts(&etcd_value(&sb, "w1"), "k8s:enc:secretbox:v1:key1:"),
        "key1 still writes after add-key"
    );
    // Skipping ahead is refused.
    let o = encrypt(&sb, &home, &["rotate", "--phase", "remove-old"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("earlier phases first: promote"),
        "{}",
        text(&o.stderr)
    );
    ok(
        encrypt(
            &sb,
            &home,
            &["rotate", "--phase", "promote", "--timeout", "90s"],
        ),
        "rotate promote",
    );
    create_secret(&sb, &home, "w2", "v-w2");
    assert!(
        starts(&etcd_value(&sb, "w2"), "k8s:enc:secretbox:v1:key2:"),
        "key2 writes after promote"
    );
    let st = ok(encrypt(&sb, &home, &["status"]), "status during rotation");
    assert!(
        st.contains("secretbox(key2,key1), identity") && st.contains("next: rewrite"),
        "{st}"
    );
    let backups = root.join("etc/kubernetes/tmp/atrest-backups");
    let holding_key1 = || -> Vec<PathBuf> {
        std::fs::read_dir(&backups)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).contains(&key1))
            .collect()
    };
    let before_removal = holding_key1();
    assert!(
        !before_removal.is_empty(),
        "the rotation backed up configs holding key1"
    );
    // The rest: rewrite, verify (etcd scan), remove-old; then the backups holding key1 go.
    let o = encrypt(&sb, &home, &["rotate", "--timeout", "90s"]);
    let stderr = text(&o.stderr);
    let out = ok(o, "rotate rest");
    assert!(out.contains("Rotate complete"), "{out}");
    for b in &before_removal {
        assert!(
            stderr.contains(&format!(
                "removed backup {} (held retired key key1)",
                b.display()
            )),
            "{stderr}"
        );
    }
    assert_eq!(
        holding_key1(),
        Vec::<PathBuf>::new(),
        "no backup holds the retired key"
    );
    assert!(
        std::fs::read_dir(&backups).unwrap().count() > 0,
        "the manifest backups stay"
    );
    assert!(
        !root.join("etc/kubernetes/pki/enc.yaml.rotation").exists(),
        "phase file removed at the end"
    );
    let cfg = config::load(&root.join("etc/kubernetes/pki/enc.yaml")).unwrap();
    let names: Vec<&str> = cfg.resources[0].providers[0]
        .keys()
        .unwrap()
        .iter()
        .map(|k| k.name.as_str())
        .collect();
    assert_eq!(names, ["key2"]);
    for (name, value) in [
        ("before", "v-before"),
        ("after", "v-after"),
        ("w1", "v-w1"),
        ("w2", "v-w2"),
    ] {
        assert!(
            starts(&etcd_value(&sb, name), "k8s:enc:secretbox:v1:key2:"),
            "{name} on key2"
        );
        assert_eq!(read_secret(&sb, &home, name), value, "{name} readable");
    }

    // Disable: identity first, rewrite, verify, then the flag goes.
    let out = ok(
        encrypt(&sb, &home, &["disable", "--timeout", "90s"]),
        "disable",
    );
    assert!(out.contains("Disable complete"), "{out}");
    let m = Manifest::load(&root.join("etc/kubernetes/manifests/kube-apiserver.yaml")).unwrap();
    assert_eq!(m.encryption_provider_config(), None);
    for (name, value) in [
        ("before", "v-before"),
        ("after", "v-after"),
        ("w1", "v-w1"),
        ("w2", "v-w2"),
    ] {
        assert!(
            starts(&etcd_value(&sb, name), "k8s\0"),
            "{name} is identity again"
        );
        assert_eq!(read_secret(&sb, &home, name), value, "{name} readable");
    }
    create_secret(&sb, &home, "plain", "v-plain");
    assert!(starts(&etcd_value(&sb, "plain"), "k8s\0"));
}

/// The faithful trigger: a KMS v2 provider whose plugin socket does not exist. kube-apiserver starts, but `/readyz`
/// fails its `kms-providers` check (apiserver `pkg/server/options/encryptionconfig/config.go`), so the change never
/// becomes ready: the plugin times out, restores the manifest byte for byte, waits for recovery and fails naming
/// the backup and the failing check.
#[test]
fn a_config_the_server_rejects_is_rolled_back() {
    let (dir, sb) = up();
    let home = bed::home(dir.path());
    let manifest = sb.manifest("kube-apiserver");
    let original = std::fs::read(&manifest).unwrap();
    let starts_before = sb.apiserver_starts();
    let out = encrypt(
        &sb,
        &home,
        &[bed::MISSING_KMS_PLUGIN, &["--timeout", "15s"]].concat(),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        sb.apiserver_starts() >= starts_before + 2,
        "the server ran with the change and again after the restore"
    );
    assert!(
        stderr.contains(
            "enabling encryption at rest: kube-apiserver was not ready with the change after 15s"
        ) && stderr.contains("[-]kms-providers failed: reason withheld"),
        "{stderr}"
    );
    assert!(
        stderr.contains("restored the previous manifest from")
            && stderr.contains("atrest-backups/kube-apiserver.yaml."),
        "{stderr}"
    );
    assert!(stderr.contains("is ready again"), "{stderr}");
    assert_eq!(
        std::fs::read(&manifest).unwrap(),
        original,
        "the manifest is byte-identical to the original"
    );
    sb.wait_ready(READY).expect("cluster ready again");
    create_secret(&sb, &home, "still-plain", "v");
    assert!(starts(&etcd_value(&sb, "still-plain"), "k8s\0"));
}

#[test]
fn enable_with_reencrypt_encrypts_existing_secrets() {
    let (dir, sb) = up();
    let home = bed::home(dir.path());
    create_secret(&sb, &home, "old", "v-old");
    assert!(starts(&etcd_value(&sb, "old"), "k8s\0"));
    let out = ok(
        encrypt(
            &sb,
            &home,
            &[
                "enable",
                "--provider",
                "aesgcm",
                "--config",
                "/etc/kubernetes/enc/enc.yaml",
                "--automatic-reload",
                "--reencrypt",
                "--timeout",
                "90s",
            ],
        ),
        "enable --reencrypt",
    );
    assert!(out.contains("encryption at rest is enabled"), "{out}");
    assert!(
        starts(&etcd_value(&sb, "old"), "k8s:enc:aesgcm:v1:key1:"),
        "the existing secret was rewritten encrypted"
    );
    assert_eq!(read_secret(&sb, &home, "old"), "v-old");
    let m = Manifest::load(&sb.manifest("kube-apiserver")).unwrap();
    assert!(m.automatic_reload());
    assert_eq!(
        m.host_path_for("/etc/kubernetes/enc/enc.yaml"),
        Some(PathBuf::from("/etc/kubernetes/enc/enc.yaml"))
    );
}

/// `--encryption-provider-config-automatic-reload`: without it kube-apiserver reads the config once at start (a
/// changed file changes nothing); with it `kubectl encrypt rotate` writes each phase's config and waits for the
/// server's reload metrics instead of restarting it, and no Secret is lost.
#[test]
fn rotate_with_automatic_reload_does_not_restart_the_api_server() {
    let (dir, sb) = up();
    let home = bed::home(dir.path());
    let root = sb.root().to_path_buf();
    let enc = root.join("etc/kubernetes/pki/enc.yaml");
    ok(encrypt(&sb, &home, &["--timeout", "90s"]), "enable");
    create_secret(&sb, &home, "a", "v-a");
    assert!(starts(&etcd_value(&sb, "a"), "k8s:enc:secretbox:v1:key1:"));

    // No reload flag: a new first key on disk is not used (the sandbox would reload within a second).
    let original = std::fs::read(&enc).unwrap();
    let mut cfg = config::load(&enc).unwrap();
    let keys = cfg.resources[0].providers[0].keys_mut().unwrap();
    keys.insert(
        0,
        config::Key::generate("handmade", config::ProviderKind::Secretbox).unwrap(),
    );
    std::fs::write(&enc, cfg.to_yaml()).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    create_secret(&sb, &home, "b", "v-b");
    assert!(
        starts(&etcd_value(&sb, "b"), "k8s:enc:secretbox:v1:key1:"),
        "the config is read once without automatic reload"
    );
    std::fs::write(&enc, &original).unwrap();

    // Turn automatic reload on (one restart), then rotate without any.
    ok(
        encrypt(&sb, &home, &["--automatic-reload", "--timeout", "90s"]),
        "enable --automatic-reload",
    );
    assert!(
        Manifest::load(&sb.manifest("kube-apiserver"))
            .unwrap()
            .automatic_reload()
    );
    let starts_before = sb.apiserver_starts();
    let o = encrypt(
        &sb,
        &home,
        &["rotate", "--phase", "add-key", "--timeout", "60s"],
    );
    let stderr = text(&o.stderr);
    ok(o, "rotate add-key");
    assert!(
        stderr.contains("reload the file (no restart)")
            && stderr.contains("kube-apiserver reloaded sha256:"),
        "{stderr}"
    );
    create_secret(&sb, &home, "w1", "v-w1");
    assert!(starts(&etcd_value(&sb, "w1"), "k8s:enc:secretbox:v1:key1:"));
    ok(
        encrypt(
            &sb,
            &home,
            &["rotate", "--phase", "promote", "--timeout", "60s"],
        ),
        "rotate promote",
    );
    create_secret(&sb, &home, "w2", "v-w2");
    assert!(
        starts(&etcd_value(&sb, "w2"), "k8s:enc:secretbox:v1:key2:"),
        "key2 writes once the server reloaded the promoted config"
    );
    let o = encrypt(
        &sb,
        &home,
        &["rotate", "--keep-backups", "--timeout", "60s"],
    );
    let stderr = text(&o.stderr);
    let out = ok(o, "rotate rest");
    assert!(out.contains("Rotate complete"), "{out}");
    assert!(
        stderr.contains("(holds retired key key1; --keep-backups)"),
        "{stderr}"
    );
    // status lists what --keep-backups kept.
    let st: serde_json::Value = serde_json::from_str(&ok(
        encrypt(&sb, &home, &["status", "-o", "json"]),
        "status",
    ))
    .unwrap();
    let kept = st["retiredKeyBackups"].as_array().expect("listed");
    assert!(
        !kept.is_empty()
            && kept
                .iter()
                .all(|b| b["keys"] == serde_json::json!(["key1"])),
        "{st:#}"
    );
    let table = ok(encrypt(&sb, &home, &["status"]), "status table");
    assert!(
        table.contains("Backup with retired keys") && table.contains("holds key1"),
        "{table}"
    );
    assert_eq!(
        sb.apiserver_starts(),
        starts_before,
        "the API server was not restarted during the rotation"
    );
    for (name, value) in [("a", "v-a"), ("b", "v-b"), ("w1", "v-w1"), ("w2", "v-w2")] {
        assert!(
            starts(&etcd_value(&sb, name), "k8s:enc:secretbox:v1:key2:"),
            "{name} on key2"
        );
        assert_eq!(read_secret(&sb, &home, name), value, "{name} readable");
    }
    // The server's own count: three reloads (add-key, promote, remove-old), read with the real kubectl.
    let metrics = ok(
        kubectl(&sb, &home, &["get", "--raw", "/metrics"]),
        "metrics",
    );
    assert!(
        metrics.lines().any(|l| l
            .starts_with("apiserver_encryption_config_controller_automatic_reloads_total{")
            && l.contains("status=\"success\"")
            && l.ends_with(" 3")),
        "{metrics}"
    );
}

/// A config bind-mounted as a single file (hostPath of type `File`): the running container keeps the inode it
/// started with, so a config replaced by rename is never reloaded (the sandbox pins the file as a runtime's bind
/// mount does). With automatic reload on, rotate restarts kube-apiserver for each step instead of waiting for a
/// reload that cannot come, and the rotation completes with every Secret readable.
#[test]
fn a_single_file_config_mount_is_restarted_not_reloaded() {
    let (dir, sb) = up();
    let home = bed::home(dir.path());
    let root = sb.root().to_path_buf();
    let enc = root.join("etc/kubernetes/enc/enc.yaml");
    run::enable_in_enc_dir(&sb, &home, &["--automatic-reload"]);
    // The admin mounts the file itself instead of its directory.
    let manifest = sb.manifest("kube-apiserver");
    let before = std::fs::read_to_string(&manifest).unwrap();
    let file_mount = before
        .replace(
            "mountPath: /etc/kubernetes/enc\n",
            "mountPath: /etc/kubernetes/enc/enc.yaml\n",
        )
        .replace(
            "path: /etc/kubernetes/enc\n      type: DirectoryOrCreate\n",
            "path: /etc/kubernetes/enc/enc.yaml\n      type: File\n",
        );
    assert_ne!(file_mount, before, "{before}");
    let n_starts = sb.apiserver_starts();
    std::fs::write(&manifest, &file_mount).unwrap();
    sb.wait_restarted(n_starts, READY)
        .expect("restarted with the file mount");
    let m = Manifest::load(&manifest).unwrap();
    assert!(m.is_single_file_mount("/etc/kubernetes/enc/enc.yaml"));
    create_secret(&sb, &home, "a", "v-a");
    assert!(starts(&etcd_value(&sb, "a"), "k8s:enc:secretbox:v1:key1:"));

    // A config replaced by rename is not seen by the running server, although it reloads automatically.
    let original = std::fs::read(&enc).unwrap();
    let mut cfg = config::load(&enc).unwrap();
    cfg.resources[0].providers[0].keys_mut().unwrap().insert(
        0,
        config::Key::generate("handmade", config::ProviderKind::Secretbox).unwrap(),
    );
    let replace = |bytes: &[u8]| {
        let tmp = enc.with_extension("tmp");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, &enc).unwrap();
    };
    replace(cfg.to_yaml().as_bytes());
    std::thread::sleep(Duration::from_secs(3));
    create_secret(&sb, &home, "b", "v-b");
    assert!(
        starts(&etcd_value(&sb, "b"), "k8s:enc:secretbox:v1:key1:"),
        "the pinned file is still the old one"
    );
    replace(&original);

    let n_starts = sb.apiserver_starts();
    let o = encrypt(&sb, &home, &["rotate", "--timeout", "60s"]);
    let stderr = text(&o.stderr);
    let out = ok(o, "rotate");
    assert!(out.contains("Rotate complete"), "{out}");
    assert!(
        stderr.contains("is mounted into kube-apiserver as a single file"),
        "{stderr}"
    );
    assert!(
        sb.apiserver_starts() >= n_starts + 3,
        "one restart per step (add-key, promote, remove-old)"
    );
    create_secret(&sb, &home, "c", "v-c");
    for (name, value) in [("a", "v-a"), ("b", "v-b"), ("c", "v-c")] {
        assert!(
            starts(&etcd_value(&sb, name), "k8s:enc:secretbox:v1:key2:"),
            "{name} on key2"
        );
        assert_eq!(read_secret(&sb, &home, name), value);
    }
}
