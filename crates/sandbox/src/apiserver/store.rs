//! etcd storage like apiserver's `pkg/storage/etcd3/store.go`: keys `<prefix>/<resource>/[<ns>/]<name>`,
//! values serialized with the storage media type and passed through the resource's transformer (AD = the key),
//! resourceVersion = etcd mod revision, optimistic concurrency with `OptimisticPut` (txn on mod_revision), and
//! `GuaranteedUpdate`'s short-circuit: an unchanged object read through the current write transformer is not
//! written again; a stale read is rewritten.

use std::sync::{Arc, RwLock};

use atrest_core::etcd::{Compare, CompareOp, EtcdClient, EtcdError, GetOptions, Txn, TxnOp};
use base64::Engine;
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
    pub etcd: EtcdClient,
    pub prefix: String,
    pub media: StorageMedia,
    pub transformer: RwLock<Arc<dyn ValueTransformer>>,
    /// Bumped on every write to an RBAC object through this store (invalidates the authorizer's cache).
    pub rbac_generation: std::sync::atomic::AtomicU64,
}

/// The message of the 410 for an expired continue token (apiserver `pkg/storage/errors.go`
/// `NewCompactedError` → apierrors `NewResourceExpired`).
pub(crate) const EXPIRED_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

fn etcd_err(e: EtcdError) -> ApiError {
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

    /// A linearizable read of one object.
    pub async fn get(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
    ) -> Result<Option<Stored>, ApiError> {
        self.get_with(def, ns, name, None).await
    }

    /// A linearizable read of one object that must exist (404 otherwise).
    pub async fn get_existing(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
    ) -> Result<Stored, ApiError> {
        self.get(def, ns, name)
            .await?
            .ok_or_else(|| ApiError::not_found(def.group, def.resource, name))
    }

    /// A serializable read of one object: what this etcd member has applied, without the ReadIndex round that
    /// waits for writes in flight. It plays the part of kube-apiserver's watch cache, which hands
    /// `GuaranteedUpdate` the object it holds (apiserver `pkg/storage/cacher/cacher.go` `GuaranteedUpdate`,
    /// `cachedExistingObject`): possibly behind, so only a starting point whose revision the write's txn checks.
    pub async fn get_cached(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
    ) -> Result<Option<Stored>, ApiError> {
        self.get_with(def, ns, name, Some(GetOptions::new().with_serializable()))
            .await
    }

    async fn get_with(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        opts: Option<GetOptions>,
    ) -> Result<Option<Stored>, ApiError> {
        let key = self.key(def, ns, name);
        let resp = self
            .etcd
            .get(key.as_bytes(), opts)
            .await
            .map_err(etcd_err)?;
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

    /// Every object of a resource (in one namespace, or all), read in one unpaged list.
    pub async fn list_all(
        &self,
        def: &ResourceDef,
        ns: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        Ok(self
            .list(def, ns, 0, None)
            .await?
            .items
            .into_iter()
            .map(|s| s.obj)
            .collect())
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
        let resp = match self.etcd.get(start.as_bytes(), Some(opts)).await {
            Ok(r) => r,
            Err(e) if at_rev > 0 && e.is_compacted() => {
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
            .and_then(vec![TxnOp::put(key.as_bytes(), sealed)]);
        let resp = self.etcd.txn(txn).await.map_err(etcd_err)?;
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
        update: F,
    ) -> Result<Stored, ApiError>
    where
        F: FnMut(&Stored) -> Result<Value, ApiError>,
    {
        let cur = self.get_existing(def, ns, name).await?;
        self.guaranteed_update_from(def, ns, name, cur, true, update)
            .await
    }

    /// [`guaranteed_update`](Self::guaranteed_update) starting from `cur`, an object this request already read
    /// (the handler reads it for admission; upstream's cacher passes the watch cache's copy as
    /// `cachedExistingObject`). `is_current`: `cur` came from a linearizable read; when it did not (see
    /// [`get_cached`](Self::get_cached)) and the update changes nothing, the object is read again before the
    /// write is skipped, as upstream does when `origStateIsCurrent` is false. One txn per write attempt: the txn
    /// compares the mod revision and, when another writer got there first, its else branch reads the key, so a
    /// retry needs no separate get (apiserver `pkg/storage/etcd3/store.go` `GuaranteedUpdate`:
    /// `OpTxn(...).Else(OpGet(key))`).
    pub async fn guaranteed_update_from<F>(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        mut cur: Stored,
        mut is_current: bool,
        mut update: F,
    ) -> Result<Stored, ApiError>
    where
        F: FnMut(&Stored) -> Result<Value, ApiError>,
    {
        let key = self.key(def, ns, name);
        for _ in 0..16 {
            let new = match update(&cur) {
                // A precondition (resourceVersion) failing on an object that may be behind: read it again.
                Err(e) if e.code == 409 && !is_current => {
                    cur = self.get_existing(def, ns, name).await?;
                    is_current = true;
                    continue;
                }
                r => r?,
            };
            let data = self.serialize(&new)?;
            if !cur.stale && data == cur.data {
                if is_current {
                    return Ok(cur);
                }
                cur = self.get_existing(def, ns, name).await?;
                is_current = true;
                continue;
            }
            let sealed = self.seal(def, &key, &data)?;
            let txn = Txn::new()
                .when(vec![Compare::mod_revision(
                    key.as_bytes(),
                    CompareOp::Equal,
                    cur.rev,
                )])
                .and_then(vec![TxnOp::put(key.as_bytes(), sealed)])
                .or_else(vec![TxnOp::get(key.as_bytes(), None)]);
            let resp = self.etcd.txn(txn).await.map_err(etcd_err)?;
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
            // Another writer won: continue from what the else branch read.
            let fresh = atrest_core::etcd::txn_ranges(resp).next();
            let kv = fresh.as_ref().and_then(|g| g.kvs().first());
            cur = match kv {
                Some(kv) => self.decode(def, &key, kv.value(), kv.mod_revision())?,
                None => return Err(ApiError::not_found(def.group, def.resource, name)),
            };
            is_current = true;
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
            let resp = self.etcd.txn(txn).await.map_err(etcd_err)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A real etcd (plain HTTP on free loopback ports), killed on drop; its data dir lives as long as it does.
    struct Etcd(
        std::process::Child,
        #[allow(dead_code)] tempfile::TempDir,
        String,
    );

    impl Drop for Etcd {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port()
    }

    fn etcd() -> Etcd {
        let dir = tempfile::tempdir().expect("temp dir");
        let client = format!("http://127.0.0.1:{}", free_port());
        let peer = format!("http://127.0.0.1:{}", free_port());
        let child = std::process::Command::new("etcd")
            .arg("--name=default")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=default={peer}"))
            .arg("--log-level=error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("etcd on PATH");
        Etcd(child, dir, client)
    }

    async fn store(e: &Etcd) -> Store {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let etcd = loop {
            let c = atrest_core::etcd::connect_client(
                std::slice::from_ref(&e.2),
                None,
                std::time::Duration::from_secs(2),
            )
            .await
            .map_err(|e| e.to_string());
            let err = match c {
                Ok(c) => match c.get("probe", None).await {
                    Ok(_) => break c,
                    Err(err) => err.to_string(),
                },
                Err(err) => err,
            };
            assert!(
                std::time::Instant::now() < deadline,
                "etcd at {}: {err}",
                e.2
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        Store {
            etcd,
            prefix: "/registry".into(),
            media: StorageMedia::Json,
            transformer: RwLock::new(Arc::new(Identity)),
            rbac_generation: Default::default(),
        }
    }

    fn with_data(base: &Value, v: &str) -> Value {
        let mut o = base.clone();
        o["data"] = json!({"k": v});
        o
    }

    /// GuaranteedUpdate from an object read earlier: a concurrent write makes the txn fail, the update is redone
    /// on what the txn's else branch read (the concurrent writer's object); a no-op on an object that was not
    /// read linearizably is confirmed by a fresh read; a precondition failing on such an object is re-checked.
    #[tokio::test]
    async fn guaranteed_update_from_an_earlier_read() {
        let e = etcd();
        let s = store(&e).await;
        let def = super::super::resources::lookup("", "v1", "secrets").expect("secrets");
        let obj = json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "a", "namespace": "ns"}});
        let created = s
            .create(def, "ns", "a", &with_data(&obj, "djE="))
            .await
            .expect("create");
        let early = s.get_cached(def, "ns", "a").await.unwrap().unwrap();
        assert_eq!(early.rev, created.rev);
        // A concurrent writer.
        let theirs = s
            .guaranteed_update(def, "ns", "a", |cur| Ok(with_data(&cur.obj, "dGhlaXJz")))
            .await
            .expect("concurrent write");
        assert!(theirs.rev > early.rev);

        // Our update started from the earlier read: the txn fails, the retry sees their object.
        let mut seen = Vec::new();
        let ours = s
            .guaranteed_update_from(def, "ns", "a", early.clone(), true, |cur| {
                seen.push((cur.rev, cur.obj["data"]["k"].clone()));
                let mut o = cur.obj.clone();
                o["metadata"]["labels"] = json!({"ours": "yes"});
                Ok(o)
            })
            .await
            .expect("update");
        assert_eq!(
            seen,
            vec![(early.rev, json!("djE=")), (theirs.rev, json!("dGhlaXJz"))]
        );
        assert!(ours.rev > theirs.rev);
        let now = s.get(def, "ns", "a").await.unwrap().unwrap();
        assert_eq!(now.obj["data"]["k"], "dGhlaXJz", "their data kept");
        assert_eq!(now.obj["metadata"]["labels"]["ours"], "yes");

        // A no-op on the outdated object (not known current): read again, then the update runs on the fresh one.
        let mut revs = Vec::new();
        let out = s
            .guaranteed_update_from(def, "ns", "a", early.clone(), false, |cur| {
                revs.push(cur.rev);
                Ok(cur.obj.clone())
            })
            .await
            .expect("no-op");
        assert_eq!(revs, vec![early.rev, ours.rev]);
        assert_eq!(out.rev, ours.rev, "nothing written");

        // A resourceVersion precondition failing on the outdated object is checked against a fresh read.
        let want = ours.rev;
        let out = s
            .guaranteed_update_from(def, "ns", "a", early.clone(), false, |cur| {
                if cur.rev != want {
                    return Err(ApiError::conflict(def.group, def.resource, "a"));
                }
                Ok(with_data(&cur.obj, "bWluZQ=="))
            })
            .await
            .expect("precondition holds on the fresh object");
        assert!(out.rev > want);
        // On an object read linearizably, the same failure is the answer.
        let err = s
            .guaranteed_update_from(def, "ns", "a", early, true, |cur| {
                if cur.rev != want {
                    return Err(ApiError::conflict(def.group, def.resource, "a"));
                }
                Ok(cur.obj.clone())
            })
            .await
            .expect_err("stale precondition");
        assert_eq!(err.code, 409);
    }
}
