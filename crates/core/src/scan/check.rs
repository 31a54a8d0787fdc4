//! Checking one etcd value: classify, decrypt, decode, verify identity.

use crate::config::{EncryptionConfiguration, GroupResource};
use crate::transform::{
    Encoding, EncryptionTransformers, PrefixTransformers, StorageKind, TransformError, classify,
};

use super::keys::{StoredResource, parse_key};
use super::{ScanItem, is_encrypted};
use crate::storage::{MediaType, ObjectSummary, StorageError};

/// Checks the values of one resource; holds that resource's transformers when an
/// `EncryptionConfiguration` was given.
#[derive(Clone)]
pub struct Checker {
    transformers: Option<PrefixTransformers>,
}

/// The group/resource stored under an etcd path segment ([`StoredResource::from_etcd_segment`]): `secrets` → core
/// `secrets`; `services/specs` → core `services`; `deployments` → `deployments.apps`;
/// `apiregistration.k8s.io/apiservices` → group `apiregistration.k8s.io`.
pub fn group_resource(segment: &str) -> GroupResource {
    StoredResource::from_etcd_segment(segment).group_resource()
}

impl Checker {
    /// A checker without keys: encrypted values are classified but not verified.
    pub fn without_keys() -> Self {
        Self { transformers: None }
    }

    /// A checker that reads the values under the etcd segment `resource` with `config`'s transformers, exactly as
    /// the apiserver would (providers in order; a resource the configuration does not cover reads with identity).
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
        let decoded = match ObjectSummary::from_stored(&plaintext) {
            Ok(obj) => Ok(obj),
            // A kind the codecs do not know: JSON (custom resources) still says its type and identity; protobuf
            // only its type, so the value is reported as read but not decoded, which is not a failure.
            Err(StorageError::UnknownKind {
                api_version, kind, ..
            }) => match json_identity(&plaintext) {
                Some(obj) => Ok(obj),
                None => Err(Undecoded::Kind(api_version, kind)),
            },
            Err(e) => Err(Undecoded::Error(e.to_string())),
        };
        match decoded {
            Ok(obj) => {
                item.encoding = match obj.encoding {
                    MediaType::Protobuf => Some(Encoding::Protobuf),
                    MediaType::Json => Some(Encoding::Json),
                    MediaType::Yaml => None,
                };
                let want_ns = item.namespace.as_deref().unwrap_or("");
                let want_kind = StoredResource::from_etcd_segment(resource).kind();
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
            Err(Undecoded::Kind(api_version, kind)) => {
                item.encoding = crate::transform::plaintext_encoding(&plaintext);
                item.verified = None;
                item.error = Some(format!(
                    "{}, kind not decoded ({api_version} {kind} is not known to atrest's codecs)",
                    if is_encrypted(class.storage) {
                        "decrypted"
                    } else {
                        "read"
                    }
                ));
                return item;
            }
            Err(Undecoded::Error(e)) => {
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

/// Why a plaintext was not decoded.
enum Undecoded {
    /// A kind the codecs do not know (apiVersion, kind).
    Kind(String, String),
    /// A value that does not decode.
    Error(String),
}

/// Type and identity of a JSON object of any kind (custom resources are stored as JSON): `None` if it is not a
/// JSON object with apiVersion, kind and metadata.name.
fn json_identity(plaintext: &[u8]) -> Option<ObjectSummary> {
    let v: serde_json::Value = serde_json::from_slice(plaintext).ok()?;
    let text = |p: &str| v.pointer(p).and_then(|x| x.as_str()).map(str::to_string);
    Some(ObjectSummary {
        encoding: MediaType::Json,
        api_version: text("/apiVersion")?,
        kind: text("/kind")?,
        name: text("/metadata/name")?,
        namespace: text("/metadata/namespace").unwrap_or_default(),
        uid: text("/metadata/uid").unwrap_or_default(),
        labels: Default::default(),
        creation_timestamp: text("/metadata/creationTimestamp"),
        secret_type: None,
        data_keys: Vec::new(),
    })
}

fn display_ns(ns: &str) -> &str {
    if ns.is_empty() { "<cluster>" } else { ns }
}
