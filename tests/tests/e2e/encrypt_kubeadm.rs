//! `kubectl encrypt` keeps kubeadm's ClusterConfiguration (ConfigMap `kube-system/kubeadm-config`, which the
//! sandbox uploads as `kubeadm init` does: v1beta4 from 1.31, v1beta3 before) in step with the manifest, so
//! `kubeadm upgrade` regenerates the flag and volume and a joined control-plane node gets them: enable adds
//! `apiServer.extraArgs` (a list in v1beta4, a map in v1beta3) and `extraVolumes`, every other byte of the
//! document stays; `status` reports drift; rotate repairs it; disable takes it all out again;
//! `--no-kubeadm-config` skips it and `--no-wait` with the API server down says it could not.

use std::path::Path;
use std::time::Duration;

use atrest_e2e::bed::{self, READY};
use atrest_e2e::run::{self, encrypt, kubectl, ok, text};
use atrest_sandbox::{Sandbox, SandboxOptions};

fn up(version: &str) -> (tempfile::TempDir, Sandbox) {
    let dir = tempfile::tempdir().unwrap();
    let mut o = SandboxOptions::new(dir.path().join("node"));
    o.kube_version = version.into();
    let sb = bed::start(o);
    (dir, sb)
}

fn cluster_configuration(sb: &Sandbox, home: &Path) -> String {
    // The kubelet's bootstrap uploads it shortly after the server is ready.
    for _ in 0..60 {
        let o = kubectl(
            sb,
            home,
            &[
                "get",
                "configmap",
                "kubeadm-config",
                "-n",
                "kube-system",
                "-o",
                "go-template={{.data.ClusterConfiguration}}",
            ],
        );
        if o.status.success() {
            return text(&o.stdout);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("no kubeadm-config ConfigMap");
}

/// Puts `cc` back as the ClusterConfiguration (what an admin's `kubectl edit` would do).
fn put_cluster_configuration(sb: &Sandbox, home: &Path, cc: &str) {
    let file = home.join("cc.yaml");
    std::fs::write(&file, cc).unwrap();
    let yaml = ok(
        kubectl(
            sb,
            home,
            &[
                "create",
                "configmap",
                "kubeadm-config",
                "-n",
                "kube-system",
                &format!("--from-file=ClusterConfiguration={}", file.display()),
                "--dry-run=client",
                "-o",
                "yaml",
            ],
        ),
        "render configmap",
    );
    let cm = home.join("cm.yaml");
    std::fs::write(&cm, yaml).unwrap();
    ok(
        kubectl(sb, home, &["replace", "-f", &cm.to_string_lossy()]),
        "replace kubeadm-config",
    );
}

fn status(sb: &Sandbox, home: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(encrypt(sb, home, &["status", "-o", "json"]), "status")).unwrap()
}

#[test]
fn v1beta4_list_args_and_volume_follow_enable_and_disable() {
    let (dir, sb) = up("1.32");
    let home = bed::home(dir.path());
    let original = cluster_configuration(&sb, &home);
    assert!(
        original.starts_with("apiServer: {}\napiVersion: kubeadm.k8s.io/v1beta4\n"),
        "{original}"
    );
    let out = run::enable_in_enc_dir(&sb, &home, &["--automatic-reload"]);
    assert!(
        out.contains("kubeadm-config ClusterConfiguration: set apiServer.extraArgs encryption-provider-config=/etc/kubernetes/enc/enc.yaml")
            && out.contains("backup of the previous ClusterConfiguration: "),
        "{out}"
    );
    let cc = cluster_configuration(&sb, &home);
    assert_eq!(
        cc,
        format!(
            "apiServer:\n  extraArgs:\n  - name: encryption-provider-config\n    value: /etc/kubernetes/enc/enc.yaml\n  - name: encryption-provider-config-automatic-reload\n    value: \"true\"\n  extraVolumes:\n  - hostPath: /etc/kubernetes/enc\n    mountPath: /etc/kubernetes/enc\n    name: encryption-config\n    pathType: DirectoryOrCreate\n    readOnly: true\n{}",
            &original["apiServer: {}\n".len()..]
        ),
        "only the apiServer block changed"
    );
    let st = status(&sb, &home);
    assert_eq!(st["drift"], serde_json::json!([]), "{st:#}");
    assert!(
        st["kubeadmConfig"]
            .as_str()
            .unwrap()
            .contains("in step with the manifest"),
        "{st:#}"
    );
    let out = ok(
        encrypt(&sb, &home, &["disable", "--timeout", "90s"]),
        "disable",
    );
    assert!(out.contains("Disable complete"), "{out}");
    assert_eq!(
        cluster_configuration(&sb, &home),
        original,
        "disable leaves kubeadm's document as it was, byte for byte"
    );
}

#[test]
fn v1beta3_map_args_drift_repair_and_the_skips() {
    let (dir, sb) = up("1.30");
    let home = bed::home(dir.path());
    let original = cluster_configuration(&sb, &home);
    assert!(
        original.contains("apiVersion: kubeadm.k8s.io/v1beta3\n"),
        "{original}"
    );

    // The control plane is down: --no-wait edits the node and says kubeadm-config could not be updated.
    sb.stop_apiserver();
    let o = encrypt(&sb, &home, &["--no-wait"]);
    let stderr = text(&o.stderr);
    ok(o, "enable --no-wait");
    assert!(
        stderr.contains("warning: kubeadm-config not updated"),
        "{stderr}"
    );
    sb.start_apiserver();
    sb.wait_ready(READY).expect("ready with encryption");
    assert_eq!(cluster_configuration(&sb, &home), original);
    let st = status(&sb, &home);
    let drift = st["drift"].as_array().unwrap();
    assert!(
        drift.iter().any(|d| d.as_str().unwrap().starts_with(
            "the manifest has --encryption-provider-config=/etc/kubernetes/pki/enc.yaml, kubeadm-config apiServer.extraArgs has no encryption-provider-config"
        )),
        "{st:#}"
    );
    let table = ok(encrypt(&sb, &home, &["status"]), "status table");
    assert!(
        table.contains("Drift") && table.contains("kubeadm upgrade"),
        "{table}"
    );

    // --no-kubeadm-config: still nothing; running enable again (already enabled) brings it in step.
    let out = ok(
        encrypt(&sb, &home, &["--no-kubeadm-config"]),
        "enable again, skipping kubeadm-config",
    );
    assert!(out.contains("not updated (--no-kubeadm-config)"), "{out}");
    assert_eq!(cluster_configuration(&sb, &home), original);
    let out = ok(encrypt(&sb, &home, &[]), "enable again");
    assert!(
        out.contains("already enabled as asked")
            && out.contains("kubeadm-config ClusterConfiguration: set apiServer.extraArgs encryption-provider-config=/etc/kubernetes/pki/enc.yaml"),
        "{out}"
    );
    let cc = cluster_configuration(&sb, &home);
    assert!(
        cc.starts_with(
            "apiServer:\n  extraArgs:\n    encryption-provider-config: /etc/kubernetes/pki/enc.yaml\napiVersion: kubeadm.k8s.io/v1beta3\n"
        ),
        "a map in v1beta3, no volume under the certificates directory: {cc}"
    );
    assert_eq!(status(&sb, &home)["drift"], serde_json::json!([]));

    // An admin's edit drops it again; rotate puts it back.
    put_cluster_configuration(&sb, &home, &original);
    assert_eq!(status(&sb, &home)["drift"].as_array().unwrap().len(), 1);
    let out = ok(
        encrypt(&sb, &home, &["rotate", "--timeout", "90s"]),
        "rotate",
    );
    assert!(
        out.contains("Rotate complete")
            && out.contains("kubeadm-config ClusterConfiguration: set apiServer.extraArgs"),
        "{out}"
    );
    assert_eq!(cluster_configuration(&sb, &home), cc);
    let out = ok(
        encrypt(&sb, &home, &["disable", "--timeout", "90s"]),
        "disable",
    );
    assert!(
        out.contains("removed apiServer.extraArgs encryption-provider-config"),
        "{out}"
    );
    assert_eq!(cluster_configuration(&sb, &home), original);
}
