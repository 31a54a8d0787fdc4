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
    pub singular: &'static str,
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
    /// The etcd key prefix segment, as kube-apiserver's storage factory picks it.
    pub fn etcd_segment(&self) -> String {
        atrest_core::scan::StoredResource::new(self.group, self.resource).etcd_segment()
    }
}

const CRUD: &[&str] = &[
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

pub(crate) static RESOURCES: &[ResourceDef] = &[
    // The aggregator's APIServices. A non-local one (spec.service set) makes its group version appear in
    // discovery, answered 503 while its service is unavailable, which it always is here: the sandbox serves no
    // Services (discovery.rs).
    ResourceDef {
        group: "apiregistration.k8s.io",
        version: "v1",
        resource: "apiservices",
        kind: "APIService",
        singular: "apiservice",
        namespaced: false,
        verbs: CRUD,
        short_names: &[],
        categories: &["api-extensions"],
        subresources: &[("status", STATUS)],
        stored: true,
    },
    ResourceDef {
        group: "",
        version: "v1",
        resource: "configmaps",
        kind: "ConfigMap",
        singular: "configmap",
        namespaced: true,
        verbs: CRUD,
        short_names: &["cm"],
        categories: &[],
        subresources: &[],
        stored: true,
    },
    ResourceDef {
        group: "",
        version: "v1",
        resource: "namespaces",
        kind: "Namespace",
        singular: "namespace",
        namespaced: false,
        verbs: NS_VERBS,
        short_names: &["ns"],
        categories: &[],
        subresources: &[("finalize", &["update"]), ("status", STATUS)],
        stored: true,
    },
    ResourceDef {
        group: "",
        version: "v1",
        resource: "pods",
        kind: "Pod",
        singular: "pod",
        namespaced: true,
        verbs: CRUD,
        short_names: &["po"],
        categories: &["all"],
        subresources: &[("status", STATUS)],
        stored: true,
    },
    ResourceDef {
        group: "",
        version: "v1",
        resource: "secrets",
        kind: "Secret",
        singular: "secret",
        namespaced: true,
        verbs: CRUD,
        short_names: &[],
        categories: &[],
        subresources: &[],
        stored: true,
    },
    ResourceDef {
        group: "",
        version: "v1",
        resource: "serviceaccounts",
        kind: "ServiceAccount",
        singular: "serviceaccount",
        namespaced: true,
        verbs: CRUD,
        short_names: &["sa"],
        categories: &[],
        subresources: &[],
        stored: true,
    },
    ResourceDef {
        group: "authentication.k8s.io",
        version: "v1",
        resource: "selfsubjectreviews",
        kind: "SelfSubjectReview",
        singular: "selfsubjectreview",
        namespaced: false,
        verbs: CREATE_ONLY,
        short_names: &[],
        categories: &[],
        subresources: &[],
        stored: false,
    },
    ResourceDef {
        group: "authorization.k8s.io",
        version: "v1",
        resource: "localsubjectaccessreviews",
        kind: "LocalSubjectAccessReview",
        singular: "localsubjectaccessreview",
        namespaced: true,
        verbs: CREATE_ONLY,
        short_names: &[],
        categories: &[],
        subresources: &[],
        stored: false,
    },
    ResourceDef {
        group: "authorization.k8s.io",
        version: "v1",
        resource: "selfsubjectaccessreviews",
        kind: "SelfSubjectAccessReview",
        singular: "selfsubjectaccessreview",
        namespaced: false,
        verbs: CREATE_ONLY,
        short_names: &[],
        categories: &[],
        subresources: &[],
        stored: false,
    },
    ResourceDef {
        group: "authorization.k8s.io",
        version: "v1",
        resource: "selfsubjectrulesreviews",
        kind: "SelfSubjectRulesReview",
        singular: "selfsubjectrulesreview",
        namespaced: false,
        verbs: CREATE_ONLY,
        short_names: &[],
        categories: &[],
        subresources: &[],
        stored: false,
    },
    ResourceDef {
        group: "authorization.k8s.io",
        version: "v1",
        resource: "subjectaccessreviews",
        kind: "SubjectAccessReview",
        singular: "subjectaccessreview",
        namespaced: false,
        verbs: CREATE_ONLY,
        short_names: &[],
        categories: &[],
        subresources: &[],
        stored: false,
    },
    ResourceDef {
        group: "certificates.k8s.io",
        version: "v1",
        resource: "certificatesigningrequests",
        kind: "CertificateSigningRequest",
        singular: "certificatesigningrequest",
        namespaced: false,
        verbs: CRUD,
        short_names: &["csr"],
        categories: &[],
        subresources: &[("approval", STATUS), ("status", STATUS)],
        stored: true,
    },
    ResourceDef {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        resource: "clusterrolebindings",
        kind: "ClusterRoleBinding",
        singular: "clusterrolebinding",
        namespaced: false,
        verbs: CRUD,
        short_names: &[],
        categories: &[],
        subresources: &[],
        stored: true,
    },
    ResourceDef {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        resource: "clusterroles",
        kind: "ClusterRole",
        singular: "clusterrole",
        namespaced: false,
        verbs: CRUD,
        short_names: &[],
        categories: &[],
        subresources: &[],
        stored: true,
    },
    ResourceDef {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        resource: "rolebindings",
        kind: "RoleBinding",
        singular: "rolebinding",
        namespaced: true,
        verbs: CRUD,
        short_names: &[],
        categories: &[],
        subresources: &[],
        stored: true,
    },
    ResourceDef {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        resource: "roles",
        kind: "Role",
        singular: "role",
        namespaced: true,
        verbs: CRUD,
        short_names: &[],
        categories: &[],
        subresources: &[],
        stored: true,
    },
];

/// The API groups in discovery order (`/apis`), each with its single version v1.
pub(crate) const GROUPS: &[&str] = &[
    "apiregistration.k8s.io",
    "rbac.authorization.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
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
