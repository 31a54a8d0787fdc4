//! Resolving the resources to rewrite through API discovery (`/api/v1`, `/apis`, `/apis/<group>/<version>`).
//!
//! Names are matched like kubectl does: plural, singular, short name or kind, optionally qualified by group
//! (`deployments.apps`). EncryptionConfiguration resource names (`secrets`, `*.apps`, `*.*`, `*.`) are expanded
//! the way kube-apiserver reads them (kubernetes/apiserver `pkg/server/options/encryptionconfig/config.go`,
//! `getTransformerOverridesAndKMSPluginHealthzCheckers`: `*.` = every core resource, `*.<group>` = every resource
//! of the group, `*.*` = everything).
//!
//! Discovery itself is [`crate::discovery`]: groups whose discovery failed (an unavailable aggregated API) are
//! warned about and skipped; a name fails only when it names such a group, or is not found while some group
//! failed (it may live there).

use std::path::Path;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;
use kube::Client;
use serde::Serialize;

use super::ReencryptError;
use crate::config::EncryptionConfiguration;
use crate::discovery::{Discovery, ServedGroup as DiscoveredGroup, qualified_name};

/// One API resource to rewrite, resolved through discovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Target {
    /// API group; empty for the core (legacy) group.
    pub group: String,
    /// Served version used for the requests (the group's preferred version).
    pub version: String,
    /// Plural resource name, e.g. `secrets`.
    pub resource: String,
    /// Kind, e.g. `Secret`.
    pub kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
}

impl Target {
    /// The core `secrets` resource (v1, namespaced), the default target.
    pub fn secrets() -> Self {
        Target {
            group: String::new(),
            version: "v1".into(),
            resource: "secrets".into(),
            kind: "Secret".into(),
            namespaced: true,
        }
    }

    /// `apiVersion` of the objects: `v1` or `<group>/<version>`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The name a user types and reports show: `secrets`, `deployments.apps`.
    pub fn display_name(&self) -> String {
        qualified_name(&self.resource, &self.group)
    }

    fn base(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// Collection path; `namespace` is ignored for cluster-scoped resources, `None` lists across namespaces.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced && !ns.is_empty() => {
                format!("{}/namespaces/{}/{}", self.base(), ns, self.resource)
            }
            _ => format!("{}/{}", self.base(), self.resource),
        }
    }

    /// Path of one object.
    pub fn object_path(&self, namespace: &str, name: &str) -> String {
        format!(
            "{}/{}",
            self.collection_path(Some(namespace)),
            super::percent_encode(name)
        )
    }
}

/// What sending an object back needs.
const REWRITE_VERBS: &[&str] = &["get", "list", "update"];

/// Everything the server serves (preferred versions only), core group first, and the groups that failed.
pub struct Discovered {
    discovery: Discovery,
}

impl Discovered {
    /// Runs discovery against the server ([`Discovery::fetch`]).
    pub async fn fetch(client: &Client) -> Result<Self, ReencryptError> {
        let discovery = Discovery::fetch(client)
            .await
            .map_err(|e| ReencryptError::Discovery(e.to_string()))?;
        Ok(Discovered { discovery })
    }

    fn target(g: &DiscoveredGroup, r: &APIResource) -> Target {
        Target {
            group: g.group.clone(),
            version: g.version.clone(),
            resource: r.name.clone(),
            kind: r.kind.clone(),
            namespaced: r.namespaced,
        }
    }

    /// Resolves one name as kubectl does (`secrets`, `secret`, `Secret`, a short name, `deployments.apps`).
    pub fn resolve(&self, name: &str) -> Result<Target, ReencryptError> {
        if let Some((g, r)) = self.discovery.find(name) {
            if !REWRITE_VERBS.iter().all(|v| r.verbs.iter().any(|x| x == v)) {
                return Err(ReencryptError::Discovery(format!(
                    "resource {name:?} ({}) does not support get, list and update; it cannot be rewritten",
                    Self::target(g, r).display_name()
                )));
            }
            return Ok(Self::target(g, r));
        }
        let lower = name.to_ascii_lowercase();
        if let Some((_, group)) = lower.split_once('.')
            && let Some(f) = self.discovery.failed_group(group)
        {
            return Err(ReencryptError::Discovery(format!(
                "resource {name:?}: discovery of its group failed: couldn't get resource list for {}: {}",
                f.group_version, f.error
            )));
        }
        if !self.discovery.failed.is_empty() {
            return Err(ReencryptError::Discovery(format!(
                "the server doesn't have a resource type {name:?} among the groups it could list; discovery failed for {}",
                self.discovery.failed_display()
            )));
        }
        Err(ReencryptError::Discovery(format!(
            "the server doesn't have a resource type {name:?}"
        )))
    }

    /// Expands the resource names of an EncryptionConfiguration (`secrets`, `deployments.apps`, `*.`, `*.apps`,
    /// `*.*`) into the served resources that can be rewritten. Names the server does not serve are skipped
    /// (kube-apiserver accepts them too), and returned in the second list. `*.*` skips the groups whose discovery
    /// failed (they were warned about); a name of such a group (`*.metrics.k8s.io`, `pods.metrics.k8s.io`) is an
    /// error: its objects cannot be listed.
    pub fn expand_config_resources(
        &self,
        names: &[String],
    ) -> Result<(Vec<Target>, Vec<String>), ReencryptError> {
        if let Some((name, f)) = names.iter().find_map(|n| {
            n.split_once('.')
                .and_then(|(_, g)| self.discovery.failed_group(g))
                .map(|f| (n, f))
        }) {
            return Err(ReencryptError::Discovery(format!(
                "resource {name:?}: discovery of its group failed: couldn't get resource list for {}: {}",
                f.group_version, f.error
            )));
        }
        let mut out: Vec<Target> = Vec::new();
        let mut missing = Vec::new();
        let mut push = |t: Target| {
            if !out.contains(&t) {
                out.push(t);
            }
        };
        for name in names {
            let (res, group) = match name.split_once('.') {
                Some((r, g)) => (r, g),
                None => (name.as_str(), ""),
            };
            let mut found = false;
            for (g, r) in self.discovery.resources_supporting(REWRITE_VERBS) {
                if (group == "*" || g.group == group) && (res == "*" || r.name == res) {
                    push(Self::target(g, r));
                    found = true;
                }
            }
            if !found {
                missing.push(name.clone());
            }
        }
        Ok((out, missing))
    }
}

/// Where the resources to rewrite come from.
pub enum Selection<'a> {
    /// Names given on the command line; none means `secrets`.
    Names(&'a [String]),
    /// Every resource an EncryptionConfiguration names (`--all-encrypted`), read from `path`.
    EncryptionConfig {
        /// The file, for messages.
        path: &'a Path,
        /// Its content, loaded and validated.
        config: &'a EncryptionConfiguration,
    },
}

/// The targets of a run: resolved names, or the served resources an EncryptionConfiguration names (a name the
/// cluster does not serve is warned about and skipped, as kube-apiserver accepts it too).
pub async fn select(
    client: &Client,
    selection: Selection<'_>,
) -> Result<Vec<Target>, ReencryptError> {
    let (path, config) = match selection {
        Selection::Names([]) => return Ok(vec![Target::secrets()]),
        Selection::Names(names) => return resolve(client, names).await,
        Selection::EncryptionConfig { path, config } => (path, config),
    };
    let config_error = |message: &str| ReencryptError::Config {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    let names: Vec<String> = config
        .resources
        .iter()
        .flat_map(|r| r.resources.iter().cloned())
        .collect();
    if names.is_empty() {
        return Err(config_error("resources[].resources names no resource"));
    }
    let (targets, missing) = Discovered::fetch(client)
        .await?
        .expand_config_resources(&names)?;
    for m in missing {
        tracing::warn!(
            "{}: resource {m:?} is not served by this cluster; skipped",
            path.display()
        );
    }
    if targets.is_empty() {
        return Err(config_error(
            "none of its resources is served by this cluster",
        ));
    }
    Ok(targets)
}

/// Resolves resource names given on the command line.
pub async fn resolve(client: &Client, names: &[String]) -> Result<Vec<Target>, ReencryptError> {
    if names.iter().all(|n| n == "secrets" || n == "secret") {
        return Ok(vec![Target::secrets()]);
    }
    let d = Discovered::fetch(client).await?;
    let mut out: Vec<Target> = Vec::new();
    for n in names {
        let t = d.resolve(n)?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(name: &str, kind: &str, namespaced: bool, short: &[&str]) -> APIResource {
        APIResource {
            name: name.into(),
            kind: kind.into(),
            namespaced,
            singular_name: kind.to_ascii_lowercase(),
            short_names: if short.is_empty() {
                None
            } else {
                Some(short.iter().map(|s| s.to_string()).collect())
            },
            verbs: ["get", "list", "update", "create", "delete"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ..Default::default()
        }
    }

    fn sample() -> Discovered {
        let mut events = res("events", "Event", true, &["ev"]);
        events.verbs = vec!["get".into(), "list".into()];
        Discovered {
            discovery: Discovery {
                groups: vec![
                    DiscoveredGroup {
                        group: String::new(),
                        version: "v1".into(),
                        resources: vec![
                            res("secrets", "Secret", true, &[]),
                            res("configmaps", "ConfigMap", true, &["cm"]),
                            res("namespaces", "Namespace", false, &["ns"]),
                            res("secrets/status", "Secret", true, &[]),
                            events,
                        ],
                    },
                    DiscoveredGroup {
                        group: "apps".into(),
                        version: "v1".into(),
                        resources: vec![res("deployments", "Deployment", true, &["deploy"])],
                    },
                ],
                failed: vec![],
            },
        }
    }

    /// `sample` plus a group whose discovery failed, as with an APIService whose service is missing.
    fn with_failed_group() -> Discovered {
        let mut d = sample();
        d.discovery.failed.push(crate::discovery::FailedGroup {
            group: "metrics.k8s.io".into(),
            group_version: "metrics.k8s.io/v1beta1".into(),
            error: "the server is currently unable to handle the request (503)".into(),
        });
        d
    }

    #[test]
    fn a_failed_group_fails_only_names_that_may_live_there() {
        let d = with_failed_group();
        assert_eq!(d.resolve("secrets").unwrap(), Target::secrets());
        assert_eq!(d.resolve("deploy").unwrap().group, "apps");
        let err = d.resolve("pods.metrics.k8s.io").unwrap_err().to_string();
        assert!(
            err.contains("metrics.k8s.io/v1beta1") && err.contains("unable to handle"),
            "{err}"
        );
        let err = d.resolve("widgets").unwrap_err().to_string();
        assert!(
            err.contains("\"widgets\"")
                && err.contains("discovery failed for metrics.k8s.io/v1beta1"),
            "{err}"
        );
        let (t, missing) = d
            .expand_config_resources(&["*.*".into(), "widgets.example.com".into()])
            .unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(missing, ["widgets.example.com"]);
        for name in ["*.metrics.k8s.io", "pods.metrics.k8s.io"] {
            let err = d
                .expand_config_resources(&["secrets".into(), name.into()])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(name) && err.contains("metrics.k8s.io/v1beta1"),
                "{err}"
            );
        }
    }

    #[test]
    fn resolves_like_kubectl() {
        let d = sample();
        for n in ["secrets", "secret", "Secret"] {
            assert_eq!(d.resolve(n).unwrap(), Target::secrets());
        }
        assert_eq!(d.resolve("cm").unwrap().resource, "configmaps");
        let dep = d.resolve("deployments.apps").unwrap();
        assert_eq!(dep.api_version(), "apps/v1");
        assert_eq!(dep.display_name(), "deployments.apps");
        assert_eq!(
            dep.object_path("ns1", "web"),
            "/apis/apps/v1/namespaces/ns1/deployments/web"
        );
        assert_eq!(d.resolve("deploy").unwrap(), dep);
        let ns = d.resolve("ns").unwrap();
        assert!(!ns.namespaced);
        assert_eq!(
            ns.object_path("ignored", "kube-system"),
            "/api/v1/namespaces/kube-system"
        );
        let err = d.resolve("widgets").unwrap_err().to_string();
        assert!(
            err.contains("doesn't have a resource type \"widgets\""),
            "{err}"
        );
        let err = d.resolve("events").unwrap_err().to_string();
        assert!(err.contains("does not support"), "{err}");
    }

    #[test]
    fn expands_encryption_config_names() {
        let d = sample();
        let (t, missing) = d
            .expand_config_resources(&["secrets".into(), "widgets.example.com".into()])
            .unwrap();
        assert_eq!(t, vec![Target::secrets()]);
        assert_eq!(missing, vec!["widgets.example.com".to_string()]);
        let (t, _) = d.expand_config_resources(&["*.".into()]).unwrap();
        let names: Vec<_> = t.iter().map(Target::display_name).collect();
        assert_eq!(names, ["secrets", "configmaps", "namespaces"]);
        let (t, _) = d
            .expand_config_resources(&["*.apps".into(), "secrets".into()])
            .unwrap();
        let names: Vec<_> = t.iter().map(Target::display_name).collect();
        assert_eq!(names, ["deployments.apps", "secrets"]);
        let (t, _) = d.expand_config_resources(&["*.*".into()]).unwrap();
        assert_eq!(t.len(), 4);
    }
}
