//! Per-object report of how values are stored in etcd and whether they decrypt (the `kubectl etcdcheck` verb).
