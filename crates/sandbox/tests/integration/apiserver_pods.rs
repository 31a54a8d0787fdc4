//! Mirror pods as the kubelet publishes them (Node authorizer identity), their `/status`, and the pods Table.

use crate::support::{Cluster, kubectl, kubectl_ok};

const MIRROR: &str = r#"{
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "kube-apiserver-node1", "namespace": "kube-system",
    "labels": {"component": "kube-apiserver", "tier": "control-plane"},
    "annotations": {"kubernetes.io/config.mirror": "abc", "kubernetes.io/config.hash": "abc", "kubernetes.io/config.source": "file"}},
  "spec": {"nodeName": "node1", "hostNetwork": true, "priorityClassName": "system-node-critical",
    "containers": [{"name": "kube-apiserver", "image": "registry.k8s.io/kube-apiserver:v1.32.4",
      "command": ["kube-apiserver", "--secure-port=6443", "--etcd-servers=https://127.0.0.1:2379"],
      "volumeMounts": [{"name": "k8s-certs", "mountPath": "/etc/kubernetes/pki", "readOnly": true}]}],
    "volumes": [{"name": "k8s-certs", "hostPath": {"path": "/etc/kubernetes/pki", "type": "DirectoryOrCreate"}}]}
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_publishes_mirror_pods() {
    let c = Cluster::start("1.32", &[]).await;
    let admin = c.admin();
    let kubelet = c.kubeconfig("system:node:node1", &["system:nodes"]);
    let out = kubectl(&kubelet, &["create", "-f", "-"], Some(MIRROR)).await;
    assert_eq!(out.ok().trim(), "pod/kube-apiserver-node1 created");
    // Allowed by the Node authorizer (no RBAC binding exists for the node).
    let out = kubectl(
        &kubelet,
        &[
            "get",
            "--raw",
            "/api/v1/namespaces/kube-system/pods/kube-apiserver-node1",
        ],
        None,
    )
    .await;
    let mut pod = out.json();
    assert_eq!(pod["status"]["phase"], "Pending");
    pod["status"] = serde_json::json!({
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "kube-apiserver", "ready": true, "restartCount": 2, "image": "registry.k8s.io/kube-apiserver:v1.32.4",
            "imageID": "", "started": true, "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}}}],
    });
    let out = kubectl(
        &kubelet,
        &["replace", "--subresource=status", "-f", "-"],
        Some(&pod.to_string()),
    )
    .await;
    assert!(
        out.ok().contains("pod/kube-apiserver-node1 replaced"),
        "{}",
        out.stdout
    );
    let out = kubectl(&admin, &["get", "pods", "-n", "kube-system"], None).await;
    let row = out
        .ok()
        .lines()
        .find(|l| l.starts_with("kube-apiserver-node1"))
        .unwrap_or("")
        .to_string();
    assert_eq!(
        row.split_whitespace().take(4).collect::<Vec<_>>(),
        ["kube-apiserver-node1", "1/1", "Running", "2"],
        "{}",
        out.stdout
    );
    let flags = kubectl(
        &admin,
        &[
            "get",
            "pod",
            "-n",
            "kube-system",
            "kube-apiserver-node1",
            "-o",
            "jsonpath={.spec.containers[0].command}",
        ],
        None,
    )
    .await;
    assert!(flags.ok().contains("--etcd-servers=https://127.0.0.1:2379"));
    // The kubelet is no administrator.
    let out = kubectl(
        &kubelet,
        &[
            "get",
            "--raw",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        ],
        None,
    )
    .await;
    out.fails_with("User \"system:node:node1\" cannot list resource \"clusterroles\"");
    // Namespaces get their default ServiceAccount.
    kubectl_ok(&admin, &["create", "ns", "apps"]).await;
    assert_eq!(
        kubectl_ok(&admin, &["get", "sa", "-n", "apps", "-o", "name"])
            .await
            .trim(),
        "serviceaccount/default"
    );
}
