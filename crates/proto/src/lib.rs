//! The gRPC APIs atrest speaks, as prost messages and tonic clients:
//!
//! - [`etcdserverpb`] / [`mvccpb`]: etcd v3's KV service (Range, Put, DeleteRange, Txn), as in
//!   go.etcd.io/etcd/api/v3 `etcdserverpb/rpc.proto` and `mvccpb/kv.proto`;
//! - [`kms_v2`]: the KMS v2 plugin API (`k8s.io/kms/apis/v2/api.proto`, Status/Decrypt/Encrypt).
//!
//! The .proto files under `proto/` are ours, holding only the messages and fields atrest uses (names and field
//! numbers as upstream). The Rust code under `src/generated/` is generated from them by `cargo xtask codegen`
//! (`protox` + `tonic-prost-build`, no protoc) and committed; the test `codegen_fresh` fails when it is stale.
//! Clients only, and without `connect` helpers: callers bring their own channel.
//!
//! Besides the generated code, a few read accessors with the names etcd's Go client uses (`kv.Key`,
//! `resp.Kvs`, `resp.More`…), so that callers read responses the same way wherever they come from.

/// etcd's `mvccpb` package: [`mvccpb::KeyValue`].
pub mod mvccpb {
    include!("generated/mvccpb.rs");
}

/// etcd's `etcdserverpb` package: the KV service's messages and [`etcdserverpb::kv_client::KvClient`].
pub mod etcdserverpb {
    include!("generated/etcdserverpb.rs");
}

/// The KMS v2 plugin API (protobuf package `v2`):
/// [`kms_v2::key_management_service_client::KeyManagementServiceClient`].
pub mod kms_v2 {
    include!("generated/v2.rs");
}

impl mvccpb::KeyValue {
    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }
    /// The value (empty for a keys-only read).
    pub fn value(&self) -> &[u8] {
        &self.value
    }
    /// The revision of the key's last modification.
    pub fn mod_revision(&self) -> i64 {
        self.mod_revision
    }
    /// The revision of the key's creation.
    pub fn create_revision(&self) -> i64 {
        self.create_revision
    }
}

impl etcdserverpb::ResponseHeader {
    /// The store's revision when the request was applied.
    pub fn revision(&self) -> i64 {
        self.revision
    }
}

impl etcdserverpb::RangeResponse {
    /// The header (revision of the read).
    pub fn header(&self) -> Option<&etcdserverpb::ResponseHeader> {
        self.header.as_ref()
    }
    /// The key-values read.
    pub fn kvs(&self) -> &[mvccpb::KeyValue] {
        &self.kvs
    }
    /// Take the key-values out of the response.
    pub fn take_kvs(&mut self) -> Vec<mvccpb::KeyValue> {
        std::mem::take(&mut self.kvs)
    }
    /// Whether the range holds more keys than were returned (a limit was hit).
    pub fn more(&self) -> bool {
        self.more
    }
    /// How many keys the range holds.
    pub fn count(&self) -> i64 {
        self.count
    }
}

impl etcdserverpb::TxnResponse {
    /// The header (revision after the transaction).
    pub fn header(&self) -> Option<&etcdserverpb::ResponseHeader> {
        self.header.as_ref()
    }
    /// Whether the comparisons held (the success branch ran).
    pub fn succeeded(&self) -> bool {
        self.succeeded
    }
}

impl etcdserverpb::PutResponse {
    /// The header (revision of the write).
    pub fn header(&self) -> Option<&etcdserverpb::ResponseHeader> {
        self.header.as_ref()
    }
}

impl etcdserverpb::DeleteRangeResponse {
    /// The header (revision of the delete).
    pub fn header(&self) -> Option<&etcdserverpb::ResponseHeader> {
        self.header.as_ref()
    }
    /// How many keys were deleted.
    pub fn deleted(&self) -> i64 {
        self.deleted
    }
}
