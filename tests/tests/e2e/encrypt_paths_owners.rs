//! Paths and owners on a real node layout:
//! * `kubectl etcdcheck` finds the EncryptionConfiguration through the kube-apiserver pod's hostPath mounts (the
//!   flag names the path inside the container; here the volume maps it to another host directory);
//! * under kubeadm's RootlessControlPlane kube-apiserver runs as a non-root user (pod `securityContext.runAsUser`)
//!   that cannot read a root-owned 0600 file (the sandbox reads the config as that user): `kubectl encrypt` gives
//!   the config to that user and group, mode 0600, as kubeadm does for the API server's keys.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use atrest_e2e::bed::{self, up};
use atrest_e2e::bins;
use atrest_e2e::run::{self, create_secret, encrypt, etcd_value, ok, read_secret, text};

#[test]
fn etcdcheck_reads_the_config_behind_the_pods_mount() {
    let (dir, sb) = up();
    let home = bed::home(dir.path());
    let root = sb.root().to_path_buf();
    run::enable_in_enc_dir(&sb, &home, &[]);
    create_secret(&sb, &home, "s", "v-s");
    // The admin keeps the file in /srv/enc on the host; the container still sees /etc/kubernetes/enc/enc.yaml.
    std::fs::create_dir_all(root.join("srv")).unwrap();
    std::fs::rename(root.join("etc/kubernetes/enc"), root.join("srv/enc")).unwrap();
    bed::edit_apiserver_manifest(&sb, |m| {
        m.replace(
            "path: /etc/kubernetes/enc\n      type: DirectoryOrCreate\n",
            "path: /srv/enc\n      type: DirectoryOrCreate\n",
        )
    });
    assert_eq!(read_secret(&sb, &home, "s"), "v-s");
    let out = Command::new(bins::plugin("etcdcheck"))
        .envs(sb.env())
        .arg("--root")
        .arg(&root)
        .args(["s", "-n", "default", "-o", "json"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let item = &v["items"][0];
    assert!(
        item["storage"] == "secretbox" && item["keyName"] == "key1" && item["verified"] == true,
        "decrypted with the config behind the mount: {stdout}"
    );
    assert_eq!(v["summary"]["unverified"], 0, "{stdout}");
}

#[test]
fn a_rootless_api_server_gets_its_config() {
    let (dir, sb) = up();
    let home = bed::home(dir.path());
    let enc = sb.root().join("etc/kubernetes/pki/enc.yaml");
    // What kubeadm's RootlessControlPlane writes into the pod (runKubeAPIServerAsNonRoot).
    bed::edit_apiserver_manifest(&sb, |m| {
        m.replace(
            "  securityContext:\n    seccompProfile:\n",
            "  securityContext:\n    runAsGroup: 2000\n    runAsUser: 2000\n    supplementalGroups:\n    - 2001\n    seccompProfile:\n",
        )
    });
    let owner = |p: &Path| {
        let md = std::fs::metadata(p).unwrap();
        (md.uid(), md.gid(), md.mode() & 0o777)
    };
    ok(encrypt(&sb, &home, &["--timeout", "60s"]), "enable");
    assert_eq!(owner(&enc), (2000, 2000, 0o600));
    create_secret(&sb, &home, "a", "v-a");
    assert!(etcd_value(&sb, "a").starts_with(b"k8s:enc:secretbox:v1:key1:"));
    // Every later write of the config (rotation) keeps it readable for that user.
    ok(
        encrypt(
            &sb,
            &home,
            &["rotate", "--phase", "add-key", "--timeout", "60s"],
        ),
        "rotate add-key",
    );
    assert_eq!(owner(&enc), (2000, 2000, 0o600));
    assert_eq!(read_secret(&sb, &home, "a"), "v-a");
}
