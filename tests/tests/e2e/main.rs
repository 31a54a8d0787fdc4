//! The end-to-end tests in one binary (one link, one process start under `cargo test`): the built plugins, the real
//! kubectl, etcdctl and openssl against the sandbox on real etcd, or the real control plane. Each module was once a
//! binary of its own; test names keep their function names under the module's path (`cargo xtask test -E
//! 'test(etcdcheck)'` selects as before). What they share lives in the harness, `atrest_e2e` (tests/src): one home.
//! Needs `cargo build --workspace --bins` first (`cargo xtask test` does).
//!
//! Tests run in parallel threads of this one process (nextest: one process each): none sets environment variables
//! or the working directory of the process; each starts its own sandbox or etcd under a temporary directory, on
//! free ports.

mod encrypt_ha;
mod encrypt_kubeadm;
mod encrypt_node;
mod encrypt_paths_owners;
mod encrypt_sandbox;
mod etcd_keys;
mod etcdcheck;
mod etcdcheck_harness;
mod etcdcheck_kms;
mod etcdcheck_via_pod;
mod large_values;
mod onboard;
mod onboard_kubeconfig;
mod partial_discovery;
mod posture;
mod proxy;
mod real_paths;
mod real_tutorial;
mod real_verbs;
mod reencrypt;
mod sandbox_encryption;
mod sandbox_tutorial;
