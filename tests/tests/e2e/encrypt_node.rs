//! `kubectl encrypt` on a node directory without an API server: `--dry-run` changes no byte, `--no-wait` writes
//! the config (0600) and the manifest (after a backup outside the manifests directory), a second run changes
//! nothing, a different request is refused, broken manifests are refused untouched, key bytes are never printed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use atrest_core::config::{self, ProviderKind};
use atrest_core::manifest::Manifest;
use atrest_e2e::bed;
use atrest_e2e::bins;
use atrest_e2e::run::text;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/core/tests/fixtures/manifests")
        .join(name)
}

/// A kubeadm-like node directory with the given manifest fixture (mode 0600 like kubeadm writes it).
fn node_with(manifest: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("etc/kubernetes/manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::create_dir_all(dir.path().join("etc/kubernetes/pki")).unwrap();
    let target = manifests.join("kube-apiserver.yaml");
    std::fs::write(&target, std::fs::read(fixture(manifest)).unwrap()).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    dir
}

fn encrypt(root: &Path, args: &[&str]) -> Output {
    Command::new(bins::plugin("encrypt"))
        .arg("--root")
        .arg(root)
        // No kubeconfig: these commands must not need an API server.
        .env("KUBECONFIG", root.join("no-such-kubeconfig"))
        .env("HOME", root)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn dry_run_changes_no_byte_and_shows_a_redacted_config_and_the_diff() {
    let node = node_with("aligned-comments.yaml");
    let before = bed::snapshot(node.path());
    let out = encrypt(
        node.path(),
        &[
            "--dry-run",
            "--config",
            "/etc/kubernetes/enc/enc.yaml",
            "--automatic-reload",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        bed::snapshot(node.path()),
        before,
        "--dry-run changed files"
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("secret: <redacted>"), "{stdout}");
    assert!(stdout.contains("kind: EncryptionConfiguration"), "{stdout}");
    assert!(
        stdout.contains("+++ b/etc/kubernetes/manifests/kube-apiserver.yaml"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+    - --encryption-provider-config=/etc/kubernetes/enc/enc.yaml\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+    - --encryption-provider-config-automatic-reload=true\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+    - mountPath: /etc/kubernetes/enc\n"),
        "{stdout}"
    );
    // The aligned end-of-line comments are context, not changes.
    assert!(!stdout.contains("-    - --audit-policy-file"), "{stdout}");
    // The explicit form of the flag works the same.
    let out = encrypt(node.path(), &["--dry-run=client"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(bed::snapshot(node.path()), before);
}

#[test]
fn no_wait_writes_a_private_config_and_the_manifest_once() {
    let node = node_with("kubeadm-1.29.yaml");
    let root = node.path();
    let original =
        std::fs::read(root.join("etc/kubernetes/manifests/kube-apiserver.yaml")).unwrap();
    let out = encrypt(root, &["--no-wait"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let config_file = root.join("etc/kubernetes/pki/enc.yaml");
    let mode = std::fs::metadata(&config_file)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "config mode");
    let cfg = config::load(&config_file).expect("the written config loads and validates");
    let first = &cfg.resources[0];
    assert_eq!(first.resources, ["secrets"]);
    assert_eq!(first.providers[0].kind(), ProviderKind::Secretbox);
    assert_eq!(first.providers[1].kind(), ProviderKind::Identity);
    let key = first.providers[0].keys().unwrap()[0]
        .secret
        .expose_base64()
        .to_string();
    assert_eq!(
        first.providers[0].keys().unwrap()[0]
            .secret
            .decode()
            .unwrap()
            .len(),
        32
    );
    assert!(
        !text(&out.stdout).contains(&key) && !text(&out.stderr).contains(&key),
        "key bytes printed"
    );

    let m = Manifest::load(&root.join("etc/kubernetes/manifests/kube-apiserver.yaml")).unwrap();
    assert_eq!(
        m.encryption_provider_config().as_deref(),
        Some("/etc/kubernetes/pki/enc.yaml")
    );
    assert_eq!(
        std::fs::metadata(root.join("etc/kubernetes/manifests/kube-apiserver.yaml"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // The backup is the original, byte for byte, and not in the manifests directory.
    let backups: Vec<PathBuf> = std::fs::read_dir(root.join("etc/kubernetes/tmp/atrest-backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(backups.len(), 1);
    assert_eq!(std::fs::read(&backups[0]).unwrap(), original);
    assert_eq!(
        std::fs::read_dir(root.join("etc/kubernetes/manifests"))
            .unwrap()
            .count(),
        1,
        "only the manifest in the manifests directory"
    );

    // Second run: already enabled as asked, nothing changes.
    let before = bed::snapshot(root);
    let out = encrypt(root, &["--no-wait"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("already enabled as asked"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(bed::snapshot(root), before);

    // A different provider on the same config is refused with a pointer to rotate.
    let out = encrypt(root, &["--no-wait", "--provider", "aesgcm"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("kubectl encrypt rotate"),
        "{}",
        text(&out.stderr)
    );
    // So is another config path while one is in use.
    let out = encrypt(
        root,
        &["--no-wait", "--config", "/etc/kubernetes/enc/enc.yaml"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("already uses --encryption-provider-config=/etc/kubernetes/pki/enc.yaml"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(bed::snapshot(root), before);
}

#[test]
fn a_config_outside_the_mounted_directories_gets_a_volume() {
    let node = node_with("kubeadm-1.15-ha.yaml");
    let root = node.path();
    let out = encrypt(
        root,
        &[
            "--no-wait",
            "--config",
            "/etc/kubernetes/enc/enc.yaml",
            "--provider",
            "aescbc",
            "--resources",
            "secrets,configmaps",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let m = Manifest::load(&root.join("etc/kubernetes/manifests/kube-apiserver.yaml")).unwrap();
    assert_eq!(
        m.host_path_for("/etc/kubernetes/enc/enc.yaml"),
        Some(PathBuf::from("/etc/kubernetes/enc/enc.yaml"))
    );
    let mount = m
        .volume_mounts()
        .into_iter()
        .find(|v| v.mount_path == "/etc/kubernetes/enc")
        .unwrap();
    assert!(mount.read_only);
    let dir_mode = std::fs::metadata(root.join("etc/kubernetes/enc"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    let cfg = config::load(&root.join("etc/kubernetes/enc/enc.yaml")).unwrap();
    assert_eq!(cfg.resources[0].resources, ["secrets", "configmaps"]);
    assert_eq!(cfg.resources[0].providers[0].kind(), ProviderKind::Aescbc);
}

#[test]
fn broken_manifests_are_refused_untouched() {
    for (fixture, needle) in [
        (
            "broken-typo.yaml",
            "kube-apiserver.yaml:83: spec.containers[0].volumeMounts[0]: unknown field `readOlny`",
        ),
        (
            "broken-typo-and-nameless-volume.yaml",
            "kube-apiserver.yaml:102: spec.volumes[0] has no name",
        ),
        (
            "broken-two-apiservers.yaml",
            "two kube-apiserver containers",
        ),
        ("broken-yaml.yaml", "not valid YAML"),
    ] {
        let node = node_with(fixture);
        let before = bed::snapshot(node.path());
        let out = encrypt(node.path(), &["--no-wait"]);
        assert_eq!(out.status.code(), Some(1), "{fixture}");
        assert!(
            text(&out.stderr).contains(needle),
            "{fixture}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            bed::snapshot(node.path()),
            before,
            "{fixture}: files changed"
        );
    }
}

#[test]
fn status_reads_the_node_without_an_api_server() {
    let node = node_with("existing-flag-file-mount.yaml");
    let root = node.path();
    std::fs::write(
        root.join("etc/kubernetes/apiserver-encryption.conf"),
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aesgcm:\n      keys:\n      - name: k2\n        secret: c2VjcmV0IGlzIHNlY3VyZQ==\n      - name: k1\n        secret: c2VjcmV0IGlzIHNlY3VyZQ==\n  - identity: {}\n",
    )
    .unwrap();
    let out = encrypt(root, &["status", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["config"], "/etc/kubernetes/apiserver-encryption.conf");
    assert_eq!(
        v["resources"][0]["providers"],
        serde_json::json!(["aesgcm(k2,k1)", "identity"])
    );
    assert!(v["mirrorPods"].is_null());
    assert!(!text(&out.stdout).contains("c2VjcmV0"), "key bytes printed");
    let out = encrypt(root, &["status"]);
    assert!(out.status.success());
    assert!(
        text(&out.stdout).contains("aesgcm(k2,k1), identity"),
        "{}",
        text(&out.stdout)
    );
}
