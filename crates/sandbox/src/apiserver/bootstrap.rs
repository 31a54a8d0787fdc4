//! What kube-apiserver creates at start: the system namespaces (`pkg/controlplane/controller/systemnamespaces`)
//! and the default RBAC policy of the `rbac/bootstrap-roles` post-start hook
//! (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`), limited to the roles our flows use.
//! Existing objects are left alone (like upstream reconciliation without changes).

use serde_json::{Value, json};

use super::codec::{new_uid, now_rfc3339};
use super::resources::{self, CRUD};
use super::status::ApiError;
use super::store::Store;
use super::strategy::reaggregate;

const RW: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const RO: &[&str] = &["get", "list", "watch"];

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources})
}

fn url_rule(urls: &[&str], verbs: &[&str]) -> Value {
    json!({"verbs": verbs, "nonResourceURLs": urls})
}

fn meta(name: &str, labels: Value) -> Value {
    let mut l = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    if let Some(m) = labels.as_object() {
        for (k, v) in m {
            l[k] = v.clone();
        }
    }
    json!({
        "name": name,
        "uid": new_uid(),
        "creationTimestamp": now_rfc3339(),
        "labels": l,
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    })
}

fn cluster_role(name: &str, labels: Value, rules: Vec<Value>) -> Value {
    json!({"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": meta(name, labels), "rules": rules})
}

fn aggregated_role(name: &str, labels: Value, agg_label: &str) -> Value {
    json!({
        "kind": "ClusterRole",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": meta(name, labels),
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {agg_label: "true"}}]},
        "rules": [],
    })
}

fn binding(name: &str, role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": g}))
        .collect();
    json!({
        "kind": "ClusterRoleBinding",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": meta(name, json!({})),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

/// The default ClusterRoles.
pub(crate) fn cluster_roles() -> Vec<Value> {
    let to_admin = json!({"rbac.authorization.k8s.io/aggregate-to-admin": "true"});
    let to_edit = json!({"rbac.authorization.k8s.io/aggregate-to-edit": "true"});
    let to_view = json!({"rbac.authorization.k8s.io/aggregate-to-view": "true"});
    vec![
        cluster_role(
            "cluster-admin",
            json!({}),
            vec![rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])],
        ),
        aggregated_role(
            "admin",
            json!({}),
            "rbac.authorization.k8s.io/aggregate-to-admin",
        ),
        aggregated_role(
            "edit",
            to_admin.clone(),
            "rbac.authorization.k8s.io/aggregate-to-edit",
        ),
        aggregated_role(
            "view",
            to_edit.clone(),
            "rbac.authorization.k8s.io/aggregate-to-view",
        ),
        cluster_role(
            "system:aggregate-to-admin",
            to_admin,
            vec![
                rule(
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews"],
                    &["create"],
                ),
                rule(
                    &["rbac.authorization.k8s.io"],
                    &["rolebindings", "roles"],
                    CRUD,
                ),
            ],
        ),
        cluster_role(
            "system:aggregate-to-edit",
            to_edit,
            vec![
                rule(
                    &[""],
                    &[
                        "pods/attach",
                        "pods/exec",
                        "pods/portforward",
                        "pods/proxy",
                        "secrets",
                        "services/proxy",
                    ],
                    RO,
                ),
                rule(&[""], &["serviceaccounts"], &["impersonate"]),
                rule(
                    &[""],
                    &[
                        "pods",
                        "pods/attach",
                        "pods/exec",
                        "pods/portforward",
                        "pods/proxy",
                    ],
                    RW,
                ),
                rule(&[""], &["pods/eviction"], &["create"]),
                rule(
                    &[""],
                    &[
                        "configmaps",
                        "events",
                        "persistentvolumeclaims",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "secrets",
                        "serviceaccounts",
                        "services",
                        "services/proxy",
                    ],
                    RW,
                ),
                rule(&[""], &["serviceaccounts/token"], &["create"]),
                rule(
                    &["apps"],
                    &[
                        "daemonsets",
                        "deployments",
                        "deployments/rollback",
                        "deployments/scale",
                        "replicasets",
                        "replicasets/scale",
                        "statefulsets",
                        "statefulsets/scale",
                    ],
                    RW,
                ),
                rule(&["batch"], &["cronjobs", "jobs"], RW),
            ],
        ),
        cluster_role(
            "system:aggregate-to-view",
            to_view,
            vec![
                rule(
                    &[""],
                    &[
                        "configmaps",
                        "endpoints",
                        "persistentvolumeclaims",
                        "persistentvolumeclaims/status",
                        "pods",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "serviceaccounts",
                        "services",
                        "services/status",
                    ],
                    RO,
                ),
                rule(
                    &[""],
                    &[
                        "bindings",
                        "events",
                        "limitranges",
                        "namespaces/status",
                        "pods/log",
                        "pods/status",
                        "replicationcontrollers/status",
                        "resourcequotas",
                        "resourcequotas/status",
                    ],
                    RO,
                ),
                rule(&[""], &["namespaces"], RO),
                rule(
                    &["apps"],
                    &[
                        "controllerrevisions",
                        "daemonsets",
                        "daemonsets/status",
                        "deployments",
                        "deployments/scale",
                        "deployments/status",
                        "replicasets",
                        "replicasets/scale",
                        "replicasets/status",
                        "statefulsets",
                        "statefulsets/scale",
                        "statefulsets/status",
                    ],
                    RO,
                ),
                rule(
                    &["batch"],
                    &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
                    RO,
                ),
            ],
        ),
        cluster_role(
            "system:basic-user",
            json!({}),
            vec![
                rule(
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    &["create"],
                ),
                rule(
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                    &["create"],
                ),
            ],
        ),
        cluster_role(
            "system:discovery",
            json!({}),
            vec![url_rule(
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
                &["get"],
            )],
        ),
        cluster_role(
            "system:public-info-viewer",
            json!({}),
            vec![url_rule(
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
                &["get"],
            )],
        ),
        cluster_role(
            "system:kube-controller-manager",
            json!({}),
            vec![
                rule(
                    &["", "events.k8s.io"],
                    &["events"],
                    &["create", "patch", "update"],
                ),
                rule(&["coordination.k8s.io"], &["leases"], &["create"]),
                rule(&["coordination.k8s.io"], &["leases"], &["get", "update"]),
                rule(&[""], &["secrets", "serviceaccounts"], &["create"]),
                rule(&[""], &["secrets"], &["delete"]),
                rule(
                    &[""],
                    &["configmaps", "namespaces", "secrets", "serviceaccounts"],
                    &["get"],
                ),
                rule(&[""], &["secrets", "serviceaccounts"], &["update"]),
                rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
                rule(
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                    &["create"],
                ),
                rule(&["*"], &["*"], &["list", "watch"]),
                rule(&[""], &["serviceaccounts/token"], &["create"]),
            ],
        ),
        cluster_role(
            "system:controller:certificate-controller",
            json!({}),
            vec![
                rule(
                    &["certificates.k8s.io"],
                    &["certificatesigningrequests"],
                    &["delete", "get", "list", "watch"],
                ),
                rule(
                    &["certificates.k8s.io"],
                    &[
                        "certificatesigningrequests/approval",
                        "certificatesigningrequests/status",
                    ],
                    &["update"],
                ),
                json!({"verbs": ["approve"], "apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "resourceNames": ["kubernetes.io/kube-apiserver-client-kubelet"]}),
                json!({"verbs": ["sign"], "apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "resourceNames": [
                    "kubernetes.io/kube-apiserver-client", "kubernetes.io/kube-apiserver-client-kubelet", "kubernetes.io/kubelet-serving", "kubernetes.io/legacy-unknown"]}),
                rule(
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                    &["create"],
                ),
                rule(
                    &["", "events.k8s.io"],
                    &["events"],
                    &["create", "patch", "update"],
                ),
            ],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            json!({}),
            vec![rule(
                &["certificates.k8s.io"],
                &["certificatesigningrequests/selfnodeclient"],
                &["create"],
            )],
        ),
    ]
}

/// The default ClusterRoleBindings.
pub(crate) fn cluster_role_bindings() -> Vec<Value> {
    vec![
        binding("cluster-admin", "cluster-admin", &["system:masters"]),
        binding(
            "system:basic-user",
            "system:basic-user",
            &["system:authenticated"],
        ),
        binding(
            "system:discovery",
            "system:discovery",
            &["system:authenticated"],
        ),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
        user_binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            "system:kube-controller-manager",
        ),
        {
            // The sandbox's controller-manager runs its controllers under its own identity (the real one uses
            // the controller's ServiceAccount with --use-service-account-credentials), so that user is bound too.
            let mut b = user_binding(
                "system:controller:certificate-controller",
                "system:controller:certificate-controller",
                "system:kube-controller-manager",
            );
            b["subjects"].as_array_mut().expect("subjects").insert(
                0,
                json!({"kind": "ServiceAccount", "name": "certificate-controller", "namespace": "kube-system"}),
            );
            b
        },
    ]
}

fn user_binding(name: &str, role: &str, user: &str) -> Value {
    let mut b = binding(name, role, &[]);
    b["subjects"] =
        json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}]);
    b
}

fn namespace(name: &str) -> Value {
    json!({
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "uid": new_uid(),
            "creationTimestamp": now_rfc3339(),
            "labels": {"kubernetes.io/metadata.name": name},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

/// Create what is missing.
pub(crate) async fn run(store: &Store) -> Result<(), ApiError> {
    let ns = resources::lookup("", "v1", "namespaces").expect("namespaces");
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        store.create_if_absent(ns, "", n, &namespace(n)).await?;
        super::strategy::ensure_default_service_account(store, n).await?;
    }
    let cr =
        resources::lookup("rbac.authorization.k8s.io", "v1", "clusterroles").expect("clusterroles");
    for r in cluster_roles() {
        let name = r["metadata"]["name"].as_str().unwrap_or("").to_string();
        store.create_if_absent(cr, "", &name, &r).await?;
    }
    let crb = resources::lookup("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
        .expect("clusterrolebindings");
    for b in cluster_role_bindings() {
        let name = b["metadata"]["name"].as_str().unwrap_or("").to_string();
        store.create_if_absent(crb, "", &name, &b).await?;
    }
    reaggregate(store).await
}
