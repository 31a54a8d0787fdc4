//! Schemas of the kinds atrest stores and decodes, and the (apiVersion, kind) registry.
//!
//! Field numbers come from the upstream `generated.proto` files and pointer-ness / `omitempty`
//! from the Go `types.go` files:
//! - apimachinery `pkg/apis/meta/v1/generated.proto`, `types.go` (ObjectMeta & co.)
//! - kubernetes/api `core/v1/generated.proto`, `types.go`
//! - kubernetes/api `rbac/v1`, `certificates/v1`, `authorization/v1`, `authentication/v1`
//!
//! Fields are listed in Go struct order, which is the JSON order.

use super::schema::{Message, Ty, b, f, i64f, m, s, strmap, strs};

// --- apimachinery pkg/apis/meta/v1 ------------------------------------------------------------

/// `metav1.ObjectMeta` (apimachinery `pkg/apis/meta/v1/types.go`). Field 15 (`clusterName`,
/// removed in 1.25) is not listed, so it is skipped on decode and never written.
pub static OBJECT_META: Message = Message {
    name: "ObjectMeta",
    fields: &[
        s("name", 1),
        s("generateName", 2),
        s("namespace", 3),
        s("selfLink", 4),
        s("uid", 5),
        s("resourceVersion", 6),
        i64f("generation", 7),
        // Non-pointer Time: JSON `null` when zero (kube <= 1.33 has no `omitzero` here).
        f("creationTimestamp", 8, Ty::Time),
        f("deletionTimestamp", 9, Ty::Time).ptr(),
        i64f("deletionGracePeriodSeconds", 10).ptr(),
        strmap("labels", 11),
        strmap("annotations", 12),
        m("ownerReferences", 13, &OWNER_REFERENCE).list(),
        strs("finalizers", 14),
        m("managedFields", 17, &MANAGED_FIELDS_ENTRY).list(),
    ],
};

/// `metav1.OwnerReference`.
pub static OWNER_REFERENCE: Message = Message {
    name: "OwnerReference",
    fields: &[
        s("apiVersion", 5).req(),
        s("kind", 1).req(),
        s("name", 3).req(),
        s("uid", 4).req(),
        b("controller", 6).ptr(),
        b("blockOwnerDeletion", 7).ptr(),
    ],
};

/// `metav1.ManagedFieldsEntry`.
pub static MANAGED_FIELDS_ENTRY: Message = Message {
    name: "ManagedFieldsEntry",
    fields: &[
        s("manager", 1),
        s("operation", 2),
        s("apiVersion", 3),
        f("time", 4, Ty::Time).ptr(),
        s("fieldsType", 6),
        f("fieldsV1", 7, Ty::FieldsV1).ptr(),
        s("subresource", 8),
    ],
};

// --- core/v1: Secret, ConfigMap, Namespace, ServiceAccount -------------------------------------

/// `v1.Secret`.
pub static SECRET: Message = Message {
    name: "Secret",
    fields: &[
        m("metadata", 1, &OBJECT_META),
        b("immutable", 5).ptr(),
        f("data", 2, Ty::Bytes).map(),
        strmap("stringData", 4),
        s("type", 3),
    ],
};

/// `v1.ConfigMap`.
pub static CONFIG_MAP: Message = Message {
    name: "ConfigMap",
    fields: &[
        m("metadata", 1, &OBJECT_META),
        b("immutable", 4).ptr(),
        strmap("data", 2),
        f("binaryData", 3, Ty::Bytes).map(),
    ],
};

/// `v1.Namespace`.
pub static NAMESPACE: Message = Message {
    name: "Namespace",
    fields: &[
        m("metadata", 1, &OBJECT_META),
        m("spec", 2, &NAMESPACE_SPEC),
        m("status", 3, &NAMESPACE_STATUS),
    ],
};

/// `v1.NamespaceSpec`.
pub static NAMESPACE_SPEC: Message = Message {
    name: "NamespaceSpec",
    fields: &[strs("finalizers", 1)],
};

/// `v1.NamespaceStatus`.
pub static NAMESPACE_STATUS: Message = Message {
    name: "NamespaceStatus",
    fields: &[
        s("phase", 1),
        m("conditions", 2, &NAMESPACE_CONDITION).list(),
    ],
};

/// `v1.NamespaceCondition`.
pub static NAMESPACE_CONDITION: Message = Message {
    name: "NamespaceCondition",
    fields: &[
        s("type", 1).req(),
        s("status", 2).req(),
        f("lastTransitionTime", 4, Ty::Time),
        s("reason", 5),
        s("message", 6),
    ],
};

/// `v1.ServiceAccount`.
pub static SERVICE_ACCOUNT: Message = Message {
    name: "ServiceAccount",
    fields: &[
        m("metadata", 1, &OBJECT_META),
        m("secrets", 2, &OBJECT_REFERENCE).list(),
        m("imagePullSecrets", 3, &LOCAL_OBJECT_REFERENCE).list(),
        b("automountServiceAccountToken", 4).ptr(),
    ],
};

/// `v1.ObjectReference`.
pub static OBJECT_REFERENCE: Message = Message {
    name: "ObjectReference",
    fields: &[
        s("kind", 1),
        s("namespace", 2),
        s("name", 3),
        s("uid", 4),
        s("apiVersion", 5),
        s("resourceVersion", 6),
        s("fieldPath", 7),
    ],
};

/// `v1.LocalObjectReference`.
pub static LOCAL_OBJECT_REFERENCE: Message = Message {
    name: "LocalObjectReference",
    fields: &[s("name", 1)],
};

/// Every (apiVersion, kind) the codecs know, with its top-level schema.
pub static KINDS: &[(&str, &str, &Message)] = &[
    ("v1", "Secret", &SECRET),
    ("v1", "ConfigMap", &CONFIG_MAP),
    ("v1", "Namespace", &NAMESPACE),
    ("v1", "ServiceAccount", &SERVICE_ACCOUNT),
];

/// The schema of `apiVersion`/`kind`, if known.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static Message> {
    KINDS
        .iter()
        .find(|(a, k, _)| *a == api_version && *k == kind)
        .map(|(_, _, msg)| *msg)
}
