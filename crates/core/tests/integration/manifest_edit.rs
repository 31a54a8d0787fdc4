//! The format-preserving kube-apiserver manifest editor on our fixtures (see
//! `tests/fixtures/manifests/README.md`): checked-in expected outputs, idempotence, enable→disable
//! round trips back to the original bytes, only intended lines touched, and broken manifests
//! refused with line-numbered reasons.

use std::path::PathBuf;

use atrest_core::manifest::{Manifest, ManifestError};

const GOOD: &[&str] = &[
    "kubeadm-1.29.yaml",
    "kubeadm-1.15-ha.yaml",
    "existing-flag-file-mount.yaml",
    "extra-volume-unsorted-flags.yaml",
    "aligned-comments.yaml",
    "placeholders.yaml",
    "crlf-no-final-newline.yaml",
    "indented-quoted-comments.yaml",
    "minimal-no-volumes.yaml",
];

/// Under the kubeadm-mounted certificates directory: no volume needed.
const PKI_CONFIG: &str = "/etc/kubernetes/pki/enc.yaml";
/// The Kubernetes docs' location: needs a volume.
const ENC_DIR_CONFIG: &str = "/etc/kubernetes/enc/enc.yaml";

fn dir() -> PathBuf {
    crate::support::fixtures("manifests")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn parse(name: &str) -> Manifest {
    Manifest::parse(&read(name), name).unwrap_or_else(|e| panic!("{e}"))
}

/// Compares with `expected/<name>`; `UPDATE_SNAPSHOTS=1` rewrites it instead.
fn snapshot(name: &str, actual: &str) {
    let path = dir().join("expected").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_SNAPSHOTS=1)", path.display()));
    assert!(
        expected == actual,
        "{name} differs from the snapshot:\n{}",
        line_diff(&expected, actual)
    );
}

fn line_diff(a: &str, b: &str) -> String {
    let (removed, added) = changed_lines(a, b);
    format!("removed: {removed:#?}\nadded: {added:#?}")
}

/// Lines only in `a` and lines only in `b` (an LCS over lines; the files are small).
fn changed_lines(a: &str, b: &str) -> (Vec<String>, Vec<String>) {
    let a: Vec<&str> = a.split_inclusive('\n').collect();
    let b: Vec<&str> = b.split_inclusive('\n').collect();
    let mut t = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            t[i][j] = if a[i] == b[j] {
                t[i + 1][j + 1] + 1
            } else {
                t[i + 1][j].max(t[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || t[i][j + 1] >= t[i + 1][j]) {
            added.push(b[j].to_string());
            j += 1;
        } else {
            removed.push(a[i].to_string());
            i += 1;
        }
    }
    (removed, added)
}

fn stem(name: &str) -> &str {
    name.trim_end_matches(".yaml")
}

#[test]
fn enable_matches_snapshots_and_is_idempotent() {
    for name in GOOD {
        let m = parse(name);
        for (case, config, reload) in [
            ("pki", PKI_CONFIG, None),
            ("enc-dir-reload", ENC_DIR_CONFIG, Some(true)),
        ] {
            let edit = m
                .enable_encryption(config, reload)
                .unwrap_or_else(|e| panic!("{name} {case}: {e}"));
            assert!(edit.changed(), "{name} {case}");
            let out = edit.manifest.text();
            snapshot(&format!("{}.{case}.yaml", stem(name)), &out);
            assert_eq!(
                edit.manifest.encryption_provider_config().as_deref(),
                Some(config),
                "{name} {case}"
            );
            assert_eq!(
                edit.manifest.host_path_for(config),
                Some(PathBuf::from(config)),
                "{name} {case}: config visible in the container"
            );
            if reload == Some(true) {
                assert!(edit.manifest.automatic_reload(), "{name}");
            }
            let again = edit.manifest.enable_encryption(config, reload).unwrap();
            assert!(
                !again.changed(),
                "{name} {case}: second run changed {:?}",
                again.changes
            );
            assert_eq!(
                again.manifest.text(),
                out,
                "{name} {case}: second run changed bytes"
            );
        }
    }
}

#[test]
fn only_the_intended_lines_change() {
    for name in GOOD {
        let original = read(name);
        let m = parse(name);
        let had_flag = m.encryption_provider_config().is_some();
        let out = m
            .enable_encryption(ENC_DIR_CONFIG, Some(true))
            .unwrap()
            .manifest
            .text();
        let (removed, added) = changed_lines(&original, &out);
        let allowed_removed = usize::from(had_flag);
        assert_eq!(
            removed.len(),
            allowed_removed,
            "{name}: removed {removed:?}"
        );
        if had_flag {
            assert!(
                removed[0].contains("--encryption-provider-config="),
                "{name}: {removed:?}"
            );
        }
        for line in &added {
            let t = line.trim().trim_start_matches("- ");
            let ok = t.contains("--encryption-provider-config")
                || t.contains("encryption-config")
                || t.contains("/etc/kubernetes/enc")
                || [
                    "readOnly: true",
                    "hostPath:",
                    "type: DirectoryOrCreate",
                    "volumeMounts:",
                    "volumes:",
                ]
                .contains(&t);
            assert!(ok, "{name}: unexpected added line {line:?}");
        }
        // The line ending style and the final newline state are kept.
        assert_eq!(out.contains("\r\n"), original.contains("\r\n"), "{name}");
        assert_eq!(out.ends_with('\n'), original.ends_with('\n'), "{name}");
    }
}

#[test]
fn disable_after_enable_restores_the_original_bytes() {
    for name in GOOD {
        let original = read(name);
        let m = parse(name);
        if m.encryption_provider_config().is_some() {
            continue;
        }
        for (config, reload) in [(PKI_CONFIG, None), (ENC_DIR_CONFIG, Some(true))] {
            let enabled = m.enable_encryption(config, reload).unwrap().manifest;
            let disabled = enabled.disable_encryption().unwrap();
            assert!(disabled.changed());
            assert_eq!(disabled.manifest.text(), original, "{name} {config}");
            let again = disabled.manifest.disable_encryption().unwrap();
            assert!(!again.changed(), "{name}: {:?}", again.changes);
        }
    }
}

#[test]
fn existing_flag_is_replaced_in_place_and_its_file_mount_is_used() {
    let m = parse("existing-flag-file-mount.yaml");
    assert_eq!(
        m.encryption_provider_config().as_deref(),
        Some("/etc/kubernetes/apiserver-encryption.conf")
    );
    assert_eq!(
        m.host_path_for("/etc/kubernetes/apiserver-encryption.conf"),
        Some(PathBuf::from("/etc/kubernetes/apiserver-encryption.conf"))
    );
    // Already set as asked: nothing to do.
    let same = m
        .enable_encryption("/etc/kubernetes/apiserver-encryption.conf", None)
        .unwrap();
    assert!(!same.changed());
    assert_eq!(same.manifest.text(), read("existing-flag-file-mount.yaml"));
    // The trailing space after a mountPath survives an edit elsewhere.
    let moved = m
        .enable_encryption(PKI_CONFIG, None)
        .unwrap()
        .manifest
        .text();
    assert!(moved.contains("    - mountPath: /var/run/k8s-kms-plugin/ \n"));
    assert!(moved.contains(
        "    - --encryption-provider-config=/etc/kubernetes/pki/enc.yaml\n    - --advertise-address"
    ));
}

#[test]
fn comment_alignment_is_kept_when_a_commented_flag_changes() {
    let text = read("aligned-comments.yaml").replace(
        "    - --audit-log-maxbackup=1                                     # audit logging\n",
        "    - --audit-log-maxbackup=1                                     # audit logging\n    - --encryption-provider-config=/etc/kubernetes/pki/old.yaml   # encryption\n",
    );
    let m = Manifest::parse(&text, "aligned").unwrap();
    let out = m
        .enable_encryption(PKI_CONFIG, None)
        .unwrap()
        .manifest
        .text();
    assert!(
        out.contains(
            "    - --encryption-provider-config=/etc/kubernetes/pki/enc.yaml   # encryption\n"
        ),
        "{out}"
    );
    let (removed, added) = changed_lines(&text, &out);
    assert_eq!((removed.len(), added.len()), (1, 1));
}

#[test]
fn readers_find_flags_mounts_and_host_paths() {
    let m = parse("kubeadm-1.29.yaml");
    let etcd = m.etcd_flags();
    assert_eq!(etcd.servers, ["https://127.0.0.1:2379"]);
    assert_eq!(
        etcd.cafile.as_deref(),
        Some("/etc/kubernetes/pki/etcd/ca.crt")
    );
    assert_eq!(
        etcd.certfile.as_deref(),
        Some("/etc/kubernetes/pki/apiserver-etcd-client.crt")
    );
    assert_eq!(
        etcd.keyfile.as_deref(),
        Some("/etc/kubernetes/pki/apiserver-etcd-client.key")
    );
    assert_eq!(m.encryption_provider_config(), None);
    assert!(!m.automatic_reload());
    assert_eq!(
        m.host_path_for("/etc/kubernetes/pki/etcd/ca.crt"),
        Some(PathBuf::from("/etc/kubernetes/pki/etcd/ca.crt"))
    );
    assert_eq!(m.host_path_for("/etc/kubernetes/enc/enc.yaml"), None);
    // A mount whose host directory differs from its container path.
    let m = parse("extra-volume-unsorted-flags.yaml");
    assert_eq!(
        m.host_path_for("/var/lib/trace/trace.yaml"),
        Some(PathBuf::from("/tmp/trace/trace.yaml"))
    );
    assert_eq!(
        m.flag("tracing-config-file").as_deref(),
        Some("/var/lib/trace/trace.yaml")
    );
    // Quoted flags read like any other.
    let m = parse("indented-quoted-comments.yaml");
    assert_eq!(
        m.flag("client-ca-file").as_deref(),
        Some("/etc/kubernetes/pki/ca.crt")
    );
    assert_eq!(m.flag("authorization-mode").as_deref(), Some("Node,RBAC"));
}

#[test]
fn a_config_inside_a_mount_with_another_host_directory_is_refused() {
    let m = parse("extra-volume-unsorted-flags.yaml");
    let err = m
        .enable_encryption("/var/lib/trace/enc.yaml", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("/tmp/trace/enc.yaml"), "{err}");
    assert!(err.contains("not changed"), "{err}");
}

fn expect_invalid(name: &str) -> String {
    let text = read(name);
    let err = match Manifest::parse(&text, name) {
        Err(e) => e,
        Ok(m) => match m.enable_encryption(PKI_CONFIG, None) {
            Err(e) => e,
            Ok(_) => panic!("{name}: accepted"),
        },
    };
    assert!(
        matches!(err, ManifestError::Invalid { line: Some(_), .. }),
        "{name}: {err:?}"
    );
    err.to_string()
}

#[test]
fn broken_manifests_are_refused_with_line_numbers() {
    let e = expect_invalid("broken-typo.yaml");
    assert!(e.starts_with("broken-typo.yaml:83: "), "{e}");
    assert!(
        e.contains("unknown field `readOlny` (did you mean `readOnly`?)"),
        "{e}"
    );

    let e = expect_invalid("broken-typo-and-nameless-volume.yaml");
    assert!(
        e.starts_with("broken-typo-and-nameless-volume.yaml:102: "),
        "{e}"
    );
    assert!(e.contains("spec.volumes[0] has no name"), "{e}");

    let e = expect_invalid("broken-two-apiservers.yaml");
    assert!(e.contains("two kube-apiserver containers"), "{e}");
    assert!(e.starts_with("broken-two-apiservers.yaml:94: "), "{e}");
    assert!(e.contains("spec.containers[0] at line 14"), "{e}");

    let e = expect_invalid("broken-no-command.yaml");
    assert!(e.starts_with("broken-no-command.yaml:14: "), "{e}");
    assert!(e.contains("has no command"), "{e}");

    let e = expect_invalid("broken-yaml.yaml");
    assert!(e.contains("not valid YAML"), "{e}");
    assert!(e.starts_with("broken-yaml.yaml:3"), "{e}");
}

#[test]
fn more_broken_shapes() {
    let base = read("kubeadm-1.29.yaml");
    let cases = [
        (base.replace("    - --secure-port=6443\n", "    - --secure-port=6443\n    - --encryption-provider-config=/a\n    - --encryption-provider-config=/b\n"), "given 2 times"),
        (base.replace("      name: k8s-certs\n      readOnly: true\n", "      name: k8s-cert\n      readOnly: true\n"), "not in spec.volumes"),
        (base.replace("      path: /etc/kubernetes/pki\n      type: DirectoryOrCreate\n", "      path: /etc/kubernetes/pki\n      type: DirectoryOrCreat\n"), "not a HostPathType"),
        (base.replace("kind: Pod\n", "kind: Deployment\n"), "expected Pod"),
        (base.replace("    name: kube-apiserver\n", "    name: api\n").replace("    - kube-apiserver\n", "    - etcd\n"), "no kube-apiserver container"),
    ];
    for (text, needle) in cases {
        let err = Manifest::parse(&text, "m.yaml")
            .and_then(|m| m.enable_encryption(PKI_CONFIG, None))
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{needle}: {err}");
        assert!(err.starts_with("m.yaml:"), "{err}");
        assert!(
            err.split(':')
                .nth(1)
                .is_some_and(|l| l.parse::<usize>().is_ok()),
            "line number in {err}"
        );
    }
}

#[test]
fn annotations_are_set_replaced_and_removed_in_place() {
    const KEY: &str = "atrest.io/encryption-config-sha256";
    for name in GOOD {
        let original = read(name);
        let m = parse(name);
        let set = m
            .set_annotation(KEY, "sha256:aa")
            .unwrap()
            .expect("changed");
        assert_eq!(set.annotation(KEY).as_deref(), Some("sha256:aa"), "{name}");
        assert!(
            set.set_annotation(KEY, "sha256:aa").unwrap().is_none(),
            "{name}: idempotent"
        );
        let replaced = set
            .set_annotation(KEY, "sha256:bb")
            .unwrap()
            .expect("changed");
        let (removed, added) = changed_lines(&set.text(), &replaced.text());
        assert_eq!((removed.len(), added.len()), (1, 1), "{name}");
        assert!(added[0].contains("sha256:bb"), "{name}");
        // Other annotations stay; removing ours restores the original bytes.
        let back = replaced.remove_annotation(KEY).unwrap().expect("changed");
        assert_eq!(back.text(), original, "{name}");
    }
}
