//! atrest-sandbox's integration tests, in one binary. `apiserver_*`: atrest's API server started from a
//! kube-apiserver command line on a real etcd, driven by the real kubectl. `node_*`: the node (kubelet, static
//! pods, controller-manager's CSR signer, the `atrest-sandbox` CLI, the real control plane). Every test owns its
//! temp dirs, ports and processes, so they run as threads of one process; shared helpers live in `support`.

mod support;

mod apiserver_basic;
mod apiserver_kubectl;
mod apiserver_pods;
mod apiserver_rbac;
mod apiserver_storage;
mod apiserver_versions;
mod node_cli;
mod node_csr_signer;
mod node_kubelet;
mod node_real;
