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

/// kube-rs's error for a failed request; a 503 reads as client-go reports it.
fn error_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 503 => {
            "the server is currently unable to handle the request (503)".to_string()
        }
        _ => e.to_string(),
    }
}
