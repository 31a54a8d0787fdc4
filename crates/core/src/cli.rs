//! The one start-up of the four plugins (`kubectl-<verb>`), beside [`ConfigFlags`](crate::client::ConfigFlags): a
//! plugin's `main` is `atrest_core::cli::main(...)` and nothing else.
//!
//! In order:
//! 1. completion: started as `kubectl_complete-<verb>` or with `__complete`, the process only answers cobra's
//!    completion protocol ([`complete::dispatch`]);
//! 2. parsing: a usage error (unknown flag, bad value, missing argument) prints clap's message and exits **1**, as
//!    kubectl does (cobra's `Execute` error → `cmdutil.CheckErr` → `os.Exit(1)`, kubectl
//!    `staging/src/k8s.io/kubectl/pkg/cmd/util/helpers.go` `DefaultBehaviorOnFatal`); clap's own default would be
//!    2, which our verbs keep for findings. `--help` and `--version` exit 0;
//! 3. logging: [`LOG_ENV`] (`ATREST_LOG`, tracing's filter syntax) with `-v` raising the level (see
//!    [`log_filter`]), to stderr, colours only on a terminal;
//! 4. the tokio runtime, then the verb;
//! 5. the exit: 0, the verb's own code (2 = findings), or 1 with `error: ` and the error's causes, each said once
//!    ([`error_chain`]).
//!
//! Tables are kubectl's plain columns: [`Table`].

mod table;

use std::error::Error;
use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;

use crate::complete::{self, Source};

pub use table::Table;

/// The variable that sets the log filter of every plugin (tracing `EnvFilter` syntax: `debug`,
/// `atrest_core=trace,kube=debug`). `-v` raises its default level; without it, `-v` alone decides.
pub const LOG_ENV: &str = "ATREST_LOG";

/// `-v`: more detail on stderr. Flatten it into a plugin's top-level parser.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Verbosity {
    /// More detail on stderr: -v info (atrest's own debug), -vv debug, -vvv trace (ATREST_LOG takes tracing filters).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// The whole start-up of a plugin (see the module doc). `sources` are the plugin's live completion sources,
/// `verbosity` reads its `-v` count, `verb` runs the parsed command line on the runtime and returns the exit code.
pub fn main<C, Fut, E>(
    sources: &[(&str, Source)],
    verbosity: impl FnOnce(&C) -> u8,
    verb: impl FnOnce(C) -> Fut,
) -> ExitCode
where
    C: clap::Parser,
    Fut: Future<Output = Result<ExitCode, E>>,
    E: Into<Box<dyn Error + Send + Sync>>,
{
    if let Some(code) = complete::dispatch(C::command, sources) {
        return code;
    }
    let cli = match C::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    init_logging(verbosity(&cli));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    match runtime.block_on(verb(cli)) {
        Ok(code) => code,
        Err(e) => fail(&*e.into()),
    }
}

/// Prints clap's message (help and version on stdout, usage errors on stderr) and the exit code: 0 for
/// `--help`/`--version`, 1 for a usage error (kubectl's code).
pub fn usage_error(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints `error: ` and the error with its causes, each once, and returns exit code 1.
pub fn fail(e: &(dyn Error + 'static)) -> ExitCode {
    eprintln!("error: {}", error_chain(e));
    ExitCode::FAILURE
}

/// `e` and its causes as one line, `a: b: c`, each said once: a cause whose text the line already holds is left
/// out. Errors of this workspace and of its dependencies differ on whether a message repeats its source (kube-rs's
/// and many `thiserror` messages do, std's and hyper's do not), so the chain is joined here rather than trusted to
/// one convention.
pub fn error_chain(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = c.source();
    }
    out
}

/// The log filter for `verbose` (`-v` count) and the value of [`LOG_ENV`]: the variable's default level (a bare
/// level such as `debug` or `off`; else warn), raised by `-v` to at least info (with atrest's own crates at debug:
/// each etcd round trip, each retry), `-vv` debug, `-vvv` trace; then the variable's per-target directives.
/// Transport crates (hyper, h2, tower) stay at warn below `-vvv`, and kube's request trace below `-vv`, unless the
/// variable names them.
pub fn log_filter(verbose: u8, env: Option<&str>) -> String {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let rank = |l: &str| LEVELS.iter().position(|x| x.eq_ignore_ascii_case(l));
    let mut env_level = None;
    let mut targets = Vec::new();
    for d in env.unwrap_or("").split(',').map(str::trim) {
        match rank(d) {
            Some(r) => env_level = Some(r),
            None if !d.is_empty() => targets.push(d.to_string()),
            None => {}
        }
    }
    let level = match (env_level, verbose) {
        (Some(r), 0) => r,
        (r, v) => r.unwrap_or(2).max(2 + usize::from(v.min(3))),
    };
    let named = |target: &str| {
        targets
            .iter()
            .any(|t| t.split(['=', '[']).next() == Some(target))
    };
    let mut out = vec![LEVELS[level].to_string()];
    if level < 5 {
        for quiet in ["hyper", "hyper_util", "h2", "tower"] {
            if !named(quiet) {
                out.push(format!("{quiet}=warn"));
            }
        }
    }
    if level < 4 && !named("kube_client") {
        // kube's request trace logs each transport failure at ERROR ("failed with error client error (Connect)"):
        // the error the verb prints says it once, with its causes.
        out.push("kube_client::client::builder=off".to_string());
    }
    if verbose > 0 && level < 4 {
        // Targets match by prefix: `kubectl_` is every plugin crate.
        for ours in ["atrest_core", "kubectl_"] {
            if !named(ours) {
                out.push(format!("{ours}=debug"));
            }
        }
    }
    out.extend(targets);
    out.join(",")
}

/// Installs the stderr log subscriber with [`log_filter`]; a variable that does not parse is said once and its
/// valid parts kept.
fn init_logging(verbose: u8) {
    let env = std::env::var(LOG_ENV).ok();
    let filter = log_filter(verbose, env.as_deref());
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(&filter)
        .unwrap_or_else(|e| {
            eprintln!(
                "warning: {LOG_ENV}={:?}: {e}; ignoring what does not parse",
                env.unwrap_or_default()
            );
            tracing_subscriber::EnvFilter::builder().parse_lossy(&filter)
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: logs piped to a file or a test stay plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read the manifest: {source}")]
    struct Repeats {
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("enabling encryption at rest")]
    struct Wraps(#[source] Repeats);

    #[test]
    fn each_cause_once() {
        let io = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = Wraps(Repeats { source: io() });
        assert_eq!(
            error_chain(&e),
            format!(
                "enabling encryption at rest: cannot read the manifest: {}",
                io()
            )
        );
        let e = std::io::Error::other(Repeats { source: io() });
        let text = error_chain(&e);
        assert_eq!(text.matches(&io().to_string()).count(), 1, "{text}");
    }

    #[test]
    fn filter_from_v_and_the_variable() {
        assert_eq!(
            log_filter(0, None),
            "warn,hyper=warn,hyper_util=warn,h2=warn,tower=warn,kube_client::client::builder=off"
        );
        assert_eq!(
            log_filter(1, None),
            "info,hyper=warn,hyper_util=warn,h2=warn,tower=warn,kube_client::client::builder=off,\
             atrest_core=debug,kubectl_=debug"
        );
        assert!(log_filter(2, Some("")).starts_with("debug,"));
        assert_eq!(log_filter(3, None), "trace");
        assert_eq!(log_filter(9, None), "trace");
        // The variable sets the level (also lower than warn); -v raises it.
        assert!(log_filter(0, Some("debug")).starts_with("debug,"));
        assert!(log_filter(0, Some("off")).starts_with("off,"));
        assert!(log_filter(1, Some("off")).starts_with("info,"));
        assert!(log_filter(2, Some("info")).starts_with("debug,"));
        assert!(log_filter(1, Some("debug")).starts_with("debug,"));
        // Per-target directives follow; a named transport crate is left to the variable.
        let f = log_filter(0, Some("atrest_core=trace, hyper=debug"));
        assert!(
            f.starts_with("warn,") && f.ends_with(",atrest_core=trace,hyper=debug"),
            "{f}"
        );
        assert!(!f.contains("hyper=warn"), "{f}");
        assert!(!log_filter(2, None).contains("kube_client"));
        assert!(f.contains("hyper_util=warn"), "{f}");
    }
}
