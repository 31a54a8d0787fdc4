//! Where a scan's pages come from: etcd itself ([`EtcdReader`], the `--endpoints --cacert --cert --key` flags of
//! [`EtcdArgs`]), or `etcdctl` inside the etcd static pod through the API server's `pods/exec` (`--via-pod [POD]`,
//! the tutorial's `kubectl exec etcd-master -n kube-system -- etcdctl …`, [`crate::podexec`]) for admins who cannot
//! reach etcd. Decoding, decryption and the report are the same either way.

use std::path::Path;

use clap::Arg;

use super::{Checker, PageChecker, ScanError, ScanItem, ScanRequest, ScanSummary, each_page};
use crate::client::{ClientError, ConfigFlags};
use crate::etcd::{EtcdArgs, EtcdError, EtcdReader, PageSize};
use crate::podexec::{self, CONTROL_PLANE_NAMESPACE, EtcdPod, EtcdctlPager, PodExecError};

/// `--via-pod [POD]`, `--pod-namespace`, and kubectl's connection flags ([`ConfigFlags`]) for the API server the
/// pod is reached through. `-n` is not the pod's namespace (that is `--pod-namespace`) but the objects to check
/// (see [`ViaPodArgs::adapt_arg`]).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Through the etcd pod (--via-pod, as kubectl exec)")]
#[command(mut_args(ViaPodArgs::adapt_arg))]
pub struct ViaPodArgs {
    /// Run etcdctl inside the etcd pod through the API server instead of connecting to etcd; POD defaults to
    /// the pod labelled component=etcd,tier=control-plane (kubeadm's etcd-<node>). Needs get/list on pods and
    /// create and get on pods/exec in --pod-namespace. Endpoint and certificates come from the pod's etcd flags.
    #[arg(long, value_name = "POD", num_args = 0..=1, default_missing_value = "")]
    pub via_pod: Option<String>,
    /// Namespace of the etcd pod.
    #[arg(long, value_name = "NS", default_value = CONTROL_PLANE_NAMESPACE, requires = "via_pod")]
    pub pod_namespace: String,
    /// The API server connection, as kubectl's flags.
    #[command(flatten)]
    pub kube: ConfigFlags,
}

impl ViaPodArgs {
    /// How [`ConfigFlags`]' flags read in a scan's command line: each names the API server of `--via-pod` and
    /// needs it, except `-n`, which selects the objects to check (etcd is read directly, so the kubeconfig's
    /// namespace does not apply) and `--request-timeout`, which has a default. None is global (the scan's
    /// subcommands read only files).
    pub fn adapt_arg(arg: Arg) -> Arg {
        match arg.get_id().as_str() {
            "namespace" => arg
                .global(false)
                .help("Namespace to check [default: default]")
                .value_name("NS")
                .help_heading(None::<&str>)
                .display_order(0),
            "request_timeout" => arg.global(false),
            "kubeconfig"
            | "context"
            | "cluster"
            | "user"
            | "as_user"
            | "as_group"
            | "as_uid"
            | "server"
            | "certificate_authority"
            | "tls_server_name" => arg.global(false).requires("via_pod"),
            _ => arg,
        }
    }

    /// The kubeconfig flags of the API server the pod is reached through, falling back to kubeadm's
    /// `admin.conf` under the node root.
    fn config_flags(&self, root: &Path) -> ConfigFlags {
        ConfigFlags {
            namespace: None,
            ..self.kube.clone()
        }
        .with_fallback(crate::kubeadm::node::under_root(
            root,
            Path::new("/etc/kubernetes/admin.conf"),
        ))
    }
}

/// A scan's pages could not be read or its results not written.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Connecting to etcd or reading it failed.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// The API client for `--via-pod` could not be set up.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The etcd pod could not be found or read.
    #[error("finding the etcd pod through {server}")]
    FindPod {
        /// The API server.
        server: String,
        /// Why.
        #[source]
        source: PodExecError,
    },
    /// The scan failed.
    #[error(transparent)]
    Scan(#[from] super::ScanError),
}

/// Where the pages come from: etcd itself, or etcdctl in the etcd pod.
#[allow(clippy::large_enum_variant)] // one per process
pub enum Source {
    /// Straight to etcd.
    Direct(EtcdReader),
    /// etcdctl through `pods/exec`.
    Pod {
        /// The API client.
        client: kube::Client,
        /// The etcd pod.
        pod: EtcdPod,
    },
}

impl Source {
    /// Connect as the flags say: to the etcd pod with `--via-pod`, else to etcd (kubeadm's files under `root`
    /// unless the flags name others).
    pub async fn connect(
        via: &ViaPodArgs,
        etcd: &EtcdArgs,
        root: &Path,
    ) -> Result<Self, SourceError> {
        let Some(name) = &via.via_pod else {
            return Ok(Source::Direct(
                EtcdReader::connect(&etcd.resolve(root)).await?,
            ));
        };
        let (client, cfg) = via.config_flags(root).client().await?;
        let name = Some(name.as_str()).filter(|n| !n.is_empty());
        let pod = podexec::find_etcd_pod(&client, &via.pod_namespace, name)
            .await
            .map_err(|source| SourceError::FindPod {
                server: cfg.cluster.server.clone(),
                source,
            })?;
        tracing::info!(pod = %pod.name, namespace = %pod.namespace, endpoint = %pod.endpoint, "reading etcd through its pod");
        Ok(Source::Pod { client, pod })
    }

    /// Scan as [`super::scan`] does, from this source: the same [`PageChecker`] on etcd's pages or etcdctl's.
    pub async fn scan(
        &self,
        req: &ScanRequest,
        checker: &Checker,
        page_size: PageSize,
        sink: impl FnMut(&ScanItem) -> std::io::Result<()>,
    ) -> Result<ScanSummary, SourceError> {
        Ok(match self {
            Source::Direct(reader) => super::scan(reader, req, checker, page_size, sink).await?,
            Source::Pod { client, pod } => {
                let mut pc = PageChecker::new(req, checker, sink);
                let mut pager = EtcdctlPager::for_request(client, pod, req, page_size)
                    .map_err(ScanError::from)?;
                each_page(&mut pager, |kvs| pc.page(kvs)).await?;
                pc.finish(pager.scan_revision())
            }
        })
    }
}
