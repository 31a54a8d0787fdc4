//! What `kubectl reencrypt` prints after a run: the table (kubectl's plain columns; over many namespaces only
//! those that need attention, the rest summed), the JSON document, the closing lines on stderr and the exit
//! status (0 nothing failed, 2 failures or objects still stale, 130 interrupted).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Counts, NamespaceReport, NamespaceStatus, Report};
use crate::cli::Table;
use crate::scan::verify::Verification;

/// Namespace rows the tables show before summing the rest (a screenful with the header and totals).
pub const SCREEN_ROWS: usize = 20;

/// Failures listed on stderr; `-o json` has them all.
const FAILURES_SHOWN: usize = 20;

/// A namespace as the tables show it: `(cluster)` for cluster-scoped objects.
pub fn display_namespace(ns: &str) -> &str {
    if ns.is_empty() { "(cluster)" } else { ns }
}

fn status_text(s: &NamespaceStatus) -> &'static str {
    match s {
        NamespaceStatus::Done => "done",
        NamespaceStatus::Skipped => "skipped (resumed)",
        NamespaceStatus::Failed => "failed",
        NamespaceStatus::Incomplete => "incomplete",
        NamespaceStatus::Listed => "listed (dry run)",
    }
}

/// Rows worth a line of their own: something failed, conflicted or did not finish.
fn needs_attention(row: &NamespaceReport) -> bool {
    row.counts.failed > 0
        || row.counts.conflicts > 0
        || matches!(
            row.status,
            NamespaceStatus::Failed | NamespaceStatus::Incomplete
        )
}

/// The status of several rows summed: the one status they share, else how many have each.
fn summed_status(rows: &[&NamespaceReport]) -> String {
    let mut by: BTreeMap<&'static str, usize> = BTreeMap::new();
    for r in rows {
        *by.entry(status_text(&r.status)).or_default() += 1;
    }
    if by.len() == 1 {
        return by.into_keys().next().unwrap_or_default().to_string();
    }
    by.iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sum_counts(rows: &[&NamespaceReport]) -> Counts {
    let mut c = Counts::default();
    for r in rows {
        c.add(&r.counts);
    }
    c
}

/// A table in kubectl's plain columns with a row per namespace: RESOURCE (with several resources), NAMESPACE,
/// then `columns`.
pub(crate) fn namespace_table(with_resource: bool, columns: &[&str]) -> Table {
    let mut header = Vec::new();
    if with_resource {
        header.push("RESOURCE");
    }
    header.push("NAMESPACE");
    header.extend(columns);
    Table::new(header)
}

/// The run's table, rendered once every row is added.
struct RunTable {
    table: Table,
    with_resource: bool,
}

impl RunTable {
    fn new(with_resource: bool) -> Self {
        let columns = [
            "STATUS",
            "LISTED",
            "REWRITTEN",
            "CURRENT",
            "GONE",
            "CONFLICTS",
            "FAILED",
        ];
        let table = namespace_table(with_resource, &columns);
        RunTable {
            table,
            with_resource,
        }
    }

    fn add(&mut self, resource: &str, namespace: &str, status: &str, c: &Counts) {
        let num = |n: u64| n.to_string();
        let mut cells = Vec::new();
        if self.with_resource {
            cells.push(resource.to_string());
        }
        cells.push(namespace.to_string());
        cells.push(status.to_string());
        cells.extend([
            num(c.listed),
            num(c.rewritten),
            num(c.current),
            num(c.gone),
            num(c.conflicts),
            num(c.failed),
        ]);
        self.table.row(cells);
    }

    fn add_row(&mut self, row: &NamespaceReport) {
        self.add(
            &row.resource,
            display_namespace(&row.namespace),
            status_text(&row.status),
            &row.counts,
        );
    }

    /// `rows` of `resource` summed in one line labelled `label`.
    fn add_sum(&mut self, resource: &str, label: &str, rows: &[&NamespaceReport]) {
        self.add(resource, label, &summed_status(rows), &sum_counts(rows));
    }

    /// One resource's namespaces that need attention (while `budget` lasts, the rest summed) and its total;
    /// returns how many of its namespaces got no row of their own.
    fn add_resource_summary(
        &mut self,
        resource: &str,
        rows: &[&NamespaceReport],
        budget: &mut usize,
    ) -> usize {
        let attention: Vec<&NamespaceReport> = rows
            .iter()
            .copied()
            .filter(|r| needs_attention(r))
            .collect();
        let shown = attention.len().min(*budget);
        *budget -= shown;
        for row in &attention[..shown] {
            self.add_row(row);
        }
        let rest = &attention[shown..];
        if !rest.is_empty() {
            let label = format!("({} more with conflicts or failures)", rest.len());
            self.add_sum(resource, &label, rest);
        }
        self.add_sum(resource, &format!("(all {} namespaces)", rows.len()), rows);
        rows.len() - shown
    }
}

/// The table: every namespace when they fit a screen (or `wide`); otherwise, per resource, the namespaces with
/// conflicts or failures (at most [`SCREEN_ROWS`], the rest of them summed in one line) and the resource's total.
pub fn render_table(report: &Report, with_resource: bool, wide: bool) -> String {
    let mut table = RunTable::new(with_resource);
    let summarize = !wide && report.namespaces.len() > SCREEN_ROWS;
    let mut footnote = None;
    if !summarize {
        for row in &report.namespaces {
            table.add_row(row);
        }
    } else {
        let mut budget = SCREEN_ROWS;
        let mut hidden = 0usize;
        let mut resources: Vec<&str> = report
            .namespaces
            .iter()
            .map(|r| r.resource.as_str())
            .collect();
        resources.dedup();
        for resource in resources {
            let rows: Vec<&NamespaceReport> = report
                .namespaces
                .iter()
                .filter(|r| r.resource == resource)
                .collect();
            hidden += table.add_resource_summary(resource, &rows, &mut budget);
        }
        footnote = Some(format!(
            "{} namespaces; rows without conflicts or failures are summed ({hidden} not shown): -o wide shows every namespace, -o json everything\n",
            report.namespaces.len()
        ));
    }
    table.add(
        "",
        "TOTAL",
        &format!("{:.1}s", report.elapsed_seconds),
        &report.totals,
    );
    let mut out = format!("{}\n", table.table);
    if let Some(f) = footnote {
        out.push_str(&f);
    }
    out
}

/// `-o json`'s one document: the report's fields, then the verification under `verify`.
#[derive(Serialize)]
struct JsonDocument<'a> {
    #[serde(flatten)]
    report: &'a Report,
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<&'a Verification>,
}

/// Writes everything printed on stdout: the table(s), or with `json` one document (the report, and the
/// verification under `verify`), serialized straight into `out` (a run over thousands of namespaces holds no
/// second copy of the report as a JSON tree or string).
pub fn write(
    out: &mut impl std::io::Write,
    report: &Report,
    verification: Option<&Verification>,
    with_resource: bool,
    output: &str,
) -> std::io::Result<()> {
    if output == "json" {
        let doc = JsonDocument {
            report,
            verify: verification,
        };
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        return out.write_all(b"\n");
    }
    let wide = output == "wide";
    out.write_all(render_table(report, with_resource, wide).as_bytes())?;
    if let Some(ver) = verification {
        out.write_all(crate::scan::verify::render(ver, with_resource, wide).as_bytes())?;
    }
    Ok(())
}

/// The lines for stderr after the table (failures, resumed objects, interruption, dry run, verification) and
/// the exit status.
pub fn closing(report: &Report, verification: Option<&Verification>) -> (Vec<String>, u8) {
    let mut lines = Vec::new();
    for f in report.failures.iter().take(FAILURES_SHOWN) {
        let what = if f.name.is_empty() {
            String::new()
        } else {
            format!("/{}", f.name)
        };
        lines.push(format!(
            "failed: {} {}{what}: {}",
            f.resource,
            display_namespace(&f.namespace),
            f.error
        ));
    }
    if report.failures.len() > FAILURES_SHOWN {
        lines.push(format!(
            "... {} more failures (see -o json)",
            report.totals.failed - FAILURES_SHOWN as u64
        ));
    }
    if report.totals.skipped > 0 {
        lines.push(format!(
            "resumed: {} objects done by a previous run were not sent again",
            report.totals.skipped
        ));
    }
    if report.interrupted {
        if let Some(p) = &report.state_file {
            lines.push(format!(
                "interrupted; progress saved in {p}; run again with --resume to continue"
            ));
        }
        return (lines, 130);
    }
    if report.dry_run {
        lines.push(match verification {
            Some(v) => format!(
                "dry run: {} objects would be sent back; etcd shows {} stored in plaintext or on an old key: \
                 those are the ones the API server would rewrite",
                report.totals.listed, v.totals.stale
            ),
            None => format!(
                "dry run: {} objects would be sent back; the API server rewrites only those stored with an \
                 old key or in plaintext (add --verify and the etcd flags to count them)",
                report.totals.listed
            ),
        });
    } else if let Some(v) = verification
        && v.problems() > 0
    {
        lines.push(format!(
            "verify: {} objects are still stale in etcd (plaintext or an old key) and {} are unreadable",
            v.totals.stale, v.totals.unreadable
        ));
        return (lines, 2);
    }
    (lines, if report.has_failures() { 2 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reencrypt::Failure;

    fn report(namespaces: usize, failing: &[usize], conflicting: &[usize]) -> Report {
        let mut rows = Vec::new();
        let mut totals = Counts::default();
        for i in 0..namespaces {
            let mut counts = Counts {
                listed: 1,
                rewritten: 1,
                ..Counts::default()
            };
            let mut status = NamespaceStatus::Done;
            if failing.contains(&i) {
                counts.rewritten = 0;
                counts.failed = 1;
                status = NamespaceStatus::Failed;
            }
            if conflicting.contains(&i) {
                counts.conflicts = 2;
            }
            totals.add(&counts);
            rows.push(NamespaceReport {
                resource: "secrets".into(),
                namespace: format!("team-{i:04}"),
                status,
                counts,
            });
        }
        Report {
            dry_run: false,
            interrupted: false,
            elapsed_seconds: 1.0,
            totals,
            namespaces: rows,
            failures: Vec::new(),
            notes: Vec::new(),
            state_file: None,
        }
    }

    fn data_lines(table: &str) -> Vec<&str> {
        table.lines().skip(1).collect()
    }

    #[test]
    fn a_screenful_shows_every_namespace() {
        let t = render_table(&report(20, &[], &[]), false, false);
        assert_eq!(data_lines(&t).len(), 21, "{t}");
        assert!(t.contains("team-0019"), "{t}");
    }

    #[test]
    fn many_namespaces_show_only_conflicts_and_failures() {
        let t = render_table(&report(2000, &[7, 1500], &[42]), false, false);
        let lines = data_lines(&t);
        // Three namespaces, the resource's total, TOTAL, the footnote.
        assert_eq!(lines.len(), 6, "{t}");
        for ns in ["team-0007", "team-0042", "team-1500"] {
            assert!(t.contains(ns), "{t}");
        }
        assert!(!t.contains("team-0008"), "{t}");
        let all = lines
            .iter()
            .find(|l| l.contains("(all 2000 namespaces)"))
            .unwrap();
        assert!(all.contains("1998 done, 2 failed"), "{all}");
        assert!(t.contains("-o wide"), "{t}");
        assert!(t.contains("(1997 not shown)"), "{t}");
    }

    #[test]
    fn more_problems_than_a_screen_are_summed_in_one_line() {
        let failing: Vec<usize> = (0..100).map(|i| i * 10).collect();
        let t = render_table(&report(2000, &failing, &[]), false, false);
        let lines = data_lines(&t);
        assert_eq!(lines.len(), SCREEN_ROWS + 4, "{t}");
        let more = lines
            .iter()
            .find(|l| l.contains("(80 more with conflicts or failures)"))
            .unwrap_or_else(|| panic!("{t}"));
        // The 80 summed: each listed 1 and failed 1.
        let nums: Vec<&str> = more.split_whitespace().rev().take(6).collect();
        assert_eq!(nums, ["80", "0", "0", "0", "0", "80"], "{more}");
    }

    #[test]
    fn wide_shows_every_namespace() {
        let t = render_table(&report(2000, &[7], &[]), false, true);
        assert_eq!(data_lines(&t).len(), 2001, "{}", t.len());
    }

    #[test]
    fn closing_lines_and_exit_status() {
        let ok = report(3, &[], &[]);
        assert_eq!(closing(&ok, None), (vec![], 0));

        let mut failed = report(30, &[1], &[]);
        failed.totals.failed = 25;
        failed.failures = (0..25)
            .map(|i| Failure {
                resource: "secrets".into(),
                namespace: if i == 0 { String::new() } else { "a".into() },
                name: if i == 1 {
                    String::new()
                } else {
                    format!("s{i}")
                },
                error: "boom".into(),
            })
            .collect();
        let (lines, code) = closing(&failed, None);
        assert_eq!(code, 2);
        assert_eq!(lines.len(), FAILURES_SHOWN + 1, "{lines:?}");
        assert_eq!(lines[0], "failed: secrets (cluster)/s0: boom");
        assert_eq!(lines[1], "failed: secrets a: boom");
        assert_eq!(lines[FAILURES_SHOWN], "... 5 more failures (see -o json)");

        let mut interrupted = report(2, &[], &[]);
        interrupted.interrupted = true;
        interrupted.totals.skipped = 4;
        interrupted.state_file = Some("/s.json".into());
        let (lines, code) = closing(&interrupted, None);
        assert_eq!(code, 130);
        assert_eq!(
            lines,
            [
                "resumed: 4 objects done by a previous run were not sent again",
                "interrupted; progress saved in /s.json; run again with --resume to continue"
            ]
        );

        let mut dry = report(2, &[], &[]);
        dry.dry_run = true;
        let (lines, code) = closing(&dry, None);
        assert_eq!(code, 0);
        assert!(
            lines[0].starts_with("dry run: 2 objects would be sent back;"),
            "{lines:?}"
        );
    }

    #[test]
    fn json_is_streamed_as_the_report_document() {
        let r = report(30, &[3], &[5]);
        let mut out = Vec::new();
        write(&mut out, &r, None, false, "json").unwrap();
        let text = String::from_utf8(out).unwrap();
        // The same document, field order and layout as the report serialized on its own.
        assert_eq!(
            text,
            format!("{}\n", serde_json::to_string_pretty(&r).unwrap())
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["namespaces"].as_array().unwrap().len(), 30);
        assert!(v.get("verify").is_none());
    }
}
