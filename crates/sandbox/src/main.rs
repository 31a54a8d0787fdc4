//! `atrest-sandbox up`: a single-node kubeadm-like control plane on real etcd, until SIGINT/SIGTERM (atrest's API
//! server, or with `--control-plane real` the real kube-apiserver); `atrest-sandbox k8s`: the real binaries.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use atrest_sandbox::{ControlPlane, Sandbox, SandboxOptions};
use clap::{Args, Parser, Subcommand};

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
        after_help = "Examples:\n  atrest-sandbox up --root /tmp/node1\n  atrest-sandbox up --root /tmp/node2 --control-plane real\n  source /tmp/node1/sandbox.env && kubectl get pods -n kube-system"
    )]
    Up(UpArgs),
    /// Build the real control plane's binaries from the project's Go module (tests/k8s) into the cache unless
    /// they are there, and print one NAME=PATH line per binary: kube-apiserver, kube-controller-manager, etcd,
    /// krew, kms-plugin. Instant when cached; a cold build takes minutes and needs Go 1.24+.
    #[command(
        after_help = "Environment:\n  ATREST_K8S_MODULE  the Go module (default: tests/k8s of this checkout)\n  ATREST_K8S_CACHE   the cache root (default: ${XDG_CACHE_HOME:-~/.cache}/atrest/k8s)\n\nExamples:\n  atrest-sandbox k8s\n  atrest-sandbox k8s | grep ^kube-apiserver="
    )]
    K8s,
}

#[derive(Args)]
struct UpArgs {
    /// The directory standing for the node's `/` (created if missing).
    #[arg(long)]
    root: PathBuf,
    /// Node name (first start only).
    #[arg(long, default_value = "sandbox")]
    node: String,
    /// What runs the control plane: `atrest` (etcd from the machine, atrest's own API server and controllers,
    /// in-process) or `real` (etcd 3.6, kube-apiserver and kube-controller-manager built from tests/k8s, as
    /// processes; built on first use, see `atrest-sandbox k8s`).
    #[arg(long, value_enum, default_value_t = ControlPlane::Atrest)]
    control_plane: ControlPlane,
    /// Kubernetes version to impersonate, 1.27 … 1.33 (first start only; `atrest` control plane only: the real
    /// one is the release tests/k8s pins).
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
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // Builds of the real control plane take minutes: say what runs and how long it took.
                // kube's client logs every failed request as an error; the sandbox retries them while a server
                // starts, and logs itself what stays wrong.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new(
                        "warn,kube_client::client::builder=off,atrest_sandbox::k8s=info",
                    )
                }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
    match cli.command {
        Cmd::K8s => {
            let bins = atrest_sandbox::k8s::ensure()
                .context("could not build the real control plane's binaries")?;
            for (name, path) in bins.all() {
                println!("{name}={}", path.display());
            }
            Ok(())
        }
        Cmd::Up(args) => up(args),
    }
}

fn up(args: UpArgs) -> Result<()> {
    let UpArgs {
        root,
        node,
        control_plane,
        kube_version,
        apiserver_port,
        etcd_port,
        ready_timeout_seconds,
    } = args;
    let opts = SandboxOptions {
        root: root.clone(),
        node,
        kube_version,
        apiserver_port,
        etcd_port,
        join: None,
        control_plane,
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
