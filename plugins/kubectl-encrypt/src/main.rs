//! `kubectl encrypt`: enable, inspect, rotate and disable encryption at rest on a kubeadm control-plane node.
//!
//! A thin front over [`atrest_core::encrypt`] and [`atrest_core::manifest`]: flags, messages, tables, exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use atrest_core::cli::Verbosity;
use atrest_core::client::{ConfigFlags, parse_request_timeout};
use atrest_core::config::ProviderKind;
use atrest_core::encrypt::{
    self, DEFAULT_CONFIG_PATH, EnablePlan, EnableRequest, Node, ProviderChoice, RotateOptions,
    RotationPhase, Status,
};
use atrest_core::manifest::DEFAULT_MANIFEST_PATH;
use clap::{Args, Parser, Subcommand, ValueEnum};
use comfy_table::{Table, presets};

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
    #[arg(long, value_name = "FILE", default_value = DEFAULT_MANIFEST_PATH, global = true)]
    manifest: PathBuf,
    /// Do not update kubeadm's ClusterConfiguration (ConfigMap kube-system/kubeadm-config) with the flag and volume; kubeadm upgrade will then drop them from the manifest.
    #[arg(long, global = true)]
    no_kubeadm_config: bool,
    /// Directory every node path resolves under (for a node image or a test node).
    #[arg(long, value_name = "DIR", default_value = "/", global = true)]
    root: PathBuf,
    /// How long to wait for kube-apiserver after each change (e.g. 90s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_timeout, global = true)]
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

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match parse_request_timeout(s)?.0 {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err("the timeout must be more than 0".into()),
    }
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
    }
}

fn node_for(args: &NodeArgs, default_config: Option<String>) -> Result<Node> {
    for (flag, p) in [
        ("--manifest", Some(&args.manifest)),
        ("--config", args.config.as_ref()),
    ] {
        if let Some(p) = p
            && !p.is_absolute()
        {
            bail!(
                "{flag} {} must be an absolute path on the node",
                p.display()
            );
        }
    }
    let config = args
        .config
        .clone()
        .or(default_config.map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    Ok(Node::new(&args.root, &args.manifest, config))
}

async fn client(node: &Node, kube: &ConfigFlags) -> Result<kube::Client> {
    let flags = kube.clone().with_fallback(node.admin_conf());
    let (client, resolved) = flags
        .client()
        .await
        .context("connecting to the API server")?;
    tracing::info!(server = %resolved.cluster.server, files = %resolved.files_display(), "API server");
    Ok(client)
}

/// A client of this node's own kube-apiserver (the manifest's advertise address and port, with the kubeconfig's
/// credentials): the reload checks must ask that server, not whichever one a load balancer picks.
async fn local_client(
    node: &Node,
    kube: &ConfigFlags,
    m: &atrest_core::manifest::Manifest,
) -> Option<kube::Client> {
    let url = m.advertised_url()?;
    let mut flags = kube.clone().with_fallback(node.admin_conf());
    flags.server = Some(url.clone());
    match flags.client().await {
        Ok((c, _)) => Some(c),
        Err(e) => {
            tracing::info!("no direct client for {url}: {e:#}");
            None
        }
    }
}

async fn enable(args: &NodeArgs, kube: &ConfigFlags, a: &EnableArgs) -> Result<ExitCode> {
    let node = node_for(args, None)?;
    let provider = match a.provider {
        Provider::Secretbox => ProviderChoice::Local(ProviderKind::Secretbox),
        Provider::Aesgcm => ProviderChoice::Local(ProviderKind::Aesgcm),
        Provider::Aescbc => ProviderChoice::Local(ProviderKind::Aescbc),
        Provider::Kms => match (&a.kms_name, &a.kms_endpoint) {
            (Some(name), Some(endpoint)) => ProviderChoice::KmsV2 {
                name: name.clone(),
                endpoint: endpoint.clone(),
            },
            _ => {
                bail!("--provider kms needs --kms-name and --kms-endpoint unix:///path/to/kms.sock")
            }
        },
    };
    if a.provider != Provider::Kms && (a.kms_name.is_some() || a.kms_endpoint.is_some()) {
        bail!("--kms-name and --kms-endpoint go with --provider kms");
    }
    let resources: Vec<String> = a
        .resources
        .iter()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect();
    if resources.is_empty() {
        bail!("--resources needs at least one resource, e.g. secrets");
    }
    let req = EnableRequest {
        provider,
        resources,
        automatic_reload: a.automatic_reload,
    };
    let plan = encrypt::plan_enable(&node, &req)?;
    let change = match plan {
        EnablePlan::AlreadyEnabled { config, summary } => {
            println!(
                "encryption at rest is already enabled as asked: {} ({summary}); nothing to do",
                config.display()
            );
            if a.dry_run != Some(DryRun::Client) {
                let client = client(&node, kube).await.ok();
                kubeadm_config(&node, args, client.as_ref()).await;
            }
            return Ok(ExitCode::SUCCESS);
        }
        EnablePlan::Change(c) => c,
    };
    // HA: before anything changes, the other API servers must not already run with another config.
    let client = match client(&node, kube).await {
        Ok(c) => Some(c),
        Err(e) => {
            if !a.no_wait && a.dry_run != Some(DryRun::Client) {
                return Err(e);
            }
            None
        }
    };
    let checked = match &client {
        Some(c) => encrypt::check_other_servers_for_enable(&node, c, &change).await,
        None => Err(encrypt::EncryptError::Api(
            "no kubeconfig or API server".into(),
        )),
    };
    match checked {
        Ok(notes) => notes.iter().for_each(|n| eprintln!("warning: {n}")),
        Err(e @ encrypt::EncryptError::Refused(_)) => return Err(e.into()),
        Err(e) => eprintln!(
            "warning: cannot check the other control-plane nodes' API servers ({e}); on an HA control plane every node needs the same {} before enabling",
            node.config.display()
        ),
    }
    if a.dry_run == Some(DryRun::Client) {
        match change.redacted_config() {
            Some(cfg) => println!(
                "# {} would be written (mode 0600; keys redacted):\n{cfg}",
                node.config.display()
            ),
            None => println!("# {} is kept as it is", node.config.display()),
        }
        let diff = change.manifest_diff(&node.manifest.display().to_string());
        if diff.is_empty() {
            println!("# {} would not change", node.manifest.display());
        } else {
            print!("{diff}");
        }
        eprintln!("dry run: nothing was changed");
        return Ok(ExitCode::SUCCESS);
    }
    if a.no_wait {
        let backups = node.apply_files(&change)?;
        if change.config.is_some() {
            println!("wrote {} (mode 0600)", node.config.display());
        }
        for c in &change.manifest_changes {
            println!("{}: {c}", node.manifest.display());
        }
        if let Some(b) = backups.manifest {
            println!("backup of the previous manifest: {}", b.display());
        }
        println!(
            "not waiting for kube-apiserver (--no-wait); check it with `kubectl encrypt status`"
        );
        kubeadm_config(&node, args, client.as_ref()).await;
        return Ok(ExitCode::SUCCESS);
    }
    let client = client.context("connecting to the API server")?;
    // roll_out reports what it writes and the backup as it goes (stderr); only the result goes to stdout.
    node.roll_out(
        &client,
        &change,
        args.timeout,
        "enabling encryption at rest",
        &progress,
    )
    .await?;
    println!(
        "encryption at rest is enabled: kube-apiserver runs with --encryption-provider-config={}",
        node.config.display()
    );
    kubeadm_config(&node, args, Some(&client)).await;
    if a.reencrypt {
        let cfg = atrest_core::config::load(&node.config_file())?;
        encrypt::rewrite_all(&client, &cfg, a.concurrency, &progress).await?;
    } else {
        println!(
            "existing objects stay as stored until rewritten: run `kubectl reencrypt {}`",
            req.resources.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Keeps kubeadm's ClusterConfiguration in step with the manifest (unless --no-kubeadm-config); says what it did,
/// or why it could not, and goes on (the node's change is made either way).
async fn kubeadm_config(node: &Node, args: &NodeArgs, client: Option<&kube::Client>) {
    if args.no_kubeadm_config {
        println!(
            "kubeadm-config: not updated (--no-kubeadm-config); `kubeadm upgrade` will regenerate the manifest without these settings"
        );
        return;
    }
    let Some(client) = client else {
        println!(
            "kubeadm-config: not updated (no API server to reach); run the same command again once it is up"
        );
        return;
    };
    match encrypt::sync_kubeadm_config(node, client).await {
        Ok(encrypt::KubeadmSync::Updated { changes, backup }) => {
            for c in changes {
                println!("kubeadm-config ClusterConfiguration: {c}");
            }
            println!(
                "backup of the previous ClusterConfiguration: {}",
                backup.display()
            );
        }
        Ok(encrypt::KubeadmSync::InSync) => {
            println!("kubeadm-config ClusterConfiguration: already in step with the manifest")
        }
        Ok(encrypt::KubeadmSync::NotKubeadm) => println!(
            "kubeadm-config: no ConfigMap kube-system/kubeadm-config (not a kubeadm cluster); nothing to keep in step"
        ),
        Err(e) => eprintln!(
            "warning: kubeadm-config not updated ({e}); `kubeadm upgrade` would drop the encryption settings from the manifest: run the command again, or add them to ClusterConfiguration apiServer.extraArgs/extraVolumes by hand"
        ),
    }
}

async fn status(args: &NodeArgs, kube: &ConfigFlags, a: &StatusArgs) -> Result<ExitCode> {
    let node = node_for(args, None)?;
    let client = match client(&node, kube).await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::info!("no API server: {e:#}");
            None
        }
    };
    let mut st = encrypt::status(&node, client.as_ref()).await?;
    if client.is_none() && st.api_error.is_none() {
        st.api_error = Some("no kubeconfig or API server reachable".into());
    }
    match a.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&st)?),
        Output::Table => print_status(&st),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(st: &Status) {
    let mut t = Table::new();
    t.load_style(presets::NOTHING);
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    t.add_row(vec!["Manifest", &st.manifest]);
    t.add_row(vec![
        "Encryption config",
        st.config
            .as_deref()
            .unwrap_or("(not set: encryption at rest is off)"),
    ]);
    if let Some(f) = &st.config_file {
        t.add_row(vec!["Config file on this node", f]);
    }
    if let Some(h) = &st.config_hash {
        t.add_row(vec!["Config sha256", h]);
    }
    t.add_row(vec!["Automatic reload", yes_no(st.automatic_reload)]);
    if let Some(e) = &st.config_error {
        t.add_row(vec!["Config error", e]);
    }
    if let Some(r) = &st.rotation {
        let done: Vec<&str> = r.done.iter().map(|p| p.as_str()).collect();
        let next = r.next().map(|p| p.as_str()).unwrap_or("-");
        t.add_row(vec![
            format!("{:?} in progress", r.operation),
            format!("done: [{}], next: {next}", done.join(", ")),
        ]);
    }
    for b in &st.retired_key_backups {
        t.add_row(vec![
            "Backup with retired keys".to_string(),
            format!(
                "{} holds {} (no longer in the config; delete it once no etcd backup needs the key)",
                b.path.display(),
                b.keys.join(", ")
            ),
        ]);
    }
    if let Some(k) = &st.kubeadm_config {
        t.add_row(vec!["kubeadm-config", k]);
    }
    for d in &st.drift {
        t.add_row(vec!["Drift", d]);
    }
    println!("{t}");
    if !st.resources.is_empty() {
        let mut r = Table::new();
        r.load_style(presets::UTF8_FULL_CONDENSED);
        r.set_header(vec!["RESOURCES", "PROVIDERS (first writes; keys in order)"]);
        for rs in &st.resources {
            r.add_row(vec![rs.resources.join(","), rs.providers.join(", ")]);
        }
        println!("{r}");
    }
    match (&st.mirror_pods, &st.api_error) {
        (Some(pods), _) => {
            let mut p = Table::new();
            p.load_style(presets::UTF8_FULL_CONDENSED);
            p.set_header(vec![
                "POD",
                "NODE",
                "READY",
                "ENCRYPTION CONFIG",
                "AUTO RELOAD",
                "CONFIG SHA256 (annotation)",
            ]);
            for pod in pods {
                p.add_row(vec![
                    pod.name.clone(),
                    pod.node.clone(),
                    format!(
                        "{}{}",
                        yes_no(pod.ready),
                        pod.waiting_reason
                            .as_ref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    ),
                    pod.encryption_provider_config
                        .clone()
                        .unwrap_or_else(|| "-".into()),
                    yes_no(pod.automatic_reload).into(),
                    pod.config_hash.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            println!("{p}");
        }
        (None, Some(e)) => println!("Running API server: unknown ({e})"),
        (None, None) => {}
    }
    match (&st.storage, &st.etcd_error) {
        (Some(rows), _) => {
            let mut s = Table::new();
            s.load_style(presets::UTF8_FULL_CONDENSED);
            s.set_header(vec!["RESOURCE", "STORED AS", "KEY", "OBJECTS"]);
            for r in rows {
                s.add_row(vec![
                    r.resource.clone(),
                    r.storage.clone(),
                    r.key.clone().unwrap_or_else(|| "-".into()),
                    r.count.to_string(),
                ]);
            }
            println!("{s}");
        }
        (None, Some(e)) => println!("Objects in etcd: unknown ({e})"),
        (None, None) => {}
    }
}

async fn phases(
    args: &NodeArgs,
    kube: &ConfigFlags,
    a: &PhaseArgs,
    keep_backups: Option<bool>,
) -> Result<ExitCode> {
    let rotate = keep_backups.is_some();
    let m = atrest_core::manifest::Manifest::load(
        &Node::new(&args.root, &args.manifest, "/").manifest_file(),
    )?;
    let node = node_for(args, m.encryption_provider_config())?;
    let client = client(&node, kube).await?;
    let opts = RotateOptions {
        local_server: local_client(&node, kube, &m).await,
        phase: a.phase,
        timeout: args.timeout,
        concurrency: a.concurrency,
        keep_backups: keep_backups.unwrap_or(false),
    };
    let state = if rotate {
        encrypt::rotate(&node, &client, &opts, &progress).await?
    } else {
        encrypt::disable(&node, &client, &opts, &progress).await?
    };
    kubeadm_config(&node, args, Some(&client)).await;
    match state.next() {
        None => println!("{:?} complete", state.operation),
        Some(next) => println!(
            "{:?}: phases done on this node: {}; next: --phase {} (HA: first run the same phase on every control-plane node)",
            state.operation,
            state
                .done
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            next.as_str()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
