//! The sandbox API server: a kube-apiserver stand-in storing objects in real etcd exactly as kube-apiserver does.
//!
//! Entry point: [`ApiServer::start`] takes the kube-apiserver container's command line (as written in
//! `etc/kubernetes/manifests/kube-apiserver.yaml`), resolves every file flag through a [`PathResolver`]
//! (container path → host path, like the kubelet's volumeMounts → hostPath volumes), connects to etcd,
//! bootstraps the system namespaces and default RBAC, and serves HTTPS until [`RunningApiServer::shutdown`].
//! [`Faults`] lets tests fail writes (429/500) and delay responses at runtime.

#![allow(clippy::result_large_err)] // ApiError carries a Status body; errors are the cold path
mod authn;
mod bootstrap;
mod codec;
mod discovery;
mod encryption;
mod exec;
mod faults;
mod flags;
mod http;
mod impersonation;
mod managed;
mod rbac;
mod resources;
mod rest;
mod reviews;
mod router;
mod status;
mod store;
mod strategy;
mod table;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use exec::{ExecContainer, Kubelet, container_env};
pub use faults::{Faults, WriteFault};
pub use flags::Options;

/// Maps a path as the container sees it to the host file the kubelet mounted there.
pub trait PathResolver: Send + Sync {
    /// The host path for `container_path`, or `None` when no volume mount covers it (the file is invisible).
    fn host_path(&self, container_path: &Path) -> Option<PathBuf>;

    /// Reads the file at `container_path` as the container's process would (its user may be denied by the mode
    /// bits: see [`crate::pod::MountTable`]).
    fn read(&self, container_path: &Path) -> std::io::Result<Vec<u8>> {
        match self.host_path(container_path) {
            Some(h) => std::fs::read(h),
            None => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        }
    }
}

/// A [`PathResolver`] for running outside a pod: every container path is the host path.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostPaths;

impl PathResolver for HostPaths {
    fn host_path(&self, container_path: &Path) -> Option<PathBuf> {
        Some(container_path.to_path_buf())
    }
}

/// Why the server refused to start. `Display` is the message the real kube-apiserver prints in that case.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A flag the real server rejects (unknown flag, bad value, missing required flag).
    #[error("{0}")]
    Flags(String),
    /// A file named by a flag is missing, unreadable, or invalid (certificates, EncryptionConfiguration).
    #[error("{0}")]
    Config(String),
    /// etcd could not be reached or bootstrap writes failed.
    #[error("{0}")]
    Etcd(String),
    /// The secure port could not be bound.
    #[error("{0}")]
    Listen(String),
}

/// The kube-apiserver stand-in.
pub struct ApiServer;

impl ApiServer {
    /// Parse kube-apiserver flags (`command[0]` is the binary name, e.g. `kube-apiserver`), load every file
    /// through `paths`, connect to etcd, bootstrap (namespaces, default RBAC), then listen on
    /// `--bind-address:--secure-port`. `kube_version` (e.g. `1.32` or `1.32.4`) is what `/version` reports.
    /// A flag or config the real kube-apiserver would reject returns `Err` with the real server's message.
    pub async fn start(
        command: &[String],
        paths: Arc<dyn PathResolver>,
        faults: Arc<Faults>,
        kube_version: &str,
    ) -> Result<RunningApiServer, StartError> {
        let opts = flags::Options::parse(command)?;
        http::start(opts, paths, faults, kube_version, None).await
    }

    /// [`Self::start`] on a node whose kubelet serves `pods/exec` for the pods it runs.
    pub async fn start_on_node(
        command: &[String],
        paths: Arc<dyn PathResolver>,
        faults: Arc<Faults>,
        kube_version: &str,
        kubelet: Arc<dyn Kubelet>,
    ) -> Result<RunningApiServer, StartError> {
        let opts = flags::Options::parse(command)?;
        http::start(opts, paths, faults, kube_version, Some(kubelet)).await
    }
}

/// A started server. Dropping it without [`shutdown`](Self::shutdown) also stops it (the tasks are aborted).
pub struct RunningApiServer {
    pub(crate) addr: SocketAddr,
    pub(crate) shutdown: Option<tokio::sync::watch::Sender<bool>>,
    pub(crate) exit: tokio::sync::watch::Receiver<Option<String>>,
    pub(crate) tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningApiServer {
    /// The secure port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting connections, end every task and wait for them.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
    }

    /// Wait until the server stops on its own (e.g. its listener failed); returns why. Cancel-safe.
    pub async fn exited(&mut self) -> String {
        loop {
            if let Some(reason) = self.exit.borrow().clone() {
                return reason;
            }
            if self.exit.changed().await.is_err() {
                return "server task ended".to_string();
            }
        }
    }
}

impl Drop for RunningApiServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}
