//! `cargo xtask bench etcdcheck`: `kubectl-etcdcheck -A -o json --encryption-config …` against
//! `etcdctl get --prefix /registry/secrets -w json` on the same etcd.
//!
//! Loads N secrets (default 100,000, ~1 KiB of data each, a third each identity / secretbox /
//! aescbc, protobuf-encoded like kube-apiserver writes them) into a TLS etcd the bench starts, then
//! runs both commands alternately (stdout to /dev/null), and prints the median wall times, their
//! ratio and each command's peak RSS (from `wait4`). Targets: ratio ≤ 1.2, etcdcheck peak RSS < 64 MiB.
//! Uses the release build of the plugin (`cargo build --release -p kubectl-etcdcheck`).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use atrest_core::config::EncryptionConfiguration;
use atrest_core::storage::{self, MediaType};
use atrest_core::transform::EncryptionTransformers;
use atrest_e2e::etcd::{ETCDCTL_BIN, TlsEtcd};

const SECRETBOX_KEY: &str = "c2VjcmV0Ym94LWtleS0wMTIzNDU2Nzg5YWJjZGVmMDE=";
const AESCBC_KEY: &str = "YWVzY2JjLWtleS0wMTIzNDU2Nzg5YWJjZGVmMDEyMzQ=";

struct Opts {
    plugin: Option<PathBuf>,
    secrets: usize,
    runs: usize,
    data_bytes: usize,
    hold: bool,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        plugin: None,
        secrets: 100_000,
        runs: 5,
        data_bytes: 700,
        hold: false,
    };
    let mut it = args.iter().skip_while(|a| a.as_str() == "etcdcheck");
    while let Some(a) = it.next() {
        let mut val = |name: &str| -> Result<usize> {
            it.next()
                .with_context(|| format!("{name} needs a value"))?
                .parse()
                .with_context(|| format!("{name} must be a number"))
        };
        match a.as_str() {
            "--secrets" => o.secrets = val("--secrets")?,
            "--runs" => o.runs = val("--runs")?,
            "--data-bytes" => o.data_bytes = val("--data-bytes")?,
            "--plugin" => o.plugin = Some(it.next().context("--plugin needs a path")?.into()),
            "--hold" => o.hold = true,
            "-h" | "--help" => {
                println!(
                    "cargo xtask bench etcdcheck [--secrets N (100000)] [--runs R (5)] [--data-bytes B (700, ~1 KiB stored)] [--plugin PATH (target/release/kubectl-etcdcheck)] [--hold (load, print the commands, keep etcd up until Enter: for profiling)]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    ensure!(
        o.secrets > 0 && o.runs > 0,
        "--secrets and --runs must be positive"
    );
    Ok(o)
}

/// Entry point (`cargo xtask bench etcdcheck [ARGS]`).
pub fn run(args: &[String]) -> Result<()> {
    let opts = parse(args)?;
    let plugin = match &opts.plugin {
        Some(p) => p.clone(),
        None => release_binary("kubectl-etcdcheck")?,
    };
    let work = tempfile::tempdir()?;
    let enc = work.path().join("enc.yaml");
    std::fs::write(
        &enc,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - secretbox:\n      keys:\n      - name: key1\n        secret: {SECRETBOX_KEY}\n  - aescbc:\n      keys:\n      - name: key1\n        secret: {AESCBC_KEY}\n  - identity: {{}}\n"
        ),
    )?;

    eprintln!("starting etcd …");
    let etcd = TlsEtcd::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let stored_bytes = rt.block_on(load(&etcd, &opts))?;
    eprintln!(
        "loaded {} secrets ({:.1} MiB of values) in {:.1}s",
        opts.secrets,
        stored_bytes as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64()
    );

    let mut etcdcheck = Command::new(&plugin);
    etcdcheck
        .args(etcd.etcdctl_args())
        .args(["-A", "-o", "json", "--encryption-config"])
        .arg(&enc);
    let mut etcdctl = Command::new(ETCDCTL_BIN);
    etcdctl
        .args(etcd.etcdctl_args())
        // etcdctl's default --command-timeout (5s) is too short for one 100k-key range.
        .args([
            "--command-timeout=300s",
            "get",
            "--prefix",
            "/registry/secrets",
            "-w",
            "json",
        ]);

    if opts.hold {
        let quote = |c: &Command| {
            std::iter::once(c.get_program())
                .chain(c.get_args())
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!("{}", quote(&etcdcheck));
        println!("{}", quote(&etcdctl));
        eprintln!("etcd stays up until Enter (or end of input)");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok(());
    }

    // Check once that etcdcheck sees and verifies everything (not timed).
    let out = etcdcheck.output()?;
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("etcdcheck output is not JSON")?;
    let s = &v["summary"];
    ensure!(
        s["total"] == opts.secrets && s["verified"] == opts.secrets && out.status.code() == Some(0),
        "etcdcheck did not verify every secret: exit {:?}, summary {s}",
        out.status.code()
    );

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for i in 0..opts.runs {
        ours.push(measure(&mut etcdcheck)?);
        theirs.push(measure(&mut etcdctl)?);
        eprintln!(
            "run {}: etcdcheck {:.3}s {:.1} MiB | etcdctl {:.3}s {:.1} MiB",
            i + 1,
            ours[i].0.as_secs_f64(),
            mib(ours[i].1),
            theirs[i].0.as_secs_f64(),
            mib(theirs[i].1)
        );
    }
    let med = |v: &[(Duration, u64)]| {
        let mut t: Vec<Duration> = v.iter().map(|x| x.0).collect();
        t.sort();
        t[t.len() / 2]
    };
    let peak = |v: &[(Duration, u64)]| v.iter().map(|x| x.1).max().unwrap_or(0);
    let (a, b) = (med(&ours), med(&theirs));
    let ratio = a.as_secs_f64() / b.as_secs_f64();
    println!("secrets:                 {}", opts.secrets);
    println!(
        "kubectl-etcdcheck median {:.3}s, peak RSS {:.1} MiB",
        a.as_secs_f64(),
        mib(peak(&ours))
    );
    println!(
        "etcdctl get median       {:.3}s, peak RSS {:.1} MiB",
        b.as_secs_f64(),
        mib(peak(&theirs))
    );
    println!(
        "ratio etcdcheck/etcdctl  {ratio:.2} (target <= 1.2: {}); etcdcheck RSS target < 64 MiB: {}",
        if ratio <= 1.2 { "met" } else { "MISSED" },
        if peak(&ours) < 64 * 1024 * 1024 {
            "met"
        } else {
            "MISSED"
        }
    );
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Run `cmd` with stdout discarded; wall time and the command's peak RSS (bytes), measured in a process of its
/// own ([`crate::rusage`]).
fn measure(cmd: &mut Command) -> Result<(Duration, u64)> {
    let started = Instant::now();
    let usage = crate::rusage::run(cmd)?;
    let elapsed = started.elapsed();
    if usage.code != 0 {
        bail!("{:?} failed (exit {})", cmd.get_program(), usage.code);
    }
    Ok((elapsed, usage.peak_rss_kib * 1024))
}

fn release_binary(name: &str) -> Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| atrest_devtools::dist::workspace_root().join("target"));
    let p = target.join("release").join(name);
    ensure!(
        p.is_file(),
        "{} not found: run `cargo build --release -p kubectl-etcdcheck` first",
        p.display()
    );
    Ok(p)
}

/// Deterministic filler so runs are comparable (xorshift64*).
fn filler(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

async fn load(etcd: &TlsEtcd, opts: &Opts) -> Result<u64> {
    use base64::Engine;
    let config = EncryptionConfiguration::from_text(
        &format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - secretbox:\n      keys:\n      - name: key1\n        secret: {SECRETBOX_KEY}\n"
        ),
        "bench secretbox config",
    )?;
    let secretbox = EncryptionTransformers::from_config(&config)?;
    let config = EncryptionConfiguration::from_text(
        &format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: key1\n        secret: {AESCBC_KEY}\n"
        ),
        "bench aescbc config",
    )?;
    let aescbc = EncryptionTransformers::from_config(&config)?;
    let gr = atrest_core::config::GroupResource::core("secrets");
    let client = etcd.client().await;
    let mut total = 0u64;
    let mut ops = Vec::with_capacity(128);
    for i in 0..opts.secrets {
        let ns = format!("ns-{:02}", i % 40);
        let name = format!("secret-{i:06}");
        let key = format!("/registry/secrets/{ns}/{name}");
        let data =
            base64::engine::general_purpose::STANDARD.encode(filler(i as u64, opts.data_bytes));
        let obj = serde_json::json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":name,"namespace":ns,
            "uid":format!("00000000-0000-4000-8000-{i:012}"),"creationTimestamp":"2024-05-01T10:00:00Z",
            "labels":{"app":"bench"}},"data":{"payload":data},"type":"Opaque"});
        let plain = storage::encode(&obj, MediaType::Protobuf)?;
        let value = match i % 3 {
            0 => plain,
            1 => secretbox.for_resource(&gr).write(&plain, key.as_bytes())?,
            _ => aescbc.for_resource(&gr).write(&plain, key.as_bytes())?,
        };
        total += value.len() as u64;
        ops.push(atrest_core::etcd::TxnOp::put(key, value));
        if ops.len() == 128 || i + 1 == opts.secrets {
            client
                .txn(atrest_core::etcd::Txn::new().and_then(std::mem::take(&mut ops)))
                .await
                .context("loading secrets into etcd")?;
        }
    }
    Ok(total)
}
