//! Checking one etcd value: classify, decrypt, decode, verify identity.

use super::deps;
use super::keys::parse_key;
use super::{Encoding, ScanItem, Storage};

/// Decrypts values of one resource (the resource's transformers from an `EncryptionConfiguration`).
pub trait ValueTransformer: Send + Sync {
    /// Whether a provider of `storage`'s kind has a key (or KMS provider) named `key_name`.
    fn has_key(&self, storage: Storage, key_name: &str) -> bool;
    /// Decrypt `value` stored at `etcd_key` (the authenticated data), trying providers in
    /// configuration order; returns the plaintext and whether the read was stale.
    fn decrypt(&self, etcd_key: &str, value: &[u8]) -> Result<(Vec<u8>, bool), String>;
}

/// Checks values; holds the transformers when an encryption configuration was given.
pub struct Checker {
    transformer: Option<Box<dyn ValueTransformer>>,
}

impl Checker {
    /// A checker without keys: encrypted values are classified but not verified.
    pub fn without_keys() -> Self {
        Self { transformer: None }
    }

    /// A checker that decrypts with `transformer`.
    pub fn with_transformer(transformer: Box<dyn ValueTransformer>) -> Self {
        Self {
            transformer: Some(transformer),
        }
    }

    /// Whether encrypted values can be decrypted.
    pub fn has_keys(&self) -> bool {
        self.transformer.is_some()
    }

    /// Check `value` stored at `key` (under `resource_prefix`, e.g. `/registry/secrets/`). Never
    /// panics; malformed values are reported with their error.
    pub fn check(&self, resource_prefix: &str, resource: &str, key: &str, value: &[u8]) -> ScanItem {
        let (parts, key_error) = match parse_key(resource_prefix, key) {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        };
        let (namespace, name) = parts
            .map(|p| (p.namespace, p.name))
            .unwrap_or_else(|| (None, key.rsplit('/').next().unwrap_or_default().to_string()));
        let mut item = ScanItem {
            key: key.to_string(),
            resource: resource.to_string(),
            namespace,
            name,
            storage: Storage::Unknown,
            encoding: None,
            key_name: None,
            verified: None,
            error: None,
            stale: false,
            finding: false,
        };
        let (storage, key_name) = deps::classify(value);
        item.storage = storage;
        item.key_name = key_name;

        let plaintext: std::borrow::Cow<'_, [u8]> = match storage {
            Storage::Unknown => {
                item.verified = Some(false);
                item.finding = true;
                item.error = Some(match deps::decode(value) {
                    Err(e) => e,
                    Ok(_) => "not a value the apiserver writes".into(),
                });
                return item;
            }
            Storage::Identity => value.into(),
            _ => {
                let Some(t) = &self.transformer else {
                    item.error = Some("no encryption configuration given (--encryption-config)".into());
                    return item;
                };
                let key_name = item.key_name.clone().unwrap_or_default();
                if !t.has_key(storage, &key_name) {
                    let what = if matches!(storage, Storage::Kms | Storage::Kmsv2) {
                        "KMS provider"
                    } else {
                        "key"
                    };
                    item.error = Some(format!(
                        "no {storage} {what} named {key_name:?} for {resource} in the encryption configuration"
                    ));
                    // The apiserver could not read this value either.
                    item.finding = true;
                    return item;
                }
                match t.decrypt(key, value) {
                    Ok((plain, stale)) => {
                        item.stale = stale;
                        plain.into()
                    }
                    Err(e) if matches!(storage, Storage::Kms | Storage::Kmsv2) && deps::needs_kms_plugin(&e) => {
                        item.error = Some(e);
                        return item;
                    }
                    Err(e) => {
                        item.verified = Some(false);
                        item.finding = true;
                        item.error = Some(format!("decryption failed: {e}"));
                        return item;
                    }
                }
            }
        };
        match deps::decode(&plaintext) {
            Ok(obj) => {
                item.encoding = Some(obj.encoding);
                if let Some(e) = key_error {
                    item.verified = Some(false);
                    item.error = Some(e);
                } else {
                    let want_ns = item.namespace.as_deref().unwrap_or("");
                    if obj.namespace != want_ns || obj.name != item.name {
                        item.verified = Some(false);
                        item.error = Some(format!(
                            "decoded object is {}/{} but the key says {}/{}",
                            display_ns(&obj.namespace),
                            obj.name,
                            display_ns(want_ns),
                            item.name
                        ));
                    } else {
                        item.verified = Some(true);
                    }
                }
            }
            Err(e) => {
                item.verified = Some(false);
                item.error = Some(if storage.is_encrypted() {
                    format!("decrypted, but the plaintext does not decode: {e}")
                } else {
                    e
                });
            }
        }
        item.finding = item.verified == Some(false);
        item
    }
}

fn display_ns(ns: &str) -> &str {
    if ns.is_empty() { "<cluster>" } else { ns }
}

/// What the check needs from a decoded object.
#[derive(Debug)]
pub(super) struct Decoded {
    pub encoding: Encoding,
    pub namespace: String,
    pub name: String,
}
