//! `kubectl etcdcheck`'s report: items streamed as they are checked (`-o json|yaml`, [`crate::output`]) or a
//! table of objects followed by the counts per storage and key (and per namespace with `-A`); notes for stderr;
//! the exit status (0 nothing wrong, 2 findings).

use std::io::{self, Write};

use super::source::{Source, SourceError};
use super::{Checker, ScanError, ScanItem, ScanRequest, ScanSummary, Scope};
use crate::cli::Table;
use crate::etcd::PageSize;
use crate::output::{Format, List};

/// Scan `req` from `source` and write the report to `out` in `format`; returns the counts.
pub async fn write_report(
    out: &mut impl Write,
    source: &Source,
    req: &ScanRequest,
    checker: &Checker,
    page_size: PageSize,
    format: Format,
) -> Result<ScanSummary, SourceError> {
    let summary = match format {
        Format::Json | Format::Yaml => {
            let mut list = match format {
                Format::Yaml => List::yaml(out),
                _ => List::json(out),
            }
            .map_err(ScanError::Output)?;
            let s = source
                .scan(req, checker, page_size, |i| list.item(i))
                .await?;
            list.finish(&s).map_err(ScanError::Output)?;
            s
        }
        Format::Table => {
            let mut objects = Table::new(["NAMESPACE", "NAME", "STORAGE", "KEY", "STATUS"]);
            let s = source
                .scan(req, checker, page_size, |i| {
                    objects.row(table_row(i));
                    Ok(())
                })
                .await?;
            write_tables(out, &objects, &s, matches!(req.scope, Scope::AllNamespaces))
                .map_err(ScanError::Output)?;
            s
        }
    };
    Ok(summary)
}

/// The NAMESPACE, NAME, STORAGE, KEY, STATUS cells of one item.
fn table_row(item: &ScanItem) -> [String; 5] {
    [
        item.namespace.clone().unwrap_or_default(),
        item.name.clone(),
        item.storage.to_string(),
        item.key_name.clone().unwrap_or_else(|| "-".into()),
        item.status(),
    ]
}

/// The per-object table (when any), then the counts per storage and key, per namespace with `per_namespace`,
/// and the verification totals.
fn write_tables(
    out: &mut impl Write,
    objects: &Table,
    s: &ScanSummary,
    per_namespace: bool,
) -> io::Result<()> {
    if !objects.is_empty() {
        objects.write(out)?;
        writeln!(out)?;
    }
    let mut t = Table::new(["STORAGE", "KEY", "COUNT"]);
    for (storage, n) in &s.by_storage {
        let prefix = format!("{storage}:");
        let mut keys = s
            .by_key
            .iter()
            .filter_map(|(k, n)| k.strip_prefix(&prefix).map(|name| (name, n)))
            .peekable();
        if keys.peek().is_none() {
            t.row([storage.clone(), "-".into(), n.to_string()]);
        }
        for (name, n) in keys {
            t.row([storage.clone(), name.to_string(), n.to_string()]);
        }
    }
    t.row(["TOTAL".to_string(), String::new(), s.total.to_string()]);
    t.write(out)?;
    if per_namespace && !s.by_namespace.is_empty() {
        writeln!(out)?;
        let mut t = Table::new(["NAMESPACE", "TOTAL", "PLAINTEXT", "ENCRYPTED", "FINDINGS"]);
        for (ns, c) in &s.by_namespace {
            let ns = if ns.is_empty() { "<cluster>" } else { ns };
            t.row([
                ns.to_string(),
                c.total.to_string(),
                c.plaintext.to_string(),
                c.encrypted.to_string(),
                c.findings.to_string(),
            ]);
        }
        t.write(out)?;
    }
    writeln!(
        out,
        "\nverified: {}  failed: {}  not verified: {}  findings: {}",
        s.verified, s.failed, s.unverified, s.findings
    )
}

/// What the user should know after the report (for stderr): nothing found, values not verified for want of keys,
/// the findings, plaintext that `--fail-on-plaintext` counts.
pub fn notes(
    req: &ScanRequest,
    s: &ScanSummary,
    has_keys: bool,
    fail_on_plaintext: bool,
) -> Vec<String> {
    let mut notes = Vec::new();
    if s.total == 0 {
        notes.push(format!(
            "No {} found under {}",
            req.resource,
            req.range_start()
        ));
    }
    if !has_keys && s.total > s.plaintext + s.by_storage.get("unknown").copied().unwrap_or(0) {
        notes
            .push("note: encrypted values were not verified: pass --encryption-config FILE".into());
    }
    if s.findings > 0 {
        notes.push(format!(
            "{} finding(s): values that fail verification or cannot be read",
            s.findings
        ));
    }
    if fail_on_plaintext && s.plaintext > 0 {
        notes.push(format!(
            "{} value(s) stored in plaintext (--fail-on-plaintext)",
            s.plaintext
        ));
    }
    notes
}

/// 2 when anything is a finding (or plaintext, with `fail_on_plaintext`), else 0.
pub fn exit_code(s: &ScanSummary, fail_on_plaintext: bool) -> u8 {
    if s.findings > 0 || (fail_on_plaintext && s.plaintext > 0) {
        2
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::StorageKind;

    fn item(ns: Option<&str>, name: &str, storage: StorageKind, key: Option<&str>) -> ScanItem {
        ScanItem {
            key: format!("/registry/secrets/{}/{name}", ns.unwrap_or_default()),
            resource: "secrets".into(),
            namespace: ns.map(Into::into),
            name: name.into(),
            storage,
            encoding: None,
            key_name: key.map(Into::into),
            verified: Some(true),
            error: None,
            stale: false,
            finding: false,
        }
    }

    #[test]
    fn tables_list_objects_then_counts_per_key_and_namespace() {
        let items = [
            item(Some("default"), "demo", StorageKind::Identity, None),
            item(Some("prod"), "db", StorageKind::Aescbc, Some("key1")),
            item(Some("prod"), "api", StorageKind::Aescbc, Some("key2")),
        ];
        let mut objects = Table::new(["NAMESPACE", "NAME", "STORAGE", "KEY", "STATUS"]);
        let mut s = ScanSummary::default();
        for i in &items {
            s.add(i);
            objects.row(table_row(i));
        }
        let mut out = Vec::new();
        write_tables(&mut out, &objects, &s, true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\
NAMESPACE   NAME   STORAGE    KEY    STATUS
default     demo   identity   -      ok
prod        db     aescbc     key1   ok
prod        api    aescbc     key2   ok

STORAGE    KEY    COUNT
aescbc     key1   1
aescbc     key2   1
identity   -      1
TOTAL             3

NAMESPACE   TOTAL   PLAINTEXT   ENCRYPTED   FINDINGS
default     1       1           0           0
prod        2       0           2           0

verified: 3  failed: 0  not verified: 0  findings: 0
"
        );
        assert_eq!(exit_code(&s, false), 0);
        assert_eq!(exit_code(&s, true), 2);
        let req = ScanRequest {
            prefix: "/registry".into(),
            resource: "secrets".into(),
            scope: Scope::AllNamespaces,
        };
        assert_eq!(
            notes(&req, &s, false, true),
            [
                "note: encrypted values were not verified: pass --encryption-config FILE",
                "1 value(s) stored in plaintext (--fail-on-plaintext)"
            ]
        );
    }
}
