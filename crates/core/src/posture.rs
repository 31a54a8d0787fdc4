//! etcd security posture of a control-plane node: the checks behind `kubectl etcdcheck posture`.
//!
//! [`run`] reads the node's configuration under a root directory — kubeadm's static pod manifests
//! (`etc/kubernetes/manifests/etcd.yaml`, `kube-apiserver.yaml`) or an etcd systemd unit — checks it
//! against the CIS Kubernetes Benchmark (ids as in CIS 1.12, the benchmark kube-bench applies to
//! Kubernetes 1.32–1.34: `aquasecurity/kube-bench` `cfg/cis-1.12/{master,etcd}.yaml`), checks file modes
//! and owners, and probes the live etcd endpoints over TLS with OpenSSL (plain HTTP, no client
//! certificate, a certificate from a foreign CA, the served certificate). Each result is a [`Check`];
//! [`Report::exit_code`] is 2 on any FAIL, 1 when something could not be checked, else 0.
//!
//! Nothing here writes anything, and no key material is ever put into a result: only paths, modes,
//! flag values, certificate subjects and dates.

mod checks;
mod files;
mod probe;
pub mod report;
mod server;
pub mod unit;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use server::{EtcdServer, EtcdSource, FlagOrigin};

use crate::kubeadm::node::{self, under_root};

/// Served certificates expiring sooner than this are a WARN.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default timeout of each network step of a probe (connect, handshake, read).
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The result of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// As the benchmark (or kubeadm's secure default) asks.
    Pass,
    /// Not a violation, but weaker than recommended (e.g. aescbc, a certificate expiring soon).
    Warn,
    /// A violation.
    Fail,
    /// Could not be checked (file unreadable, endpoint unreachable...); the detail says why.
    Error,
    /// Does not apply here (e.g. no kube-apiserver on an external etcd host).
    Skip,
}

impl Status {
    /// `PASS`, `WARN`, `FAIL`, `ERROR`, `SKIP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Error => "ERROR",
            Status::Skip => "SKIP",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable name, e.g. `etcd-client-cert-auth`, `probe-no-client-cert https://127.0.0.1:2379`.
    pub check: String,
    /// The outcome.
    pub result: Status,
    /// The CIS Kubernetes Benchmark (1.12) id, when the benchmark has one.
    pub cis: Option<String>,
    /// What was found (paths, values, modes); never key material.
    pub detail: String,
    /// One line saying what to do; empty when nothing is to be done.
    pub remediation: String,
}

impl Check {
    fn new(check: impl Into<String>, cis: Option<&str>, result: Status) -> Self {
        Check {
            check: check.into(),
            result,
            cis: cis.map(str::to_string),
            detail: String::new(),
            remediation: String::new(),
        }
    }

    fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = d.into();
        self
    }

    fn fix(mut self, r: impl Into<String>) -> Self {
        if self.result != Status::Pass && self.result != Status::Skip {
            self.remediation = r.into();
        }
        self
    }
}

/// What to check and where.
#[derive(Clone, Debug)]
pub struct PostureOptions {
    /// The node root (`/` on the node itself); manifests and files are looked up under it.
    pub root: PathBuf,
    /// An etcd systemd unit to read instead of the etcd static pod manifest (a host path, not under root).
    pub etcd_unit: Option<PathBuf>,
    /// Client endpoints to probe instead of the ones configured (`https://host:port`).
    pub endpoints: Vec<String>,
    /// CA that must have signed etcd's serving certificate [default: the apiserver's `--etcd-cafile`,
    /// else etcd's `--trusted-ca-file`].
    pub cacert: Option<PathBuf>,
    /// Client certificate for the probes' positive control [default: the apiserver's `--etcd-certfile`].
    pub cert: Option<PathBuf>,
    /// Its key [default: the apiserver's `--etcd-keyfile`].
    pub key: Option<PathBuf>,
    /// Run the live probes.
    pub probes: bool,
    /// Timeout of each network step of a probe.
    pub timeout: Duration,
}

impl PostureOptions {
    /// Defaults for a node rooted at `root`: manifests, probes on, [`DEFAULT_PROBE_TIMEOUT`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        PostureOptions {
            root: root.into(),
            etcd_unit: None,
            endpoints: Vec::new(),
            cacert: None,
            cert: None,
            key: None,
            probes: true,
            timeout: DEFAULT_PROBE_TIMEOUT,
        }
    }
}

/// All results, in a stable order: etcd configuration, kube-apiserver, files, probes.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Where etcd's configuration was read from (`None`: not found).
    pub etcd_source: Option<String>,
    /// The kube-apiserver manifest read (`None`: not found).
    pub apiserver_manifest: Option<String>,
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// How many checks have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.result == status).count()
    }

    /// 2 when any check FAILed, else 1 when any could not be checked (ERROR), else 0.
    pub fn exit_code(&self) -> u8 {
        if self.count(Status::Fail) > 0 {
            2
        } else if self.count(Status::Error) > 0 {
            1
        } else {
            0
        }
    }

    /// The first check whose name starts with `name` (tests and callers use it to look results up).
    pub fn find(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.check.starts_with(name))
    }
}

/// Run every check. Never fails as a whole: what cannot be read becomes an ERROR check saying what
/// to pass instead.
pub fn run(opts: &PostureOptions) -> Report {
    let mut out = Vec::new();
    let etcd = match &opts.etcd_unit {
        Some(unit) => EtcdServer::from_unit(unit, &opts.root),
        None => {
            EtcdServer::from_static_pod(&under_root(&opts.root, node::ETCD_MANIFEST), &opts.root)
        }
    };
    let etcd = match etcd {
        Ok(Some(e)) => Some(e),
        Ok(None) => {
            out.push(
                Check::new("etcd-config", None, Status::Error)
                    .detail(format!(
                        "no etcd static pod manifest at {}",
                        under_root(&opts.root, node::ETCD_MANIFEST).display()
                    ))
                    .fix(
                        "pass --root DIR (the node's root directory) or --etcd-unit FILE \
                         (etcd run by systemd)",
                    ),
            );
            None
        }
        Err(e) => {
            out.push(
                Check::new("etcd-config", None, Status::Error)
                    .detail(e)
                    .fix("fix the file, or pass --etcd-unit FILE / --root DIR"),
            );
            None
        }
    };
    let apiserver_path = under_root(&opts.root, node::KUBE_APISERVER_MANIFEST);
    let apiserver = checks::load_apiserver(&apiserver_path, opts.etcd_unit.is_some(), &mut out);

    if let Some(e) = &etcd {
        checks::etcd_flags(e, apiserver.as_ref(), &opts.root, &mut out);
    }
    if let Some(a) = &apiserver {
        checks::apiserver_flags(a, &opts.root, &mut out);
    }
    files::check_files(
        &opts.root,
        etcd.as_ref(),
        apiserver.as_ref(),
        &apiserver_path,
        &mut out,
    );
    if opts.probes {
        probe::probe_all(opts, etcd.as_ref(), apiserver.as_ref(), &mut out);
    }
    Report {
        etcd_source: etcd.as_ref().map(|e| e.source.to_string()),
        apiserver_manifest: apiserver
            .as_ref()
            .map(|_| apiserver_path.display().to_string()),
        checks: out,
    }
}

#[cfg(test)]
mod tests;
