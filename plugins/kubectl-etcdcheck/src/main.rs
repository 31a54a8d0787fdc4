//! `kubectl etcdcheck`: read etcd directly and report, per object, how it is stored and whether it
//! decrypts and verifies. A thin front over `atrest_core::scan`.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use atrest_core::etcd::{DEFAULT_PAGE_SIZE, EtcdArgs};
use atrest_core::scan::{ScanItem, ScanRequest, ScanSummary, Scope};
use clap::{Parser, ValueEnum};

mod keys;
mod manifest;
mod output;
mod posture;
mod via_pod;

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
    /// Namespace to check [default: default].
    #[arg(short = 'n', long, value_name = "NS")]
    namespace: Option<String>,
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
    page_size: i64,
    /// Log each etcd round trip (to stderr; never values).
    #[arg(short = 'v', long, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(flatten)]
    etcd: EtcdArgs,
    #[command(flatten)]
    via: via_pod::ViaPodArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Check etcd's security posture (CIS 1.1.x, 1.2.x, 2.x) and probe its endpoints.
    Posture(posture::PostureArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
    Yaml,
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
    let scope = match (&cli.name, cli.all_namespaces) {
        (Some(_), true) => {
            bail!("a resource cannot be checked by name across all namespaces: drop -A or the NAME")
        }
        (Some(name), false) => Scope::Object {
            namespace: cli.namespace.clone().unwrap_or_else(|| "default".into()),
            name: name.clone(),
        },
        (None, true) => Scope::AllNamespaces,
        (None, false) => {
            Scope::Namespace(cli.namespace.clone().unwrap_or_else(|| "default".into()))
        }
    };
    if cli.page_size < 1 {
        bail!("--page-size must be at least 1");
    }
    let apiserver = manifest::ApiserverFlags::read(&cli.root);
    let prefix = cli
        .prefix
        .clone()
        .or_else(|| apiserver.as_ref().and_then(|a| a.etcd_prefix.clone()))
        .unwrap_or_else(|| "/registry".into());
    let request = ScanRequest {
        prefix,
        resource: atrest_core::scan::StoredResource::parse(&cli.resource).etcd_segment(),
        scope,
    };
    let checker = keys::checker(
        &cli.encryption_config,
        apiserver.as_ref(),
        &cli.root,
        &request.resource,
        cli.kms,
    )?;

    let source = via_pod::Source::connect(&cli.via, &cli.etcd, &cli.root).await?;

    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(256 * 1024, stdout.lock());
    let summary = match cli.output {
        Format::Json => {
            let mut w = output::JsonStream::new(&mut out)?;
            let s = source
                .scan(&request, &checker, cli.page_size, |i| w.item(i))
                .await;
            let s = s.context("scan failed")?;
            w.finish(&s)?;
            s
        }
        Format::Yaml => {
            out.write_all(b"items:\n")?;
            let mut any = false;
            let s = source
                .scan(&request, &checker, cli.page_size, |i| {
                    any = true;
                    output::yaml_item(&mut out, i)
                })
                .await
                .context("scan failed")?;
            output::yaml_finish(&mut out, any, &s)?;
            s
        }
        Format::Table => {
            let mut rows: Vec<[String; 5]> = Vec::new();
            let s = source
                .scan(&request, &checker, cli.page_size, |i: &ScanItem| {
                    rows.push(output::table_row(i));
                    Ok(())
                })
                .await
                .context("scan failed")?;
            output::print_table(
                &mut out,
                &rows,
                &s,
                matches!(request.scope, Scope::AllNamespaces),
            )?;
            s
        }
    };
    out.flush()?;
    drop(out);
    report(&cli, &request, &summary, checker.has_keys());
    Ok(exit_code(&summary, cli.fail_on_plaintext))
}

fn report(cli: &Cli, req: &ScanRequest, s: &ScanSummary, has_keys: bool) {
    if s.total == 0 {
        eprintln!("No {} found under {}", req.resource, req.range_start());
    }
    if !has_keys && s.total > s.plaintext + s.by_storage.get("unknown").copied().unwrap_or(0) {
        eprintln!("note: encrypted values were not verified: pass --encryption-config FILE");
    }
    if s.findings > 0 {
        eprintln!(
            "{} finding(s): values that fail verification or cannot be read",
            s.findings
        );
    }
    if cli.fail_on_plaintext && s.plaintext > 0 {
        eprintln!(
            "{} value(s) stored in plaintext (--fail-on-plaintext)",
            s.plaintext
        );
    }
}

fn exit_code(s: &ScanSummary, fail_on_plaintext: bool) -> u8 {
    if s.findings > 0 || (fail_on_plaintext && s.plaintext > 0) {
        2
    } else {
        0
    }
}

/// Where a kube-apiserver path (as written in its manifest) lives under the node root: kubeadm
/// mounts host paths at the same path in the container.
pub(crate) fn under_root(root: &Path, p: &Path) -> PathBuf {
    match p.strip_prefix("/") {
        Ok(rel) => root.join(rel),
        Err(_) => root.join(p),
    }
}
