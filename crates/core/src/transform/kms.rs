//! KMS v1 and v2 envelope transformers.
//!
//! - v1 (kubernetes/apiserver `pkg/storage/value/encrypt/envelope/envelope.go`): `uint16-BE len ‖ encDEK ‖ payload`,
//!   payload AES-GCM with the DEK (AD = etcd key), or AES-CBC for data written by ≤1.24 (read as stale).
//! - v2 (`envelope/kmsv2/envelope.go`, `kmsv2/v2/api.proto`): a protobuf `EncryptedObject`; the DEK source is
//!   either an AES-GCM key (`AES_GCM_KEY`) or an HKDF seed (`HKDF_SHA256_XNONCE_AES_GCM_SEED`).
//!
//! Unwrapping the DEK needs the KMS plugin: callers supply an [`EnvelopeService`], the plugin itself
//! ([`super::KmsPluginService`], kms v2 over its unix socket, `kubectl etcdcheck --kms`) or a stand-in
//! ([`Base64EnvelopeService`], the equivalent of upstream's `kmsv2mock.NewBase64Plugin`).

use super::ciphers::{AescbcTransformer, ExtendedNonceGcmTransformer, gcm_open, gcm_seal};
use super::{TransformError, Transformer, random_bytes};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// `EncryptedObject` of `kmsv2/v2/api.proto` (package `v2`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct EncryptedObject {
    /// AES-GCM output (nonce ‖ ct ‖ tag, or info ‖ nonce ‖ ct ‖ tag in seed mode).
    #[prost(bytes = "vec", tag = "1")]
    pub encrypted_data: Vec<u8>,
    /// The KMS key ID that wrapped the DEK source.
    #[prost(string, tag = "2")]
    pub key_id: String,
    /// The KEK-wrapped DEK or seed.
    #[prost(bytes = "vec", tag = "3")]
    pub encrypted_dek_source: Vec<u8>,
    /// Plugin annotations (keys are FQDNs).
    #[prost(btree_map = "string, bytes", tag = "4")]
    pub annotations: BTreeMap<String, Vec<u8>>,
    /// 0 = `AES_GCM_KEY`, 1 = `HKDF_SHA256_XNONCE_AES_GCM_SEED`.
    #[prost(int32, tag = "5")]
    pub encrypted_dek_source_type: i32,
}

/// `EncryptedDEKSourceType` value 0: the DEK source is the AES-GCM key.
pub const AES_GCM_KEY: i32 = 0;
/// `EncryptedDEKSourceType` value 1: the DEK source is a seed for HKDF-Expand with extended nonce.
pub const HKDF_SHA256_XNONCE_AES_GCM_SEED: i32 = 1;

impl EncryptedObject {
    /// `ValidateEncryptedObject` (`kmsv2/envelope.go`): known source type, non-empty data, DEK source and key ID
    /// of 1..=1024 bytes, annotation keys that are DNS names and a total annotation size ≤ 32 KiB.
    pub fn validate(&self) -> Result<(), String> {
        if self.encrypted_dek_source_type != AES_GCM_KEY
            && self.encrypted_dek_source_type != HKDF_SHA256_XNONCE_AES_GCM_SEED
        {
            return Err(format!(
                "unknown encryptedDEKSourceType: {}",
                self.encrypted_dek_source_type
            ));
        }
        if self.encrypted_data.is_empty() {
            return Err("encrypted data is empty".into());
        }
        if self.encrypted_dek_source.is_empty() {
            return Err("encrypted DEK source is empty".into());
        }
        if self.encrypted_dek_source.len() > 1024 {
            return Err(format!(
                "encrypted DEK source is {} bytes, which exceeds the max size of 1024",
                self.encrypted_dek_source.len()
            ));
        }
        if self.key_id.is_empty() {
            return Err("keyID is empty".into());
        }
        if self.key_id.len() > 1024 {
            return Err(format!(
                "keyID is {} bytes, which exceeds the max size of 1024",
                self.key_id.len()
            ));
        }
        let mut total = 0usize;
        for (k, v) in &self.annotations {
            if !is_dns1123_subdomain(k) {
                return Err(format!(
                    "annotation key {k:?} is not a fully qualified domain name"
                ));
            }
            total += k.len() + v.len();
        }
        if total > 32 * 1024 {
            return Err(format!(
                "annotations exceed size limit of 32768 bytes: {total} bytes"
            ));
        }
        Ok(())
    }
}

fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A request to unwrap a DEK (or seed) with the KMS plugin.
pub struct EnvelopeDecryptRequest<'a> {
    /// The wrapped DEK source.
    pub ciphertext: &'a [u8],
    /// The KMS key ID stored with the value (empty for kms v1).
    pub key_id: &'a str,
    /// The annotations stored with the value (empty for kms v1).
    pub annotations: &'a BTreeMap<String, Vec<u8>>,
}

/// The plugin's answer to wrapping a DEK source.
#[derive(Clone, Default)]
pub struct EnvelopeEncryptResponse {
    /// The wrapped DEK source.
    pub ciphertext: Vec<u8>,
    /// The KMS key ID used (required for v2).
    pub key_id: String,
    /// Annotations to store (v2).
    pub annotations: BTreeMap<String, Vec<u8>>,
}

/// The KMS plugin's Encrypt/Decrypt, as far as the transformers need it. Error strings must not contain key material.
pub trait EnvelopeService: Send + Sync {
    /// Unwraps a DEK or seed.
    fn decrypt(&self, request: &EnvelopeDecryptRequest<'_>) -> Result<Vec<u8>, String>;
    /// Wraps a DEK or seed.
    fn encrypt(&self, plaintext: &[u8]) -> Result<EnvelopeEncryptResponse, String>;
}

/// Base64 "wrapping", like upstream's test plugin `kmsv2mock.NewBase64Plugin` (not a security boundary).
/// Decrypting the upstream kms v2 test vectors works with it.
#[derive(Clone, Debug)]
pub struct Base64EnvelopeService {
    /// Key ID returned by `encrypt`.
    pub key_id: String,
}

impl EnvelopeService for Base64EnvelopeService {
    fn decrypt(&self, request: &EnvelopeDecryptRequest<'_>) -> Result<Vec<u8>, String> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(request.ciphertext)
            .map_err(|e| format!("base64 mock plugin: {e}"))
    }
    fn encrypt(&self, plaintext: &[u8]) -> Result<EnvelopeEncryptResponse, String> {
        use base64::Engine;
        Ok(EnvelopeEncryptResponse {
            ciphertext: base64::engine::general_purpose::STANDARD
                .encode(plaintext)
                .into_bytes(),
            key_id: self.key_id.clone(),
            annotations: BTreeMap::new(),
        })
    }
}

fn kms_err(version: &'static str, name: &str, reason: impl Into<String>) -> TransformError {
    TransformError::Kms {
        version,
        name: name.to_owned(),
        reason: reason.into(),
    }
}

fn no_plugin(version: &'static str, name: &str, detail: &str) -> TransformError {
    TransformError::KmsNoPlugin {
        version,
        name: name.to_owned(),
        reason: format!(
            "decrypting needs the KMS plugin{detail}, which is not called without permission (kubectl etcdcheck --kms)"
        ),
    }
}

/// Bound on cached unwrapped DEK sources (`cachesize` analogue).
const CACHE_LIMIT: usize = 1024;

struct DekCache {
    map: Mutex<HashMap<Vec<u8>, Arc<Vec<u8>>>>,
}

impl DekCache {
    fn new() -> Self {
        DekCache {
            map: Mutex::new(HashMap::new()),
        }
    }
    fn get_or_unwrap(
        &self,
        wrapped: &[u8],
        unwrap: impl FnOnce() -> Result<Vec<u8>, String>,
    ) -> Result<Arc<Vec<u8>>, String> {
        if let Some(v) = self.map.lock().map_err(|_| "cache poisoned")?.get(wrapped) {
            return Ok(v.clone());
        }
        let v = Arc::new(unwrap()?);
        let mut m = self.map.lock().map_err(|_| "cache poisoned")?;
        if m.len() >= CACHE_LIMIT {
            m.clear();
        }
        m.insert(wrapped.to_vec(), v.clone());
        Ok(v)
    }
}

/// The write state of a kms transformer: the current DEK/seed and its wrapped form.
struct WriteState {
    plaintext: Vec<u8>,
    wrapped: EnvelopeEncryptResponse,
}

impl Drop for WriteState {
    fn drop(&mut self) {
        self.plaintext.fill(0);
    }
}

/// KMS v1 envelope (`k8s:enc:kms:v1:<name>:` is added by the prefix set).
pub struct KmsV1Transformer {
    name: String,
    service: Option<Arc<dyn EnvelopeService>>,
    cache: DekCache,
}

impl KmsV1Transformer {
    /// A kms v1 transformer for provider `name`; without a service it can only report what it cannot read.
    pub fn new(name: &str, service: Option<Arc<dyn EnvelopeService>>) -> Self {
        KmsV1Transformer {
            name: name.to_owned(),
            service,
            cache: DekCache::new(),
        }
    }
}

/// Splits a kms v1 payload into (encrypted DEK, encrypted data).
pub fn split_kms_v1(data: &[u8]) -> Result<(&[u8], &[u8]), String> {
    if data.len() < 2 {
        return Err(
            "invalid data encountered by envelope transformer: failed to read uint16 key length"
                .into(),
        );
    }
    let n = usize::from(u16::from_be_bytes([data[0], data[1]]));
    if data.len() < 2 + n {
        return Err(
            "invalid data encountered by envelope transformer: failed to read encrypted DEK".into(),
        );
    }
    Ok((&data[2..2 + n], &data[2 + n..]))
}

impl Transformer for KmsV1Transformer {
    fn transform_from_storage(
        &self,
        data: &[u8],
        ad: &[u8],
    ) -> Result<(Vec<u8>, bool), TransformError> {
        let (enc_dek, payload) = split_kms_v1(data).map_err(|e| kms_err("v1", &self.name, e))?;
        let service = self
            .service
            .as_ref()
            .ok_or_else(|| no_plugin("v1", &self.name, ""))?;
        let empty = BTreeMap::new();
        let dek = self
            .cache
            .get_or_unwrap(enc_dek, || {
                service.decrypt(&EnvelopeDecryptRequest {
                    ciphertext: enc_dek,
                    key_id: "",
                    annotations: &empty,
                })
            })
            .map_err(|e| kms_err("v1", &self.name, format!("failed to decrypt DEK: {e}")))?;
        // v1.25+: AES-GCM; fall back to AES-CBC written by ≤1.24 (stale) — config.go envelopePrefixTransformer.
        match gcm_open(&dek, payload, ad) {
            Ok(p) => Ok((p, false)),
            Err(gcm_err) => {
                let cbc = AescbcTransformer::new(&dek)
                    .map_err(|e| kms_err("v1", &self.name, e.to_string()))?;
                match cbc.transform_from_storage(payload, ad) {
                    Ok((p, _)) => Ok((p, true)),
                    Err(_) => Err(kms_err("v1", &self.name, gcm_err.to_string())),
                }
            }
        }
    }

    fn transform_to_storage(&self, data: &[u8], ad: &[u8]) -> Result<Vec<u8>, TransformError> {
        let service = self
            .service
            .as_ref()
            .ok_or_else(|| no_plugin("v1", &self.name, ""))?;
        let mut dek = vec![0u8; 32];
        random_bytes(&mut dek)?;
        let wrapped = service
            .encrypt(&dek)
            .map_err(|e| kms_err("v1", &self.name, format!("failed to encrypt DEK: {e}")))?;
        let mut nonce = [0u8; 12];
        random_bytes(&mut nonce)?;
        let sealed = gcm_seal(&dek, &nonce, data, ad);
        dek.fill(0);
        let sealed = sealed?;
        let n = u16::try_from(wrapped.ciphertext.len())
            .map_err(|_| kms_err("v1", &self.name, "encrypted DEK longer than 65535 bytes"))?;
        let mut out = Vec::with_capacity(2 + wrapped.ciphertext.len() + sealed.len());
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&wrapped.ciphertext);
        out.extend_from_slice(&sealed);
        Ok(out)
    }
}

/// KMS v2 envelope (`k8s:enc:kms:v2:<name>:` is added by the prefix set). Writes use seed mode
/// (`HKDF_SHA256_XNONCE_AES_GCM_SEED`, the only mode since Kubernetes 1.32) with one seed per transformer.
pub struct KmsV2Transformer {
    name: String,
    service: Option<Arc<dyn EnvelopeService>>,
    cache: DekCache,
    write: Mutex<Option<Arc<WriteState>>>,
}

impl KmsV2Transformer {
    /// A kms v2 transformer for provider `name`; without a service it can only report what it cannot read.
    pub fn new(name: &str, service: Option<Arc<dyn EnvelopeService>>) -> Self {
        KmsV2Transformer {
            name: name.to_owned(),
            service,
            cache: DekCache::new(),
            write: Mutex::new(None),
        }
    }

    /// Decodes and validates the `EncryptedObject` of a kms v2 value (after the prefix).
    pub fn parse(data: &[u8]) -> Result<EncryptedObject, String> {
        use prost::Message;
        let obj = EncryptedObject::decode(data)
            .map_err(|e| format!("failed to unmarshal encrypted object: {e}"))?;
        obj.validate()?;
        Ok(obj)
    }

    fn write_state(
        &self,
        service: &Arc<dyn EnvelopeService>,
    ) -> Result<Arc<WriteState>, TransformError> {
        let mut guard = self
            .write
            .lock()
            .map_err(|_| kms_err("v2", &self.name, "state lock poisoned"))?;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let mut seed = vec![0u8; 32];
        random_bytes(&mut seed)?;
        let wrapped = service
            .encrypt(&seed)
            .map_err(|e| kms_err("v2", &self.name, format!("failed to encrypt DEK seed: {e}")))?;
        if wrapped.key_id.is_empty() {
            return Err(kms_err(
                "v2",
                &self.name,
                "KMS plugin returned an empty key ID",
            ));
        }
        let state = Arc::new(WriteState {
            plaintext: seed,
            wrapped,
        });
        *guard = Some(state.clone());
        Ok(state)
    }
}

impl Transformer for KmsV2Transformer {
    fn transform_from_storage(
        &self,
        data: &[u8],
        ad: &[u8],
    ) -> Result<(Vec<u8>, bool), TransformError> {
        let obj = Self::parse(data).map_err(|e| kms_err("v2", &self.name, e))?;
        let service = self
            .service
            .as_ref()
            .ok_or_else(|| no_plugin("v2", &self.name, &format!(" (key ID {:?})", obj.key_id)))?;
        // Cache by wrapped source + key ID (+ annotations), like upstream `generateCacheKey`.
        let mut cache_key = obj.encrypted_dek_source.clone();
        cache_key.extend_from_slice(&(obj.key_id.len() as u32).to_be_bytes());
        cache_key.extend_from_slice(obj.key_id.as_bytes());
        for (k, v) in &obj.annotations {
            cache_key.extend_from_slice(&(k.len() as u32).to_be_bytes());
            cache_key.extend_from_slice(k.as_bytes());
            cache_key.extend_from_slice(&(v.len() as u32).to_be_bytes());
            cache_key.extend_from_slice(v);
        }
        let source = self
            .cache
            .get_or_unwrap(&cache_key, || {
                service.decrypt(&EnvelopeDecryptRequest {
                    ciphertext: &obj.encrypted_dek_source,
                    key_id: &obj.key_id,
                    annotations: &obj.annotations,
                })
            })
            .map_err(|e| {
                kms_err(
                    "v2",
                    &self.name,
                    format!("failed to decrypt DEK source: {e}"),
                )
            })?;
        // Staleness as upstream `kmsv2/envelope.go` TransformFromStorage: stale when the key ID or the DEK source
        // type differs from the current write state; the write state always uses the seed type (KDF on since 1.29,
        // gate removed in 1.32), so AES_GCM_KEY data is always stale.
        let result = if obj.encrypted_dek_source_type == HKDF_SHA256_XNONCE_AES_GCM_SEED {
            ExtendedNonceGcmTransformer::new(&source)
                .and_then(|t| t.transform_from_storage(&obj.encrypted_data, ad))
                .map(|(p, _)| (p, false))
        } else {
            // AES_GCM_KEY data is stale once the KDF mode is on (always, since 1.32).
            gcm_open(&source, &obj.encrypted_data, ad).map(|p| (p, true))
        };
        let (plaintext, mut stale) =
            result.map_err(|e| kms_err("v2", &self.name, e.to_string()))?;
        if let Ok(guard) = self.write.lock()
            && let Some(state) = guard.as_ref()
            && state.wrapped.key_id != obj.key_id
        {
            stale = true;
        }
        Ok((plaintext, stale))
    }

    fn transform_to_storage(&self, data: &[u8], ad: &[u8]) -> Result<Vec<u8>, TransformError> {
        use prost::Message;
        let service = self
            .service
            .as_ref()
            .ok_or_else(|| no_plugin("v2", &self.name, ""))?;
        let state = self.write_state(service)?;
        let t = ExtendedNonceGcmTransformer::new(&state.plaintext)?;
        let encrypted_data = t.transform_to_storage(data, ad)?;
        let obj = EncryptedObject {
            encrypted_data,
            key_id: state.wrapped.key_id.clone(),
            encrypted_dek_source: state.wrapped.ciphertext.clone(),
            annotations: state.wrapped.annotations.clone(),
            encrypted_dek_source_type: HKDF_SHA256_XNONCE_AES_GCM_SEED,
        };
        obj.validate().map_err(|e| kms_err("v2", &self.name, e))?;
        Ok(obj.encode_to_vec())
    }
}
