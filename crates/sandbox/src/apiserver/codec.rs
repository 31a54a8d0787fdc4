//! Object encodings: storage bytes (protobuf envelope or JSON, as `--storage-media-type` says), request bodies
//! (JSON, YAML or the `k8s\0` protobuf envelope kubectl's typed clients send), plus time and uid helpers.

use atrest_core::storage::{self, MediaType};
use serde_json::Value;

use super::status::ApiError;

/// `--storage-media-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StorageMedia {
    Json,
    Protobuf,
    Yaml,
}

impl StorageMedia {
    pub fn from_flag(s: &str) -> StorageMedia {
        match s {
            "application/json" => StorageMedia::Json,
            "application/yaml" => StorageMedia::Yaml,
            _ => StorageMedia::Protobuf,
        }
    }
}

/// Serialize an object for etcd (resourceVersion already cleared by the caller): byte-identical to
/// kube-apiserver's protobuf or JSON storage encoding (`atrest_core::storage`).
pub(crate) fn encode_storage(obj: &Value, media: StorageMedia) -> Result<Vec<u8>, String> {
    let media = match media {
        StorageMedia::Json => MediaType::Json,
        StorageMedia::Yaml => MediaType::Yaml,
        StorageMedia::Protobuf => MediaType::Protobuf,
    };
    storage::encode(obj, media).map_err(|e| e.to_string())
}

/// Decode a stored value (protobuf envelope, JSON or YAML) into the API's JSON form.
pub(crate) fn decode_storage(bytes: &[u8]) -> Result<Value, String> {
    storage::decode(bytes).map_err(|e| e.to_string())
}

/// The object as the apiserver's typed decode would see it (Go field order, omitempty); unknown fields are a
/// 400 like strict field validation (`strict decoding error: unknown field "x"`).
pub(crate) fn normalize(obj: &Value) -> Result<Value, ApiError> {
    storage::normalize(obj).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Decode a request body by its Content-Type.
pub(crate) fn decode_body(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let unknown = |e: String| {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf{e}"
            ),
        )
    };
    match mime.as_str() {
        "application/vnd.kubernetes.protobuf" => storage::decode(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding protobuf body: {e}"))),
        "application/yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::bad_request("body is not UTF-8"))?;
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
        }
        "" | "application/json" | "*/*" => serde_json::from_slice::<Value>(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        }),
        other => Err(unknown(format!(" (got {other})"))),
    }
}

/// `metav1.Time` and the clock are core's.
pub(crate) use atrest_core::time::now_rfc3339;

/// A random RFC 4122 v4 UUID.
pub(crate) fn new_uid() -> String {
    let mut b = [0u8; 16];
    openssl::rand::rand_bytes(&mut b).expect("CSPRNG");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// kubectl's `HumanDuration` (apimachinery `pkg/util/duration/duration.go`) for the Age column.
pub(crate) fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 60 * 2 {
        return format!("{s}s");
    }
    let minutes = s / 60;
    if minutes < 10 {
        let rs = s % 60;
        return if rs == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{rs}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = s / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3600 * 5 + 60), "5h1m");
        assert_eq!(human_duration(86400 * 3), "3d");
    }

    #[test]
    fn uid_shape() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, new_uid());
    }
}
