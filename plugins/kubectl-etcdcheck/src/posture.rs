//! `kubectl etcdcheck posture`: how well etcd and the kube-apiserver's use of it are secured, as a
//! table of CIS Kubernetes Benchmark checks. A thin front over `atrest_core::posture`.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use atrest_core::client::parse_positive_timeout;
use atrest_core::output::Format;
use atrest_core::posture::{self, PostureOptions, report};

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
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_positive_timeout)]
    pub timeout: Duration,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
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
    let r = posture::run(&opts);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    report::write_report(&mut out, &r, a.output).context("write the report")?;
    out.flush()?;
    drop(out);
    for note in report::notes(&r) {
        eprintln!("{note}");
    }
    Ok(r.exit_code())
}
