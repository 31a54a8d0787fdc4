//! `kubectl encrypt`: enable, inspect, rotate and disable encryption at rest on a kubeadm control-plane node.
//!
//! A thin front over [`atrest_core::encrypt`] and [`atrest_core::manifest`]: flags, messages, tables, exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use atrest_core::cli::{Verbosity, error_chain};
use atrest_core::client::{ConfigFlags, parse_positive_timeout};
use atrest_core::config::ProviderKind;
use atrest_core::encrypt::{
    self, EnablePlan, EnableRequest, Node, Operation, ProviderChoice, RotateOptions, RotationPhase,
};
use atrest_core::kubeadm::node::KUBE_APISERVER_MANIFEST;
use atrest_core::manifest::Manifest;
use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Run it on a control-plane node as root (it edits /etc/kubernetes). Every path is a path on the node, resolved under --root.

What enable does: checks the kube-apiserver manifest (broken manifests are refused untouched, with the line at fault); generates a key from the OS random generator; writes the EncryptionConfiguration with mode 0600 (atomically) and validates it like kube-apiserver; backs the manifest up to /etc/kubernetes/tmp/atrest-backups (outside the manifests directory: the kubelet runs every file there); adds --encryption-provider-config (and a read-only hostPath volume when the config is not under an already mounted directory; kubeadm mounts /etc/kubernetes/pki) keeping every other byte of the manifest; then waits until /readyz answers and the kube-apiserver mirror pod runs the new flags. If it does not come back within --timeout, the backup is restored byte for byte and the command fails naming the backup and what failed.

HA control planes: every kube-apiserver needs the same config. Before changing anything, enable looks at the other API servers' mirror pods; when one already runs with --encryption-provider-config and this node has no config (enable would generate another key1) or a different one (its sha256 differs from that pod's atrest.io/encryption-config-sha256), it refuses naming that node: copy its config to this node (same path, mode 0600, or anywhere and pass --config FILE) and run again.

kubeadm: enable, rotate and disable also keep ClusterConfiguration in ConfigMap kube-system/kubeadm-config in step (apiServer.extraArgs, and extraVolumes when the config needs its own volume), so kubeadm upgrade regenerates the manifest with them and kubeadm join --control-plane gives new nodes the flag; only those lines change, the previous document is backed up. --no-kubeadm-config skips it; status shows drift.

Existing objects stay as they are stored (plaintext) until rewritten: pass --reencrypt, or run `kubectl reencrypt` afterwards.

rotate follows the documented procedure, one restart per step: add the new key second; make it first; rewrite everything; prove from etcd (with the API server's own etcd client certificate, read from the manifest) that no object still uses the old key; remove the old key, then delete the config backups made on the way that still hold it (listed; --keep-backups keeps them, and `status` lists backups holding keys no longer in the config). Progress is kept in <config>.rotation (0600) so an interrupted rotation continues where it stopped. HA control planes: every API server must have the new key before the next step, so run one phase at a time on every control-plane node:
  node1$ kubectl encrypt rotate --phase add-key
  node1$ scp /etc/kubernetes/pki/enc.yaml /etc/kubernetes/pki/enc.yaml.rotation node2:/etc/kubernetes/pki/
  node2$ kubectl encrypt rotate --phase add-key      # same key: only restarts node2's API server
  (repeat for every node, then the same for --phase promote, copying enc.yaml again; then rewrite and verify once; then remove-old on every node)
The steps check every kube-apiserver mirror pod (annotation atrest.io/encryption-config-sha256, set at each restart): promote refuses until every other API server was restarted with a config holding the new key; rewrite, verify and remove-old refuse until every one writes with it. The refusal names the node and what to run there.

With --encryption-provider-config-automatic-reload=true in the manifest (enable --automatic-reload), rotate and disable do not restart kube-apiserver: each step writes the config and waits until the server's /metrics report the reload (apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds; last_config_info from 1.34); a failed reload restores the previous config. Upstream polls the file once a minute, so allow --timeout for it. The check asks this node's own API server (--advertise-address and --secure-port of the manifest, with the kubeconfig's credentials) and counts only the series whose apiserver_id_hash is this node's server identity (derived from the hostname as kube-apiserver does), so a load balancer answering with another server's /metrics cannot fake or hide the reload.

disable goes the safe way round: identity first and restart; rewrite everything; verify from etcd that nothing is encrypted; only then remove the flag (removing the config first would make encrypted objects unreadable).

Exit status: 0 done (or already as asked), 1 error (nothing changed, or the change was rolled back: see the message).

Examples:
  kubectl encrypt                                  # secretbox for Secrets, config /etc/kubernetes/pki/enc.yaml
  kubectl encrypt --dry-run                        # show the config (keys redacted) and the manifest diff
  kubectl encrypt --provider aesgcm --resources secrets,configmaps --reencrypt
  kubectl encrypt --config /etc/kubernetes/enc/enc.yaml --automatic-reload
  kubectl encrypt status -o json
  kubectl encrypt rotate
  kubectl encrypt disable";

const PROVIDER_HELP: &str = "Provider for new writes. Default secretbox (XSalsa20-Poly1305: authenticated, 32-byte keys, no nonce-reuse \
limit). aescbc has no integrity protection and is discouraged upstream; aesgcm needs a key rotation every 200,000 writes (random \
96-bit nonces); kms (v2) hands the keys to a KMS plugin given by --kms-name and --kms-endpoint.";

/// Enable, inspect, rotate and disable encryption at rest for Secrets (and other resources) on a kubeadm control-plane node.
#[derive(Debug, Parser)]
#[command(name = "kubectl-encrypt", bin_name = "kubectl encrypt", version, after_help = AFTER_HELP, subcommand_negates_reqs = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    enable: EnableArgs,
    #[command(flatten)]
    node: NodeArgs,
    #[command(flatten)]
    kube: ConfigFlags,
    #[command(flatten)]
    log: Verbosity,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enable encryption at rest (the default command).
    Enable(EnableArgs),
    /// Show the config, provider order and key names (never key bytes), the running API server's flags, a rotation in progress.
    Status(StatusArgs),
    /// Rotate the key: add it second, make it first, rewrite everything, verify in etcd, remove the old key.
    Rotate(RotateArgs),
    /// Turn encryption off safely: identity first, rewrite everything, verify in etcd, then remove the flag.
    Disable(PhaseArgs),
}

/// Where the node's files are.
#[derive(Debug, Clone, Args)]
struct NodeArgs {
    /// The EncryptionConfiguration (node path; the same path inside the kube-apiserver container). status, rotate and
    /// disable default to the file the manifest names.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// The kube-apiserver static pod manifest (node path).
    #[arg(long, value_name = "FILE", default_value = KUBE_APISERVER_MANIFEST, global = true)]
    manifest: PathBuf,
    /// Do not update kubeadm's ClusterConfiguration (ConfigMap kube-system/kubeadm-config) with the flag and volume; kubeadm upgrade will then drop them from the manifest.
    #[arg(long, global = true)]
    no_kubeadm_config: bool,
    /// Directory every node path resolves under (for a node image or a test node).
    #[arg(long, value_name = "DIR", default_value = "/", global = true)]
    root: PathBuf,
    /// How long to wait for kube-apiserver after each change (e.g. 90s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_positive_timeout, global = true)]
    timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Provider {
    Secretbox,
    Aesgcm,
    Aescbc,
    Kms,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DryRun {
    /// Change nothing; print what would change.
    Client,
    /// Really change.
    None,
}

#[derive(Debug, Clone, Args)]
struct EnableArgs {
    #[arg(long, value_enum, default_value = "secretbox", help = PROVIDER_HELP)]
    provider: Provider,
    /// Resources to encrypt, comma-separated: secrets, configmaps, deployments.apps, wildcards *.apps, *.* (Kubernetes 1.27+).
    #[arg(long, value_delimiter = ',', default_value = "secrets")]
    resources: Vec<String>,
    /// KMS v2 plugin name (with --provider kms).
    #[arg(long, value_name = "NAME")]
    kms_name: Option<String>,
    /// KMS v2 plugin endpoint, unix:///path/to/socket (with --provider kms).
    #[arg(long, value_name = "URL")]
    kms_endpoint: Option<String>,
    /// Also set --encryption-provider-config-automatic-reload=true (Kubernetes 1.26+): later config edits are picked up without a restart.
    #[arg(long)]
    automatic_reload: bool,
    /// Edit the node's files and exit without waiting for the API server (works with the control plane down).
    #[arg(long)]
    no_wait: bool,
    /// Print the config (keys redacted) and the manifest diff; change nothing. A bare --dry-run means client.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "client", value_name = "client|none")]
    dry_run: Option<DryRun>,
    /// Afterwards rewrite every object of the resources so existing ones get encrypted (the reencrypt verb's core).
    #[arg(long, conflicts_with = "no_wait")]
    reencrypt: bool,
    /// Workers for --reencrypt.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

#[derive(Debug, Clone, Args)]
struct StatusArgs {
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Debug, Clone, Args)]
struct PhaseArgs {
    /// Run only this phase (HA: run it on every control-plane node before the next). Default: all remaining phases.
    #[arg(long, value_enum)]
    phase: Option<RotationPhase>,
    /// Workers for the rewrite phase.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

#[derive(Debug, Clone, Args)]
struct RotateArgs {
    #[command(flatten)]
    phases: PhaseArgs,
    /// Keep the config backups in /etc/kubernetes/tmp/atrest-backups that hold the retired key (by default they are deleted once the old key is removed, after etcd showed no object uses it).
    #[arg(long)]
    keep_backups: bool,
}

fn main() -> ExitCode {
    atrest_core::cli::main(&[], |c: &Cli| c.log.verbose, run)
}

fn progress(msg: &str) {
    eprintln!("{msg}");
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        None => enable(&cli.node, &cli.kube, &cli.enable).await,
        Some(Command::Enable(ref a)) => enable(&cli.node, &cli.kube, a).await,
        Some(Command::Status(ref a)) => status(&cli.node, &cli.kube, a).await,
        Some(Command::Rotate(ref a)) => {
            phases(&cli.node, &cli.kube, &a.phases, Some(a.keep_backups)).await
        }
        Some(Command::Disable(ref a)) => phases(&cli.node, &cli.kube, a, None).await,
    }?;
    Ok(ExitCode::SUCCESS)
}

impl NodeArgs {
    fn node(&self, configured: Option<String>) -> Result<Node> {
        Ok(Node::from_flags(
            &self.root,
            &self.manifest,
            self.config.as_deref(),
            configured,
        )?)
    }

    /// Keeps kubeadm's ClusterConfiguration in step and says what became of it.
    async fn kubeadm_config(&self, node: &Node, client: Option<&kube::Client>) {
        let step = encrypt::keep_kubeadm_config(node, client, self.no_kubeadm_config).await;
        match step.is_warning() {
            true => eprintln!("warning: {step}"),
            false => println!("{step}"),
        }
    }
}

async fn enable(args: &NodeArgs, kube: &ConfigFlags, a: &EnableArgs) -> Result<()> {
    let node = args.node(None)?;
    let kind = match a.provider {
        Provider::Secretbox => ProviderKind::Secretbox,
        Provider::Aesgcm => ProviderKind::Aesgcm,
        Provider::Aescbc => ProviderKind::Aescbc,
        Provider::Kms => ProviderKind::Kms,
    };
    let provider =
        ProviderChoice::from_flags(kind, a.kms_name.as_deref(), a.kms_endpoint.as_deref())?;
    let req = EnableRequest::from_flags(provider, &a.resources, a.automatic_reload)?;
    let dry_run = a.dry_run == Some(DryRun::Client);
    let change = match encrypt::plan_enable(&node, &req)? {
        EnablePlan::AlreadyEnabled { config, summary } => {
            println!(
                "encryption at rest is already enabled as asked: {} ({summary}); nothing to do",
                config.display()
            );
            if !dry_run {
                let client = node.client(kube).await.ok();
                args.kubeadm_config(&node, client.as_ref()).await;
            }
            return Ok(());
        }
        EnablePlan::Change(c) => c,
    };
    // HA: before anything changes, the other API servers must not already run with another config.
    let client = match node.client(kube).await {
        Ok(c) => Some(c),
        Err(e) if a.no_wait || dry_run => {
            tracing::info!("no API server: {}", error_chain(&e));
            None
        }
        Err(e) => return Err(e).context("connecting to the API server"),
    };
    let unchecked = |why: String| {
        eprintln!(
            "warning: cannot check the other control-plane nodes' API servers ({why}); on an HA control plane every node needs the same {} before enabling",
            node.config.display()
        )
    };
    match &client {
        None => unchecked("no kubeconfig or API server".into()),
        Some(c) => match encrypt::check_other_servers_for_enable(&node, c, &change).await {
            Ok(notes) => notes.iter().for_each(|n| eprintln!("warning: {n}")),
            Err(e @ encrypt::EncryptError::Refused(_)) => return Err(e.into()),
            Err(e) => unchecked(error_chain(&e)),
        },
    }
    if dry_run {
        print!("{}", change.dry_run_text(&node));
        eprintln!("dry run: nothing was changed");
        return Ok(());
    }
    if a.no_wait {
        let backups = node.apply_files(&change)?;
        println!("{}", change.applied_text(&node, &backups));
        println!(
            "not waiting for kube-apiserver (--no-wait); check it with `kubectl encrypt status`"
        );
        args.kubeadm_config(&node, client.as_ref()).await;
        return Ok(());
    }
    let client = client.context("connecting to the API server")?;
    // roll_out reports what it writes and the backup as it goes (stderr); only the result goes to stdout.
    let what = "enabling encryption at rest";
    node.roll_out(&client, &change, args.timeout, what, &progress)
        .await?;
    println!(
        "encryption at rest is enabled: kube-apiserver runs with --encryption-provider-config={}",
        node.config.display()
    );
    args.kubeadm_config(&node, Some(&client)).await;
    if a.reencrypt {
        let cfg = atrest_core::config::load(&node.config_file())?;
        encrypt::rewrite_all(&client, &cfg, a.concurrency, &progress).await?;
    } else {
        println!(
            "existing objects stay as stored until rewritten: run `kubectl reencrypt {}`",
            req.resources.join(" ")
        );
    }
    Ok(())
}

async fn status(args: &NodeArgs, kube: &ConfigFlags, a: &StatusArgs) -> Result<()> {
    let node = args.node(None)?;
    let client = match node.client(kube).await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::info!("no API server: {}", error_chain(&e));
            None
        }
    };
    let mut st = encrypt::status(&node, client.as_ref()).await?;
    if client.is_none() && st.api_error.is_none() {
        st.api_error = Some("no kubeconfig or API server reachable".into());
    }
    match a.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&st)?),
        Output::Table => println!("{}", st.table()),
    }
    Ok(())
}

async fn phases(
    args: &NodeArgs,
    kube: &ConfigFlags,
    a: &PhaseArgs,
    keep_backups: Option<bool>,
) -> Result<()> {
    let m = Manifest::load(&Node::new(&args.root, &args.manifest, "/").manifest_file())?;
    let node = args.node(m.encryption_provider_config())?;
    let client = node
        .client(kube)
        .await
        .context("connecting to the API server")?;
    let opts = RotateOptions {
        local_server: node.local_client(kube, &m).await,
        phase: a.phase,
        timeout: args.timeout,
        concurrency: a.concurrency,
        keep_backups: keep_backups.unwrap_or(false),
    };
    let op = match keep_backups {
        Some(_) => Operation::Rotate,
        None => Operation::Disable,
    };
    let state = encrypt::run_phases(&node, &client, op, &opts, &progress).await?;
    args.kubeadm_config(&node, Some(&client)).await;
    println!("{state}");
    Ok(())
}
