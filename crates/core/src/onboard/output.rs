//! What `kubectl onboard` prints: the objects and files changed, the certificate, the SubjectAccessReview matrix
//! (kubectl's plain columns: a row per resource and verb, a column per namespace), offboarding and the issuance
//! records. `-o json` prints the reports themselves.

use std::fmt::Write as _;

use crate::cli::Table;

use super::record::IssuanceRecord;
use super::{OnboardReport, RemoveReport, human_duration};

fn table(header: Vec<String>, rows: Vec<Vec<String>>) -> Table {
    let mut table = Table::new(header);
    for row in rows {
        table.row(row);
    }
    table
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The warnings of a report, one `Warning: ...` line each (for stderr).
pub fn warning_lines(warnings: &[String]) -> String {
    warnings.iter().map(|w| format!("Warning: {w}\n")).collect()
}

/// The access matrix: `(allowed)` per resource, verb and namespace, `(!)` where it is not what was expected.
fn access_table(r: &OnboardReport) -> Table {
    let mut namespaces: Vec<&str> = Vec::new();
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for c in &r.access {
        if !namespaces.contains(&c.namespace.as_str()) {
            namespaces.push(&c.namespace);
        }
        let key = (c.resource.as_str(), c.verb.as_str());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let mut header = strings(&["RESOURCE", "VERB"]);
    header.extend(namespaces.iter().map(|n| n.to_uppercase()));
    let rows = keys
        .into_iter()
        .map(|(res, verb)| {
            let mut row = strings(&[res, verb]);
            row.extend(namespaces.iter().map(|ns| {
                r.access
                    .iter()
                    .find(|c| c.namespace == *ns && c.resource == res && c.verb == verb)
                    .map(|c| {
                        let mark = if c.allowed == c.expected { "" } else { " (!)" };
                        format!("{}{mark}", yes_no(c.allowed))
                    })
                    .unwrap_or_default()
            }));
            row
        })
        .collect();
    table(header, rows)
}

/// `kubectl onboard USER`'s text output.
pub fn render_onboard(r: &OnboardReport) -> String {
    let mut out = String::new();
    for o in &r.objects {
        let _ = writeln!(out, "{}", o.line());
    }
    if let Some(c) = &r.certificate {
        let how = match (&c.csr, c.reused) {
            (_, true) => "kept (still valid)".to_string(),
            (Some(csr), false) => format!("issued via CertificateSigningRequest {csr}"),
            (None, false) => "signed locally".to_string(),
        };
        let _ = writeln!(out, "certificate {}: {how}", c.subject);
        let _ = writeln!(out, "  serial      {}", c.serial);
        let _ = writeln!(out, "  sha256      {}", c.fingerprint_sha256);
        let _ = writeln!(out, "  not after   {}", c.not_after);
    }
    for f in &r.files {
        let backup = f
            .backup
            .as_ref()
            .map(|b| format!(" (previous saved as {})", b.display()))
            .unwrap_or_default();
        let _ = writeln!(out, "{} {}{backup}", f.path.display(), f.change.as_str());
    }
    if !r.access.is_empty() {
        let _ = writeln!(
            out,
            "access of {} (groups {}), by SubjectAccessReview:",
            r.user,
            r.groups.join(",")
        );
        let _ = writeln!(out, "{}", access_table(r));
    }
    if let Some(w) = &r.whoami {
        let _ = writeln!(
            out,
            "whoami with the new kubeconfig: {} (groups {})",
            w.username,
            w.groups.join(",")
        );
    }
    if r.dry_run {
        out.push_str("dry run: nothing was changed and no key was written\n");
    }
    out
}

/// `kubectl onboard USER --remove`'s text output.
pub fn render_remove(r: &RemoveReport) -> String {
    let mut out = String::new();
    if r.objects.is_empty() {
        let _ = writeln!(out, "no atrest-managed bindings for {} found", r.user);
    }
    for o in &r.objects {
        let _ = writeln!(out, "{}", o.line());
    }
    if r.outstanding.is_empty() {
        let _ = writeln!(out, "no valid certificates for {} are on record", r.user);
    } else {
        let _ = writeln!(
            out,
            "certificates for {} that stay valid (Kubernetes cannot revoke them):",
            r.user
        );
        let rows = r
            .outstanding
            .iter()
            .map(|c| {
                vec![
                    c.serial.clone(),
                    c.groups.join(","),
                    c.not_after.clone(),
                    c.expires_in.clone(),
                ]
            })
            .collect();
        let header = strings(&["SERIAL", "GROUPS", "NOT AFTER", "EXPIRES IN"]);
        let _ = writeln!(out, "{}", table(header, rows));
    }
    for s in &r.still_allowed {
        let _ = writeln!(out, "still allowed: {s}");
    }
    out
}

/// `kubectl onboard --list`'s text output; `now` (Unix seconds) tells valid from expired.
pub fn render_list(records: &[IssuanceRecord], now: i64) -> String {
    if records.is_empty() {
        return "No issuance records found.\n".to_string();
    }
    let rows = records
        .iter()
        .map(|r| {
            let status = if r.not_after_unix <= now {
                "expired".to_string()
            } else if r.offboarded_at.is_some() {
                format!(
                    "offboarded, valid {}",
                    human_duration(r.not_after_unix - now)
                )
            } else {
                format!("valid {}", human_duration(r.not_after_unix - now))
            };
            vec![
                r.user.clone(),
                r.groups.join(","),
                r.namespace.clone(),
                r.serial.clone(),
                r.not_after.clone(),
                status,
                r.fingerprint_sha256.clone(),
            ]
        })
        .collect();
    let header = strings(&[
        "USER",
        "GROUPS",
        "NAMESPACE",
        "SERIAL",
        "NOT AFTER",
        "STATUS",
        "SHA256",
    ]);
    format!("{}\n", table(header, rows))
}
