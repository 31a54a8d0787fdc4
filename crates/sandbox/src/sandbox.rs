//! [`Sandbox`]: a running kubeadm-like node — the library API for tests, benchmarks and the `atrest-sandbox` CLI.
//!
//! The sandbox owns a small tokio runtime of its own where the kubelet loop, the in-process API server and the
//! controllers run, so its methods are plain blocking calls usable from sync tests and (briefly blocking a
//! worker) from async ones. Everything it started stops on [`Sandbox::shutdown`] or drop.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::apiserver::Faults;
use crate::kubelet::{self, ApiServerState, Shared};
use crate::layout::{KubeVersion, NodeLayout, Ports};
use crate::pod;
use atrest_core::fsutil;

/// Errors of the sandbox API.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}")]
    Manifest(String),
    #[error("sandbox not ready after {timeout:?}: {state}")]
    NotReady { timeout: Duration, state: String },
    #[error("{0}")]
    Client(String),
    #[error("tokio runtime: {0}")]
    Runtime(std::io::Error),
    #[error("the real control plane: {0}")]
    K8s(#[from] crate::k8s::K8sError),
}

/// What runs the control plane of a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ControlPlane {
    /// The machine's etcd, atrest's own API server and controllers (in-process): fast, any version from 1.27 to
    /// 1.33 impersonated, fault injection.
    #[default]
    Atrest,
    /// etcd 3.6, kube-apiserver and kube-controller-manager of the release `tests/k8s` pins ([`crate::k8s`]), run
    /// as processes by the kubelet from the manifests; built on first use (needs Go).
    Real,
}

impl ControlPlane {
    /// The environment variable that picks the default control plane of [`SandboxOptions::new`] (the e2e suite's).
    pub const ENV: &'static str = "ATREST_CONTROL_PLANE";

    /// `ATREST_CONTROL_PLANE` (`atrest` or `real`; unset or empty: `atrest`).
    pub fn from_env() -> Result<ControlPlane, String> {
        match std::env::var(Self::ENV).as_deref() {
            Err(_) | Ok("") | Ok("atrest") => Ok(ControlPlane::Atrest),
            Ok("real") => Ok(ControlPlane::Real),
            Ok(other) => Err(format!(
                "{}={other:?}: use \"atrest\" or \"real\"",
                Self::ENV
            )),
        }
    }
}

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// The node's `/`; laid out on first start, reused (with all state) afterwards.
    pub root: PathBuf,
    /// Node name (mirror pods are `<component>-<node>`); default `sandbox`.
    pub node: String,
    /// Kubernetes version impersonated on first start (`1.27` … `1.33`); default `1.32`.
    pub kube_version: String,
    /// API server port on first start; 0 = a free port.
    pub apiserver_port: u16,
    /// etcd client port on first start; 0 = a free port.
    pub etcd_port: u16,
    /// Join this existing sandbox node's cluster as a second control-plane node (first start only): the shared
    /// certificates are copied from its root, and this node runs only a kube-apiserver on its own port against
    /// that node's etcd (HA tests: two API servers, one etcd). Give this node its own `node` name.
    pub join: Option<PathBuf>,
    /// What runs the control plane. A root keeps the manifests of its first start: starting a root laid out for
    /// one control plane with the other runs the other's binaries on those manifests.
    pub control_plane: ControlPlane,
}

impl SandboxOptions {
    /// Defaults for a root directory; the control plane is [`ControlPlane::from_env`]'s (so
    /// `ATREST_CONTROL_PLANE=real` moves every test that starts its sandbox this way to the real control plane).
    ///
    /// # Panics
    /// When `ATREST_CONTROL_PLANE` holds something else than `atrest` or `real`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SandboxOptions {
            root: root.into(),
            node: "sandbox".into(),
            kube_version: "1.32".into(),
            apiserver_port: 0,
            etcd_port: 0,
            join: None,
            control_plane: ControlPlane::from_env().unwrap_or_else(|e| panic!("{e}")),
        }
    }
}

/// A running sandbox node.
pub struct Sandbox {
    layout: NodeLayout,
    shared: Arc<Shared>,
    rt: Option<tokio::runtime::Runtime>,
    kubelet: Option<tokio::task::JoinHandle<()>>,
    apiserver_url: String,
    etcd_endpoint: String,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("root", &self.layout.root())
            .field("apiserver", &self.apiserver_url)
            .finish()
    }
}

impl Sandbox {
    /// Lay out the node on first start (certificates, kubeconfigs, manifests), write `ROOT/sandbox.env`, and
    /// start the kubelet, which brings up etcd, the API server and the controller-manager from the manifests.
    /// Returns at once; call [`wait_ready`](Self::wait_ready).
    ///
    /// On the real control plane ([`ControlPlane::Real`]) the binaries are built first when the cache lacks them
    /// ([`crate::k8s::ensure`]; minutes on a cold machine), and the node runs their release.
    pub fn up(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let (version, binaries) = match opts.control_plane {
            ControlPlane::Atrest => (KubeVersion::parse(&opts.kube_version)?, None),
            ControlPlane::Real => {
                if opts.join.is_some() {
                    return Err(SandboxError::Manifest(
                        "joining a second control-plane node works on atrest's control plane only"
                            .into(),
                    ));
                }
                let bins = crate::k8s::ensure()?;
                let v = KubeVersion::release(&bins.kubernetes_version, &bins.etcd_version)?;
                (v, Some(bins))
            }
        };
        std::fs::create_dir_all(&opts.root).map_err(|e| SandboxError::Io(opts.root.clone(), e))?;
        let root = opts
            .root
            .canonicalize()
            .map_err(|e| SandboxError::Io(opts.root.clone(), e))?;
        let layout = NodeLayout::new(root);
        if !layout.is_initialized() {
            let ports = Ports::pick(opts.apiserver_port, opts.etcd_port)
                .map_err(|e| SandboxError::Io(layout.root().to_path_buf(), e))?;
            match &opts.join {
                Some(primary) => {
                    let primary = NodeLayout::new(
                        primary
                            .canonicalize()
                            .map_err(|e| SandboxError::Io(primary.clone(), e))?,
                    );
                    layout.init_joined(&primary, &opts.node, &version, ports.apiserver)?
                }
                None => layout.init_for(&opts.node, &version, ports, opts.control_plane)?,
            }
            tracing::info!(root = %layout.root().display(), "laid out a new kubeadm node");
        }
        let node = node_name(&layout).unwrap_or(opts.node);
        let (apiserver_url, etcd_endpoint) = endpoints(&layout)?;
        let sb_env = env_text(&layout, &etcd_endpoint);
        let env_path = layout.env_file();
        fsutil::write_with_mode(&env_path, sb_env.as_bytes(), 0o644)
            .map_err(crate::layout::LayoutError::from)?;

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sandbox")
            .enable_all()
            .build()
            .map_err(SandboxError::Runtime)?;
        let shared = Arc::new(Shared::new(
            layout.clone(),
            node,
            version,
            Arc::new(Faults::new()),
            binaries,
        ));
        let kubelet = rt.spawn(kubelet::run(shared.clone()));
        Ok(Sandbox {
            layout,
            shared,
            rt: Some(rt),
            kubelet: Some(kubelet),
            apiserver_url,
            etcd_endpoint,
        })
    }

    /// Run a future on the sandbox's runtime and wait for it (works from sync and async callers).
    fn block<F, T>(&self, f: F) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        self.rt
            .as_ref()
            .expect("runtime lives until drop")
            .spawn(async move {
                let _ = tx.send(f.await);
            });
        rx.recv().expect("sandbox task ended without an answer")
    }

    /// Wait until `/readyz` answers `ok` and the admin kubeconfig can read (kubeadm's ClusterRoleBinding exists).
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), SandboxError> {
        let deadline = Instant::now() + timeout;
        let admin = self.layout.admin_conf();
        loop {
            let state = self.apiserver_state();
            if matches!(state, ApiServerState::Running { .. }) {
                let admin = admin.clone();
                let ok = self.block(async move {
                    let Ok(c) = crate::client_from_kubeconfig(&admin).await else {
                        return false;
                    };
                    let ready = c
                        .request_text(http_get("/readyz"))
                        .await
                        .is_ok_and(|t| t.trim() == "ok");
                    ready
                        && c.request_text(http_get("/api/v1/namespaces/default"))
                            .await
                            .is_ok()
                });
                if ok {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(SandboxError::NotReady {
                    timeout,
                    state: format!("{state:?}"),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The API server's state as the kubelet sees it.
    pub fn apiserver_state(&self) -> ApiServerState {
        self.shared.lock().apiserver.clone()
    }

    /// Stop the API server and keep it down until [`start_apiserver`](Self::start_apiserver).
    pub fn stop_apiserver(&self) {
        self.shared.lock().apiserver_held = true;
        self.shared.wake.notify_one();
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(self.apiserver_state(), ApiServerState::Running { .. })
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Let the kubelet start the API server again (returns at once; see [`wait_ready`](Self::wait_ready)).
    pub fn start_apiserver(&self) {
        self.shared.lock().apiserver_held = false;
        self.shared.wake.notify_one();
    }

    /// Stop and start the API server, then wait until it is ready.
    pub fn restart_apiserver(&self, timeout: Duration) -> Result<(), SandboxError> {
        self.stop_apiserver();
        self.start_apiserver();
        self.wait_ready(timeout)
    }

    /// How many times the API server has come up since the sandbox started.
    pub fn apiserver_starts(&self) -> u64 {
        self.shared.lock().apiserver_starts
    }

    /// Wait until the API server has started more than `starts_before` times and is ready (after a manifest
    /// edit: read [`apiserver_starts`](Self::apiserver_starts) first, edit, then wait).
    pub fn wait_restarted(
        &self,
        starts_before: u64,
        timeout: Duration,
    ) -> Result<(), SandboxError> {
        let deadline = Instant::now() + timeout;
        while self.apiserver_starts() <= starts_before {
            if Instant::now() > deadline {
                return Err(SandboxError::NotReady {
                    timeout,
                    state: format!("{:?}", self.apiserver_state()),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_ready(deadline.saturating_duration_since(Instant::now()))
    }

    /// Wake the kubelet now instead of at its next poll (after writing a manifest).
    pub fn nudge(&self) {
        self.shared.wake.notify_one();
    }

    /// Fault injection applied by the API server (fail writes, delay responses). atrest's control plane only: the
    /// real kube-apiserver ignores it.
    pub fn faults(&self) -> Arc<Faults> {
        self.shared.faults.clone()
    }

    /// Switch the controller-manager's CSR signer on or off (off: approved CSRs are never issued). atrest's
    /// control plane only: the real kube-controller-manager's signer follows its manifest's flags.
    pub fn set_csr_signer(&self, enabled: bool) {
        self.shared.lock().csr_signer_enabled = enabled;
    }

    /// What runs this node's control plane.
    pub fn control_plane(&self) -> ControlPlane {
        if self.shared.binaries.is_some() {
            ControlPlane::Real
        } else {
            ControlPlane::Atrest
        }
    }

    /// The Kubernetes release the node's API server reports (the real one's on [`ControlPlane::Real`]).
    pub fn kube_version(&self) -> &KubeVersion {
        &self.shared.default_version
    }

    /// The node layout (paths of every kubeadm file).
    pub fn layout(&self) -> &NodeLayout {
        &self.layout
    }
    /// The directory standing for the node's `/`.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }
    /// The node name.
    pub fn node_name(&self) -> &str {
        &self.shared.node
    }
    /// `ROOT/etc/kubernetes/admin.conf` (user `kubernetes-admin`, group `kubeadm:cluster-admins`).
    pub fn kubeconfig(&self) -> PathBuf {
        self.layout.admin_conf()
    }
    /// `ROOT/etc/kubernetes/super-admin.conf` (group `system:masters`).
    pub fn super_admin_kubeconfig(&self) -> PathBuf {
        self.layout.super_admin_conf()
    }
    /// `ROOT/sandbox.env`.
    pub fn env_file(&self) -> PathBuf {
        self.layout.env_file()
    }
    /// The variables written to `sandbox.env`, for `Command::envs`.
    pub fn env(&self) -> Vec<(String, String)> {
        env_vars(&self.layout, &self.etcd_endpoint)
    }
    /// `https://127.0.0.1:<port>`.
    pub fn apiserver_url(&self) -> &str {
        &self.apiserver_url
    }
    /// `https://127.0.0.1:<port>` of etcd.
    pub fn etcd_endpoint(&self) -> &str {
        &self.etcd_endpoint
    }
    /// etcd's CA certificate.
    pub fn etcd_ca(&self) -> PathBuf {
        self.layout.etcd_ca()
    }
    /// A client certificate etcd accepts (the API server's `apiserver-etcd-client.crt`).
    pub fn etcd_cert(&self) -> PathBuf {
        self.layout.etcd_client_cert()
    }
    /// Its key.
    pub fn etcd_key(&self) -> PathBuf {
        self.layout.etcd_client_key()
    }
    /// The cluster CA certificate (`pki/ca.crt`).
    pub fn ca_cert(&self) -> PathBuf {
        self.layout.ca_cert()
    }
    /// The cluster CA key (`pki/ca.key`).
    pub fn ca_key(&self) -> PathBuf {
        self.layout.ca_key()
    }
    /// A static pod manifest (`kube-apiserver`, `etcd`, `kube-controller-manager`).
    pub fn manifest(&self, component: &str) -> PathBuf {
        self.layout.manifest(component)
    }

    /// An etcd client on the caller's runtime, with the apiserver-etcd-client certificate.
    pub async fn etcd_client(&self) -> Result<atrest_core::etcd::EtcdClient, SandboxError> {
        let read = |p: PathBuf| std::fs::read(&p).map_err(|e| SandboxError::Io(p, e));
        let ca = read(self.etcd_ca())?;
        let cert = read(self.etcd_cert())?;
        let key = read(self.etcd_key())?;
        let tls = atrest_core::etcd::EtcdTls::from_pem(ca, Some((cert, key)));
        atrest_core::etcd::connect_client(
            std::slice::from_ref(&self.etcd_endpoint),
            Some(&tls),
            Duration::from_secs(5),
        )
        .await
        .map_err(|e| SandboxError::Client(format!("etcd {}: {e}", self.etcd_endpoint)))
    }

    /// A kube client on the caller's runtime from a kubeconfig file (e.g. [`kubeconfig`](Self::kubeconfig)).
    pub async fn kube_client(&self, kubeconfig: &Path) -> Result<kube::Client, SandboxError> {
        crate::client_from_kubeconfig(kubeconfig)
            .await
            .map_err(|e| SandboxError::Client(e.to_string()))
    }

    /// Stop everything (controllers, API server, etcd) and wait for it.
    pub fn shutdown(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        let Some(rt) = self.rt.take() else { return };
        self.shared.lock().shutting_down = true;
        self.shared.wake.notify_one();
        if let Some(k) = self.kubelet.take() {
            let (tx, rx) = std::sync::mpsc::channel();
            rt.spawn(async move {
                let _ = k.await;
                let _ = tx.send(());
            });
            if rx.recv_timeout(Duration::from_secs(30)).is_err() {
                tracing::warn!("kubelet did not stop within 30 s");
            }
        }
        // Any task left is aborted; etcd processes are killed by their Drop.
        rt.shutdown_background();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn http_get(path: &str) -> http::Request<Vec<u8>> {
    http::Request::get(path)
        .body(Vec::new())
        .expect("static request")
}

/// The node name from the etcd manifest's `--name`.
fn node_name(layout: &NodeLayout) -> Option<String> {
    let bytes = std::fs::read(layout.manifest("etcd")).ok()?;
    let p = pod::parse(&layout.manifest("etcd"), &bytes, layout).ok()?;
    p.flag("name")
}

/// API server URL (from admin.conf's server) and etcd client endpoint (from the API server's `--etcd-servers`).
fn endpoints(layout: &NodeLayout) -> Result<(String, String), SandboxError> {
    let admin = std::fs::read_to_string(layout.admin_conf())
        .map_err(|e| SandboxError::Io(layout.admin_conf(), e))?;
    let server = admin
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .map(str::to_string)
        .ok_or_else(|| {
            SandboxError::Manifest(format!(
                "{}: no cluster server",
                layout.admin_conf().display()
            ))
        })?;
    let m = layout.manifest("kube-apiserver");
    let bytes = std::fs::read(&m).map_err(|e| SandboxError::Io(m.clone(), e))?;
    let etcd = pod::parse(&m, &bytes, layout)
        .ok()
        .and_then(|p| p.flag("etcd-servers"))
        .and_then(|s| s.split(',').next().map(str::to_string))
        .or_else(|| {
            // A broken API server manifest: fall back to etcd's own advertised URL.
            let e = layout.manifest("etcd");
            let b = std::fs::read(&e).ok()?;
            pod::parse(&e, &b, layout)
                .ok()?
                .flag("advertise-client-urls")
        })
        .ok_or_else(|| SandboxError::Manifest(format!("{}: no --etcd-servers", m.display())))?;
    Ok((server, etcd))
}

fn env_vars(layout: &NodeLayout, etcd: &str) -> Vec<(String, String)> {
    let s = |p: PathBuf| p.display().to_string();
    vec![
        ("KUBECONFIG".into(), s(layout.admin_conf())),
        ("ETCDCTL_API".into(), "3".into()),
        ("ETCDCTL_ENDPOINTS".into(), etcd.to_string()),
        ("ETCDCTL_CACERT".into(), s(layout.etcd_ca())),
        ("ETCDCTL_CERT".into(), s(layout.etcd_client_cert())),
        ("ETCDCTL_KEY".into(), s(layout.etcd_client_key())),
    ]
}

fn env_text(layout: &NodeLayout, etcd: &str) -> String {
    let mut s = String::from("# Written by atrest-sandbox; use with: source sandbox.env\n");
    for (k, v) in env_vars(layout, etcd) {
        s.push_str(&format!("export {k}={}\n", shell_quote(&v)));
    }
    s
}

fn shell_quote(v: &str) -> String {
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-:+=@,".contains(c))
    {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}
