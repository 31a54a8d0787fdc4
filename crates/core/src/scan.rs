//! Per-object report of how values are stored in etcd and whether they decrypt (the `kubectl etcdcheck` verb).
//!
//! For each key under `<prefix>/<resource>/`, [`Checker::check`] classifies the raw value without
//! keys (provider and key name from the `k8s:enc:` prefix), decrypts it with the resource's
//! transformers from an `EncryptionConfiguration` when one is given (the authenticated data is the
//! full etcd key, apiserver `pkg/storage/etcd3/store.go`), decodes the plaintext (protobuf or JSON)
//! and checks that the object's namespace/name match its key. [`PageChecker`] turns pages of raw
//! key-values from any source into items for a sink, keeping only counts ([`ScanSummary`]);
//! [`scan`] feeds it pages read from etcd, so memory stays bounded by the pages in flight.
//!
//! Around it: [`ScanOptions::plan`] turns the command line and the node's kube-apiserver manifest into a
//! request and a checker; [`Source`] reads the pages from etcd or, with `--via-pod`, through the etcd pod; and
//! [`report`] writes what was found as kubectl would ([`crate::output`]).
//!
//! The per-item JSON contract ([`ScanItem`]) is documented in issue 2 and relied on by users:
//! `key, resource, namespace, name, storage, encoding, keyName, verified, error`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::etcd::{EtcdError, EtcdReader, KeyValue, PageSize, RangePager, prefix_range_end};

mod check;
mod keys;
pub mod report;
mod setup;
mod source;
pub mod verify;

pub use check::{Checker, group_resource};
pub use keys::{KeyParts, ScanRequest, Scope, StoredResource, is_cluster_scoped, parse_key};
pub use setup::{DEFAULT_ETCD_PREFIX, ScanOptions, ScanPlan, SetupError};
pub use source::{Source, SourceError, ViaPodArgs};

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
    /// Reading etcd through its pod failed.
    #[error(transparent)]
    ViaPod(#[from] crate::podexec::PodExecError),
    /// The sink failed (e.g. stdout closed).
    #[error("writing results: {0}")]
    Output(#[from] std::io::Error),
}

/// One key-value as read from etcd, whatever the source: etcd's [`KeyValue`], or a
/// `(key, value)` pair of byte buffers (e.g. decoded from `etcdctl get -w json`).
pub trait RawKv: Sync {
    /// The full etcd key.
    fn key(&self) -> &[u8];
    /// The stored value.
    fn value(&self) -> &[u8];
}

impl RawKv for KeyValue {
    fn key(&self) -> &[u8] {
        KeyValue::key(self)
    }
    fn value(&self) -> &[u8] {
        KeyValue::value(self)
    }
}

impl<K: AsRef<[u8]> + Sync, V: AsRef<[u8]> + Sync> RawKv for (K, V) {
    fn key(&self) -> &[u8] {
        self.0.as_ref()
    }
    fn value(&self) -> &[u8] {
        self.1.as_ref()
    }
}

/// The report side of a scan, separate from where the key-values come from: feed it pages of
/// key-values in key order with [`PageChecker::page`]; each item goes to the sink in that order,
/// only counts are kept, and [`PageChecker::finish`] returns them. Memory is bounded by the page
/// the caller holds.
///
/// ```no_run
/// # use atrest_core::scan::*;
/// # fn pages() -> Vec<Vec<(Vec<u8>, Vec<u8>)>> { vec![] }
/// # fn demo(req: &ScanRequest, checker: &Checker) -> std::io::Result<ScanSummary> {
/// let mut pc = PageChecker::new(req, checker, |item: &ScanItem| {
///     println!("{} {}", item.key, item.status());
///     Ok(())
/// });
/// for page in pages() {
///     pc.page(&page)?; // e.g. key/value bytes decoded from `etcdctl get -w json`
/// }
/// let summary = pc.finish(0 /* the revision read at, if known */);
/// # Ok(summary) }
/// ```
///
/// A page's values are checked (decrypted, decoded, verified) on up to [`PageChecker::threads`]
/// threads; output order stays key order.
pub struct PageChecker<'a, F> {
    req: &'a ScanRequest,
    checker: &'a Checker,
    resource_prefix: String,
    summary: ScanSummary,
    sink: F,
    threads: usize,
}

/// Below this many values a page is checked on the calling thread only.
const PARALLEL_MIN: usize = 64;

impl<'a, F: FnMut(&ScanItem) -> std::io::Result<()>> PageChecker<'a, F> {
    /// A checker for the objects `req` selects, reporting each to `sink`.
    pub fn new(req: &'a ScanRequest, checker: &'a Checker, sink: F) -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4);
        Self {
            req,
            checker,
            resource_prefix: req.resource_prefix(),
            summary: ScanSummary::default(),
            sink,
            threads,
        }
    }

    /// How many threads check one page (default: the CPUs available, at most 4).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }

    /// Check one page of key-values (in key order) and hand each item to the sink, in order.
    pub fn page<T: RawKv>(&mut self, kvs: &[T]) -> std::io::Result<()> {
        let (checker, prefix, resource) =
            (self.checker, &*self.resource_prefix, &*self.req.resource);
        let check_one = move |kv: &T| {
            checker.check(
                prefix,
                resource,
                &String::from_utf8_lossy(kv.key()),
                kv.value(),
            )
        };
        if self.threads <= 1 || kvs.len() < PARALLEL_MIN {
            for kv in kvs {
                let item = check_one(kv);
                self.summary.add(&item);
                (self.sink)(&item)?;
            }
            return Ok(());
        }
        let chunk = kvs.len().div_ceil(self.threads);
        let items: Vec<Vec<ScanItem>> = std::thread::scope(|s| {
            let mut chunks = kvs.chunks(chunk);
            let first = chunks.next().unwrap_or_default();
            let handles: Vec<_> = chunks
                .map(|c| s.spawn(move || c.iter().map(&check_one).collect()))
                .collect();
            let mut out = vec![first.iter().map(&check_one).collect()];
            for h in handles {
                // `check` never panics on any input; if it did, re-raise it here.
                out.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
            out
        });
        for item in items.iter().flatten() {
            self.summary.add(item);
            (self.sink)(item)?;
        }
        Ok(())
    }

    /// The counts so far.
    pub fn summary(&self) -> &ScanSummary {
        &self.summary
    }

    /// The counts, with the revision the pages were read at.
    pub fn finish(mut self, revision: i64) -> ScanSummary {
        self.summary.revision = revision;
        self.summary
    }
}

/// A key range read page by page, in key order, at one revision: etcd's [`RangePager`], or etcdctl's through the
/// etcd pod ([`crate::podexec::EtcdctlPager`]).
pub trait Pages {
    /// One key-value.
    type Kv: RawKv;
    /// Why a page could not be read.
    type Error;
    /// The next page, `None` after the last.
    fn next_page(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Option<Vec<Self::Kv>>, Self::Error>>;
}

impl Pages for RangePager {
    type Kv = KeyValue;
    type Error = EtcdError;
    fn next_page(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Option<Vec<KeyValue>>, EtcdError>> {
        RangePager::next_page(self)
    }
}

/// Hand every page of `pages` to `handle`, in order. The next page is requested before the current one is
/// handled, so reading and checking overlap and at most two pages are held.
pub async fn each_page<P: Pages>(
    pages: &mut P,
    mut handle: impl FnMut(&[P::Kv]) -> std::io::Result<()>,
) -> Result<(), ScanError>
where
    ScanError: From<P::Error>,
{
    let mut page = pages.next_page().await?;
    while let Some(kvs) = page.take() {
        let (next, handled) = tokio::join!(pages.next_page(), async { handle(&kvs) });
        handled?;
        drop(kvs);
        page = next?;
    }
    Ok(())
}

/// Read every key `req` selects from etcd (one revision, `page_size` keys per request), check each
/// with `checker` ([`PageChecker`]), hand each item to `sink` in key order and return the counts.
/// The next page is requested before the current one is checked ([`each_page`]).
pub async fn scan(
    reader: &EtcdReader,
    req: &ScanRequest,
    checker: &Checker,
    page_size: PageSize,
    sink: impl FnMut(&ScanItem) -> std::io::Result<()>,
) -> Result<ScanSummary, ScanError> {
    let mut pc = PageChecker::new(req, checker, sink);
    if let Some(key) = req.single_key() {
        let mut revision = 0;
        if let Some(kv) = reader.get(key.as_bytes()).await? {
            revision = kv.mod_revision();
            pc.page(&[kv])?;
        }
        return Ok(pc.finish(revision));
    }
    let start = req.range_start().into_bytes();
    let end = prefix_range_end(&start);
    let mut pager = reader.pages(start, end, page_size);
    each_page(&mut pager, |kvs| pc.page(kvs)).await?;
    Ok(pc.finish(pager.revision()))
}

#[cfg(test)]
mod tests;
