//! Value transformers: identity, aescbc, aesgcm, secretbox, kms v1/v2 envelopes, and the provider-ordered prefix set.
//!
//! Entry points:
//! - [`EncryptionTransformers::from_config`]: every resource's [`PrefixTransformers`] from an
//!   [`EncryptionConfiguration`]; [`EncryptionTransformers::for_resource`] looks one up like the apiserver's
//!   `transformerFromOverrides` (exact, `<group>/*`, `*/*`, else identity).
//! - [`PrefixTransformers::read`]: decrypt a stored value, reporting provider, key name and staleness;
//!   [`PrefixTransformers::write`]: encrypt with the first provider and its first key.
//! - [`classify`]: without keys, what a raw etcd value is (identity/protobuf, aesgcm key "k1", kmsv2 ...).
//! - [`Transformer`]: the per-provider read/write trait (upstream `value.Transformer`).
//!
//! The authenticated data (AD) is the full etcd key, e.g. `/registry/secrets/default/foo`
//! (kubernetes/apiserver `pkg/storage/etcd3/store.go`, `authenticatedDataString`).

mod ciphers;
mod classify;
mod kms;
mod kms_plugin;

pub use ciphers::{
    AescbcTransformer, AesgcmTransformer, ENCRYPTED_PREFIX, EXTENDED_NONCE_INFO_SIZE,
    ExtendedNonceGcmTransformer, IdentityTransformer, SecretboxTransformer, hkdf_sha256_expand,
};
pub use classify::{Classification, Encoding, StorageKind, classify, plaintext_encoding};
pub use kms::{
    AES_GCM_KEY, Base64EnvelopeService, EncryptedObject, EnvelopeDecryptRequest,
    EnvelopeEncryptResponse, EnvelopeService, HKDF_SHA256_XNONCE_AES_GCM_SEED, KmsV1Transformer,
    KmsV2Transformer, split_kms_v1,
};
pub use kms_plugin::{KmsPluginService, KmsPluginStatus, kms_socket_path};

use crate::config::{
    EncryptionConfiguration, GroupResource, KmsConfiguration, ProviderConfiguration, ProviderKind,
};
use std::collections::HashMap;
use std::sync::Arc;

/// `k8s:enc:aescbc:v1:` (kubernetes/apiserver `pkg/server/options/encryptionconfig/config.go`).
pub const AESCBC_PREFIX: &str = "k8s:enc:aescbc:v1:";
/// `k8s:enc:aesgcm:v1:`.
pub const AESGCM_PREFIX: &str = "k8s:enc:aesgcm:v1:";
/// `k8s:enc:secretbox:v1:`.
pub const SECRETBOX_PREFIX: &str = "k8s:enc:secretbox:v1:";
/// `k8s:enc:kms:v1:`.
pub const KMS_V1_PREFIX: &str = "k8s:enc:kms:v1:";
/// `k8s:enc:kms:v2:`.
pub const KMS_V2_PREFIX: &str = "k8s:enc:kms:v2:";

/// Reads and writes values at rest (upstream `value.Transformer`). `authenticated_data` is the etcd key.
pub trait Transformer: Send + Sync {
    /// Decrypts/decodes a stored value. Returns the plaintext and whether the value should be rewritten (stale).
    fn transform_from_storage(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<(Vec<u8>, bool), TransformError>;
    /// Encrypts a plaintext for storage.
    fn transform_to_storage(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError>;
}

/// Transformer errors. They name provider and key, never key material.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// Identity was asked to read `k8s:enc:` data (and no other provider matched).
    #[error(
        "identity transformer tried to read encrypted data: the value is {found}, which no configured provider for this resource can read"
    )]
    IdentityReadEncrypted {
        /// What the value is, from [`classify`].
        found: String,
    },
    /// No provider's prefix matched.
    #[error(
        "no matching prefix found: the value is {found}, which no configured provider for this resource can read"
    )]
    NoMatchingPrefix {
        /// What the value is, from [`classify`].
        found: String,
    },
    /// The provider prefix matched but none of its keys did.
    #[error(
        "no matching key was found for the provided {provider} transformer: the value names key {key_name:?}, configured keys are {configured:?}"
    )]
    NoMatchingKey {
        /// Provider type.
        provider: ProviderKind,
        /// Key name in the value's prefix (up to the next `:`).
        key_name: String,
        /// Configured key names.
        configured: Vec<String>,
    },
    /// A key matched by name but could not decrypt or encrypt.
    #[error("{provider} key {key_name:?}: {reason}")]
    Key {
        /// Provider type.
        provider: ProviderKind,
        /// Key name.
        key_name: String,
        /// What failed.
        reason: String,
    },
    /// A kms provider has no plugin to unwrap the data key with (none was given).
    #[error("kms {version} provider {name:?}: {reason}")]
    KmsNoPlugin {
        /// `v1` or `v2`.
        version: &'static str,
        /// Provider name.
        name: String,
        /// What would be needed.
        reason: String,
    },
    /// A kms provider failed: a malformed value, or the plugin refused or failed to unwrap the data key.
    #[error("kms {version} provider {name:?}: {reason}")]
    Kms {
        /// `v1` or `v2`.
        version: &'static str,
        /// Provider name.
        name: String,
        /// What failed.
        reason: String,
    },
    /// A cipher-level failure without provider context (from a bare [`Transformer`]).
    #[error("{0}")]
    Cipher(String),
    /// A configured key could not be used (bad base64 or size; run validation first).
    #[error("{provider} key {key_name:?} is unusable: {reason}")]
    BadKey {
        /// Provider type.
        provider: ProviderKind,
        /// Key name.
        key_name: String,
        /// Why.
        reason: String,
    },
    /// The OS random number generator failed ([`ConfigError::Random`](crate::config::ConfigError::Random)).
    #[error(transparent)]
    Random(crate::config::ConfigError),
}

/// Fills `buf` from the OS CSPRNG.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<(), TransformError> {
    crate::config::fill_os_random(buf).map_err(TransformError::Random)
}

/// What a successful read found.
#[derive(Clone, PartialEq, Eq)]
pub struct ReadOutcome {
    /// The plaintext (protobuf `k8s\0...` or JSON).
    pub plaintext: Vec<u8>,
    /// The provider that read it.
    pub provider: ProviderKind,
    /// Its index in the resource's provider list.
    pub provider_index: usize,
    /// The key name (aes*/secretbox) or the kms provider name; `None` for identity.
    pub key_name: Option<String>,
    /// Index of the key within the provider (aes*/secretbox).
    pub key_index: Option<usize>,
    /// For kms: `v1` or `v2`.
    pub kms_version: Option<&'static str>,
    /// True when a rewrite would store it differently: not the first provider/key, or an older inner format.
    pub stale: bool,
}

impl std::fmt::Debug for ReadOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOutcome")
            .field(
                "plaintext",
                &format_args!("<{} bytes>", self.plaintext.len()),
            )
            .field("provider", &self.provider)
            .field("provider_index", &self.provider_index)
            .field("key_name", &self.key_name)
            .field("key_index", &self.key_index)
            .field("kms_version", &self.kms_version)
            .field("stale", &self.stale)
            .finish()
    }
}

struct KeyEntry {
    name: String,
    prefix: Vec<u8>,
    transformer: Box<dyn Transformer>,
}

enum Body {
    Identity,
    Keys(Vec<KeyEntry>),
    Kms {
        name: String,
        version: &'static str,
        transformer: Box<dyn Transformer>,
    },
}

/// One configured provider with its storage prefix.
pub struct ProviderTransformer {
    kind: ProviderKind,
    prefix: Vec<u8>,
    body: Body,
}

impl ProviderTransformer {
    /// Builds the transformer of one provider. `kms` supplies the plugin for a kms provider (`None` = no plugin:
    /// reads and writes of kms data fail with a clear error).
    pub fn new(
        provider: &ProviderConfiguration,
        kms: Option<Arc<dyn EnvelopeService>>,
    ) -> Result<Self, TransformError> {
        let kind = provider.kind();
        let (prefix, body) = match provider {
            ProviderConfiguration::Identity => (Vec::new(), Body::Identity),
            ProviderConfiguration::Kms(k) => {
                let (version, pfx, t): (&'static str, &str, Box<dyn Transformer>) = if k.is_v2() {
                    (
                        "v2",
                        KMS_V2_PREFIX,
                        Box::new(KmsV2Transformer::new(&k.name, kms)),
                    )
                } else {
                    (
                        "v1",
                        KMS_V1_PREFIX,
                        Box::new(KmsV1Transformer::new(&k.name, kms)),
                    )
                };
                (
                    format!("{pfx}{}:", k.name).into_bytes(),
                    Body::Kms {
                        name: k.name.clone(),
                        version,
                        transformer: t,
                    },
                )
            }
            ProviderConfiguration::Aesgcm(c)
            | ProviderConfiguration::Aescbc(c)
            | ProviderConfiguration::Secretbox(c) => {
                let mut keys = Vec::with_capacity(c.keys.len());
                for key in &c.keys {
                    let bad = |reason: String| TransformError::BadKey {
                        provider: kind,
                        key_name: key.name.clone(),
                        reason,
                    };
                    let mut bytes = key
                        .secret
                        .decode()
                        .map_err(|_| bad("secrets must be base64 encoded".into()))?;
                    let t: Result<Box<dyn Transformer>, TransformError> = match kind {
                        ProviderKind::Aesgcm => AesgcmTransformer::new(&bytes)
                            .map(|t| Box::new(t) as Box<dyn Transformer>),
                        ProviderKind::Aescbc => AescbcTransformer::new(&bytes)
                            .map(|t| Box::new(t) as Box<dyn Transformer>),
                        _ => SecretboxTransformer::new(&bytes)
                            .map(|t| Box::new(t) as Box<dyn Transformer>),
                    };
                    bytes.fill(0);
                    let t = t.map_err(|e| bad(e.to_string()))?;
                    keys.push(KeyEntry {
                        name: key.name.clone(),
                        prefix: format!("{}:", key.name).into_bytes(),
                        transformer: t,
                    });
                }
                let pfx = match kind {
                    ProviderKind::Aesgcm => AESGCM_PREFIX,
                    ProviderKind::Aescbc => AESCBC_PREFIX,
                    _ => SECRETBOX_PREFIX,
                };
                (pfx.as_bytes().to_vec(), Body::Keys(keys))
            }
        };
        Ok(ProviderTransformer { kind, prefix, body })
    }

    /// The provider type.
    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// The name written by this provider: first key name, or kms provider name; `None` for identity.
    pub fn write_key_name(&self) -> Option<&str> {
        match &self.body {
            Body::Identity => None,
            Body::Keys(keys) => keys.first().map(|k| k.name.as_str()),
            Body::Kms { name, .. } => Some(name),
        }
    }
}

fn wrap_key_err(e: TransformError, provider: ProviderKind, key_name: &str) -> TransformError {
    match e {
        TransformError::Cipher(reason) => TransformError::Key {
            provider,
            key_name: key_name.to_owned(),
            reason,
        },
        other => other,
    }
}

/// The providers of one resource in configuration order (upstream `NewPrefixTransformers`): reads try each
/// provider whose prefix matches, in order; writes use the first provider (and its first key).
#[derive(Clone)]
pub struct PrefixTransformers {
    providers: Vec<Arc<ProviderTransformer>>,
}

impl PrefixTransformers {
    /// Identity only: what the apiserver uses for resources the configuration does not cover.
    pub fn identity() -> Self {
        PrefixTransformers {
            providers: vec![Arc::new(ProviderTransformer {
                kind: ProviderKind::Identity,
                prefix: Vec::new(),
                body: Body::Identity,
            })],
        }
    }

    /// From already built providers, in read order.
    pub fn new(providers: Vec<Arc<ProviderTransformer>>) -> Self {
        PrefixTransformers { providers }
    }

    /// From a provider list without KMS plugins.
    pub fn from_providers(providers: &[ProviderConfiguration]) -> Result<Self, TransformError> {
        Ok(PrefixTransformers {
            providers: providers
                .iter()
                .map(|p| ProviderTransformer::new(p, None).map(Arc::new))
                .collect::<Result<_, _>>()?,
        })
    }

    /// The provider that writes (first in the list).
    pub fn write_provider(&self) -> Option<&ProviderTransformer> {
        self.providers.first().map(|p| p.as_ref())
    }

    /// Reads a stored value like `prefixTransformers.TransformFromStorage`: the first provider whose prefix matches
    /// decides (identity matches everything but steps aside on `k8s:enc:` data). `stale` is true when the
    /// provider is not the first, the key is not the provider's first, or the inner format is an older one.
    pub fn read(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<ReadOutcome, TransformError> {
        let mut identity_refused = false;
        for (i, p) in self.providers.iter().enumerate() {
            if !data.starts_with(&p.prefix) {
                continue;
            }
            let rest = &data[p.prefix.len()..];
            match &p.body {
                Body::Identity => {
                    match IdentityTransformer.transform_from_storage(rest, authenticated_data) {
                        Ok((plaintext, _)) => {
                            return Ok(ReadOutcome {
                                plaintext,
                                provider: p.kind,
                                provider_index: i,
                                key_name: None,
                                key_index: None,
                                kms_version: None,
                                stale: i != 0,
                            });
                        }
                        Err(_) => {
                            identity_refused = true;
                            continue;
                        }
                    }
                }
                Body::Keys(keys) => {
                    for (k, key) in keys.iter().enumerate() {
                        if !rest.starts_with(&key.prefix) {
                            continue;
                        }
                        let (plaintext, stale) = key
                            .transformer
                            .transform_from_storage(&rest[key.prefix.len()..], authenticated_data)
                            .map_err(|e| wrap_key_err(e, p.kind, &key.name))?;
                        return Ok(ReadOutcome {
                            plaintext,
                            provider: p.kind,
                            provider_index: i,
                            key_name: Some(key.name.clone()),
                            key_index: Some(k),
                            kms_version: None,
                            stale: stale || k != 0 || i != 0,
                        });
                    }
                    let key_name =
                        String::from_utf8_lossy(rest.split(|&b| b == b':').next().unwrap_or(b""))
                            .chars()
                            .take(64)
                            .collect();
                    return Err(TransformError::NoMatchingKey {
                        provider: p.kind,
                        key_name,
                        configured: keys.iter().map(|k| k.name.clone()).collect(),
                    });
                }
                Body::Kms {
                    name,
                    version,
                    transformer,
                } => {
                    let (plaintext, stale) =
                        transformer.transform_from_storage(rest, authenticated_data)?;
                    return Ok(ReadOutcome {
                        plaintext,
                        provider: p.kind,
                        provider_index: i,
                        key_name: Some(name.clone()),
                        key_index: None,
                        kms_version: Some(version),
                        stale: stale || i != 0,
                    });
                }
            }
        }
        let found = classify(data).describe();
        if identity_refused {
            Err(TransformError::IdentityReadEncrypted { found })
        } else {
            Err(TransformError::NoMatchingPrefix { found })
        }
    }

    /// Encrypts `plaintext` with the first provider and its first key, adding the storage prefix.
    pub fn write(
        &self,
        plaintext: &[u8],
        authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        let Some(p) = self.providers.first() else {
            return Ok(plaintext.to_vec());
        };
        let mut out = p.prefix.clone();
        match &p.body {
            Body::Identity => out.extend_from_slice(plaintext),
            Body::Keys(keys) => {
                let key = keys.first().ok_or_else(|| TransformError::BadKey {
                    provider: p.kind,
                    key_name: String::new(),
                    reason: "the provider has no keys".into(),
                })?;
                out.extend_from_slice(&key.prefix);
                let body = key
                    .transformer
                    .transform_to_storage(plaintext, authenticated_data)
                    .map_err(|e| wrap_key_err(e, p.kind, &key.name))?;
                out.extend_from_slice(&body);
            }
            Body::Kms { transformer, .. } => {
                out.extend_from_slice(
                    &transformer.transform_to_storage(plaintext, authenticated_data)?,
                );
            }
        }
        Ok(out)
    }
}

impl Transformer for PrefixTransformers {
    fn transform_from_storage(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<(Vec<u8>, bool), TransformError> {
        self.read(data, authenticated_data)
            .map(|o| (o.plaintext, o.stale))
    }

    fn transform_to_storage(
        &self,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<Vec<u8>, TransformError> {
        self.write(data, authenticated_data)
    }
}

/// Every resource's transformers from one configuration (upstream `getTransformerOverridesAndKMSPluginProbes`).
#[derive(Clone)]
pub struct EncryptionTransformers {
    overrides: HashMap<GroupResource, PrefixTransformers>,
    identity: PrefixTransformers,
}

impl EncryptionTransformers {
    /// Builds transformers without KMS plugins (kms values are recognised but cannot be read or written).
    /// The configuration should have passed [`EncryptionConfiguration::validate`].
    pub fn from_config(config: &EncryptionConfiguration) -> Result<Self, TransformError> {
        Self::from_config_with_kms(config, |_| None)
    }

    /// As [`EncryptionTransformers::from_config`], asking `kms` for the plugin of each kms provider.
    pub fn from_config_with_kms(
        config: &EncryptionConfiguration,
        kms: impl Fn(&KmsConfiguration) -> Option<Arc<dyn EnvelopeService>>,
    ) -> Result<Self, TransformError> {
        let mut overrides: HashMap<GroupResource, PrefixTransformers> = HashMap::new();
        for rc in &config.resources {
            // One transformer set per entry, shared by its resources (like upstream).
            let mut built = Vec::with_capacity(rc.providers.len());
            for p in &rc.providers {
                let service = match p {
                    ProviderConfiguration::Kms(k) => kms(k),
                    _ => None,
                };
                built.push(Arc::new(ProviderTransformer::new(p, service)?));
            }
            for r in &rc.resources {
                overrides
                    .entry(GroupResource::parse(r))
                    .or_insert_with(|| PrefixTransformers::new(Vec::new()))
                    .providers
                    .extend(built.iter().cloned());
            }
        }
        Ok(EncryptionTransformers {
            overrides,
            identity: PrefixTransformers::identity(),
        })
    }

    /// The transformers for `gr` (`transformerFromOverrides`): exact group/resource, then `<group>/*`, then `*/*`,
    /// else identity.
    pub fn for_resource(&self, gr: &GroupResource) -> &PrefixTransformers {
        self.overrides
            .get(gr)
            .or_else(|| {
                self.overrides
                    .get(&GroupResource::new(gr.group.clone(), "*"))
            })
            .or_else(|| self.overrides.get(&GroupResource::new("*", "*")))
            .unwrap_or(&self.identity)
    }
}
