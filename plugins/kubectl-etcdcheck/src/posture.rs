//! `kubectl etcdcheck posture`: how well etcd and the kube-apiserver's use of it are secured, as a
//! table of CIS Kubernetes Benchmark checks. A thin front over `atrest_core::posture`.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use atrest_core::cli::Table;
use atrest_core::etcd::parse_duration;
use atrest_core::posture::{self, PostureOptions, Report, Status};
use clap::ValueEnum;

const EXAMPLES: &str = "\
Examples:
  # On a kubeadm control-plane node (as root): manifests, files, and live probes of etcd
  kubectl etcdcheck posture

  # etcd run by systemd on an external etcd host
  kubectl etcdcheck posture --etcd-unit /etc/systemd/system/etcd.service

  # A node's files copied or mounted elsewhere, without touching the network
  kubectl etcdcheck posture --root /mnt/node --skip-probes

  # Machine-readable
  kubectl etcdcheck posture -o json

Exit status: 0 no FAIL (WARNs allowed); 2 at least one FAIL; 1 something could not be checked
(no manifest found, a file unreadable, etcd unreachable) and nothing FAILed.";

/// Check etcd's security posture: TLS and client-certificate flags, the kube-apiserver's etcd and
/// encryption settings, file modes and owners (CIS 1.1.x, 1.2.x, 2.x), and live probes of etcd's
/// endpoints (plain HTTP, no client certificate and a foreign CA must be refused; the served
/// certificate must chain to etcd's CA and not expire within 30 days).
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct PostureArgs {
    /// Node root directory the kubeadm paths are resolved under.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Read etcd's configuration from this systemd unit (ExecStart, Environment, EnvironmentFile)
    /// instead of <root>/etc/kubernetes/manifests/etcd.yaml.
    #[arg(long, value_name = "FILE")]
    pub etcd_unit: Option<PathBuf>,
    /// Probe these etcd client URLs instead of the configured listeners (comma separated).
    #[arg(long, value_delimiter = ',', value_name = "URLS")]
    pub endpoints: Vec<String>,
    /// CA that must have signed etcd's serving certificate [default: the kube-apiserver's
    /// --etcd-cafile, else etcd's --trusted-ca-file].
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate for the probes' positive control [default: the kube-apiserver's
    /// --etcd-certfile].
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Its private key [default: the kube-apiserver's --etcd-keyfile].
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Only read files; do not connect to etcd.
    #[arg(long)]
    pub skip_probes: bool,
    /// Timeout of each network step of a probe, e.g. 500ms, 3s.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = PostureFormat::Table)]
    pub output: PostureFormat,
}

/// Output formats of `posture`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PostureFormat {
    Table,
    Json,
    Yaml,
}

/// Run the checks, print them, and return the exit status (0, 1 or 2; see [`EXAMPLES`]).
pub fn run(a: &PostureArgs) -> Result<u8> {
    let opts = PostureOptions {
        root: a.root.clone(),
        etcd_unit: a.etcd_unit.clone(),
        endpoints: a
            .endpoints
            .iter()
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect(),
        cacert: a.cacert.clone(),
        cert: a.cert.clone(),
        key: a.key.clone(),
        probes: !a.skip_probes,
        timeout: a.timeout,
    };
    let report = posture::run(&opts);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match a.output {
        PostureFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            out.write_all(b"\n")?;
        }
        PostureFormat::Yaml => {
            let text = serde_saphyr::to_string(&report)
                .map_err(|e| anyhow::anyhow!("YAML output: {e}"))?;
            out.write_all(text.as_bytes())?;
        }
        PostureFormat::Table => print_table(&mut out, &report).context("write the table")?,
    }
    out.flush()?;
    drop(out);
    summary(&report);
    Ok(report.exit_code())
}

fn print_table(out: &mut impl Write, r: &Report) -> io::Result<()> {
    if let Some(s) = &r.etcd_source {
        writeln!(out, "etcd: {s}")?;
    }
    if let Some(m) = &r.apiserver_manifest {
        writeln!(out, "kube-apiserver: static pod {m}")?;
    }
    let mut t = Table::new(["CHECK", "RESULT", "CIS", "FOUND", "REMEDIATION"]);
    for c in &r.checks {
        t.row([
            c.check.as_str(),
            c.result.as_str(),
            c.cis.as_deref().unwrap_or("-"),
            c.detail.as_str(),
            c.remediation.as_str(),
        ]);
    }
    writeln!(out, "{t}")
}

fn summary(r: &Report) {
    let n = |s| r.count(s);
    eprintln!(
        "{} checks: {} PASS, {} WARN, {} FAIL, {} could not be checked, {} skipped",
        r.checks.len(),
        n(Status::Pass),
        n(Status::Warn),
        n(Status::Fail),
        n(Status::Error),
        n(Status::Skip)
    );
    for c in r.checks.iter().filter(|c| c.result == Status::Error) {
        eprintln!(
            "could not check {}: {} ({})",
            c.check, c.detail, c.remediation
        );
    }
}
