//! The resources this server serves, with their discovery data and etcd key prefixes.
//!
//! Key prefixes are kube-apiserver's, from core's one mapping (`atrest_core::scan::StoredResource::etcd_segment`):
//! the resource name for kube-apiserver's own resources (`/registry/roles/`, `/registry/certificatesigningrequests/`),
//! `<group>/<resource>` for the aggregator's (`/registry/apiregistration.k8s.io/apiservices/`).

/// One served resource.
#[derive(Debug)]
pub(crate) struct ResourceDef {
    pub group: &'static str,
    pub version: &'static str,
    pub resource: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// (subresource, verbs).
    pub subresources: &'static [(&'static str, &'static [&'static str])],
    /// Stored in etcd (false for the create-only review kinds).
    pub stored: bool,
}

impl ResourceDef {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
    /// The singular name in discovery: every kind served here is named by its kind in lower case (as each of
    /// kube-apiserver's registries sets its `SingularQualifiedResource`).
    pub fn singular(&self) -> String {
        self.kind.to_ascii_lowercase()
    }
    /// The etcd key prefix segment, as kube-apiserver's storage factory picks it.
    pub fn etcd_segment(&self) -> String {
        atrest_core::scan::StoredResource::new(self.group, self.resource).etcd_segment()
    }
}

pub(crate) const CRUD: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const NS_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const CREATE_ONLY: &[&str] = &["create"];
const STATUS: &[&str] = &["get", "patch", "update"];

/// A stored v1 resource with every verb (`CRUD`), no short names, categories or subresources.
const fn crud(
    group: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> ResourceDef {
    ResourceDef {
        group,
        version: "v1",
        resource,
        kind,
        namespaced,
        verbs: CRUD,
        short_names: &[],
        categories: &[],
        subresources: &[],
        stored: true,
    }
}

impl ResourceDef {
    /// This resource as a create-only review kind, never stored.
    const fn create_only(self) -> ResourceDef {
        ResourceDef {
            verbs: CREATE_ONLY,
            stored: false,
            ..self
        }
    }
}

const NAMESPACED: bool = true;
const CLUSTER: bool = false;
const AUTHN: &str = "authentication.k8s.io";
const AUTHZ: &str = "authorization.k8s.io";
const RBAC: &str = "rbac.authorization.k8s.io";

pub(crate) static RESOURCES: &[ResourceDef] = &[
    // The aggregator's APIServices. A non-local one (spec.service set) makes its group version appear in
    // discovery, answered 503 while its service is unavailable, which it always is here: the sandbox serves no
    // Services (discovery.rs).
    ResourceDef {
        categories: &["api-extensions"],
        subresources: &[("status", STATUS)],
        ..crud(
            "apiregistration.k8s.io",
            "apiservices",
            "APIService",
            CLUSTER,
        )
    },
    ResourceDef {
        short_names: &["cm"],
        ..crud("", "configmaps", "ConfigMap", NAMESPACED)
    },
    ResourceDef {
        verbs: NS_VERBS,
        short_names: &["ns"],
        subresources: &[("finalize", &["update"]), ("status", STATUS)],
        ..crud("", "namespaces", "Namespace", CLUSTER)
    },
    ResourceDef {
        short_names: &["po"],
        categories: &["all"],
        subresources: &[("status", STATUS)],
        ..crud("", "pods", "Pod", NAMESPACED)
    },
    crud("", "secrets", "Secret", NAMESPACED),
    ResourceDef {
        short_names: &["sa"],
        ..crud("", "serviceaccounts", "ServiceAccount", NAMESPACED)
    },
    crud(AUTHN, "selfsubjectreviews", "SelfSubjectReview", CLUSTER).create_only(),
    crud(
        AUTHZ,
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        NAMESPACED,
    )
    .create_only(),
    crud(
        AUTHZ,
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        CLUSTER,
    )
    .create_only(),
    crud(
        AUTHZ,
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        CLUSTER,
    )
    .create_only(),
    crud(
        AUTHZ,
        "subjectaccessreviews",
        "SubjectAccessReview",
        CLUSTER,
    )
    .create_only(),
    ResourceDef {
        short_names: &["csr"],
        subresources: &[("approval", STATUS), ("status", STATUS)],
        ..crud(
            "certificates.k8s.io",
            "certificatesigningrequests",
            "CertificateSigningRequest",
            CLUSTER,
        )
    },
    crud(RBAC, "clusterrolebindings", "ClusterRoleBinding", CLUSTER),
    crud(RBAC, "clusterroles", "ClusterRole", CLUSTER),
    crud(RBAC, "rolebindings", "RoleBinding", NAMESPACED),
    crud(RBAC, "roles", "Role", NAMESPACED),
];

/// The API groups in discovery order (`/apis`), each with its single version v1.
pub(crate) const GROUPS: &[&str] = &[
    "apiregistration.k8s.io",
    RBAC,
    AUTHN,
    AUTHZ,
    "certificates.k8s.io",
];

/// Find a resource by group/version/resource.
pub(crate) fn lookup(group: &str, version: &str, resource: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.resource == resource)
}

/// Resources of one group/version.
pub(crate) fn in_group(group: &str) -> impl Iterator<Item = &'static ResourceDef> {
    let g = group.to_string();
    RESOURCES.iter().filter(move |r| r.group == g)
}
