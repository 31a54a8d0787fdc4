//! The sandbox control plane: a single-node kubeadm-like cluster on real etcd.
//!
//! Never a dependency of a plugin; used by the end-to-end tests and `cargo xtask demo`.

pub mod apiserver;
