//! What goes over the wire to the API server: JSON, or Kubernetes protobuf (`application/vnd.kubernetes.protobuf`:
//! the `k8s\0` + `runtime.Unknown` envelope of [`crate::storage::StorageEnvelope`] around the object's message).
//!
//! kube-apiserver serves every built-in type in protobuf, and decodes and encodes it far more cheaply than JSON
//! (apimachinery `pkg/runtime/serializer/protobuf/protobuf.go`); custom resources have no protobuf form, so a
//! request accepting `application/vnd.kubernetes.protobuf, application/json` gets JSON for them (content
//! negotiation in apiserver `pkg/endpoints/handlers/negotiation/negotiate.go` picks the first type the resource
//! serves). client-go's typed clients send exactly that Accept header with protobuf bodies
//! (`k8s.io/client-go/kubernetes` `setConfigDefaults` with `runtime.ContentTypeProtobuf`).
//!
//! A listed object is kept as it came: a JSON value, or its protobuf message bytes, which go back in a PUT
//! untouched. Only the metadata needed here (name, namespace, resourceVersion) is read from a message
//! (`ObjectMeta` is field 1 of every built-in object; its `name` = 1, `namespace` = 3, `resourceVersion` = 6;
//! a `*List` holds `ListMeta` = 1 with `continue` = 3, `remainingItemCount` = 4, and `items` = 2;
//! `k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto`).

use serde_json::Value;

use crate::storage::wire::{Reader, WireValue};
use crate::storage::{self, PROTOBUF_MAGIC, StorageEnvelope};

/// `application/json`.
pub const JSON: &str = "application/json";
/// `application/vnd.kubernetes.protobuf`.
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
/// The Accept header of a protobuf client: protobuf where the resource has it, JSON otherwise.
pub const ACCEPT_PROTOBUF: &str = "application/vnd.kubernetes.protobuf, application/json";

/// How objects travel (`kubectl reencrypt --wire`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Wire {
    /// JSON both ways.
    #[default]
    Json,
    /// Ask for protobuf; send back what the server sent: protobuf when it answers in protobuf (kube-apiserver,
    /// built-in types), JSON when it answers in JSON (custom resources, servers without protobuf).
    Auto,
    /// Like `Auto`, and objects listed as JSON whose kind atrest's codec knows are sent back in protobuf too.
    Protobuf,
}

impl Wire {
    /// Parses `json`, `protobuf` or `auto`.
    pub fn parse(s: &str) -> Option<Wire> {
        match s {
            "json" => Some(Wire::Json),
            "protobuf" => Some(Wire::Protobuf),
            "auto" => Some(Wire::Auto),
            _ => None,
        }
    }
}

/// An object as the server sent it.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    /// A JSON object (list items carry no apiVersion/kind).
    Json(Value),
    /// The object's protobuf message (without the envelope).
    Proto(Vec<u8>),
}

/// The metadata of an object needed to send it back.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    pub name: String,
    pub namespace: String,
    pub resource_version: Option<String>,
}

impl Body {
    /// Name, namespace and resourceVersion (empty / `None` when missing or unreadable).
    pub fn meta(&self) -> Meta {
        match self {
            Body::Json(v) => {
                let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
                Meta {
                    name: s("/metadata/name").unwrap_or_default(),
                    namespace: s("/metadata/namespace").unwrap_or_default(),
                    resource_version: s("/metadata/resourceVersion"),
                }
            }
            Body::Proto(raw) => proto_meta(raw).unwrap_or_default(),
        }
    }
}

fn text(v: WireValue<'_>) -> Option<String> {
    match v {
        WireValue::Len(b) => std::str::from_utf8(b).ok().map(str::to_string),
        _ => None,
    }
}

/// `metadata` (field 1) of an object message: name, namespace, resourceVersion.
fn proto_meta(raw: &[u8]) -> Result<Meta, String> {
    let mut meta = Meta::default();
    let mut r = Reader::new(raw, "object");
    while let Some((num, v)) = r.next_field().map_err(|e| e.to_string())? {
        let (1, WireValue::Len(m)) = (num, v) else {
            continue;
        };
        let mut mr = Reader::new(m, "object.metadata");
        while let Some((n, mv)) = mr.next_field().map_err(|e| e.to_string())? {
            match n {
                1 => meta.name = text(mv).unwrap_or_default(),
                3 => meta.namespace = text(mv).unwrap_or_default(),
                6 => meta.resource_version = text(mv),
                _ => {}
            }
        }
    }
    Ok(meta)
}

/// One page of a list.
pub(crate) struct Page {
    pub items: Vec<Body>,
    /// The continue token, when more follows.
    pub cont: Option<String>,
}

/// Parses a list response (JSON, or a protobuf `*List` in its envelope).
pub(crate) fn parse_page(body: &[u8]) -> Result<Page, String> {
    if body.starts_with(&PROTOBUF_MAGIC) {
        let env = StorageEnvelope::decode(body).map_err(|e| format!("invalid protobuf: {e}"))?;
        let mut page = Page {
            items: Vec::new(),
            cont: None,
        };
        let mut r = Reader::new(&env.raw, "List");
        while let Some((num, v)) = r.next_field().map_err(|e| e.to_string())? {
            match (num, v) {
                (1, WireValue::Len(m)) => {
                    let mut mr = Reader::new(m, "List.metadata");
                    while let Some((n, mv)) = mr.next_field().map_err(|e| e.to_string())? {
                        if n == 3 {
                            page.cont = text(mv).filter(|c| !c.is_empty());
                        }
                    }
                }
                (2, WireValue::Len(item)) => page.items.push(Body::Proto(item.to_vec())),
                _ => {}
            }
        }
        return Ok(page);
    }
    let mut v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let cont = v
        .pointer("/metadata/continue")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let items = match v.get_mut("items").map(Value::take) {
        Some(Value::Array(items)) => items.into_iter().map(Body::Json).collect(),
        _ => Vec::new(),
    };
    Ok(Page { items, cont })
}

/// Parses one object (a GET or PUT response).
pub(crate) fn parse_object(body: &[u8]) -> Result<Body, String> {
    if body.starts_with(&PROTOBUF_MAGIC) {
        let env = StorageEnvelope::decode(body).map_err(|e| format!("invalid protobuf: {e}"))?;
        return Ok(Body::Proto(env.raw));
    }
    serde_json::from_slice(body)
        .map(Body::Json)
        .map_err(|e| format!("invalid JSON: {e}"))
}

/// A `Status` error body (JSON or protobuf): its message and `details.retryAfterSeconds`.
pub(crate) fn status(body: &[u8]) -> (Option<String>, Option<u64>) {
    if body.starts_with(&PROTOBUF_MAGIC) {
        let Ok(env) = StorageEnvelope::decode(body) else {
            return (None, None);
        };
        let (mut message, mut retry) = (None, None);
        let mut r = Reader::new(&env.raw, "Status");
        while let Ok(Some((num, v))) = r.next_field() {
            match (num, v) {
                (3, v) => message = text(v),
                (5, WireValue::Len(d)) => {
                    let mut dr = Reader::new(d, "Status.details");
                    while let Ok(Some((n, dv))) = dr.next_field() {
                        if let (5, WireValue::Varint(s)) = (n, dv) {
                            retry = Some(s);
                        }
                    }
                }
                _ => {}
            }
        }
        return (message, retry);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => (
            v.get("message").and_then(Value::as_str).map(str::to_string),
            v.pointer("/details/retryAfterSeconds")
                .and_then(Value::as_u64),
        ),
        Err(_) => (None, None),
    }
}

/// A PUT body for `object` of `api_version`/`kind`: protobuf when `protobuf` is allowed and possible (a listed
/// message, or JSON of a kind atrest's codec knows when `encode_json` is set), else JSON. Returns the bytes and
/// their Content-Type.
pub(crate) fn put_body(
    object: &mut Body,
    api_version: &str,
    kind: &str,
    protobuf: bool,
    encode_json: bool,
) -> Result<(Vec<u8>, &'static str), String> {
    if let Body::Proto(raw) = object {
        if protobuf {
            let env = StorageEnvelope {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                raw: std::mem::take(raw),
                ..Default::default()
            };
            let bytes = env.encode();
            *raw = env.raw;
            return Ok((bytes, PROTOBUF));
        }
        // A server that refuses protobuf bodies after serving protobuf lists: convert the message.
        let json = storage::from_protobuf_message(api_version, kind, raw).map_err(|e| {
            format!("cannot convert {kind} from protobuf to JSON for a server that refuses protobuf: {e}")
        })?;
        *object = Body::Json(json);
    }
    let Body::Json(v) = object else {
        unreachable!("converted above")
    };
    // List items carry no apiVersion/kind; a PUT body names them (as `kubectl replace` does).
    if let Some(m) = v.as_object_mut() {
        m.entry("apiVersion")
            .or_insert_with(|| Value::String(api_version.to_string()));
        m.entry("kind")
            .or_insert_with(|| Value::String(kind.to_string()));
    }
    if protobuf && encode_json && storage::is_known_kind(api_version, kind) {
        // Fields the codec does not know (a newer server) stay JSON rather than being dropped.
        if let Ok(env) = storage::to_protobuf_message(v) {
            return Ok((env.encode(), PROTOBUF));
        }
    }
    Ok((serde_json::to_vec(v).expect("JSON value serializes"), JSON))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::wire::put_len;
    use serde_json::json;

    fn secret() -> Value {
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "s1", "namespace": "ns1", "resourceVersion": "42", "uid": "u-1"},
               "data": {"k": "dmFsdWU="}, "type": "Opaque"})
    }

    #[test]
    fn protobuf_list_items_keep_their_bytes_and_metadata() {
        let msg = storage::to_protobuf_message(&secret()).unwrap();
        let mut list_meta = Vec::new();
        put_len(&mut list_meta, 2, b"77");
        put_len(&mut list_meta, 3, b"tok");
        let mut list = Vec::new();
        put_len(&mut list, 1, &list_meta);
        put_len(&mut list, 2, &msg.raw);
        put_len(&mut list, 2, &msg.raw);
        let body = StorageEnvelope {
            api_version: "v1".into(),
            kind: "SecretList".into(),
            raw: list,
            ..Default::default()
        }
        .encode();
        let page = parse_page(&body).unwrap();
        assert_eq!(page.cont.as_deref(), Some("tok"));
        assert_eq!(page.items.len(), 2);
        let mut item = page.items[0].clone();
        assert_eq!(
            item.meta(),
            Meta {
                name: "s1".into(),
                namespace: "ns1".into(),
                resource_version: Some("42".into())
            }
        );
        // Sent back untouched, in its envelope.
        let (bytes, ct) = put_body(&mut item, "v1", "Secret", true, true).unwrap();
        assert_eq!(ct, PROTOBUF);
        assert_eq!(StorageEnvelope::decode(&bytes).unwrap().raw, msg.raw);
        // Refused protobuf: the same object as JSON.
        let (bytes, ct) = put_body(&mut item, "v1", "Secret", false, true).unwrap();
        assert_eq!(ct, JSON);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["metadata"]["resourceVersion"], "42");
        assert_eq!(v["kind"], "Secret");
    }

    #[test]
    fn json_items_go_back_as_json_or_encoded() {
        let page = parse_page(
            br#"{"metadata":{"continue":""},"items":[{"metadata":{"name":"s1","namespace":"ns1","resourceVersion":"42","uid":"u-1"},"data":{"k":"dmFsdWU="},"type":"Opaque"}]}"#,
        )
        .unwrap();
        assert_eq!(page.cont, None);
        let mut item = page.items[0].clone();
        let (_, ct) = put_body(&mut item, "v1", "Secret", true, false).unwrap();
        assert_eq!(ct, JSON, "auto: JSON answered, JSON sent");
        let (bytes, ct) = put_body(&mut item, "v1", "Secret", true, true).unwrap();
        assert_eq!(ct, PROTOBUF);
        assert_eq!(
            storage::decode(&bytes).unwrap(),
            storage::normalize(&secret()).unwrap()
        );
        // A kind the codec does not know stays JSON.
        let mut cr = Body::Json(json!({"metadata": {"name": "w"}, "spec": {}}));
        let (_, ct) = put_body(&mut cr, "example.com/v1", "Widget", true, true).unwrap();
        assert_eq!(ct, JSON);
    }

    #[test]
    fn status_in_json_and_protobuf() {
        assert_eq!(
            status(br#"{"kind":"Status","message":"slow down","details":{"retryAfterSeconds":3}}"#),
            (Some("slow down".into()), Some(3))
        );
        let mut details = Vec::new();
        crate::storage::wire::put_varint_field(&mut details, 5, 2);
        let mut st = Vec::new();
        put_len(&mut st, 2, b"Failure");
        put_len(&mut st, 3, b"too many requests");
        put_len(&mut st, 5, &details);
        crate::storage::wire::put_varint_field(&mut st, 6, 429);
        let body = StorageEnvelope {
            api_version: "v1".into(),
            kind: "Status".into(),
            raw: st,
            ..Default::default()
        }
        .encode();
        assert_eq!(status(&body), (Some("too many requests".into()), Some(2)));
    }
}
