//! etcd storage like apiserver's `pkg/storage/etcd3/store.go`: keys `<prefix>/<resource>/[<ns>/]<name>`,
//! values serialized with the storage media type and passed through the resource's transformer (AD = the key),
//! resourceVersion = etcd mod revision, optimistic concurrency with `OptimisticPut` (txn on mod_revision), and
//! `GuaranteedUpdate`'s short-circuit: an unchanged object read through the current write transformer is not
//! written again; a stale read is rewritten.

use std::sync::{Arc, RwLock};

use base64::Engine;
use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};
use serde_json::{Value, json};

use super::codec::{StorageMedia, decode_storage, encode_storage};
use super::resources::ResourceDef;
use super::status::ApiError;

/// Reads and writes values for one group/resource (the EncryptionConfiguration's transformers).
pub(crate) trait ValueTransformer: Send + Sync {
    /// Plaintext and whether the read is stale (not the first provider/key).
    fn read(
        &self,
        group: &str,
        resource: &str,
        data: &[u8],
        ad: &[u8],
    ) -> Result<(Vec<u8>, bool), String>;
    /// Encrypt with the first provider/key.
    fn write(
        &self,
        group: &str,
        resource: &str,
        plaintext: &[u8],
        ad: &[u8],
    ) -> Result<Vec<u8>, String>;
    /// The loaded EncryptionConfiguration (health checks, reload metrics), if this is one.
    fn encryption(&self) -> Option<&super::encryption::ConfiguredTransformers> {
        None
    }
}

/// No `--encryption-provider-config`: identity for every resource. Identity refuses `k8s:enc:` data
/// (apiserver `pkg/storage/value/encrypt/identity/identity.go`).
pub(crate) struct Identity;

impl ValueTransformer for Identity {
    fn read(&self, _g: &str, _r: &str, data: &[u8], _ad: &[u8]) -> Result<(Vec<u8>, bool), String> {
        if data.starts_with(b"k8s:enc:") {
            return Err("identity transformer tried to read encrypted data".into());
        }
        Ok((data.to_vec(), false))
    }
    fn write(&self, _g: &str, _r: &str, plaintext: &[u8], _ad: &[u8]) -> Result<Vec<u8>, String> {
        Ok(plaintext.to_vec())
    }
}

/// One object read from etcd.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    /// The object with `metadata.resourceVersion` set to the mod revision.
    pub obj: Value,
    pub rev: i64,
    /// The plaintext serialization read from etcd.
    pub data: Vec<u8>,
    pub stale: bool,
}

/// A page of a list.
pub(crate) struct Page {
    pub items: Vec<Stored>,
    pub rev: i64,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

pub(crate) struct Store {
    pub etcd: etcd_client::Client,
    pub prefix: String,
    pub media: StorageMedia,
    pub transformer: RwLock<Arc<dyn ValueTransformer>>,
    /// Bumped on every write to an RBAC object through this store (invalidates the authorizer's cache).
    pub rbac_generation: std::sync::atomic::AtomicU64,
}

/// The message of the 410 for an expired continue token (apiserver `pkg/storage/errors.go`
/// `NewCompactedError` → apierrors `NewResourceExpired`).
pub(crate) const EXPIRED_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

fn etcd_err(e: etcd_client::Error) -> ApiError {
    ApiError::internal(e)
}

impl Store {
    /// `<prefix>/<resource>/[<ns>/]<name>`.
    pub fn key(&self, def: &ResourceDef, ns: &str, name: &str) -> String {
        if def.namespaced {
            format!("{}/{}/{}/{}", self.prefix, def.etcd_segment(), ns, name)
        } else {
            format!("{}/{}/{}", self.prefix, def.etcd_segment(), name)
        }
    }

    /// The list prefix (with trailing `/`) for a namespace or all namespaces.
    pub fn list_prefix(&self, def: &ResourceDef, ns: Option<&str>) -> String {
        match ns {
            Some(ns) if def.namespaced => format!("{}/{}/{}/", self.prefix, def.etcd_segment(), ns),
            _ => format!("{}/{}/", self.prefix, def.etcd_segment()),
        }
    }

    fn wrote(&self, def: &ResourceDef) {
        if def.group == "rbac.authorization.k8s.io" {
            self.rbac_generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// The current transformers.
    pub(crate) fn transformer(&self) -> Arc<dyn ValueTransformer> {
        self.transformer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Swap the transformers (automatic reload of the EncryptionConfiguration).
    pub fn set_transformer(&self, t: Arc<dyn ValueTransformer>) {
        *self.transformer.write().unwrap_or_else(|e| e.into_inner()) = t;
    }

    fn decode(
        &self,
        def: &ResourceDef,
        key: &str,
        value: &[u8],
        rev: i64,
    ) -> Result<Stored, ApiError> {
        let (plain, stale) = self
            .transformer()
            .read(def.group, def.resource, value, key.as_bytes())
            .map_err(|e| ApiError::internal(format!("unable to transform key \"{key}\": {e}")))?;
        let mut obj = decode_storage(&plain)
            .map_err(|e| ApiError::internal(format!("decoding {key}: {e}")))?;
        set_rv(&mut obj, rev);
        Ok(Stored {
            obj,
            rev,
            data: plain,
            stale,
        })
    }

    /// Serialize for storage: resourceVersion cleared (`APIObjectVersioner.PrepareObjectForStorage`).
    pub fn serialize(&self, obj: &Value) -> Result<Vec<u8>, ApiError> {
        let mut o = obj.clone();
        if let Some(m) = o.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            m.remove("resourceVersion");
            m.remove("selfLink");
        }
        encode_storage(&o, self.media).map_err(ApiError::internal)
    }

    fn seal(&self, def: &ResourceDef, key: &str, data: &[u8]) -> Result<Vec<u8>, ApiError> {
        self.transformer()
            .write(def.group, def.resource, data, key.as_bytes())
            .map_err(|e| ApiError::internal(format!("unable to transform key \"{key}\": {e}")))
    }

    pub async fn get(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
    ) -> Result<Option<Stored>, ApiError> {
        let key = self.key(def, ns, name);
        let mut c = self.etcd.clone();
        let resp = c.get(key.as_bytes(), None).await.map_err(etcd_err)?;
        match resp.kvs().first() {
            None => Ok(None),
            Some(kv) => Ok(Some(self.decode(
                def,
                &key,
                kv.value(),
                kv.mod_revision(),
            )?)),
        }
    }

    /// List with `limit`/`continue` (token format of apiserver `pkg/storage/continue.go`).
    pub async fn list(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
        limit: i64,
        continue_token: Option<&str>,
    ) -> Result<Page, ApiError> {
        let prefix = self.list_prefix(def, ns);
        let mut start = prefix.clone();
        let mut at_rev = 0;
        if let Some(tok) = continue_token.filter(|t| !t.is_empty()) {
            let (rv, s) = decode_continue(tok, &prefix)?;
            start = s;
            at_rev = rv;
        }
        let mut end = prefix.clone().into_bytes();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let mut opts = GetOptions::new().with_range(end);
        if limit > 0 {
            opts = opts.with_limit(limit);
        }
        if at_rev > 0 {
            opts = opts.with_revision(at_rev);
        }
        let mut c = self.etcd.clone();
        let resp = match c.get(start.as_bytes(), Some(opts)).await {
            Ok(r) => r,
            Err(e) if at_rev > 0 && e.to_string().contains("compacted") => {
                return Err(ApiError::expired(EXPIRED_CONTINUE));
            }
            Err(e) => return Err(etcd_err(e)),
        };
        let rev = if at_rev > 0 {
            at_rev
        } else {
            resp.header().map(|h| h.revision()).unwrap_or(0)
        };
        let mut items = Vec::with_capacity(resp.kvs().len());
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            items.push(self.decode(def, &key, kv.value(), kv.mod_revision())?);
        }
        let (continue_token, remaining) = if resp.more() {
            let last = resp
                .kvs()
                .last()
                .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
                .unwrap_or_default();
            let next = format!("{}\u{0}", &last[prefix.len()..]);
            let tok = json!({"v": "meta.k8s.io/v1", "rv": rev, "start": next});
            let tok = base64::engine::general_purpose::URL_SAFE
                .encode(serde_json::to_vec(&tok).unwrap_or_default());
            (Some(tok), Some(resp.count() - items.len() as i64))
        } else {
            (None, None)
        };
        Ok(Page {
            items,
            rev,
            continue_token,
            remaining,
        })
    }

    /// Create; AlreadyExists when the key exists.
    pub async fn create(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        obj: &Value,
    ) -> Result<Stored, ApiError> {
        let key = self.key(def, ns, name);
        let data = self.serialize(obj)?;
        let sealed = self.seal(def, &key, &data)?;
        let txn = Txn::new()
            .when(vec![Compare::mod_revision(
                key.as_bytes(),
                CompareOp::Equal,
                0,
            )])
            .and_then(vec![TxnOp::put(key.as_bytes(), sealed, None)]);
        let mut c = self.etcd.clone();
        let resp = c.txn(txn).await.map_err(etcd_err)?;
        if !resp.succeeded() {
            return Err(ApiError::already_exists(def.group, def.resource, name));
        }
        self.wrote(def);
        let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
        let mut out = decode_storage(&data).map_err(ApiError::internal)?;
        set_rv(&mut out, rev);
        Ok(Stored {
            obj: out,
            rev,
            data,
            stale: false,
        })
    }

    /// `GuaranteedUpdate`: read, apply `update`, skip the write when the serialization is unchanged and the read
    /// was not stale, else `OptimisticPut`; retry on a concurrent change. `update` sees the current object and
    /// returns the new one (or an error such as Conflict for a resourceVersion precondition).
    pub async fn guaranteed_update<F>(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        mut update: F,
    ) -> Result<Stored, ApiError>
    where
        F: FnMut(&Stored) -> Result<Value, ApiError>,
    {
        let key = self.key(def, ns, name);
        for _ in 0..16 {
            let cur = self
                .get(def, ns, name)
                .await?
                .ok_or_else(|| ApiError::not_found(def.group, def.resource, name))?;
            let new = update(&cur)?;
            let data = self.serialize(&new)?;
            if !cur.stale && data == cur.data {
                return Ok(cur);
            }
            let sealed = self.seal(def, &key, &data)?;
            let txn = Txn::new()
                .when(vec![Compare::mod_revision(
                    key.as_bytes(),
                    CompareOp::Equal,
                    cur.rev,
                )])
                .and_then(vec![TxnOp::put(key.as_bytes(), sealed, None)]);
            let mut c = self.etcd.clone();
            let resp = c.txn(txn).await.map_err(etcd_err)?;
            if resp.succeeded() {
                self.wrote(def);
                let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
                let mut out = decode_storage(&data).map_err(ApiError::internal)?;
                set_rv(&mut out, rev);
                return Ok(Stored {
                    obj: out,
                    rev,
                    data,
                    stale: false,
                });
            }
        }
        Err(ApiError::conflict(def.group, def.resource, name))
    }

    /// Delete, optionally only at `expected_rev`. Returns the deleted object.
    pub async fn delete(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        expected_rev: Option<i64>,
    ) -> Result<Stored, ApiError> {
        let key = self.key(def, ns, name);
        loop {
            let cur = self
                .get(def, ns, name)
                .await?
                .ok_or_else(|| ApiError::not_found(def.group, def.resource, name))?;
            if let Some(r) = expected_rev
                && r != cur.rev
            {
                return Err(ApiError::conflict_msg(
                    def.group,
                    def.resource,
                    name,
                    &format!(
                        "the ResourceVersion in the precondition ({r}) does not match the ResourceVersion in record ({}). The object might have been modified",
                        cur.rev
                    ),
                ));
            }
            let txn = Txn::new()
                .when(vec![Compare::mod_revision(
                    key.as_bytes(),
                    CompareOp::Equal,
                    cur.rev,
                )])
                .and_then(vec![TxnOp::delete(key.as_bytes(), None)]);
            let mut c = self.etcd.clone();
            let resp = c.txn(txn).await.map_err(etcd_err)?;
            if resp.succeeded() {
                self.wrote(def);
                return Ok(cur);
            }
        }
    }

    /// Raw put of a value (bootstrap): only when absent.
    pub async fn create_if_absent(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        obj: &Value,
    ) -> Result<bool, ApiError> {
        match self.create(def, ns, name, obj).await {
            Ok(_) => Ok(true),
            Err(e) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Set `metadata.resourceVersion` (a string, as the API serves it).
pub(crate) fn set_rv(obj: &mut Value, rev: i64) {
    if let Some(m) = obj.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.insert("resourceVersion".into(), Value::String(rev.to_string()));
    }
}

fn decode_continue(tok: &str, prefix: &str) -> Result<(i64, String), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(tok)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tok))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(ApiError::bad_request(
            "continue key is not valid: server does not recognize this encoded version",
        ));
    }
    let rv = v["rv"].as_i64().filter(|r| *r > 0).ok_or_else(bad)?;
    let start = v["start"].as_str().ok_or_else(bad)?;
    if start.contains("..") || start.starts_with('/') {
        return Err(ApiError::bad_request(
            "continue key is not valid: path traversal not allowed",
        ));
    }
    Ok((rv, format!("{prefix}{start}")))
}
