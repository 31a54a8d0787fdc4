//! Verification: SubjectAccessReview from the admin's seat, and SelfSubjectReview with the new kubeconfig.
//!
//! A SubjectAccessReview evaluates exactly the user and groups sent (it does not add `system:authenticated`,
//! research §4.1), so the groups are the certificate's O values plus `system:authenticated`, which is what the
//! x509 authenticator yields (`staging/src/k8s.io/apiserver/pkg/authentication/request/x509/x509.go`).

use std::path::Path;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::Api;
use kube::api::PostParams;
use serde::Serialize;

use super::{Access, OnboardError, OnboardOptions, ResourceRef, Result, rbac::Checked};
use crate::client::{ConfigFlags, KubeconfigEnv};

/// One cell of the access matrix.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessCheck {
    /// Namespace checked.
    pub namespace: String,
    /// Verb.
    pub verb: String,
    /// Resource, kubectl spelling.
    pub resource: String,
    /// What the grant should give.
    pub expected: bool,
    /// What the API server says.
    pub allowed: bool,
    /// The authorizer's reason.
    pub reason: String,
}

/// An identity as the API server sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmI {
    /// Username.
    pub username: String,
    /// Groups.
    pub groups: Vec<String>,
}

/// `kubectl auth whoami` (SelfSubjectReview, authentication.k8s.io/v1).
pub async fn whoami(client: &kube::Client) -> Result<WhoAmI> {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let r = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(|e| OnboardError::api("SelfSubjectReview", e))?;
    let info = r.status.and_then(|s| s.user_info).unwrap_or_default();
    Ok(WhoAmI {
        username: info.username.unwrap_or_default(),
        groups: info.groups.unwrap_or_default(),
    })
}

/// `kubectl --kubeconfig PATH auth whoami`: proves the new certificate authenticates.
pub async fn whoami_with_kubeconfig(path: &Path) -> Result<WhoAmI> {
    let flags = ConfigFlags {
        kubeconfig: Some(path.to_path_buf()),
        ..Default::default()
    };
    let resolved = flags.resolve_with(&KubeconfigEnv::default()).await?;
    whoami(&resolved.client()?).await
}

/// The groups a certificate with O=`groups` authenticates with.
pub fn authenticated_groups(groups: &[String]) -> Vec<String> {
    let mut g = groups.to_vec();
    if !g.iter().any(|x| x == "system:authenticated") {
        g.push("system:authenticated".into());
    }
    g
}

/// One SubjectAccessReview: `(allowed, reason)`.
pub async fn subject_access(
    client: &kube::Client,
    user: &str,
    groups: &[String],
    namespace: &str,
    verb: &str,
    resource: &ResourceRef,
) -> Result<(bool, String)> {
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let (res, sub) = resource.split();
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_string()),
            groups: Some(authenticated_groups(groups)),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_string()),
                verb: Some(verb.to_string()),
                group: Some(resource.group.clone()),
                resource: Some(res.to_string()),
                subresource: sub.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let r = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| OnboardError::api("SubjectAccessReview", e))?;
    let s = r.status.unwrap_or_default();
    Ok((s.allowed, s.reason.unwrap_or_default()))
}

/// RBAC `RuleAllows` for one request (`pkg/apis/rbac/v1/evaluation_helpers.go`): verbs, apiGroups and
/// resources match exactly or by `*`; `*/sub` matches any resource's subresource; rules restricted by
/// resourceNames never match a request without a name.
pub fn rule_allows(rules: &[PolicyRule], group: &str, resource: &str, verb: &str) -> bool {
    rules.iter().any(|r| {
        let verb_ok = r.verbs.iter().any(|v| v == "*" || v == verb);
        let group_ok = r
            .api_groups
            .iter()
            .flatten()
            .any(|g| g == "*" || g == group);
        let sub = resource.split_once('/').map(|(_, s)| s);
        let res_ok = r.resources.iter().flatten().any(|x| {
            x == "*" || x == resource || sub.is_some_and(|s| x.strip_prefix("*/") == Some(s))
        });
        let names_ok = r.resource_names.as_ref().is_none_or(|n| n.is_empty());
        verb_ok && group_ok && res_ok && names_ok
    })
}

/// A namespace other than `ns` for the negative check.
pub fn other_namespace(ns: &str) -> &'static str {
    if ns == "default" {
        "kube-public"
    } else {
        "default"
    }
}

/// The matrix verbs × resources in the namespace (expected allowed, or what the ClusterRole's rules allow) and
/// in one other namespace (expected denied). Returns `(checks, failures, warnings)`.
pub async fn access_matrix(
    client: &kube::Client,
    opts: &OnboardOptions,
    cluster_role_rules: &Option<Vec<PolicyRule>>,
) -> Result<(Vec<AccessCheck>, Vec<String>, Vec<String>)> {
    let groups = opts.cert_groups();
    let (verbs, resources) = opts.access.matrix();
    let mut checks = Vec::new();
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    let outside = other_namespace(&opts.namespace);
    for ns in [opts.namespace.as_str(), outside] {
        for res in resources {
            for verb in verbs {
                let expected = if ns == opts.namespace {
                    match (&opts.access, cluster_role_rules) {
                        (Access::ClusterRole { .. }, Some(rules)) => {
                            rule_allows(rules, &res.group, &res.resource, verb)
                        }
                        _ => true,
                    }
                } else {
                    false
                };
                let (allowed, reason) =
                    subject_access(client, &opts.user, &groups, ns, verb, res).await?;
                if allowed != expected {
                    let msg = format!(
                        "{} can{} {verb} {} in namespace {ns}{}",
                        opts.user,
                        if allowed { "" } else { "not" },
                        res.display(),
                        if reason.is_empty() {
                            String::new()
                        } else {
                            format!(" ({reason})")
                        }
                    );
                    if ns == opts.namespace {
                        failures.push(msg);
                    } else {
                        warnings.push(format!("{msg}: granted by something other than this run"));
                    }
                }
                checks.push(AccessCheck {
                    namespace: ns.to_string(),
                    verb: verb.clone(),
                    resource: res.display(),
                    expected,
                    allowed,
                    reason,
                });
            }
        }
    }
    Ok((checks, failures, warnings))
}

/// After offboarding: which of `checked` are still allowed for the user (with the certificate's groups).
pub async fn residual_access(
    client: &kube::Client,
    user: &str,
    groups: &[String],
    checked: &[Checked],
) -> Result<Vec<String>> {
    let mut still = Vec::new();
    for c in checked {
        let r = ResourceRef {
            group: c.group.clone(),
            resource: c.resource.clone(),
        };
        let (allowed, reason) =
            subject_access(client, user, groups, &c.namespace, &c.verb, &r).await?;
        if allowed {
            still.push(format!(
                "{} {} in namespace {} ({reason})",
                c.verb,
                r.display(),
                c.namespace
            ));
        }
    }
    Ok(still)
}
