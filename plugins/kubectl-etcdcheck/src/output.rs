//! Output: streamed JSON and YAML (one item at a time, so memory stays flat), and tables.

use std::io::{self, Write};

use atrest_core::cli::Table;
use atrest_core::scan::{ScanItem, ScanSummary};

/// Streams `{"items":[ ... ],"summary":{...}}`, one item per line.
pub struct JsonStream<'a, W: Write> {
    out: &'a mut W,
    first: bool,
}

impl<'a, W: Write> JsonStream<'a, W> {
    /// Write the opening.
    pub fn new(out: &'a mut W) -> io::Result<Self> {
        out.write_all(b"{\"items\":[")?;
        Ok(Self { out, first: true })
    }

    /// Write one item.
    pub fn item(&mut self, item: &ScanItem) -> io::Result<()> {
        self.out
            .write_all(if self.first { b"\n" } else { b",\n" })?;
        self.first = false;
        serde_json::to_writer(&mut *self.out, item).map_err(io::Error::other)
    }

    /// Close the list and write the summary.
    pub fn finish(self, summary: &ScanSummary) -> io::Result<()> {
        self.out.write_all(b"\n],\"summary\":")?;
        serde_json::to_writer_pretty(&mut *self.out, summary).map_err(io::Error::other)?;
        self.out.write_all(b"}\n")
    }
}

fn yaml_of<T: serde::Serialize>(v: &T) -> io::Result<String> {
    serde_saphyr::to_string(v).map_err(|e| io::Error::other(e.to_string()))
}

/// Write one item as a YAML sequence entry under `items:`.
pub fn yaml_item(out: &mut impl Write, item: &ScanItem) -> io::Result<()> {
    let text = yaml_of(item)?;
    for (i, line) in text.lines().enumerate() {
        out.write_all(if i == 0 { b"- " } else { b"  " })?;
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Close the YAML document with the summary.
pub fn yaml_finish(out: &mut impl Write, any_items: bool, summary: &ScanSummary) -> io::Result<()> {
    if !any_items {
        // `items:` alone would be null; make it an empty list.
        out.write_all(b"  []\n")?;
    }
    out.write_all(b"summary:\n")?;
    for line in yaml_of(summary)?.lines() {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

/// The NAMESPACE, NAME, STORAGE, KEY, STATUS cells of one item.
pub fn table_row(item: &ScanItem) -> [String; 5] {
    [
        item.namespace.clone().unwrap_or_default(),
        item.name.clone(),
        item.storage.to_string(),
        item.key_name.clone().unwrap_or_else(|| "-".into()),
        item.status(),
    ]
}

/// The per-object table, then the summary tables (storage/key counts; per namespace with `-A`).
pub fn print_table(
    out: &mut impl Write,
    rows: &[[String; 5]],
    s: &ScanSummary,
    per_namespace: bool,
) -> io::Result<()> {
    if !rows.is_empty() {
        let mut t = Table::new(["NAMESPACE", "NAME", "STORAGE", "KEY", "STATUS"]);
        for r in rows {
            t.row(r.iter().map(String::as_str));
        }
        writeln!(out, "{t}")?;
        writeln!(out)?;
    }
    let mut t = Table::new(["STORAGE", "KEY", "COUNT"]);
    for (storage, n) in &s.by_storage {
        let keys: Vec<_> = s
            .by_key
            .iter()
            .filter_map(|(k, n)| k.strip_prefix(&format!("{storage}:")).map(|name| (name, n)))
            .collect();
        if keys.is_empty() {
            t.row([storage.clone(), "-".into(), n.to_string()]);
        } else {
            for (name, n) in keys {
                t.row([storage.clone(), name.to_string(), n.to_string()]);
            }
        }
    }
    t.row(["TOTAL".to_string(), String::new(), s.total.to_string()]);
    writeln!(out, "{t}")?;
    if per_namespace && !s.by_namespace.is_empty() {
        writeln!(out)?;
        let mut t = Table::new(["NAMESPACE", "TOTAL", "PLAINTEXT", "ENCRYPTED", "FINDINGS"]);
        for (ns, c) in &s.by_namespace {
            let ns = if ns.is_empty() {
                "<cluster>"
            } else {
                ns.as_str()
            };
            t.row([
                ns.to_string(),
                c.total.to_string(),
                c.plaintext.to_string(),
                c.encrypted.to_string(),
                c.findings.to_string(),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    writeln!(
        out,
        "\nverified: {}  failed: {}  not verified: {}  findings: {}",
        s.verified, s.failed, s.unverified, s.findings
    )
}
