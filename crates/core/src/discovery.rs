//! API discovery (`/api/v1`, `/apis`, then each group's preferred version), the one place every verb and the
//! completion read it from.
//!
//! One unavailable aggregated API (an APIService whose service is down: kube-aggregator answers 503 for its
//! group version) must not stop everything else, so failures of single group versions are collected, not
//! returned: client-go `discovery/discovery_client.go` `ServerGroupsAndResources` returns the groups it could read
//! together with an `ErrGroupDiscoveryFailed` naming the others, and kubectl warns
//! `couldn't get resource list for <group>/<version>: <error>` and goes on with the rest. Callers fail only when a
//! resource they were asked for lives in a failed group ([`Discovery::failed_group`]). `/api/v1` and `/apis`
//! themselves failing is an error.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;
use kube::Client;

/// A discovery request that had to succeed failed.
#[derive(Debug, thiserror::Error)]
#[error("discovery: GET {path}: {message}")]
pub struct DiscoveryError {
    /// The path requested.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// One served group version (the group's preferred version) and its resources.
#[derive(Debug, Clone)]
pub struct ServedGroup {
    /// API group; empty for the core (legacy) group.
    pub group: String,
    /// The version read.
    pub version: String,
    /// Its resources (subresources included, as `name/sub`).
    pub resources: Vec<APIResource>,
}

/// A group whose resource list could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedGroup {
    /// API group.
    pub group: String,
    /// `<group>/<version>` that was requested.
    pub group_version: String,
    /// What the server answered.
    pub error: String,
}

impl std::fmt::Display for FailedGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.group_version, self.error)
    }
}

/// What the server serves, core group first, and the groups that failed.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Served groups in discovery order.
    pub groups: Vec<ServedGroup>,
    /// Groups listed by `/apis` whose resources could not be read.
    pub failed: Vec<FailedGroup>,
}

impl Discovery {
    /// Reads discovery from the server; warns (tracing) once per failed group, as kubectl does.
    pub async fn fetch(client: &Client) -> Result<Self, DiscoveryError> {
        let mut out = Discovery::default();
        let core = client
            .list_core_api_resources("v1")
            .await
            .map_err(|e| DiscoveryError {
                path: "/api/v1".into(),
                message: e.to_string(),
            })?;
        out.groups.push(ServedGroup {
            group: String::new(),
            version: "v1".into(),
            resources: core.resources,
        });
        let list = client.list_api_groups().await.map_err(|e| DiscoveryError {
            path: "/apis".into(),
            message: e.to_string(),
        })?;
        for g in list.groups {
            let Some(gv) = g.preferred_version.or_else(|| g.versions.first().cloned()) else {
                continue;
            };
            match client.list_api_group_resources(&gv.group_version).await {
                Ok(res) => out.groups.push(ServedGroup {
                    group: g.name,
                    version: gv.version,
                    resources: res.resources,
                }),
                Err(e) => {
                    let failed = FailedGroup {
                        group: g.name,
                        group_version: gv.group_version,
                        error: error_text(&e),
                    };
                    tracing::warn!(
                        "couldn't get resource list for {}: {}",
                        failed.group_version,
                        failed.error
                    );
                    out.failed.push(failed);
                }
            }
        }
        Ok(out)
    }

    /// Top-level resources (subresources left out) that support every verb of `verbs`, with their group, in
    /// discovery order.
    pub fn resources_supporting<'a>(
        &'a self,
        verbs: &'a [&str],
    ) -> impl Iterator<Item = (&'a ServedGroup, &'a APIResource)> + 'a {
        self.groups.iter().flat_map(move |g| {
            g.resources
                .iter()
                .filter(move |r| {
                    !r.name.contains('/') && verbs.iter().all(|v| r.verbs.iter().any(|x| x == v))
                })
                .map(move |r| (g, r))
        })
    }

    /// The resource `name` names, as kubectl reads it (`kubectl get NAME`; apimachinery's RESTMapper): its
    /// plural, singular, kind or a short name, case-insensitive, optionally qualified by group
    /// (`deployments.apps`, tried first as group-qualified, then as a whole name); the first match in discovery
    /// order, whatever verbs it supports.
    pub fn find(&self, name: &str) -> Option<(&ServedGroup, &APIResource)> {
        let lower = name.to_ascii_lowercase();
        let candidates: Vec<(&str, Option<&str>)> = match lower.split_once('.') {
            Some((res, group)) => vec![(res, Some(group)), (lower.as_str(), None)],
            None => vec![(lower.as_str(), None)],
        };
        candidates.into_iter().find_map(|(res, group)| {
            self.groups
                .iter()
                .filter(|g| group.is_none_or(|want| g.group == want))
                .find_map(|g| {
                    g.resources
                        .iter()
                        .find(|r| {
                            !r.name.contains('/')
                                && (r.name == res
                                    || r.singular_name == res
                                    || r.kind.to_ascii_lowercase() == res
                                    || r.short_names.iter().flatten().any(|s| s == res))
                        })
                        .map(|r| (g, r))
                })
        })
    }

    /// The failed group named `group`, if its discovery failed.
    pub fn failed_group(&self, group: &str) -> Option<&FailedGroup> {
        self.failed.iter().find(|f| f.group == group)
    }

    /// The failed groups as one display string (`a/v1 (error), b/v1 (error)`).
    pub fn failed_display(&self) -> String {
        self.failed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The name kubectl accepts for `resource` of `group`: `secrets` (core group), `deployments.apps`.
pub fn qualified_name(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// kube-rs's error for a failed request; a 503 reads as client-go reports it.
fn error_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 503 => {
            "the server is currently unable to handle the request (503)".to_string()
        }
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(name: &str, kind: &str, short: &[&str], verbs: &[&str]) -> APIResource {
        APIResource {
            name: name.into(),
            kind: kind.into(),
            singular_name: kind.to_ascii_lowercase(),
            short_names: Some(short.iter().map(|s| s.to_string()).collect()),
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn sample() -> Discovery {
        let group = |group: &str, resources| ServedGroup {
            group: group.into(),
            version: "v1".into(),
            resources,
        };
        Discovery {
            groups: vec![
                group(
                    "",
                    vec![
                        resource("secrets", "Secret", &[], &["get", "list", "update"]),
                        resource("secrets/status", "Secret", &[], &["get", "list"]),
                        resource("bindings", "Binding", &[], &["create"]),
                    ],
                ),
                group(
                    "apps",
                    vec![resource(
                        "deployments",
                        "Deployment",
                        &["deploy"],
                        &["list"],
                    )],
                ),
            ],
            failed: vec![],
        }
    }

    #[test]
    fn finds_resources_as_kubectl_names_them() {
        let d = sample();
        for name in ["secrets", "secret", "Secret", "SECRETS"] {
            assert_eq!(d.find(name).map(|(_, r)| r.name.as_str()), Some("secrets"));
        }
        for name in ["deploy", "deployments.apps", "Deployment.apps"] {
            let (g, r) = d.find(name).unwrap();
            assert_eq!((g.group.as_str(), r.name.as_str()), ("apps", "deployments"));
        }
        assert!(d.find("deployments.batch").is_none());
        assert!(d.find("secrets/status").is_none());
        assert!(d.find("widgets").is_none());
    }

    #[test]
    fn lists_top_level_resources_by_verbs_and_names_them_with_their_group() {
        let d = sample();
        let names = |verbs: &[&str]| -> Vec<String> {
            d.resources_supporting(verbs)
                .map(|(g, r)| qualified_name(&r.name, &g.group))
                .collect()
        };
        assert_eq!(names(&["list"]), ["secrets", "deployments.apps"]);
        assert_eq!(names(&["get", "list", "update"]), ["secrets"]);
        assert_eq!(names(&[]), ["secrets", "bindings", "deployments.apps"]);
    }
}
