//! Live completion values: from the kubeconfig the command line names, or from the cluster it points at.

use std::time::Duration;

use clap::{Args, Command, FromArgMatches};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use serde_json::Value;

use super::{Candidate, Given};
use crate::client::{ConfigFlags, KubeconfigEnv};

/// How long a completion may wait for the API server before giving up with no candidates.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the values of an argument come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Namespace names from the cluster (built in for the arg id `namespace`).
    Namespaces,
    /// Context names of the kubeconfig (built in for `context`).
    Contexts,
    /// Cluster names of the kubeconfig (built in for `cluster`).
    Clusters,
    /// User (authInfo) names of the kubeconfig (built in for `user`).
    KubeconfigUsers,
    /// Names of objects of a core-group (`/api/v1`) resource in the namespace given with `-n` (else the
    /// context's): the resource is the value of the arg `resource_arg` when given, else `default_resource`.
    ObjectNames {
        /// Arg id naming the resource (e.g. etcdcheck's `resource`), if any.
        resource_arg: Option<&'static str>,
        /// The resource when the command line names none (e.g. `secrets`).
        default_resource: &'static str,
    },
    /// Resource names the API server lists through discovery (`secrets`, `deployments.apps`, ...).
    ApiResources,
    /// Users `kubectl onboard --list` knows (the issuance records in the cluster).
    OnboardedUsers,
}

impl Source {
    /// Secret names in the namespace.
    pub fn secrets() -> Self {
        Source::ObjectNames {
            resource_arg: None,
            default_resource: "secrets",
        }
    }

    /// The source of the kubectl flags of [`ConfigFlags`], by arg id.
    pub fn builtin(id: &str) -> Option<Self> {
        match id {
            "namespace" => Some(Source::Namespaces),
            "context" => Some(Source::Contexts),
            "cluster" => Some(Source::Clusters),
            "user" => Some(Source::KubeconfigUsers),
            _ => None,
        }
    }
}

/// The values of `source` (unfiltered); `Err` says why there are none (for the debug file only).
pub(super) fn lookup(source: &Source, given: &Given) -> Result<Vec<Candidate>, String> {
    let flags = config_flags(given);
    match source {
        Source::Contexts | Source::Clusters | Source::KubeconfigUsers => {
            let loaded = flags
                .load_kubeconfig(&KubeconfigEnv::from_process())
                .map_err(|e| e.to_string())?
                .ok_or("no kubeconfig found")?;
            let k = loaded.kubeconfig;
            let names: Vec<String> = match source {
                Source::Contexts => k.contexts.into_iter().map(|c| c.name).collect(),
                Source::Clusters => k.clusters.into_iter().map(|c| c.name).collect(),
                _ => k.auth_infos.into_iter().map(|u| u.name).collect(),
            };
            Ok(names.into_iter().map(Candidate::plain).collect())
        }
        _ => {
            let source = source.clone();
            let given = given.clone();
            // A thread of its own: the plugin's `main` may already run inside a tokio runtime.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime.block_on(async {
                    tokio::time::timeout(LOOKUP_TIMEOUT, from_cluster(&source, &flags, &given))
                        .await
                        .map_err(|_| format!("no answer within {LOOKUP_TIMEOUT:?}"))?
                })
            })
            .join()
            .map_err(|_| "the lookup thread panicked".to_string())?
        }
    }
}

/// The kubectl flags given so far, parsed exactly as the plugin would parse them.
fn config_flags(given: &Given) -> ConfigFlags {
    let cmd = ConfigFlags::augment_args(Command::new("flags").no_binary_name(true));
    let mut words: Vec<String> = Vec::new();
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        for v in given.values(arg.get_id().as_str()) {
            words.push(format!("--{long}={v}"));
        }
    }
    cmd.try_get_matches_from(words)
        .ok()
        .and_then(|m| ConfigFlags::from_arg_matches(&m).ok())
        .unwrap_or_default()
}

async fn from_cluster(
    source: &Source,
    flags: &ConfigFlags,
    given: &Given,
) -> Result<Vec<Candidate>, String> {
    let (client, resolved) = flags.client().await.map_err(|e| e.to_string())?;
    match source {
        Source::Namespaces => {
            let list = Api::<Namespace>::all(client)
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            Ok(list
                .items
                .into_iter()
                .filter_map(|n| n.metadata.name)
                .map(Candidate::plain)
                .collect())
        }
        Source::ObjectNames {
            resource_arg,
            default_resource,
        } => {
            let resource = resource_arg
                .and_then(|id| given.value(id))
                .unwrap_or(default_resource);
            if resource.is_empty()
                || !resource
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(format!("{resource:?} is not a core resource name"));
            }
            let namespace = given
                .value("namespace")
                .unwrap_or(&resolved.namespace)
                .to_string();
            let list = get(
                &client,
                &format!("/api/v1/namespaces/{namespace}/{resource}"),
            )
            .await?;
            Ok(list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["metadata"]["name"].as_str())
                .map(Candidate::plain)
                .collect())
        }
        Source::ApiResources => api_resources(&client).await,
        Source::OnboardedUsers => {
            let records = crate::onboard::list(&client, None)
                .await
                .map_err(|e| e.to_string())?;
            let mut out: Vec<Candidate> = Vec::new();
            for r in records {
                if !out.iter().any(|c| c.value == r.user) {
                    out.push(Candidate::described(
                        r.user.clone(),
                        Some(format!("namespace {}", r.namespace)),
                    ));
                }
            }
            Ok(out)
        }
        Source::Contexts | Source::Clusters | Source::KubeconfigUsers => Ok(Vec::new()),
    }
}

async fn get(client: &kube::Client, path: &str) -> Result<Value, String> {
    let req = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    client
        .request::<Value>(req)
        .await
        .map_err(|e| format!("GET {path}: {e}"))
}

/// Listable resources from discovery ([`crate::discovery::Discovery`]: groups whose discovery failed are left
/// out), named as kubectl accepts them: `secrets`, `deployments.apps`.
async fn api_resources(client: &kube::Client) -> Result<Vec<Candidate>, String> {
    let discovery = crate::discovery::Discovery::fetch(client)
        .await
        .map_err(|e| e.to_string())?;
    let out = discovery
        .resources_supporting(&["list"])
        .map(|(g, r)| {
            let value = crate::discovery::qualified_name(&r.name, &g.group);
            Candidate::described(value, Some(r.kind.clone()))
        })
        .collect();
    Ok(out)
}
