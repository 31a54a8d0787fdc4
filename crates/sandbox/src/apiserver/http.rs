//! The HTTPS listener and request pipeline: TLS → authentication → impersonation → faults → authorization →
//! handler (like apiserver's `DefaultBuildHandlerChain`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use openssl::ssl::{Ssl, SslAcceptor};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::codec::StorageMedia;
use super::rbac::Authorizer;
use super::status::ApiError;
use super::store::{Identity, Store};
use super::tls::{TlsFiles, acceptor};
use super::{Faults, Options, PathResolver, RunningApiServer, StartError};

/// Shared server state.
pub(crate) struct Server {
    pub opts: Options,
    pub version: KubeVersion,
    pub faults: Arc<Faults>,
    pub store: Arc<Store>,
    pub authz: Authorizer,
    /// `host:port` clients should use (`serverAddressByClientCIDRs`).
    pub advertise: String,
    /// Where `pods/exec` goes (the node's kubelet).
    pub kubelet: Option<Arc<dyn super::Kubelet>>,
}

/// What `/version` reports.
#[derive(Debug, Clone)]
pub(crate) struct KubeVersion {
    pub major: String,
    pub minor: String,
    pub git_version: String,
}

impl KubeVersion {
    /// `1.32` → v1.32.0; `1.32.4` or `v1.32.4` → v1.32.4.
    pub fn parse(s: &str) -> Result<Self, StartError> {
        let t = s.trim().trim_start_matches('v');
        let parts: Vec<&str> = t.split('.').collect();
        let ok = (2..=3).contains(&parts.len())
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            return Err(StartError::Flags(format!(
                "invalid kube version \"{s}\": expected MAJOR.MINOR[.PATCH]"
            )));
        }
        let patch = parts.get(2).copied().unwrap_or("0");
        Ok(KubeVersion {
            major: parts[0].into(),
            minor: parts[1].into(),
            git_version: format!("v{}.{}.{}", parts[0], parts[1], patch),
        })
    }

    fn body(&self) -> Value {
        json!({
            "major": self.major,
            "minor": self.minor,
            "gitVersion": self.git_version,
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z",
            "goVersion": "go1.23.6",
            "compiler": "gc",
            "platform": "linux/amd64"
        })
    }
}

/// Read a file named by a flag through the resolver. A path outside every mount is "no such file", as in the
/// container.
pub(crate) fn read_flag_file(
    paths: &dyn PathResolver,
    flag: &str,
    container: &str,
) -> Result<Vec<u8>, StartError> {
    let host = paths.host_path(Path::new(container));
    let res = match &host {
        Some(h) => std::fs::read(h),
        None => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
    };
    res.map_err(|e| {
        let why = if e.kind() == std::io::ErrorKind::NotFound {
            "no such file or directory".to_string()
        } else {
            e.to_string()
        };
        StartError::Config(format!("--{flag}: open {container}: {why}"))
    })
}

pub(crate) async fn start(
    opts: Options,
    paths: Arc<dyn PathResolver>,
    faults: Arc<Faults>,
    kube_version: &str,
    kubelet: Option<Arc<dyn super::Kubelet>>,
) -> Result<RunningApiServer, StartError> {
    let version = KubeVersion::parse(kube_version)?;
    let read = |flag: &str, v: &Option<String>| -> Result<Option<(String, Vec<u8>)>, StartError> {
        match v {
            Some(p) => Ok(Some((p.clone(), read_flag_file(&*paths, flag, p)?))),
            None => Ok(None),
        }
    };
    let files = TlsFiles {
        cert_pem: read("tls-cert-file", &opts.tls_cert_file)?,
        key_pem: read("tls-private-key-file", &opts.tls_private_key_file)?,
        client_ca_pem: read("client-ca-file", &opts.client_ca_file)?,
    };
    let acceptor = Arc::new(acceptor(&files)?);
    let have_ca = files.client_ca_pem.is_some();
    let etcd = connect_etcd(&opts, &*paths).await?;

    let bind = if opts.bind_address == "0.0.0.0" || opts.bind_address == "::" {
        "127.0.0.1"
    } else {
        opts.bind_address.as_str()
    };
    let listener = TcpListener::bind((bind, opts.secure_port))
        .await
        .map_err(|e| {
            StartError::Listen(format!(
                "failed to create listener: failed to listen on {bind}:{}: {e}",
                opts.secure_port
            ))
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Listen(e.to_string()))?;
    let store = Arc::new(Store {
        etcd,
        prefix: opts.etcd_prefix.clone(),
        media: StorageMedia::from_flag(&opts.storage_media_type),
        transformer: std::sync::RwLock::new(Arc::new(Identity)),
        rbac_generation: std::sync::atomic::AtomicU64::new(0),
    });
    let mut tasks = Vec::new();
    if let Some(cfg) = &opts.encryption_provider_config {
        let metrics = opts
            .encryption_provider_config_automatic_reload
            .then(|| Arc::new(super::encryption::ReloadMetrics::default()));
        let (t, hash) =
            super::encryption::load(&paths, cfg, metrics.clone()).map_err(StartError::Config)?;
        store.set_transformer(t);
        if let Some(metrics) = metrics {
            tasks.push(tokio::spawn(super::encryption::reload_loop(
                store.clone(),
                paths.clone(),
                cfg.clone(),
                hash,
                metrics,
            )));
        }
    }
    super::bootstrap::run(&store)
        .await
        .map_err(|e| StartError::Etcd(format!("bootstrap: {}", e.message)))?;
    let advertise = format!(
        "{}:{}",
        opts.advertise_address
            .clone()
            .unwrap_or_else(|| bind.to_string()),
        addr.port()
    );
    let authz = Authorizer {
        store: store.clone(),
        cache: Default::default(),
        rbac: opts.rbac(),
        node: opts.authorization_modes.iter().any(|m| m == "Node"),
    };
    let server = Arc::new(Server {
        opts,
        version,
        faults,
        store,
        authz,
        advertise,
        kubelet,
    });

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let (exit_tx, exit_rx) = tokio::sync::watch::channel(None::<String>);
    let accept_task = tokio::spawn(async move {
        // Every connection ends with the server, as when a kube-apiserver process exits (a kept-alive client
        // connection must not go on talking to a stopped server's old configuration).
        let conn_stop = stop_rx.clone();
        loop {
            tokio::select! {
                _ = stop_rx.changed() => break,
                r = listener.accept() => match r {
                    Ok((tcp, peer)) => {
                        let _ = tcp.set_nodelay(true);
                        tokio::spawn(serve_conn(server.clone(), acceptor.clone(), have_ca, tcp, peer, conn_stop.clone()));
                    }
                    Err(e) => {
                        tracing::error!("accept failed: {e}");
                        let _ = exit_tx.send(Some(format!("listener failed: {e}")));
                        break;
                    }
                }
            }
        }
    });
    tracing::info!(%addr, "sandbox kube-apiserver serving");
    Ok(RunningApiServer {
        addr,
        shutdown: Some(stop_tx),
        exit: exit_rx,
        tasks: {
            tasks.push(accept_task);
            tasks
        },
    })
}

async fn connect_etcd(
    opts: &Options,
    paths: &dyn PathResolver,
) -> Result<atrest_core::etcd::EtcdClient, StartError> {
    let tls = opts.etcd_servers.iter().any(|s| s.starts_with("https://"));
    let tls = if tls {
        let ca = match &opts.etcd_cafile {
            Some(ca) => read_flag_file(paths, "etcd-cafile", ca)?,
            None => Vec::new(),
        };
        let client = match (&opts.etcd_certfile, &opts.etcd_keyfile) {
            (Some(c), Some(k)) => Some((
                read_flag_file(paths, "etcd-certfile", c)?,
                read_flag_file(paths, "etcd-keyfile", k)?,
            )),
            _ => None,
        };
        Some(atrest_core::etcd::EtcdTls::from_pem(ca, client))
    } else {
        None
    };
    let mut last = String::new();
    // kube-apiserver keeps retrying etcd during startup; give it a bounded window.
    for _ in 0..20 {
        match atrest_core::etcd::connect_client(
            &opts.etcd_servers,
            tls.as_ref(),
            Duration::from_secs(5),
        )
        .await
        {
            Ok(c) => match c.get("health-probe", None).await {
                Ok(_) => return Ok(c),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(StartError::Etcd(format!(
        "failed to connect to etcd at {}: {last}",
        opts.etcd_servers.join(",")
    )))
}

async fn serve_conn(
    server: Arc<Server>,
    acceptor: Arc<SslAcceptor>,
    have_ca: bool,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let ssl = match Ssl::new(acceptor.context()) {
        Ok(s) => s,
        Err(e) => return tracing::warn!("ssl: {e}"),
    };
    let mut stream = match tokio_openssl::SslStream::new(ssl, tcp) {
        Ok(s) => s,
        Err(e) => return tracing::warn!("ssl: {e}"),
    };
    if let Err(e) = std::pin::Pin::new(&mut stream).accept().await {
        tracing::debug!(%peer, "TLS handshake error: {e}");
        return;
    }
    let identity = Arc::new(super::authn::identity_from_cert(
        stream.ssl().peer_certificate().as_deref(),
        stream.ssl().verify_result(),
        have_ca,
    ));
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let server = server.clone();
        let identity = identity.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(server, identity, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades(); // pods/exec
    tokio::select! {
        r = conn => {
            if let Err(e) = r {
                tracing::debug!(%peer, "connection error: {e}");
            }
        }
        // Stopped (or the handle dropped): close the connection, as a kube-apiserver process exit does.
        _ = stop.wait_for(|s| *s) => {}
    }
}

pub(crate) type Resp = Response<Full<Bytes>>;

/// A JSON response.
pub(crate) fn json_response(code: u16, body: &Value) -> Resp {
    json_response_ct(code, body, "application/json")
}

pub(crate) fn json_response_ct(code: u16, body: &Value, ct: &str) -> Resp {
    let mut bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes.push(b'\n');
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", ct)
        .header("Cache-Control", "no-cache, private")
        .body(Full::new(Bytes::from(bytes)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

pub(crate) fn text_response(code: u16, ct: &str, body: impl Into<Bytes>) -> Resp {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", ct)
        .header("Cache-Control", "no-cache, private")
        .body(Full::new(body.into()))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

pub(crate) fn error_response(e: &ApiError) -> Resp {
    let mut r = json_response(e.code, &e.to_status());
    if let Some(s) = e.retry_after
        && let Ok(v) = s.to_string().parse()
    {
        r.headers_mut().insert("Retry-After", v);
    }
    r
}

async fn handle(
    server: Arc<Server>,
    identity: Arc<super::authn::PeerIdentity>,
    req: Request<Incoming>,
) -> Resp {
    let delay = server.faults.delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return error_response(&ApiError::bad_request(format!("reading body: {e}"))),
    };
    super::router::route(&server, identity, parts, body).await
}

/// `/version`.
pub(crate) fn version_response(server: &Server) -> Resp {
    json_response(200, &server.version.body())
}
