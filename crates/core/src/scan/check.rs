//! Checking one etcd value: classify, decrypt, decode, verify identity.

use crate::config::{EncryptionConfiguration, GroupResource};
use crate::transform::{
    Encoding, EncryptionTransformers, PrefixTransformers, StorageKind, TransformError, classify,
};

use super::keys::parse_key;
use super::{ScanItem, is_encrypted};
use crate::storage::{MediaType, ObjectSummary};

/// Checks the values of one resource; holds that resource's transformers when an
/// `EncryptionConfiguration` was given.
#[derive(Clone)]
pub struct Checker {
    transformers: Option<PrefixTransformers>,
}

/// The group/resource of an etcd path segment: `secrets` → core `secrets`;
/// `apiregistration.k8s.io/apiservices` → group `apiregistration.k8s.io`.
pub fn group_resource(resource: &str) -> GroupResource {
    match resource.split_once('/') {
        Some((group, res)) => GroupResource::new(group, res),
        None => GroupResource::core(resource),
    }
}

impl Checker {
    /// A checker without keys: encrypted values are classified but not verified.
    pub fn without_keys() -> Self {
        Self { transformers: None }
    }

    /// A checker that reads `resource` with `config`'s transformers, exactly as the apiserver would
    /// (providers in order; a resource the configuration does not cover reads with identity).
    pub fn with_config(
        config: &EncryptionConfiguration,
        resource: &str,
    ) -> Result<Self, TransformError> {
        Self::with_config_and_kms(config, resource, |_| None)
    }

    /// As [`with_config`](Self::with_config), with `kms` giving the plugin of each KMS provider (e.g. a
    /// [`crate::transform::KmsPluginService`]), so that kms values are decrypted and verified too.
    pub fn with_config_and_kms(
        config: &EncryptionConfiguration,
        resource: &str,
        kms: impl Fn(
            &crate::config::KmsConfiguration,
        ) -> Option<std::sync::Arc<dyn crate::transform::EnvelopeService>>,
    ) -> Result<Self, TransformError> {
        let all = EncryptionTransformers::from_config_with_kms(config, kms)?;
        Ok(Self {
            transformers: Some(all.for_resource(&group_resource(resource)).clone()),
        })
    }

    /// Whether values are read through an encryption configuration.
    pub fn has_keys(&self) -> bool {
        self.transformers.is_some()
    }

    /// Check `value` stored at `key` (under `resource_prefix`, e.g. `/registry/secrets/`). Never
    /// panics; malformed values are reported with their error.
    pub fn check(
        &self,
        resource_prefix: &str,
        resource: &str,
        key: &str,
        value: &[u8],
    ) -> ScanItem {
        let (parts, key_error) = match parse_key(resource_prefix, key) {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        };
        let (namespace, name) = parts
            .map(|p| (p.namespace, p.name))
            .unwrap_or_else(|| (None, key.rsplit('/').next().unwrap_or_default().to_string()));
        let class = classify(value);
        let mut item = ScanItem {
            key: key.to_string(),
            resource: resource.to_string(),
            namespace,
            name,
            storage: class.storage,
            encoding: None,
            key_name: class.key_name,
            verified: None,
            error: None,
            stale: false,
            finding: false,
        };
        if class.storage == StorageKind::Unknown {
            item.verified = Some(false);
            item.finding = true;
            item.error = Some(
                class
                    .problem
                    .unwrap_or_else(|| "not a value the apiserver writes".into()),
            );
            return item;
        }
        let plaintext: std::borrow::Cow<'_, [u8]> = match &self.transformers {
            None if is_encrypted(class.storage) => {
                item.error = Some("no encryption configuration given (--encryption-config)".into());
                return item;
            }
            None => value.into(),
            // Read exactly as the apiserver: AD = the full etcd key.
            Some(t) => match t.read(value, key.as_bytes()) {
                Ok(outcome) => {
                    item.stale = outcome.stale;
                    outcome.plaintext.into()
                }
                Err(e) => {
                    match &e {
                        // The configured keys do not include this value's key, or no configured
                        // provider reads this kind of value: nothing to verify with, but the
                        // apiserver could not read it either.
                        TransformError::NoMatchingKey { .. }
                        | TransformError::NoMatchingPrefix { .. }
                        | TransformError::IdentityReadEncrypted { .. } => item.finding = true,
                        // KMS needs its plugin, which was not given (`--kms` not asked for).
                        TransformError::KmsNoPlugin { .. } => {}
                        // A key was there and failed: tampering, corruption or a wrong key.
                        _ => {
                            item.verified = Some(false);
                            item.finding = true;
                        }
                    }
                    item.error = Some(e.to_string());
                    return item;
                }
            },
        };
        match ObjectSummary::from_stored(&plaintext) {
            Ok(obj) => {
                item.encoding = match obj.encoding {
                    MediaType::Protobuf => Some(Encoding::Protobuf),
                    MediaType::Json => Some(Encoding::Json),
                    MediaType::Yaml => None,
                };
                let want_ns = item.namespace.as_deref().unwrap_or("");
                let want_kind = expected_kind(resource);
                item.verified = Some(false);
                if let Some(e) = key_error {
                    item.error = Some(e);
                } else if want_kind.is_some_and(|k| k != obj.kind) {
                    item.error = Some(format!(
                        "decoded object is a {} {}, not a {}",
                        obj.api_version,
                        obj.kind,
                        want_kind.unwrap_or_default()
                    ));
                } else if obj.namespace != want_ns || obj.name != item.name {
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
            Err(e) => {
                item.encoding = crate::transform::plaintext_encoding(&plaintext);
                item.verified = Some(false);
                item.error = Some(if is_encrypted(class.storage) {
                    format!("decrypted, but the plaintext does not decode: {e}")
                } else {
                    format!("does not decode: {e}")
                });
            }
        }
        item.finding = item.verified == Some(false);
        item
    }
}

/// The kind stored under a core resource, where a mismatch is certain to be wrong.
fn expected_kind(resource: &str) -> Option<&'static str> {
    match resource {
        "secrets" => Some("Secret"),
        "configmaps" => Some("ConfigMap"),
        "namespaces" => Some("Namespace"),
        "serviceaccounts" => Some("ServiceAccount"),
        _ => None,
    }
}

fn display_ns(ns: &str) -> &str {
    if ns.is_empty() { "<cluster>" } else { ns }
}
