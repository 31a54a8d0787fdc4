//! `cargo xtask <task>`: the project's tasks, runnable on a fresh Debian machine.
//!
//! xtask itself depends on nothing that needs system packages (no OpenSSL), so it builds first and then installs
//! what the rest of the workspace needs. Nothing in the workspace needs protoc: the gRPC code is generated once
//! (`cargo xtask codegen`) and committed in crates/proto.

mod deps;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <task> [args]

tasks:
  demo [--keep] [--real]
                        walk the seed tutorial with atrest's verbs on a throwaway sandbox (real etcd, our API
                        server, the real kubectl); --real: on the real kube-apiserver, kube-controller-manager
                        and etcd 3.6 (built by `k8s`); --keep leaves the sandbox running until Ctrl-C
  test [ARGS...]        install what the tests need (etcd-server, etcd-client, openssl, kubectl) when
                        missing, build the plugins, run every test of the workspace (nextest); ARGS go to
                        `cargo nextest run`
  codegen               regenerate crates/proto/src/generated/*.rs from crates/proto/proto/*.proto (pure Rust:
                        protox + tonic-prost-build, no protoc); commit the result
  deps                  only install the system packages the build and the tests need
  k8s                   build the real control plane for the tests and `demo --real` from tests/k8s (Go
                        modules: kube-apiserver, kube-controller-manager, etcd 3.6, krew, the KMS v2 test
                        plugin) into a cache keyed by version, once; print NAME=PATH per binary
  sandbox [ARGS...]     run a local sandbox control plane (`atrest-sandbox up`, default --root target/sandbox)
  bench NAME [ARGS...]  run a benchmark: etcdcheck | sandbox | reencrypt | startup (release build); startup
                        [RUNS]: binary sizes and median `--help` start-up of each plugin vs `kubectl version
                        --client`
  dist [--level N]      release build of the four plugins; target/dist/kubectl-<verb>-<target>.tar.gz (binary,
                        kubectl_complete-<verb>, LICENSE), SHA-256s, krew manifests in target/dist/krew/ and
                        krew-manifests/ (commit those)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode> {
    let Some((task, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return Ok(ExitCode::from(2));
    };
    match task.as_str() {
        "test" => test(rest),
        "demo" => demo(rest),
        "codegen" => {
            // The generator is an example of atrest-proto, so its dependencies are built only here and for
            // the crate's own staleness test, never for a plugin.
            status(cargo().args([
                "run",
                "--quiet",
                "--locked",
                "-p",
                "atrest-proto",
                "--example",
                "codegen",
            ]))?;
            Ok(ExitCode::SUCCESS)
        }
        "deps" => {
            deps::ensure_all()?;
            Ok(ExitCode::SUCCESS)
        }
        "k8s" => k8s(rest),
        "sandbox" => sandbox(rest),
        "bench" => bench(rest),
        "dist" => dist(rest),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => {
            eprint!("xtask: unknown task {other:?}\n\n{USAGE}");
            Ok(ExitCode::from(2))
        }
    }
}

/// The workspace root (the parent of `crates/xtask`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/xtask sits two levels below the workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// Runs a command, failing with its command line when it does not exit 0.
fn status(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: $ {shown}");
    let st = cmd
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !st.success() {
        bail!("{shown} failed ({st})");
    }
    Ok(())
}

fn test(rest: &[String]) -> Result<ExitCode> {
    deps::ensure_all()?;
    deps::ensure_test()?;
    // The end-to-end tests run the plugin binaries, so build them first (same target dir, same profile).
    status(cargo().args(["build", "--workspace", "--bins", "--locked"]))?;
    // The real-control-plane tests find these in the cache; building them here (minutes when cold) keeps that
    // out of the tests' time limits and shows its progress.
    if k8s(&[])? != ExitCode::SUCCESS {
        bail!("building the real control plane (cargo xtask k8s) failed");
    }
    if deps::have("cargo-nextest") || has_cargo_subcommand("nextest") {
        let st = cargo()
            .args([
                "nextest",
                "run",
                "--workspace",
                "--locked",
                "--no-fail-fast",
            ])
            .args(rest)
            .status()
            .context("could not run cargo nextest")?;
        return Ok(exit_code(st));
    }
    eprintln!("xtask: cargo-nextest not found; falling back to cargo test");
    let st = cargo()
        .args(["test", "--workspace", "--locked", "--no-fail-fast"])
        .args(rest)
        .status()
        .context("could not run cargo test")?;
    Ok(exit_code(st))
}

fn demo(rest: &[String]) -> Result<ExitCode> {
    deps::ensure_all()?;
    status(cargo().args(["build", "--quiet", "--workspace", "--bins", "--locked"]))?;
    if rest.iter().any(|a| a == "--real") && k8s(&[])? != ExitCode::SUCCESS {
        bail!("building the real control plane (cargo xtask k8s) failed");
    }
    run_bin("atrest-devtools", "atrest-demo", false, &os_args(rest))
}

/// `k8s`: the real control plane's binaries, built once into the cache by `atrest-sandbox k8s` (the one home of
/// that build, `atrest_sandbox::k8s`), which prints `NAME=PATH` per binary.
fn k8s(rest: &[String]) -> Result<ExitCode> {
    deps::ensure_build()?;
    deps::ensure_go()?;
    let mut args = vec![OsStr::new("k8s")];
    args.extend(os_args(rest));
    run_bin("atrest-sandbox", "atrest-sandbox", false, &args)
}

/// `cargo run --quiet --locked [--release] -p PACKAGE --bin BIN -- ARGS`, its exit code passed on.
fn run_bin(package: &str, bin: &str, release: bool, args: &[&OsStr]) -> Result<ExitCode> {
    let mut cmd = cargo();
    cmd.arg("run");
    if release {
        cmd.arg("--release");
    }
    let st = cmd
        .args(["--quiet", "--locked", "-p", package, "--bin", bin, "--"])
        .args(args)
        .status()
        .with_context(|| format!("could not run {bin}"))?;
    Ok(exit_code(st))
}

/// `args` as what a command takes.
fn os_args(args: &[String]) -> Vec<&OsStr> {
    args.iter().map(OsStr::new).collect()
}

fn has_cargo_subcommand(name: &str) -> bool {
    cargo()
        .args([name, "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn exit_code(st: std::process::ExitStatus) -> ExitCode {
    match st.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::FAILURE,
    }
}

fn sandbox(rest: &[String]) -> Result<ExitCode> {
    deps::ensure_build()?;
    deps::ensure_runtime()?;
    let mut args: Vec<String> = rest.to_vec();
    if !args
        .iter()
        .any(|a| a == "--root" || a.starts_with("--root="))
    {
        let root = workspace_root().join("target").join("sandbox");
        args.push("--root".into());
        args.push(root.display().to_string());
    }
    let root = root_arg(&args).expect("--root was just ensured");
    eprintln!(
        "xtask: starting the sandbox under {root}; when it prints `ready`, in another shell run:\n\n    source {root}/sandbox.env\n    kubectl get pods -n kube-system\n"
    );
    let mut up = vec![OsStr::new("up")];
    up.extend(os_args(&args));
    run_bin("atrest-sandbox", "atrest-sandbox", false, &up)
}

fn root_arg(args: &[String]) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--root" {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix("--root=") {
            return Some(v.to_string());
        }
    }
    None
}

/// The plugins `dist` and `bench startup` build, by verb.
const VERBS: [&str; 4] = ["encrypt", "reencrypt", "onboard", "etcdcheck"];

/// The only target the toolchain here has (`rustup target list --installed`); the archives are named after it.
const DIST_TARGET: &str = "x86_64-unknown-linux-gnu";

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// `cargo build --release` of the four plugins (the release profile: strip, fat LTO, one codegen unit).
fn build_release_plugins() -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--locked"]);
    for verb in VERBS {
        cmd.args(["-p", &format!("kubectl-{verb}")]);
    }
    status(&mut cmd)?;
    Ok(target_dir().join("release"))
}

fn host_triple() -> Result<String> {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .context("could not run rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .context("rustc -vV printed no host line")
}

fn dist(rest: &[String]) -> Result<ExitCode> {
    let host = host_triple()?;
    if host != DIST_TARGET {
        bail!("dist packages {DIST_TARGET} binaries; this toolchain's host is {host}");
    }
    deps::ensure_build()?;
    let bin_dir = build_release_plugins()?;
    let out = target_dir().join("dist");
    let mut args = vec![
        OsStr::new("package"),
        OsStr::new("--update-manifests"),
        OsStr::new("--bin-dir"),
        bin_dir.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ];
    args.extend(os_args(rest));
    run_bin("atrest-devtools", "atrest-dist", false, &args)
}

/// `bench startup [RUNS]`: sizes of the release binaries and the median wall time of `kubectl-<verb> --help`
/// against `kubectl version --client`, measured in the same run, interleaved.
fn bench_startup(rest: &[String]) -> Result<ExitCode> {
    let runs: usize = match rest.first() {
        Some(n) => n
            .parse()
            .context("bench startup [RUNS]: RUNS is a number")?,
        None => 31,
    };
    if runs == 0 {
        bail!("RUNS must be at least 1");
    }
    let bin_dir = build_release_plugins()?;
    let time = |cmd: &mut Command| -> Result<f64> {
        let started = std::time::Instant::now();
        let out = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .with_context(|| format!("could not run {cmd:?}"))?;
        if !out.success() {
            bail!("{cmd:?} failed ({out})");
        }
        Ok(started.elapsed().as_secs_f64() * 1000.0)
    };
    let mut kubectl = Vec::with_capacity(runs);
    let mut plugins: Vec<Vec<f64>> = vec![Vec::with_capacity(runs); VERBS.len()];
    for _ in 0..runs {
        kubectl.push(time(Command::new("kubectl").args(["version", "--client"]))?);
        for (i, verb) in VERBS.iter().enumerate() {
            plugins[i].push(time(
                Command::new(bin_dir.join(format!("kubectl-{verb}"))).arg("--help"),
            )?);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(&mut kubectl);
    println!("start-up, median of {runs} runs (interleaved), release profile");
    println!(
        "{:<22} {:>12} {:>10} {:>10}",
        "command", "size (bytes)", "median ms", "vs kubectl"
    );
    for (i, verb) in VERBS.iter().enumerate() {
        let path = bin_dir.join(format!("kubectl-{verb}"));
        let size = std::fs::metadata(&path)?.len();
        let m = median(&mut plugins[i]);
        println!(
            "{:<22} {size:>12} {m:>10.2} {:>10.3}",
            format!("kubectl-{verb} --help"),
            m / base
        );
    }
    println!(
        "{:<22} {:>12} {base:>10.2} {:>10.3}",
        "kubectl version --client", "", 1.0
    );
    Ok(ExitCode::SUCCESS)
}

fn bench(rest: &[String]) -> Result<ExitCode> {
    let Some(name) = rest.first() else {
        bail!("which benchmark? etcdcheck | sandbox | reencrypt | startup");
    };
    if name == "startup" {
        return bench_startup(&rest[1..]);
    }
    if !["etcdcheck", "sandbox", "reencrypt"].contains(&name.as_str()) {
        bail!("unknown benchmark {name:?}: etcdcheck | sandbox | reencrypt | startup");
    }
    deps::ensure_all()?;
    // Benchmarks measure release builds of the plugins against the baselines in the same run.
    status(cargo().args(["build", "--release", "--workspace", "--bins", "--locked"]))?;
    run_bin("atrest-devtools", "atrest-bench", true, &os_args(rest))
}
