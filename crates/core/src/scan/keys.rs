//! etcd key layout: `<prefix>/<resource>/<namespace>/<name>` or `<prefix>/<resource>/<name>`.
//!
//! The apiserver builds keys as `path.Join("/", prefix) + "/" + resource + "/" + [namespace + "/"] + name`
//! (apiserver `pkg/registry/generic/registry/store.go`: `NamespaceKeyRootFunc`, `NoNamespaceKeyFunc`;
//! `pkg/storage/etcd3/store.go`: `pathPrefix`).

/// Core and common resources the apiserver stores without a namespace segment.
const CLUSTER_SCOPED: &[&str] = &[
    "namespaces",
    "nodes",
    "minions",
    "persistentvolumes",
    "clusterroles",
    "clusterrolebindings",
    "certificatesigningrequests",
    "priorityclasses",
    "storageclasses",
    "csidrivers",
    "csinodes",
    "volumeattachments",
    "runtimeclasses",
    "customresourcedefinitions",
    "apiservices",
    "validatingwebhookconfigurations",
    "mutatingwebhookconfigurations",
    "validatingadmissionpolicies",
    "validatingadmissionpolicybindings",
    "ingressclasses",
    "flowschemas",
    "prioritylevelconfigurations",
];

/// Whether `resource` is cluster-scoped (known list; anything else is treated as namespaced).
pub fn is_cluster_scoped(resource: &str) -> bool {
    let plain = resource.rsplit('/').next().unwrap_or(resource);
    CLUSTER_SCOPED.contains(&plain)
}

/// Which objects to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every object of the resource (`-A`).
    AllNamespaces,
    /// Objects in one namespace (`-n NS`); for cluster-scoped resources, every object.
    Namespace(String),
    /// One object by name (in a namespace for namespaced resources).
    Object {
        /// Its namespace (ignored for cluster-scoped resources).
        namespace: String,
        /// Its name.
        name: String,
    },
}

/// What a scan reads: prefix, resource and scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRequest {
    /// The apiserver's `--etcd-prefix` (default `/registry`).
    pub prefix: String,
    /// The resource path segment(s), e.g. `secrets` or `apiregistration.k8s.io/apiservices`.
    pub resource: String,
    /// Which objects.
    pub scope: Scope,
}

impl ScanRequest {
    /// `/<prefix>/<resource>/` (prefix normalized like `path.Join("/", prefix)`).
    pub fn resource_prefix(&self) -> String {
        let p = self.prefix.trim_matches('/');
        let r = self.resource.trim_matches('/');
        if p.is_empty() {
            format!("/{r}/")
        } else {
            format!("/{p}/{r}/")
        }
    }

    /// The first key of the range to read (a prefix).
    pub fn range_start(&self) -> String {
        let base = self.resource_prefix();
        match &self.scope {
            Scope::Namespace(ns) if !is_cluster_scoped(&self.resource) => format!("{base}{ns}/"),
            _ => base,
        }
    }

    /// The exact key when one object is requested.
    pub fn single_key(&self) -> Option<String> {
        match &self.scope {
            Scope::Object { name, .. } if is_cluster_scoped(&self.resource) => {
                Some(format!("{}{name}", self.resource_prefix()))
            }
            Scope::Object { namespace, name } => {
                Some(format!("{}{namespace}/{name}", self.resource_prefix()))
            }
            _ => None,
        }
    }
}

/// Namespace and name parsed from a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyParts {
    /// The namespace, `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

/// Split `key` (which starts with `resource_prefix`, e.g. `/registry/secrets/`) into namespace and
/// name. Two segments are namespace/name, one is a cluster-scoped name.
pub fn parse_key(resource_prefix: &str, key: &str) -> Result<KeyParts, String> {
    let rest = key
        .strip_prefix(resource_prefix)
        .ok_or_else(|| format!("key is not under {resource_prefix}"))?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [name] if !name.is_empty() => Ok(KeyParts {
            namespace: None,
            name: (*name).to_string(),
        }),
        [ns, name] if !ns.is_empty() && !name.is_empty() => Ok(KeyParts {
            namespace: Some((*ns).to_string()),
            name: (*name).to_string(),
        }),
        _ => Err(format!(
            "key does not have the form {resource_prefix}<namespace>/<name> or {resource_prefix}<name>"
        )),
    }
}
