//! Request-level tests against a small in-process API server stand-in (plain HTTP on loopback) that keeps
//! secrets with resourceVersions, a per-object "stale" flag (what kube-apiserver's transformer reports),
//! optimistic concurrency, paginated lists with continue tokens, and injectable faults. The end-to-end tests on
//! the real sandbox (real etcd, real encryption) are in `tests/tests/reencrypt*.rs`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{Value, json};

use super::*;

#[derive(Clone)]
struct Obj {
    value: Value,
    rv: u64,
    stale: bool,
}

#[derive(Default)]
struct Faults {
    /// Every n-th PUT answers 429 with Retry-After: 0 (0 = never).
    every_nth_put_429: u64,
    /// Every n-th PUT answers 500 (0 = never).
    every_nth_put_500: u64,
    /// Continue tokens expire (410) once.
    expire_continue_once: bool,
    /// Cluster-wide continue tokens always expire.
    expire_continue_always: bool,
    /// Before answering the n-th PUT, a concurrent writer updates the object (a conflict for us).
    concurrent_write_on_put: u64,
    /// Delete the object before answering the n-th PUT.
    delete_on_put: u64,
    /// PUTs to this name are rejected with 422.
    reject_name: Option<String>,
    /// `every_nth_put_500` applies to the first PUT only.
    only_first_500: bool,
    /// PUTs numbered in this range answer 403 (a restarted kube-apiserver whose authorizer has not synced).
    forbid_puts: std::ops::Range<u64>,
    /// The cluster-wide list answers 403 (a user allowed to list only some namespaces).
    forbid_cluster_list: bool,
    /// Protobuf request bodies answer 415 (a server without protobuf).
    refuse_protobuf_bodies: bool,
    /// On the n-th PUT, before answering it, cancel the run (as Ctrl-C while requests are in flight).
    cancel_on_put: Option<(u64, watch::Sender<bool>)>,
}

#[derive(Default)]
struct World {
    /// (namespace, name) → object.
    objects: BTreeMap<(String, String), Obj>,
    namespaces: Vec<String>,
    rv: u64,
    faults: Faults,
    puts: u64,
    writes: u64,
    expired_once: bool,
    /// List requests: cluster-wide, per namespace, of namespaces.
    cluster_lists: u64,
    namespace_lists: u64,
    namespaces_lists: u64,
    /// The server answers in protobuf when asked (as kube-apiserver does for built-in types).
    speaks_protobuf: bool,
    /// PUTs by body type, and protobuf responses sent.
    json_puts: u64,
    protobuf_puts: u64,
    protobuf_answers: u64,
}

struct Server {
    world: Mutex<World>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    requests: AtomicU64,
    delay: std::time::Duration,
}

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":message,"reason":reason,"code":code}),
    )
}

impl Server {
    fn seed(namespaces: &[&str], per_ns: usize, stale: bool) -> Arc<Self> {
        let mut w = World {
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        for ns in namespaces {
            for i in 0..per_ns {
                w.rv += 1;
                let name = format!("s{i:04}");
                let value = json!({
                    "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{ns}-{i}"),
                                 "resourceVersion": w.rv.to_string(), "labels": {"keep": "me"}},
                    "data": {"k": "dmFsdWU="}, "type": "Opaque"
                });
                w.objects.insert(
                    (ns.to_string(), name),
                    Obj {
                        value,
                        rv: w.rv,
                        stale,
                    },
                );
            }
        }
        Arc::new(Server {
            world: Mutex::new(w),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            delay: std::time::Duration::from_millis(2),
        })
    }

    /// Answers a request: status, body bytes, content type, Retry-After. In protobuf when the client accepts it
    /// and the server speaks it (objects and lists; errors stay JSON).
    fn respond(
        &self,
        method: &str,
        path: &str,
        query: &str,
        accept: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Vec<u8>, &'static str, Option<&'static str>) {
        let protobuf_body = content_type.starts_with(wire::PROTOBUF);
        let body: Vec<u8> = if protobuf_body {
            let mut w = self.world.lock().unwrap();
            if w.faults.refuse_protobuf_bodies {
                let (c, v) = status(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format",
                );
                return (c, serde_json::to_vec(&v).unwrap(), "application/json", None);
            }
            w.protobuf_puts += 1;
            serde_json::to_vec(&crate::storage::decode(body).unwrap()).unwrap()
        } else {
            if method == "PUT" {
                self.world.lock().unwrap().json_puts += 1;
            }
            body.to_vec()
        };
        let (code, v, retry) = self.handle(method, path, query, &body);
        let mut w = self.world.lock().unwrap();
        if code == 200 && w.speaks_protobuf && accept.starts_with(wire::PROTOBUF) {
            w.protobuf_answers += 1;
            let typed = |mut o: Value| {
                o["apiVersion"] = json!("v1");
                o["kind"] = json!("Secret");
                crate::storage::to_protobuf_message(&o).unwrap().raw
            };
            let raw = if let Some(items) = v.get("items").and_then(Value::as_array) {
                let mut meta = Vec::new();
                if let Some(c) = v.pointer("/metadata/continue").and_then(Value::as_str) {
                    crate::storage::wire::put_len(&mut meta, 3, c.as_bytes());
                }
                let mut list = Vec::new();
                crate::storage::wire::put_len(&mut list, 1, &meta);
                for item in items {
                    crate::storage::wire::put_len(&mut list, 2, &typed(item.clone()));
                }
                (list, "SecretList")
            } else {
                (typed(v), "Secret")
            };
            let env = crate::storage::StorageEnvelope {
                api_version: "v1".into(),
                kind: raw.1.into(),
                raw: raw.0,
                ..Default::default()
            };
            return (code, env.encode(), wire::PROTOBUF, retry);
        }
        (
            code,
            serde_json::to_vec(&v).unwrap(),
            "application/json",
            retry,
        )
    }

    fn handle(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> (u16, Value, Option<&'static str>) {
        let mut w = self.world.lock().unwrap();
        let q: BTreeMap<&str, &str> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, parts.as_slice()) {
            ("GET", ["api", "v1", "namespaces"]) => {
                w.namespaces_lists += 1;
                let items: Vec<Value> = w
                    .namespaces
                    .iter()
                    .map(|n| json!({"metadata":{"name":n}}))
                    .collect();
                (
                    200,
                    json!({"kind":"NamespaceList","metadata":{},"items":items}),
                    None,
                )
            }
            ("GET", ["api", "v1", "secrets"]) => {
                w.cluster_lists += 1;
                if w.faults.forbid_cluster_list {
                    let (c, v) = status(
                        403,
                        "Forbidden",
                        "secrets is forbidden: User \"jane\" cannot list resource \"secrets\" in API group \"\" at the cluster scope",
                    );
                    return (c, v, None);
                }
                let limit: usize = q
                    .get("limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(usize::MAX);
                // The continue token is the last key returned; keys sort as etcd's: `namespace/name`, bytewise.
                let start = q.get("continue").map(|c| c.replace("%2F", "/"));
                if start.is_some()
                    && ((w.faults.expire_continue_once && !w.expired_once)
                        || w.faults.expire_continue_always)
                {
                    w.expired_once = true;
                    let (c, v) =
                        status(410, "Expired", "The provided continue parameter is too old");
                    return (c, v, None);
                }
                let mut all: Vec<(String, &Obj)> = w
                    .objects
                    .iter()
                    .map(|((ns, name), o)| (format!("{ns}/{name}"), o))
                    .filter(|(k, _)| start.as_deref().is_none_or(|s| k.as_str() > s))
                    .collect();
                all.sort_by(|a, b| a.0.cmp(&b.0));
                let page: Vec<Value> = all
                    .iter()
                    .take(limit)
                    .map(|(_, o)| o.value.clone())
                    .collect();
                let rest = all.len().saturating_sub(limit);
                let cont = if rest > 0 {
                    all[limit - 1].0.clone()
                } else {
                    String::new()
                };
                (
                    200,
                    json!({"metadata":{"remainingItemCount":rest,"continue":cont},"items":page}),
                    None,
                )
            }
            ("GET", ["api", "v1", "namespaces", ns, "secrets"]) => {
                w.namespace_lists += 1;
                let limit: usize = q
                    .get("limit")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(usize::MAX);
                let start = q.get("continue").map(|c| c.to_string());
                if start.is_some() && w.faults.expire_continue_once && !w.expired_once {
                    w.expired_once = true;
                    let (c, v) =
                        status(410, "Expired", "The provided continue parameter is too old");
                    return (c, v, None);
                }
                let all: Vec<&Obj> = w
                    .objects
                    .range((ns.to_string(), String::new())..)
                    .take_while(|((n, _), _)| n == ns)
                    .filter(|((_, name), _)| start.as_deref().is_none_or(|s| name.as_str() > s))
                    .map(|(_, o)| o)
                    .collect();
                let page: Vec<Value> = all.iter().take(limit).map(|o| o.value.clone()).collect();
                let cont = if all.len() > limit {
                    page.last()
                        .and_then(|v| v.pointer("/metadata/name"))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                } else {
                    String::new()
                };
                (
                    200,
                    json!({"metadata":{"continue":cont},"items":page}),
                    None,
                )
            }
            ("GET", ["api", "v1", "namespaces", ns, "secrets", name]) => {
                match w.objects.get(&(ns.to_string(), name.to_string())) {
                    Some(o) => {
                        let mut v = o.value.clone();
                        v["apiVersion"] = json!("v1");
                        v["kind"] = json!("Secret");
                        (200, v, None)
                    }
                    None => {
                        let (c, v) =
                            status(404, "NotFound", &format!("secrets \"{name}\" not found"));
                        (c, v, None)
                    }
                }
            }
            ("PUT", ["api", "v1", "namespaces", ns, "secrets", name]) => {
                w.puts += 1;
                let n = w.puts;
                if let Some((at, cancel)) = &w.faults.cancel_on_put
                    && *at == n
                {
                    let _ = cancel.send(true);
                }
                let key = (ns.to_string(), name.to_string());
                if w.faults.every_nth_put_429 > 0 && n.is_multiple_of(w.faults.every_nth_put_429) {
                    let (c, v) = status(
                        429,
                        "TooManyRequests",
                        "Too many requests, please try again later.",
                    );
                    return (c, v, Some("0"));
                }
                if w.faults.every_nth_put_500 > 0
                    && n.is_multiple_of(w.faults.every_nth_put_500)
                    && (!w.faults.only_first_500 || n == 1)
                {
                    let (c, v) = status(500, "InternalError", "Internal error occurred: injected");
                    return (c, v, None);
                }
                if w.faults.forbid_puts.contains(&n) {
                    let (c, v) = status(
                        403,
                        "Forbidden",
                        &format!(
                            "secrets \"{name}\" is forbidden: User \"kubernetes-admin\" cannot update resource \"secrets\""
                        ),
                    );
                    return (c, v, None);
                }
                if w.faults.reject_name.as_deref() == Some(*name) {
                    let (c, v) = status(
                        422,
                        "Invalid",
                        &format!("Secret \"{name}\" is invalid: injected"),
                    );
                    return (c, v, None);
                }
                if w.faults.delete_on_put == n {
                    w.objects.remove(&key);
                }
                if w.faults.concurrent_write_on_put == n
                    && let Some(mut o) = w.objects.get(&key).cloned()
                {
                    w.rv += 1;
                    o.rv = w.rv;
                    o.stale = false;
                    o.value["data"]["k"] = json!("d3JpdGVy");
                    o.value["metadata"]["resourceVersion"] = json!(o.rv.to_string());
                    w.writes += 1;
                    w.objects.insert(key.clone(), o);
                }
                let mut sent: Value = serde_json::from_slice(body).unwrap();
                assert_eq!(sent["apiVersion"], "v1");
                assert_eq!(sent["kind"], "Secret");
                let Some(cur) = w.objects.get(&key).cloned() else {
                    let (c, v) = status(404, "NotFound", &format!("secrets \"{name}\" not found"));
                    return (c, v, None);
                };
                let sent_rv = sent
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if sent_rv != cur.rv.to_string() {
                    let (c, v) = status(
                        409,
                        "Conflict",
                        &format!(
                            "Operation cannot be fulfilled on secrets \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                        ),
                    );
                    return (c, v, None);
                }
                let obj = sent.as_object_mut().unwrap();
                obj.remove("apiVersion");
                obj.remove("kind");
                let unchanged = sent == cur.value;
                if unchanged && !cur.stale {
                    let mut v = cur.value.clone();
                    v["apiVersion"] = json!("v1");
                    v["kind"] = json!("Secret");
                    return (200, v, None);
                }
                w.rv += 1;
                w.writes += 1;
                let rv = w.rv;
                sent["metadata"]["resourceVersion"] = json!(rv.to_string());
                w.objects.insert(
                    key,
                    Obj {
                        value: sent.clone(),
                        rv,
                        stale: false,
                    },
                );
                (200, sent, None)
            }
            _ => {
                let (c, v) = status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                );
                (c, v, None)
            }
        }
    }

    async fn serve(self: Arc<Self>) -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let me = self.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let me = me.clone();
                        async move {
                            let n = me.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                            me.max_in_flight.fetch_max(n, Ordering::SeqCst);
                            me.requests.fetch_add(1, Ordering::SeqCst);
                            let method = req.method().to_string();
                            let path = req.uri().path().to_string();
                            let query = req.uri().query().unwrap_or("").to_string();
                            let header = |h: &str| {
                                req.headers()
                                    .get(h)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_string()
                            };
                            let (accept, ctype) = (header("accept"), header("content-type"));
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            tokio::time::sleep(me.delay).await;
                            let (code, bytes, ct, retry_after) =
                                me.respond(&method, &path, &query, &accept, &ctype, &body);
                            me.in_flight.fetch_sub(1, Ordering::SeqCst);
                            let mut resp =
                                Response::builder().status(code).header("content-type", ct);
                            if let Some(r) = retry_after {
                                resp = resp.header("retry-after", r);
                            }
                            Ok::<_, Infallible>(resp.body(Full::new(Bytes::from(bytes))).unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (url, task)
    }
}

fn client(url: &str) -> Client {
    Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap()
}

fn quick_retry() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(50),
        ..RetryPolicy::default()
    }
}

async fn run_on(server: &Arc<Server>, options: Options) -> Report {
    let (url, task) = server.clone().serve().await;
    let (_tx, rx) = watch::channel(false);
    let report = super::run(
        &client(&url),
        &[Target::secrets()],
        options,
        rx,
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    task.abort();
    report
}

/// A run with one worker: faults numbered by PUT hit the objects in listing order.
async fn run_serially(server: &Arc<Server>) -> Report {
    run_on(
        server,
        Options {
            concurrency: 1,
            ..opts()
        },
    )
    .await
}

fn opts() -> Options {
    Options {
        page_size: 7,
        retry: quick_retry(),
        ..Options::default()
    }
}

#[tokio::test]
async fn rewrites_stale_objects_in_every_namespace_then_nothing() {
    let server = Server::seed(&["a", "b", "kube-system"], 20, true);
    let r = run_on(
        &server,
        Options {
            concurrency: 4,
            ..opts()
        },
    )
    .await;
    assert_eq!(r.totals.listed, 60);
    assert_eq!(r.totals.rewritten, 60);
    assert_eq!(r.totals.failed, 0);
    assert_eq!(r.namespaces.len(), 3);
    assert!(
        r.namespaces
            .iter()
            .all(|n| n.status == NamespaceStatus::Done && n.counts.rewritten == 20)
    );
    assert!(
        server.max_in_flight.load(Ordering::SeqCst) <= 5,
        "pool bounded (4 workers + lister)"
    );
    {
        let w = server.world.lock().unwrap();
        assert_eq!(w.writes, 60);
        // One cluster-wide listing (plus the one-item count for the progress total), no namespace by namespace.
        assert_eq!((w.namespaces_lists, w.namespace_lists), (0, 0));
        assert_eq!(w.cluster_lists, 1 + 60usize.div_ceil(7) as u64);
        // No field lost.
        assert!(
            w.objects
                .values()
                .all(|o| o.value["metadata"]["labels"]["keep"] == "me"
                    && o.value["type"] == "Opaque")
        );
    }
    let again = run_on(&server, opts()).await;
    assert_eq!(again.totals.current, 60);
    assert_eq!(again.totals.rewritten, 0);
    assert_eq!(server.world.lock().unwrap().writes, 60);
}

#[tokio::test]
async fn one_namespace_only_and_dry_run_writes_nothing() {
    let server = Server::seed(&["a", "b"], 10, true);
    let dry = run_on(
        &server,
        Options {
            dry_run: true,
            ..opts()
        },
    )
    .await;
    assert_eq!(dry.totals.listed, 20);
    assert_eq!(dry.totals.rewritten + dry.totals.current, 0);
    assert!(
        dry.namespaces
            .iter()
            .all(|n| n.status == NamespaceStatus::Listed)
    );
    assert_eq!(server.world.lock().unwrap().puts, 0);
    let r = run_on(
        &server,
        Options {
            namespace: Some("b".into()),
            ..opts()
        },
    )
    .await;
    assert_eq!(r.namespaces.len(), 1);
    assert_eq!(r.namespaces[0].namespace, "b");
    assert_eq!(r.totals.rewritten, 10);
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried() {
    let server = Server::seed(&["a"], 50, true);
    {
        let mut w = server.world.lock().unwrap();
        w.faults.every_nth_put_429 = 5;
        w.faults.every_nth_put_500 = 7;
    }
    let r = run_on(&server, opts()).await;
    assert_eq!(r.totals.rewritten, 50, "{:?}", r.failures);
    assert_eq!(r.totals.failed, 0);
}

#[tokio::test]
async fn retries_give_up_and_report_failed() {
    let server = Server::seed(&["a"], 3, true);
    server.world.lock().unwrap().faults.every_nth_put_500 = 1;
    let r = run_on(
        &server,
        Options {
            retry: RetryPolicy {
                max_retries: 2,
                ..quick_retry()
            },
            ..opts()
        },
    )
    .await;
    assert_eq!(r.totals.failed, 3);
    assert_eq!(r.namespaces[0].status, NamespaceStatus::Failed);
    assert!(
        r.failures[0]
            .error
            .contains("500 Internal error occurred: injected"),
        "{}",
        r.failures[0].error
    );
    assert!(
        r.failures[0].error.contains("gave up after 3 attempts"),
        "{}",
        r.failures[0].error
    );
}

#[tokio::test]
async fn forbidden_right_after_the_server_was_unavailable_is_retried() {
    // PUT 1 answers 500 (the server restarting), PUTs 2-4 answer 403 (its authorizer not synced yet).
    let server = Server::seed(&["a"], 5, true);
    {
        let mut w = server.world.lock().unwrap();
        w.faults.every_nth_put_500 = 1;
        w.faults.only_first_500 = true;
        w.faults.forbid_puts = 2..5;
    }
    let r = run_serially(&server).await;
    assert_eq!(r.totals.failed, 0, "{:?}", r.failures);
    assert_eq!(r.totals.rewritten, 5);
}

#[tokio::test]
async fn forbidden_without_an_outage_fails_at_once() {
    let server = Server::seed(&["a"], 5, true);
    server.world.lock().unwrap().faults.forbid_puts = 2..3;
    let r = run_serially(&server).await;
    assert_eq!(r.totals.failed, 1, "{:?}", r.failures);
    assert_eq!(r.totals.rewritten, 4);
    assert!(
        r.failures[0].error.contains("403") && !r.failures[0].error.contains("gave up"),
        "{}",
        r.failures[0].error
    );
}

#[tokio::test]
async fn conflict_rereads_and_keeps_the_writers_data() {
    let server = Server::seed(&["a"], 5, true);
    server.world.lock().unwrap().faults.concurrent_write_on_put = 2;
    let r = run_serially(&server).await;
    assert_eq!(r.totals.conflicts, 1);
    assert_eq!(r.totals.failed, 0);
    // The writer's object was current after its write, so sending it back is a no-op.
    assert_eq!(r.totals.rewritten + r.totals.current, 5);
    assert_eq!(r.totals.current, 1);
    let w = server.world.lock().unwrap();
    let changed: Vec<_> = w
        .objects
        .values()
        .filter(|o| o.value["data"]["k"] == "d3JpdGVy")
        .collect();
    assert_eq!(changed.len(), 1, "the concurrent writer's value survives");
}

#[tokio::test]
async fn deleted_objects_are_gone_and_rejections_fail() {
    let server = Server::seed(&["a"], 5, true);
    {
        let mut w = server.world.lock().unwrap();
        w.faults.delete_on_put = 3;
        w.faults.reject_name = Some("s0004".into());
    }
    let r = run_serially(&server).await;
    assert_eq!(r.totals.gone, 1);
    assert_eq!(r.totals.failed, 1);
    assert_eq!(r.totals.rewritten, 3);
    assert_eq!(r.failures[0].name, "s0004");
    assert!(
        r.failures[0].error.contains("422"),
        "{}",
        r.failures[0].error
    );
}

#[tokio::test]
async fn expired_continue_token_restarts_after_last_name() {
    // Cluster-wide (keys `namespace/name`) and within one namespace (-n).
    for namespace in [None, Some("b".to_string())] {
        let server = Server::seed(&["a", "b", "c"], 10, true);
        server.world.lock().unwrap().faults.expire_continue_once = true;
        let r = run_on(
            &server,
            Options {
                namespace: namespace.clone(),
                ..opts()
            },
        )
        .await;
        let n = if namespace.is_some() { 10 } else { 30 };
        assert_eq!(r.totals.listed, n, "{namespace:?}");
        assert_eq!(r.totals.rewritten, n, "{namespace:?}");
        let w = server.world.lock().unwrap();
        assert!(w.expired_once);
        assert_eq!(w.puts, n, "no object sent twice");
    }
}

#[tokio::test]
async fn continue_tokens_that_always_expire_fail_the_listing_instead_of_looping() {
    let server = Server::seed(&["a"], 20, true);
    server.world.lock().unwrap().faults.expire_continue_always = true;
    let r = run_on(&server, opts()).await;
    // The first page (7 objects) is done; the listing then fails with a clear error.
    assert_eq!(r.totals.rewritten, 7);
    assert_eq!(r.totals.failed, 1);
    assert!(
        r.failures[0]
            .error
            .contains("expired (410 Gone) 6 times in a row"),
        "{}",
        r.failures[0].error
    );
}

#[tokio::test]
async fn many_namespaces_one_object_each_take_one_listing() {
    let names: Vec<String> = (0..300).map(|i| format!("ns-{i:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let server = Server::seed(&refs, 1, true);
    let r = run_on(
        &server,
        Options {
            page_size: 100,
            ..opts()
        },
    )
    .await;
    assert_eq!(r.totals.rewritten, 300);
    assert_eq!(r.namespaces.len(), 300);
    assert!(
        r.namespaces
            .iter()
            .all(|n| n.status == NamespaceStatus::Done)
    );
    let w = server.world.lock().unwrap();
    assert_eq!((w.cluster_lists, w.namespace_lists), (1 + 3, 0));
}

#[tokio::test]
async fn forbidden_cluster_list_goes_namespace_by_namespace_said_once() {
    let server = Server::seed(&["a", "b", "c"], 5, true);
    server.world.lock().unwrap().faults.forbid_cluster_list = true;
    let (r, said) = run_noting(&server, opts()).await;
    assert_eq!(r.totals.rewritten, 15);
    assert_eq!(r.totals.failed, 0);
    assert!(
        r.namespaces
            .iter()
            .all(|n| n.status == NamespaceStatus::Done)
    );
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("listing namespace by namespace"),
        "{said:?}"
    );
    assert_eq!(r.notes, said);
    let w = server.world.lock().unwrap();
    assert_eq!((w.namespaces_lists, w.namespace_lists), (1, 3));
}

#[tokio::test]
async fn resume_after_cancel_starts_after_the_last_key_done() {
    let server = Server::seed(&["a", "b", "c"], 20, true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    let (url, task) = server.clone().serve().await;
    let (tx, rx) = watch::channel(false);
    struct CancelAfter(AtomicU64, watch::Sender<bool>);
    impl Observer for CancelAfter {
        fn object(&self, _: &str, _: &str, _: &str, _: &Outcome) {
            if self.0.fetch_add(1, Ordering::SeqCst) + 1 == 25 {
                let _ = self.1.send(true);
            }
        }
    }
    let first = super::run(
        &client(&url),
        &[Target::secrets()],
        Options {
            concurrency: 3,
            state: Some(StateFile::new(path.clone(), "c")),
            ..opts()
        },
        rx,
        Arc::new(CancelAfter(AtomicU64::new(0), tx)),
    )
    .await
    .unwrap();
    assert!(first.interrupted);
    let saved = StateFile::load(path.clone(), "c").unwrap();
    let through = saved.done_through("secrets").unwrap().to_string();
    assert!(!saved.is_complete("secrets"));
    // Everything up to the saved key was rewritten; the key is in `b` (25 done of a's 20 and b's 20).
    assert!(through.starts_with("b/"), "{through}");
    let done_before = {
        let w = server.world.lock().unwrap();
        w.objects
            .iter()
            .filter(|((ns, name), _)| format!("{ns}/{name}") <= through)
            .inspect(|(_, o)| assert!(!o.stale))
            .count() as u64
    };
    let puts_first = server.world.lock().unwrap().puts;
    let (_tx, rx) = watch::channel(false);
    let second = super::run(
        &client(&url),
        &[Target::secrets()],
        Options {
            state: Some(saved),
            ..opts()
        },
        rx,
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    task.abort();
    assert_eq!(second.totals.skipped, done_before);
    assert_eq!(second.totals.listed, 60 - done_before);
    assert_eq!(second.totals.failed, 0);
    let w = server.world.lock().unwrap();
    assert_eq!(
        w.puts - puts_first,
        60 - done_before,
        "nothing done is sent again"
    );
    assert_eq!(w.writes, 60, "every object rewritten exactly once");
    assert!(w.objects.values().all(|o| !o.stale));
    assert!(StateFile::load(path, "c").unwrap().is_complete("secrets"));
}

#[tokio::test]
async fn qps_limits_the_request_rate() {
    let server = Server::seed(&["a"], 20, true);
    let t = Instant::now();
    let r = run_on(
        &server,
        Options {
            qps: Some(50.0),
            burst: 1,
            ..opts()
        },
    )
    .await;
    assert_eq!(r.totals.rewritten, 20);
    // ~25 requests (namespaces, hint, 3 pages, 20 PUTs) at 50/s with a burst of 1: at least ~0.45 s.
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn state_file_skips_finished_namespaces_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let server = Server::seed(&["a", "b", "c"], 4, true);
    let mut state = StateFile::new(path.clone(), "cluster-1");
    state.mark_done("secrets", "a");
    let r = run_on(
        &server,
        Options {
            state: Some(state),
            ..opts()
        },
    )
    .await;
    // A namespace finished by a namespace-by-namespace run is skipped by the cluster-wide listing too.
    let a = r.namespaces.iter().find(|n| n.namespace == "a").unwrap();
    assert_eq!(a.status, NamespaceStatus::Skipped);
    assert_eq!(a.counts.skipped, 4);
    assert_eq!(r.totals.rewritten, 8);
    let saved = StateFile::load(path.clone(), "cluster-1").unwrap();
    assert!(saved.state().resources["secrets"].complete);
    // A resumed run of a complete state does nothing.
    let puts = server.world.lock().unwrap().puts;
    let r = run_on(
        &server,
        Options {
            state: Some(saved),
            ..opts()
        },
    )
    .await;
    assert!(r.namespaces.is_empty());
    assert_eq!(r.totals.listed, 0);
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    assert_eq!(server.world.lock().unwrap().puts, puts);
    // With -n, a namespace marked done is skipped.
    let mut state = StateFile::new(dir.path().join("ns.json"), "cluster-1");
    state.mark_done("secrets", "b");
    let r = run_on(
        &server,
        Options {
            namespace: Some("b".into()),
            state: Some(state),
            ..opts()
        },
    )
    .await;
    assert_eq!(r.namespaces.len(), 1);
    assert_eq!(r.namespaces[0].status, NamespaceStatus::Skipped);
    assert_eq!(server.world.lock().unwrap().puts, puts);
}

#[tokio::test]
async fn cancel_finishes_in_flight_and_leaves_the_rest() {
    let server = Server::seed(&["a", "b"], 40, true);
    let (url, task) = server.clone().serve().await;
    let (tx, rx) = watch::channel(false);
    // Cancelled when the 10th PUT reaches the server: that one and the other worker's (two workers) may finish,
    // nothing new starts, whatever the machine's load (an observer-side cancel lags behind the workers).
    server.world.lock().unwrap().faults.cancel_on_put = Some((10, tx));
    struct Quiet;
    impl Observer for Quiet {
        fn object(&self, _: &str, _: &str, _: &str, _: &Outcome) {}
    }
    let dir = tempfile::tempdir().unwrap();
    let state = StateFile::new(dir.path().join("s.json"), "c");
    let obs = Arc::new(Quiet);
    let r = super::run(
        &client(&url),
        &[Target::secrets()],
        Options {
            concurrency: 2,
            state: Some(state),
            ..opts()
        },
        rx,
        obs,
    )
    .await
    .unwrap();
    task.abort();
    assert!(r.interrupted);
    let done = r.totals.rewritten;
    assert!(
        (10..=12).contains(&done),
        "in-flight requests finished, nothing new started: {done}"
    );
    assert_eq!(server.world.lock().unwrap().puts, done);
    assert!(
        r.namespaces
            .iter()
            .all(|n| n.status == NamespaceStatus::Incomplete)
    );
}

#[tokio::test]
async fn server_down_then_back_is_survived() {
    let server = Server::seed(&["a"], 10, true);
    // Reserve a port, start nothing there yet.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let url = format!("http://{addr}");
    let srv = server.clone();
    let starter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            let me = srv.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let me = me.clone();
                    async move {
                        let method = req.method().to_string();
                        let path = req.uri().path().to_string();
                        let query = req.uri().query().unwrap_or("").to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let (code, v, _) = me.handle(&method, &path, &query, &body);
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(code)
                                .body(Full::new(Bytes::from(serde_json::to_vec(&v).unwrap())))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let (_tx, rx) = watch::channel(false);
    let r = super::run(
        &client(&url),
        &[Target::secrets()],
        opts(),
        rx,
        Arc::new(NoProgress),
    )
    .await
    .unwrap();
    starter.abort();
    assert_eq!(r.totals.rewritten, 10, "{:?}", r.failures);
}

#[test]
fn percent_encoding() {
    assert_eq!(percent_encode("a-b.c_d~"), "a-b.c_d~");
    assert_eq!(percent_encode("x/y=z+"), "x%2Fy%3Dz%2B");
}

#[tokio::test]
async fn invalid_options_are_rejected() {
    let (_tx, rx) = watch::channel(false);
    let c = client("http://127.0.0.1:1");
    let e = super::run(
        &c,
        &[Target::secrets()],
        Options {
            concurrency: 0,
            ..Options::default()
        },
        rx.clone(),
        Arc::new(NoProgress),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("concurrency"), "{e}");
    let e = super::run(
        &c,
        &[Target::secrets()],
        Options {
            qps: Some(0.0),
            ..Options::default()
        },
        rx,
        Arc::new(NoProgress),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("qps"), "{e}");
}

/// Runs over `server` with `options`; returns the report and the notices said.
async fn run_noting(server: &Arc<Server>, options: Options) -> (Report, Vec<String>) {
    struct Notes(std::sync::Mutex<Vec<String>>);
    impl Observer for Notes {
        fn notice(&self, message: &str) {
            self.0.lock().unwrap().push(message.to_string());
        }
    }
    let notes = Arc::new(Notes(std::sync::Mutex::new(Vec::new())));
    let (url, task) = server.clone().serve().await;
    let (_tx, rx) = watch::channel(false);
    let r = super::run(
        &client(&url),
        &[Target::secrets()],
        options,
        rx,
        notes.clone(),
    )
    .await
    .unwrap();
    task.abort();
    let said = notes.0.lock().unwrap().clone();
    (r, said)
}

#[tokio::test]
async fn protobuf_server_gets_its_own_bytes_back() {
    for wire in [Wire::Auto, Wire::Protobuf] {
        let server = Server::seed(&["a", "b"], 10, true);
        server.world.lock().unwrap().speaks_protobuf = true;
        let (r, notes) = run_noting(&server, Options { wire, ..opts() }).await;
        assert_eq!(r.totals.rewritten, 20, "{wire:?} {:?}", r.failures);
        assert!(notes.is_empty(), "{notes:?}");
        {
            let w = server.world.lock().unwrap();
            assert_eq!((w.protobuf_puts, w.json_puts), (20, 0), "{wire:?}");
            assert!(
                w.protobuf_answers >= 20 + 3,
                "lists and PUTs answered in protobuf"
            );
            assert!(
                w.objects
                    .values()
                    .all(|o| !o.stale && o.value["metadata"]["labels"]["keep"] == "me"),
                "nothing lost on the way"
            );
        }
        // A second run: every object current (unchanged bytes are recognised as the same object).
        let (r, _) = run_noting(&server, Options { wire, ..opts() }).await;
        assert_eq!((r.totals.current, r.totals.rewritten), (20, 0), "{wire:?}");
    }
}

#[tokio::test]
async fn json_server_auto_sends_json_protobuf_encodes() {
    let server = Server::seed(&["a"], 10, true);
    let (r, _) = run_noting(
        &server,
        Options {
            wire: Wire::Auto,
            ..opts()
        },
    )
    .await;
    assert_eq!(r.totals.rewritten, 10);
    assert_eq!(server.world.lock().unwrap().protobuf_puts, 0);
    let server = Server::seed(&["a"], 10, true);
    let (r, _) = run_noting(
        &server,
        Options {
            wire: Wire::Protobuf,
            ..opts()
        },
    )
    .await;
    assert_eq!(r.totals.rewritten, 10, "{:?}", r.failures);
    assert_eq!(server.world.lock().unwrap().protobuf_puts, 10);
    let server = Server::seed(&["a"], 10, true);
    server.world.lock().unwrap().speaks_protobuf = true;
    let (r, _) = run_noting(
        &server,
        Options {
            wire: Wire::Json,
            ..opts()
        },
    )
    .await;
    assert_eq!(r.totals.rewritten, 10);
    let w = server.world.lock().unwrap();
    assert_eq!((w.protobuf_puts, w.protobuf_answers), (0, 0));
}

#[tokio::test]
async fn refused_protobuf_falls_back_to_json_said_once() {
    for speaks in [false, true] {
        let server = Server::seed(&["a", "b"], 10, true);
        {
            let mut w = server.world.lock().unwrap();
            w.faults.refuse_protobuf_bodies = true;
            w.speaks_protobuf = speaks;
        }
        let (r, notes) = run_noting(
            &server,
            Options {
                wire: Wire::Protobuf,
                ..opts()
            },
        )
        .await;
        assert_eq!(r.totals.rewritten, 20, "{:?}", r.failures);
        assert_eq!(r.totals.failed, 0);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("refused protobuf") && notes[0].contains("415"),
            "{notes:?}"
        );
        assert_eq!(server.world.lock().unwrap().json_puts, 20);
    }
}
