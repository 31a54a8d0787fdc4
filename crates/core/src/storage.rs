//! Storage encodings: the `k8s\0` protobuf envelope (`runtime.Unknown`), JSON storage, and object codecs.
//!
//! kube-apiserver stores objects in etcd as protobuf by default (`k8s\0` + `runtime.Unknown`
//! holding the object message) and as JSON with `--storage-media-type=application/json`
//! (kubernetes/kubernetes `pkg/controlplane/apiserver/options/options.go` sets
//! `DefaultStorageMediaType = "application/vnd.kubernetes.protobuf"`). The same envelope is the
//! body of protobuf API requests sent by kubectl's typed clients.
//!
//! Entry points:
//! - [`decode`]: any stored value or request body (protobuf, JSON, YAML) → the object's JSON as
//!   the API serves it.
//! - [`encode`]: an object's JSON → the exact bytes kube-apiserver would write for a media type
//!   (protobuf and JSON byte-identical; YAML equivalent).
//! - [`normalize`]: JSON as a client sent it → JSON as the API would serve it back (Go decode +
//!   encode: struct order, `omitempty`, RFC 3339 seconds, canonical quantities such as
//!   `0.5` → `500m`); unknown fields are errors.
//! - [`to_go_json`]: any JSON value written exactly as Go's `json.Marshal` writes it.
//! - [`StorageEnvelope`]: the `runtime.Unknown` envelope itself.
//! - [`ObjectSummary`]: apiVersion, kind, metadata and Secret data keys of a stored value, for
//!   the etcd scan; never holds values.
//!
//! Supported kinds: see [`kinds::KINDS`] (schemas follow the Kubernetes 1.33 API; fields added
//! later are unknown, fields removed earlier such as ObjectMeta `clusterName` are skipped on
//! decode). Encrypted values (`k8s:enc:` prefix) must be decrypted by a transformer first.

mod codec;
pub mod kinds;
pub mod pod;
mod quantity;
pub mod schema;
mod summary;
pub mod wire;

use serde_json::{Map, Value};
use std::fmt;

pub use summary::ObjectSummary;

/// The 4-byte magic that starts every protobuf-encoded object (apimachinery
/// `pkg/runtime/serializer/protobuf/protobuf.go`, `protoEncodingPrefix`).
pub const PROTOBUF_MAGIC: [u8; 4] = *b"k8s\0";

/// The prefix reserved for encrypted values (apiserver `pkg/storage/value/encrypt/identity/identity.go`).
pub const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

/// Errors of the storage codecs. Messages name fields and positions, never values.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The value carries the `k8s:enc:` prefix.
    #[error("value is encrypted ({prefix}); decrypt it with the matching provider first")]
    Encrypted {
        /// The prefix up to the key name, e.g. `k8s:enc:aescbc:v1:key1`.
        prefix: String,
    },
    /// The value is neither protobuf, JSON nor YAML storage.
    #[error("not a stored Kubernetes object: {0}")]
    Unrecognized(String),
    /// Malformed protobuf.
    #[error("malformed protobuf in {path} at byte {offset}: {reason}")]
    Protobuf {
        /// Message path, e.g. `Secret.metadata`.
        path: String,
        /// Byte offset inside that message.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// A field has the wrong type or an invalid value.
    #[error("field {path} {reason}")]
    Field {
        /// JSON path of the field, e.g. `metadata.creationTimestamp`.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A JSON field the schema does not know (it would be silently dropped by a typed decode).
    #[error("unknown field \"{path}\": {message} has no such field")]
    UnknownField {
        /// JSON path of the field.
        path: String,
        /// The Go type that lacks it.
        message: &'static str,
    },
    /// apiVersion/kind not supported by the codecs.
    #[error(
        "unsupported kind \"{kind}\" in apiVersion \"{api_version}\" (atrest's codec knows: {known})"
    )]
    UnknownKind {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
        /// Known kinds, comma separated.
        known: String,
    },
    /// Malformed JSON or YAML text.
    #[error("invalid {format}: {reason}")]
    Syntax {
        /// `JSON` or `YAML`.
        format: &'static str,
        /// Parser message (positions only).
        reason: String,
    },
}

/// A storage / wire media type (`--storage-media-type`, HTTP `Content-Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaType {
    /// `application/vnd.kubernetes.protobuf`: `k8s\0` + `runtime.Unknown`.
    Protobuf,
    /// `application/json`.
    Json,
    /// `application/yaml`.
    Yaml,
}

impl MediaType {
    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Protobuf => "application/vnd.kubernetes.protobuf",
            MediaType::Json => "application/json",
            MediaType::Yaml => "application/yaml",
        }
    }

    /// Parses a MIME type (parameters such as `; charset=utf-8` are ignored).
    pub fn from_mime(mime: &str) -> Option<MediaType> {
        match mime.split(';').next().unwrap_or("").trim() {
            "application/vnd.kubernetes.protobuf" => Some(MediaType::Protobuf),
            "application/json" => Some(MediaType::Json),
            "application/yaml" => Some(MediaType::Yaml),
            _ => None,
        }
    }

    /// Recognises the encoding of a plaintext stored value the way the identity transformer
    /// and the storage decoder do: `k8s\0` protobuf, `{` JSON, otherwise YAML.
    pub fn detect(bytes: &[u8]) -> Result<MediaType, StorageError> {
        if bytes.starts_with(ENCRYPTED_PREFIX) {
            return Err(StorageError::Encrypted {
                prefix: encrypted_prefix(bytes),
            });
        }
        if bytes.starts_with(&PROTOBUF_MAGIC) {
            return Ok(MediaType::Protobuf);
        }
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        match first {
            Some(b'{') => Ok(MediaType::Json),
            None => Err(StorageError::Unrecognized("the value is empty".into())),
            Some(_) if bytes.starts_with(b"k8s") => Err(StorageError::Unrecognized(
                "protobuf prefix with an unknown encoding byte (only k8s\\0 is defined)".into(),
            )),
            Some(_) if std::str::from_utf8(bytes).is_ok() => Ok(MediaType::Yaml),
            Some(_) => Err(StorageError::Unrecognized(
                "neither k8s\\0 protobuf, JSON nor YAML".into(),
            )),
        }
    }
}

/// `k8s:enc:<provider>:<version>:<name>` of an encrypted value, without any ciphertext.
fn encrypted_prefix(bytes: &[u8]) -> String {
    let mut colons = 0;
    let mut end = bytes.len().min(ENCRYPTED_PREFIX.len() + 300);
    for (i, &c) in bytes
        .iter()
        .enumerate()
        .take(end)
        .skip(ENCRYPTED_PREFIX.len())
    {
        if c == b':' {
            colons += 1;
            if colons == 3 {
                end = i;
                break;
            }
        } else if !c.is_ascii_graphic() {
            end = i;
            break;
        }
    }
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// `runtime.Unknown` behind the `k8s\0` magic (apimachinery `pkg/runtime/generated.proto`,
/// `types_proto.go`): `typeMeta{apiVersion=1, kind=2}` = 1, `raw` = 2, `contentEncoding` = 3,
/// `contentType` = 4. All four are always written, so a stored object ends `1a 00 22 00`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct StorageEnvelope {
    /// `typeMeta.apiVersion`, e.g. `v1`, `rbac.authorization.k8s.io/v1`.
    pub api_version: String,
    /// `typeMeta.kind`, e.g. `Secret`.
    pub kind: String,
    /// The object's protobuf message.
    pub raw: Vec<u8>,
    /// Empty for everything kube-apiserver writes.
    pub content_encoding: String,
    /// Empty for everything kube-apiserver writes.
    pub content_type: String,
}

impl fmt::Debug for StorageEnvelope {
    // The raw message can hold Secret values: show its length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageEnvelope")
            .field("api_version", &self.api_version)
            .field("kind", &self.kind)
            .field("raw_len", &self.raw.len())
            .field("content_encoding", &self.content_encoding)
            .field("content_type", &self.content_type)
            .finish()
    }
}

impl StorageEnvelope {
    /// Parses `k8s\0` + `runtime.Unknown`. Unknown fields are skipped.
    pub fn decode(bytes: &[u8]) -> Result<StorageEnvelope, StorageError> {
        if bytes.starts_with(ENCRYPTED_PREFIX) {
            return Err(StorageError::Encrypted {
                prefix: encrypted_prefix(bytes),
            });
        }
        let Some(body) = bytes.strip_prefix(&PROTOBUF_MAGIC[..]) else {
            return Err(StorageError::Unrecognized(
                "missing the k8s\\0 protobuf prefix".into(),
            ));
        };
        let mut env = StorageEnvelope::default();
        let mut r = wire::Reader::new(body, "Unknown");
        let text = |v: wire::WireValue<'_>, what: &str| -> Result<String, StorageError> {
            match v {
                wire::WireValue::Len(b) => String::from_utf8(b.to_vec()).map_err(|_| {
                    StorageError::Unrecognized(format!("Unknown.{what} is not UTF-8"))
                }),
                _ => Err(StorageError::Unrecognized(format!(
                    "Unknown.{what} has the wrong wire type"
                ))),
            }
        };
        while let Some((num, v)) = r.next_field()? {
            match num {
                1 => {
                    let wire::WireValue::Len(tm) = v else {
                        return Err(StorageError::Unrecognized(
                            "Unknown.typeMeta has the wrong wire type".into(),
                        ));
                    };
                    let mut tr = wire::Reader::new(tm, "Unknown.typeMeta");
                    while let Some((n, tv)) = tr.next_field()? {
                        match n {
                            1 => env.api_version = text(tv, "typeMeta.apiVersion")?,
                            2 => env.kind = text(tv, "typeMeta.kind")?,
                            _ => {}
                        }
                    }
                }
                2 => match v {
                    wire::WireValue::Len(b) => env.raw = b.to_vec(),
                    _ => {
                        return Err(StorageError::Unrecognized(
                            "Unknown.raw has the wrong wire type".into(),
                        ));
                    }
                },
                3 => env.content_encoding = text(v, "contentEncoding")?,
                4 => env.content_type = text(v, "contentType")?,
                _ => {}
            }
        }
        Ok(env)
    }

    /// Writes `k8s\0` + `runtime.Unknown` exactly as apimachinery's protobuf serializer does.
    pub fn encode(&self) -> Vec<u8> {
        let mut tm = Vec::with_capacity(self.api_version.len() + self.kind.len() + 4);
        wire::put_len(&mut tm, 1, self.api_version.as_bytes());
        wire::put_len(&mut tm, 2, self.kind.as_bytes());
        let mut out = Vec::with_capacity(self.raw.len() + tm.len() + 24);
        out.extend_from_slice(&PROTOBUF_MAGIC);
        wire::put_len(&mut out, 1, &tm);
        wire::put_len(&mut out, 2, &self.raw);
        wire::put_len(&mut out, 3, self.content_encoding.as_bytes());
        wire::put_len(&mut out, 4, self.content_type.as_bytes());
        out
    }
}

fn unknown_kind(api_version: &str, kind: &str) -> StorageError {
    StorageError::UnknownKind {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        known: kinds::KINDS
            .iter()
            .map(|(a, k, _)| format!("{a}/{k}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Whether the codecs know `apiVersion`/`kind`.
pub fn is_known_kind(api_version: &str, kind: &str) -> bool {
    kinds::lookup(api_version, kind).is_some()
}

/// A typed object: its type and Go struct value.
pub(crate) struct TypedObject {
    pub api_version: String,
    pub kind: String,
    pub obj: codec::Obj,
}

impl TypedObject {
    fn from_json(value: &Value) -> Result<TypedObject, StorageError> {
        let map = value.as_object().ok_or_else(|| StorageError::Field {
            path: "(object)".into(),
            reason: "expected a JSON object".into(),
        })?;
        let get = |k: &str| -> Result<String, StorageError> {
            match map.get(k) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => Err(StorageError::Field {
                    path: k.to_string(),
                    reason: "is missing; every stored object needs apiVersion and kind".into(),
                }),
            }
        };
        let api_version = get("apiVersion")?;
        let kind = get("kind")?;
        let msg =
            kinds::lookup(&api_version, &kind).ok_or_else(|| unknown_kind(&api_version, &kind))?;
        let obj = codec::obj_from_json(map, msg, "", &["apiVersion", "kind"])?;
        Ok(TypedObject {
            api_version,
            kind,
            obj,
        })
    }

    fn from_envelope(env: &StorageEnvelope) -> Result<TypedObject, StorageError> {
        let msg = kinds::lookup(&env.api_version, &env.kind)
            .ok_or_else(|| unknown_kind(&env.api_version, &env.kind))?;
        if !env.content_encoding.is_empty() {
            return Err(StorageError::Unrecognized(
                "runtime.Unknown has a contentEncoding, which kube-apiserver never writes".into(),
            ));
        }
        let obj = codec::obj_from_proto(&env.raw, msg, msg.name)?;
        Ok(TypedObject {
            api_version: env.api_version.clone(),
            kind: env.kind.clone(),
            obj,
        })
    }

    fn from_bytes(bytes: &[u8]) -> Result<(TypedObject, MediaType), StorageError> {
        let media = MediaType::detect(bytes)?;
        let typed = match media {
            MediaType::Protobuf => TypedObject::from_envelope(&StorageEnvelope::decode(bytes)?)?,
            MediaType::Json => {
                let v: Value = serde_json::from_slice(bytes).map_err(|e| StorageError::Syntax {
                    format: "JSON",
                    reason: format!(
                        "line {} column {}: {}",
                        e.line(),
                        e.column(),
                        e.classify_name()
                    ),
                })?;
                TypedObject::from_json(&v)?
            }
            MediaType::Yaml => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| StorageError::Unrecognized("YAML value is not UTF-8".into()))?;
                let v: Value = serde_saphyr::from_str(text).map_err(|e| StorageError::Syntax {
                    format: "YAML",
                    reason: yaml_reason(&e),
                })?;
                TypedObject::from_json(&v)?
            }
        };
        Ok((typed, media))
    }

    fn to_json(&self) -> Result<Value, StorageError> {
        let mut map = Map::new();
        // TypeMeta is embedded first: `kind` then `apiVersion` (apimachinery types.go).
        map.insert("kind".into(), Value::String(self.kind.clone()));
        map.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        codec::obj_to_json(&self.obj, &mut map)?;
        Ok(Value::Object(map))
    }

    fn to_envelope(&self) -> StorageEnvelope {
        let mut raw = Vec::new();
        codec::obj_to_proto(&self.obj, &mut raw);
        StorageEnvelope {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            raw,
            content_encoding: String::new(),
            content_type: String::new(),
        }
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}
impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "unexpected end of input",
        }
    }
}

/// The YAML parser's error reduced to its position (its message could quote a value).
fn yaml_reason(e: &serde_saphyr::Error) -> String {
    match e.location() {
        Some(l) => format!("syntax error at line {} column {}", l.line(), l.column()),
        None => "syntax error".into(),
    }
}

/// Decodes a plaintext stored value or request body (protobuf envelope, JSON or YAML) into the
/// object's JSON as the API serves it (`kind`, `apiVersion`, then fields in Go order).
pub fn decode(bytes: &[u8]) -> Result<Value, StorageError> {
    TypedObject::from_bytes(bytes)?.0.to_json()
}

/// Like [`decode`], also returning the detected media type.
pub fn decode_with_media(bytes: &[u8]) -> Result<(Value, MediaType), StorageError> {
    let (typed, media) = TypedObject::from_bytes(bytes)?;
    Ok((typed.to_json()?, media))
}

/// Encodes an object (its JSON, with `apiVersion` and `kind`) as kube-apiserver stores it:
/// - [`MediaType::Protobuf`]: `k8s\0` + `runtime.Unknown`, byte-identical to gogo-protobuf;
/// - [`MediaType::Json`]: Go `json.NewEncoder(w).Encode(obj)` — compact, Go struct order,
///   HTML-escaped, with the trailing newline `Encode` adds (apimachinery
///   `pkg/runtime/serializer/json/json.go`, `doEncode`);
/// - [`MediaType::Yaml`]: block YAML with sorted keys (equivalent, not byte-identical; see
///   `yaml_storage`).
///
/// A JSON field the schema does not know is an error naming it.
pub fn encode(object: &Value, media: MediaType) -> Result<Vec<u8>, StorageError> {
    let typed = TypedObject::from_json(object)?;
    match media {
        MediaType::Protobuf => Ok(typed.to_envelope().encode()),
        MediaType::Json => {
            let mut out = codec::go_json(&typed.to_json()?);
            out.push(b'\n');
            Ok(out)
        }
        MediaType::Yaml => yaml_storage(&typed.to_json()?),
    }
}

/// YAML storage: apimachinery's YAML serializer writes `yaml.JSONToYAML(json.Marshal(obj))`
/// (sigs.k8s.io/yaml), i.e. block-style YAML with every mapping's keys sorted. Layout details
/// of long or multi-line strings follow serde-saphyr's emitter, not go-yaml's, so YAML storage is
/// equivalent but not byte-identical to kube-apiserver's (protobuf and JSON are byte-identical).
fn yaml_storage(json: &Value) -> Result<Vec<u8>, StorageError> {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_saphyr::to_string(&sorted(json))
        .map(String::into_bytes)
        .map_err(|_| StorageError::Unrecognized("the object could not be written as YAML".into()))
}

/// The object as the API would serve it after decoding `object` into its Go type: fields in
/// Go order, `omitempty` applied, timestamps in RFC 3339 seconds. Unknown fields are errors.
pub fn normalize(object: &Value) -> Result<Value, StorageError> {
    TypedObject::from_json(object)?.to_json()
}

/// The object's protobuf message (without the envelope) and its apiVersion/kind.
pub fn to_protobuf_message(object: &Value) -> Result<StorageEnvelope, StorageError> {
    Ok(TypedObject::from_json(object)?.to_envelope())
}

/// Decodes an object message of a known kind (the `raw` of a [`StorageEnvelope`]).
pub fn from_protobuf_message(
    api_version: &str,
    kind: &str,
    raw: &[u8],
) -> Result<Value, StorageError> {
    TypedObject::from_envelope(&StorageEnvelope {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        raw: raw.to_vec(),
        ..Default::default()
    })?
    .to_json()
}

/// Compact JSON of any value exactly as Go's `json.Marshal` writes it (HTML escaping, key order
/// kept). Use it for JSON API responses that must match kube-apiserver byte for byte.
pub fn to_go_json(value: &Value) -> Vec<u8> {
    codec::go_json(value)
}
