//! `metav1.Status` errors with Kubernetes' exact messages (apimachinery `pkg/api/errors/errors.go`).

use serde_json::{Value, json};

/// An API error: HTTP code, reason, message and details, rendered as a `metav1.Status`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u32>,
}

/// `GroupResource.String()`: `secrets`, or `roles.rbac.authorization.k8s.io`.
pub(crate) fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn details(name: &str, group: &str, kind: &str) -> Value {
    let mut d = serde_json::Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    d.insert("kind".into(), json!(kind));
    Value::Object(d)
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// `NewNotFound`: `secrets "x" not found`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        ApiError {
            details: Some(details(name, group, resource)),
            ..Self::new(
                404,
                "NotFound",
                format!("{} \"{name}\" not found", qualified(group, resource)),
            )
        }
    }

    /// `NewAlreadyExists`: `namespaces "x" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        ApiError {
            details: Some(details(name, group, resource)),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", qualified(group, resource)),
            )
        }
    }

    /// `NewConflict` with the optimistic-concurrency message of the etcd3 store.
    pub fn conflict(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict_msg(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// `NewConflict`: `Operation cannot be fulfilled on <qr> "<name>": <msg>`.
    pub fn conflict_msg(group: &str, resource: &str, name: &str, msg: &str) -> Self {
        ApiError {
            details: Some(details(name, group, resource)),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{name}\": {msg}",
                    qualified(group, resource)
                ),
            )
        }
    }

    /// `NewForbidden`: `<qr> "<name>" is forbidden: <reason>`.
    pub fn forbidden(group: &str, resource: &str, name: &str, reason: &str) -> Self {
        let qr = qualified(group, resource);
        let message = if qr.is_empty() {
            // apiserver responsewriters.Forbidden for non-resource requests: `forbidden: <reason>`.
            format!("forbidden: {reason}")
        } else if name.is_empty() {
            format!("{qr} is forbidden: {reason}")
        } else {
            format!("{qr} \"{name}\" is forbidden: {reason}")
        };
        ApiError {
            details: Some(details(name, group, resource)),
            ..Self::new(403, "Forbidden", message)
        }
    }

    /// `NewInvalid`: `<Kind> "<name>" is invalid: <field>: <msg>` (causes as separate entries; several joined
    /// as `[a, b]` like `ErrorList.ToAggregate`).
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<FieldError>) -> Self {
        let msgs: Vec<String> = causes.iter().map(|c| c.to_string()).collect();
        let joined = if msgs.len() == 1 {
            msgs[0].clone()
        } else {
            format!("[{}]", msgs.join(", "))
        };
        let mut d = details(name, group, kind);
        d["causes"] = Value::Array(
            causes
                .iter()
                .map(|c| json!({"reason": c.kind.reason(), "message": c.message_without_field(), "field": c.field}))
                .collect(),
        );
        ApiError {
            details: Some(d),
            ..Self::new(
                422,
                "Invalid",
                format!(
                    "{} \"{name}\" is invalid: {joined}",
                    qualified_kind(group, kind)
                ),
            )
        }
    }

    /// `NewBadRequest`.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", msg)
    }

    /// `NewInternalError`: `Internal error occurred: <err>`.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        ApiError {
            details: Some(json!({"causes": [{"message": err.to_string()}]})),
            ..Self::new(
                500,
                "InternalError",
                format!("Internal error occurred: {err}"),
            )
        }
    }

    /// `NewMethodNotSupported`.
    pub fn method_not_supported(group: &str, resource: &str, action: &str) -> Self {
        ApiError {
            details: Some(details("", group, resource)),
            ..Self::new(
                405,
                "MethodNotAllowed",
                format!(
                    "{action} is not supported on resources of kind \"{}\"",
                    qualified(group, resource)
                ),
            )
        }
    }

    /// 404 for a path nothing serves (`the server could not find the requested resource`).
    pub fn path_not_found() -> Self {
        ApiError {
            details: Some(json!({})),
            ..Self::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        }
    }

    /// 401 `Unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// `NewTooManyRequests`-like answer of the max-in-flight filter.
    pub fn too_many_requests(retry_after: u32) -> Self {
        ApiError {
            details: Some(json!({"retryAfterSeconds": retry_after})),
            retry_after: Some(retry_after),
            ..Self::new(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
            )
        }
    }

    /// `NewGone` for an expired continue token (etcd compaction).
    pub fn expired(msg: impl Into<String>) -> Self {
        Self::new(410, "Expired", msg)
    }

    /// The `metav1.Status` body.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s["code"] = json!(self.code);
        s
    }
}

fn qualified_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

/// A field validation error (`field.Error`).
#[derive(Debug, Clone)]
pub(crate) struct FieldError {
    pub kind: FieldErrorKind,
    pub field: String,
    pub value: Option<Value>,
    pub detail: String,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldErrorKind {
    Required,
    Invalid,
    Forbidden,
    NotSupported,
    Duplicate,
    TooLong,
}

impl FieldErrorKind {
    fn reason(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::TooLong => "FieldValueTooLong",
        }
    }
    fn text(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid => "Invalid value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::TooLong => "Too long",
        }
    }
}

impl FieldError {
    pub fn required(field: &str, detail: &str) -> Self {
        FieldError {
            kind: FieldErrorKind::Required,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }
    pub fn invalid(field: &str, value: Value, detail: &str) -> Self {
        FieldError {
            kind: FieldErrorKind::Invalid,
            field: field.into(),
            value: Some(value),
            detail: detail.into(),
        }
    }
    pub fn forbidden(field: &str, detail: &str) -> Self {
        FieldError {
            kind: FieldErrorKind::Forbidden,
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }
    pub fn not_supported(field: &str, value: Value, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        FieldError {
            kind: FieldErrorKind::NotSupported,
            field: field.into(),
            value: Some(value),
            detail: format!("supported values: {}", list.join(", ")),
        }
    }
    /// `field.TooLong(path, _, max)`: the value is omitted, the limit said in bytes.
    pub fn too_long(field: &str, max_bytes: usize) -> Self {
        FieldError {
            kind: FieldErrorKind::TooLong,
            field: field.into(),
            value: None,
            detail: format!(
                "may not be more than {max_bytes} byte{}",
                if max_bytes == 1 { "" } else { "s" }
            ),
        }
    }
    pub fn duplicate(field: &str, value: Value) -> Self {
        FieldError {
            kind: FieldErrorKind::Duplicate,
            field: field.into(),
            value: Some(value),
            detail: String::new(),
        }
    }

    /// `field.Error.ErrorBody()`: `Invalid value: "x": detail`.
    pub fn message_without_field(&self) -> String {
        let mut s = self.kind.text().to_string();
        if let Some(v) = &self.value
            && !matches!(
                self.kind,
                FieldErrorKind::Required | FieldErrorKind::Forbidden
            )
        {
            let shown = match v {
                Value::String(x) => format!("\"{x}\""),
                Value::Null => "null".into(),
                other => other.to_string(),
            };
            s.push_str(&format!(": {shown}"));
        }
        if !self.detail.is_empty() {
            s.push_str(&format!(": {}", self.detail));
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message_without_field())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_apimachinery() {
        assert_eq!(
            ApiError::not_found("", "secrets", "nope").message,
            "secrets \"nope\" not found"
        );
        assert_eq!(
            ApiError::not_found("certificates.k8s.io", "certificatesigningrequests", "nope")
                .message,
            "certificatesigningrequests.certificates.k8s.io \"nope\" not found"
        );
        assert_eq!(
            ApiError::conflict("", "secrets", "seed").message,
            "Operation cannot be fulfilled on secrets \"seed\": the object has been modified; please apply your changes to the latest version and try again"
        );
        let e = ApiError::invalid(
            "",
            "Namespace",
            "bad_ns",
            vec![FieldError::invalid(
                "metadata.name",
                json!("bad_ns"),
                "a lowercase RFC 1123 label",
            )],
        );
        assert_eq!(
            e.message,
            "Namespace \"bad_ns\" is invalid: metadata.name: Invalid value: \"bad_ns\": a lowercase RFC 1123 label"
        );
        assert_eq!(
            e.to_status()["details"]["causes"][0]["reason"],
            "FieldValueInvalid"
        );
        assert_eq!(e.to_status()["code"], 422);
    }
}
