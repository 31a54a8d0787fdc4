//! `kubectl reencrypt`: rewrite stored objects so they are encrypted with the current key.
//!
//! A thin front over [`atrest_core::reencrypt`]: flags, progress, signals; the run, the tables, the closing lines
//! and the exit status are core's.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use atrest_core::client::ConfigFlags;
use atrest_core::reencrypt::{
    self, NamespaceReport, Observer, Options, Outcome, RetryPolicy, Selection, StateFile,
};
use atrest_core::scan::verify::{self, VerifyArgs};
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
    verify: VerifyArgs,
}

fn main() -> ExitCode {
    atrest_core::cli::main(
        &[("resources", atrest_core::complete::Source::ApiResources)],
        |c: &Cli| c.verbose,
        run,
    )
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

impl Live {
    /// The periodic progress line (`--progress lines`).
    fn line(&self, start: Instant) -> String {
        let done = self.done.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        let rate = done as f64 / start.elapsed().as_secs_f64().max(0.001);
        let of = if total > 0 {
            format!("/{total}")
        } else {
            String::new()
        };
        format!(
            "reencrypt: {done}{of} objects ({:.0}/s): rewritten {}, current {}, gone {}, failed {}",
            rate,
            self.rewritten.load(Ordering::Relaxed),
            self.current.load(Ordering::Relaxed),
            self.gone.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// The progress display: a bar on a terminal, a line every 5 s otherwise, or nothing.
struct Progress {
    live: Arc<Live>,
    bar: Option<ProgressBar>,
    lines: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn start(mode: &str) -> Self {
        let show = match mode {
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
        let lines = (show == "lines").then(|| {
            let live = live.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    eprintln!("{}", live.line(start));
                }
            })
        });
        Progress { live, bar, lines }
    }

    fn observer(&self) -> Arc<Observe> {
        Arc::new(Observe {
            live: self.live.clone(),
            bar: self.bar.clone(),
        })
    }

    fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        if let Some(l) = self.lines {
            l.abort();
        }
    }
}

/// The [`Observer`] feeding the progress display.
struct Observe {
    live: Arc<Live>,
    bar: Option<ProgressBar>,
}

impl Observer for Observe {
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
            let ns = reencrypt::report::display_namespace(&row.namespace);
            bar.set_message(format!("{} {ns}", row.resource));
        }
    }

    fn notice(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("note: {message}")),
            None => eprintln!("note: {message}"),
        }
    }
}

/// The run's options from the flags.
fn options(cli: &Cli, state: Option<StateFile>) -> Options {
    let mut retry = RetryPolicy {
        max_retries: cli.max_retries,
        ..RetryPolicy::default()
    };
    if let Some(t) = cli.kube.request_timeout.0 {
        retry.request_timeout = t;
    }
    Options {
        namespace: if cli.all_namespaces {
            None
        } else {
            cli.kube.namespace.clone()
        },
        concurrency: cli.concurrency as usize,
        page_size: cli.chunk_size,
        qps: (cli.qps > 0.0).then_some(cli.qps),
        burst: cli.burst,
        retry,
        dry_run: cli.dry_run,
        state,
        wire: reencrypt::Wire::parse(&cli.wire).expect("clap checked the value"),
    }
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
    let enc_config = match &cli.encryption_config {
        Some(p) => Some(atrest_core::config::load(p)?),
        None => None,
    };
    let selection = match (&cli.encryption_config, &enc_config) {
        (Some(path), Some(config)) if cli.all_encrypted => {
            Selection::EncryptionConfig { path, config }
        }
        _ => Selection::Names(&cli.resources),
    };
    let targets = reencrypt::select(&client, selection).await?;
    let state = if cli.dry_run {
        None
    } else {
        let cluster = &resolved.cluster.server;
        let (s, empty) = StateFile::open(cli.state_file.clone(), cluster, &targets, cli.resume)?;
        if empty {
            eprintln!(
                "note: no saved progress in {}; starting from the beginning",
                s.path().display()
            );
        }
        Some(s)
    };
    let options = options(&cli, state);
    let namespace = options.namespace.clone();

    let progress = Progress::start(&cli.progress);
    let observer = progress.observer();
    let cancel = reencrypt::cancel_on_signals();
    let report = reencrypt::run(&client, &targets, options, cancel, observer).await?;
    progress.finish();
    let verification = if cli.verify.verify && !report.interrupted {
        let ns = namespace.as_deref();
        Some(verify::verify(&cli.verify, &targets, ns, enc_config.as_ref()).await?)
    } else {
        None
    };

    let with_resource = targets.len() > 1;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    reencrypt::report::write(
        &mut out,
        &report,
        verification.as_ref(),
        with_resource,
        &cli.output,
    )?;
    std::io::Write::flush(&mut out)?;
    drop(out);
    let (lines, code) = reencrypt::report::closing(&report, verification.as_ref());
    for line in lines {
        eprintln!("{line}");
    }
    Ok(ExitCode::from(code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn options_follow_the_flags() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "kubectl-reencrypt",
            "-n",
            "prod",
            "--qps",
            "0",
            "--request-timeout",
            "7s",
            "--max-retries",
            "3",
        ])
        .unwrap();
        let o = options(&cli, None);
        assert_eq!(o.namespace.as_deref(), Some("prod"));
        assert_eq!(o.qps, None);
        assert_eq!(o.retry.max_retries, 3);
        assert_eq!(o.retry.request_timeout, Duration::from_secs(7));
        let cli = Cli::try_parse_from(["kubectl-reencrypt", "-A", "--qps", "5"]).unwrap();
        let o = options(&cli, None);
        assert_eq!((o.namespace, o.qps), (None, Some(5.0)));
    }
}
