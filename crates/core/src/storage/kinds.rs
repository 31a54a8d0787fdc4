//! Schemas of the kinds atrest stores and decodes, and the (apiVersion, kind) registry.
//!
//! Field numbers come from the upstream `generated.proto` files and pointer-ness / `omitempty`
//! from the Go `types.go` files:
//! - apimachinery `pkg/apis/meta/v1/generated.proto`, `types.go` (ObjectMeta & co.)
//! - kubernetes/api `core/v1/generated.proto`, `types.go`
//! - kubernetes/api `rbac/v1`, `certificates/v1`, `authorization/v1`, `authentication/v1`
//! - kube-aggregator `pkg/apis/apiregistration/v1/generated.proto`, `types.go` (APIService)
//!
//! Fields are listed in Go struct order, which is the JSON order.

use super::schema::{Message, Ty, b, f, i32f, i64f, m, s, strmap, strs};

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

/// `metav1.LabelSelector`.
pub static LABEL_SELECTOR: Message = Message {
    name: "LabelSelector",
    fields: &[
        strmap("matchLabels", 1),
        m("matchExpressions", 2, &LABEL_SELECTOR_REQUIREMENT).list(),
    ],
};

/// `metav1.LabelSelectorRequirement`.
pub static LABEL_SELECTOR_REQUIREMENT: Message = Message {
    name: "LabelSelectorRequirement",
    fields: &[s("key", 1).req(), s("operator", 2).req(), strs("values", 3)],
};

/// `metav1.FieldSelectorRequirement`.
pub static FIELD_SELECTOR_REQUIREMENT: Message = Message {
    name: "FieldSelectorRequirement",
    fields: &[s("key", 1).req(), s("operator", 2).req(), strs("values", 3)],
};

// --- rbac.authorization.k8s.io/v1 (kubernetes/api rbac/v1/types.go, generated.proto) ----------

/// `rbacv1.PolicyRule`: `verbs` has no `omitempty`.
pub static POLICY_RULE: Message = Message {
    name: "PolicyRule",
    fields: &[
        strs("verbs", 1).req(),
        strs("apiGroups", 2),
        strs("resources", 3),
        strs("resourceNames", 4),
        strs("nonResourceURLs", 5),
    ],
};

/// `rbacv1.Role`: `rules` has no `omitempty` (an empty Role serves `"rules":null`).
pub static ROLE: Message = Message {
    name: "Role",
    fields: &[
        m("metadata", 1, &OBJECT_META),
        m("rules", 2, &POLICY_RULE).list().req(),
    ],
};

/// `rbacv1.ClusterRole`.
pub static CLUSTER_ROLE: Message = Message {
    name: "ClusterRole",
    fields: &[
        m("metadata", 1, &OBJECT_META),
        m("rules", 2, &POLICY_RULE).list().req(),
        m("aggregationRule", 3, &AGGREGATION_RULE).ptr(),
    ],
};

/// `rbacv1.AggregationRule`.
pub static AGGREGATION_RULE: Message = Message {
    name: "AggregationRule",
    fields: &[m("clusterRoleSelectors", 1, &LABEL_SELECTOR).list()],
};

/// `rbacv1.Subject`.
pub static SUBJECT: Message = Message {
    name: "Subject",
    fields: &[
        s("kind", 1).req(),
        s("apiGroup", 2),
        s("name", 3).req(),
        s("namespace", 4),
    ],
};

/// `rbacv1.RoleRef`: all three fields without `omitempty`.
pub static ROLE_REF: Message = Message {
    name: "RoleRef",
    fields: &[
        s("apiGroup", 1).req(),
        s("kind", 2).req(),
        s("name", 3).req(),
    ],
};

/// `rbacv1.RoleBinding`.
pub static ROLE_BINDING: Message = Message {
    name: "RoleBinding",
    fields: &[
        m("metadata", 1, &OBJECT_META),
        m("subjects", 2, &SUBJECT).list(),
        m("roleRef", 3, &ROLE_REF).req(),
    ],
};

/// `rbacv1.ClusterRoleBinding`.
pub static CLUSTER_ROLE_BINDING: Message = Message {
    name: "ClusterRoleBinding",
    fields: &[
        m("metadata", 1, &OBJECT_META),
        m("subjects", 2, &SUBJECT).list(),
        m("roleRef", 3, &ROLE_REF).req(),
    ],
};

// --- certificates.k8s.io/v1 (kubernetes/api certificates/v1/types.go) -------------------------

/// `certificatesv1.CertificateSigningRequest`.
pub static CERTIFICATE_SIGNING_REQUEST: Message = Message {
    name: "CertificateSigningRequest",
    fields: &[
        m("metadata", 1, &OBJECT_META),
        m("spec", 2, &CSR_SPEC).req(),
        m("status", 3, &CSR_STATUS),
    ],
};

/// `certificatesv1.CertificateSigningRequestSpec`: `request` and `signerName` have no
/// `omitempty`; `expirationSeconds` is `*int32`; `extra` is `map[string]ExtraValue`.
pub static CSR_SPEC: Message = Message {
    name: "CertificateSigningRequestSpec",
    fields: &[
        f("request", 1, Ty::Bytes).req(),
        s("signerName", 7).req(),
        i32f("expirationSeconds", 8).ptr(),
        strs("usages", 5),
        s("username", 2),
        s("uid", 3),
        strs("groups", 4),
        f("extra", 6, Ty::StrList).map(),
    ],
};

/// `certificatesv1.CertificateSigningRequestStatus`.
pub static CSR_STATUS: Message = Message {
    name: "CertificateSigningRequestStatus",
    fields: &[
        m("conditions", 1, &CSR_CONDITION).list(),
        f("certificate", 2, Ty::Bytes),
    ],
};

/// `certificatesv1.CertificateSigningRequestCondition`.
pub static CSR_CONDITION: Message = Message {
    name: "CertificateSigningRequestCondition",
    fields: &[
        s("type", 1).req(),
        s("status", 6).req(),
        s("reason", 2),
        s("message", 3),
        f("lastUpdateTime", 4, Ty::Time),
        f("lastTransitionTime", 5, Ty::Time),
    ],
};

// --- authorization.k8s.io/v1 (kubernetes/api authorization/v1/types.go) -----------------------

/// `authorizationv1.ResourceAttributes`.
pub static RESOURCE_ATTRIBUTES: Message = Message {
    name: "ResourceAttributes",
    fields: &[
        s("namespace", 1),
        s("verb", 2),
        s("group", 3),
        s("version", 4),
        s("resource", 5),
        s("subresource", 6),
        s("name", 7),
        m("fieldSelector", 8, &FIELD_SELECTOR_ATTRIBUTES).ptr(),
        m("labelSelector", 9, &LABEL_SELECTOR_ATTRIBUTES).ptr(),
    ],
};

/// `authorizationv1.FieldSelectorAttributes`.
pub static FIELD_SELECTOR_ATTRIBUTES: Message = Message {
    name: "FieldSelectorAttributes",
    fields: &[
        s("rawSelector", 1),
        m("requirements", 2, &FIELD_SELECTOR_REQUIREMENT).list(),
    ],
};

/// `authorizationv1.LabelSelectorAttributes`.
pub static LABEL_SELECTOR_ATTRIBUTES: Message = Message {
    name: "LabelSelectorAttributes",
    fields: &[
        s("rawSelector", 1),
        m("requirements", 2, &LABEL_SELECTOR_REQUIREMENT).list(),
    ],
};

/// `authorizationv1.NonResourceAttributes`.
pub static NON_RESOURCE_ATTRIBUTES: Message = Message {
    name: "NonResourceAttributes",
    fields: &[s("path", 1), s("verb", 2)],
};

/// `authorizationv1.SubjectAccessReviewStatus`: `allowed` has no `omitempty`.
pub static SUBJECT_ACCESS_REVIEW_STATUS: Message = Message {
    name: "SubjectAccessReviewStatus",
    fields: &[
        b("allowed", 1).req(),
        b("denied", 4),
        s("reason", 2),
        s("evaluationError", 3),
    ],
};

/// `authorizationv1.SelfSubjectAccessReviewSpec`.
pub static SELF_SUBJECT_ACCESS_REVIEW_SPEC: Message = Message {
    name: "SelfSubjectAccessReviewSpec",
    fields: &[
        m("resourceAttributes", 1, &RESOURCE_ATTRIBUTES).ptr(),
        m("nonResourceAttributes", 2, &NON_RESOURCE_ATTRIBUTES).ptr(),
    ],
};

/// `authorizationv1.SelfSubjectAccessReview`.
pub static SELF_SUBJECT_ACCESS_REVIEW: Message = Message {
    name: "SelfSubjectAccessReview",
    fields: &[
        m("metadata", 1, &OBJECT_META),
        m("spec", 2, &SELF_SUBJECT_ACCESS_REVIEW_SPEC).req(),
        m("status", 3, &SUBJECT_ACCESS_REVIEW_STATUS),
    ],
};

/// `authorizationv1.SubjectAccessReviewSpec`.
pub static SUBJECT_ACCESS_REVIEW_SPEC: Message = Message {
    name: "SubjectAccessReviewSpec",
    fields: &[
        m("resourceAttributes", 1, &RESOURCE_ATTRIBUTES).ptr(),
        m("nonResourceAttributes", 2, &NON_RESOURCE_ATTRIBUTES).ptr(),
        s("user", 3),
        strs("groups", 4),
        f("extra", 5, Ty::StrList).map(),
        s("uid", 6),
    ],
};

/// `authorizationv1.SubjectAccessReview`.
pub static SUBJECT_ACCESS_REVIEW: Message = Message {
    name: "SubjectAccessReview",
    fields: &[
        m("metadata", 1, &OBJECT_META),
        m("spec", 2, &SUBJECT_ACCESS_REVIEW_SPEC).req(),
        m("status", 3, &SUBJECT_ACCESS_REVIEW_STATUS),
    ],
};

/// `authorizationv1.LocalSubjectAccessReview`.
pub static LOCAL_SUBJECT_ACCESS_REVIEW: Message = Message {
    name: "LocalSubjectAccessReview",
    fields: &[
        m("metadata", 1, &OBJECT_META),
        m("spec", 2, &SUBJECT_ACCESS_REVIEW_SPEC).req(),
        m("status", 3, &SUBJECT_ACCESS_REVIEW_STATUS),
    ],
};

/// `authorizationv1.SelfSubjectRulesReviewSpec`.
pub static SELF_SUBJECT_RULES_REVIEW_SPEC: Message = Message {
    name: "SelfSubjectRulesReviewSpec",
    fields: &[s("namespace", 1)],
};

/// `authorizationv1.ResourceRule`.
pub static RESOURCE_RULE: Message = Message {
    name: "ResourceRule",
    fields: &[
        strs("verbs", 1).req(),
        strs("apiGroups", 2),
        strs("resources", 3),
        strs("resourceNames", 4),
    ],
};

/// `authorizationv1.NonResourceRule`.
pub static NON_RESOURCE_RULE: Message = Message {
    name: "NonResourceRule",
    fields: &[strs("verbs", 1).req(), strs("nonResourceURLs", 2)],
};

/// `authorizationv1.SubjectRulesReviewStatus`: the rule lists and `incomplete` have no
/// `omitempty`.
pub static SUBJECT_RULES_REVIEW_STATUS: Message = Message {
    name: "SubjectRulesReviewStatus",
    fields: &[
        m("resourceRules", 1, &RESOURCE_RULE).list().req(),
        m("nonResourceRules", 2, &NON_RESOURCE_RULE).list().req(),
        b("incomplete", 3).req(),
        s("evaluationError", 4),
    ],
};

/// `authorizationv1.SelfSubjectRulesReview`.
pub static SELF_SUBJECT_RULES_REVIEW: Message = Message {
    name: "SelfSubjectRulesReview",
    fields: &[
        m("metadata", 1, &OBJECT_META),
        m("spec", 2, &SELF_SUBJECT_RULES_REVIEW_SPEC).req(),
        m("status", 3, &SUBJECT_RULES_REVIEW_STATUS),
    ],
};

// --- authentication.k8s.io/v1 (kubernetes/api authentication/v1/types.go) ---------------------

/// `authenticationv1.UserInfo`.
pub static USER_INFO: Message = Message {
    name: "UserInfo",
    fields: &[
        s("username", 1),
        s("uid", 2),
        strs("groups", 3),
        f("extra", 4, Ty::StrList).map(),
    ],
};

/// `authenticationv1.SelfSubjectReviewStatus`.
pub static SELF_SUBJECT_REVIEW_STATUS: Message = Message {
    name: "SelfSubjectReviewStatus",
    fields: &[m("userInfo", 1, &USER_INFO)],
};

/// `authenticationv1.SelfSubjectReview`.
pub static SELF_SUBJECT_REVIEW: Message = Message {
    name: "SelfSubjectReview",
    fields: &[
        m("metadata", 1, &OBJECT_META),
        m("status", 2, &SELF_SUBJECT_REVIEW_STATUS),
    ],
};

// --- apiregistration.k8s.io/v1 (kube-aggregator pkg/apis/apiregistration/v1/types.go) ------------

/// `apiregistrationv1.APIService`.
pub static API_SERVICE: Message = Message {
    name: "APIService",
    fields: &[
        m("metadata", 1, &OBJECT_META),
        m("spec", 2, &API_SERVICE_SPEC),
        m("status", 3, &API_SERVICE_STATUS),
    ],
};

/// `apiregistrationv1.APIServiceSpec` (field 6, the removed `priority`, is not listed).
pub static API_SERVICE_SPEC: Message = Message {
    name: "APIServiceSpec",
    fields: &[
        m("service", 1, &SERVICE_REFERENCE).ptr(),
        s("group", 2),
        s("version", 3),
        b("insecureSkipTLSVerify", 4),
        f("caBundle", 5, Ty::Bytes),
        i32f("groupPriorityMinimum", 7).req(),
        i32f("versionPriority", 8).req(),
    ],
};

/// `apiregistrationv1.ServiceReference`.
pub static SERVICE_REFERENCE: Message = Message {
    name: "ServiceReference",
    fields: &[s("namespace", 1), s("name", 2), i32f("port", 3).ptr()],
};

/// `apiregistrationv1.APIServiceStatus`.
pub static API_SERVICE_STATUS: Message = Message {
    name: "APIServiceStatus",
    fields: &[m("conditions", 1, &API_SERVICE_CONDITION).list()],
};

/// `apiregistrationv1.APIServiceCondition`.
pub static API_SERVICE_CONDITION: Message = Message {
    name: "APIServiceCondition",
    fields: &[
        s("type", 1).req(),
        s("status", 2).req(),
        f("lastTransitionTime", 3, Ty::Time),
        s("reason", 4),
        s("message", 5),
    ],
};

/// Every (apiVersion, kind) the codecs know, with its top-level schema.
pub static KINDS: &[(&str, &str, &Message)] = &[
    ("v1", "Secret", &SECRET),
    ("v1", "ConfigMap", &CONFIG_MAP),
    ("v1", "Namespace", &NAMESPACE),
    ("v1", "ServiceAccount", &SERVICE_ACCOUNT),
    ("v1", "Pod", &super::pod::POD),
    ("rbac.authorization.k8s.io/v1", "Role", &ROLE),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", &CLUSTER_ROLE),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", &ROLE_BINDING),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        &CLUSTER_ROLE_BINDING,
    ),
    (
        "certificates.k8s.io/v1",
        "CertificateSigningRequest",
        &CERTIFICATE_SIGNING_REQUEST,
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        &SELF_SUBJECT_ACCESS_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        &SUBJECT_ACCESS_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "LocalSubjectAccessReview",
        &LOCAL_SUBJECT_ACCESS_REVIEW,
    ),
    (
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        &SELF_SUBJECT_RULES_REVIEW,
    ),
    (
        "authentication.k8s.io/v1",
        "SelfSubjectReview",
        &SELF_SUBJECT_REVIEW,
    ),
    ("apiregistration.k8s.io/v1", "APIService", &API_SERVICE),
];

/// The schema of `apiVersion`/`kind`, if known.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static Message> {
    KINDS
        .iter()
        .find(|(a, k, _)| *a == api_version && *k == kind)
        .map(|(_, _, msg)| *msg)
}
