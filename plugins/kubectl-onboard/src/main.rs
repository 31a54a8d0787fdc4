//! `kubectl onboard`: certificate users with least-privilege access, verified, and offboarding.
//!
//! A thin clap front over `atrest_core::onboard`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use atrest_core::client::{ConfigFlags, parse_request_timeout};
use atrest_core::onboard::{
    self, Access, DEFAULT_TTL, OnboardOptions, RemoveOptions, ResourceRef, SignerChoice,
};
use atrest_core::pki::KeyAlgorithm;
use clap::{Parser, ValueEnum};

/// Onboard a certificate user: key, CSR, approval, kubeconfig, Role + RoleBinding, verification.
///
/// Examples:
///   kubectl onboard john -n marketing
///   kubectl onboard jane -n marketing -g marketing --bind-group marketing --role marketing-readers
///   kubectl onboard john -n marketing --clusterrole view
///   kubectl onboard john -n marketing --signer local --ca-cert /etc/kubernetes/pki/ca.crt --ca-key /etc/kubernetes/pki/ca.key
///   kubectl onboard john -n marketing --remove
///   kubectl onboard --list
///
/// The private key is generated here and never sent anywhere; the kubeconfig (`--out`, default ./USER.kubeconfig)
/// and the key file next to it (USER.key) are written 0600, the certificate as USER.crt. Issuance records
/// (serial, SHA-256 fingerprint, subject, notAfter) are kept in ConfigMaps in kube-system, labelled
/// atrest.io/record=issuance. Exit code 0 on success, 1 on any error (including failed verification).
#[derive(Debug, Parser)]
#[command(name = "kubectl onboard", version, verbatim_doc_comment)]
struct Cli {
    /// The user to onboard (certificate CN; the RBAC subject).
    #[arg(value_name = "USER", required_unless_present = "list")]
    username: Option<String>,

    /// Group for the certificate's O field; repeat for several.
    #[arg(short = 'g', long = "group", value_name = "GROUP")]
    groups: Vec<String>,

    /// Role (and RoleBinding) name to create [default: USER-NAMESPACE].
    #[arg(long, value_name = "NAME", conflicts_with = "clusterrole")]
    role: Option<String>,

    /// Verbs the Role grants (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "get,list,watch")]
    verbs: Vec<String>,

    /// Resources the Role grants: RESOURCE[.GROUP][/SUBRESOURCE], comma separated.
    #[arg(long, value_delimiter = ',', default_value = "pods,secrets")]
    resources: Vec<String>,

    /// Bind this existing ClusterRole (view, edit, ...) in the namespace instead of creating a Role.
    #[arg(long, value_name = "NAME")]
    clusterrole: Option<String>,

    /// Bind this group instead of the user (added to the certificate's groups). Offboarding one member then
    /// means removing the group's access.
    #[arg(long, value_name = "GROUP")]
    bind_group: Option<String>,

    /// Certificate lifetime: e.g. 30d, 12h, 90m (minimum 10m, the API's limit).
    #[arg(long, value_name = "DURATION", value_parser = parse_ttl, default_value = "30d")]
    ttl: Duration,

    /// Private key type.
    #[arg(long, value_name = "TYPE", default_value = "ecdsa-p256", value_parser = parse_key_type)]
    key_type: KeyAlgorithm,

    /// csr: the cluster's CertificateSigningRequest API; local: sign here with --ca-cert/--ca-key.
    #[arg(long, value_enum, default_value_t = SignerKind::Csr)]
    signer: SignerKind,

    /// CA certificate for --signer local (kubeadm: /etc/kubernetes/pki/ca.crt).
    #[arg(long, value_name = "FILE", required_if_eq("signer", "local"))]
    ca_cert: Option<PathBuf>,

    /// CA private key for --signer local (kubeadm: /etc/kubernetes/pki/ca.key).
    #[arg(long, value_name = "FILE", required_if_eq("signer", "local"))]
    ca_key: Option<PathBuf>,

    /// How long to wait for the CSR signer to issue the certificate.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_timeout)]
    timeout: Duration,

    /// Where to write the kubeconfig [default: ./USER.kubeconfig]. USER.key and USER.crt go next to it.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,

    /// Create the namespace if it does not exist.
    #[arg(long)]
    create_namespace: bool,

    /// Check permissions and dry-run every object on the server (?dryRun=All); write nothing, issue nothing.
    #[arg(long)]
    dry_run: bool,

    /// Allow CN/O starting with "system:" and the group "kubeadm:cluster-admins".
    #[arg(long)]
    allow_system_subjects: bool,

    /// Issue a new certificate even if the one in --out is still good.
    #[arg(long)]
    renew: bool,

    /// Offboard USER: delete their atrest-managed RoleBindings and Roles, report certificates still valid.
    #[arg(long, conflicts_with = "list")]
    remove: bool,

    /// With --remove: all namespaces.
    #[arg(short = 'A', long, requires = "remove")]
    all_namespaces: bool,

    /// List the issuance records (of USER, or of everyone).
    #[arg(long)]
    list: bool,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    output: Output,

    #[command(flatten)]
    kube: ConfigFlags,

    #[command(flatten)]
    log: atrest_core::cli::Verbosity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SignerKind {
    Csr,
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

fn parse_key_type(s: &str) -> Result<KeyAlgorithm, String> {
    s.parse::<KeyAlgorithm>().map_err(|e| e.to_string())
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    Ok(parse_request_timeout(s)?.0.unwrap_or(Duration::ZERO))
}

/// `30d`, `2d12h`, or anything `--request-timeout` accepts (`720h`, `90m`, bare seconds).
fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Some((days, rest)) = s.split_once('d') {
        let d: u64 = days
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: use e.g. 30d, 12h, 90m"))?;
        let rest = if rest.is_empty() {
            Duration::ZERO
        } else {
            parse_timeout(rest)
                .map_err(|_| format!("invalid duration {s:?}: use e.g. 30d, 12h, 90m"))?
        };
        return Ok(Duration::from_secs(d * 86_400) + rest);
    }
    parse_timeout(s).map_err(|_| format!("invalid duration {s:?}: use e.g. 30d, 12h, 90m"))
}

fn main() -> ExitCode {
    atrest_core::cli::main(
        &[("username", atrest_core::complete::Source::OnboardedUsers)],
        |c: &Cli| c.log.verbose,
        |cli| async { run(cli).await.map(|()| ExitCode::SUCCESS) },
    )
}

async fn run(cli: Cli) -> Result<()> {
    let (client, resolved) = cli.kube.client().await.context("Error in configuration")?;
    if cli.list {
        let records = onboard::list(&client, cli.username.as_deref()).await?;
        let now = atrest_core::time::unix_now();
        return print(cli.output, &records, &[], |r| {
            onboard::output::render_list(r, now)
        });
    }
    let user = cli
        .username
        .clone()
        .expect("clap requires USER unless --list");
    if cli.remove {
        let opts = RemoveOptions {
            user,
            namespace: if cli.all_namespaces {
                None
            } else {
                Some(resolved.namespace.clone())
            },
            dry_run: cli.dry_run,
            rbac_wait: onboard::verify::RBAC_PROPAGATION_WAIT,
        };
        let report = onboard::remove(&client, &opts).await?;
        return print(cli.output, &report, &report.warnings, |r| {
            onboard::output::render_remove(r)
        });
    }
    let namespace = resolved.namespace.clone();
    let resources = cli
        .resources
        .iter()
        .filter(|r| !r.trim().is_empty())
        .map(|r| ResourceRef::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    let verbs: Vec<String> = cli
        .verbs
        .iter()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect();
    let access = match &cli.clusterrole {
        Some(name) => Access::ClusterRole {
            name: name.clone(),
            verbs,
            resources,
        },
        None => Access::Rules {
            role: cli
                .role
                .clone()
                .unwrap_or_else(|| format!("{user}-{namespace}")),
            verbs,
            resources,
        },
    };
    let signer = match cli.signer {
        SignerKind::Csr => SignerChoice::Csr {
            timeout: cli.timeout,
        },
        SignerKind::Local => SignerChoice::Local {
            ca_cert: cli
                .ca_cert
                .clone()
                .context("--signer local needs --ca-cert")?,
            ca_key: cli
                .ca_key
                .clone()
                .context("--signer local needs --ca-key")?,
        },
    };
    if cli.ttl == DEFAULT_TTL {
        tracing::debug!("using the default TTL of 30 days");
    }
    let out = cli
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{user}.kubeconfig")));
    if out.is_dir() {
        bail!("--out {}: is a directory; give a file name", out.display());
    }
    let opts = OnboardOptions {
        user,
        namespace,
        groups: cli.groups.clone(),
        access,
        bind_group: cli.bind_group.clone(),
        ttl: cli.ttl,
        key_type: cli.key_type,
        signer,
        out,
        create_namespace: cli.create_namespace,
        dry_run: cli.dry_run,
        allow_system_subjects: cli.allow_system_subjects,
        renew: cli.renew,
        rbac_wait: onboard::verify::RBAC_PROPAGATION_WAIT,
    };
    let report = onboard::onboard(&client, &resolved, &opts).await?;
    print(cli.output, &report, &report.warnings, |r| {
        onboard::output::render_onboard(r)
    })
}

/// Prints a report: its warnings on stderr, then `-o json` or the text `render` makes.
fn print<T: serde::Serialize>(
    output: Output,
    report: &T,
    warnings: &[String],
    render: impl FnOnce(&T) -> String,
) -> Result<()> {
    eprint!("{}", onboard::output::warning_lines(warnings));
    let mut out = std::io::stdout().lock();
    if output == Output::Json {
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
    } else {
        out.write_all(render(report).as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl("30d").unwrap(), Duration::from_secs(30 * 86400));
        assert_eq!(parse_ttl("1d12h").unwrap(), Duration::from_secs(36 * 3600));
        assert_eq!(parse_ttl("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_ttl("600").unwrap(), Duration::from_secs(600));
        assert!(parse_ttl("soon").is_err());
        assert!(parse_ttl("xd").is_err());
    }

    #[test]
    fn flags_parse() {
        let c = Cli::try_parse_from([
            "kubectl-onboard",
            "john",
            "-n",
            "marketing",
            "-g",
            "marketing",
            "-g",
            "devs",
            "--verbs",
            "get,list",
            "--ttl",
            "12h",
            "--key-type",
            "rsa-2048",
            "--as",
            "admin",
        ])
        .unwrap();
        assert_eq!(c.username.as_deref(), Some("john"));
        assert_eq!(c.kube.namespace.as_deref(), Some("marketing"));
        assert_eq!(c.groups, vec!["marketing", "devs"]);
        assert_eq!(c.verbs, vec!["get", "list"]);
        assert_eq!(c.resources, vec!["pods", "secrets"]);
        assert_eq!(c.ttl, Duration::from_secs(12 * 3600));
        assert_eq!(c.key_type, KeyAlgorithm::Rsa2048);
        assert_eq!(c.kube.as_user.as_deref(), Some("admin"));
        assert!(Cli::try_parse_from(["kubectl-onboard", "john", "--signer", "local"]).is_err());
        assert!(Cli::try_parse_from(["kubectl-onboard", "--list"]).is_ok());
        assert!(Cli::try_parse_from(["kubectl-onboard"]).is_err());
        assert!(
            Cli::try_parse_from([
                "kubectl-onboard",
                "j",
                "--role",
                "r",
                "--clusterrole",
                "view"
            ])
            .is_err()
        );
    }
}
