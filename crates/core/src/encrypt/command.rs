//! What `kubectl encrypt` does between its flags and the steps of this module, and what it says: the node and
//! clients of the command line, the provider asked for, keeping kubeadm's ClusterConfiguration in step, and the
//! texts of `status`, `--dry-run`, `--no-wait` and the end of a rotation. The plugin only parses flags and prints.

use std::fmt;
use std::path::{Path, PathBuf};

use kube::Client;

use super::{
    Backups, Change, DEFAULT_CONFIG_PATH, EnableRequest, EncryptError, KubeadmSync, Node,
    ProviderChoice, Result, RotationState, Status, sync_kubeadm_config,
};
use crate::cli::{Table, error_chain};
use crate::client::{ClientError, ConfigFlags};
use crate::config::ProviderKind;
use crate::manifest::Manifest;

impl Node {
    /// The node of a command line: `--root`, `--manifest` and `--config` (both absolute node paths), the config
    /// defaulting to `configured` (what the manifest names), else [`DEFAULT_CONFIG_PATH`].
    pub fn from_flags(
        root: &Path,
        manifest: &Path,
        config: Option<&Path>,
        configured: Option<String>,
    ) -> Result<Node> {
        for (flag, p) in [("--manifest", Some(manifest)), ("--config", config)] {
            if let Some(p) = p.filter(|p| !p.is_absolute()) {
                return Err(EncryptError::Refused(format!(
                    "{flag} {} must be an absolute path on the node",
                    p.display()
                )));
            }
        }
        let config = config
            .map(Path::to_path_buf)
            .or(configured.map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
        Ok(Node::new(root, manifest, config))
    }

    /// A client of the cluster: the kubeconfig flags, falling back to the node's `admin.conf`.
    pub async fn client(&self, flags: &ConfigFlags) -> Result<Client, ClientError> {
        let flags = flags.clone().with_fallback(self.admin_conf());
        let (client, resolved) = flags.client().await?;
        tracing::info!(server = %resolved.cluster.server, files = %resolved.files_display(), "API server");
        Ok(client)
    }

    /// A client of this node's own kube-apiserver (the manifest's advertise address and port, with the
    /// kubeconfig's credentials): the reload checks must ask that server, not whichever one a load balancer picks.
    pub async fn local_client(&self, flags: &ConfigFlags, m: &Manifest) -> Option<Client> {
        let url = m.advertised_url()?;
        let mut flags = flags.clone().with_fallback(self.admin_conf());
        flags.server = Some(url.clone());
        match flags.client().await {
            Ok((c, _)) => Some(c),
            Err(e) => {
                tracing::info!("no direct client for {url}: {}", error_chain(&e));
                None
            }
        }
    }
}

impl ProviderChoice {
    /// `--provider` with `--kms-name` and `--kms-endpoint`, which go with `kms` only and which `kms` needs.
    pub fn from_flags(
        kind: ProviderKind,
        kms_name: Option<&str>,
        kms_endpoint: Option<&str>,
    ) -> Result<ProviderChoice> {
        match (kind, kms_name, kms_endpoint) {
            (ProviderKind::Kms, Some(name), Some(endpoint)) => Ok(ProviderChoice::KmsV2 {
                name: name.to_string(),
                endpoint: endpoint.to_string(),
            }),
            (ProviderKind::Kms, _, _) => Err(EncryptError::Refused(
                "--provider kms needs --kms-name and --kms-endpoint unix:///path/to/kms.sock"
                    .into(),
            )),
            (_, None, None) => Ok(ProviderChoice::Local(kind)),
            _ => Err(EncryptError::Refused(
                "--kms-name and --kms-endpoint go with --provider kms".into(),
            )),
        }
    }
}

impl EnableRequest {
    /// The request of a command line; `resources` are `--resources`' items (blank ones dropped, at least one).
    pub fn from_flags(
        provider: ProviderChoice,
        resources: &[String],
        automatic_reload: bool,
    ) -> Result<EnableRequest> {
        let resources: Vec<String> = resources
            .iter()
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect();
        if resources.is_empty() {
            return Err(EncryptError::Refused(
                "--resources needs at least one resource, e.g. secrets".into(),
            ));
        }
        Ok(EnableRequest {
            provider,
            resources,
            automatic_reload,
        })
    }
}

/// What became of kubeadm's ClusterConfiguration after a change ([`keep_kubeadm_config`]). `Display` is the text
/// for the user; [`KubeadmStep::is_warning`] says whether it belongs on stderr.
#[derive(Debug)]
pub enum KubeadmStep {
    /// `--no-kubeadm-config`.
    Skipped,
    /// No API server to reach.
    Unreachable,
    /// Synced (or already in step, or not kubeadm).
    Done(KubeadmSync),
    /// Reading or updating the ConfigMap failed.
    Failed(EncryptError),
}

/// Keeps kubeadm's ClusterConfiguration in step with the manifest, unless `skip` (`--no-kubeadm-config`) or there
/// is no client; never fails: the node's change is made either way, and running the command again catches up.
pub async fn keep_kubeadm_config(node: &Node, client: Option<&Client>, skip: bool) -> KubeadmStep {
    match (skip, client) {
        (true, _) => KubeadmStep::Skipped,
        (false, None) => KubeadmStep::Unreachable,
        (false, Some(c)) => match sync_kubeadm_config(node, c).await {
            Ok(s) => KubeadmStep::Done(s),
            Err(e) => KubeadmStep::Failed(e),
        },
    }
}

impl KubeadmStep {
    /// A failure: print it as a warning, on stderr.
    pub fn is_warning(&self) -> bool {
        matches!(self, KubeadmStep::Failed(_))
    }
}

impl fmt::Display for KubeadmStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KubeadmStep::Skipped => f.write_str(
                "kubeadm-config: not updated (--no-kubeadm-config); `kubeadm upgrade` will regenerate the manifest without these settings",
            ),
            KubeadmStep::Unreachable => f.write_str(
                "kubeadm-config: not updated (no API server to reach); run the same command again once it is up",
            ),
            KubeadmStep::Done(KubeadmSync::Updated { changes, backup }) => {
                for c in changes {
                    writeln!(f, "kubeadm-config ClusterConfiguration: {c}")?;
                }
                write!(
                    f,
                    "backup of the previous ClusterConfiguration: {}",
                    backup.display()
                )
            }
            KubeadmStep::Done(KubeadmSync::InSync) => {
                f.write_str("kubeadm-config ClusterConfiguration: already in step with the manifest")
            }
            KubeadmStep::Done(KubeadmSync::NotKubeadm) => f.write_str(
                "kubeadm-config: no ConfigMap kube-system/kubeadm-config (not a kubeadm cluster); nothing to keep in step",
            ),
            KubeadmStep::Failed(e) => write!(
                f,
                "kubeadm-config not updated ({}); `kubeadm upgrade` would drop the encryption settings from the manifest: run the command again, or add them to ClusterConfiguration apiServer.extraArgs/extraVolumes by hand",
                error_chain(e)
            ),
        }
    }
}

impl Change {
    /// What `--dry-run` prints: the config to write (keys redacted) and the manifest diff.
    pub fn dry_run_text(&self, node: &Node) -> String {
        let mut out = match self.redacted_config() {
            Some(cfg) => format!(
                "# {} would be written (mode 0600; keys redacted):\n{cfg}\n",
                node.config.display()
            ),
            None => format!("# {} is kept as it is\n", node.config.display()),
        };
        let diff = self.manifest_diff(&node.manifest.display().to_string());
        if diff.is_empty() {
            out.push_str(&format!("# {} would not change\n", node.manifest.display()));
        } else {
            out.push_str(&diff);
        }
        out
    }

    /// What [`Node::apply_files`] did, one line each: the config written, the manifest's changes, its backup.
    pub fn applied_text(&self, node: &Node, backups: &Backups) -> String {
        let mut lines = Vec::new();
        if self.config.is_some() {
            lines.push(format!("wrote {} (mode 0600)", node.config.display()));
        }
        for c in &self.manifest_changes {
            lines.push(format!("{}: {c}", node.manifest.display()));
        }
        if let Some(b) = &backups.manifest {
            let m = node.manifest.display();
            lines.push(format!("backed up {m} to {}", b.display()));
        }
        lines.join("\n")
    }
}

impl fmt::Display for RotationState {
    /// Where a rotation or disable stands on this node after a run: complete, or the phases done and the next.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.next() {
            None => write!(f, "{:?} complete", self.operation),
            Some(next) => write!(
                f,
                "{:?}: phases done on this node: {}; next: --phase {} (HA: first run the same phase on every control-plane node)",
                self.operation,
                self.done
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                next.as_str()
            ),
        }
    }
}

impl Status {
    /// `kubectl encrypt status` as kubectl prints: the node's settings as name/value rows, then tables of the
    /// resources' providers, the kube-apiserver mirror pods and the objects in etcd.
    pub fn table(&self) -> String {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        let mut t = Table::without_header();
        t.row(["Manifest", &self.manifest]);
        t.row([
            "Encryption config",
            self.config
                .as_deref()
                .unwrap_or("(not set: encryption at rest is off)"),
        ]);
        if let Some(f) = &self.config_file {
            t.row(["Config file on this node", f]);
        }
        if let Some(h) = &self.config_hash {
            t.row(["Config sha256", h]);
        }
        t.row(["Automatic reload", yes_no(self.automatic_reload)]);
        if let Some(e) = &self.config_error {
            t.row(["Config error", e]);
        }
        if let Some(r) = &self.rotation {
            let done: Vec<&str> = r.done.iter().map(|p| p.as_str()).collect();
            let next = r.next().map(|p| p.as_str()).unwrap_or("-");
            t.row([
                format!("{:?} in progress", r.operation),
                format!("done: [{}], next: {next}", done.join(", ")),
            ]);
        }
        for b in &self.retired_key_backups {
            t.row([
                "Backup with retired keys".to_string(),
                format!(
                    "{} holds {} (no longer in the config; delete it once no etcd backup needs the key)",
                    b.path.display(),
                    b.keys.join(", ")
                ),
            ]);
        }
        if let Some(k) = &self.kubeadm_config {
            t.row(["kubeadm-config", k]);
        }
        for d in &self.drift {
            t.row(["Drift", d]);
        }
        let mut out = vec![t.to_string()];
        if !self.resources.is_empty() {
            let mut r = Table::new(["RESOURCES", "PROVIDERS (first writes; keys in order)"]);
            for rs in &self.resources {
                r.row([rs.resources.join(","), rs.providers.join(", ")]);
            }
            out.push(r.to_string());
        }
        match (&self.mirror_pods, &self.api_error) {
            (Some(pods), _) => {
                let mut p = Table::new([
                    "POD",
                    "NODE",
                    "READY",
                    "ENCRYPTION CONFIG",
                    "AUTO RELOAD",
                    "CONFIG SHA256 (annotation)",
                ]);
                for pod in pods {
                    let reason = pod.waiting_reason.as_ref().map(|r| format!(" ({r})"));
                    p.row([
                        pod.name.clone(),
                        pod.node.clone(),
                        format!("{}{}", yes_no(pod.ready), reason.unwrap_or_default()),
                        pod.encryption_provider_config.clone().unwrap_or("-".into()),
                        yes_no(pod.automatic_reload).into(),
                        pod.config_hash.clone().unwrap_or("-".into()),
                    ]);
                }
                out.push(p.to_string());
            }
            (None, Some(e)) => out.push(format!("Running API server: unknown ({e})")),
            (None, None) => {}
        }
        match (&self.storage, &self.etcd_error) {
            (Some(rows), _) => {
                let mut s = Table::new(["RESOURCE", "STORED AS", "KEY", "OBJECTS"]);
                for r in rows {
                    s.row([
                        r.resource.clone(),
                        r.storage.clone(),
                        r.key.clone().unwrap_or("-".into()),
                        r.count.to_string(),
                    ]);
                }
                out.push(s.to_string());
            }
            (None, Some(e)) => out.push(format!("Objects in etcd: unknown ({e})")),
            (None, None) => {}
        }
        out.join("\n\n")
    }
}
