//! What the etcd scan needs from a stored value, without ever holding Secret values.

use super::codec::Val;
use super::{MediaType, StorageError, TypedObject};
use crate::time::format_rfc3339;
use std::collections::BTreeMap;

/// Type and identity of a stored object; for Secrets also the data keys and type.
/// Holds no values, so `Debug` is safe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSummary {
    /// How the value was encoded.
    pub encoding: MediaType,
    /// `apiVersion`, e.g. `v1`.
    pub api_version: String,
    /// `kind`, e.g. `Secret`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace` (empty for cluster-scoped objects).
    pub namespace: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.creationTimestamp` in RFC 3339, if set.
    pub creation_timestamp: Option<String>,
    /// Secret `type` (`None` for other kinds).
    pub secret_type: Option<String>,
    /// Secret `data` keys, sorted (empty for other kinds).
    pub data_keys: Vec<String>,
}

impl ObjectSummary {
    /// Decodes a plaintext stored value (protobuf, JSON or YAML). Encrypted values give
    /// [`StorageError::Encrypted`]; decrypt them first.
    pub fn from_stored(bytes: &[u8]) -> Result<ObjectSummary, StorageError> {
        let (typed, encoding) = TypedObject::from_bytes(bytes)?;
        let text = |o: &super::codec::Obj, k: &str| match o.get(k) {
            Some(Val::Str(s)) => s.clone(),
            _ => String::new(),
        };
        let mut summary = ObjectSummary {
            encoding,
            api_version: typed.api_version.clone(),
            kind: typed.kind.clone(),
            name: String::new(),
            namespace: String::new(),
            uid: String::new(),
            labels: BTreeMap::new(),
            creation_timestamp: None,
            secret_type: None,
            data_keys: Vec::new(),
        };
        if let Some(Val::Msg(meta)) = typed.obj.get("metadata") {
            summary.name = text(meta, "name");
            summary.namespace = text(meta, "namespace");
            summary.uid = text(meta, "uid");
            if let Some(Val::Map(entries)) = meta.get("labels") {
                for (k, v) in entries {
                    if let Some(Val::Str(v)) = v {
                        summary.labels.insert(k.clone(), v.clone());
                    }
                }
            }
            if let Some(Val::Time(Some((secs, _)))) = meta.get("creationTimestamp") {
                summary.creation_timestamp = format_rfc3339(*secs);
            }
        }
        if typed.api_version == "v1" && typed.kind == "Secret" {
            summary.secret_type = Some(text(&typed.obj, "type"));
            if let Some(Val::Map(entries)) = typed.obj.get("data") {
                summary.data_keys = entries.iter().map(|(k, _)| k.clone()).collect();
            }
        }
        Ok(summary)
    }
}
