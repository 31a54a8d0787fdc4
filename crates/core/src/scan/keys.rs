//! etcd key layout: `<prefix>/<resource>/<namespace>/<name>` or `<prefix>/<resource>/<name>`.
//!
//! The apiserver builds keys as `path.Join("/", prefix) + "/" + resource + "/" + [namespace + "/"] + name`
//! (apiserver `pkg/registry/generic/registry/store.go`: `NamespaceKeyRootFunc`, `NoNamespaceKeyFunc`;
//! `pkg/storage/etcd3/store.go`: `pathPrefix`).
//!
//! The `<resource>` segment is kube-apiserver's own mapping ([`StoredResource::etcd_segment`]): the resource name
//! for the resources compiled into kube-apiserver (`DefaultStorageFactory.ResourcePrefix`: the lower-case resource
//! unless `SpecialDefaultResourcePrefixes` in `pkg/kubeapiserver/default_storage_factory_builder.go` says otherwise:
//! services → `services/specs`, endpoints → `services/endpoints`, nodes → `minions`, replicationcontrollers →
//! `controllers`, ingresses → `ingress`), and `<group>/<resource>` for what the apiextensions and aggregator servers
//! store (`SimpleStorageFactory.ResourcePrefix` in apiserver `pkg/server/options/etcd.go`:
//! `apiextensions.k8s.io/customresourcedefinitions`, `apiregistration.k8s.io/apiservices`, and every custom
//! resource as `<group>/<plural>`).

use crate::config::GroupResource;

/// `(group, resource, kind, namespaced)` of every resource kube-apiserver 1.34 stores (`pkg/registry/*/*/storage`,
/// with the apiextensions and aggregator servers' two), the core group first. Cohabiting copies
/// (`extensions` deployments, `events.k8s.io` events) share the storage of the first.
const BUILTIN: &[(&str, &str, &str, bool)] = &[
    ("", "configmaps", "ConfigMap", true),
    ("", "endpoints", "Endpoints", true),
    ("", "events", "Event", true),
    ("", "limitranges", "LimitRange", true),
    ("", "namespaces", "Namespace", false),
    ("", "nodes", "Node", false),
    ("", "persistentvolumeclaims", "PersistentVolumeClaim", true),
    ("", "persistentvolumes", "PersistentVolume", false),
    ("", "pods", "Pod", true),
    ("", "podtemplates", "PodTemplate", true),
    ("", "replicationcontrollers", "ReplicationController", true),
    ("", "resourcequotas", "ResourceQuota", true),
    ("", "secrets", "Secret", true),
    ("", "serviceaccounts", "ServiceAccount", true),
    ("", "services", "Service", true),
    (
        "admissionregistration.k8s.io",
        "mutatingadmissionpolicies",
        "MutatingAdmissionPolicy",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "mutatingadmissionpolicybindings",
        "MutatingAdmissionPolicyBinding",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
        "ValidatingAdmissionPolicy",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
        "ValidatingAdmissionPolicyBinding",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        false,
    ),
    (
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
    ),
    ("apiregistration.k8s.io", "apiservices", "APIService", false),
    ("apps", "controllerrevisions", "ControllerRevision", true),
    ("apps", "daemonsets", "DaemonSet", true),
    ("apps", "deployments", "Deployment", true),
    ("apps", "replicasets", "ReplicaSet", true),
    ("apps", "statefulsets", "StatefulSet", true),
    (
        "autoscaling",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        true,
    ),
    ("batch", "cronjobs", "CronJob", true),
    ("batch", "jobs", "Job", true),
    (
        "certificates.k8s.io",
        "certificatesigningrequests",
        "CertificateSigningRequest",
        false,
    ),
    (
        "certificates.k8s.io",
        "clustertrustbundles",
        "ClusterTrustBundle",
        false,
    ),
    (
        "coordination.k8s.io",
        "leasecandidates",
        "LeaseCandidate",
        true,
    ),
    ("coordination.k8s.io", "leases", "Lease", true),
    ("discovery.k8s.io", "endpointslices", "EndpointSlice", true),
    ("events.k8s.io", "events", "Event", true),
    ("extensions", "daemonsets", "DaemonSet", true),
    ("extensions", "deployments", "Deployment", true),
    ("extensions", "ingresses", "Ingress", true),
    ("extensions", "networkpolicies", "NetworkPolicy", true),
    ("extensions", "replicasets", "ReplicaSet", true),
    (
        "flowcontrol.apiserver.k8s.io",
        "flowschemas",
        "FlowSchema",
        false,
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
        "PriorityLevelConfiguration",
        false,
    ),
    (
        "internal.apiserver.k8s.io",
        "storageversions",
        "StorageVersion",
        false,
    ),
    ("networking.k8s.io", "ingressclasses", "IngressClass", false),
    ("networking.k8s.io", "ingresses", "Ingress", true),
    ("networking.k8s.io", "ipaddresses", "IPAddress", false),
    (
        "networking.k8s.io",
        "networkpolicies",
        "NetworkPolicy",
        true,
    ),
    ("networking.k8s.io", "servicecidrs", "ServiceCIDR", false),
    ("node.k8s.io", "runtimeclasses", "RuntimeClass", false),
    (
        "policy",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
    ),
    (
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "clusterroles",
        "ClusterRole",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "rolebindings",
        "RoleBinding",
        true,
    ),
    ("rbac.authorization.k8s.io", "roles", "Role", true),
    ("resource.k8s.io", "deviceclasses", "DeviceClass", false),
    ("resource.k8s.io", "resourceclaims", "ResourceClaim", true),
    (
        "resource.k8s.io",
        "resourceclaimtemplates",
        "ResourceClaimTemplate",
        true,
    ),
    ("resource.k8s.io", "resourceslices", "ResourceSlice", false),
    (
        "scheduling.k8s.io",
        "priorityclasses",
        "PriorityClass",
        false,
    ),
    ("storage.k8s.io", "csidrivers", "CSIDriver", false),
    ("storage.k8s.io", "csinodes", "CSINode", false),
    (
        "storage.k8s.io",
        "csistoragecapacities",
        "CSIStorageCapacity",
        true,
    ),
    ("storage.k8s.io", "storageclasses", "StorageClass", false),
    (
        "storage.k8s.io",
        "volumeattachments",
        "VolumeAttachment",
        false,
    ),
    (
        "storage.k8s.io",
        "volumeattributesclasses",
        "VolumeAttributesClass",
        false,
    ),
    (
        "storagemigration.k8s.io",
        "storageversionmigrations",
        "StorageVersionMigration",
        false,
    ),
];

/// kube-apiserver's `SpecialDefaultResourcePrefixes`.
const SPECIAL_PREFIXES: &[(&str, &str, &str)] = &[
    ("", "replicationcontrollers", "controllers"),
    ("", "endpoints", "services/endpoints"),
    ("", "nodes", "minions"),
    ("", "services", "services/specs"),
    ("networking.k8s.io", "ingresses", "ingress"),
    ("extensions", "ingresses", "ingress"),
];

/// Groups stored through `SimpleStorageFactory` (`<group>/<resource>`) although built in: the apiextensions and
/// aggregator servers of kube-apiserver.
const GROUP_QUALIFIED: &[&str] = &["apiextensions.k8s.io", "apiregistration.k8s.io"];

/// A resource as kube-apiserver keeps it in etcd: its group/resource (what an EncryptionConfiguration names) and
/// from it the key segment, the kind and the scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResource {
    /// API group (empty for core).
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

impl StoredResource {
    /// `group`/`resource` (lower-cased, as the storage factory does).
    pub fn new(group: &str, resource: &str) -> Self {
        Self {
            group: group.to_ascii_lowercase(),
            resource: resource.to_ascii_lowercase(),
        }
    }

    /// A resource as a user names it: kubectl's `resource[.group]` (`secrets`, `deployments.apps`,
    /// `widgets.example.com`) or an etcd key segment (`services/specs`, `apiregistration.k8s.io/apiservices`).
    /// A bare name is the built-in resource of that name (core first), else a core resource.
    pub fn parse(name: &str) -> Self {
        let name = name.trim_matches('/');
        if name.contains('/') {
            return Self::from_etcd_segment(name);
        }
        match name.split_once('.') {
            Some((resource, group)) => Self::new(group, resource),
            None => Self::from_etcd_segment(name),
        }
    }

    /// The resource whose objects live under `segment` (the inverse of [`Self::etcd_segment`]).
    pub fn from_etcd_segment(segment: &str) -> Self {
        let segment = segment.trim_matches('/').to_ascii_lowercase();
        if let Some((g, r, _)) = SPECIAL_PREFIXES.iter().find(|(_, _, p)| *p == segment) {
            return Self::new(g, r);
        }
        match segment.split_once('/') {
            Some((group, resource)) => Self::new(group, resource),
            None => match BUILTIN.iter().find(|(_, r, _, _)| *r == segment) {
                Some((g, r, _, _)) => Self::new(g, r),
                None => Self::new("", &segment),
            },
        }
    }

    /// The key segment under the etcd prefix: kube-apiserver's `ResourcePrefix` (see the module doc).
    pub fn etcd_segment(&self) -> String {
        if let Some((_, _, p)) = SPECIAL_PREFIXES
            .iter()
            .find(|(g, r, _)| *g == self.group && *r == self.resource)
        {
            return (*p).to_string();
        }
        if self.is_builtin() && !GROUP_QUALIFIED.contains(&self.group.as_str()) {
            self.resource.clone()
        } else {
            format!("{}/{}", self.group, self.resource)
        }
    }

    /// Whether kube-apiserver itself serves it (otherwise: a custom resource of a CRD).
    pub fn is_builtin(&self) -> bool {
        self.entry().is_some()
    }

    /// The kind stored under it, for built-in resources.
    pub fn kind(&self) -> Option<&'static str> {
        self.entry().map(|(_, _, k, _)| *k)
    }

    /// Whether its objects live in namespaces: known for built-in resources; custom resources may be either.
    pub fn namespaced(&self) -> Option<bool> {
        self.entry().map(|(_, _, _, n)| *n)
    }

    /// The group/resource an EncryptionConfiguration names.
    pub fn group_resource(&self) -> GroupResource {
        GroupResource::new(&self.group, &self.resource)
    }

    /// kubectl's spelling: `secrets`, `deployments.apps`.
    pub fn display_name(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    fn entry(&self) -> Option<&'static (&'static str, &'static str, &'static str, bool)> {
        BUILTIN
            .iter()
            .find(|(g, r, _, _)| *g == self.group && *r == self.resource)
    }
}

/// Whether the resource stored under `segment` is cluster-scoped (custom resources: unknown, treated as
/// namespaced; keys of either form still parse).
pub fn is_cluster_scoped(segment: &str) -> bool {
    StoredResource::from_etcd_segment(segment).namespaced() == Some(false)
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
