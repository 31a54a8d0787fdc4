//! Per-object report of how values are stored in etcd and whether they decrypt (the `kubectl etcdcheck` verb).
//!
//! For each key under `<prefix>/<resource>/`, [`Checker::check`] classifies the raw value without
//! keys (provider and key name from the `k8s:enc:` prefix), decrypts it with the resource's
//! transformers from an `EncryptionConfiguration` when one is given (the authenticated data is the
//! full etcd key, apiserver `pkg/storage/etcd3/store.go`), decodes the plaintext (protobuf or JSON)
//! and checks that the object's namespace/name match its key. [`scan`] streams pages from etcd
//! through the checker into a sink, keeping only counts ([`ScanSummary`]), so memory stays flat.
//!
//! The per-item JSON contract ([`ScanItem`]) is documented in issue 2 and relied on by users:
//! `key, resource, namespace, name, storage, encoding, keyName, verified, error`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::etcd::{EtcdError, EtcdReader, prefix_range_end};

mod check;
mod keys;

pub use check::{Checker, group_resource};
pub use keys::{KeyParts, ScanRequest, Scope, is_cluster_scoped, parse_key};

pub use crate::transform::{Encoding, StorageKind};

fn ser_storage<S: serde::Serializer>(k: &StorageKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

fn ser_encoding<S: serde::Serializer>(e: &Option<Encoding>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.serialize_str(e.as_str()),
        None => s.serialize_none(),
    }
}

/// Whether a storage kind is encrypted.
pub fn is_encrypted(k: StorageKind) -> bool {
    !matches!(k, StorageKind::Identity | StorageKind::Unknown)
}

/// One object's result. Serialized exactly as the issue-2 contract (field names and order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanItem {
    /// The full etcd key.
    pub key: String,
    /// The resource (`secrets`).
    pub resource: String,
    /// Namespace from the key (`null` for cluster-scoped objects).
    pub namespace: Option<String>,
    /// Name from the key.
    pub name: String,
    /// How the value is stored.
    #[serde(serialize_with = "ser_storage")]
    pub storage: StorageKind,
    /// Encoding of the plaintext, when known (plaintext values, or decrypted ones).
    #[serde(serialize_with = "ser_encoding")]
    pub encoding: Option<Encoding>,
    /// Key name from the prefix (aescbc/aesgcm/secretbox), or the KMS provider name.
    pub key_name: Option<String>,
    /// true: decoded (and decrypted) and identity matches; false: a key was available but
    /// decryption or decoding failed, or the identity does not match; null: no key available.
    pub verified: Option<bool>,
    /// What went wrong or why it could not be checked.
    pub error: Option<String>,
    /// The read used a provider/key that is not the first one (the apiserver would rewrite it).
    #[serde(skip)]
    pub stale: bool,
    /// Whether this item is a problem (exit status 2): failed verification, an unknown value, or an
    /// encrypted value no configured key can read.
    #[serde(skip)]
    pub finding: bool,
}

impl ScanItem {
    /// The STATUS column text.
    pub fn status(&self) -> String {
        match (self.verified, &self.error) {
            (Some(true), _) if self.stale => "ok (stale: not the write key)".into(),
            (Some(true), _) => "ok".into(),
            (Some(false), Some(e)) => format!("FAILED: {e}"),
            (Some(false), None) => "FAILED".into(),
            (None, Some(e)) if self.finding => format!("UNREADABLE: {e}"),
            (None, Some(e)) => format!("not verified: {e}"),
            (None, None) => "not verified".into(),
        }
    }
}

/// Counts per namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSummary {
    /// Objects.
    pub total: u64,
    /// Plaintext objects.
    pub plaintext: u64,
    /// Encrypted objects.
    pub encrypted: u64,
    /// Findings.
    pub findings: u64,
}

/// Counts over a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanSummary {
    /// Objects seen.
    pub total: u64,
    /// `verified: true`.
    pub verified: u64,
    /// `verified: false`.
    pub failed: u64,
    /// `verified: null`.
    pub unverified: u64,
    /// Plaintext (identity) values.
    pub plaintext: u64,
    /// Reads through a provider/key that is not the write key.
    pub stale: u64,
    /// Items that make the exit status 2 (plaintext not included).
    pub findings: u64,
    /// Count per storage (`identity`, `aescbc`, ...).
    pub by_storage: BTreeMap<String, u64>,
    /// Count per `storage:keyName` for encrypted values.
    pub by_key: BTreeMap<String, u64>,
    /// Counts per namespace (`""` for cluster-scoped objects).
    pub by_namespace: BTreeMap<String, NamespaceSummary>,
    /// The etcd revision the scan read at.
    pub revision: i64,
}

impl ScanSummary {
    /// Count one item.
    pub fn add(&mut self, item: &ScanItem) {
        self.total += 1;
        match item.verified {
            Some(true) => self.verified += 1,
            Some(false) => self.failed += 1,
            None => self.unverified += 1,
        }
        let plaintext = item.storage == StorageKind::Identity;
        self.plaintext += u64::from(plaintext);
        self.stale += u64::from(item.stale);
        self.findings += u64::from(item.finding);
        *self
            .by_storage
            .entry(item.storage.as_str().to_string())
            .or_default() += 1;
        if is_encrypted(item.storage) {
            let k = format!(
                "{}:{}",
                item.storage,
                item.key_name.as_deref().unwrap_or("")
            );
            *self.by_key.entry(k).or_default() += 1;
        }
        let ns = self
            .by_namespace
            .entry(item.namespace.clone().unwrap_or_default())
            .or_default();
        ns.total += 1;
        ns.plaintext += u64::from(plaintext);
        ns.encrypted += u64::from(is_encrypted(item.storage));
        ns.findings += u64::from(item.finding);
    }
}

/// A scan could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Talking to etcd failed.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// The sink failed (e.g. stdout closed).
    #[error("writing results: {0}")]
    Output(#[from] std::io::Error),
}

/// Read every key `req` selects from etcd (one revision, `page_size` keys per request), check each
/// with `checker`, hand each item to `sink` and return the counts. Pages are fetched one ahead
/// while the previous one is checked; only one or two pages are held at any time.
pub async fn scan(
    reader: &EtcdReader,
    req: &ScanRequest,
    checker: &Checker,
    page_size: i64,
    mut sink: impl FnMut(&ScanItem) -> std::io::Result<()>,
) -> Result<ScanSummary, ScanError> {
    let mut summary = ScanSummary::default();
    let resource_prefix = req.resource_prefix();
    let mut handle_kv =
        |key: &[u8], value: &[u8], summary: &mut ScanSummary| -> std::io::Result<()> {
            let key = String::from_utf8_lossy(key);
            let item = checker.check(&resource_prefix, &req.resource, &key, value);
            summary.add(&item);
            sink(&item)
        };
    if let Some(key) = req.single_key() {
        if let Some(kv) = reader.get(key.as_bytes()).await? {
            summary.revision = kv.mod_revision();
            handle_kv(kv.key(), kv.value(), &mut summary)?;
        }
        return Ok(summary);
    }
    let start = req.range_start().into_bytes();
    let end = prefix_range_end(&start);
    let mut pager = reader.pages(start, end, page_size);
    let mut page = pager.next_page().await?;
    while let Some(kvs) = page.take() {
        summary.revision = pager.revision();
        // Fetch the next page while this one is checked.
        let (next, checked) = tokio::join!(pager.next_page(), async {
            for kv in &kvs {
                handle_kv(kv.key(), kv.value(), &mut summary)?;
            }
            Ok::<_, std::io::Error>(())
        });
        checked?;
        drop(kvs);
        page = next?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests;
