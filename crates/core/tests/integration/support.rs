//! Helpers shared by core's integration tests: the fixture tree and protobuf wire bytes written independently
//! of the codec (varint, length-delimited and varint fields, as protobuf's encoding guide defines them).

use std::path::PathBuf;

/// `crates/core/tests/fixtures/<sub>`.
pub fn fixtures(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(sub)
}

/// The files of a fixture directory (ending in `ext` when given), sorted; never empty.
pub fn fixture_files(sub: &str, ext: Option<&str>) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures(sub))
        .unwrap_or_else(|e| panic!("{sub}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| ext.is_none_or(|x| p.extension().is_some_and(|e| e == x)))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no fixtures in {sub}");
    v
}

/// A base-128 varint.
pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Length-delimited field (wire type 2).
pub fn ld(num: u32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    varint(&mut v, u64::from(num << 3 | 2));
    varint(&mut v, body.len() as u64);
    v.extend_from_slice(body);
    v
}

/// Varint field (wire type 0).
pub fn vf(num: u32, val: u64) -> Vec<u8> {
    let mut v = Vec::new();
    varint(&mut v, u64::from(num << 3));
    varint(&mut v, val);
    v
}
