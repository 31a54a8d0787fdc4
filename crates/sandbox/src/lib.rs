//! The sandbox control plane: a single-node kubeadm-like cluster on real etcd.
//!
//! Never a dependency of a plugin; used by the end-to-end tests and `cargo xtask demo`.
//! Start one with [`Sandbox::up`]; the node's files follow kubeadm ([`layout`]), the kubelet runs the static
//! pods from `ROOT/etc/kubernetes/manifests` ([`kubelet`]). Two control planes ([`ControlPlane`]):
//! - `atrest` (the default): real etcd (the machine's), the in-process [`apiserver`], and the controller-manager's
//!   CSR signer ([`controller`]); impersonates 1.27 … 1.33, injects faults;
//! - `real` (`ATREST_CONTROL_PLANE=real` for [`SandboxOptions::new`]): etcd 3.6, kube-apiserver and
//!   kube-controller-manager built from the project's Go module ([`k8s`]), each run by the kubelet as a process in
//!   a mount namespace of its own with the manifest's command line ([`container`]). Nothing of atrest's answers in
//!   their place; only what `kubeadm init` does through the API after start-up (the `kubeadm:cluster-admins`
//!   binding, the `kubeadm-config` ConfigMap) is done by the sandbox.

pub mod apiserver;
pub mod container;
pub mod controller;
pub mod etcd;
pub mod k8s;
pub mod kubelet;
pub mod layout;
pub mod pki;
pub mod pod;
mod sandbox;
pub mod tutorial;

use std::path::Path;

pub use kubelet::ApiServerState;
pub use layout::{KubeVersion, NodeLayout};
pub use sandbox::{ControlPlane, Sandbox, SandboxError, SandboxOptions};

/// The etcd client the sandbox's API server uses (core's), for tests and benchmarks.
pub use atrest_core::etcd::EtcdClient;
/// Re-exported so tests and benchmarks use the same client versions as the sandbox.
pub use {k8s_openapi, kube};

/// A kube client from a kubeconfig file (its current context), on the caller's runtime.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client, String> {
    let kc = kube::config::Kubeconfig::read_from(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    kube::Client::try_from(cfg).map_err(|e| format!("{}: {e}", path.display()))
}
