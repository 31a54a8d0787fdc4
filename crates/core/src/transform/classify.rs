//! Key-less classification of raw etcd values by their prefix.

use super::{
    AESCBC_PREFIX, AESGCM_PREFIX, ENCRYPTED_PREFIX, KMS_V1_PREFIX, KMS_V2_PREFIX, KmsV2Transformer,
    SECRETBOX_PREFIX,
};
use std::fmt;

/// How a value is stored. `as_str` gives the names used in etcdcheck's JSON (`storage` field).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum StorageKind {
    /// Plaintext (protobuf or JSON).
    Identity,
    /// `k8s:enc:aescbc:v1:`.
    Aescbc,
    /// `k8s:enc:aesgcm:v1:`.
    Aesgcm,
    /// `k8s:enc:secretbox:v1:`.
    Secretbox,
    /// `k8s:enc:kms:v1:`.
    Kms,
    /// `k8s:enc:kms:v2:`.
    Kmsv2,
    /// Anything else (unknown `k8s:enc:` provider, malformed prefix, neither protobuf nor JSON).
    Unknown,
}

impl StorageKind {
    /// `identity`, `aescbc`, `aesgcm`, `secretbox`, `kms`, `kmsv2`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageKind::Identity => "identity",
            StorageKind::Aescbc => "aescbc",
            StorageKind::Aesgcm => "aesgcm",
            StorageKind::Secretbox => "secretbox",
            StorageKind::Kms => "kms",
            StorageKind::Kmsv2 => "kmsv2",
            StorageKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for StorageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Plaintext encoding. `as_str` gives `protobuf` / `json`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Encoding {
    /// `k8s\0` + `runtime.Unknown` (kube-apiserver default).
    Protobuf,
    /// A JSON object (`--storage-media-type=application/json`, custom resources).
    Json,
}

impl Encoding {
    /// `protobuf` or `json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Protobuf => "protobuf",
            Encoding::Json => "json",
        }
    }
}

/// The protobuf storage magic (`k8s\0`, apimachinery `pkg/runtime/serializer/protobuf/protobuf.go`).
pub const PROTOBUF_MAGIC: &[u8] = b"k8s\x00";

/// The encoding of plaintext bytes: `k8s\0` → protobuf; a JSON object (leading whitespace allowed) → json.
pub fn plaintext_encoding(data: &[u8]) -> Option<Encoding> {
    if data.starts_with(PROTOBUF_MAGIC) {
        return Some(Encoding::Protobuf);
    }
    match data.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Some(Encoding::Json),
        _ => None,
    }
}

/// What [`classify`] found.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Classification {
    /// Storage kind.
    pub storage: StorageKind,
    /// Encoding, for identity values only.
    pub encoding: Option<Encoding>,
    /// Key name (aescbc/aesgcm/secretbox) or kms provider name, from the prefix.
    pub key_name: Option<String>,
    /// kms v2 only: the KMS key ID from the `EncryptedObject`.
    pub kms_key_id: Option<String>,
    /// Why the value is `unknown` (or malformed beyond its prefix); `None` when it looks well-formed.
    pub problem: Option<String>,
}

impl Classification {
    fn new(storage: StorageKind) -> Self {
        Classification {
            storage,
            encoding: None,
            key_name: None,
            kms_key_id: None,
            problem: None,
        }
    }

    /// A short human description, e.g. `aesgcm key "key1"`, `identity (protobuf)`, `kms v2 provider "p"`.
    pub fn describe(&self) -> String {
        match (self.storage, &self.key_name) {
            (StorageKind::Identity, _) => match self.encoding {
                Some(e) => format!("identity ({})", e.as_str()),
                None => "identity".to_owned(),
            },
            (StorageKind::Kms, Some(n)) => format!("kms v1 provider {n:?}"),
            (StorageKind::Kmsv2, Some(n)) => format!("kms v2 provider {n:?}"),
            (StorageKind::Unknown, _) => format!(
                "of unknown format ({})",
                self.problem.as_deref().unwrap_or("unrecognised")
            ),
            (s, Some(n)) => format!("{s} key {n:?}"),
            (s, None) => s.as_str().to_owned(),
        }
    }
}

/// Name up to the next `:`, printable and at most 256 bytes.
fn name_before_colon(rest: &[u8]) -> Result<(String, &[u8]), String> {
    let Some(pos) = rest.iter().take(257).position(|&b| b == b':') else {
        return Err("no ':' after the key name in the prefix".into());
    };
    let name = &rest[..pos];
    match std::str::from_utf8(name) {
        Ok(s) if !s.chars().any(char::is_control) => Ok((s.to_owned(), &rest[pos + 1..])),
        _ => Err("the key name in the prefix is not printable text".into()),
    }
}

/// Classifies a raw etcd value without any keys.
///
/// Key names are read up to the first `:` (upstream does not forbid `:` in aes/secretbox key names; with such
/// names only a configured read can tell).
pub fn classify(value: &[u8]) -> Classification {
    if !value.starts_with(ENCRYPTED_PREFIX) {
        let mut c = Classification::new(StorageKind::Identity);
        c.encoding = plaintext_encoding(value);
        if c.encoding.is_none() {
            c.storage = StorageKind::Unknown;
            c.problem = Some(if value.is_empty() {
                "empty value".into()
            } else {
                "neither encrypted (k8s:enc:), protobuf (k8s\\0) nor JSON".into()
            });
        }
        return c;
    }
    let table: [(&str, StorageKind); 5] = [
        (AESCBC_PREFIX, StorageKind::Aescbc),
        (AESGCM_PREFIX, StorageKind::Aesgcm),
        (SECRETBOX_PREFIX, StorageKind::Secretbox),
        (KMS_V1_PREFIX, StorageKind::Kms),
        (KMS_V2_PREFIX, StorageKind::Kmsv2),
    ];
    for (prefix, kind) in table {
        let Some(rest) = value.strip_prefix(prefix.as_bytes()) else {
            continue;
        };
        let mut c = Classification::new(kind);
        match name_before_colon(rest) {
            Ok((name, payload)) => {
                c.key_name = Some(name);
                if kind == StorageKind::Kmsv2 {
                    match KmsV2Transformer::parse(payload) {
                        Ok(obj) => c.kms_key_id = Some(obj.key_id),
                        Err(e) => c.problem = Some(e),
                    }
                } else if kind == StorageKind::Kms
                    && let Err(e) = super::split_kms_v1(payload)
                {
                    c.problem = Some(e);
                }
            }
            Err(e) => {
                c.storage = StorageKind::Unknown;
                c.problem = Some(format!("{prefix}: {e}"));
            }
        }
        return c;
    }
    let mut c = Classification::new(StorageKind::Unknown);
    let rest = &value[ENCRYPTED_PREFIX.len()..];
    let provider: String = String::from_utf8_lossy(&rest[..rest.len().min(32)])
        .split(':')
        .next()
        .unwrap_or("")
        .chars()
        .map(|ch| if ch.is_control() { '.' } else { ch })
        .collect();
    c.problem = Some(format!(
        "unknown encryption provider {provider:?} in prefix k8s:enc:"
    ));
    c
}
