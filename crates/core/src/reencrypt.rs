//! Rewriting stored objects so they are encrypted with the current key (the `kubectl reencrypt` verb).
//!
//! kube-apiserver writes an unchanged object back to etcd only when the stored value was read through a
//! provider or key other than the first one (the transformer's `stale` flag; kubernetes/apiserver
//! `pkg/storage/value/transformer.go` and the short-circuit in `pkg/storage/etcd3/store.go` `GuaranteedUpdate`).
//! So sending every object back unchanged, with its resourceVersion, rewrites exactly the stale ones: a
//! rewritten object gets a new resourceVersion, a current one keeps it. This is what the upstream
//! kube-storage-version-migrator does (`pkg/migrator/core.go`), with one worker; here:
//!
//! * over all namespaces, one cluster-wide paginated list per resource (`limit`/`continue`, as the storage version
//!   migrator and `kubectl get -A` do), the next page fetched while the workers write the current one, so the cost
//!   follows the objects, not the namespaces; with `-n`, or for a user who may not list across namespaces (403),
//!   namespace after namespace; a `410 Gone` continue token restarts the listing after the last key handled
//!   (`namespace/name`, etcd's key order); never a whole list in memory;
//! * a bounded worker pool PUTting each object back unchanged (all fields) with its resourceVersion, in JSON or
//!   in protobuf for built-in types ([`Wire`]; a server refusing protobuf, 406/415, gets JSON from then on);
//! * `409 Conflict` → re-GET and retry with the fresh object (a concurrent writer always wins, stale data is never
//!   written); `404` → gone; `429`/`5xx`/connection errors → backoff honouring `Retry-After` (survives an API
//!   server restart); `403` within [`AUTHZ_WARMUP`] of such an error → backoff too (a kube-apiserver that has
//!   just started refuses everyone whose access comes from RBAC until its informers have synced: kubeadm's
//!   `kubernetes-admin` is bound through `kubeadm:cluster-admins`, not `system:masters`); other errors → failed;
//! * a client-side token bucket (`qps`/`burst`);
//! * a [`StateFile`] recording the last key before which every object is done (cluster-wide) or the finished
//!   namespaces, so an interrupted run resumes after them;
//! * cancellation: in-flight requests finish, queued objects are left for the next run, state is saved.

mod discovery;
pub mod report;
mod state;
#[cfg(test)]
mod tests;
mod wire;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::{Request, StatusCode};
use kube::Client;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, watch};

pub use discovery::{Discovered, Selection, Target, resolve, select};
pub use report::SCREEN_ROWS;
pub use state::{ResourceState, State, StateFile, kube_dir};
pub use wire::Wire;

use wire::Body;

/// Errors that stop a run (per-object failures are reported in [`Report`] instead).
#[derive(Debug, thiserror::Error)]
pub enum ReencryptError {
    /// Resolving resource names through discovery failed.
    #[error("discovery: {0}")]
    Discovery(String),
    /// Reading or writing the state file failed.
    #[error("{0}")]
    State(String),
    /// Listing namespaces failed (needed for all-namespace runs).
    #[error("cannot list namespaces: {0}; pass -n NAMESPACE to rewrite one namespace")]
    Namespaces(String),
    /// Invalid options.
    #[error("invalid options: {0}")]
    Options(String),
    /// The EncryptionConfiguration given with `--all-encrypted` names nothing to rewrite.
    #[error("{}: {message}", path.display())]
    Config {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// Retry policy for throttled, failing or unreachable API servers.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt (per request).
    pub max_retries: u32,
    /// First backoff; doubled on every retry.
    pub base: Duration,
    /// Longest backoff (and longest honoured `Retry-After`).
    pub cap: Duration,
    /// Per-request timeout; a timed-out request is retried.
    pub request_timeout: Duration,
    /// Conflicts tolerated per object before it is reported failed.
    pub max_conflicts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 10,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            max_conflicts: 20,
        }
    }
}

/// What to rewrite and how.
#[derive(Debug)]
pub struct Options {
    /// One namespace, or `None` for every namespace (namespaced resources only).
    pub namespace: Option<String>,
    /// Workers sending PUTs (default 16).
    pub concurrency: usize,
    /// Objects per list page (default 500, like the storage version migrator).
    pub page_size: u32,
    /// Client-side request rate limit (requests per second); `None` = unlimited.
    pub qps: Option<f64>,
    /// Requests allowed in a burst above `qps`.
    pub burst: u32,
    /// Retries and backoff.
    pub retry: RetryPolicy,
    /// Only list and count what would be sent back; nothing is written (see [`Outcome`] for why a server-side
    /// dry run cannot tell which objects are stale).
    pub dry_run: bool,
    /// Progress kept across runs; namespaces it marks done are skipped.
    pub state: Option<StateFile>,
    /// JSON or protobuf on the wire.
    pub wire: Wire,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: None,
            concurrency: 16,
            page_size: 500,
            qps: None,
            burst: 10,
            retry: RetryPolicy::default(),
            dry_run: false,
            state: None,
            wire: Wire::default(),
        }
    }
}

/// The result of sending one object back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "outcome", content = "error")]
pub enum Outcome {
    /// The server wrote it again (resourceVersion changed): it was stale.
    Rewritten,
    /// Already stored with the current key (resourceVersion unchanged; no etcd write).
    Current,
    /// Deleted meanwhile (404).
    Gone,
    /// Failed after retries, or rejected.
    Failed(String),
    /// Not attempted or not finished because the run was cancelled.
    Interrupted,
}

/// Counts per namespace (or in total).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Objects listed.
    pub listed: u64,
    /// Rewritten (were stale).
    pub rewritten: u64,
    /// Already current.
    pub current: u64,
    /// Deleted meanwhile.
    pub gone: u64,
    /// Conflicts met (each one re-read and retried; not an outcome).
    pub conflicts: u64,
    /// Failed objects (and failed listings).
    pub failed: u64,
    /// Objects a previous run already did (resumed from the state file), not sent again.
    pub skipped: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.listed += o.listed;
        self.rewritten += o.rewritten;
        self.current += o.current;
        self.gone += o.gone;
        self.conflicts += o.conflicts;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
}

/// How far a namespace got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceStatus {
    /// Every object handled, none failed.
    Done,
    /// Already done in the resumed state file; not touched.
    Skipped,
    /// Some objects failed or the listing failed; a resumed run redoes it.
    Failed,
    /// Cancelled before it finished; a resumed run redoes it.
    Incomplete,
    /// Dry run: listed only.
    Listed,
}

/// One row of the report: a namespace (`""` for cluster-scoped) of a resource.
#[derive(Clone, Debug, Serialize)]
pub struct NamespaceReport {
    /// Resource display name (`secrets`, `deployments.apps`).
    pub resource: String,
    /// Namespace, `""` for cluster-scoped resources.
    pub namespace: String,
    /// Status.
    pub status: NamespaceStatus,
    /// Counts.
    #[serde(flatten)]
    pub counts: Counts,
}

/// One failed object or listing.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// Resource display name.
    pub resource: String,
    /// Namespace (`""` for cluster-scoped).
    pub namespace: String,
    /// Object name; empty when the listing itself failed.
    pub name: String,
    /// What went wrong.
    pub error: String,
}

/// The result of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Dry run (nothing written).
    pub dry_run: bool,
    /// The run was cancelled before it finished.
    pub interrupted: bool,
    /// Wall time in seconds.
    pub elapsed_seconds: f64,
    /// Totals over all namespaces.
    pub totals: Counts,
    /// Per resource and namespace, sorted.
    pub namespaces: Vec<NamespaceReport>,
    /// Failures (at most 1000 kept; `totals.failed` counts all).
    pub failures: Vec<Failure>,
    /// Things the user should know about the run (e.g. listing namespace by namespace after a 403).
    pub notes: Vec<String>,
    /// Where progress was saved, if anywhere.
    pub state_file: Option<String>,
}

impl Report {
    /// Whether anything failed.
    pub fn has_failures(&self) -> bool {
        self.totals.failed > 0
    }
}

/// Receives progress while a run goes on (called from the collecting task; keep it cheap).
pub trait Observer: Send + Sync {
    /// An estimate of the number of objects to handle (from `remainingItemCount`), when the server gives one.
    fn total_hint(&self, _objects: u64) {}
    /// One object finished.
    fn object(&self, _resource: &str, _namespace: &str, _name: &str, _outcome: &Outcome) {}
    /// A namespace finished (or was skipped).
    fn namespace(&self, _report: &NamespaceReport) {}
    /// A note for the user, said once (also kept in [`Report::notes`]).
    fn notice(&self, _message: &str) {}
}

/// An [`Observer`] that ignores everything.
pub struct NoProgress;
impl Observer for NoProgress {}

const MAX_FAILURES_KEPT: usize = 1000;

/// Expired continue tokens in a row, without progress, before a cluster-wide listing gives up.
const MAX_EXPIRED_IN_A_ROW: u32 = 5;

/// Percent-encodes a path segment or query value (RFC 3986 unreserved characters kept).
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path of one page of a list call: `limit`, and after the first page the `continue` token the previous
/// page returned (apimachinery `ListOptions`; `pkg/apis/meta/v1/types.go`), percent-encoded.
fn page_path(base: &str, limit: u32, cont: Option<&str>) -> String {
    match cont {
        Some(c) => format!("{base}?limit={limit}&continue={}", percent_encode(c)),
        None => format!("{base}?limit={limit}"),
    }
}

/// A token bucket shared by every request of a run (client-go's `--qps`/`--burst` semantics).
struct RateLimiter {
    qps: f64,
    burst: f64,
    state: std::sync::Mutex<(f64, Instant)>,
}

impl RateLimiter {
    fn new(qps: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        RateLimiter {
            qps,
            burst,
            state: std::sync::Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes one token, sleeping until it is available (reservations queue fairly).
    async fn acquire(&self) {
        let wait = {
            let mut st = self.state.lock().expect("rate limiter lock");
            let now = Instant::now();
            let refill = now.duration_since(st.1).as_secs_f64() * self.qps;
            st.0 = (st.0 + refill).min(self.burst);
            st.1 = now;
            st.0 -= 1.0;
            if st.0 >= 0.0 { 0.0 } else { -st.0 / self.qps }
        };
        if wait > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
}

/// A response read completely.
struct Resp {
    status: StatusCode,
    body: Vec<u8>,
}

enum SendError {
    /// Retries exhausted; the last error.
    Exhausted(String),
    /// Cancelled while waiting to retry.
    Cancelled,
}

/// The message of a `Status` body (JSON or protobuf), else the start of the body.
fn status_message(body: &[u8]) -> String {
    wire::status(body)
        .0
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect())
}

/// The shared request machinery of a run.
struct Requester {
    client: Client,
    limiter: Option<RateLimiter>,
    retry: RetryPolicy,
    cancel: watch::Receiver<bool>,
    wire: Wire,
    /// Per target: the server refused protobuf (406/415); JSON from then on.
    refused: Vec<AtomicBool>,
    /// When the server last failed to answer (connection error, timeout, 5xx): a 403 soon after it may be
    /// a restarted server whose authorizer has not synced yet.
    unavailable_at: std::sync::Mutex<Option<Instant>>,
}

/// How long after the server was unavailable a 403 is taken for a restarting server's authorizer (kube-apiserver
/// serves before its RBAC informers have synced; `/readyz` waits for them) and retried with backoff.
pub const AUTHZ_WARMUP: Duration = Duration::from_secs(60);

impl Requester {
    /// The Accept header for target `t`.
    fn accept(&self, t: usize) -> &'static str {
        if self.protobuf(t) {
            wire::ACCEPT_PROTOBUF
        } else {
            wire::JSON
        }
    }

    /// Whether target `t` may use protobuf.
    fn protobuf(&self, t: usize) -> bool {
        self.wire != Wire::Json && !self.refused[t].load(Ordering::Relaxed)
    }

    /// Records that the server refused protobuf for target `t`; returns the note to say, the first time only.
    fn refuse_protobuf(&self, t: usize, target: &Target, status: StatusCode) -> Option<String> {
        (!self.refused[t].swap(true, Ordering::Relaxed)).then(|| {
            format!(
                "the API server refused protobuf for {} ({} {}); using JSON",
                target.display_name(),
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
        })
    }

    fn cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// Sleeps `d`, returning false when cancelled meanwhile.
    async fn sleep_unless_cancelled(&self, d: Duration) -> bool {
        let mut c = self.cancel.clone();
        if *c.borrow() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            r = c.wait_for(|v| *v) => r.is_err(),
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.retry.base.saturating_mul(1u32 << attempt.min(16));
        let d = exp.min(self.retry.cap);
        // Jitter of up to 25% so that workers throttled together do not retry together.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|t| t.subsec_nanos())
            .unwrap_or(0);
        d + d.mul_f64(f64::from(nanos % 1000) / 4000.0)
    }

    /// Whether the server failed to answer within the last [`AUTHZ_WARMUP`].
    fn recently_unavailable(&self) -> bool {
        self.unavailable_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < AUTHZ_WARMUP)
    }

    /// Sends a request, retrying on 429, 5xx, timeouts and connection errors with backoff; `Retry-After` (or
    /// the Status' `details.retryAfterSeconds`) is honoured up to the policy's cap. Other statuses are returned.
    async fn send(
        &self,
        method: &http::Method,
        path: &str,
        body: Option<(&[u8], &str)>,
        accept: &str,
    ) -> Result<Resp, SendError> {
        let mut attempt = 0u32;
        loop {
            if let Some(l) = &self.limiter {
                l.acquire().await;
            }
            let mut req = Request::builder()
                .method(method.clone())
                .uri(path)
                .header(http::header::ACCEPT, accept);
            if let Some((_, content_type)) = body {
                req = req.header(http::header::CONTENT_TYPE, content_type);
            }
            let req = req
                .body(kube::client::Body::from(
                    body.map(|(b, _)| b.to_vec()).unwrap_or_default(),
                ))
                .expect("valid request");
            let started = Instant::now();
            let content_type = body.map_or("", |(_, ct)| ct);
            let result = tokio::time::timeout(self.retry.request_timeout, async {
                let resp = self.client.send(req).await.map_err(|e| e.to_string())?;
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let body = resp
                    .into_body()
                    .collect_bytes()
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>((status, retry_after, body.to_vec()))
            })
            .await;
            // (what went wrong, the server's retry hint, whether the server was unavailable)
            let (err, hint, unavailable) = match result {
                Err(_) => (
                    format!(
                        "{method} {path}: no answer within {:?}",
                        self.retry.request_timeout
                    ),
                    None,
                    true,
                ),
                Ok(Err(e)) => (format!("{method} {path}: {e}"), None, true),
                Ok(Ok((status, retry_after, body)))
                    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() =>
                {
                    let hint = retry_after.or_else(|| wire::status(&body).1);
                    (
                        format!(
                            "{method} {path}: {} {}",
                            status.as_u16(),
                            status_message(&body)
                        ),
                        hint.map(Duration::from_secs),
                        // 429 is throttling by a server that answers, not an outage.
                        status != StatusCode::TOO_MANY_REQUESTS,
                    )
                }
                Ok(Ok((status, _, body)))
                    if status == StatusCode::FORBIDDEN && self.recently_unavailable() =>
                {
                    (
                        format!(
                            "{method} {path}: 403 {} (the server was unavailable less than {}s ago: \
                             a restarted kube-apiserver refuses until its authorizer has synced)",
                            status_message(&body),
                            AUTHZ_WARMUP.as_secs()
                        ),
                        None,
                        false,
                    )
                }
                Ok(Ok((status, _, body))) => {
                    tracing::trace!(
                        %method, path, status = status.as_u16(), %accept,
                        %content_type, elapsed = ?started.elapsed(),
                        "request"
                    );
                    return Ok(Resp { status, body });
                }
            };
            if unavailable {
                *self
                    .unavailable_at
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            }
            if attempt >= self.retry.max_retries {
                return Err(SendError::Exhausted(format!(
                    "{err} (gave up after {} attempts)",
                    attempt + 1
                )));
            }
            let wait = match hint {
                Some(h) => h.min(self.retry.cap).max(self.retry.base),
                None => self.backoff(attempt),
            };
            tracing::debug!(error = %err, ?wait, attempt, "retrying");
            attempt += 1;
            if !self.sleep_unless_cancelled(wait).await {
                return Err(SendError::Cancelled);
            }
        }
    }
}

/// One object queued for a worker.
struct WorkItem {
    target: usize,
    namespace: Arc<str>,
    object: Body,
    /// Position in its cluster-wide listing (0, 1, 2, …); unused on the per-namespace path.
    seq: u64,
}

/// Messages to the collecting task.
enum Event {
    Object {
        target: usize,
        namespace: Arc<str>,
        name: String,
        seq: u64,
        outcome: Outcome,
        conflicts: u32,
    },
    /// The namespace's listing finished; `count` objects were queued.
    Listed {
        target: usize,
        namespace: Arc<str>,
        count: u64,
    },
    /// The namespace's listing failed after `count` objects were queued.
    ListFailed {
        target: usize,
        namespace: Arc<str>,
        count: u64,
        error: String,
    },
    /// The listing stopped because the run was cancelled.
    ListInterrupted {
        target: usize,
        namespace: Arc<str>,
        count: u64,
    },
    /// Per-namespace path: the state file marks this namespace done; it is not listed.
    NamespaceSkipped { target: usize, namespace: String },
    /// The cluster-wide list was forbidden: the target goes namespace by namespace (said once).
    Fallback { target: usize, note: String },
    /// Cluster-wide path: `count` objects of a namespace were done by a previous run (not sent again).
    ObjectsSkipped {
        target: usize,
        namespace: Arc<str>,
        count: u64,
    },
    /// Cluster-wide path, dry run: `count` objects of a namespace were listed.
    ObjectsListed {
        target: usize,
        namespace: Arc<str>,
        count: u64,
    },
    /// The cluster-wide listing of a target ended after queueing `queued` objects.
    ClusterEnd {
        target: usize,
        queued: u64,
        end: ClusterEnd,
    },
    /// Something to tell the user once.
    Notice(String),
}

/// Sends one object back unchanged; on conflict re-reads it and sends the fresh object.
async fn rewrite_one(
    req: &Requester,
    target: &Target,
    t: usize,
    namespace: &str,
    mut object: Body,
    events: &mpsc::UnboundedSender<Event>,
) -> (String, Outcome, u32) {
    let name = object.meta().name;
    let path = target.object_path(namespace, &name);
    let api_version = target.api_version();
    let mut conflicts = 0u32;
    loop {
        let sent_rv = object.meta().resource_version;
        let protobuf = req.protobuf(t);
        let (body, content_type) = match wire::put_body(
            &mut object,
            &api_version,
            &target.kind,
            protobuf,
            req.wire == Wire::Protobuf,
        ) {
            Ok(b) => b,
            Err(e) => return (name, Outcome::Failed(format!("PUT {path}: {e}")), conflicts),
        };
        let resp = match req
            .send(
                &http::Method::PUT,
                &path,
                Some((&body, content_type)),
                req.accept(t),
            )
            .await
        {
            Ok(r) => r,
            Err(SendError::Cancelled) => return (name, Outcome::Interrupted, conflicts),
            Err(SendError::Exhausted(e)) => return (name, Outcome::Failed(e), conflicts),
        };
        drop(body);
        match resp.status {
            s if s.is_success() => {
                let new_rv = wire::parse_object(&resp.body)
                    .ok()
                    .and_then(|b| b.meta().resource_version);
                let outcome = match (&sent_rv, &new_rv) {
                    (Some(a), Some(b)) if a == b => Outcome::Current,
                    (_, Some(_)) => Outcome::Rewritten,
                    (_, None) => Outcome::Failed(format!(
                        "PUT {path}: {} without a resourceVersion in the response",
                        s.as_u16()
                    )),
                };
                return (name, outcome, conflicts);
            }
            s @ (StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::NOT_ACCEPTABLE)
                if content_type == wire::PROTOBUF || req.protobuf(t) =>
            {
                // The server does not take protobuf: JSON from now on, this object again.
                if let Some(note) = req.refuse_protobuf(t, target, s) {
                    let _ = events.send(Event::Notice(note));
                }
            }
            StatusCode::NOT_FOUND => return (name, Outcome::Gone, conflicts),
            StatusCode::CONFLICT => {
                conflicts += 1;
                if conflicts > req.retry.max_conflicts {
                    return (
                        name,
                        Outcome::Failed(format!(
                            "PUT {path}: still conflicting after {conflicts} fresh reads: {}",
                            status_message(&resp.body)
                        )),
                        conflicts,
                    );
                }
                // A concurrent writer won: read its object and send that back instead.
                match req
                    .send(&http::Method::GET, &path, None, req.accept(t))
                    .await
                {
                    Ok(r) if r.status.is_success() => match wire::parse_object(&r.body) {
                        Ok(fresh) => object = fresh,
                        Err(e) => {
                            return (name, Outcome::Failed(format!("GET {path}: {e}")), conflicts);
                        }
                    },
                    Ok(r) if r.status == StatusCode::NOT_FOUND => {
                        return (name, Outcome::Gone, conflicts);
                    }
                    Ok(r) => {
                        return (
                            name,
                            Outcome::Failed(format!(
                                "GET {path}: {} {}",
                                r.status.as_u16(),
                                status_message(&r.body)
                            )),
                            conflicts,
                        );
                    }
                    Err(SendError::Cancelled) => return (name, Outcome::Interrupted, conflicts),
                    Err(SendError::Exhausted(e)) => return (name, Outcome::Failed(e), conflicts),
                }
            }
            s => {
                return (
                    name,
                    Outcome::Failed(format!(
                        "PUT {path}: {} {}",
                        s.as_u16(),
                        status_message(&resp.body)
                    )),
                    conflicts,
                );
            }
        }
    }
}

/// Lists the namespaces (sorted by name), paginated.
async fn list_namespaces(req: &Requester, page_size: u32) -> Result<Vec<String>, ReencryptError> {
    let mut out = Vec::new();
    let mut cont: Option<String> = None;
    loop {
        let path = page_path("/api/v1/namespaces", page_size, cont.as_deref());
        let resp = match req.send(&http::Method::GET, &path, None, wire::JSON).await {
            Ok(r) => r,
            Err(SendError::Exhausted(e)) => return Err(ReencryptError::Namespaces(e)),
            Err(SendError::Cancelled) => {
                return Err(ReencryptError::Namespaces("cancelled".into()));
            }
        };
        if resp.status == StatusCode::GONE && cont.is_some() {
            // The continue token expired: list again and keep the names not seen yet.
            cont = None;
            continue;
        }
        if !resp.status.is_success() {
            return Err(ReencryptError::Namespaces(format!(
                "{} {}",
                resp.status.as_u16(),
                status_message(&resp.body)
            )));
        }
        let page = wire::parse_page(&resp.body)
            .map_err(|e| ReencryptError::Namespaces(format!("GET {path}: {e}")))?;
        out.extend(
            page.items
                .iter()
                .map(|item| item.meta().name)
                .filter(|n| !n.is_empty()),
        );
        cont = page.cont;
        if cont.is_none() {
            break;
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// An estimate of the number of objects from a one-item list (`remainingItemCount`).
async fn count_hint(req: &Requester, target: &Target, namespace: Option<&str>) -> Option<u64> {
    let path = format!("{}?limit=1", target.collection_path(namespace));
    let resp = req
        .send(&http::Method::GET, &path, None, wire::JSON)
        .await
        .ok()?;
    if !resp.status.is_success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&resp.body).ok()?;
    let items = v.get("items")?.as_array()?.len() as u64;
    let remaining = v
        .pointer("/metadata/remainingItemCount")
        .and_then(Value::as_u64);
    let cont = v
        .pointer("/metadata/continue")
        .and_then(Value::as_str)
        .unwrap_or("");
    match remaining {
        Some(r) => Some(items + r),
        None if cont.is_empty() => Some(items),
        None => None,
    }
}

enum ListEnd {
    Done(u64),
    Failed(u64, String),
    Cancelled(u64),
}

/// Lists one namespace of a target page by page, queueing each object (or only counting, in a dry run).
async fn list_namespace(
    req: &Requester,
    target: &Target,
    t: usize,
    namespace: &Arc<str>,
    page_size: u32,
    work: Option<&mpsc::Sender<WorkItem>>,
) -> ListEnd {
    let mut count = 0u64;
    let mut cont: Option<String> = None;
    // The last name queued: after a 410 the listing restarts and skips up to it (names sort like etcd keys).
    let mut last_seen: Option<String> = None;
    let ns = if target.namespaced {
        Some(&**namespace)
    } else {
        None
    };
    tracing::info!(
        "listing {} in namespace {}",
        target.display_name(),
        &**namespace
    );
    loop {
        if req.cancelled() {
            return ListEnd::Cancelled(count);
        }
        let path = page_path(&target.collection_path(ns), page_size, cont.as_deref());
        let resp = match req
            .send(&http::Method::GET, &path, None, req.accept(t))
            .await
        {
            Ok(r) => r,
            Err(SendError::Cancelled) => return ListEnd::Cancelled(count),
            Err(SendError::Exhausted(e)) => return ListEnd::Failed(count, e),
        };
        if resp.status == StatusCode::NOT_ACCEPTABLE && req.protobuf(t) {
            if let Some(note) = req.refuse_protobuf(t, target, resp.status) {
                tracing::warn!("{note}");
            }
            continue;
        }
        if resp.status == StatusCode::GONE && cont.is_some() {
            tracing::info!(
                resource = %target.display_name(), namespace = &**namespace, ?last_seen,
                "continue token expired (410 Gone); listing again after the last name seen"
            );
            cont = None;
            continue;
        }
        if !resp.status.is_success() {
            return ListEnd::Failed(
                count,
                format!(
                    "GET {path}: {} {}",
                    resp.status.as_u16(),
                    status_message(&resp.body)
                ),
            );
        }
        let page = match wire::parse_page(&resp.body) {
            Ok(p) => p,
            Err(e) => return ListEnd::Failed(count, format!("GET {path}: {e}")),
        };
        drop(resp);
        let next = page.cont;
        for item in page.items {
            let name = item.meta().name;
            if let Some(last) = &last_seen
                && name.as_str() <= last.as_str()
            {
                continue;
            }
            count += 1;
            if let Some(work) = work {
                let ok = work
                    .send(WorkItem {
                        target: t,
                        namespace: namespace.clone(),
                        object: item,
                        seq: 0,
                    })
                    .await
                    .is_ok();
                if !ok {
                    return ListEnd::Cancelled(count - 1);
                }
            }
            last_seen = Some(name);
        }
        match next {
            Some(c) => cont = Some(c),
            None => return ListEnd::Done(count),
        }
    }
}

/// How a cluster-wide listing ended.
#[derive(Debug)]
enum ClusterEnd {
    /// Every page listed.
    Done,
    /// The first page was refused with 403: the caller may go namespace by namespace.
    Forbidden(String),
    /// A page failed after retries (or could not be read).
    Failed(String),
    /// Cancelled.
    Cancelled,
}

/// What a previous run of a target finished (from the state file).
#[derive(Default)]
struct Resume {
    /// Every object whose key `namespace/name` sorts at or before this one is done.
    done_through: Option<String>,
    /// Namespaces a namespace-by-namespace run finished.
    done_namespaces: std::collections::BTreeSet<String>,
}

impl Resume {
    fn is_empty(&self) -> bool {
        self.done_through.is_none() && self.done_namespaces.is_empty()
    }

    fn covers(&self, namespace: &str, key: &str) -> bool {
        self.done_through.as_deref().is_some_and(|d| key <= d)
            || self.done_namespaces.contains(namespace)
    }
}

/// Counts objects per namespace for the events of one page (objects arrive sorted by namespace).
struct Tally {
    namespace: Option<Arc<str>>,
    count: u64,
}

impl Tally {
    fn new() -> Self {
        Tally {
            namespace: None,
            count: 0,
        }
    }

    /// Adds one object of `namespace`, flushing the previous namespace's count through `emit`.
    fn add(&mut self, namespace: &Arc<str>, emit: &mut impl FnMut(Arc<str>, u64)) {
        if self.namespace.as_ref() != Some(namespace) {
            self.flush(emit);
            self.namespace = Some(namespace.clone());
        }
        self.count += 1;
    }

    fn flush(&mut self, emit: &mut impl FnMut(Arc<str>, u64)) {
        if let Some(ns) = self.namespace.take()
            && self.count > 0
        {
            emit(ns, self.count);
        }
        self.count = 0;
    }
}

/// Lists every object of `target` with one cluster-wide paginated list (`limit`/`continue`), fetching the next
/// page while the current one is queued for the workers (or only counted, in a dry run). Objects `resume` covers
/// are skipped. A `410 Gone` (expired continue token) lists again from the start and skips every key up to the
/// last one already handled (keys come in etcd order, `namespace/name`). Returns the objects queued and how it
/// ended.
async fn list_cluster(
    req: &Arc<Requester>,
    target: &Target,
    t: usize,
    page_size: u32,
    resume: &Resume,
    work: Option<&mpsc::Sender<WorkItem>>,
    events: &mpsc::UnboundedSender<Event>,
) -> (u64, ClusterEnd) {
    type Fetch = tokio::task::JoinHandle<(String, Result<Resp, SendError>)>;
    let base = target.collection_path(None);
    tracing::info!(
        "listing {} across all namespaces (GET {base}?limit={page_size}, page after page)",
        target.display_name()
    );
    // The Accept header is chosen when the request goes out: after a 406, JSON.
    let refetch = |path: &str| -> Fetch {
        let req = req.clone();
        let path = path.to_string();
        tokio::spawn(async move {
            let r = req
                .send(&http::Method::GET, &path, None, req.accept(t))
                .await;
            (path, r)
        })
    };
    let fetch = |cont: Option<&str>| -> Fetch { refetch(&page_path(&base, page_size, cont)) };
    let mut queued = 0u64;
    // The last key handled (queued or skipped): after a 410 the listing restarts and skips up to it.
    let mut last_key: Option<String> = None;
    let mut continued = false;
    // 410s in a row without a new key handled in between: a server whose tokens expire faster than a page is
    // fetched would otherwise be listed from the start forever.
    let mut expired_in_a_row = 0u32;
    let mut first = true;
    let mut next: Option<Fetch> = Some(fetch(None));
    let mut namespace: Arc<str> = Arc::from("");
    let end = loop {
        let Some(pending) = next.take() else {
            break ClusterEnd::Done;
        };
        if req.cancelled() {
            pending.abort();
            break ClusterEnd::Cancelled;
        }
        let (path, result) = match pending.await {
            Ok(r) => r,
            Err(e) => break ClusterEnd::Failed(format!("listing task failed: {e}")),
        };
        let resp = match result {
            Ok(r) => r,
            Err(SendError::Cancelled) => break ClusterEnd::Cancelled,
            Err(SendError::Exhausted(e)) => break ClusterEnd::Failed(e),
        };
        if resp.status == StatusCode::NOT_ACCEPTABLE && req.protobuf(t) {
            if let Some(note) = req.refuse_protobuf(t, target, resp.status) {
                let _ = events.send(Event::Notice(note));
            }
            next = Some(refetch(&path));
            continue;
        }
        if resp.status == StatusCode::GONE && continued {
            expired_in_a_row += 1;
            if expired_in_a_row > MAX_EXPIRED_IN_A_ROW {
                break ClusterEnd::Failed(format!(
                    "GET {path}: the continue token expired (410 Gone) {expired_in_a_row} times in a row without \
                     progress; run again with --resume to continue after the last object done"
                ));
            }
            tracing::info!(
                resource = %target.display_name(), ?last_key,
                "continue token expired (410 Gone); listing again after the last key handled"
            );
            continued = false;
            next = Some(fetch(None));
            continue;
        }
        if resp.status == StatusCode::FORBIDDEN && first {
            break ClusterEnd::Forbidden(status_message(&resp.body));
        }
        if !resp.status.is_success() {
            break ClusterEnd::Failed(format!(
                "GET {path}: {} {}",
                resp.status.as_u16(),
                status_message(&resp.body)
            ));
        }
        first = false;
        let page = match wire::parse_page(&resp.body) {
            Ok(p) => p,
            Err(e) => break ClusterEnd::Failed(format!("GET {path}: {e}")),
        };
        drop(resp);
        // Prefetch: the next page is on its way while this one is queued.
        continued = page.cont.is_some();
        next = page.cont.as_deref().map(|c| fetch(Some(c)));
        let items = page.items;
        let mut skipped = Tally::new();
        let mut listed = Tally::new();
        let mut emit_skipped = |ns: Arc<str>, count: u64| {
            let _ = events.send(Event::ObjectsSkipped {
                target: t,
                namespace: ns,
                count,
            });
        };
        let mut emit_listed = |ns: Arc<str>, count: u64| {
            let _ = events.send(Event::ObjectsListed {
                target: t,
                namespace: ns,
                count,
            });
        };
        let mut cancelled = false;
        for item in items {
            let meta = item.meta();
            let ns = meta.namespace.as_str();
            let key = format!("{ns}/{}", meta.name);
            if last_key.as_deref().is_some_and(|l| key.as_str() <= l) {
                continue;
            }
            if &*namespace != ns {
                namespace = Arc::from(ns);
            }
            let done_before = resume.covers(ns, &key);
            last_key = Some(key);
            expired_in_a_row = 0;
            if done_before {
                skipped.add(&namespace, &mut emit_skipped);
                continue;
            }
            match work {
                Some(work) => {
                    let item = WorkItem {
                        target: t,
                        namespace: namespace.clone(),
                        object: item,
                        seq: queued,
                    };
                    if work.send(item).await.is_err() {
                        cancelled = true;
                        break;
                    }
                }
                None => listed.add(&namespace, &mut emit_listed),
            }
            queued += 1;
        }
        skipped.flush(&mut emit_skipped);
        listed.flush(&mut emit_listed);
        if cancelled {
            if let Some(n) = next.take() {
                n.abort();
            }
            break ClusterEnd::Cancelled;
        }
    };
    (queued, end)
}

/// How far one namespace of a target got.
#[derive(Default)]
struct Track {
    listed: Option<u64>,
    finished: u64,
    broken: bool,
    interrupted: bool,
}

impl Track {
    /// The namespace's status once it ended: incomplete, failed, listed (dry run), else `otherwise`.
    fn status(
        &self,
        dry_run: bool,
        otherwise: impl FnOnce() -> NamespaceStatus,
    ) -> NamespaceStatus {
        if self.interrupted {
            NamespaceStatus::Incomplete
        } else if self.broken {
            NamespaceStatus::Failed
        } else if dry_run {
            NamespaceStatus::Listed
        } else {
            otherwise()
        }
    }
}

/// Cluster-wide progress of one target: which objects are finished, in listing order, so that the state file
/// can record the last key before which everything is done.
#[derive(Default)]
struct Cursor {
    /// Objects queued, once the listing ended.
    queued: Option<u64>,
    finished: u64,
    /// The next position in listing order not yet known to be done.
    next_seq: u64,
    /// Finished objects beyond `next_seq`: their key if done (rewritten, current, gone), `None` if not.
    ahead: BTreeMap<u64, Option<String>>,
    /// Every object up to this key is done.
    done_through: Option<String>,
    /// An object failed or was interrupted: `done_through` stays before it for this run.
    blocked: bool,
    /// The listing failed or was cancelled.
    list_incomplete: bool,
    /// The last time `done_through` was saved.
    saved_at: Option<Instant>,
}

impl Cursor {
    /// Records a finished object; returns true when `done_through` moved.
    fn finish(&mut self, seq: u64, key: Option<String>) -> bool {
        self.finished += 1;
        self.ahead.insert(seq, key);
        let mut moved = false;
        while let Some(entry) = self.ahead.first_entry() {
            if *entry.key() != self.next_seq {
                break;
            }
            let key = entry.remove();
            self.next_seq += 1;
            match key {
                Some(k) if !self.blocked => {
                    self.done_through = Some(k);
                    moved = true;
                }
                _ => self.blocked = true,
            }
        }
        moved
    }

    fn ended(&self) -> bool {
        self.queued.is_some_and(|q| self.finished >= q)
    }
}

/// How a target is listed.
enum Plan {
    /// Namespace by namespace (`-n`, or cluster-scoped resources with `-n`): these namespaces.
    Namespaces(Vec<String>),
    /// One cluster-wide paginated list, skipping what `Resume` covers.
    Cluster(Resume),
    /// The state file says every object is done.
    Complete,
}

impl Options {
    fn check(&self) -> Result<(), ReencryptError> {
        if self.concurrency == 0 {
            return Err(ReencryptError::Options(
                "concurrency must be at least 1".into(),
            ));
        }
        if self.page_size == 0 {
            return Err(ReencryptError::Options(
                "page size must be at least 1".into(),
            ));
        }
        if let Some(q) = self.qps
            && !(q.is_finite() && q > 0.0)
        {
            return Err(ReencryptError::Options(format!(
                "qps must be a positive number, not {q}"
            )));
        }
        Ok(())
    }
}

/// Rewrites every object of `targets` (see the module documentation). `cancel` set to `true` stops the run:
/// in-flight requests finish, queued objects stay for the next run, the state file is saved.
///
/// Returns `Err` only when the run could not start or continue at all (discovery, namespaces, state file);
/// per-object and per-listing failures are in the [`Report`].
pub async fn run(
    client: &Client,
    targets: &[Target],
    mut options: Options,
    cancel: watch::Receiver<bool>,
    observer: Arc<dyn Observer>,
) -> Result<Report, ReencryptError> {
    let started = Instant::now();
    options.check()?;
    let req = Arc::new(Requester {
        client: client.clone(),
        limiter: options.qps.map(|q| RateLimiter::new(q, options.burst)),
        retry: options.retry.clone(),
        cancel: cancel.clone(),
        wire: options.wire,
        refused: targets.iter().map(|_| AtomicBool::new(false)).collect(),
        unavailable_at: std::sync::Mutex::new(None),
    });
    let names: Vec<String> = targets.iter().map(Target::display_name).collect();
    let mut collector = Collector::new(names, observer, options.dry_run, options.state.take());

    // How each target is listed: over all namespaces one cluster-wide list, with -n that namespace.
    let mut any_resumed = false;
    let mut plans: Vec<Plan> = Vec::new();
    for (t, target) in targets.iter().enumerate() {
        let (plan, resumed) = collector.plan(t, target, options.namespace.as_deref());
        any_resumed |= resumed;
        plans.push(plan);
    }
    // A total for the progress bar, when it costs one request per target.
    if !any_resumed && let Some(n) = total_hint(&req, targets, &plans).await {
        collector.observer.total_hint(n);
    }
    collector.track_cluster_targets(&plans);

    let (work_tx, work_rx) = mpsc::channel::<WorkItem>(options.concurrency * 4);
    let (ev_tx, ev_rx) = mpsc::unbounded_channel::<Event>();
    let targets: Arc<Vec<Target>> = Arc::new(targets.to_vec());
    let workers = if options.dry_run {
        Vec::new()
    } else {
        spawn_workers(options.concurrency, &req, &targets, work_rx, &ev_tx)
    };
    let lister = Lister {
        req,
        targets,
        page_size: options.page_size,
        work: (!options.dry_run).then_some(work_tx),
        events: ev_tx,
        done_namespaces: collector.done_namespaces(),
        all_namespaces: None,
    };
    let lister = tokio::spawn(lister.run(plans));

    collector.collect(ev_rx).await;
    let _ = lister.await;
    for w in workers {
        let _ = w.await;
    }
    collector.interrupted |= *cancel.borrow();
    collector.into_report(options.namespace.is_some(), started)
}

/// Ctrl-C / SIGTERM for [`run`]: the first sets the returned flag (stop starting new objects, let in-flight ones
/// finish, save state), the second exits the process with 130 at once. Call it inside the tokio runtime.
pub fn cancel_on_signals() -> tokio::sync::watch::Receiver<bool> {
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
    cancel_rx
}

/// An estimate of the objects of every target (one request each), if the server gives one for all.
async fn total_hint(req: &Requester, targets: &[Target], plans: &[Plan]) -> Option<u64> {
    let mut total = Some(0u64);
    for (target, plan) in targets.iter().zip(plans) {
        let ns = match plan {
            Plan::Complete => continue,
            Plan::Namespaces(nss) if nss.is_empty() => continue,
            Plan::Namespaces(nss) => Some(nss[0].as_str()),
            Plan::Cluster(_) => None,
        };
        let hint = count_hint(req, target, ns).await;
        total = total.zip(hint).map(|(a, b)| a + b);
    }
    total
}

/// The worker pool: each worker takes the next queued object and sends it back, until the queue closes.
fn spawn_workers(
    concurrency: usize,
    req: &Arc<Requester>,
    targets: &Arc<Vec<Target>>,
    work_rx: mpsc::Receiver<WorkItem>,
    events: &mpsc::UnboundedSender<Event>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let work_rx = Arc::new(Mutex::new(work_rx));
    (0..concurrency)
        .map(|_| {
            let req = req.clone();
            let work_rx = work_rx.clone();
            let events = events.clone();
            let targets = targets.clone();
            tokio::spawn(async move {
                loop {
                    let item = { work_rx.lock().await.recv().await };
                    let Some(item) = item else { break };
                    let (name, outcome, conflicts) = if req.cancelled() {
                        (item.object.meta().name, Outcome::Interrupted, 0)
                    } else {
                        let target = &targets[item.target];
                        let ns = &item.namespace;
                        rewrite_one(&req, target, item.target, ns, item.object, &events).await
                    };
                    let _ = events.send(Event::Object {
                        target: item.target,
                        namespace: item.namespace,
                        name,
                        seq: item.seq,
                        outcome,
                        conflicts,
                    });
                }
            })
        })
        .collect()
}

/// The lister: target after target; cluster-wide page after page, or namespace after namespace. Dropping it
/// closes the work queue, which stops the workers once it is empty.
struct Lister {
    req: Arc<Requester>,
    targets: Arc<Vec<Target>>,
    page_size: u32,
    /// The work queue; `None` in a dry run (objects are only counted).
    work: Option<mpsc::Sender<WorkItem>>,
    events: mpsc::UnboundedSender<Event>,
    /// Per target, the namespaces a namespace-by-namespace run finished before (state file).
    done_namespaces: Vec<BTreeSet<String>>,
    /// Every namespace, once listed (for targets that fall back to namespace by namespace).
    all_namespaces: Option<Vec<String>>,
}

impl Lister {
    async fn run(mut self, plans: Vec<Plan>) {
        for (t, plan) in plans.into_iter().enumerate() {
            let namespaces = match plan {
                Plan::Complete => continue,
                Plan::Namespaces(nss) => nss,
                Plan::Cluster(resume) => match self.cluster(t, &resume).await {
                    Some(nss) => nss,
                    None => continue,
                },
            };
            for ns in namespaces {
                self.namespace(t, Arc::from(ns)).await;
            }
        }
    }

    fn send(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// Lists target `t` cluster-wide. When that is forbidden (a user allowed to list only some namespaces),
    /// returns the namespaces to list one by one instead, as before cluster-wide listing.
    async fn cluster(&mut self, t: usize, resume: &Resume) -> Option<Vec<String>> {
        let target = &self.targets[t];
        let work = self.work.as_ref();
        let (queued, end) = list_cluster(
            &self.req,
            target,
            t,
            self.page_size,
            resume,
            work,
            &self.events,
        )
        .await;
        let ClusterEnd::Forbidden(why) = end else {
            self.send(Event::ClusterEnd {
                target: t,
                queued,
                end,
            });
            return None;
        };
        self.send(Event::Fallback {
            target: t,
            note: format!(
                "cannot list {} across all namespaces ({why}); listing namespace by namespace",
                target.display_name()
            ),
        });
        if self.all_namespaces.is_none() {
            match list_namespaces(&self.req, self.page_size).await {
                Ok(n) => self.all_namespaces = Some(n),
                Err(e) => {
                    self.send(Event::ListFailed {
                        target: t,
                        namespace: Arc::from(""),
                        count: 0,
                        error: e.to_string(),
                    });
                    return None;
                }
            }
        }
        let mut todo = Vec::new();
        for ns in self.all_namespaces.iter().flatten() {
            if self.done_namespaces[t].contains(ns) {
                self.send(Event::NamespaceSkipped {
                    target: t,
                    namespace: ns.clone(),
                });
            } else {
                todo.push(ns.clone());
            }
        }
        Some(todo)
    }

    /// Lists one namespace of target `t` and says how it ended.
    async fn namespace(&self, t: usize, ns: Arc<str>) {
        if self.req.cancelled() {
            self.send(Event::ListInterrupted {
                target: t,
                namespace: ns,
                count: 0,
            });
            return;
        }
        let target = &self.targets[t];
        let end = list_namespace(
            &self.req,
            target,
            t,
            &ns,
            self.page_size,
            self.work.as_ref(),
        )
        .await;
        self.send(match end {
            ListEnd::Done(count) => Event::Listed {
                target: t,
                namespace: ns,
                count,
            },
            ListEnd::Failed(count, error) => Event::ListFailed {
                target: t,
                namespace: ns,
                count,
                error,
            },
            ListEnd::Cancelled(count) => Event::ListInterrupted {
                target: t,
                namespace: ns,
                count,
            },
        });
    }
}

type Rows = BTreeMap<(String, String), NamespaceReport>;

/// The report row of namespace `ns` of resource `name`, created (incomplete) on first use.
fn row<'a>(rows: &'a mut Rows, name: &str, ns: &str) -> &'a mut NamespaceReport {
    rows.entry((name.to_string(), ns.to_string()))
        .or_insert_with(|| NamespaceReport {
            resource: name.to_string(),
            namespace: ns.to_string(),
            status: NamespaceStatus::Incomplete,
            counts: Counts::default(),
        })
}

/// Keeps a failure for the report (the first [`MAX_FAILURES_KEPT`]; the counts have them all).
fn keep_failure(failures: &mut Vec<Failure>, failure: Failure) {
    if failures.len() < MAX_FAILURES_KEPT {
        failures.push(failure);
    }
}

/// The collecting side of a run: turns the events of the lister and the workers into report rows, tells the
/// observer, and saves progress in the state file.
struct Collector {
    /// Display name per target.
    names: Vec<String>,
    observer: Arc<dyn Observer>,
    dry_run: bool,
    state: Option<StateFile>,
    rows: Rows,
    notes: Vec<String>,
    /// Namespaces under way (per-namespace path), or seen (cluster-wide path, settled at the end).
    tracks: HashMap<(usize, Arc<str>), Track>,
    /// Targets listed cluster-wide (a forbidden one leaves for namespace by namespace).
    cursors: HashMap<usize, Cursor>,
    /// Targets whose every object is done (cluster-wide path), for the state file.
    complete: Vec<bool>,
    failures: Vec<Failure>,
    state_error: Option<ReencryptError>,
    interrupted: bool,
}

impl Collector {
    fn new(
        names: Vec<String>,
        observer: Arc<dyn Observer>,
        dry_run: bool,
        state: Option<StateFile>,
    ) -> Self {
        Collector {
            complete: vec![false; names.len()],
            names,
            observer,
            dry_run,
            state,
            rows: Rows::new(),
            notes: Vec::new(),
            tracks: HashMap::new(),
            cursors: HashMap::new(),
            failures: Vec::new(),
            state_error: None,
            interrupted: false,
        }
    }

    /// How target `t` is listed, and whether a previous run did some of it.
    fn plan(&mut self, t: usize, target: &Target, namespace: Option<&str>) -> (Plan, bool) {
        let name = &self.names[t];
        let state = self.state.as_ref();
        match namespace {
            Some(ns) => {
                let ns = if target.namespaced { ns } else { "" };
                if state.is_some_and(|s| s.is_done(name, ns)) {
                    self.skip_namespace(t, ns.to_string());
                    (Plan::Namespaces(Vec::new()), true)
                } else {
                    (Plan::Namespaces(vec![ns.to_string()]), false)
                }
            }
            None if state.is_some_and(|s| s.is_complete(name)) => {
                let note = format!(
                    "{name}: every object was done by a previous run (state file); nothing to do"
                );
                self.notice(note);
                (Plan::Complete, true)
            }
            None => {
                let resume = Resume {
                    done_through: state.and_then(|s| s.done_through(name)).map(str::to_string),
                    done_namespaces: state
                        .and_then(|s| s.done_namespaces(name))
                        .cloned()
                        .unwrap_or_default(),
                };
                let resumed = !resume.is_empty();
                (Plan::Cluster(resume), resumed)
            }
        }
    }

    fn track_cluster_targets(&mut self, plans: &[Plan]) {
        for (t, plan) in plans.iter().enumerate() {
            if matches!(plan, Plan::Cluster(_)) {
                self.cursors.insert(t, Cursor::default());
            }
        }
    }

    /// Per target, the namespaces the state file marks done.
    fn done_namespaces(&self) -> Vec<BTreeSet<String>> {
        let state = self.state.as_ref();
        self.names
            .iter()
            .map(|n| {
                state
                    .and_then(|s| s.done_namespaces(n))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }

    async fn collect(&mut self, mut events: mpsc::UnboundedReceiver<Event>) {
        while let Some(ev) = events.recv().await {
            if let Some((t, ns)) = self.handle(ev) {
                self.settle_namespace(t, ns);
            }
        }
    }

    fn notice(&mut self, note: String) {
        self.observer.notice(&note);
        self.notes.push(note);
    }

    /// A namespace the state file marks done: a row of its own, not listed.
    fn skip_namespace(&mut self, t: usize, namespace: String) {
        let row = NamespaceReport {
            resource: self.names[t].clone(),
            namespace: namespace.clone(),
            status: NamespaceStatus::Skipped,
            counts: Counts::default(),
        };
        self.observer.namespace(&row);
        self.rows.insert((self.names[t].clone(), namespace), row);
    }

    /// Takes one event; returns the namespace (per-namespace path) that may have ended with it.
    fn handle(&mut self, ev: Event) -> Option<(usize, Arc<str>)> {
        match ev {
            Event::Object {
                target,
                namespace,
                name,
                seq,
                outcome,
                conflicts,
            } => return self.object(target, namespace, name, seq, outcome, conflicts),
            Event::ObjectsSkipped {
                target,
                namespace,
                count,
            } => self.tally(target, namespace, |c| c.skipped += count),
            Event::ObjectsListed {
                target,
                namespace,
                count,
            } => self.tally(target, namespace, |c| c.listed += count),
            Event::ClusterEnd {
                target,
                queued,
                end,
            } => self.cluster_end(target, queued, end),
            Event::Notice(note) => self.notice(note),
            Event::Fallback { target, note } => {
                self.cursors.remove(&target);
                self.notice(note);
            }
            Event::NamespaceSkipped { target, namespace } => self.skip_namespace(target, namespace),
            Event::Listed {
                target: t,
                namespace,
                count,
            } => {
                self.listed(t, &namespace, count);
                return Some((t, namespace));
            }
            Event::ListFailed {
                target: t,
                namespace,
                count,
                error,
            } => {
                self.listed(t, &namespace, count).broken = true;
                let name = &self.names[t];
                row(&mut self.rows, name, &namespace).counts.failed += 1;
                tracing::warn!(resource = %name, namespace = &*namespace, %error, "listing failed");
                keep_failure(
                    &mut self.failures,
                    Failure {
                        resource: name.clone(),
                        namespace: namespace.to_string(),
                        name: String::new(),
                        error: format!("listing failed: {error}"),
                    },
                );
                return Some((t, namespace));
            }
            Event::ListInterrupted {
                target: t,
                namespace,
                count,
            } => {
                self.listed(t, &namespace, count).interrupted = true;
                self.interrupted = true;
                return Some((t, namespace));
            }
        }
        None
    }

    /// Per-namespace path: the listing of a namespace ended after queueing `count` objects; returns its track,
    /// to say how it ended.
    fn listed(&mut self, t: usize, namespace: &Arc<str>, count: u64) -> &mut Track {
        row(&mut self.rows, &self.names[t], namespace).counts.listed = count;
        let track = self.tracks.entry((t, namespace.clone())).or_default();
        track.listed = Some(count);
        track
    }

    /// Cluster-wide path: counts objects of a namespace that are not sent (skipped, or listed in a dry run).
    fn tally(&mut self, t: usize, namespace: Arc<str>, count: impl FnOnce(&mut Counts)) {
        count(&mut row(&mut self.rows, &self.names[t], &namespace).counts);
        self.tracks.entry((t, namespace)).or_default();
    }

    /// One object finished; returns its namespace on the per-namespace path.
    fn object(
        &mut self,
        t: usize,
        namespace: Arc<str>,
        name: String,
        seq: u64,
        outcome: Outcome,
        conflicts: u32,
    ) -> Option<(usize, Arc<str>)> {
        let cluster_wide = self.cursors.contains_key(&t);
        let resource = &self.names[t];
        let row = row(&mut self.rows, resource, &namespace);
        row.counts.conflicts += u64::from(conflicts);
        if cluster_wide {
            row.counts.listed += 1;
        }
        let track = self.tracks.entry((t, namespace.clone())).or_default();
        track.finished += 1;
        let done = match &outcome {
            Outcome::Rewritten => {
                row.counts.rewritten += 1;
                true
            }
            Outcome::Current => {
                row.counts.current += 1;
                true
            }
            Outcome::Gone => {
                row.counts.gone += 1;
                true
            }
            Outcome::Failed(e) => {
                row.counts.failed += 1;
                track.broken = true;
                tracing::warn!(resource = %resource, namespace = &*namespace, name, error = %e, "failed");
                keep_failure(
                    &mut self.failures,
                    Failure {
                        resource: resource.clone(),
                        namespace: namespace.to_string(),
                        name: name.clone(),
                        error: e.clone(),
                    },
                );
                false
            }
            Outcome::Interrupted => {
                track.interrupted = true;
                self.interrupted = true;
                false
            }
        };
        self.observer.object(resource, &namespace, &name, &outcome);
        if !cluster_wide {
            return Some((t, namespace));
        }
        self.advance(t, seq, done.then(|| format!("{namespace}/{name}")));
        None
    }

    /// Cluster-wide path: object `seq` of target `t` finished (`key` when done); saves how far everything is
    /// done, and settles the target once its listing ended and every queued object finished.
    fn advance(&mut self, t: usize, seq: u64, key: Option<String>) {
        let Some(cursor) = self.cursors.get_mut(&t) else {
            return;
        };
        let moved = cursor.finish(seq, key);
        // Progress is saved at most once a second: a killed run redoes at most that much.
        if moved
            && let Some(state) = self.state.as_mut()
            && cursor
                .saved_at
                .is_none_or(|s| s.elapsed() >= Duration::from_secs(1))
            && let Some(k) = &cursor.done_through
        {
            state.set_done_through(&self.names[t], k);
            save_state(state, &mut self.state_error);
            cursor.saved_at = Some(Instant::now());
        }
        if cursor.ended() {
            self.settle_cluster(t);
        }
    }

    /// The cluster-wide listing of target `t` ended after queueing `queued` objects.
    fn cluster_end(&mut self, t: usize, queued: u64, end: ClusterEnd) {
        let cursor = self.cursors.entry(t).or_default();
        cursor.queued = Some(queued);
        match end {
            ClusterEnd::Done => {}
            ClusterEnd::Cancelled => {
                cursor.list_incomplete = true;
                self.interrupted = true;
            }
            ClusterEnd::Failed(error) | ClusterEnd::Forbidden(error) => {
                cursor.list_incomplete = true;
                // The listing failed: reported on a row of its own (namespace "", all namespaces).
                let name = &self.names[t];
                row(&mut self.rows, name, "").counts.failed += 1;
                self.tracks.entry((t, Arc::from(""))).or_default().broken = true;
                tracing::warn!(resource = %name, %error, "listing failed");
                keep_failure(
                    &mut self.failures,
                    Failure {
                        resource: name.clone(),
                        namespace: String::new(),
                        name: String::new(),
                        error: format!("listing failed: {error}"),
                    },
                );
            }
        }
        if self.dry_run || cursor.ended() {
            self.settle_cluster(t);
        }
    }

    /// Settles the rows of cluster-wide target `t` and saves its progress: complete, or done through its last
    /// key.
    fn settle_cluster(&mut self, t: usize) {
        let Some(cursor) = self.cursors.get(&t) else {
            return;
        };
        let name = &self.names[t];
        let complete = finish_cluster(
            t,
            cursor,
            name,
            &mut self.tracks,
            &mut self.rows,
            self.dry_run,
            &*self.observer,
        );
        self.complete[t] = complete;
        if let Some(state) = self.state.as_mut() {
            save_cluster_progress(state, name, cursor, complete, &mut self.state_error);
        }
    }

    /// Per-namespace path: settles namespace `ns` of target `t` once it is listed and every object finished.
    fn settle_namespace(&mut self, t: usize, ns: Arc<str>) {
        let key = (t, ns);
        let track = self.tracks.get(&key).expect("track exists");
        let Some(listed) = track.listed else { return };
        if !self.dry_run && track.finished < listed {
            return;
        }
        let status = track.status(self.dry_run, || NamespaceStatus::Done);
        self.tracks.remove(&key);
        let name = &self.names[t];
        let row = self
            .rows
            .get_mut(&(name.clone(), key.1.to_string()))
            .expect("row exists");
        row.status = status.clone();
        if status == NamespaceStatus::Done
            && let Some(state) = self.state.as_mut()
        {
            state.mark_done(name, &key.1);
            save_state(state, &mut self.state_error);
        }
        self.observer.namespace(row);
    }

    /// Namespace by namespace over all namespaces: a resource is complete when every namespace is done (a
    /// resumed run then has nothing to do).
    fn mark_complete_by_namespace(&mut self) {
        let Some(state) = self.state.as_mut().filter(|_| !self.dry_run) else {
            return;
        };
        let mut changed = false;
        for (t, name) in self.names.iter().enumerate() {
            if self.cursors.contains_key(&t) || self.complete[t] {
                continue;
            }
            let all_done = self
                .rows
                .values()
                .filter(|r| &r.resource == name)
                .all(|r| matches!(r.status, NamespaceStatus::Done | NamespaceStatus::Skipped));
            if all_done && !state.is_complete(name) {
                state.mark_complete(name);
                changed = true;
            }
        }
        if changed {
            save_state(state, &mut self.state_error);
        }
    }

    fn into_report(
        mut self,
        one_namespace: bool,
        started: Instant,
    ) -> Result<Report, ReencryptError> {
        let mut totals = Counts::default();
        for row in self.rows.values() {
            totals.add(&row.counts);
        }
        if !one_namespace {
            self.mark_complete_by_namespace();
        }
        if let Some(e) = self.state_error {
            return Err(e);
        }
        Ok(Report {
            dry_run: self.dry_run,
            interrupted: self.interrupted,
            elapsed_seconds: started.elapsed().as_secs_f64(),
            totals,
            namespaces: self.rows.into_values().collect(),
            failures: self.failures,
            notes: self.notes,
            state_file: self.state.as_ref().map(|s| s.path().display().to_string()),
        })
    }
}

fn save_state(state: &mut StateFile, error: &mut Option<ReencryptError>) {
    if let Err(e) = state.save() {
        tracing::error!(error = %e, "cannot save progress");
        error.get_or_insert(e);
    }
}

/// Records a finished cluster-wide target in the state file: complete, or done through its last key.
fn save_cluster_progress(
    state: &mut StateFile,
    name: &str,
    cursor: &Cursor,
    complete: bool,
    error: &mut Option<ReencryptError>,
) {
    if complete {
        state.mark_complete(name);
    } else if let Some(k) = &cursor.done_through {
        state.set_done_through(name, k);
    } else {
        return;
    }
    save_state(state, error);
}

/// Settles the rows of a target listed cluster-wide once its listing ended and every queued object finished;
/// returns whether every object of the target is done.
fn finish_cluster(
    t: usize,
    cursor: &Cursor,
    name: &str,
    tracks: &mut HashMap<(usize, Arc<str>), Track>,
    rows: &mut BTreeMap<(String, String), NamespaceReport>,
    dry_run: bool,
    observer: &dyn Observer,
) -> bool {
    let mut keys: Vec<(usize, Arc<str>)> = tracks.keys().filter(|k| k.0 == t).cloned().collect();
    keys.sort();
    // A listing that stopped early may not have reached the end of its last namespace.
    let last = keys.last().map(|k| k.1.clone());
    for key in keys {
        let track = tracks.remove(&key).expect("listed above");
        let Some(row) = rows.get_mut(&(name.to_string(), key.1.to_string())) else {
            continue;
        };
        row.status = track.status(dry_run, || {
            if row.counts.listed == 0 && row.counts.skipped > 0 {
                NamespaceStatus::Skipped
            } else if cursor.list_incomplete && last.as_ref() == Some(&key.1) {
                NamespaceStatus::Incomplete
            } else {
                NamespaceStatus::Done
            }
        });
        observer.namespace(row);
    }
    !dry_run && !cursor.blocked && !cursor.list_incomplete
}
