//! TEMPORARY: stand-in for core::storage until it lands (not to be landed).

use crate::transform::Encoding;

pub(super) struct Decoded {
    pub encoding: Encoding,
    pub namespace: String,
    pub name: String,
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
