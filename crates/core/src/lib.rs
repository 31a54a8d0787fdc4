//! atrest core: every format and protocol the atrest kubectl plugins share.
//!
//! Names follow Kubernetes: an [`config::EncryptionConfiguration`] yields
//! [`transform`] transformers; values in etcd are [`storage`] envelopes under
//! `/registry/...` keys; [`scan`] walks etcd and reports how each object is stored.
//! The plugins (`kubectl-encrypt`, `kubectl-reencrypt`, `kubectl-onboard`,
//! `kubectl-etcdcheck`) are thin clap fronts over the modules here.

pub mod cli;
pub mod client;
pub mod complete;
pub mod config;
pub mod discovery;
pub mod encrypt;
pub mod etcd;
pub mod fsutil;
pub mod kubeadm;
pub mod kubeconfig;
pub mod manifest;
pub mod onboard;
pub mod output;
pub mod pki;
pub mod podexec;
pub mod posture;
pub mod reencrypt;
pub mod scan;
pub mod storage;
pub mod time;
pub mod transform;
