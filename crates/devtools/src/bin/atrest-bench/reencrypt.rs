//! `cargo xtask bench reencrypt`: `kubectl reencrypt -A` against the tutorial pipeline
//! (`kubectl get secrets --all-namespaces -o json | kubectl replace -f -`) on the same sandbox in the same run,
//! with the ceiling: raw etcd puts of the same values at the same concurrency.
//!
//! Two shapes, each on a fresh sandbox (the release `atrest-sandbox`: real etcd + our API server, or with
//! `--control-plane real` etcd 3.6 + the real kube-apiserver and kube-controller-manager): A, N secrets of
//! ~1 KiB in one namespace; B, the same N secrets spread over M namespaces (`--namespaces M`). Each is written in
//! plaintext, then encryption enabled (aescbc first) through the kube-apiserver manifest. Every run starts from
//! the plaintext values (restored by raw etcd puts at the same concurrency: that restore is the ceiling sample),
//! the tools alternate (reencrypt on each `--wire`, the pipeline), each run is checked (every secret encrypted
//! afterwards), and the medians of wall time and peak RSS (`wait4` of each process, in a process of its own:
//! [`crate::rusage`]; for the pipeline the sum of its two kubectl processes, which run at the same time, and the
//! larger one) are printed with the ratios against the targets: ≥ 10× faster and ≤ 1/10 the peak memory of the
//! pipeline, ≥ 70% of the raw-put ceiling, shape B within 1.2× of shape A. Each run also prints the CPU seconds of
//! the tool, the sandbox API server and etcd: on a small machine the three share the cores and the API server and
//! etcd, not the tool, set the pace (on the real control plane kube-controller-manager's CPU seconds are printed
//! too, outside the ceiling). The control-plane ceiling share is the CPU seconds of the API server and etcd
//! divided by the cores, against the tool's wall time: 100% means the control plane was busy on every core for the
//! whole run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use atrest_core::etcd::{EtcdClient, GetOptions};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ObjectMeta, PostParams};

/// A test key (32 bytes), not a secret.
const KEY: &str = "YXRyZXN0LXJlZW5jcnlwdC10ZXN0LWtleS0zMmJ5dGU=";
const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:aescbc:v1:key1:";

struct Args {
    secrets: usize,
    /// Namespaces of shape B (shape A has one).
    namespaces: usize,
    runs: usize,
    concurrency: usize,
    skip_pipeline: bool,
    /// `kubectl reencrypt --wire` values measured.
    wires: Vec<String>,
    /// Use the binaries in this directory instead of building release ones (e.g. `target/debug` for a smoke run).
    bin_dir: Option<PathBuf>,
    /// `atrest-sandbox up --control-plane`: `atrest` (our API server) or `real` (kube-apiserver, etcd 3.6).
    control_plane: String,
    /// The shapes run (`A`, `B`).
    shapes: Vec<String>,
}

fn parse(args: &[String]) -> Result<Args> {
    let mut a = Args {
        secrets: 10_000,
        namespaces: 2_000,
        runs: 3,
        concurrency: 16,
        skip_pipeline: false,
        wires: Vec::new(),
        bin_dir: None,
        control_plane: std::env::var("ATREST_CONTROL_PLANE")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "atrest".into()),
        shapes: Vec::new(),
    };
    let mut it = args.iter().skip_while(|s| *s == "reencrypt");
    while let Some(flag) = it.next() {
        let mut num = |name: &str| -> Result<usize> {
            it.next()
                .with_context(|| format!("{name} needs a value"))?
                .parse()
                .with_context(|| format!("{name} needs a number"))
        };
        match flag.as_str() {
            "--secrets" => a.secrets = num("--secrets")?,
            "--namespaces" => a.namespaces = num("--namespaces")?,
            "--runs" => a.runs = num("--runs")?,
            "--concurrency" => a.concurrency = num("--concurrency")?,
            "--skip-pipeline" => a.skip_pipeline = true,
            "--wire" => {
                let w = it.next().context("--wire needs json or protobuf")?;
                for w in w.split(',') {
                    if !["json", "protobuf"].contains(&w) {
                        bail!(
                            "--wire takes json or protobuf (repeat it or use json,protobuf), not {w:?}"
                        );
                    }
                    if !a.wires.iter().any(|x| x == w) {
                        a.wires.push(w.to_string());
                    }
                }
            }
            "--control-plane" => {
                a.control_plane = it
                    .next()
                    .context("--control-plane needs atrest or real")?
                    .clone()
            }
            "--shape" => {
                for sh in it.next().context("--shape needs A or B")?.split(',') {
                    let sh = sh.to_ascii_uppercase();
                    if !["A", "B"].contains(&sh.as_str()) {
                        bail!("--shape takes A (one namespace) or B (--namespaces), not {sh:?}");
                    }
                    if !a.shapes.contains(&sh) {
                        a.shapes.push(sh);
                    }
                }
            }
            "--bin-dir" => {
                a.bin_dir = Some(PathBuf::from(it.next().context("--bin-dir needs a value")?))
            }
            "-h" | "--help" => {
                println!(
                    "cargo xtask bench reencrypt [--secrets 10000] [--namespaces 2000] [--runs 3] [--concurrency 16] [--wire json|protobuf]... [--shape A|B]... [--control-plane atrest|real] [--skip-pipeline] [--bin-dir DIR]\n\n\
                     Shape A puts every secret in one namespace, shape B spreads them over --namespaces; each shape runs on a fresh\n\
                     sandbox (--shape picks them; default both). --wire picks the reencrypt wires measured (default both).\n\
                     --control-plane: atrest's API server (default, or $ATREST_CONTROL_PLANE) or the real kube-apiserver."
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    if a.secrets == 0 || a.namespaces == 0 || a.runs == 0 || a.concurrency == 0 {
        bail!("--secrets, --namespaces, --runs and --concurrency must be at least 1");
    }
    if a.wires.is_empty() {
        a.wires = vec!["json".into(), "protobuf".into()];
    }
    if !["atrest", "real"].contains(&a.control_plane.as_str()) {
        bail!(
            "--control-plane takes atrest or real, not {:?}",
            a.control_plane
        );
    }
    if a.shapes.is_empty() {
        a.shapes = vec!["A".into(), "B".into()];
    }
    Ok(a)
}

/// The sandbox process; stopped (SIGTERM, then SIGKILL) on drop.
struct SandboxProc {
    child: Child,
    root: PathBuf,
}

impl Drop for SandboxProc {
    fn drop(&mut self) {
        atrest_sandbox::container::terminate(&mut self.child, Duration::from_secs(15));
    }
}

/// Wall time and peak RSS of one tool run.
struct Measured {
    seconds: f64,
    /// Our plugin: its ru_maxrss. The pipeline: the sum of both kubectl processes' ru_maxrss (they run at the
    /// same time, so the tree's real peak lies between the larger one and this sum).
    peak_rss_kib: u64,
    /// The pipeline only: the larger of the two kubectl peaks.
    larger_rss_kib: u64,
    /// CPU seconds (user + system) of the tool's processes.
    cpu: f64,
    status: i32,
}

/// CPU seconds (user + system) a process has used so far, from `/proc/PID/stat` (fields 14 and 15, in clock ticks).
fn proc_cpu(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name (field 2) may hold spaces; the fields after it start after the last ')'.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    (ticks(11) + ticks(12)) / hz
}

/// The control plane's processes. With atrest's API server, the sandbox process itself serves the API (and runs
/// the stand-in kubelet); with the real control plane, kube-apiserver is a child of the sandbox (a static pod run
/// as a process) and the sandbox process is only the kubelet. etcd is a child in both.
#[derive(Clone, Copy)]
struct ControlPlanePids {
    api: u32,
    etcd: Option<u32>,
    /// The real control plane: kube-controller-manager (not counted in the ceiling, reported).
    controller_manager: Option<u32>,
}

/// The children of `parent` whose command name (`/proc/PID/comm`, at most 15 bytes) is `comm`.
fn child_named(parent: u32, comm: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok().and_then(|d| {
        d.flatten().find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            let ppid = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))?
                .trim()
                .parse::<u32>()
                .ok()?;
            let name = std::fs::read_to_string(e.path().join("comm")).ok()?;
            (ppid == parent && name.trim() == comm).then_some(pid)
        })
    })
}

/// The control plane's processes now (kube-apiserver's pid changes when the kubelet restarts it).
fn control_plane_pids(sandbox: u32) -> ControlPlanePids {
    ControlPlanePids {
        api: child_named(sandbox, "kube-apiserver").unwrap_or(sandbox),
        etcd: child_named(sandbox, "etcd"),
        controller_manager: child_named(sandbox, "kube-controller"),
    }
}

/// CPU seconds so far of (the API server, etcd, kube-controller-manager).
fn control_plane_cpu(pids: ControlPlanePids) -> (f64, f64, f64) {
    (
        proc_cpu(pids.api),
        pids.etcd.map(proc_cpu).unwrap_or(0.0),
        pids.controller_manager.map(proc_cpu).unwrap_or(0.0),
    )
}

/// Runs `cmd` to the end: wall time, peak RSS and CPU time (measured in a process of its own, [`crate::rusage`]).
fn measure(cmd: &Command) -> Result<Measured> {
    let started = Instant::now();
    let u = crate::rusage::run(cmd)?;
    Ok(Measured {
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_kib: u.peak_rss_kib,
        larger_rss_kib: u.peak_rss_kib,
        cpu: u.cpu,
        status: u.code,
    })
}

/// Runs the tutorial's `kubectl get secrets --all-namespaces -o json | kubectl replace -f -` as two processes
/// joined by a pipe (no shell), each measured on its own.
fn measure_pipeline(kubectl: &Path, kubeconfig: &Path, home: &Path) -> Result<Measured> {
    let started = Instant::now();
    let mut get = Command::new(kubectl);
    get.args(["get", "secrets", "--all-namespaces", "-o", "json"])
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home);
    let mut get = crate::rusage::spawn(&get, Stdio::null(), Stdio::piped())?;
    let out = get.take_stdout().expect("piped");
    let mut replace = Command::new(kubectl);
    replace
        .args(["replace", "-f", "-"])
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home);
    let replace = crate::rusage::spawn(&replace, Stdio::from(out), Stdio::null())?;
    let g = get.finish()?;
    let r = replace.finish()?;
    Ok(Measured {
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_kib: g.peak_rss_kib + r.peak_rss_kib,
        larger_rss_kib: g.peak_rss_kib.max(r.peak_rss_kib),
        cpu: g.cpu + r.cpu,
        status: if g.code != 0 { g.code } else { r.code },
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn env_file(path: &Path) -> Result<BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("export ") else {
            continue;
        };
        let Some((k, v)) = rest.split_once('=') else {
            continue;
        };
        let v = v
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .unwrap_or(v);
        out.insert(k.to_string(), v.replace("'\\''", "'"));
    }
    Ok(out)
}

/// Entry point: `cargo xtask bench reencrypt [ARGS]`.
pub fn run(args: &[String]) -> Result<()> {
    let args = parse(args)?;
    let root = atrest_devtools::dist::workspace_root();
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let st = Command::new(&cargo)
                .current_dir(&root)
                .args([
                    "build",
                    "--release",
                    "-p",
                    "atrest-sandbox",
                    "-p",
                    "kubectl-reencrypt",
                ])
                .status()
                .context("cannot run cargo build")?;
            if !st.success() {
                bail!("cargo build --release failed");
            }
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target"))
                .join("release")
        }
    };
    let mut shapes = Vec::new();
    if args.shapes.iter().any(|s| s == "A") {
        shapes.push(("A", 1));
    }
    if args.shapes.iter().any(|s| s == "B") && args.namespaces > 1 {
        shapes.push(("B", args.namespaces));
    }
    let mut results = Vec::new();
    for (label, namespaces) in shapes {
        results.push(run_shape(&args, label, namespaces, &bin_dir)?);
    }
    summary(&args, &results);
    Ok(())
}

/// One shape on a fresh sandbox.
fn run_shape(args: &Args, label: &str, namespaces: usize, bin_dir: &Path) -> Result<ShapeResult> {
    let dir = tempfile::Builder::new()
        .prefix("atrest-bench-reencrypt-")
        .tempdir()?;
    let node = dir.path().join("node");

    eprintln!(
        "bench: shape {label}: starting the sandbox ({} control plane) under {}",
        args.control_plane,
        node.display()
    );
    let mut child = Command::new(bin_dir.join("atrest-sandbox"))
        .arg("up")
        .arg("--root")
        .arg(&node)
        .arg("--control-plane")
        .arg(&args.control_plane)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("sandbox.log"))?)
        .spawn()
        .context("cannot start atrest-sandbox")?;
    let stdout = child.stdout.take().expect("piped");
    let sandbox = SandboxProc {
        child,
        root: node.clone(),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.trim() == "ready" {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(180)).map_err(|_| {
        anyhow::anyhow!(
            "the sandbox did not print `ready` within 180 s; see {}",
            dir.path().join("sandbox.log").display()
        )
    })?;
    let env = env_file(&node.join("sandbox.env"))?;
    let kubeconfig = PathBuf::from(
        env.get("KUBECONFIG")
            .context("sandbox.env has no KUBECONFIG")?,
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(bench(
        args,
        label,
        namespaces,
        &sandbox,
        &env,
        &kubeconfig,
        bin_dir,
        dir.path(),
    ));
    drop(sandbox);
    if result.is_err() {
        let log = std::fs::read_to_string(dir.path().join("sandbox.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        eprintln!("bench: last lines of the sandbox log:");
        for l in tail.iter().rev() {
            eprintln!("  {l}");
        }
    }
    result
}

async fn kube_client(kubeconfig: &Path) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await?;
    Ok(kube::Client::try_from(cfg)?)
}

async fn etcd(env: &BTreeMap<String, String>) -> Result<EtcdClient> {
    let read = |k: &str| -> Result<Vec<u8>> {
        let p = env
            .get(k)
            .with_context(|| format!("sandbox.env has no {k}"))?;
        std::fs::read(p).with_context(|| format!("cannot read {p}"))
    };
    let endpoint = env
        .get("ETCDCTL_ENDPOINTS")
        .context("sandbox.env has no ETCDCTL_ENDPOINTS")?;
    // The same transport as the API server's etcd client, so the ceiling is fair (see `etcd_nodelay`).
    crate::sandbox::etcd_nodelay(
        endpoint,
        &read("ETCDCTL_CACERT")?,
        &read("ETCDCTL_CERT")?,
        &read("ETCDCTL_KEY")?,
    )
    .await
}

const PREFIX: &str = "/registry/secrets/bench-";

/// Every bench secret's key and value, read in pages of 1000 (a 10,000-secret range is ~13 MB in one message).
async fn bench_kvs(etcd: &EtcdClient) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut end = PREFIX.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let mut out = Vec::new();
    let mut start = PREFIX.as_bytes().to_vec();
    loop {
        let resp = etcd
            .get(
                start.clone(),
                Some(GetOptions::new().with_range(end.clone()).with_limit(1000)),
            )
            .await?;
        for kv in resp.kvs() {
            out.push((kv.key().to_vec(), kv.value().to_vec()));
        }
        match resp.kvs().last() {
            Some(kv) if resp.more() => {
                start = kv.key().to_vec();
                start.push(0);
            }
            _ => return Ok(out),
        }
    }
}

/// (encrypted, other) counts of the bench secrets in etcd.
async fn storage(etcd: &EtcdClient) -> Result<(usize, usize)> {
    let kvs = bench_kvs(etcd).await?;
    let enc = kvs
        .iter()
        .filter(|(_, v)| v.starts_with(ENCRYPTED_PREFIX))
        .count();
    Ok((enc, kvs.len() - enc))
}

/// Puts `values` back into etcd with `concurrency` clients in flight; returns the seconds taken.
async fn raw_puts(
    etcd: &EtcdClient,
    values: &Arc<Vec<(Vec<u8>, Vec<u8>)>>,
    concurrency: usize,
) -> Result<f64> {
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let kv = etcd.clone();
        let values = values.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((k, v)) = values.get(i) else {
                    return Ok::<_, atrest_core::etcd::EtcdError>(());
                };
                kv.put(k.clone(), v.clone()).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(started.elapsed().as_secs_f64())
}

fn ns_name(n: usize) -> String {
    format!("bench-{n:04}")
}

/// `args.secrets` secrets spread round-robin over `namespaces` namespaces.
async fn seed(client: &kube::Client, args: &Args, namespaces: usize) -> Result<()> {
    let nsapi: Api<Namespace> = Api::all(client.clone());
    let sem = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for n in 0..namespaces {
        let nsapi = nsapi.clone();
        let permit = sem.clone().acquire_owned().await?;
        tasks.push(tokio::spawn(async move {
            let ns = Namespace {
                metadata: ObjectMeta {
                    name: Some(ns_name(n)),
                    ..Default::default()
                },
                ..Default::default()
            };
            let r = nsapi.create(&PostParams::default(), &ns).await;
            drop(permit);
            r.map(|_| ())
        }));
    }
    for t in tasks {
        t.await?.context("create namespace")?;
    }
    let mut tasks = Vec::new();
    for i in 0..args.secrets {
        let api: Api<Secret> = Api::namespaced(client.clone(), &ns_name(i % namespaces));
        let permit = sem.clone().acquire_owned().await?;
        tasks.push(tokio::spawn(async move {
            let mut value = format!("secret-{i:06}-").into_bytes();
            value.resize(1000, b'x');
            let s = Secret {
                metadata: ObjectMeta {
                    name: Some(format!("s-{i:06}")),
                    ..Default::default()
                },
                data: Some(BTreeMap::from([("value".to_string(), ByteString(value))])),
                ..Default::default()
            };
            // Transient connection errors (a new TLS connection refused mid-handshake) are retried.
            let mut attempts = 0;
            let r = loop {
                match api.create(&PostParams::default(), &s).await {
                    Err(kube::Error::Api(e)) => break Err(kube::Error::Api(e)),
                    Err(_) if attempts < 20 => {
                        attempts += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    r => break r,
                }
            };
            drop(permit);
            r.map(|_| ())
        }));
    }
    for t in tasks {
        t.await?.context("create secret")?;
    }
    Ok(())
}

/// Adds an aescbc-first EncryptionConfiguration to the kube-apiserver manifest and waits until new secrets are
/// stored encrypted (the kubelet restarts the API server on the manifest change).
async fn enable_encryption(client_kubeconfig: &Path, node: &Path, etcd: &EtcdClient) -> Result<()> {
    let config = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n      - secrets\n    providers:\n      - aescbc:\n          keys:\n            - name: key1\n              secret: {KEY}\n      - identity: {{}}\n"
    );
    std::fs::write(node.join("etc/kubernetes/pki/bench-enc.yaml"), config)?;
    let manifest = node.join("etc/kubernetes/manifests/kube-apiserver.yaml");
    let text = std::fs::read_to_string(&manifest)?;
    let out = atrest_e2e::bed::with_apiserver_flags(
        &text,
        &["--encryption-provider-config=/etc/kubernetes/pki/bench-enc.yaml"],
    );
    // Atomically, so the kubelet never reads a half-written manifest.
    atrest_core::fsutil::write_atomic(&manifest, out.as_bytes())?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = String::from("no attempt");
    for attempt in 0.. {
        if Instant::now() > deadline {
            bail!(
                "the API server did not come back with encryption enabled within 120 s (last: {last})"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let client = match kube_client(client_kubeconfig).await {
            Ok(c) => c,
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        let api: Api<Secret> = Api::namespaced(client, "default");
        let name = format!("probe-{attempt}");
        let s = Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        if let Err(e) = api.create(&PostParams::default(), &s).await {
            last = e.to_string();
            continue;
        }
        last = format!("{name} stored unencrypted");
        let v = etcd
            .get(format!("/registry/secrets/default/{name}"), None)
            .await?;
        if v.kvs()
            .first()
            .is_some_and(|kv| kv.value().starts_with(ENCRYPTED_PREFIX))
        {
            return Ok(());
        }
    }
    unreachable!("the loop returns or bails")
}

/// The runs of one tool on one shape.
struct ToolRuns {
    tool: String,
    runs: Vec<Measured>,
    /// The control plane's CPU seconds (API server + etcd) during each run.
    control_plane_cpu: Vec<f64>,
}

/// What one shape measured.
struct ShapeResult {
    label: String,
    namespaces: usize,
    tools: Vec<ToolRuns>,
    /// Raw etcd put restores (the ceiling).
    ceiling: Vec<f64>,
}

impl ShapeResult {
    fn tool(&self, name: &str) -> Option<&ToolRuns> {
        self.tools.iter().find(|t| t.tool == name)
    }
}

fn med(v: &[Measured], f: fn(&Measured) -> f64) -> f64 {
    median(v.iter().map(f).collect())
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

/// The control-plane ceiling share of a tool: median over runs of (control-plane CPU seconds / cores) / wall time.
fn ceiling_share(t: &ToolRuns) -> f64 {
    median(
        t.runs
            .iter()
            .zip(&t.control_plane_cpu)
            .map(|(m, cpu)| cpu / cores() / m.seconds)
            .collect(),
    )
}

#[allow(clippy::too_many_arguments)]
async fn bench(
    args: &Args,
    label: &str,
    namespaces: usize,
    sandbox: &SandboxProc,
    env: &BTreeMap<String, String>,
    kubeconfig: &Path,
    bin_dir: &Path,
    scratch: &Path,
) -> Result<ShapeResult> {
    let client = kube_client(kubeconfig).await?;
    let etcd = etcd(env).await?;
    // A kubectl within the supported skew of the server (the real control plane is newer than the built-in
    // client of the machine's kubectl dispatcher).
    let minor: u32 = client
        .apiserver_version()
        .await?
        .minor
        .trim_end_matches('+')
        .parse()
        .context("the server's /version has no numeric minor")?;
    let kubectl = atrest_e2e::run::kubectl_within_skew(minor).unwrap_or_else(|| "kubectl".into());
    eprintln!(
        "bench: shape {label}: creating {} secrets (~1 KiB) in {namespaces} namespaces",
        args.secrets
    );
    seed(&client, args, namespaces).await?;
    let plaintext: Arc<Vec<(Vec<u8>, Vec<u8>)>> = Arc::new(bench_kvs(&etcd).await?);
    if plaintext.len() != args.secrets || plaintext.iter().any(|(_, v)| v.starts_with(b"k8s:enc:"))
    {
        bail!(
            "expected {} plaintext secrets in etcd, found {}",
            args.secrets,
            plaintext.len()
        );
    }
    eprintln!("bench: enabling encryption (aescbc first) in the kube-apiserver manifest");
    enable_encryption(kubeconfig, &sandbox.root, &etcd).await?;

    let mut tools: Vec<String> = args
        .wires
        .iter()
        .map(|w| format!("reencrypt-{w}"))
        .collect();
    if !args.skip_pipeline {
        tools.push("pipeline".into());
    }
    let mut result = ShapeResult {
        label: label.to_string(),
        namespaces,
        tools: tools
            .iter()
            .map(|t| ToolRuns {
                tool: t.clone(),
                runs: Vec::new(),
                control_plane_cpu: Vec::new(),
            })
            .collect(),
        ceiling: Vec::new(),
    };
    for run in 0..args.runs {
        // Alternate the order of the tools.
        let mut order: Vec<usize> = (0..tools.len()).collect();
        if run % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let tool = tools[i].as_str();
            let pids = control_plane_pids(sandbox.child.id());
            let puts_before = control_plane_cpu(pids);
            let secs = raw_puts(&etcd, &plaintext, args.concurrency).await?;
            let puts_etcd_cpu = control_plane_cpu(pids).1 - puts_before.1;
            result.ceiling.push(secs);
            let (enc, _) = storage(&etcd).await?;
            if enc != 0 {
                bail!("restoring plaintext left {enc} encrypted secrets");
            }
            let cpu_before = control_plane_cpu(pids);
            let m = match tool.strip_prefix("reencrypt-") {
                Some(wire) => {
                    let mut cmd = Command::new(bin_dir.join("kubectl-reencrypt"));
                    cmd.args(["-A", "--progress", "none", "-o", "json", "--wire", wire])
                        .arg("--concurrency")
                        .arg(args.concurrency.to_string())
                        .arg("--state-file")
                        .arg(scratch.join("state.json"))
                        .env("KUBECONFIG", kubeconfig);
                    measure(&cmd)?
                }
                None => measure_pipeline(&kubectl, kubeconfig, scratch)?,
            };
            let (enc, other) = storage(&etcd).await?;
            if m.status != 0 || enc != args.secrets {
                bail!(
                    "{tool} run {run}: exit {}, {enc} encrypted and {other} not",
                    m.status
                );
            }
            let cpu_after = control_plane_cpu(pids);
            let (api_cpu, etcd_cpu, kcm_cpu) = (
                cpu_after.0 - cpu_before.0,
                cpu_after.1 - cpu_before.1,
                cpu_after.2 - cpu_before.2,
            );
            let kcm = if pids.controller_manager.is_some() {
                format!(", controller-manager {kcm_cpu:.2}")
            } else {
                String::new()
            };
            eprintln!(
                "bench: shape {label} run {run} {tool:<18} {:>7.2} s  peak RSS {:>7} KiB   CPU s: tool {:.2}, API server {:.2}, etcd {:.2}{kcm}   (raw etcd puts before it: {secs:.2} s, etcd CPU {puts_etcd_cpu:.2} s)",
                m.seconds, m.peak_rss_kib, m.cpu, api_cpu, etcd_cpu,
            );
            result.tools[i].runs.push(m);
            result.tools[i].control_plane_cpu.push(api_cpu + etcd_cpu);
        }
    }

    let ceil_t = median(result.ceiling.clone());
    println!(
        "\nshape {label} ({} control plane): {} secrets (~1 KiB) in {namespaces} namespace{}, concurrency {}, {} runs (medians), {} cores",
        args.control_plane,
        args.secrets,
        if namespaces == 1 { "" } else { "s" },
        args.concurrency,
        args.runs,
        cores()
    );
    for t in &result.tools {
        let secs = med(&t.runs, |m| m.seconds);
        let name = match t.tool.strip_prefix("reencrypt-") {
            Some(w) => format!("kubectl reencrypt -A --wire {w}"),
            None => "get -A -o json | replace".to_string(),
        };
        let rss = if t.tool == "pipeline" {
            format!(
                "peak RSS {:>6.1} MiB (sum of both kubectl; larger one {:.1} MiB)",
                med(&t.runs, |m| m.peak_rss_kib as f64) / 1024.0,
                med(&t.runs, |m| m.larger_rss_kib as f64) / 1024.0
            )
        } else {
            format!(
                "peak RSS {:>6.1} MiB",
                med(&t.runs, |m| m.peak_rss_kib as f64) / 1024.0
            )
        };
        println!(
            "  {name:<36} {secs:>7.2} s  {:>7.0} obj/s  {rss}  control plane at {:.0}% of its ceiling",
            args.secrets as f64 / secs,
            100.0 * ceiling_share(t)
        );
    }
    println!(
        "  {:<36} {ceil_t:>7.2} s  {:>7.0} obj/s",
        "raw etcd puts (ceiling)",
        args.secrets as f64 / ceil_t
    );
    let pipeline = result.tool("pipeline");
    for w in &args.wires {
        let Some(t) = result.tool(&format!("reencrypt-{w}")) else {
            continue;
        };
        let our_t = med(&t.runs, |m| m.seconds);
        let mut line = format!(
            "  --wire {w}: {:.0}% of the raw-put throughput (target >= 70%)",
            100.0 * ceil_t / our_t
        );
        if let Some(p) = pipeline {
            let pipe_t = med(&p.runs, |m| m.seconds);
            let our_rss = med(&t.runs, |m| m.peak_rss_kib as f64);
            line.push_str(&format!(
                "; {:.1}x faster than the pipeline (target >= 10x); memory {:.3} of the pipeline's sum, {:.3} of its larger process (target <= 0.1)",
                pipe_t / our_t,
                our_rss / med(&p.runs, |m| m.peak_rss_kib as f64),
                our_rss / med(&p.runs, |m| m.larger_rss_kib as f64)
            ));
        }
        println!("{line}");
    }
    Ok(result)
}

/// Shape B against shape A, wire against wire.
fn summary(args: &Args, shapes: &[ShapeResult]) {
    let secs = |s: &ShapeResult, tool: &str| s.tool(tool).map(|t| med(&t.runs, |m| m.seconds));
    println!();
    if let [a, b] = shapes {
        for w in &args.wires {
            let tool = format!("reencrypt-{w}");
            if let (Some(ta), Some(tb)) = (secs(a, &tool), secs(b, &tool)) {
                println!(
                    "shape {} / shape {} ({} namespaces vs {}), --wire {w}: {:.2}x (goal <= 1.2)",
                    b.label,
                    a.label,
                    b.namespaces,
                    a.namespaces,
                    tb / ta
                );
            }
        }
        if let (Some(ta), Some(tb)) = (secs(a, "pipeline"), secs(b, "pipeline")) {
            println!(
                "shape {} / shape {}, the pipeline: {:.2}x",
                b.label,
                a.label,
                tb / ta
            );
        }
    }
    if args.wires.len() == 2 {
        for s in shapes {
            if let (Some(j), Some(p)) = (secs(s, "reencrypt-json"), secs(s, "reencrypt-protobuf")) {
                println!(
                    "shape {}: --wire protobuf takes {:.2}x the time of --wire json",
                    s.label,
                    p / j
                );
            }
        }
    }
}
