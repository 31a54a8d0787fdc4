//! The sandbox API server: a kube-apiserver stand-in storing objects in real etcd exactly as kube-apiserver does.
