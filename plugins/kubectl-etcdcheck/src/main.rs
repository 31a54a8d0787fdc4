//! `kubectl etcdcheck`: read etcd directly and report, per object, how it is stored and whether it
//! decrypts and verifies. A thin front over `atrest_core::scan`.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use atrest_core::etcd::{DEFAULT_PAGE_SIZE, EtcdArgs, PageSize};
use atrest_core::output::Format;
use atrest_core::scan::{ScanOptions, Source, ViaPodArgs, report};
use clap::Parser;

mod posture;

const EXAMPLES: &str = "\
Examples:
  # Every secret in every namespace, on a kubeadm control-plane node (run as root)
  kubectl etcdcheck -A

  # One secret, decrypting with an explicit EncryptionConfiguration
  kubectl etcdcheck my-secret -n prod --encryption-config /etc/kubernetes/enc/enc.yaml

  # Machine-readable report; exit 2 if any secret is still stored in plaintext
  kubectl etcdcheck -A -o json --fail-on-plaintext

  # Not on the node: run etcdctl inside the etcd pod through the API server (kubectl exec)
  kubectl etcdcheck -A --via-pod --encryption-config ./enc.yaml

  # A node directory copied elsewhere, etcd reached with etcdctl's variables
  ETCDCTL_ENDPOINTS=https://10.0.0.10:2379 kubectl etcdcheck -A --root /mnt/node

Exit status: 0 nothing wrong found; 2 findings (a value fails verification, cannot be read with the
configured keys, is not a value the apiserver writes, or is plaintext with --fail-on-plaintext);
1 could not check (connection, certificates, bad flags).";

/// Report, per object in etcd, how it is stored (identity, aescbc, aesgcm, secretbox, kms, kmsv2)
/// and whether it decrypts and decodes as the object its key names.
///
/// Without -n or -A, the namespace is `default` (as kubectl's own default; the kubeconfig's current
/// namespace does not apply, since etcd is read directly). Nothing is written to etcd; no value is
/// ever printed.
#[derive(Debug, Parser)]
#[command(name = "kubectl etcdcheck", version, after_help = EXAMPLES, disable_help_subcommand = true)]
struct Cli {
    /// Check only the object with this name.
    name: Option<String>,
    /// Check every namespace.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    all_namespaces: bool,
    /// Resource to check, as kubectl names it (`configmaps`, `services`, `deployments.apps`,
    /// `crontabs.stable.example.com`) or by its etcd path segment (`services/specs`); its keys are where
    /// kube-apiserver puts them.
    #[arg(long, default_value = "secrets")]
    resource: String,
    /// The apiserver's --etcd-prefix [default: from the kube-apiserver manifest, else /registry].
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,
    /// EncryptionConfiguration used to decrypt and verify [default: the file named by
    /// --encryption-provider-config in <root>/etc/kubernetes/manifests/kube-apiserver.yaml].
    #[arg(long, value_name = "FILE")]
    encryption_config: Option<PathBuf>,
    /// Ask the KMS v2 plugins named in the encryption configuration (their unix sockets, under --root) to
    /// decrypt the data keys of kms v2 values, so those values are decrypted and verified too. Off by default:
    /// it calls the plugins (and through them the KMS).
    #[arg(long)]
    kms: bool,
    /// Node root directory the kubeadm default paths are resolved under.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Also exit 2 when any value is stored in plaintext (identity).
    #[arg(long)]
    fail_on_plaintext: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Keys per etcd range request.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PAGE_SIZE)]
    page_size: PageSize,
    /// Log each etcd round trip (to stderr; never values).
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(flatten)]
    etcd: EtcdArgs,
    /// `-n` and kubectl's connection flags, for `--via-pod`.
    #[command(flatten)]
    via: ViaPodArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Check etcd's security posture (CIS 1.1.x, 1.2.x, 2.x) and probe its endpoints.
    Posture(posture::PostureArgs),
}

fn main() -> ExitCode {
    atrest_core::cli::main(
        &[(
            "name",
            atrest_core::complete::Source::ObjectNames {
                resource_arg: Some("resource"),
                default_resource: "secrets",
            },
        )],
        |c: &Cli| c.verbose,
        |cli| async { run(cli).await.map(ExitCode::from) },
    )
}

async fn run(cli: Cli) -> Result<u8> {
    if let Some(Command::Posture(args)) = &cli.command {
        return posture::run(args);
    }
    let plan = ScanOptions {
        name: cli.name.clone(),
        namespace: cli.via.kube.namespace.clone(),
        all_namespaces: cli.all_namespaces,
        resource: cli.resource.clone(),
        prefix: cli.prefix.clone(),
        encryption_config: cli.encryption_config.clone(),
        kms: cli.kms,
        root: cli.root.clone(),
    }
    .plan()?;
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    let source = Source::connect(&cli.via, &cli.etcd, &cli.root).await?;
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    let (req, checker) = (&plan.request, &plan.checker);
    let summary = report::write_report(&mut out, &source, req, checker, cli.page_size, cli.output)
        .await
        .context("scan failed")?;
    out.flush()?;
    drop(out);
    for note in report::notes(req, &summary, checker.has_keys(), cli.fail_on_plaintext) {
        eprintln!("{note}");
    }
    Ok(report::exit_code(&summary, cli.fail_on_plaintext))
}
