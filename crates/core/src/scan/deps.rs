//! TEMPORARY: stand-ins for core::transform / core::storage until they land (not to be landed).

use super::check::Decoded;
use super::{Encoding, Storage};

pub(super) fn classify(value: &[u8]) -> (Storage, Option<String>) {
    let prefixes: [(&[u8], Storage); 5] = [
        (b"k8s:enc:aescbc:v1:", Storage::Aescbc),
        (b"k8s:enc:aesgcm:v1:", Storage::Aesgcm),
        (b"k8s:enc:secretbox:v1:", Storage::Secretbox),
        (b"k8s:enc:kms:v1:", Storage::Kms),
        (b"k8s:enc:kms:v2:", Storage::Kmsv2),
    ];
    for (p, s) in prefixes {
        if let Some(rest) = value.strip_prefix(p) {
            let end = rest.iter().position(|b| *b == b':');
            return match end {
                Some(i) => (s, Some(String::from_utf8_lossy(&rest[..i]).into_owned())),
                None => (Storage::Unknown, None),
            };
        }
    }
    if value.starts_with(b"k8s\0") || value.first() == Some(&b'{') {
        (Storage::Identity, None)
    } else {
        (Storage::Unknown, None)
    }
}

pub(super) fn needs_kms_plugin(e: &str) -> bool {
    e.contains("KMS plugin")
}

pub(super) fn decode(value: &[u8]) -> Result<Decoded, String> {
    if value.first() == Some(&b'{') {
        let v: serde_json::Value = serde_json::from_slice(value).map_err(|e| format!("invalid JSON: {e}"))?;
        let m = &v["metadata"];
        return Ok(Decoded {
            encoding: Encoding::Json,
            namespace: m["namespace"].as_str().unwrap_or("").into(),
            name: m["name"].as_str().unwrap_or("").into(),
        });
    }
    Err("not decodable (shim)".into())
}
