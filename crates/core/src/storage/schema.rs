//! Message schemas: one table per Kubernetes Go struct, driving the protobuf and JSON codecs.
//!
//! Each [`Message`] lists its fields in Go struct order (which is also the JSON order and the
//! order of `generated.proto`, since go-to-protobuf emits fields in struct order). A [`Field`]
//! carries the JSON name, the protobuf field number, the element type, whether the Go field is a
//! pointer (emitted in protobuf only when set), whether its JSON tag has `omitempty`, and whether
//! it is an embedded struct tagged `json:",inline"` (its fields appear in the parent's JSON
//! object but it is a nested message in protobuf).

/// A Kubernetes Go struct as the codecs see it.
pub struct Message {
    /// Go type name, used in error messages (`ObjectMeta`, `PodSpec`, ...).
    pub name: &'static str,
    /// Fields in Go struct order.
    pub fields: &'static [Field],
}

/// Element type of a field.
#[derive(Clone, Copy)]
pub enum Ty {
    /// Go `string`: protobuf LEN, JSON string.
    Str,
    /// Go `[]byte`: protobuf LEN, JSON base64 (standard alphabet, padded).
    Bytes,
    /// Go `bool`: protobuf varint 0/1.
    Bool,
    /// Go `int32`: protobuf varint (negative values sign-extended to ten bytes).
    I32,
    /// Go `int64`.
    I64,
    /// A nested struct.
    Msg(&'static Message),
    /// `metav1.Time`: protobuf `Timestamp{seconds=1, nanos=2}` (empty message for the zero time),
    /// JSON RFC 3339 seconds or `null` (apimachinery `pkg/apis/meta/v1/time.go`, `time_proto.go`).
    Time,
    /// `resource.Quantity`: protobuf `{string=1}`, JSON string (apimachinery `pkg/api/resource`).
    Quantity,
    /// `intstr.IntOrString`: protobuf `{type=1, intVal=2, strVal=3}`, JSON number or string.
    IntOrString,
    /// `metav1.FieldsV1`: protobuf `{Raw=1}` holding JSON bytes, JSON the embedded object.
    FieldsV1,
    /// A named `[]string` such as `ExtraValue`: protobuf `{items=1 repeated}`, JSON array.
    StrList,
}

/// Cardinality of a field.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A single value.
    One,
    /// A Go slice: protobuf repeated field, JSON array.
    List,
    /// A Go `map[string]T`: protobuf repeated entry `{key=1, value=2}` sorted by key, JSON object.
    Map,
}

/// One field of a [`Message`].
#[derive(Clone, Copy)]
pub struct Field {
    /// JSON name (for inline fields: a descriptive name; never looked up).
    pub json: &'static str,
    /// Protobuf field number.
    pub num: u32,
    /// Element type (for maps: the value type; keys are always strings).
    pub ty: Ty,
    /// Cardinality.
    pub shape: Shape,
    /// The Go field is a pointer (`*bool`, `*int64`, `*Probe`, ...).
    pub ptr: bool,
    /// The JSON tag has `omitempty`.
    pub omitempty: bool,
    /// The Go field is an embedded struct tagged `json:",inline"`.
    pub inline: bool,
}

/// A single, non-pointer field with `omitempty`; refine with the builder methods.
pub const fn f(json: &'static str, num: u32, ty: Ty) -> Field {
    Field {
        json,
        num,
        ty,
        shape: Shape::One,
        ptr: false,
        omitempty: true,
        inline: false,
    }
}

impl Field {
    /// The Go field is a pointer.
    pub const fn ptr(self) -> Field {
        Field { ptr: true, ..self }
    }
    /// The JSON tag has no `omitempty`.
    pub const fn req(self) -> Field {
        Field {
            omitempty: false,
            ..self
        }
    }
    /// The Go field is a slice.
    pub const fn list(self) -> Field {
        Field {
            shape: Shape::List,
            ..self
        }
    }
    /// The Go field is a `map[string]T` (T = the field's type).
    pub const fn map(self) -> Field {
        Field {
            shape: Shape::Map,
            ..self
        }
    }
    /// The Go field is an embedded struct tagged `json:",inline"`.
    pub const fn inline(self) -> Field {
        Field {
            inline: true,
            ..self
        }
    }
}

/// A string field.
pub const fn s(json: &'static str, num: u32) -> Field {
    f(json, num, Ty::Str)
}
/// A bool field.
pub const fn b(json: &'static str, num: u32) -> Field {
    f(json, num, Ty::Bool)
}
/// An int32 field.
pub const fn i32f(json: &'static str, num: u32) -> Field {
    f(json, num, Ty::I32)
}
/// An int64 field.
pub const fn i64f(json: &'static str, num: u32) -> Field {
    f(json, num, Ty::I64)
}
/// A nested message field.
pub const fn m(json: &'static str, num: u32, msg: &'static Message) -> Field {
    f(json, num, Ty::Msg(msg))
}
/// A `[]string` field with `omitempty`.
pub const fn strs(json: &'static str, num: u32) -> Field {
    f(json, num, Ty::Str).list()
}
/// A `map[string]string` field with `omitempty`.
pub const fn strmap(json: &'static str, num: u32) -> Field {
    f(json, num, Ty::Str).map()
}
