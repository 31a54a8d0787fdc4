//! The schema-driven object model shared by the protobuf and JSON codecs.
//!
//! JSON (as the API serves it) and protobuf bytes are both converted to and from [`Obj`], a
//! typed view of the Go struct: what Go would hold after `json.Unmarshal` or `proto.Unmarshal`.
//! Rendering an [`Obj`] back follows Go: `json.Marshal` (struct order, `omitempty`, `null` for a
//! nil slice/map/pointer without `omitempty`) and gogo-protobuf `Marshal` (ascending field
//! numbers, non-pointer fields always written, pointers only when set, repeated and map fields
//! per element, map entries sorted by key).
//!
//! Values are never printed: `Val` and `Obj` have no `Debug`, and errors name fields only.

use super::StorageError;
use super::quantity::{QuantityError, canonical as canonical_quantity};
use super::schema::{Field, Message, Shape, Ty};
use super::wire::{self, Reader, WireValue};
use crate::time::{format_rfc3339, parse_rfc3339};
use base64::Engine as _;
use serde_json::{Map, Value};

/// Go's `base64.StdEncoding` as `encoding/json` uses it for `[]byte`: padded, lenient about
/// trailing bits.
const B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// A Go value of one field element.
#[derive(Clone)]
pub enum Val {
    /// `string`.
    Str(String),
    /// `[]byte` (non-nil).
    Bytes(Vec<u8>),
    /// `bool`.
    Bool(bool),
    /// `int32` / `int64`.
    Int(i64),
    /// `metav1.Time`: `None` is the zero time.
    Time(Option<(i64, i32)>),
    /// `resource.Quantity`, kept as its string form.
    Quantity(String),
    /// `intstr.IntOrString`.
    IntOrString(IntOrString),
    /// `metav1.FieldsV1` raw JSON bytes.
    Fields(Vec<u8>),
    /// A named `[]string` (`ExtraValue`).
    StrList(Vec<String>),
    /// A nested struct.
    Msg(Obj),
    /// A non-nil slice.
    List(Vec<Val>),
    /// A non-nil map; entries sorted by key; `None` is a nil value (`[]byte` or `ExtraValue`).
    Map(Vec<(String, Option<Val>)>),
}

/// `intstr.IntOrString` (apimachinery `pkg/util/intstr/intstr.go`).
#[derive(Clone, PartialEq)]
pub enum IntOrString {
    /// `Type: Int`.
    Int(i32),
    /// `Type: String`.
    Str(String),
}

/// A Go struct value: one slot per schema field; `None` means the Go zero value (nil for
/// pointers, slices, maps and `[]byte`).
#[derive(Clone)]
pub struct Obj {
    /// The struct's schema.
    pub msg: &'static Message,
    /// Field values, indexed like `msg.fields`.
    pub vals: Vec<Option<Val>>,
}

impl Obj {
    /// The zero value of `msg`.
    pub fn empty(msg: &'static Message) -> Obj {
        Obj {
            msg,
            vals: vec![None; msg.fields.len()],
        }
    }

    /// The value of the field with JSON name `json`, searching inline structs too.
    pub fn get(&self, json: &str) -> Option<&Val> {
        for (field, val) in self.msg.fields.iter().zip(&self.vals) {
            if field.inline {
                if let Some(Val::Msg(inner)) = val
                    && let Some(v) = inner.get(json)
                {
                    return Some(v);
                }
            } else if field.json == json {
                return val.as_ref();
            }
        }
        None
    }
}

fn field_err(path: &str, reason: impl Into<String>) -> StorageError {
    StorageError::Field {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

// ---------------------------------------------------------------------------------------------
// JSON -> Obj

/// Reads a JSON object into `msg`, as Go's `json.Unmarshal` would, but strictly: a key the
/// schema does not know is an error naming it. `skip` lists keys handled by the caller
/// (`apiVersion`, `kind` at the top level).
pub fn obj_from_json(
    map: &Map<String, Value>,
    msg: &'static Message,
    path: &str,
    skip: &[&str],
) -> Result<Obj, StorageError> {
    let obj = fill_from_json(map, msg, path)?;
    for key in map.keys() {
        if !knows(msg, key) && !skip.contains(&key.as_str()) {
            return Err(StorageError::UnknownField {
                path: join(path, key),
                message: msg.name,
            });
        }
    }
    Ok(obj)
}

/// Whether `key` is a JSON field of `msg` (inline structs included).
fn knows(msg: &Message, key: &str) -> bool {
    msg.fields.iter().any(|f| match (f.inline, f.ty) {
        (true, Ty::Msg(inner)) => knows(inner, key),
        _ => f.json == key,
    })
}

fn fill_from_json(
    map: &Map<String, Value>,
    msg: &'static Message,
    path: &str,
) -> Result<Obj, StorageError> {
    let mut obj = Obj::empty(msg);
    for (i, field) in msg.fields.iter().enumerate() {
        if field.inline {
            let Ty::Msg(inner) = field.ty else {
                unreachable!("inline fields are messages")
            };
            obj.vals[i] = Some(Val::Msg(fill_from_json(map, inner, path)?));
            continue;
        }
        let Some(value) = map.get(field.json) else {
            continue;
        };
        let fpath = join(path, field.json);
        obj.vals[i] = field_from_json(value, field, &fpath)?;
    }
    Ok(obj)
}

fn field_from_json(value: &Value, field: &Field, path: &str) -> Result<Option<Val>, StorageError> {
    if value.is_null() {
        // Go: null leaves the zero value (nil pointer/slice/map).
        return Ok(None);
    }
    match field.shape {
        Shape::One => elem_from_json(value, field.ty, path).map(Some),
        Shape::List => {
            let arr = value
                .as_array()
                .ok_or_else(|| field_err(path, "expected an array"))?;
            let mut out = Vec::with_capacity(arr.len());
            for (i, v) in arr.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if v.is_null() {
                    // Go decodes null into the element's zero value.
                    out.push(zero_elem(field.ty));
                } else {
                    out.push(elem_from_json(v, field.ty, &p)?);
                }
            }
            Ok(Some(Val::List(out)))
        }
        Shape::Map => {
            let obj = value
                .as_object()
                .ok_or_else(|| field_err(path, "expected an object"))?;
            let mut out = Vec::with_capacity(obj.len());
            for (k, v) in obj {
                let p = format!("{path}[{k}]");
                let val = if v.is_null() {
                    match field.ty {
                        Ty::Bytes | Ty::StrList => None,
                        ty => Some(zero_elem(ty)),
                    }
                } else {
                    Some(elem_from_json(v, field.ty, &p)?)
                };
                out.push((k.clone(), val));
            }
            out.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(Some(Val::Map(out)))
        }
    }
}

/// The canonical form of a quantity (apimachinery `resource.ParseQuantity` + `String`).
fn quantity_from(s: &str, path: &str) -> Result<String, StorageError> {
    canonical_quantity(s).map_err(|e| {
        field_err(
            path,
            match e {
                QuantityError::Format => "is not a quantity (like \"250m\", \"1.5\" or \"1Gi\")",
                QuantityError::Suffix => {
                    "has an unknown quantity suffix (use n u m k M G T P E or Ki Mi Gi Ti Pi Ei)"
                }
                QuantityError::Numeric => "is a quantity too large to represent",
            },
        )
    })
}

fn zero_elem(ty: Ty) -> Val {
    match ty {
        Ty::Str => Val::Str(String::new()),
        Ty::Bytes => Val::Bytes(Vec::new()),
        Ty::Bool => Val::Bool(false),
        Ty::I32 | Ty::I64 => Val::Int(0),
        Ty::Msg(m) => Val::Msg(Obj::empty(m)),
        Ty::Time => Val::Time(None),
        Ty::Quantity => Val::Quantity("0".into()),
        Ty::IntOrString => Val::IntOrString(IntOrString::Int(0)),
        Ty::FieldsV1 => Val::Fields(Vec::new()),
        Ty::StrList => Val::StrList(Vec::new()),
    }
}

fn elem_from_json(value: &Value, ty: Ty, path: &str) -> Result<Val, StorageError> {
    Ok(match ty {
        Ty::Str => Val::Str(
            value
                .as_str()
                .ok_or_else(|| field_err(path, "expected a string"))?
                .to_string(),
        ),
        Ty::Bytes => {
            let s = value
                .as_str()
                .ok_or_else(|| field_err(path, "expected a base64 string"))?;
            Val::Bytes(
                B64.decode(s).map_err(|_| {
                    field_err(path, "is not valid base64 (standard alphabet, padded)")
                })?,
            )
        }
        Ty::Bool => Val::Bool(
            value
                .as_bool()
                .ok_or_else(|| field_err(path, "expected true or false"))?,
        ),
        Ty::I32 => {
            let v = value
                .as_i64()
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(|| field_err(path, "expected a 32-bit integer"))?;
            Val::Int(i64::from(v))
        }
        Ty::I64 => Val::Int(
            value
                .as_i64()
                .ok_or_else(|| field_err(path, "expected a 64-bit integer"))?,
        ),
        Ty::Msg(m) => {
            let map = value
                .as_object()
                .ok_or_else(|| field_err(path, "expected an object"))?;
            Val::Msg(obj_from_json(map, m, path, &[])?)
        }
        Ty::Time => {
            let s = value
                .as_str()
                .ok_or_else(|| field_err(path, "expected an RFC 3339 timestamp string"))?;
            let t = parse_rfc3339(s).ok_or_else(|| {
                field_err(
                    path,
                    "is not an RFC 3339 timestamp (like 2024-05-01T10:00:00Z)",
                )
            })?;
            Val::Time(Some(t))
        }
        // Quantity.UnmarshalJSON accepts a string or a bare number and keeps the canonical form.
        Ty::Quantity => match value {
            Value::String(s) => Val::Quantity(quantity_from(s.trim(), path)?),
            Value::Number(n) => Val::Quantity(quantity_from(&n.to_string(), path)?),
            _ => {
                return Err(field_err(
                    path,
                    "expected a quantity string (like \"250m\" or \"1Gi\")",
                ));
            }
        },
        Ty::IntOrString => match value {
            Value::String(s) => Val::IntOrString(IntOrString::Str(s.clone())),
            Value::Number(n) => {
                let v = n
                    .as_i64()
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(|| field_err(path, "expected a 32-bit integer or a string"))?;
                Val::IntOrString(IntOrString::Int(v))
            }
            _ => return Err(field_err(path, "expected an integer or a string")),
        },
        Ty::FieldsV1 => {
            if !value.is_object() {
                return Err(field_err(path, "expected a JSON object"));
            }
            Val::Fields(go_json(value))
        }
        Ty::StrList => {
            let arr = value
                .as_array()
                .ok_or_else(|| field_err(path, "expected an array of strings"))?;
            let mut out = Vec::with_capacity(arr.len());
            for v in arr {
                out.push(
                    v.as_str()
                        .ok_or_else(|| field_err(path, "expected an array of strings"))?
                        .to_string(),
                );
            }
            Val::StrList(out)
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Obj -> JSON (Go json.Marshal)

/// Renders `obj` as Go's `json.Marshal` would (struct order, `omitempty`), into `out`.
pub fn obj_to_json(obj: &Obj, out: &mut Map<String, Value>) -> Result<(), StorageError> {
    for (field, val) in obj.msg.fields.iter().zip(&obj.vals) {
        if field.inline {
            match val {
                Some(Val::Msg(inner)) => obj_to_json(inner, out)?,
                _ => {
                    let Ty::Msg(m) = field.ty else { unreachable!() };
                    obj_to_json(&Obj::empty(m), out)?
                }
            }
            continue;
        }
        if let Some(v) = field_to_json(field, val.as_ref())? {
            out.insert(field.json.to_string(), v);
        }
    }
    Ok(())
}

/// The JSON of one field, or `None` when `omitempty` drops it.
fn field_to_json(field: &Field, val: Option<&Val>) -> Result<Option<Value>, StorageError> {
    let omit = field.omitempty;
    match field.shape {
        Shape::List => match val {
            Some(Val::List(items)) if !items.is_empty() || !omit => {
                let mut arr = Vec::with_capacity(items.len());
                for it in items {
                    arr.push(elem_to_json(field.ty, Some(it))?);
                }
                Ok(Some(Value::Array(arr)))
            }
            Some(_) => Ok(None),
            None => Ok((!omit).then_some(Value::Null)),
        },
        Shape::Map => match val {
            Some(Val::Map(entries)) if !entries.is_empty() || !omit => {
                let mut map = Map::with_capacity(entries.len());
                for (k, v) in entries {
                    map.insert(k.clone(), elem_to_json(field.ty, v.as_ref())?);
                }
                Ok(Some(Value::Object(map)))
            }
            Some(_) => Ok(None),
            None => Ok((!omit).then_some(Value::Null)),
        },
        Shape::One if field.ptr => match val {
            Some(v) => elem_to_json(field.ty, Some(v)).map(Some),
            None => Ok((!omit).then_some(Value::Null)),
        },
        Shape::One => {
            // Non-pointer: omitempty drops only empty strings, false, 0 and empty []byte;
            // structs (including Time, Quantity, IntOrString) are always written.
            let empty = match (field.ty, val) {
                (_, None) => matches!(
                    field.ty,
                    Ty::Str | Ty::Bool | Ty::I32 | Ty::I64 | Ty::Bytes | Ty::StrList
                ),
                (Ty::Str, Some(Val::Str(s))) => s.is_empty(),
                (Ty::Bool, Some(Val::Bool(b))) => !b,
                (Ty::I32 | Ty::I64, Some(Val::Int(i))) => *i == 0,
                (Ty::Bytes, Some(Val::Bytes(b))) => b.is_empty(),
                (Ty::StrList, Some(Val::StrList(l))) => l.is_empty(),
                _ => false,
            };
            if empty && omit {
                return Ok(None);
            }
            if val.is_none() && matches!(field.ty, Ty::Bytes | Ty::StrList) {
                return Ok(Some(Value::Null));
            }
            elem_to_json(field.ty, val).map(Some)
        }
    }
}

fn elem_to_json(ty: Ty, val: Option<&Val>) -> Result<Value, StorageError> {
    let Some(val) = val else {
        return Ok(match ty {
            Ty::Str => Value::String(String::new()),
            Ty::Bool => Value::Bool(false),
            Ty::I32 | Ty::I64 => Value::from(0),
            Ty::Msg(m) => {
                let mut map = Map::new();
                obj_to_json(&Obj::empty(m), &mut map)?;
                Value::Object(map)
            }
            Ty::Quantity => Value::String("0".into()),
            Ty::IntOrString => Value::from(0),
            Ty::Time | Ty::Bytes | Ty::FieldsV1 | Ty::StrList => Value::Null,
        });
    };
    Ok(match val {
        Val::Str(s) => Value::String(s.clone()),
        Val::Bytes(b) => Value::String(B64.encode(b)),
        Val::Bool(b) => Value::Bool(*b),
        Val::Int(i) => Value::from(*i),
        Val::Time(None) => Value::Null,
        Val::Time(Some((secs, _))) => Value::String(format_rfc3339(*secs).ok_or_else(|| {
            field_err(
                "time",
                "timestamp is outside the years 0000-9999 that Kubernetes can encode",
            )
        })?),
        Val::Quantity(q) => Value::String(q.clone()),
        Val::IntOrString(IntOrString::Int(i)) => Value::from(*i),
        Val::IntOrString(IntOrString::Str(s)) => Value::String(s.clone()),
        Val::Fields(raw) => {
            if raw.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(raw)
                    .map_err(|_| field_err("fieldsV1", "stored FieldsV1 is not valid JSON"))?
            }
        }
        Val::StrList(l) => Value::Array(l.iter().map(|s| Value::String(s.clone())).collect()),
        Val::Msg(o) => {
            let mut map = Map::new();
            obj_to_json(o, &mut map)?;
            Value::Object(map)
        }
        Val::List(_) | Val::Map(_) => unreachable!("lists and maps are field shapes"),
    })
}

// ---------------------------------------------------------------------------------------------
// Obj -> protobuf (gogo Marshal)

/// Appends the protobuf encoding of `obj` (fields in ascending number order).
pub fn obj_to_proto(obj: &Obj, out: &mut Vec<u8>) {
    let mut order: Vec<usize> = (0..obj.msg.fields.len()).collect();
    order.sort_by_key(|&i| obj.msg.fields[i].num);
    for i in order {
        let field = &obj.msg.fields[i];
        let val = obj.vals[i].as_ref();
        match field.shape {
            Shape::List => {
                if let Some(Val::List(items)) = val {
                    for it in items {
                        elem_to_proto(field.num, field.ty, Some(it), out);
                    }
                }
            }
            Shape::Map => {
                if let Some(Val::Map(entries)) = val {
                    for (k, v) in entries {
                        let mut entry = Vec::new();
                        wire::put_len(&mut entry, 1, k.as_bytes());
                        // gogo writes a map value always, except a nil []byte (`if v != nil`).
                        if v.is_some() || !matches!(field.ty, Ty::Bytes) {
                            elem_to_proto(2, field.ty, v.as_ref(), &mut entry);
                        }
                        wire::put_len(out, field.num, &entry);
                    }
                }
            }
            Shape::One => {
                if field.ptr && val.is_none() {
                    continue;
                }
                // A nil []byte is not written (gogo: `if m.X != nil`).
                if val.is_none() && matches!(field.ty, Ty::Bytes | Ty::FieldsV1) {
                    continue;
                }
                elem_to_proto(field.num, field.ty, val, out);
            }
        }
    }
}

fn elem_to_proto(num: u32, ty: Ty, val: Option<&Val>, out: &mut Vec<u8>) {
    match (ty, val) {
        (Ty::Str, v) => {
            let s = match v {
                Some(Val::Str(s)) => s.as_str(),
                _ => "",
            };
            wire::put_len(out, num, s.as_bytes());
        }
        (Ty::Bytes, v) => {
            let b: &[u8] = match v {
                Some(Val::Bytes(b)) => b,
                _ => &[],
            };
            wire::put_len(out, num, b);
        }
        (Ty::Bool, v) => {
            wire::put_varint_field(out, num, u64::from(matches!(v, Some(Val::Bool(true)))));
        }
        (Ty::I32 | Ty::I64, v) => {
            let i = match v {
                Some(Val::Int(i)) => *i,
                _ => 0,
            };
            wire::put_varint_field(out, num, i as u64);
        }
        (Ty::Msg(m), v) => {
            let mut inner = Vec::new();
            match v {
                Some(Val::Msg(o)) => obj_to_proto(o, &mut inner),
                _ => obj_to_proto(&Obj::empty(m), &mut inner),
            }
            wire::put_len(out, num, &inner);
        }
        (Ty::Time, v) => {
            let mut inner = Vec::new();
            if let Some(Val::Time(Some((secs, nanos)))) = v {
                // Timestamp: nanos=2 and seconds=1, both always written (apimachinery
                // pkg/apis/meta/v1/generated.pb.go, Timestamp.MarshalToSizedBuffer).
                wire::put_varint_field(&mut inner, 1, *secs as u64);
                wire::put_varint_field(&mut inner, 2, i64::from(*nanos) as u64);
            }
            wire::put_len(out, num, &inner);
        }
        (Ty::Quantity, v) => {
            let s = match v {
                Some(Val::Quantity(q)) => q.as_str(),
                _ => "0",
            };
            let mut inner = Vec::new();
            wire::put_len(&mut inner, 1, s.as_bytes());
            wire::put_len(out, num, &inner);
        }
        (Ty::IntOrString, v) => {
            let (t, iv, sv) = match v {
                Some(Val::IntOrString(IntOrString::Str(s))) => (1u64, 0i32, s.as_str()),
                Some(Val::IntOrString(IntOrString::Int(i))) => (0, *i, ""),
                _ => (0, 0, ""),
            };
            let mut inner = Vec::new();
            wire::put_varint_field(&mut inner, 1, t);
            wire::put_varint_field(&mut inner, 2, i64::from(iv) as u64);
            wire::put_len(&mut inner, 3, sv.as_bytes());
            wire::put_len(out, num, &inner);
        }
        (Ty::FieldsV1, v) => {
            let mut inner = Vec::new();
            if let Some(Val::Fields(raw)) = v {
                wire::put_len(&mut inner, 1, raw);
            }
            wire::put_len(out, num, &inner);
        }
        (Ty::StrList, v) => {
            let mut inner = Vec::new();
            if let Some(Val::StrList(items)) = v {
                for s in items {
                    wire::put_len(&mut inner, 1, s.as_bytes());
                }
            }
            wire::put_len(out, num, &inner);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// protobuf -> Obj (gogo Unmarshal)

/// Decodes a protobuf message of type `msg`. Unknown field numbers are skipped, as gogo does
/// (old objects carry the removed ObjectMeta field 15, `clusterName`).
pub fn obj_from_proto(buf: &[u8], msg: &'static Message, path: &str) -> Result<Obj, StorageError> {
    let mut obj = Obj::empty(msg);
    let mut r = Reader::new(buf, path);
    while let Some((num, wv)) = r.next_field()? {
        let Some(i) = msg.fields.iter().position(|f| f.num == num) else {
            continue;
        };
        let field = &msg.fields[i];
        let fpath = join(path, field.json);
        match field.shape {
            Shape::One => {
                obj.vals[i] = Some(elem_from_proto(wv, field.ty, &fpath)?);
            }
            Shape::List => {
                let list = obj.vals[i].get_or_insert_with(|| Val::List(Vec::new()));
                let Val::List(items) = list else {
                    unreachable!()
                };
                match (field.ty, wv) {
                    // Packed repeated scalars are accepted too (proto3 writers).
                    (Ty::I32 | Ty::I64 | Ty::Bool, WireValue::Len(packed)) => {
                        let mut pr = Reader::new(packed, &fpath);
                        while pr.remaining() > 0 {
                            let v = pr.varint()?;
                            items.push(scalar(field.ty, v));
                        }
                    }
                    _ => items.push(elem_from_proto(wv, field.ty, &fpath)?),
                }
            }
            Shape::Map => {
                let WireValue::Len(entry) = wv else {
                    return Err(wrong_wire(&fpath));
                };
                let mut er = Reader::new(entry, &fpath);
                let mut key = String::new();
                let mut value = None;
                while let Some((n, ev)) = er.next_field()? {
                    match n {
                        1 => key = string_from(ev, &fpath)?,
                        2 => value = Some(elem_from_proto(ev, field.ty, &fpath)?),
                        _ => {}
                    }
                }
                match (&value, field.ty) {
                    // A missing or empty ExtraValue unmarshals to a nil slice.
                    (Some(Val::StrList(items)), Ty::StrList) if items.is_empty() => value = None,
                    (None, Ty::Bytes | Ty::StrList) => {}
                    (None, ty) => value = Some(zero_elem(ty)),
                    _ => {}
                }
                let map = obj.vals[i].get_or_insert_with(|| Val::Map(Vec::new()));
                let Val::Map(entries) = map else {
                    unreachable!()
                };
                match entries.binary_search_by(|e| e.0.as_str().cmp(&key)) {
                    Ok(pos) => entries[pos].1 = value,
                    Err(pos) => entries.insert(pos, (key, value)),
                }
            }
        }
    }
    Ok(obj)
}

fn wrong_wire(path: &str) -> StorageError {
    StorageError::Protobuf {
        path: path.to_string(),
        offset: 0,
        reason: "unexpected wire type for this field".into(),
    }
}

fn scalar(ty: Ty, v: u64) -> Val {
    match ty {
        Ty::Bool => Val::Bool(v != 0),
        // Go: int32(v) truncates.
        Ty::I32 => Val::Int(i64::from(v as i32)),
        _ => Val::Int(v as i64),
    }
}

fn string_from(wv: WireValue<'_>, path: &str) -> Result<String, StorageError> {
    match wv {
        // Go strings may hold any bytes; JSON output replaces invalid UTF-8 with U+FFFD.
        WireValue::Len(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        _ => Err(wrong_wire(path)),
    }
}

fn elem_from_proto(wv: WireValue<'_>, ty: Ty, path: &str) -> Result<Val, StorageError> {
    Ok(match ty {
        Ty::Str => Val::Str(string_from(wv, path)?),
        Ty::Bytes => match wv {
            WireValue::Len(b) => Val::Bytes(b.to_vec()),
            _ => return Err(wrong_wire(path)),
        },
        Ty::Bool | Ty::I32 | Ty::I64 => match wv {
            WireValue::Varint(v) => scalar(ty, v),
            _ => return Err(wrong_wire(path)),
        },
        Ty::Msg(m) => match wv {
            WireValue::Len(b) => Val::Msg(obj_from_proto(b, m, path)?),
            _ => return Err(wrong_wire(path)),
        },
        Ty::Time => {
            let WireValue::Len(b) = wv else {
                return Err(wrong_wire(path));
            };
            if b.is_empty() {
                Val::Time(None)
            } else {
                let mut r = Reader::new(b, path);
                let mut secs = 0i64;
                while let Some((n, v)) = r.next_field()? {
                    if let (1, WireValue::Varint(v)) = (n, v) {
                        secs = v as i64;
                    }
                }
                // Go's Time.Unmarshal keeps seconds only (time_proto.go: `time.Unix(p.Seconds, 0)`).
                Val::Time(Some((secs, 0)))
            }
        }
        Ty::Quantity => {
            let WireValue::Len(b) = wv else {
                return Err(wrong_wire(path));
            };
            let mut r = Reader::new(b, path);
            let mut s = String::new();
            while let Some((n, v)) = r.next_field()? {
                if n == 1 {
                    s = string_from(v, path)?;
                }
            }
            Val::Quantity(quantity_from(&s, path)?)
        }
        Ty::IntOrString => {
            let WireValue::Len(b) = wv else {
                return Err(wrong_wire(path));
            };
            let mut r = Reader::new(b, path);
            let (mut t, mut iv, mut sv) = (0u64, 0i32, String::new());
            while let Some((n, v)) = r.next_field()? {
                match (n, v) {
                    (1, WireValue::Varint(v)) => t = v,
                    (2, WireValue::Varint(v)) => iv = v as i32,
                    (3, v) => sv = string_from(v, path)?,
                    _ => {}
                }
            }
            Val::IntOrString(if t == 1 {
                IntOrString::Str(sv)
            } else {
                IntOrString::Int(iv)
            })
        }
        Ty::FieldsV1 => {
            let WireValue::Len(b) = wv else {
                return Err(wrong_wire(path));
            };
            let mut r = Reader::new(b, path);
            let mut raw = Vec::new();
            while let Some((n, v)) = r.next_field()? {
                if let (1, WireValue::Len(v)) = (n, v) {
                    raw = v.to_vec();
                }
            }
            Val::Fields(raw)
        }
        Ty::StrList => {
            let WireValue::Len(b) = wv else {
                return Err(wrong_wire(path));
            };
            let mut r = Reader::new(b, path);
            let mut items = Vec::new();
            while let Some((n, v)) = r.next_field()? {
                if n == 1 {
                    items.push(string_from(v, path)?);
                }
            }
            Val::StrList(items)
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Go encoding/json output

/// Compact JSON exactly as Go's `encoding/json` writes it with HTML escaping on (the default
/// of `json.Marshal` and `json.NewEncoder`): `<`, `>`, `&`, U+2028 and U+2029 escaped as
/// `\u003c`-style sequences, `\b` `\f` `\n` `\r` `\t` short escapes (Go 1.22+), other control
/// characters as `\u00xx`. Object keys keep their order.
pub fn go_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_go_json(value, &mut out);
    out
}

fn write_go_json(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_go_string(s, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_go_json(v, out);
            }
            out.push(b']');
        }
        Value::Object(m) => {
            out.push(b'{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_go_string(k, out);
                out.push(b':');
                write_go_json(v, out);
            }
            out.push(b'}');
        }
    }
}

fn write_go_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\0'..='\u{1f}' => {
                let v = c as u32;
                out.extend_from_slice(b"\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX[((v >> shift) & 0xf) as usize]);
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}
