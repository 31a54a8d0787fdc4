//! Preflight: one SelfSubjectAccessReview per permission a run needs, so that it never fails half way.
//!
//! The list follows onboarding-rbac research §1.5 (CSR create/get, `/approval` update, `approve` on
//! `signers` named `kubernetes.io/kube-apiserver-client` or `kubernetes.io/*` — the CertificateApproval admission
//! plugin checks both, `plugin/pkg/admission/certificates/util.go`), the RBAC objects, the issuance record and
//! `subjectaccessreviews` for verification.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

use super::{Access, OnboardError, OnboardOptions, RemoveOptions, Result, SignerChoice, record};

/// One permission: verb on group/resource[/subresource] [named] [in namespace].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    /// Verb.
    pub verb: String,
    /// API group.
    pub group: String,
    /// Resource.
    pub resource: String,
    /// Subresource.
    pub subresource: Option<String>,
    /// Namespace (`None` = cluster-wide).
    pub namespace: Option<String>,
    /// Object name(s) tried in order; the permission holds if any is allowed.
    pub names: Vec<String>,
}

impl Permission {
    fn new(verb: &str, group: &str, resource: &str, namespace: Option<&str>) -> Self {
        Self {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: None,
            namespace: namespace.map(str::to_string),
            names: vec![],
        }
    }

    fn sub(mut self, s: &str) -> Self {
        self.subresource = Some(s.into());
        self
    }

    fn named(mut self, names: &[&str]) -> Self {
        self.names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// `create certificatesigningrequests.certificates.k8s.io (cluster-wide)`.
    pub fn describe(&self) -> String {
        let mut r = self.resource.clone();
        if !self.group.is_empty() {
            r = format!("{r}.{}", self.group);
        }
        if let Some(s) = &self.subresource {
            r = format!("{r}/{s}");
        }
        let name = if self.names.is_empty() {
            String::new()
        } else {
            format!(" named {}", self.names.join(" or "))
        };
        let scope = match &self.namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "(cluster-wide)".to_string(),
        };
        format!("{} {r}{name} {scope}", self.verb)
    }
}

/// The permissions `kubectl onboard` needs.
pub fn needed_for_onboard(opts: &OnboardOptions, create_namespace: bool) -> Vec<Permission> {
    let ns = Some(opts.namespace.as_str());
    let rbac = "rbac.authorization.k8s.io";
    let mut p = vec![Permission::new("get", "", "namespaces", None)];
    if create_namespace {
        p.push(Permission::new("create", "", "namespaces", None));
    }
    if let SignerChoice::Csr { .. } = opts.signer {
        let c = "certificates.k8s.io";
        p.push(Permission::new(
            "create",
            c,
            "certificatesigningrequests",
            None,
        ));
        p.push(Permission::new(
            "get",
            c,
            "certificatesigningrequests",
            None,
        ));
        p.push(Permission::new("update", c, "certificatesigningrequests", None).sub("approval"));
        p.push(
            Permission::new("approve", c, "signers", None)
                .named(&[super::SIGNER_NAME, "kubernetes.io/*"]),
        );
    }
    match &opts.access {
        Access::Rules { .. } => {
            p.extend(each(&["get", "create", "update"], rbac, "roles", ns));
        }
        Access::ClusterRole { .. } => p.push(Permission::new("get", rbac, "clusterroles", None)),
    }
    p.extend(each(
        &["get", "create", "update", "delete"],
        rbac,
        "rolebindings",
        ns,
    ));
    p.extend(records_and_reviews(&["get", "create", "update"]));
    p
}

/// The permissions `kubectl onboard --remove` needs.
pub fn needed_for_remove(opts: &RemoveOptions) -> Vec<Permission> {
    let ns = opts.namespace.as_deref();
    let rbac = "rbac.authorization.k8s.io";
    let mut p = vec![];
    p.extend(each(
        &["list", "update", "delete"],
        rbac,
        "rolebindings",
        ns,
    ));
    p.extend(each(&["get", "delete"], rbac, "roles", ns));
    p.push(Permission::new("list", rbac, "clusterrolebindings", None));
    p.push(Permission::new("get", rbac, "clusterroles", None));
    p.extend(records_and_reviews(&["get", "update"]));
    p
}

/// `verbs` on `resource` of `group`, in namespace `ns` (or cluster-wide).
fn each(verbs: &[&str], group: &str, resource: &str, ns: Option<&str>) -> Vec<Permission> {
    verbs
        .iter()
        .map(|v| Permission::new(v, group, resource, ns))
        .collect()
}

/// What every run ends with: `record_verbs` on the issuance records (ConfigMaps in their namespace), and
/// SubjectAccessReviews for the verification.
fn records_and_reviews(record_verbs: &[&str]) -> Vec<Permission> {
    let mut p = each(
        record_verbs,
        "",
        "configmaps",
        Some(record::RECORD_NAMESPACE),
    );
    p.push(Permission::new(
        "create",
        "authorization.k8s.io",
        "subjectaccessreviews",
        None,
    ));
    p
}

/// Asks the API server (SelfSubjectAccessReview) about each permission; returns the denied ones, described.
pub async fn missing(client: &kube::Client, needed: &[Permission]) -> Result<Vec<String>> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut denied = Vec::new();
    for perm in needed {
        let names: Vec<Option<String>> = if perm.names.is_empty() {
            vec![None]
        } else {
            perm.names.iter().cloned().map(Some).collect()
        };
        let mut allowed = false;
        for name in names {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        verb: Some(perm.verb.clone()),
                        group: Some(perm.group.clone()),
                        resource: Some(perm.resource.clone()),
                        subresource: perm.subresource.clone(),
                        namespace: perm.namespace.clone(),
                        name,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let answer = api
                .create(&PostParams::default(), &review)
                .await
                .map_err(|e| OnboardError::api("SelfSubjectAccessReview", e))?;
            if answer.status.map(|s| s.allowed).unwrap_or(false) {
                allowed = true;
                break;
            }
        }
        if !allowed {
            denied.push(perm.describe());
        }
    }
    Ok(denied)
}
