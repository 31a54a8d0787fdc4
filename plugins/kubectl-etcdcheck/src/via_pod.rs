//! `--via-pod [POD]`: read etcd with `etcdctl` inside the etcd static pod, through the API server's `pods/exec`
//! (the tutorial's `kubectl exec etcd-master -n kube-system -- etcdctl …`), for admins who cannot reach etcd.
//! Decoding, decryption (`--encryption-config` is read locally) and the report are the direct mode's.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use atrest_core::client::{ConfigFlags, RequestTimeout, parse_request_timeout};
use atrest_core::etcd::{EtcdArgs, EtcdReader};
use atrest_core::podexec::{self, CONTROL_PLANE_NAMESPACE, EtcdPod};
use atrest_core::scan::{Checker, ScanItem, ScanRequest, ScanSummary};

/// kubectl's connection flags (without `-n`, which selects the secrets to check) and `--via-pod`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Through the etcd pod (--via-pod, as kubectl exec)")]
pub struct ViaPodArgs {
    /// Run etcdctl inside the etcd pod through the API server instead of connecting to etcd; POD defaults to
    /// the pod labelled component=etcd,tier=control-plane (kubeadm's etcd-<node>). Needs get/list on pods and
    /// create and get on pods/exec in --pod-namespace. Endpoint and certificates come from the pod's etcd flags.
    #[arg(long, value_name = "POD", num_args = 0..=1, default_missing_value = "")]
    pub via_pod: Option<String>,
    /// Namespace of the etcd pod.
    #[arg(long, value_name = "NS", default_value = CONTROL_PLANE_NAMESPACE, requires = "via_pod")]
    pub pod_namespace: String,
    /// Path to the kubeconfig file to use.
    #[arg(long, value_name = "FILE", requires = "via_pod")]
    pub kubeconfig: Option<PathBuf>,
    /// The name of the kubeconfig context to use.
    #[arg(long, value_name = "NAME", requires = "via_pod")]
    pub context: Option<String>,
    /// The name of the kubeconfig cluster to use.
    #[arg(long, value_name = "NAME", requires = "via_pod")]
    pub cluster: Option<String>,
    /// The name of the kubeconfig user to use.
    #[arg(long, value_name = "NAME", requires = "via_pod")]
    pub user: Option<String>,
    /// Username to impersonate for the operation.
    #[arg(long = "as", value_name = "USER", requires = "via_pod")]
    pub as_user: Option<String>,
    /// Group to impersonate for the operation; repeat for several groups.
    #[arg(long = "as-group", value_name = "GROUP", requires = "via_pod")]
    pub as_group: Vec<String>,
    /// UID to impersonate for the operation.
    #[arg(long = "as-uid", value_name = "UID", requires = "via_pod")]
    pub as_uid: Option<String>,
    /// How long to wait for one server response (e.g. 30s, 2m); 0 = no timeout.
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = parse_request_timeout)]
    pub request_timeout: RequestTimeout,
    /// The address and port of the Kubernetes API server.
    #[arg(long, value_name = "URL", requires = "via_pod")]
    pub server: Option<String>,
    /// Path to a CA certificate file for the API server's certificate.
    #[arg(long, value_name = "FILE", requires = "via_pod")]
    pub certificate_authority: Option<PathBuf>,
}

impl ViaPodArgs {
    fn config_flags(&self, root: &Path) -> ConfigFlags {
        ConfigFlags {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
            namespace: None,
            as_user: self.as_user.clone(),
            as_group: self.as_group.clone(),
            as_uid: self.as_uid.clone(),
            request_timeout: self.request_timeout,
            server: self.server.clone(),
            certificate_authority: self.certificate_authority.clone(),
            tls_server_name: None,
            fallback_kubeconfigs: Vec::new(),
        }
        .with_fallback(crate::under_root(
            root,
            Path::new("/etc/kubernetes/admin.conf"),
        ))
    }
}

/// Where the pages come from: etcd itself, or etcdctl in the etcd pod.
#[allow(clippy::large_enum_variant)] // one per process
pub enum Source {
    /// etcd-client straight to etcd.
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
    /// Connect as the flags say: to the etcd pod with `--via-pod`, else to etcd.
    pub async fn connect(via: &ViaPodArgs, etcd: &EtcdArgs, root: &Path) -> Result<Source> {
        let Some(name) = &via.via_pod else {
            let reader = EtcdReader::connect(&etcd.resolve(root)).await?;
            return Ok(Source::Direct(reader));
        };
        let (client, cfg) = via.config_flags(root).client().await?;
        let name = Some(name.as_str()).filter(|n| !n.is_empty());
        let pod = podexec::find_etcd_pod(&client, &via.pod_namespace, name)
            .await
            .with_context(|| format!("finding the etcd pod through {}", cfg.cluster.server))?;
        tracing::info!(pod = %pod.name, namespace = %pod.namespace, endpoint = %pod.endpoint, "reading etcd through its pod");
        Ok(Source::Pod { client, pod })
    }

    /// Scan as [`atrest_core::scan::scan`] does, from this source.
    pub async fn scan(
        &self,
        req: &ScanRequest,
        checker: &Checker,
        page_size: i64,
        sink: impl FnMut(&ScanItem) -> std::io::Result<()>,
    ) -> Result<ScanSummary> {
        Ok(match self {
            Source::Direct(reader) => {
                atrest_core::scan::scan(reader, req, checker, page_size, sink).await?
            }
            Source::Pod { client, pod } => {
                podexec::scan_via_pod(client, pod, req, checker, page_size, sink).await?
            }
        })
    }
}
