//! etcd connection (TLS, etcdctl-compatible flags and environment) and paginated, read-only range scans.
