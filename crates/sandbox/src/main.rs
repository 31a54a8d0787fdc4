//! `atrest-sandbox up`: a single-node kubeadm-like control plane on real etcd, until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use atrest_sandbox::{Sandbox, SandboxOptions};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "atrest-sandbox",
    version,
    about = "A kubeadm-like control plane on real etcd, for tests and demos"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Lay out the node under --root on first start (kubeadm's files), start etcd, the API server and the
    /// controller-manager, write ROOT/sandbox.env, print `ready` once /readyz answers, run until SIGINT/SIGTERM.
    /// Restarting on an existing root keeps all state.
    #[command(
        after_help = "Examples:\n  atrest-sandbox up --root /tmp/node1\n  source /tmp/node1/sandbox.env && kubectl get pods -n kube-system"
    )]
    Up {
        /// The directory standing for the node's `/` (created if missing).
        #[arg(long)]
        root: PathBuf,
        /// Node name (first start only).
        #[arg(long, default_value = "sandbox")]
        node: String,
        /// Kubernetes version to impersonate, 1.27 … 1.33 (first start only).
        #[arg(long, default_value = "1.32")]
        kube_version: String,
        /// API server port; 0 picks a free port (first start only).
        #[arg(long, default_value_t = 0)]
        apiserver_port: u16,
        /// etcd client port; 0 picks a free port (first start only).
        #[arg(long, default_value_t = 0)]
        etcd_port: u16,
        /// How long to wait for readiness before giving up.
        #[arg(long, default_value = "120")]
        ready_timeout_seconds: u64,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let Cmd::Up {
        root,
        node,
        kube_version,
        apiserver_port,
        etcd_port,
        ready_timeout_seconds,
    } = cli.command;
    let opts = SandboxOptions {
        root: root.clone(),
        node,
        kube_version,
        apiserver_port,
        etcd_port,
        join: None,
    };
    let sandbox = Sandbox::up(opts)
        .with_context(|| format!("could not start the sandbox under {}", root.display()))?;
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stop = signals.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(ready_timeout_seconds);
        // Poll readiness while listening for signals (each check is short; the sandbox runs on its own runtime).
        loop {
            tokio::select! {
                _ = term.recv() => return Ok::<bool, anyhow::Error>(true),
                _ = int.recv() => return Ok(true),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            match sandbox.wait_ready(Duration::ZERO) {
                Ok(()) => break,
                Err(e) if tokio::time::Instant::now() > deadline => {
                    let log = sandbox.layout().log_dir();
                    return Err(anyhow::Error::new(e)
                        .context(format!("etcd's log is under {}", log.display())));
                }
                Err(_) => {}
            }
        }
        println!("ready");
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        Ok(true)
    });
    sandbox.shutdown();
    stop.map(|_| ())
}
