//! The kubelet's part of the node: static pods from the manifests directory.
//!
//! Like the kubelet's file source (`pkg/kubelet/config/file.go`), the directory is polled; files whose names
//! start with `.` are ignored; a file that does not parse is logged and its pod is not run (so a broken
//! kube-apiserver manifest takes the server down until fixed). A changed manifest stops the old container and
//! starts the new one. A container that fails to start is retried with exponential back-off (the kubelet's
//! CrashLoopBackOff, `pkg/kubelet/kuberuntime`, here 1 s doubling to 20 s so tests stay fast), and immediately
//! when its manifest changes. Containers on atrest's control plane: `etcd` runs as a real process
//! ([`crate::etcd`]), `kube-apiserver` in-process ([`crate::apiserver::ApiServer`]), `kube-controller-manager` as
//! this crate's controllers ([`crate::controller`]). On the real control plane ([`crate::ControlPlane::Real`]) all
//! three are the real binaries ([`crate::k8s`]) run as processes with the manifest's command line in a mount
//! namespace of their own ([`crate::container`]); a process that exits is a crashed container (restarted with
//! back-off, `restartCount` and `lastState.terminated` on the mirror pod), and kube-apiserver is Ready only while
//! its manifest's readinessProbe (`GET https://127.0.0.1:<port>/readyz`, TLS unverified as the kubelet's prober
//! does) answers 200 (`pkg/kubelet/prober`: failureThreshold consecutive failures make it unready).
//!
//! Mirror pods (`pkg/kubelet/pod/mirror_client.go`) are published through the API server with the kubelet's
//! annotations, and their status through `pods/<name>/status`, with kubelet.conf's `system:node:<node>`
//! credentials. On the real control plane the kubelet first registers its Node (`pkg/kubelet/kubelet_node_status.go`
//! `registerWithAPIServer`: created with its status) and posts the node's status every 10 s (the heartbeat
//! kube-controller-manager's node lifecycle controller watches); mirror pods carry the controller owner reference
//! to that Node which NodeRestriction requires (`plugin/pkg/admission/noderestriction/admission.go`
//! `admitPodCreate`), and the node lists only its own pods (`fieldSelector=spec.nodeName=<node>`, what the Node
//! authorizer allows).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus as NodeObjectStatus,
    NodeSystemInfo, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, PostParams};

use crate::apiserver::{ApiServer, Faults, PathResolver, RunningApiServer};
use crate::container::PodProcess;
use crate::controller::{self, ControllerConfig, ControllerHandle};
use crate::etcd::EtcdProcess;
use crate::k8s::K8sBinaries;
use crate::layout::{KubeVersion, NodeLayout};
use crate::pod::{self, StaticPod};

/// The API server as the node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiServerState {
    /// Serving on the manifest's `--secure-port`.
    Running { port: u16 },
    /// Down: its manifest does not parse, or the server refused its flags/config, or it exited; retried with
    /// back-off and on the next manifest change.
    CrashLooping { last_error: String, restarts: u32 },
    /// Stopped on request ([`crate::Sandbox::stop_apiserver`]), or the kubelet is not running.
    Stopped,
}

/// State shared between the kubelet loop and the sandbox's handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub layout: NodeLayout,
    pub node: String,
    /// Used when an image tag carries no version.
    pub default_version: KubeVersion,
    pub faults: Arc<Faults>,
    pub status: Mutex<NodeStatus>,
    pub wake: tokio::sync::Notify,
    /// The kubeconfig the kubelet talks to the API server with.
    pub kubelet_kubeconfig: PathBuf,
    /// Running containers that serve `pods/exec`, by (namespace, mirror pod name).
    pub exec_pods: Mutex<HashMap<(String, String), StaticPod>>,
    /// The real control plane's binaries; `None` on atrest's control plane.
    pub binaries: Option<K8sBinaries>,
}

#[derive(Debug, Clone)]
pub(crate) struct NodeStatus {
    pub apiserver: ApiServerState,
    /// Set by `stop_apiserver`: keep the API server down until cleared.
    pub apiserver_held: bool,
    /// Incremented at every successful API server start.
    pub apiserver_starts: u64,
    pub csr_signer_enabled: bool,
    /// Set by `shutdown`: stop everything and end the loop.
    pub shutting_down: bool,
    /// Whether etcd is up.
    pub etcd_running: bool,
}

impl Shared {
    pub fn new(
        layout: NodeLayout,
        node: String,
        default_version: KubeVersion,
        faults: Arc<Faults>,
        binaries: Option<K8sBinaries>,
    ) -> Self {
        let kubelet_kubeconfig = layout.kubelet_conf();
        Shared {
            layout,
            node,
            default_version,
            faults,
            status: Mutex::new(NodeStatus {
                apiserver: ApiServerState::Stopped,
                apiserver_held: false,
                apiserver_starts: 0,
                csr_signer_enabled: true,
                shutting_down: false,
                etcd_running: false,
            }),
            wake: tokio::sync::Notify::new(),
            kubelet_kubeconfig,
            exec_pods: Mutex::new(HashMap::new()),
            binaries,
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, NodeStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a static pod runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Etcd,
    ApiServer,
    ControllerManager,
    /// Any other static pod: published as a mirror pod, nothing runs.
    Other,
}

fn kind_of(p: &StaticPod) -> Kind {
    let bin = p
        .command
        .first()
        .map(|c| c.rsplit('/').next().unwrap_or(c))
        .unwrap_or_default();
    match bin {
        "etcd" => Kind::Etcd,
        "kube-apiserver" => Kind::ApiServer,
        "kube-controller-manager" => Kind::ControllerManager,
        _ => Kind::Other,
    }
}

enum Container {
    Etcd(EtcdProcess),
    ApiServer(RunningApiServer),
    Controller(ControllerHandle),
    /// A real control-plane binary (kube-apiserver, kube-controller-manager); `port` is what it serves on.
    Process {
        process: PodProcess,
        port: u16,
    },
    Idle,
}

/// The last termination of a container, for `lastState.terminated`.
#[derive(Debug, Clone)]
struct Termination {
    message: String,
    started: Option<Timestamp>,
    finished: Timestamp,
}

/// One manifest file and what runs for it.
struct PodRuntime {
    /// The manifest's file stem (`kube-apiserver`), which names the pod when the manifest does not parse.
    stem: String,
    file_hash: String,
    parsed: Result<StaticPod, String>,
    seen: Timestamp,
    container: Option<Container>,
    started: Option<Timestamp>,
    restarts: u32,
    backoff: Duration,
    next_try: Instant,
    last_error: Option<String>,
    last_termination: Option<Termination>,
    /// The readiness probe's verdict (containers without a probe are ready while they run).
    ready: bool,
    /// Consecutive readiness probe failures, and when the next probe is due.
    probe_failures: u32,
    next_probe: Instant,
}

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(200);

impl PodRuntime {
    fn kind(&self) -> Option<Kind> {
        self.parsed.as_ref().ok().map(kind_of)
    }

    async fn stop(&mut self) {
        match self.container.take() {
            Some(Container::Etcd(e)) => {
                let _ = tokio::task::spawn_blocking(move || e.stop()).await;
            }
            Some(Container::ApiServer(s)) => s.shutdown().await,
            Some(Container::Controller(c)) => c.stop().await,
            Some(Container::Process { process, .. }) => {
                // kube-apiserver drains in-flight requests on SIGTERM; give it the time a kubelet would.
                let _ = tokio::task::spawn_blocking(move || process.stop(Duration::from_secs(15)))
                    .await;
            }
            Some(Container::Idle) | None => {}
        }
        self.started = None;
        self.ready = false;
        self.probe_failures = 0;
    }

    fn crashed(&mut self, error: String) {
        tracing::warn!(error = %error, "static pod container failed");
        self.last_termination = Some(Termination {
            message: error.clone(),
            started: self.started.take(),
            finished: Timestamp::now(),
        });
        self.last_error = Some(error);
        self.restarts += 1;
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }
}

/// The kubelet loop; runs until `shutting_down` is set, then stops every container.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut pods: BTreeMap<PathBuf, PodRuntime> = BTreeMap::new();
    let (mirror_tx, mirror_rx) = tokio::sync::watch::channel(Vec::<MirrorPod>::new());
    let mirror_task = tokio::spawn(mirror_loop(shared.clone(), mirror_rx));
    loop {
        if shared.lock().shutting_down {
            break;
        }
        sync_once(&shared, &mut pods).await;
        publish_exec_pods(&shared, &pods);
        let snapshot: Vec<MirrorPod> = pods
            .values()
            .filter_map(|p| mirror_of(&shared, p))
            .collect();
        mirror_tx.send_if_modified(|cur| {
            if *cur != snapshot {
                *cur = snapshot;
                true
            } else {
                false
            }
        });
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shared.wake.notified() => {}
        }
    }
    mirror_task.abort();
    // Stop in reverse dependency order: controllers, API server, then etcd.
    let mut all: Vec<PodRuntime> = std::mem::take(&mut pods).into_values().collect();
    all.sort_by_key(|p| std::cmp::Reverse(p.kind()));
    for mut p in all {
        p.stop().await;
    }
    let mut st = shared.lock();
    st.apiserver = ApiServerState::Stopped;
    st.etcd_running = false;
}

fn read_manifests(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // the kubelet's file source ignores dot files (editor swap files, our temp files)
        }
        let path = e.path();
        if !path.is_file() {
            continue;
        }
        if let Ok(bytes) = std::fs::read(&path) {
            out.insert(path, bytes);
        }
    }
    out
}

async fn sync_once(shared: &Arc<Shared>, pods: &mut BTreeMap<PathBuf, PodRuntime>) {
    let files = read_manifests(&shared.layout.manifests_dir());
    // Removed manifests: stop their containers.
    let gone: Vec<PathBuf> = pods
        .keys()
        .filter(|k| !files.contains_key(*k))
        .cloned()
        .collect();
    for k in gone {
        if let Some(mut p) = pods.remove(&k) {
            tracing::info!(file = %k.display(), "manifest removed; stopping its pod");
            p.stop().await;
        }
    }
    // New and changed manifests.
    for (path, bytes) in &files {
        let h = pod::content_hash(bytes);
        if pods.get(path).is_some_and(|p| p.file_hash == h) {
            continue;
        }
        let parsed = pod::parse(path, bytes, &shared.layout).map_err(|e| e.to_string());
        if let Err(e) = &parsed {
            tracing::error!(error = %e, "could not process manifest file");
        }
        if let Some(mut old) = pods.remove(path) {
            tracing::info!(file = %path.display(), "manifest changed; restarting its pod");
            old.stop().await;
        }
        pods.insert(
            path.clone(),
            PodRuntime {
                stem: path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                file_hash: h,
                parsed,
                seen: Timestamp::now(),
                container: None,
                started: None,
                restarts: 0,
                backoff: BACKOFF_START,
                next_try: Instant::now(),
                last_error: None,
                last_termination: None,
                ready: false,
                probe_failures: 0,
                next_probe: Instant::now(),
            },
        );
    }
    // Unexpected exits.
    for p in pods.values_mut() {
        let exited = match &mut p.container {
            Some(Container::Etcd(e)) => {
                (!e.is_running()).then(|| format!("etcd exited: {}", e.log_tail()))
            }
            Some(Container::ApiServer(s)) => tokio::time::timeout(Duration::ZERO, s.exited())
                .await
                .ok()
                .map(|r| format!("kube-apiserver exited: {r}")),
            Some(Container::Process { process, .. }) => process.exit_status().map(|st| {
                let name = p
                    .parsed
                    .as_ref()
                    .map_or("container", |sp| sp.container_name());
                format!("{name} exited ({st}): {}", process.log_tail())
            }),
            _ => None,
        };
        if let Some(why) = exited {
            p.stop().await;
            p.crashed(why);
        }
    }
    // Start what should run, etcd first.
    let held = shared.lock().apiserver_held;
    let mut order: Vec<&PathBuf> = pods.keys().collect();
    order.sort_by_key(|k| pods[*k].kind().unwrap_or(Kind::Other));
    let order: Vec<PathBuf> = order.into_iter().cloned().collect();
    let mut apiserver_started = 0;
    for k in order {
        let p = pods.get_mut(&k).expect("key from the map");
        let Ok(sp) = p.parsed.clone() else { continue };
        let kind = kind_of(&sp);
        if kind == Kind::ApiServer && held {
            if p.container.is_some() {
                p.stop().await;
            }
            continue;
        }
        if p.container.is_some() || Instant::now() < p.next_try {
            continue;
        }
        let started = match (kind, &shared.binaries) {
            (Kind::Etcd, _) => start_etcd(shared, &sp).await,
            (Kind::ApiServer, None) => start_apiserver(shared, &sp).await,
            (Kind::ControllerManager, None) => start_controller(shared, &sp),
            (Kind::ApiServer | Kind::ControllerManager, Some(bins)) => {
                start_process(shared, &sp, bins).await
            }
            (Kind::Other, _) => Ok(Container::Idle),
        };
        match started {
            Ok(c) => {
                // The in-process API server answers once started; a process is probed (see `probe_readiness`).
                p.ready = !matches!(c, Container::Process { .. }) || kind != Kind::ApiServer;
                p.next_probe = Instant::now();
                p.container = Some(c);
                p.started = Some(Timestamp::now());
                p.backoff = BACKOFF_START;
                if kind == Kind::ApiServer {
                    apiserver_started += 1;
                    tokio::spawn(controller::kubeadm_bootstrap(
                        shared.clone(),
                        version_of(shared, &sp),
                    ));
                }
            }
            Err(e) => p.crashed(e),
        }
    }
    probe_readiness(&shared.layout.ca_cert(), pods).await;
    publish_state(shared, pods, held, apiserver_started);
}

/// kube-apiserver's readinessProbe (kubeadm: `/readyz`, periodSeconds 1, failureThreshold 3) for the real binary.
async fn probe_readiness(ca: &Path, pods: &mut BTreeMap<PathBuf, PodRuntime>) {
    for p in pods.values_mut() {
        let Some(Container::Process { port, .. }) = &p.container else {
            continue;
        };
        if p.kind() != Some(Kind::ApiServer) || Instant::now() < p.next_probe {
            continue;
        }
        let port = *port;
        p.next_probe = Instant::now() + Duration::from_secs(1);
        let ca = ca.to_path_buf();
        let ok = tokio::task::spawn_blocking(move || https_ok(&ca, port, "/readyz"))
            .await
            .unwrap_or(false);
        if ok {
            p.ready = true;
            p.probe_failures = 0;
        } else {
            p.probe_failures += 1;
            if p.probe_failures >= 3 {
                p.ready = false;
            }
        }
    }
}

/// `GET https://127.0.0.1:<port><path>` answers 200. The kubelet's HTTPS probes skip certificate checks; this one
/// verifies the serving certificate against the cluster CA (`ca`) and its IP SAN, which a sandbox node always has.
fn https_ok(ca: &Path, port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(tcp) = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    ) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(2)));
    let Ok(mut b) = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client())
    else {
        return false;
    };
    if b.set_ca_file(ca).is_err() {
        return false;
    }
    let Ok(cfg) = b.build().configure() else {
        return false;
    };
    let Ok(mut tls) = cfg
        .use_server_name_indication(false)
        .connect("127.0.0.1", tcp)
    else {
        return false;
    };
    if tls
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    tls.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

/// Publishes the pods' state and counts `apiserver_started` new API server starts, under one lock: a reader that
/// sees a new start count also sees the new server's port.
fn publish_state(
    shared: &Shared,
    pods: &BTreeMap<PathBuf, PodRuntime>,
    held: bool,
    apiserver_started: u64,
) {
    let mut api = None;
    let mut etcd_running = false;
    for p in pods.values() {
        let kind = match &p.parsed {
            Ok(sp) => kind_of(sp),
            // A manifest that does not parse: which pod it was is known only from the file name.
            Err(_) if p.stem == "kube-apiserver" => Kind::ApiServer,
            Err(_) => Kind::Other,
        };
        match kind {
            Kind::ApiServer => {
                api = Some(match (&p.container, &p.parsed) {
                    (Some(Container::ApiServer(s)), _) => {
                        ApiServerState::Running { port: s.port() }
                    }
                    (Some(Container::Process { port, .. }), _) => {
                        ApiServerState::Running { port: *port }
                    }
                    (_, Err(e)) => ApiServerState::CrashLooping {
                        last_error: e.clone(),
                        restarts: p.restarts,
                    },
                    (_, Ok(_)) if held => ApiServerState::Stopped,
                    (_, Ok(_)) => match &p.last_error {
                        Some(e) => ApiServerState::CrashLooping {
                            last_error: e.clone(),
                            restarts: p.restarts,
                        },
                        None => ApiServerState::Stopped,
                    },
                });
            }
            Kind::Etcd => etcd_running |= matches!(p.container, Some(Container::Etcd(_))),
            _ => {}
        }
    }
    let mut st = shared.lock();
    st.apiserver = api.unwrap_or(ApiServerState::Stopped);
    st.apiserver_starts += apiserver_started;
    st.etcd_running = etcd_running;
}

/// Only etcd runs as a real process; the other containers run in-process and have nothing to exec in.
fn publish_exec_pods(shared: &Shared, pods: &BTreeMap<PathBuf, PodRuntime>) {
    let running = pods
        .values()
        .filter(|p| matches!(p.container, Some(Container::Etcd(_))))
        .filter_map(|p| p.parsed.as_ref().ok())
        .map(|sp| {
            let ns = sp.pod.metadata.namespace.clone();
            let key = (
                ns.unwrap_or_else(|| "default".into()),
                format!("{}-{}", sp.name(), shared.node),
            );
            (key, sp.clone())
        })
        .collect();
    *shared.exec_pods.lock().unwrap_or_else(|e| e.into_inner()) = running;
}

impl crate::apiserver::Kubelet for Shared {
    fn exec_container(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<crate::apiserver::ExecContainer, String> {
        let pods = self.exec_pods.lock().unwrap_or_else(|e| e.into_inner());
        match pods.get(&(namespace.to_string(), pod.to_string())) {
            Some(sp) if sp.container_name() == container => Ok(crate::apiserver::ExecContainer {
                paths: Arc::new(sp.mounts.clone()),
                env: crate::apiserver::container_env(&sp.pod),
            }),
            _ => Err(format!("container not found ({container:?})")),
        }
    }

    fn hostname(&self) -> String {
        self.node.clone()
    }
}

async fn start_etcd(shared: &Arc<Shared>, sp: &StaticPod) -> Result<Container, String> {
    let log = container_log(shared, sp);
    let sp = sp.clone();
    let real = shared.binaries.as_ref().map(|b| b.path("etcd"));
    let node = shared.node.clone();
    tokio::task::spawn_blocking(move || {
        let mut e = match real {
            Some(bin) => EtcdProcess::start_in_pod(&sp, &bin, &node, log)?,
            None => EtcdProcess::start(&sp, log)?,
        };
        e.wait_healthy(Duration::from_secs(20))?;
        Ok(Container::Etcd(e))
    })
    .await
    .map_err(|e| format!("etcd start task: {e}"))?
}

/// The Kubernetes version a control-plane pod runs: its image tag, else the sandbox's default.
fn version_of(shared: &Shared, sp: &StaticPod) -> KubeVersion {
    sp.image_tag()
        .and_then(|t| KubeVersion::parse(t).ok())
        .unwrap_or_else(|| shared.default_version.clone())
}

async fn start_apiserver(shared: &Arc<Shared>, sp: &StaticPod) -> Result<Container, String> {
    let mounts = sp.mounts.prepare()?;
    let version = version_of(shared, sp);
    let resolver: Arc<dyn PathResolver> = Arc::new(mounts);
    let v = version.git_version.trim_start_matches('v').to_string();
    let kubelet: Arc<dyn crate::apiserver::Kubelet> = shared.clone();
    match ApiServer::start_on_node(&sp.command, resolver, shared.faults.clone(), &v, kubelet).await
    {
        Ok(s) => {
            tracing::info!(port = s.port(), version = %version.git_version, "kube-apiserver started");
            Ok(Container::ApiServer(s))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Where the kubelet writes a container's stdout and stderr (`/var/log/pods/<namespace>_<pod>/<container>.log`).
fn container_log(shared: &Shared, sp: &StaticPod) -> PathBuf {
    let ns = sp.pod.metadata.namespace.as_deref().unwrap_or("default");
    shared
        .layout
        .log_dir()
        .join(format!("{ns}_{}-{}", sp.name(), shared.node))
        .join(format!("{}.log", sp.container_name()))
}

/// The real kube-apiserver or kube-controller-manager, from the manifest's command line, in its mount namespace.
async fn start_process(
    shared: &Arc<Shared>,
    sp: &StaticPod,
    bins: &K8sBinaries,
) -> Result<Container, String> {
    let name = sp.command[0].rsplit('/').next().unwrap_or_default();
    let binary = bins.path(name);
    let port = sp
        .flag("secure-port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(if name == "kube-apiserver" {
            6443
        } else {
            10257
        });
    let log = container_log(shared, sp);
    let sp = sp.clone();
    let node = shared.node.clone();
    let process =
        tokio::task::spawn_blocking(move || PodProcess::start_in_pod(&sp, &binary, &node, log))
            .await
            .map_err(|e| format!("{name} start task: {e}"))??;
    tracing::info!(pid = process.pid(), port, "started {name}");
    Ok(Container::Process { process, port })
}

fn start_controller(shared: &Arc<Shared>, sp: &StaticPod) -> Result<Container, String> {
    sp.mounts.prepare()?;
    let cfg = ControllerConfig::from_pod(sp)?;
    Ok(Container::Controller(controller::start(
        shared.clone(),
        cfg,
    )))
}

/// What the kubelet publishes for one static pod.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MirrorPod {
    pub name: String,
    pub pod: Pod,
    pub hash: String,
    pub status: PodStatus,
}

fn mirror_of(shared: &Shared, p: &PodRuntime) -> Option<MirrorPod> {
    let sp = p.parsed.as_ref().ok()?;
    let name = format!("{}-{}", sp.name(), shared.node);
    let mut pod = sp.pod.clone();
    pod.metadata.name = Some(name.clone());
    pod.metadata.namespace = Some(
        pod.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
    );
    pod.metadata.creation_timestamp = None;
    let ann = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
    ann.insert("kubernetes.io/config.hash".into(), sp.hash.clone());
    ann.insert("kubernetes.io/config.mirror".into(), sp.hash.clone());
    ann.insert("kubernetes.io/config.seen".into(), p.seen.to_string());
    ann.insert("kubernetes.io/config.source".into(), "file".into());
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_name = Some(shared.node.clone());
    }
    pod.status = None;
    let container = sp.container_name().to_string();
    let running = p.container.is_some();
    let ready = running && p.ready;
    let ts = |t: &Timestamp| Time(*t);
    let last_state = p.last_termination.as_ref().map(|t| ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: 1,
            reason: Some("Error".into()),
            message: Some(t.message.clone()),
            started_at: t.started.as_ref().map(ts),
            finished_at: Some(ts(&t.finished)),
            ..Default::default()
        }),
        ..Default::default()
    });
    let state = if running {
        ContainerState {
            running: Some(ContainerStateRunning {
                started_at: p.started.as_ref().map(ts),
            }),
            ..Default::default()
        }
    } else {
        ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(
                    if p.last_error.is_some() {
                        "CrashLoopBackOff"
                    } else {
                        "ContainerCreating"
                    }
                    .into(),
                ),
                message: p.last_error.as_ref().map(|_| {
                    format!(
                        "back-off {}s restarting failed container={container} pod={name}_{}({})",
                        p.backoff.as_secs() / 2,
                        pod.metadata.namespace.as_deref().unwrap_or_default(),
                        sp.hash
                    )
                }),
            }),
            ..Default::default()
        }
    };
    let cond = |t: &str, ok: bool| PodCondition {
        type_: t.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: if ok || t == "PodScheduled" || t == "Initialized" {
            None
        } else {
            Some("ContainersNotReady".into())
        },
        message: if ok || t == "PodScheduled" || t == "Initialized" {
            None
        } else {
            Some(format!("containers with unready status: [{container}]"))
        },
        last_transition_time: Some(ts(p.started.as_ref().unwrap_or(&p.seen))),
        ..Default::default()
    };
    let status = PodStatus {
        phase: Some("Running".into()),
        conditions: Some(vec![
            cond("Initialized", true),
            cond("Ready", ready),
            cond("ContainersReady", ready),
            cond("PodScheduled", true),
        ]),
        container_statuses: Some(vec![ContainerStatus {
            name: container,
            image: sp.image.clone(),
            image_id: String::new(),
            ready,
            started: Some(running),
            restart_count: p.restarts as i32,
            state: Some(state),
            last_state,
            ..Default::default()
        }]),
        host_ip: Some("127.0.0.1".into()),
        pod_ip: Some("127.0.0.1".into()),
        pod_ips: Some(vec![PodIP {
            ip: "127.0.0.1".into(),
        }]),
        qos_class: Some("Burstable".into()),
        start_time: Some(ts(&p.seen)),
        ..Default::default()
    };
    Some(MirrorPod {
        name,
        pod,
        hash: sp.hash.clone(),
        status,
    })
}

/// Keeps the mirror pods in the API server in step with the latest snapshot; retries every second.
async fn mirror_loop(shared: Arc<Shared>, mut rx: tokio::sync::watch::Receiver<Vec<MirrorPod>>) {
    let mut client: Option<(u64, kube::Client)> = None;
    let mut pushed: HashMap<String, PodStatus> = HashMap::new();
    // The real control plane: the Node's UID once registered, and when its status is next due.
    let real = shared.binaries.is_some();
    let mut node_uid: Option<String> = None;
    let mut next_heartbeat = Instant::now();
    loop {
        let starts = {
            let st = shared.lock();
            matches!(st.apiserver, ApiServerState::Running { .. }).then_some(st.apiserver_starts)
        };
        if let Some(gen_) = starts {
            if client.as_ref().map(|c| c.0) != Some(gen_) {
                pushed.clear();
                client = crate::client_from_kubeconfig(&shared.kubelet_kubeconfig)
                    .await
                    .ok()
                    .map(|c| (gen_, c));
            }
            if let Some((_, c)) = &client {
                if real && (node_uid.is_none() || Instant::now() >= next_heartbeat) {
                    match post_node_status(c, &shared).await {
                        Ok(uid) => {
                            node_uid = Some(uid);
                            next_heartbeat = Instant::now() + NODE_STATUS_PERIOD;
                        }
                        Err(e) => tracing::debug!(error = %e, "node status not posted; retrying"),
                    }
                }
                if !real || node_uid.is_some() {
                    let want = rx.borrow_and_update().clone();
                    let owner = node_uid.as_deref().map(|uid| (shared.node.as_str(), uid));
                    if let Err(e) = sync_mirrors(c, &shared.node, owner, &want, &mut pushed).await {
                        tracing::debug!(error = %e, "mirror pod sync failed; retrying");
                    }
                }
            }
        }
        tokio::select! {
            _ = rx.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// How often the kubelet posts its node's status (`--node-status-update-frequency`, 10 s).
const NODE_STATUS_PERIOD: Duration = Duration::from_secs(10);

/// The Node as the kubelet registers it and reports it (`pkg/kubelet/kubelet_node_status.go` `initialNode`,
/// `setNodeStatus`): the well-known labels, loopback addresses, Ready with a fresh heartbeat.
fn node_object(shared: &Shared) -> Node {
    let now = Time(Timestamp::now());
    let cond = |t: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: t.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    };
    let q = |v: &str| Quantity(v.into());
    let resources: BTreeMap<String, Quantity> = [
        ("cpu".to_string(), q("2")),
        ("memory".to_string(), q("8Gi")),
        ("pods".to_string(), q("110")),
        ("ephemeral-storage".to_string(), q("20Gi")),
    ]
    .into();
    let version = shared.default_version.git_version.clone();
    Node {
        metadata: ObjectMeta {
            name: Some(shared.node.clone()),
            labels: Some(
                [
                    ("beta.kubernetes.io/arch", "amd64"),
                    ("beta.kubernetes.io/os", "linux"),
                    ("kubernetes.io/arch", "amd64"),
                    ("kubernetes.io/hostname", shared.node.as_str()),
                    ("kubernetes.io/os", "linux"),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeObjectStatus {
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: "127.0.0.1".into(),
                },
                NodeAddress {
                    type_: "Hostname".into(),
                    address: shared.node.clone(),
                },
            ]),
            allocatable: Some(resources.clone()),
            capacity: Some(resources),
            conditions: Some(vec![
                cond(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                cond(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                ),
                cond(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
                cond(
                    "Ready",
                    "True",
                    "KubeletReady",
                    "kubelet is posting ready status",
                ),
            ]),
            node_info: Some(NodeSystemInfo {
                architecture: "amd64".into(),
                boot_id: String::new(),
                container_runtime_version: "atrest-sandbox://processes".into(),
                kernel_version: String::new(),
                kube_proxy_version: String::new(),
                kubelet_version: version,
                machine_id: String::new(),
                operating_system: "linux".into(),
                os_image: "atrest sandbox".into(),
                system_uuid: String::new(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// Registers the node (first call) or posts its status (a new heartbeat); returns the Node's UID.
async fn post_node_status(client: &kube::Client, shared: &Shared) -> Result<String, kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let want = node_object(shared);
    let node = match api.get_opt(&shared.node).await? {
        None => match api.create(&PostParams::default(), &want).await {
            Ok(n) => n,
            Err(kube::Error::Api(s)) if s.code == 409 => api.get(&shared.node).await?,
            Err(e) => return Err(e),
        },
        Some(mut cur) => {
            let mut status = want.status.unwrap_or_default();
            // A condition's lastTransitionTime moves only when its status changes (`nodestatus.ReadyCondition`).
            let before = cur
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            for c in status.conditions.iter_mut().flatten() {
                if let Some(b) = before
                    .iter()
                    .find(|b| b.type_ == c.type_ && b.status == c.status)
                {
                    c.last_transition_time = b.last_transition_time.clone();
                }
            }
            cur.status = Some(status);
            api.replace_status(&shared.node, &PostParams::default(), &cur)
                .await?
        }
    };
    Ok(node.metadata.uid.unwrap_or_default())
}

async fn sync_mirrors(
    client: &kube::Client,
    node: &str,
    owner: Option<(&str, &str)>,
    want: &[MirrorPod],
    pushed: &mut HashMap<String, PodStatus>,
) -> Result<(), kube::Error> {
    let timeout = Duration::from_secs(10);
    let run = async {
        for m in want {
            let ns = m.pod.metadata.namespace.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let existing = api.get_opt(&m.name).await?;
            let current_hash = existing
                .as_ref()
                .and_then(|p| p.metadata.annotations.as_ref())
                .and_then(|a| a.get("kubernetes.io/config.mirror").cloned());
            if existing.is_some() && current_hash.as_deref() != Some(m.hash.as_str()) {
                // The kubelet replaces a mirror pod whose hash no longer matches its static pod.
                api.delete(
                    &m.name,
                    &DeleteParams {
                        grace_period_seconds: Some(0),
                        ..Default::default()
                    },
                )
                .await?;
                pushed.remove(&m.name);
            }
            if existing.is_none() || current_hash.as_deref() != Some(m.hash.as_str()) {
                let mut pod = m.pod.clone();
                if let Some((name, uid)) = owner {
                    // kubelet's `mirror_client.go` `CreateMirrorPod`: the Node is the mirror pod's controller.
                    pod.metadata.owner_references = Some(vec![OwnerReference {
                        api_version: "v1".into(),
                        kind: "Node".into(),
                        name: name.into(),
                        uid: uid.into(),
                        controller: Some(true),
                        block_owner_deletion: None,
                    }]);
                }
                match api.create(&PostParams::default(), &pod).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(e) => return Err(e),
                }
                pushed.remove(&m.name);
            }
            if pushed.get(&m.name) != Some(&m.status) {
                let mut cur = api.get(&m.name).await?;
                cur.status = Some(m.status.clone());
                api.replace_status(&m.name, &PostParams::default(), &cur)
                    .await?;
                pushed.insert(m.name.clone(), m.status.clone());
            }
        }
        // Mirror pods of this node whose static pod is gone (another control-plane node's are its kubelet's).
        let api: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
        let mine = ListParams::default().fields(&format!("spec.nodeName={node}"));
        for p in api.list(&mine).await? {
            if p.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node) {
                continue;
            }
            let name = p.metadata.name.clone().unwrap_or_default();
            let is_mirror = p
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
            if is_mirror && !want.iter().any(|m| m.name == name) {
                api.delete(
                    &name,
                    &DeleteParams {
                        grace_period_seconds: Some(0),
                        ..Default::default()
                    },
                )
                .await?;
                pushed.remove(&name);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(r) => r,
        Err(_) => Err(kube::Error::Service("mirror pod sync timed out".into())),
    }
}
