//! etcd connection (TLS, etcdctl-compatible flags and environment) and paginated, read-only range scans.
//!
//! - [`EtcdArgs`]: the clap flags `--endpoints --cacert --cert --key --dial-timeout` (also from
//!   `ETCDCTL_*`), defaulting to kubeadm's apiserver-etcd-client files under a node root.
//! - [`EtcdConfig::load_tls`]: reads and checks the PEM files up front (a TLS handshake only reports
//!   that it failed, not which file is wrong).
//! - [`EtcdClient`]: the workspace's one etcd client, etcd's KV API (range, put, delete, txn) over the
//!   generated code of `atrest-proto`, with a receive limit for pages of 1.5 MiB values.
//! - [`EtcdReader`]: a connected client for reading; [`EtcdReader::pages`] walks a key range page by
//!   page at one revision (etcd 3.4 has no range streaming), holding one page at a time and halving
//!   the page when a response is too large.
//!
//! The plugins only read (through [`EtcdReader`]); writes are for etcd's own clients (the sandbox's
//! API server, tests, benchmarks; [`connect_client`]). `-v` (tracing debug) logs each round trip —
//! keys, counts and timings, never values.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use atrest_proto::etcdserverpb::{self as pb, kv_client::KvClient};
use openssl::ssl::{SslConnector, SslMethod};
use openssl::x509::X509;

use crate::client::parse_positive_timeout;
use crate::kubeadm::node;
use crate::pki::{Certificate, PrivateKey};

/// kubeadm's local etcd client endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://127.0.0.1:2379";
/// Keys per range request unless told otherwise. etcd 3.4 walks its whole key index from the start
/// key to the range end on every limited range (`mvcc/kvstore_txn.go` `rangeKeys` collects every
/// revision, then truncates to the limit), so paging costs grow with the number of pages: 2000
/// keys (a few MiB per page) measured 1.6x faster than 500 on 100,000 secrets.
pub const DEFAULT_PAGE_SIZE: PageSize = PageSize(2000);

/// Keys per range request (etcd's `limit`; `--page-size`): at least 1, [`DEFAULT_PAGE_SIZE`] by default. Every
/// paged read of etcd takes one, directly ([`EtcdReader::pages`]) or through the etcd pod
/// ([`crate::podexec::EtcdctlPager`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PageSize(i64);

impl PageSize {
    /// `n` keys per request; `None` below 1.
    pub const fn new(n: i64) -> Option<Self> {
        if n >= 1 { Some(PageSize(n)) } else { None }
    }

    /// The number of keys.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// Half as many keys, at least 1 (a response too large for one message is read again with half).
    pub fn halved(self) -> Self {
        PageSize((self.0 / 2).max(1))
    }
}

/// `n` keys, 1 when `n` is below 1 (etcd would read a limit of 0 as no limit).
impl From<i64> for PageSize {
    fn from(n: i64) -> Self {
        PageSize(n.max(1))
    }
}

impl Default for PageSize {
    fn default() -> Self {
        DEFAULT_PAGE_SIZE
    }
}

impl std::fmt::Display for PageSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for PageSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let n: i64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a whole number of keys"))?;
        PageSize::new(n).ok_or_else(|| "must be at least 1".to_string())
    }
}
/// HTTP/2 stream window: large enough that etcd can send a whole page without waiting for us.
const H2_WINDOW: u32 = 16 * 1024 * 1024;
/// Largest gRPC response [`EtcdReader`] accepts (etcd's own request limit is 1.5 MiB per value); a larger page
/// is read again with half the keys.
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// Largest gRPC message of a [`connect_client`] client: etcd's Go client default (`math.MaxInt32`,
/// go.etcd.io/etcd/client/v3 `options.go` `defaultMaxCallRecvMsgSize`), which kube-apiserver keeps, so an
/// unpaged LIST of large objects reads as it does there.
const CLIENT_MAX_MESSAGE_BYTES: usize = i32::MAX as usize;

/// Errors talking to etcd; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// A TLS file is missing or malformed.
    #[error("etcd {role} {}: {reason}; {hint}", path.display())]
    TlsFile {
        /// "CA certificate", "client certificate", "client key".
        role: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// Which flag/variable to use.
        hint: &'static str,
    },
    /// The client key does not belong to the client certificate.
    #[error(
        "etcd client key {} does not match client certificate {}; pass a matching --cert/--key pair",
        key.display(), cert.display()
    )]
    KeyMismatch {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
    },
    /// A bad flag value.
    #[error("{0}")]
    InvalidArgs(String),
    /// Connecting or a request failed.
    #[error("etcd at {endpoints}: {message}")]
    Request {
        /// The endpoints tried.
        endpoints: String,
        /// What failed and the client's error.
        message: String,
    },
    /// etcd (or the gRPC layer) refused or failed a request.
    #[error("etcd at {endpoints}: {op}: {message} ({code:?})")]
    Rpc {
        /// The endpoints.
        endpoints: String,
        /// The request and its key, e.g. `range /registry/secrets/`.
        op: String,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message and its causes.
        message: String,
    },
}

impl EtcdError {
    /// The response exceeded the receive limit (gRPC's "decoded message length too large").
    pub fn is_too_large(&self) -> bool {
        matches!(self, EtcdError::Rpc { message, .. }
            if message.contains("too large") || message.contains("larger than max"))
    }

    /// The revision asked for has been compacted away (etcd's `ErrCompacted`).
    pub fn is_compacted(&self) -> bool {
        matches!(self, EtcdError::Rpc { code: tonic::Code::OutOfRange, message, .. }
            if message.contains("compacted"))
    }

    /// The error without the endpoints (for messages that name them already).
    pub fn detail(&self) -> String {
        match self {
            EtcdError::Rpc {
                op, code, message, ..
            } => format!("{op}: {message} ({code:?})"),
            EtcdError::Request { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

pub use atrest_proto::etcdserverpb::{
    DeleteRangeResponse, PutResponse, RangeResponse, ResponseHeader, TxnResponse,
};
pub use atrest_proto::mvccpb::KeyValue;

/// Result alias for this module.
pub type Result<T, E = EtcdError> = std::result::Result<T, E>;

/// etcd connection flags, spelled like etcdctl's and read from the same environment variables.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EtcdArgs {
    /// etcd client endpoints, comma separated.
    #[arg(long, env = "ETCDCTL_ENDPOINTS", value_delimiter = ',', value_name = "URLS", default_value = DEFAULT_ENDPOINT)]
    pub endpoints: Vec<String>,
    /// CA bundle that signed etcd's serving certificate [default: <root>/etc/kubernetes/pki/etcd/ca.crt].
    #[arg(long, env = "ETCDCTL_CACERT", value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate [default: <root>/etc/kubernetes/pki/apiserver-etcd-client.crt].
    #[arg(long, env = "ETCDCTL_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Client private key [default: <root>/etc/kubernetes/pki/apiserver-etcd-client.key].
    #[arg(long, env = "ETCDCTL_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// How long to wait for a connection, e.g. 5s, 500ms, 1m.
    #[arg(long, env = "ETCDCTL_DIAL_TIMEOUT", value_name = "DURATION", default_value = "5s", value_parser = parse_positive_timeout)]
    pub dial_timeout: Duration,
}

impl EtcdArgs {
    /// Fill in kubeadm's default file paths under `root` (`/` on a control-plane node). Explicit
    /// paths are taken as given.
    pub fn resolve(&self, root: &Path) -> EtcdConfig {
        let pick = |given: &Option<PathBuf>, default: &str| {
            given
                .clone()
                .unwrap_or_else(|| node::under_root(root, default))
        };
        EtcdConfig {
            endpoints: self
                .endpoints
                .iter()
                .map(|e| e.trim().to_string())
                .filter(|e| !e.is_empty())
                .collect(),
            cacert: pick(&self.cacert, node::ETCD_CA),
            cert: pick(&self.cert, node::APISERVER_ETCD_CLIENT_CERT),
            key: pick(&self.key, node::APISERVER_ETCD_CLIENT_KEY),
            dial_timeout: self.dial_timeout,
        }
    }
}

/// Resolved connection settings.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// Client endpoints (`https://host:port`).
    pub endpoints: Vec<String>,
    /// CA bundle file.
    pub cacert: PathBuf,
    /// Client certificate file.
    pub cert: PathBuf,
    /// Client key file.
    pub key: PathBuf,
    /// Connection timeout.
    pub dial_timeout: Duration,
}

/// Checked TLS material (PEM bytes). The key is never shown by `Debug`.
pub struct EtcdTls {
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EtcdTls { .. }")
    }
}

fn read_tls_file(role: &'static str, path: &Path, hint: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| EtcdError::TlsFile {
        role,
        path: path.to_path_buf(),
        reason: match e.kind() {
            std::io::ErrorKind::NotFound => "file not found".to_string(),
            std::io::ErrorKind::PermissionDenied => {
                "permission denied (run as root or with sudo)".to_string()
            }
            _ => e.to_string(),
        },
        hint,
    })
}

impl EtcdConfig {
    /// `endpoints` joined by commas, for messages.
    pub fn endpoints_display(&self) -> String {
        self.endpoints.join(",")
    }

    /// Read and check the CA, certificate and key: each parses as PEM of the right kind and the key
    /// matches the certificate. Errors name the file and the flag that sets it.
    pub fn load_tls(&self) -> Result<EtcdTls> {
        const CA_HINT: &str =
            "pass --cacert or set ETCDCTL_CACERT (or --root for a node directory)";
        const CERT_HINT: &str = "pass --cert or set ETCDCTL_CERT (or --root for a node directory)";
        const KEY_HINT: &str = "pass --key or set ETCDCTL_KEY (or --root for a node directory)";
        let src = |p: &Path| p.display().to_string();
        let bad = |role, path: &Path, hint, e: crate::pki::PkiError| EtcdError::TlsFile {
            role,
            path: path.to_path_buf(),
            reason: match e {
                crate::pki::PkiError::NotPem { what, detail, .. } => {
                    format!(
                        "not a PEM {what}{}",
                        detail.map(|d| format!(" ({d})")).unwrap_or_default()
                    )
                }
                other => other.to_string(),
            },
            hint,
        };
        let ca_pem = read_tls_file("CA certificate", &self.cacert, CA_HINT)?;
        Certificate::bundle_from_pem(&ca_pem, &src(&self.cacert))
            .map_err(|e| bad("CA certificate", &self.cacert, CA_HINT, e))?;
        let cert_pem = read_tls_file("client certificate", &self.cert, CERT_HINT)?;
        let cert = Certificate::from_pem(&cert_pem, &src(&self.cert))
            .map_err(|e| bad("client certificate", &self.cert, CERT_HINT, e))?;
        let key_pem = read_tls_file("client key", &self.key, KEY_HINT)?;
        let key = PrivateKey::from_pem(&key_pem, &src(&self.key))
            .map_err(|e| bad("client key", &self.key, KEY_HINT, e))?;
        if !cert.matches_key(&key) {
            return Err(EtcdError::KeyMismatch {
                cert: self.cert.clone(),
                key: self.key.clone(),
            });
        }
        Ok(EtcdTls {
            ca_pem,
            cert_pem,
            key_pem,
        })
    }
}

/// etcd's KV API as one small typed client: ranges (limit, revision, serializable, keys-only,
/// count-only), puts, deletes and transactions comparing mod revisions, over the generated
/// `etcdserverpb` KV client of `atrest-proto`. Every client of the workspace is one of these, made by
/// [`connect_client`] (or held inside an [`EtcdReader`]): `TCP_NODELAY` sockets, OpenSSL TLS, and a
/// receive limit far above gRPC's default 4 MiB (pages of values up to etcd's 1.5 MiB request limit).
/// Cloning is cheap (one HTTP/2 connection).
#[derive(Clone)]
pub struct EtcdClient {
    kv: KvClient<tonic::transport::Channel>,
    endpoints: Arc<str>,
}

impl std::fmt::Debug for EtcdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EtcdClient({})", self.endpoints)
    }
}

/// Options of a range read (etcdctl `get`'s flags): [`EtcdClient::get`], [`TxnOp::get`].
#[derive(Clone, Debug, Default)]
pub struct GetOptions {
    range_end: Option<Vec<u8>>,
    prefix: bool,
    limit: i64,
    revision: i64,
    serializable: bool,
    keys_only: bool,
    count_only: bool,
}

impl GetOptions {
    /// A single-key, linearizable read of the newest revision.
    pub fn new() -> Self {
        Self::default()
    }
    /// Read `[key, end)`.
    pub fn with_range(mut self, end: impl Into<Vec<u8>>) -> Self {
        self.range_end = Some(end.into());
        self
    }
    /// Read every key starting with the key ([`prefix_range_end`]).
    pub fn with_prefix(mut self) -> Self {
        self.prefix = true;
        self
    }
    /// At most `limit` keys (0: all).
    pub fn with_limit(mut self, limit: i64) -> Self {
        self.limit = limit;
        self
    }
    /// Read at `revision` (0: the newest).
    pub fn with_revision(mut self, revision: i64) -> Self {
        self.revision = revision;
        self
    }
    /// A serializable read: what the member has applied, without a ReadIndex round.
    pub fn with_serializable(mut self) -> Self {
        self.serializable = true;
        self
    }
    /// Keys and revisions without values.
    pub fn with_keys_only(mut self) -> Self {
        self.keys_only = true;
        self
    }
    /// Only the number of keys (`RangeResponse::count`).
    pub fn with_count_only(mut self) -> Self {
        self.count_only = true;
        self
    }

    /// The end of the keys covered from `key`: none (one key), the given end, or the prefix's end.
    fn range_end(&self, key: &[u8]) -> Vec<u8> {
        match (self.prefix, &self.range_end) {
            (true, _) => prefix_range_end(key),
            (false, end) => end.clone().unwrap_or_default(),
        }
    }

    fn request(self, key: Vec<u8>) -> pb::RangeRequest {
        let range_end = self.range_end(&key);
        pb::RangeRequest {
            key,
            range_end,
            limit: self.limit,
            revision: self.revision,
            serializable: self.serializable,
            keys_only: self.keys_only,
            count_only: self.count_only,
        }
    }
}

/// Options of a delete: one key by default; the keys covered as [`GetOptions`] covers them.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions(GetOptions);

impl DeleteOptions {
    /// Delete one key.
    pub fn new() -> Self {
        Self::default()
    }
    /// Delete `[key, end)`.
    pub fn with_range(self, end: impl Into<Vec<u8>>) -> Self {
        Self(self.0.with_range(end))
    }
    /// Delete every key starting with the key.
    pub fn with_prefix(self) -> Self {
        Self(self.0.with_prefix())
    }

    fn request(self, key: Vec<u8>) -> pb::DeleteRangeRequest {
        let range_end = self.0.range_end(&key);
        pb::DeleteRangeRequest { key, range_end }
    }
}

/// How a [`Compare`] compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// `=`
    Equal,
    /// `>`
    Greater,
    /// `<`
    Less,
    /// `!=`
    NotEqual,
}

/// One condition of a [`Txn`].
#[derive(Clone, Debug)]
pub struct Compare(pb::Compare);

impl Compare {
    /// The key's mod revision compared with `revision` (0: the key does not exist).
    pub fn mod_revision(key: impl Into<Vec<u8>>, op: CompareOp, revision: i64) -> Self {
        use pb::compare::{CompareResult, CompareTarget, TargetUnion};
        let result = match op {
            CompareOp::Equal => CompareResult::Equal,
            CompareOp::Greater => CompareResult::Greater,
            CompareOp::Less => CompareResult::Less,
            CompareOp::NotEqual => CompareResult::NotEqual,
        };
        Compare(pb::Compare {
            result: result as i32,
            target: CompareTarget::Mod as i32,
            key: key.into(),
            target_union: Some(TargetUnion::ModRevision(revision)),
        })
    }
}

/// One operation of a [`Txn`] branch.
#[derive(Clone, Debug)]
pub struct TxnOp(pb::RequestOp);

impl TxnOp {
    /// Write `value` at `key`.
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        TxnOp(pb::RequestOp {
            request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                key: key.into(),
                value: value.into(),
            })),
        })
    }
    /// Read `key` (or a range).
    pub fn get(key: impl Into<Vec<u8>>, opts: Option<GetOptions>) -> Self {
        TxnOp(pb::RequestOp {
            request: Some(pb::request_op::Request::RequestRange(
                opts.unwrap_or_default().request(key.into()),
            )),
        })
    }
    /// Delete `key` (or a range).
    pub fn delete(key: impl Into<Vec<u8>>, opts: Option<DeleteOptions>) -> Self {
        TxnOp(pb::RequestOp {
            request: Some(pb::request_op::Request::RequestDeleteRange(
                opts.unwrap_or_default().request(key.into()),
            )),
        })
    }
}

/// A transaction: `if all(when) { and_then } else { or_else }`, applied atomically at one revision.
#[derive(Clone, Debug, Default)]
pub struct Txn(pb::TxnRequest);

impl Txn {
    /// An empty transaction (no conditions: `and_then` runs).
    pub fn new() -> Self {
        Self::default()
    }
    /// The conditions, all of which must hold.
    pub fn when(mut self, compares: Vec<Compare>) -> Self {
        self.0.compare = compares.into_iter().map(|c| c.0).collect();
        self
    }
    /// What runs when the conditions hold.
    pub fn and_then(mut self, ops: Vec<TxnOp>) -> Self {
        self.0.success = ops.into_iter().map(|o| o.0).collect();
        self
    }
    /// What runs otherwise.
    pub fn or_else(mut self, ops: Vec<TxnOp>) -> Self {
        self.0.failure = ops.into_iter().map(|o| o.0).collect();
        self
    }
}

/// The range reads' results in a [`TxnResponse`], in order (e.g. the current value read by an
/// `or_else` branch after a failed compare).
pub fn txn_ranges(resp: TxnResponse) -> impl Iterator<Item = RangeResponse> {
    resp.responses
        .into_iter()
        .filter_map(|op| match op.response {
            Some(pb::response_op::Response::ResponseRange(r)) => Some(r),
            _ => None,
        })
}

impl EtcdClient {
    fn new(channel: tonic::transport::Channel, endpoints: &str, max_message: usize) -> Self {
        EtcdClient {
            kv: KvClient::new(channel)
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message),
            endpoints: endpoints.into(),
        }
    }

    /// The endpoints, comma separated (for messages).
    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    /// One KV call: `call` on a clone of the client (cheap: one shared channel); a failure names `op` and `key`.
    async fn rpc<T, F>(
        &self,
        op: &str,
        key: &[u8],
        call: impl FnOnce(KvClient<tonic::transport::Channel>) -> F,
    ) -> Result<T>
    where
        F: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        call(self.kv.clone())
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| EtcdError::Rpc {
                endpoints: self.endpoints.to_string(),
                op: format!("{op} {}", String::from_utf8_lossy(key)),
                code: status.code(),
                message: describe(&status),
            })
    }

    /// Range read of `key` (one key unless `opts` says a range or prefix).
    pub async fn get(
        &self,
        key: impl Into<Vec<u8>>,
        opts: Option<GetOptions>,
    ) -> Result<RangeResponse> {
        let req = opts.unwrap_or_default().request(key.into());
        let key = req.key.clone();
        self.rpc("range", &key, |mut kv| async move { kv.range(req).await })
            .await
    }

    /// Write `value` at `key`.
    pub async fn put(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Result<PutResponse> {
        let key = key.into();
        let req = pb::PutRequest {
            key: key.clone(),
            value: value.into(),
        };
        self.rpc("put", &key, |mut kv| async move { kv.put(req).await })
            .await
    }

    /// Delete `key` (or a range or prefix).
    pub async fn delete(
        &self,
        key: impl Into<Vec<u8>>,
        opts: Option<DeleteOptions>,
    ) -> Result<DeleteRangeResponse> {
        let req = opts.unwrap_or_default().request(key.into());
        let key = req.key.clone();
        self.rpc("delete", &key, |mut kv| async move {
            kv.delete_range(req).await
        })
        .await
    }

    /// Run a transaction (a failure names the key of its first compare).
    pub async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        let key = txn
            .0
            .compare
            .first()
            .map(|c| c.key.clone())
            .unwrap_or_default();
        self.rpc("txn on", &key, |mut kv| async move { kv.txn(txn.0).await })
            .await
    }
}

/// A connected, read-only etcd client.
pub struct EtcdReader {
    client: EtcdClient,
}

impl EtcdReader {
    /// Check the TLS files, connect, and make one request (a count-only range) so that unreachable
    /// endpoints and refused certificates fail here with a clear message.
    pub async fn connect(cfg: &EtcdConfig) -> Result<Self> {
        let endpoints = cfg.endpoints_display();
        if cfg.endpoints.is_empty() {
            return Err(EtcdError::InvalidArgs(
                "no etcd endpoint given: pass --endpoints https://HOST:2379 or set ETCDCTL_ENDPOINTS".into(),
            ));
        }
        let all_plain = cfg.endpoints.iter().all(|e| e.starts_with("http://"));
        let tls = if all_plain {
            None
        } else {
            Some(Arc::new(tls_connector(&cfg.load_tls()?).map_err(|e| {
                EtcdError::Request {
                    endpoints: endpoints.clone(),
                    message: format!("cannot set up TLS: {e}"),
                }
            })?))
        };
        let started = Instant::now();
        const HINT: &str = "check that --endpoints is right and etcd is running, that --cacert is the CA that \
                            signed etcd's certificate and that etcd trusts --cert";
        let hint = format!("; {HINT}");
        let connect = dial_client(
            &cfg.endpoints,
            tls,
            cfg.dial_timeout,
            Some(Duration::from_secs(60)),
            MAX_RESPONSE_BYTES,
            &hint,
        );
        let client = tokio::time::timeout(cfg.dial_timeout, connect)
            .await
            .map_err(|_| EtcdError::Request {
                endpoints: endpoints.clone(),
                message: format!(
                    "no connection within {:?} (--dial-timeout)",
                    cfg.dial_timeout
                ),
            })??;
        // The smallest request that needs a working connection and an accepted certificate.
        let probe = client.get(&b"\0"[..], Some(GetOptions::new().with_count_only()));
        let resp = tokio::time::timeout(cfg.dial_timeout, probe)
            .await
            .map_err(|_| EtcdError::Request {
                endpoints: endpoints.clone(),
                message: format!(
                    "no answer within {:?} (--dial-timeout); check the endpoint, --cacert, and that etcd trusts --cert",
                    cfg.dial_timeout
                ),
            })?
            .map_err(|e| EtcdError::Request {
                endpoints: endpoints.clone(),
                message: format!("first request failed: {}; {HINT}", e.detail()),
            })?;
        tracing::debug!(
            endpoints = %endpoints,
            revision = resp.header().map_or(0, |h| h.revision()),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "connected to etcd"
        );
        Ok(Self { client })
    }

    /// The client underneath (reads only, by this module's contract).
    pub fn client(&self) -> &EtcdClient {
        &self.client
    }

    /// Page through every key in `[start, end)` at one revision (the first page's), `page_size`
    /// keys per request. For a prefix use [`prefix_range_end`].
    pub fn pages(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        page_size: impl Into<PageSize>,
    ) -> RangePager {
        RangePager {
            client: self.client.clone(),
            next: Some(start),
            end,
            limit: page_size.into(),
            revision: 0,
            round_trips: 0,
        }
    }

    /// Read one key; `None` if absent.
    pub async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        let started = Instant::now();
        let mut resp = self.client.get(key, None).await?;
        let kvs = resp.take_kvs();
        tracing::debug!(key = %String::from_utf8_lossy(key), found = !kvs.is_empty(),
            elapsed_ms = started.elapsed().as_millis() as u64, "etcd get");
        Ok(kvs.into_iter().next())
    }
}

/// Iterates a key range page by page (see [`EtcdReader::pages`]).
pub struct RangePager {
    client: EtcdClient,
    next: Option<Vec<u8>>,
    end: Vec<u8>,
    limit: PageSize,
    revision: i64,
    round_trips: u64,
}

impl RangePager {
    /// The next page of key-values, or `None` when the range is exhausted. A response too large
    /// for one message is retried with half the page size.
    pub async fn next_page(&mut self) -> Result<Option<Vec<KeyValue>>> {
        let Some(start) = self.next.take() else {
            return Ok(None);
        };
        loop {
            let opts = GetOptions::new()
                .with_range(self.end.clone())
                .with_limit(self.limit.get())
                .with_revision(self.revision);
            let started = Instant::now();
            match self.client.get(start.clone(), Some(opts)).await {
                Ok(mut resp) => {
                    self.round_trips += 1;
                    if self.revision == 0 {
                        self.revision = resp.header().map_or(0, |h| h.revision());
                    }
                    let kvs = resp.take_kvs();
                    tracing::debug!(
                        from = %String::from_utf8_lossy(&start),
                        limit = self.limit.get(),
                        returned = kvs.len(),
                        more = resp.more(),
                        revision = self.revision,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "etcd range"
                    );
                    if let Some(last) = kvs.last().filter(|_| resp.more()) {
                        // Continue right after the last key: key + "\0".
                        let mut next = last.key().to_vec();
                        next.push(0);
                        self.next = Some(next);
                    }
                    return Ok(Some(kvs));
                }
                Err(e) if self.limit.get() > 1 && e.is_too_large() => {
                    self.limit = self.limit.halved();
                    tracing::debug!(
                        limit = self.limit.get(),
                        "etcd range response too large; halving the page size"
                    );
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Requests made so far.
    pub fn round_trips(&self) -> u64 {
        self.round_trips
    }

    /// The revision all pages are read at (0 before the first page).
    pub fn revision(&self) -> i64 {
        self.revision
    }
}

/// A gRPC etcd client on the transport of [`Dialer`] (`TCP_NODELAY`, OpenSSL TLS for `https://`
/// endpoints), trying `endpoints` in order. `request_timeout` bounds each request; `hint` follows the
/// error when the connection cannot be made.
async fn dial_client(
    endpoints: &[String],
    tls: Option<Arc<SslConnector>>,
    dial_timeout: Duration,
    request_timeout: Option<Duration>,
    max_message: usize,
    hint: &str,
) -> Result<EtcdClient> {
    let Some(first) = endpoints.first() else {
        return Err(EtcdError::InvalidArgs("no etcd endpoint given".into()));
    };
    let targets = endpoints
        .iter()
        .map(|e| DialTarget::parse(e))
        .collect::<Result<Vec<_>>>()?;
    // tonic needs a URI with a scheme; the dialer ignores it and dials the targets.
    let uri = if first.contains("://") {
        first.clone()
    } else {
        format!("https://{first}")
    };
    let mut endpoint = tonic::transport::Endpoint::from_shared(uri)
        .map_err(|e| EtcdError::InvalidArgs(format!("invalid etcd endpoint {first:?}: {e}")))?
        .connect_timeout(dial_timeout)
        // Room for a whole page in flight while the previous one is checked.
        .initial_stream_window_size(Some(H2_WINDOW))
        .initial_connection_window_size(Some(H2_WINDOW * 2));
    if let Some(t) = request_timeout {
        endpoint = endpoint.timeout(t);
    }
    let dialer = Dialer {
        targets: Arc::new(targets),
        tls,
    };
    let connector = tower::service_fn(move |_: http::Uri| dialer.clone().dial());
    let channel = endpoint
        .connect_with_connector(connector)
        .await
        .map_err(|e| EtcdError::Request {
            endpoints: endpoints.join(","),
            message: format!("cannot connect: {}{hint}", crate::cli::error_chain(&e)),
        })?;
    Ok(EtcdClient::new(channel, &endpoints.join(","), max_message))
}

/// A read-write etcd client for callers that are etcd's own clients (the sandbox control plane, the
/// tests and the benchmarks' raw-etcd baseline), on the same transport as [`EtcdReader`]: `TCP_NODELAY`
/// sockets (hyper-util's connector leaves Nagle on, ~40 ms per lone request) and OpenSSL TLS.
/// kube-apiserver's Go gRPC client also runs with `TCP_NODELAY`, Go's default for TCP.
pub async fn connect_client(
    endpoints: &[String],
    tls: Option<&EtcdTls>,
    dial_timeout: Duration,
) -> Result<EtcdClient> {
    let connector = match tls {
        Some(t) => Some(Arc::new(tls_connector(t).map_err(|e| {
            EtcdError::Request {
                endpoints: endpoints.join(","),
                message: format!("cannot set up TLS: {e}"),
            }
        })?)),
        None => None,
    };
    dial_client(
        endpoints,
        connector,
        dial_timeout,
        None,
        CLIENT_MAX_MESSAGE_BYTES,
        "",
    )
    .await
}

impl EtcdTls {
    /// TLS material from PEM bytes: a CA bundle and, optionally, a client certificate chain and its
    /// key (empty when etcd does not ask for one).
    pub fn from_pem(ca_pem: Vec<u8>, client: Option<(Vec<u8>, Vec<u8>)>) -> Self {
        let (cert_pem, key_pem) = client.unwrap_or_default();
        EtcdTls {
            ca_pem,
            cert_pem,
            key_pem,
        }
    }
}

/// OpenSSL client context for etcd: the CA bundle (every certificate in it), the client
/// certificate chain and key, and ALPN `h2` (etcd's gRPC server only speaks HTTP/2 when ALPN
/// negotiates it). Hostnames/IPs are verified against etcd's certificate.
fn tls_connector(tls: &EtcdTls) -> std::result::Result<SslConnector, openssl::error::ErrorStack> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    b.set_alpn_protos(b"\x02h2")?;
    for ca in X509::stack_from_pem(&tls.ca_pem)? {
        b.cert_store_mut().add_cert(ca)?;
    }
    let mut chain = X509::stack_from_pem(&tls.cert_pem)?.into_iter();
    if let Some(leaf) = chain.next() {
        b.set_certificate(&leaf)?;
    }
    for extra in chain {
        b.add_extra_chain_cert(extra)?;
    }
    if !tls.key_pem.is_empty() {
        let key = openssl::pkey::PKey::private_key_from_pem(&tls.key_pem)?;
        b.set_private_key(&key)?;
    }
    Ok(b.build())
}

/// One `--endpoints` entry: host, port and whether it is TLS.
#[derive(Debug, Clone)]
struct DialTarget {
    host: String,
    port: u16,
    tls: bool,
}

impl DialTarget {
    fn parse(url: &str) -> Result<Self> {
        let bad = |why: &str| {
            EtcdError::InvalidArgs(format!(
                "invalid etcd endpoint {url:?}: {why}; use https://HOST:PORT (or http:// for plain etcd)"
            ))
        };
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            (true, url)
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| bad("the port is not a number"))?,
            ),
            _ => (authority, 2379),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(DialTarget {
            host: host.to_string(),
            port,
            tls,
        })
    }
}

/// The transport under the gRPC channel: TCP with `TCP_NODELAY` (hyper-util's connector, which
/// tonic's own transport uses, leaves Nagle on; each small request frame then waits for the
/// server's delayed ACK, ~40 ms per range request), then TLS through OpenSSL. Tries the endpoints
/// in order and uses the first that connects.
#[derive(Clone)]
struct Dialer {
    targets: Arc<Vec<DialTarget>>,
    tls: Option<Arc<SslConnector>>,
}

/// A connected transport, plain or TLS.
enum EtcdStream {
    Plain(tokio::net::TcpStream),
    Tls(tokio_openssl::SslStream<tokio::net::TcpStream>),
}

impl tokio::io::AsyncRead for EtcdStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            EtcdStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            EtcdStream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for EtcdStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            EtcdStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            EtcdStream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            EtcdStream::Plain(s) => Pin::new(s).poll_flush(cx),
            EtcdStream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            EtcdStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            EtcdStream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

impl Dialer {
    async fn dial(self) -> std::io::Result<hyper_util::rt::TokioIo<EtcdStream>> {
        let mut last = None;
        for t in self.targets.iter() {
            match self.dial_one(t).await {
                Ok(s) => return Ok(hyper_util::rt::TokioIo::new(s)),
                Err(e) => {
                    tracing::debug!(host = %t.host, port = t.port, error = %e, "etcd endpoint failed");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no etcd endpoint")))
    }

    async fn dial_one(&self, t: &DialTarget) -> std::io::Result<EtcdStream> {
        let tcp = tokio::net::TcpStream::connect((t.host.as_str(), t.port)).await?;
        tcp.set_nodelay(true)?;
        if !t.tls {
            return Ok(EtcdStream::Plain(tcp));
        }
        let Some(connector) = &self.tls else {
            return Err(std::io::Error::other(
                "a TLS endpoint needs the CA and client certificate",
            ));
        };
        let ssl = connector
            .configure()
            .and_then(|c| c.into_ssl(&t.host))
            .map_err(std::io::Error::other)?;
        let mut stream = tokio_openssl::SslStream::new(ssl, tcp).map_err(std::io::Error::other)?;
        Pin::new(&mut stream)
            .connect()
            .await
            .map_err(|e| std::io::Error::other(format!("TLS handshake with {}: {e}", t.host)))?;
        Ok(EtcdStream::Tls(stream))
    }
}

/// The range end that makes `[prefix, end)` cover every key starting with `prefix` (etcd's
/// `clientv3.GetPrefixRangeEnd`).
pub fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.last_mut() {
        if *last < 0xff {
            *last += 1;
            return end;
        }
        end.pop();
    }
    // All 0xff (or empty): to the end of the keyspace.
    vec![0]
}

/// A one-line description of a gRPC error: its message and, for transport errors (which say only
/// "transport error"), the causes in the source chain.
fn describe(s: &tonic::Status) -> String {
    let mut text = s.message().to_string();
    if let Some(source) = std::error::Error::source(s) {
        let more = crate::cli::error_chain(source);
        if !text.contains(&more) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&more);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end() {
        assert_eq!(
            prefix_range_end(b"/registry/secrets/"),
            b"/registry/secrets0"
        );
        assert_eq!(prefix_range_end(b"a\xff"), b"b");
        assert_eq!(prefix_range_end(b"\xff"), b"\0");
    }

    #[test]
    fn gets_and_deletes_cover_one_key_a_range_or_a_prefix() {
        let key = || b"/registry/secrets/".to_vec();
        assert_eq!(GetOptions::new().request(key()).range_end, b"");
        assert_eq!(DeleteOptions::new().request(key()).range_end, b"");
        let get = GetOptions::new().with_prefix().with_limit(5).request(key());
        assert_eq!(
            (get.range_end.as_slice(), get.limit),
            (&b"/registry/secrets0"[..], 5)
        );
        let del = DeleteOptions::new().with_prefix().request(key());
        assert_eq!(del.range_end, b"/registry/secrets0");
        let del = DeleteOptions::new()
            .with_range(b"/z".to_vec())
            .request(key());
        assert_eq!(
            (del.key.as_slice(), del.range_end.as_slice()),
            (&key()[..], &b"/z"[..])
        );
    }

    #[test]
    fn page_sizes_are_at_least_one() {
        assert_eq!("500".parse::<PageSize>().unwrap().get(), 500);
        assert_eq!("0".parse::<PageSize>().unwrap_err(), "must be at least 1");
        assert!("x".parse::<PageSize>().is_err());
        assert_eq!(PageSize::from(-3).get(), 1);
        assert_eq!(PageSize::from(3).halved().get(), 1);
        assert_eq!(PageSize::default(), DEFAULT_PAGE_SIZE);
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_positive_timeout("5s").unwrap(),
            Duration::from_secs(5)
        );
        assert_eq!(
            parse_positive_timeout("250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            parse_positive_timeout("2m").unwrap(),
            Duration::from_secs(120)
        );
        assert!(parse_positive_timeout("0s").is_err());
        assert!(parse_positive_timeout("5x").is_err());
        assert!(parse_positive_timeout("").is_err());
    }

    #[test]
    fn defaults_resolve_under_root_and_explicit_paths_do_not() {
        let args = EtcdArgs {
            endpoints: vec![DEFAULT_ENDPOINT.into()],
            cacert: None,
            cert: Some("my.crt".into()),
            key: None,
            dial_timeout: Duration::from_secs(5),
        };
        let cfg = args.resolve(Path::new("/node"));
        assert_eq!(
            cfg.cacert,
            Path::new("/node/etc/kubernetes/pki/etcd/ca.crt")
        );
        assert_eq!(cfg.cert, Path::new("my.crt"));
        assert_eq!(
            cfg.key,
            Path::new("/node/etc/kubernetes/pki/apiserver-etcd-client.key")
        );
    }

    #[test]
    fn tls_files_are_checked_with_clear_errors() {
        use crate::pki::{
            CA_VALIDITY, CertificateAuthority, KeyAlgorithm, LEAF_VALIDITY, LeafProfile,
        };
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let args = EtcdArgs {
            endpoints: vec![DEFAULT_ENDPOINT.into()],
            dial_timeout: Duration::from_secs(5),
            ..Default::default()
        };
        let cfg = args.resolve(root);
        let err = cfg.load_tls().unwrap_err().to_string();
        assert!(err.starts_with("etcd CA certificate "), "{err}");
        assert!(
            err.contains("ca.crt: file not found; pass --cacert"),
            "{err}"
        );

        std::fs::create_dir_all(root.join("etc/kubernetes/pki/etcd")).unwrap();
        std::fs::write(&cfg.cacert, b"garbage").unwrap();
        let err = cfg.load_tls().unwrap_err().to_string();
        assert!(err.contains("ca.crt: not a PEM certificate"), "{err}");

        let ca =
            CertificateAuthority::new_self_signed("etcd-ca", KeyAlgorithm::EcdsaP256, CA_VALIDITY)
                .unwrap();
        std::fs::write(&cfg.cacert, ca.cert.to_pem().unwrap()).unwrap();
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let cert = ca
            .issue(&key, "c", &[], &LeafProfile::Client, LEAF_VALIDITY)
            .unwrap();
        std::fs::write(&cfg.cert, cert.to_pem().unwrap()).unwrap();
        std::fs::write(
            &cfg.key,
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = cfg.load_tls().unwrap_err().to_string();
        assert!(
            err.contains("apiserver-etcd-client.key: not a PEM private key"),
            "{err}"
        );
        assert!(err.contains("pass --key or set ETCDCTL_KEY"), "{err}");
        // Never echo key bytes.
        assert!(!err.contains("AAAA"));

        let other = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        std::fs::write(&cfg.key, other.to_pem().unwrap()).unwrap();
        let err = cfg.load_tls().unwrap_err().to_string();
        assert!(err.contains("does not match client certificate"), "{err}");

        std::fs::write(&cfg.key, key.to_pem().unwrap()).unwrap();
        let tls = cfg.load_tls().unwrap();
        assert_eq!(format!("{tls:?}"), "EtcdTls { .. }");
    }
}
