//! `kubectl etcdcheck posture`'s output: the checks as a table (after the sources read), JSON or YAML, and the
//! counts and the checks that could not be made, for stderr.

use std::io::{self, Write};

use super::{Report, Status};
use crate::cli::Table;
use crate::output::{Format, yaml_of};

/// Write `r` to `out` in `format`.
pub fn write_report(out: &mut impl Write, r: &Report, format: Format) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, r).map_err(io::Error::other)?;
            out.write_all(b"\n")
        }
        Format::Yaml => out.write_all(yaml_of(r)?.as_bytes()),
        Format::Table => {
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
            t.write(out)
        }
    }
}

/// The counts per result, then each check that could not be made and why (for stderr).
pub fn notes(r: &Report) -> Vec<String> {
    let n = |s| r.count(s);
    let mut notes = vec![format!(
        "{} checks: {} PASS, {} WARN, {} FAIL, {} could not be checked, {} skipped",
        r.checks.len(),
        n(Status::Pass),
        n(Status::Warn),
        n(Status::Fail),
        n(Status::Error),
        n(Status::Skip)
    )];
    notes.extend(
        r.checks
            .iter()
            .filter(|c| c.result == Status::Error)
            .map(|c| {
                format!(
                    "could not check {}: {} ({})",
                    c.check, c.detail, c.remediation
                )
            }),
    );
    notes
}
