//! `cargo xtask bench sandbox`: the sandbox API server's PUT throughput next to raw etcd put throughput, at the
//! same concurrency, so later benchmarks know whether the sandbox is their bottleneck.
//!
//! Each worker owns one Secret and replaces it in a loop (fresh data every time, so every PUT writes, with the
//! resourceVersion of its previous answer); the etcd baseline runs the same number of workers putting values of
//! the same size straight into the sandbox's etcd (TLS, client certificate), with the same client stack.
//! Uses `atrest_sandbox` (and its re-exported kube, k8s-openapi and etcd-client), `atrest_core`'s etcd transport,
//! tokio, anyhow and tempfile.
//!
//! Both etcd clients (the sandbox API server's and this baseline's) dial with `TCP_NODELAY`, as Go's gRPC
//! client does: see [`etcd_nodelay`].
//!
//! Arguments: `[--seconds N]` (per measurement, default 3), `[--concurrency 1,8,32]`, `[--kube-version 1.32]`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use atrest_sandbox::k8s_openapi::ByteString;
use atrest_sandbox::k8s_openapi::api::core::v1::Secret;
use atrest_sandbox::kube::api::{Api, ObjectMeta, PostParams};
use atrest_sandbox::{Sandbox, SandboxOptions};

struct Args {
    seconds: u64,
    concurrency: Vec<usize>,
    kube_version: String,
}

fn parse(args: &[String]) -> Result<Args> {
    let mut a = Args {
        seconds: 3,
        concurrency: vec![1, 8, 32],
        kube_version: "1.32".into(),
    };
    let mut it = args.iter().filter(|s| s.as_str() != "sandbox");
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => {
                a.seconds = value()?
                    .parse()
                    .context("--seconds: a whole number of seconds")?
            }
            "--concurrency" => {
                a.concurrency = value()?
                    .split(',')
                    .map(|c| {
                        c.trim()
                            .parse::<usize>()
                            .context("--concurrency: e.g. 1,8,32")
                    })
                    .collect::<Result<_>>()?;
                if a.concurrency.contains(&0) {
                    bail!("--concurrency: 0 workers measures nothing");
                }
            }
            "--kube-version" => a.kube_version = value()?.clone(),
            other => bail!(
                "unknown argument {other:?}: use --seconds N, --concurrency 1,8,32, --kube-version 1.32"
            ),
        }
    }
    Ok(a)
}

/// A value of the size a small Secret takes in etcd (~1 KiB of data), different every call.
fn payload(worker: usize, n: u64) -> Vec<u8> {
    let mut v = format!("w{worker}-n{n}-").into_bytes();
    v.resize(1024, b'x');
    v
}

/// Run the benchmark and print the table.
pub fn run(args: &[String]) -> Result<()> {
    let args = parse(args)?;
    let tmp = tempfile::tempdir().context("temp dir for the sandbox")?;
    let mut opts = SandboxOptions::new(tmp.path().join("node"));
    opts.kube_version = args.kube_version.clone();
    let sb = Sandbox::up(opts).context("starting the sandbox")?;
    sb.wait_ready(Duration::from_secs(120))
        .context("sandbox readiness")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let window = Duration::from_secs(args.seconds);
    let mut rows: BTreeMap<usize, (f64, f64)> = BTreeMap::new();
    rt.block_on(async {
        let etcd = etcd_nodelay(
            sb.etcd_endpoint(),
            &std::fs::read(sb.etcd_ca())?,
            &std::fs::read(sb.etcd_cert())?,
            &std::fs::read(sb.etcd_key())?,
        )
        .await?;
        for &c in &args.concurrency {
            // One client (one keep-alive connection) per worker, like separate kubectl/plugin processes; a shared
            // client would also pool connections, but new pooled connections try TLS session resumption.
            let mut clients = Vec::new();
            for _ in 0..c {
                clients.push(sb.kube_client(&sb.kubeconfig()).await?);
            }
            let put = sandbox_puts(clients, c, window).await?;
            let raw = etcd_puts(etcd.clone(), c, window).await?;
            eprintln!("concurrency {c:>2}: sandbox {put:>8.1} PUT/s, etcd {raw:>8.1} put/s");
            rows.insert(c, (put, raw));
        }
        anyhow::Ok(())
    })?;
    println!(
        "sandbox PUT throughput vs raw etcd put ({}s per cell, ~1 KiB values, kube {})",
        args.seconds, args.kube_version
    );
    println!(
        "{:>11}  {:>14}  {:>14}  {:>7}",
        "concurrency", "sandbox PUT/s", "etcd put/s", "ratio"
    );
    for (c, (put, raw)) in rows {
        println!(
            "{c:>11}  {put:>14.1}  {raw:>14.1}  {:>6.1}%",
            100.0 * put / raw.max(f64::MIN_POSITIVE)
        );
    }
    sb.shutdown();
    Ok(())
}

async fn sandbox_puts(
    clients: Vec<atrest_sandbox::kube::Client>,
    workers: usize,
    window: Duration,
) -> Result<f64> {
    let api: Api<Secret> = Api::namespaced(clients[0].clone(), "default");
    let mut names = Vec::new();
    for w in 0..workers {
        let name = format!("bench-c{workers}-w{w}");
        let s = Secret {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..Default::default()
            },
            data: Some([("v".to_string(), ByteString(payload(w, 0)))].into()),
            ..Default::default()
        };
        api.create(&PostParams::default(), &s)
            .await
            .with_context(|| format!("create secret {name}"))?;
        names.push(name);
    }
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (w, (name, client)) in names.into_iter().zip(clients).enumerate() {
        let api: Api<Secret> = Api::namespaced(client, "default");
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut cur = api.get(&name).await?;
            let mut n = 1;
            let mut transport_errors = 0;
            while start.elapsed() < window {
                cur.data = Some([("v".to_string(), ByteString(payload(w, n)))].into());
                match api.replace(&name, &PostParams::default(), &cur).await {
                    Ok(next) => {
                        cur = next;
                        n += 1;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    // A failed new connection (not an API answer) is retried a few times; it is not counted.
                    Err(e)
                        if !matches!(e, atrest_sandbox::kube::Error::Api(_))
                            && transport_errors < 3 =>
                    {
                        transport_errors += 1;
                        eprintln!("PUT {name}: {e}; retrying");
                    }
                    Err(e) => return Err(anyhow::Error::new(e).context(format!("PUT {name}"))),
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

async fn etcd_puts(
    client: atrest_core::etcd::EtcdClient,
    workers: usize,
    window: Duration,
) -> Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let kv = client.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("/bench/c{workers}-w{w}");
            let mut n = 0;
            while start.elapsed() < window {
                kv.put(key.as_str(), payload(w, n))
                    .await
                    .with_context(|| format!("etcd put {key}"))?;
                n += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// An etcd client over OpenSSL TLS (client certificate) on a `TCP_NODELAY` socket: the transport the sandbox API
/// server uses (`atrest_core::etcd::connect_client`). A transport that leaves Nagle's algorithm on stalls a lone
/// request ~40 ms on the server's delayed ACK; a baseline measured with it would be slower than the API server
/// it bounds.
pub(crate) async fn etcd_nodelay(
    endpoint: &str,
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<atrest_core::etcd::EtcdClient> {
    let tls = atrest_core::etcd::EtcdTls::from_pem(
        ca_pem.to_vec(),
        Some((cert_pem.to_vec(), key_pem.to_vec())),
    );
    atrest_core::etcd::connect_client(&[endpoint.to_string()], Some(&tls), Duration::from_secs(5))
        .await
        .with_context(|| format!("connecting to etcd at {endpoint}"))
}
