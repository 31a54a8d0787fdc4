//! `kubectl reencrypt`: rewrite stored objects so they are encrypted with the current key.
//!
//! A thin front over [`atrest_core::reencrypt`]: flags, progress, the final table, exit codes.

mod verify;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use atrest_core::cli::Table;
use atrest_core::client::ConfigFlags;
use atrest_core::reencrypt::{
    self, NamespaceReport, NamespaceStatus, Observer, Options, Outcome, Report, RetryPolicy,
    StateFile, Target,
};
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const AFTER_HELP: &str = "\
Every object is sent back to the API server unchanged, with its resourceVersion. kube-apiserver writes it to etcd again only when it was read through a provider or key other than the first one of the EncryptionConfiguration (the object is \"stale\"); an object already stored with the current key is left alone and keeps its resourceVersion. So a run rewrites exactly what needs it, and a second run rewrites nothing. A concurrent writer always wins: on a conflict the object is read again and the fresh object is sent back.

--dry-run lists every object and counts what would be sent back. It cannot say which of them the server would rewrite: that depends on how each is stored in etcd, and a server-side dry-run PUT (?dryRun=All) never writes, so it tells nothing about staleness. With --verify and the etcd flags, --dry-run also reads etcd and counts the objects still in plaintext or on an old key: exactly those a real run rewrites.

Over all namespaces (the default, or -A) each resource is read with one cluster-wide paginated list, as `kubectl get -A` does, so the time follows the number of objects, not of namespaces. With -n, or when the user may not list across namespaces (said once), namespace after namespace.

Progress is saved in a state file (default ~/.kube/atrest/reencrypt/, keyed by cluster and resources): over all namespaces the last object before which every object is done (at most once a second), with -n each finished namespace. After an interruption (Ctrl-C, kill -9, lost connection) run again with --resume to continue after what is done. Ctrl-C lets in-flight requests finish and saves the state; a second Ctrl-C quits at once.

Exit status: 0 nothing failed, 2 some objects (or listings) failed or --verify found objects not on the current key, 1 could not run, 130 interrupted.

Examples:
  # After enabling or rotating encryption: rewrite every Secret in every namespace
  kubectl reencrypt
  # Secrets and ConfigMaps of one namespace, 32 workers, at most 100 requests/s
  kubectl reencrypt secrets configmaps -n prod --concurrency 32 --qps 100 --burst 200
  # Every resource the EncryptionConfiguration encrypts
  kubectl reencrypt --all-encrypted --encryption-config /etc/kubernetes/enc/enc.yaml
  # Continue an interrupted run
  kubectl reencrypt --resume";

/// Rewrite stored objects (default: Secrets in all namespaces) so they are encrypted with the current key.
#[derive(Debug, Parser)]
#[command(name = "kubectl-reencrypt", bin_name = "kubectl reencrypt", version, after_help = AFTER_HELP)]
struct Cli {
    /// Resources to rewrite: plural, singular, short name or kind, optionally with group (deployments.apps).
    #[arg(value_name = "RESOURCE")]
    resources: Vec<String>,
    /// All namespaces: the default unless -n/--namespace is given (the context's namespace is not used, so no
    /// namespace is forgotten).
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// Rewrite every resource named in the EncryptionConfiguration given with --encryption-config.
    #[arg(long, requires = "encryption_config", conflicts_with = "resources")]
    all_encrypted: bool,
    /// The EncryptionConfiguration file (kube-apiserver's --encryption-provider-config).
    #[arg(long, value_name = "FILE")]
    encryption_config: Option<PathBuf>,
    /// Objects sent back in parallel.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    concurrency: u32,
    /// Objects per list page.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    chunk_size: u32,
    /// Client-side limit of requests per second (0 = unlimited).
    #[arg(long, default_value_t = 0.0)]
    qps: f64,
    /// Requests allowed in a burst above --qps.
    #[arg(long, default_value_t = 10)]
    burst: u32,
    /// Retries per request on 429, 5xx and connection errors (backoff honours Retry-After).
    #[arg(long, default_value_t = 10)]
    max_retries: u32,
    /// Continue from the state file: skip the objects (or namespaces) a previous run finished.
    #[arg(long)]
    resume: bool,
    /// Where progress is kept (default under ~/.kube/atrest/reencrypt/, keyed by cluster and resources).
    #[arg(long, value_name = "FILE")]
    state_file: Option<PathBuf>,
    /// List and count what would be sent back; write nothing (see below).
    #[arg(long)]
    dry_run: bool,
    /// Output format: table (fits a screen: over many namespaces only those with conflicts or failures, the rest
    /// summed), wide (a row for every namespace) or json (everything).
    #[arg(short = 'o', long, default_value = "table", value_parser = ["table", "wide", "json"])]
    output: String,
    /// How objects travel: json; protobuf (built-in types as Kubernetes protobuf, which kube-apiserver decodes and
    /// encodes far faster; custom resources, and servers that refuse it, get JSON); auto (protobuf only where the
    /// server answers in protobuf).
    #[arg(long, default_value = "json", value_parser = ["json", "protobuf", "auto"])]
    wire: String,
    /// Progress display: auto (bar on a terminal, periodic lines otherwise), bar, lines, none.
    #[arg(long, default_value = "auto", value_parser = ["auto", "bar", "lines", "none"])]
    progress: String,
    /// Log more (-v info, -vv debug, -vvv trace).
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(flatten)]
    kube: ConfigFlags,
    #[command(flatten)]
    verify: verify::VerifyArgs,
}

fn main() -> ExitCode {
    atrest_core::cli::main(
        &[("resources", atrest_core::complete::Source::ApiResources)],
        |c: &Cli| c.verbose,
        run,
    )
}

/// The resource names of an EncryptionConfiguration file (loaded and validated like kube-apiserver does).
fn config_resource_names(
    path: &Path,
    cfg: &atrest_core::config::EncryptionConfiguration,
) -> Result<Vec<String>> {
    let names: Vec<String> = cfg
        .resources
        .iter()
        .flat_map(|r| r.resources.iter().cloned())
        .collect();
    if names.is_empty() {
        bail!(
            "{}: resources[].resources names no resource",
            path.display()
        );
    }
    Ok(names)
}

/// Live counters shared by the observer and the progress display.
#[derive(Default)]
struct Live {
    done: AtomicU64,
    rewritten: AtomicU64,
    current: AtomicU64,
    gone: AtomicU64,
    failed: AtomicU64,
    total: AtomicU64,
}

struct Progress {
    live: Arc<Live>,
    bar: Option<ProgressBar>,
}

impl Observer for Progress {
    fn total_hint(&self, objects: u64) {
        self.live.total.store(objects, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(objects);
        }
    }

    fn object(&self, _resource: &str, _namespace: &str, _name: &str, outcome: &Outcome) {
        let c = match outcome {
            Outcome::Rewritten => &self.live.rewritten,
            Outcome::Current => &self.live.current,
            Outcome::Gone => &self.live.gone,
            Outcome::Failed(_) => &self.live.failed,
            Outcome::Interrupted => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
        self.live.done.fetch_add(1, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn namespace(&self, row: &NamespaceReport) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} {}", row.resource, display_ns(&row.namespace)));
        }
    }

    fn notice(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("note: {message}")),
            None => eprintln!("note: {message}"),
        }
    }
}

fn display_ns(ns: &str) -> &str {
    if ns.is_empty() { "(cluster)" } else { ns }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    if cli.all_namespaces && cli.kube.namespace.is_some() {
        bail!("-A/--all-namespaces and -n/--namespace cannot be used together");
    }
    let (client, resolved) = cli
        .kube
        .client()
        .await
        .context("cannot build the API client")?;
    let cluster = resolved.cluster.server.clone();

    let namespace = if cli.all_namespaces {
        None
    } else {
        cli.kube.namespace.clone()
    };
    let enc_config = match &cli.encryption_config {
        Some(p) => Some(atrest_core::config::load(p)?),
        None => None,
    };
    let targets: Vec<Target> = if cli.all_encrypted {
        let path = cli
            .encryption_config
            .as_deref()
            .expect("clap requires --encryption-config");
        let names = config_resource_names(path, enc_config.as_ref().expect("loaded above"))?;
        let discovered = reencrypt::Discovered::fetch(&client).await?;
        let (targets, missing) = discovered.expand_config_resources(&names)?;
        for m in missing {
            tracing::warn!(
                "{}: resource {m:?} is not served by this cluster; skipped",
                path.display()
            );
        }
        if targets.is_empty() {
            bail!(
                "{}: none of its resources is served by this cluster",
                path.display()
            );
        }
        targets
    } else {
        let names = if cli.resources.is_empty() {
            vec!["secrets".to_string()]
        } else {
            cli.resources.clone()
        };
        reencrypt::resolve(&client, &names).await?
    };

    let state = if cli.dry_run {
        None
    } else {
        let path = match &cli.state_file {
            Some(p) => p.clone(),
            None => StateFile::default_path(&cluster, &targets)?,
        };
        Some(if cli.resume {
            let s = StateFile::load(path, &cluster)?;
            if s.state().resources.is_empty() {
                eprintln!(
                    "note: no saved progress in {}; starting from the beginning",
                    s.path().display()
                );
            }
            s
        } else {
            StateFile::new(path, &cluster)
        })
    };

    let mut retry = RetryPolicy {
        max_retries: cli.max_retries,
        ..RetryPolicy::default()
    };
    if let Some(t) = cli.kube.request_timeout.0 {
        retry.request_timeout = t;
    }
    let options = Options {
        namespace,
        concurrency: cli.concurrency as usize,
        page_size: cli.chunk_size,
        qps: (cli.qps > 0.0).then_some(cli.qps),
        burst: cli.burst,
        retry,
        dry_run: cli.dry_run,
        state,
        wire: reencrypt::Wire::parse(&cli.wire).expect("clap checked the value"),
    };

    let show = match cli.progress.as_str() {
        "auto" if std::io::stderr().is_terminal() => "bar",
        "auto" => "lines",
        other => other,
    };
    let live = Arc::new(Live::default());
    let bar = (show == "bar").then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} ETA {eta} {msg}",
            )
            .expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    let observer = Arc::new(Progress {
        live: live.clone(),
        bar: bar.clone(),
    });
    let lines = (show == "lines").then(|| {
        let live = live.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tick.tick().await;
                let done = live.done.load(Ordering::Relaxed);
                let total = live.total.load(Ordering::Relaxed);
                let rate = done as f64 / start.elapsed().as_secs_f64().max(0.001);
                let of = if total > 0 { format!("/{total}") } else { String::new() };
                eprintln!(
                    "reencrypt: {done}{of} objects ({:.0}/s): rewritten {}, current {}, gone {}, failed {}",
                    rate,
                    live.rewritten.load(Ordering::Relaxed),
                    live.current.load(Ordering::Relaxed),
                    live.gone.load(Ordering::Relaxed),
                    live.failed.load(Ordering::Relaxed),
                );
            }
        })
    });

    // Ctrl-C / SIGTERM: stop starting new objects, let in-flight ones finish, save state. Twice: quit now.
    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut presses = 0;
        loop {
            tokio::select! {
                r = tokio::signal::ctrl_c() => { if r.is_err() { return; } }
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            presses += 1;
            if presses == 1 {
                eprintln!(
                    "\ninterrupted: finishing in-flight requests and saving progress (again to quit now)"
                );
                let _ = cancel_tx.send(true);
            } else {
                std::process::exit(130);
            }
        }
    });

    let ns_for_verify = options.namespace.clone();
    let report = reencrypt::run(&client, &targets, options, cancel_rx, observer).await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Some(l) = lines {
        l.abort();
    }
    let verification = if cli.verify.verify && !report.interrupted {
        Some(
            verify::verify(
                &cli.verify,
                &targets,
                ns_for_verify.as_deref(),
                enc_config.as_ref(),
            )
            .await?,
        )
    } else {
        None
    };

    if cli.output == "json" {
        let mut v = serde_json::to_value(&report)?;
        if let (Some(obj), Some(ver)) = (v.as_object_mut(), &verification) {
            obj.insert("verify".into(), serde_json::to_value(ver)?);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!(
            "{}",
            render_table(&report, targets.len() > 1, cli.output == "wide")
        );
        if let Some(ver) = &verification {
            verify::print(ver, targets.len() > 1, cli.output == "wide");
        }
    }
    for f in report.failures.iter().take(20) {
        let what = if f.name.is_empty() {
            String::new()
        } else {
            format!("/{}", f.name)
        };
        eprintln!(
            "failed: {} {}{what}: {}",
            f.resource,
            display_ns(&f.namespace),
            f.error
        );
    }
    if report.failures.len() > 20 {
        eprintln!(
            "... {} more failures (see -o json)",
            report.totals.failed - 20
        );
    }
    if report.totals.skipped > 0 {
        eprintln!(
            "resumed: {} objects done by a previous run were not sent again",
            report.totals.skipped
        );
    }
    if report.interrupted {
        if let Some(p) = &report.state_file {
            eprintln!("interrupted; progress saved in {p}; run again with --resume to continue");
        }
        return Ok(ExitCode::from(130));
    }
    if report.dry_run {
        match &verification {
            Some(v) => eprintln!(
                "dry run: {} objects would be sent back; etcd shows {} stored in plaintext or on an old key: \
                 those are the ones the API server would rewrite",
                report.totals.listed, v.totals.stale
            ),
            None => eprintln!(
                "dry run: {} objects would be sent back; the API server rewrites only those stored with an \
                 old key or in plaintext (add --verify and the etcd flags to count them)",
                report.totals.listed
            ),
        }
    } else if let Some(v) = &verification
        && v.problems() > 0
    {
        eprintln!(
            "verify: {} objects are still stale in etcd (plaintext or an old key) and {} are unreadable",
            v.totals.stale, v.totals.unreadable
        );
        return Ok(ExitCode::from(2));
    }
    Ok(if report.has_failures() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Namespace rows the tables show before summing the rest (a screenful with the header and totals).
pub(crate) const SCREEN_ROWS: usize = 20;

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
fn summed_status<'a>(rows: impl Iterator<Item = &'a NamespaceReport>) -> String {
    let mut by: std::collections::BTreeMap<&'static str, usize> = Default::default();
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

fn sum_counts<'a>(rows: impl Iterator<Item = &'a NamespaceReport>) -> reencrypt::Counts {
    let mut c = reencrypt::Counts::default();
    for r in rows {
        c.listed += r.counts.listed;
        c.rewritten += r.counts.rewritten;
        c.current += r.counts.current;
        c.gone += r.counts.gone;
        c.conflicts += r.counts.conflicts;
        c.failed += r.counts.failed;
        c.skipped += r.counts.skipped;
    }
    c
}

/// The table: every namespace when they fit a screen (or `wide`); otherwise, per resource, the namespaces with
/// conflicts or failures (at most [`SCREEN_ROWS`], the rest of them summed in one line) and the resource's total.
fn render_table(report: &Report, with_resource: bool, wide: bool) -> String {
    let mut header = Vec::new();
    if with_resource {
        header.push("RESOURCE");
    }
    header.extend([
        "NAMESPACE",
        "STATUS",
        "LISTED",
        "REWRITTEN",
        "CURRENT",
        "GONE",
        "CONFLICTS",
        "FAILED",
    ]);
    let mut table = Table::new(header);
    let num = |n: u64| n.to_string();
    let mut add = |resource: &str, namespace: &str, status: &str, c: &reencrypt::Counts| {
        let mut cells = Vec::new();
        if with_resource {
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
        table.row(cells);
    };
    let summarize = !wide && report.namespaces.len() > SCREEN_ROWS;
    let mut footnote = None;
    if !summarize {
        for row in &report.namespaces {
            add(
                &row.resource,
                display_ns(&row.namespace),
                status_text(&row.status),
                &row.counts,
            );
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
            let attention: Vec<&NamespaceReport> = rows
                .iter()
                .copied()
                .filter(|r| needs_attention(r))
                .collect();
            let shown = attention.len().min(budget);
            budget -= shown;
            for row in &attention[..shown] {
                add(
                    &row.resource,
                    display_ns(&row.namespace),
                    status_text(&row.status),
                    &row.counts,
                );
            }
            let rest = &attention[shown..];
            if !rest.is_empty() {
                add(
                    resource,
                    &format!("({} more with conflicts or failures)", rest.len()),
                    &summed_status(rest.iter().copied()),
                    &sum_counts(rest.iter().copied()),
                );
            }
            hidden += rows.len() - shown;
            add(
                resource,
                &format!("(all {} namespaces)", rows.len()),
                &summed_status(rows.iter().copied()),
                &sum_counts(rows.iter().copied()),
            );
        }
        footnote = Some(format!(
            "{} namespaces; rows without conflicts or failures are summed ({hidden} not shown): -o wide shows every namespace, -o json everything\n",
            report.namespaces.len()
        ));
    }
    add(
        "",
        "TOTAL",
        &format!("{:.1}s", report.elapsed_seconds),
        &report.totals,
    );
    // `add` borrows the table mutably; render once it is done.
    let mut out = format!("{table}\n");
    if let Some(f) = footnote {
        out.push_str(&f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reencrypt::Counts;

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
            totals.listed += counts.listed;
            totals.rewritten += counts.rewritten;
            totals.failed += counts.failed;
            totals.conflicts += counts.conflicts;
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
}
