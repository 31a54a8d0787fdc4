//! Verification: SubjectAccessReview from the admin's seat, and SelfSubjectReview with the new kubeconfig.
//!
//! A SubjectAccessReview evaluates exactly the user and groups sent (it does not add `system:authenticated`,
//! research §4.1), so the groups are the certificate's O values plus `system:authenticated`, which is what the
//! x509 authenticator yields (`staging/src/k8s.io/apiserver/pkg/authentication/request/x509/x509.go`).
//!
//! The RBAC authorizer answers from informer caches (`plugin/pkg/auth/authorizer/rbac/rbac.go` reads Roles and
//! bindings through listers), so right after a Role and RoleBinding are created, or deleted, a review can still see
//! the old state, longer behind a load balancer where each server has its own caches. Answers that differ from
//! the expectation in the direction a stale cache explains (a new grant still denied, a removed grant still
//! allowed) are asked again until [`RBAC_PROPAGATION_WAIT`] (or the options' wait) has passed; only then are they
//! reported.

use std::path::Path;
use std::time::Duration;

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

/// How long verification waits for RBAC changes to reach the authorizer before reporting a check that disagrees.
pub const RBAC_PROPAGATION_WAIT: Duration = Duration::from_secs(10);

/// Asks the reviews `(namespace, verb, resource)` of `cells` whose answer in `answers` is not `want` again, every
/// 500 ms ([`crate::encrypt::poll`]), until every one answers `want` or `wait` has passed; `answers` then holds the
/// latest `(allowed, reason)` of each.
async fn recheck(
    client: &kube::Client,
    user: &str,
    groups: &[String],
    cells: &[(String, String, ResourceRef)],
    answers: &mut [(bool, String)],
    want: bool,
    wait: Duration,
) -> Result<()> {
    let pending = |answers: &[(bool, String)]| -> Vec<usize> {
        (0..cells.len()).filter(|&i| answers[i].0 != want).collect()
    };
    if pending(answers).is_empty() {
        return Ok(());
    }
    let cell = tokio::sync::Mutex::new((answers.to_vec(), None::<OnboardError>));
    let state = &cell;
    let outcome = crate::encrypt::poll(
        wait,
        &|seen| tracing::debug!("waiting for RBAC to propagate:{seen}"),
        |secs, last| format!("after {secs}s: {last}"),
        move || async move {
            let todo = pending(&state.lock().await.0);
            if todo.is_empty() {
                return crate::encrypt::Look::Done;
            }
            for i in &todo {
                let (ns, verb, res) = &cells[*i];
                match subject_access(client, user, groups, ns, verb, res).await {
                    Ok(a) => state.lock().await.0[*i] = a,
                    Err(e) => {
                        let message = e.to_string();
                        state.lock().await.1 = Some(e);
                        return crate::encrypt::Look::Failed(message);
                    }
                }
            }
            let left = pending(&state.lock().await.0).len();
            if left == 0 {
                crate::encrypt::Look::Done
            } else {
                crate::encrypt::Look::Pending(format!(
                    "{left} review(s) still answer {}",
                    if want { "denied" } else { "allowed" }
                ))
            }
        },
    )
    .await;
    let (latest, error) = cell.into_inner();
    answers.clone_from_slice(&latest);
    if let Some(e) = error {
        return Err(e);
    }
    if let Err(last) = outcome {
        tracing::debug!("RBAC did not converge within {wait:?} ({last})");
    }
    Ok(())
}

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
    let resolved = flags.resolve_with(&KubeconfigEnv::proxy_only()).await?;
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
/// in one other namespace (expected denied). Checks in the namespace that are denied but expected allowed are asked
/// again for up to `opts.rbac_wait` (see the module doc). Returns `(checks, failures, warnings)`.
pub async fn access_matrix(
    client: &kube::Client,
    opts: &OnboardOptions,
    cluster_role_rules: &Option<Vec<PolicyRule>>,
) -> Result<(Vec<AccessCheck>, Vec<String>, Vec<String>)> {
    let groups = opts.cert_groups();
    let (verbs, resources) = opts.access.matrix();
    let outside = other_namespace(&opts.namespace);
    let mut cells: Vec<(String, String, ResourceRef, bool)> = Vec::new();
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
                cells.push((ns.to_string(), verb.clone(), res.clone(), expected));
            }
        }
    }
    let mut answers = Vec::with_capacity(cells.len());
    for (ns, verb, res, _) in &cells {
        answers.push(subject_access(client, &opts.user, &groups, ns, verb, res).await?);
    }
    // Grants this run just made that the authorizer does not show yet.
    let granted: Vec<usize> = (0..cells.len())
        .filter(|&i| cells[i].0 == opts.namespace && cells[i].3 && !answers[i].0)
        .collect();
    let granted_cells: Vec<(String, String, ResourceRef)> = granted
        .iter()
        .map(|&i| (cells[i].0.clone(), cells[i].1.clone(), cells[i].2.clone()))
        .collect();
    let mut granted_answers: Vec<(bool, String)> =
        granted.iter().map(|&i| answers[i].clone()).collect();
    recheck(
        client,
        &opts.user,
        &groups,
        &granted_cells,
        &mut granted_answers,
        true,
        opts.rbac_wait,
    )
    .await?;
    for (k, &i) in granted.iter().enumerate() {
        answers[i] = granted_answers[k].clone();
    }

    let mut checks = Vec::new();
    let mut failures = Vec::new();
    let mut warnings = Vec::new();
    for ((ns, verb, res, expected), (allowed, reason)) in cells.into_iter().zip(answers) {
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
            namespace: ns,
            verb,
            resource: res.display(),
            expected,
            allowed,
            reason,
        });
    }
    Ok((checks, failures, warnings))
}

/// After offboarding: which of `checked` are still allowed for the user (with the certificate's groups). Allowed
/// answers are asked again for up to `wait` while the deletions propagate (see the module doc).
pub async fn residual_access(
    client: &kube::Client,
    user: &str,
    groups: &[String],
    checked: &[Checked],
    wait: Duration,
) -> Result<Vec<String>> {
    let cells: Vec<(String, String, ResourceRef)> = checked
        .iter()
        .map(|c| {
            (
                c.namespace.clone(),
                c.verb.clone(),
                ResourceRef {
                    group: c.group.clone(),
                    resource: c.resource.clone(),
                },
            )
        })
        .collect();
    let mut answers = Vec::with_capacity(cells.len());
    for (ns, verb, res) in &cells {
        answers.push(subject_access(client, user, groups, ns, verb, res).await?);
    }
    recheck(client, user, groups, &cells, &mut answers, false, wait).await?;
    Ok(cells
        .iter()
        .zip(answers)
        .filter(|(_, (allowed, _))| *allowed)
        .map(|((ns, verb, r), (_, reason))| {
            format!("{verb} {} in namespace {ns} ({reason})", r.display())
        })
        .collect())
}
