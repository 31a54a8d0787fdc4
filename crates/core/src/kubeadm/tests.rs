use super::*;

/// What `kubeadm init` 1.31+ uploads (sigs.k8s.io/yaml: sorted keys, `{}` for empty components).
const V1BETA4: &str = r#"apiServer: {}
apiVersion: kubeadm.k8s.io/v1beta4
caCertificateValidityPeriod: 87600h0m0s
certificateValidityPeriod: 8760h0m0s
certificatesDir: /etc/kubernetes/pki
clusterName: kubernetes
controllerManager: {}
dns: {}
encryptionAlgorithm: RSA-2048
etcd:
  local:
    dataDir: /var/lib/etcd
imageRepository: registry.k8s.io
kind: ClusterConfiguration
kubernetesVersion: v1.34.4
networking:
  dnsDomain: cluster.local
  serviceSubnet: 10.96.0.0/12
proxy: {}
scheduler: {}
"#;

/// A v1beta3 document an admin edited: comments, an existing extraArgs map, certSANs.
const V1BETA3: &str = r#"apiServer:
  certSANs:
  - lb.example.com   # the load balancer
  extraArgs:
    # audit
    audit-log-path: /var/log/audit.log
    authorization-mode: Node,RBAC
  timeoutForControlPlane: 4m0s
apiVersion: kubeadm.k8s.io/v1beta3
certificatesDir: /etc/kubernetes/pki
clusterName: prod
kind: ClusterConfiguration
kubernetesVersion: v1.30.6
"#;

fn manifest(flags: &[&str], extra_volume: Option<(&str, &str)>) -> Manifest {
    let mut t = String::from(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\n  namespace: kube-system\nspec:\n  containers:\n  - command:\n    - kube-apiserver\n",
    );
    for f in flags {
        t.push_str(&format!("    - {f}\n"));
    }
    t.push_str("    name: kube-apiserver\n    volumeMounts:\n    - mountPath: /etc/kubernetes/pki\n      name: k8s-certs\n      readOnly: true\n");
    if let Some((name, dir)) = extra_volume {
        t.push_str(&format!(
            "    - mountPath: {dir}\n      name: {name}\n      readOnly: true\n"
        ));
    }
    t.push_str("  volumes:\n  - hostPath:\n      path: /etc/kubernetes/pki\n      type: DirectoryOrCreate\n    name: k8s-certs\n");
    if let Some((name, dir)) = extra_volume {
        t.push_str(&format!(
            "  - hostPath:\n      path: {dir}\n      type: DirectoryOrCreate\n    name: {name}\n"
        ));
    }
    Manifest::parse(&t, "kube-apiserver.yaml").unwrap()
}

/// Lines of `after` that are not in `before` and the other way round.
fn changed_lines(before: &str, after: &str) -> (Vec<String>, Vec<String>) {
    let b: Vec<&str> = before.lines().collect();
    let a: Vec<&str> = after.lines().collect();
    (
        a.iter()
            .filter(|l| !b.contains(l))
            .map(|l| l.to_string())
            .collect(),
        b.iter()
            .filter(|l| !a.contains(l))
            .map(|l| l.to_string())
            .collect(),
    )
}

#[test]
fn v1beta4_gets_list_args_and_a_volume_and_loses_them_again() {
    let cc = ClusterConfiguration::parse(V1BETA4, "kubeadm-config").unwrap();
    assert_eq!(cc.version(), ApiVersion::V1beta4);
    let m = manifest(
        &[
            "--encryption-provider-config=/etc/kubernetes/enc/enc.yaml",
            "--encryption-provider-config-automatic-reload=true",
        ],
        Some(("encryption-config", "/etc/kubernetes/enc")),
    );
    assert_eq!(drift(&cc, &m).len(), 3, "{:?}", drift(&cc, &m));
    let (synced, changes) = sync(&cc, &m).unwrap();
    assert_eq!(changes.len(), 3, "{changes:?}");
    let text = synced.text();
    assert!(
        text.starts_with(
            "apiServer:\n  extraArgs:\n  - name: encryption-provider-config\n    value: /etc/kubernetes/enc/enc.yaml\n  - name: encryption-provider-config-automatic-reload\n    value: \"true\"\n  extraVolumes:\n  - hostPath: /etc/kubernetes/enc\n    mountPath: /etc/kubernetes/enc\n    name: encryption-config\n    pathType: DirectoryOrCreate\n    readOnly: true\napiVersion: kubeadm.k8s.io/v1beta4\n"
        ),
        "{text}"
    );
    assert!(
        text.ends_with(&V1BETA4["apiServer: {}\n".len()..]),
        "{text}"
    );
    assert_eq!(
        synced.extra_arg(CONFIG_FLAG).as_deref(),
        Some("/etc/kubernetes/enc/enc.yaml")
    );
    assert!(drift(&synced, &m).is_empty());
    assert!(sync(&synced, &m).unwrap().1.is_empty(), "idempotent");

    // Rotation changes nothing; a new path replaces the value in place.
    let m2 = manifest(
        &[
            "--encryption-provider-config=/etc/kubernetes/enc/other.yaml",
            "--encryption-provider-config-automatic-reload=true",
        ],
        Some(("encryption-config", "/etc/kubernetes/enc")),
    );
    let (moved, changes) = sync(&synced, &m2).unwrap();
    assert_eq!(
        changes,
        ["set apiServer.extraArgs encryption-provider-config=/etc/kubernetes/enc/other.yaml"]
    );
    let (added, removed) = changed_lines(&synced.text(), &moved.text());
    assert_eq!(added, ["    value: /etc/kubernetes/enc/other.yaml"]);
    assert_eq!(removed, ["    value: /etc/kubernetes/enc/enc.yaml"]);

    // disable: back to exactly what kubeadm wrote.
    let (back, changes) = sync(&synced, &manifest(&[], None)).unwrap();
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(back.text(), V1BETA4);
}

#[test]
fn v1beta3_map_args_keep_comments_order_and_other_fields() {
    let cc = ClusterConfiguration::parse(V1BETA3, "kubeadm-config").unwrap();
    assert_eq!(cc.version(), ApiVersion::V1beta3);
    let m = manifest(
        &["--encryption-provider-config=/etc/kubernetes/pki/enc.yaml"],
        None,
    );
    let (synced, changes) = sync(&cc, &m).unwrap();
    assert_eq!(
        changes,
        ["set apiServer.extraArgs encryption-provider-config=/etc/kubernetes/pki/enc.yaml"]
    );
    let (added, removed) = changed_lines(V1BETA3, &synced.text());
    assert_eq!(
        added,
        ["    encryption-provider-config: /etc/kubernetes/pki/enc.yaml"]
    );
    assert!(removed.is_empty());
    // Sorted among the existing keys, after the comment and the keys before it.
    assert!(
        synced.text().contains("    authorization-mode: Node,RBAC\n    encryption-provider-config: /etc/kubernetes/pki/enc.yaml\n  timeoutForControlPlane"),
        "{}",
        synced.text()
    );
    assert!(drift(&synced, &m).is_empty());
    // Under the certificates directory kubeadm mounts anyway: no extraVolume.
    assert!(synced.extra_volumes().is_empty());
    let (back, _) = sync(&synced, &manifest(&[], None)).unwrap();
    assert_eq!(back.text(), V1BETA3);
}

#[test]
fn flow_style_and_foreign_documents_are_refused() {
    assert!(
        ClusterConfiguration::parse(
            "kind: InitConfiguration\napiVersion: kubeadm.k8s.io/v1beta4\n",
            "x"
        )
        .is_err()
    );
    assert!(
        ClusterConfiguration::parse(
            "kind: ClusterConfiguration\napiVersion: kubeadm.k8s.io/v1beta2\n",
            "x"
        )
        .is_err()
    );
    let cc = ClusterConfiguration::parse(
        "apiServer: {extraArgs: {a: b}}\napiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n",
        "kubeadm-config",
    )
    .unwrap();
    let e = sync(
        &cc,
        &manifest(
            &["--encryption-provider-config=/etc/kubernetes/pki/enc.yaml"],
            None,
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("flow style") && e.contains("kubeadm-config was not changed"),
        "{e}"
    );
}
