//! Property tests: for objects generated from the schema tables of every supported kind,
//! JSON -> protobuf -> JSON and JSON -> JSON storage -> JSON are the identity (after the
//! one-time Go normalization), and normalization is idempotent.

use atrest_core::storage::kinds::KINDS;
use atrest_core::storage::schema::{Message, Shape, Ty};
use atrest_core::storage::{MediaType, decode, encode, normalize};
use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// A small deterministic generator (xorshift64*), seeded by proptest.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn coin(&mut self) -> bool {
        self.below(2) == 0
    }
    fn string(&mut self) -> String {
        const PIECES: &[&str] = &[
            "a", "Z", "0", "-", "<", ">", "&", "\"", "\\", "\n", "\u{2028}", "é", "😀", " ", "/",
            ":", "\u{1}", "y", "no", "on", "null", "~", "1.5", "0x1", "#", "- ", "'", "\t", "{",
        ];
        (0..self.below(6))
            .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
            .collect()
    }
    fn time(&mut self) -> String {
        format!(
            "20{:02}-0{}-1{}T0{}:{:02}:{:02}Z",
            self.below(100),
            1 + self.below(9),
            self.below(10),
            self.below(10),
            self.below(60),
            self.below(60)
        )
    }

    fn elem(&mut self, ty: Ty, depth: u32) -> Option<Value> {
        Some(match ty {
            Ty::Str => Value::String(self.string()),
            Ty::Bytes => {
                let bytes: Vec<u8> = (0..self.below(8)).map(|_| self.next() as u8).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            Ty::Bool => Value::Bool(self.coin()),
            Ty::I32 => json!(self.next() as i32),
            Ty::I64 => json!(self.next() as i64),
            Ty::Msg(m) => {
                if depth > 7 {
                    return None;
                }
                Value::Object(self.message(m, depth + 1))
            }
            Ty::Time => Value::String(self.time()),
            Ty::Quantity => {
                json!(["250m", "1Gi", "100Mi", "1", "0", "2k"][self.below(6) as usize])
            }
            Ty::IntOrString => {
                if self.coin() {
                    json!(self.next() as i32)
                } else {
                    Value::String(self.string())
                }
            }
            Ty::FieldsV1 => json!({"f:metadata": {"f:labels": {".": {}, "f:x": {}}}}),
            Ty::StrList => Value::Array(
                (0..1 + self.below(3))
                    .map(|_| Value::String(self.string()))
                    .collect(),
            ),
        })
    }

    fn message(&mut self, msg: &'static Message, depth: u32) -> Map<String, Value> {
        let mut out = Map::new();
        for field in msg.fields {
            if field.inline {
                let Ty::Msg(inner) = field.ty else {
                    unreachable!()
                };
                out.extend(self.message(inner, depth));
                continue;
            }
            if self.below(3) == 0 {
                continue;
            }
            let value = match field.shape {
                Shape::One => self.elem(field.ty, depth),
                Shape::List => {
                    let items: Vec<Value> = (0..1 + self.below(2))
                        .filter_map(|_| self.elem(field.ty, depth))
                        .collect();
                    (!items.is_empty()).then_some(Value::Array(items))
                }
                Shape::Map => {
                    let mut map = Map::new();
                    for _ in 0..1 + self.below(3) {
                        let key = self.string();
                        if let Some(v) = self.elem(field.ty, depth) {
                            map.insert(key, v);
                        }
                    }
                    Some(Value::Object(map))
                }
            };
            if let Some(v) = value {
                out.insert(field.json.to_string(), v);
            }
        }
        out
    }
}

fn generated(seed: u64, kind_index: usize) -> Value {
    let (api_version, kind, msg) = KINDS[kind_index % KINDS.len()];
    let mut g = Gen(seed | 1);
    let mut obj = g.message(msg, 0);
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    Value::Object(obj)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]
    #[test]
    fn json_protobuf_json_is_identity(seed in any::<u64>(), kind in 0usize..64) {
        let obj = generated(seed, kind);
        let n = normalize(&obj).unwrap();
        prop_assert_eq!(&normalize(&n).unwrap(), &n);
        let proto = encode(&n, MediaType::Protobuf).unwrap();
        prop_assert_eq!(&decode(&proto).unwrap(), &n);
        prop_assert_eq!(encode(&decode(&proto).unwrap(), MediaType::Protobuf).unwrap(), proto);
        let stored = encode(&n, MediaType::Json).unwrap();
        prop_assert_eq!(&decode(&stored).unwrap(), &n);
        // JSON storage is the Go encoding of the normalized object plus Encode's newline.
        let mut go = atrest_core::storage::to_go_json(&n);
        go.push(b'\n');
        prop_assert_eq!(stored, go);
        // YAML storage decodes back to the same object.
        let yaml = encode(&n, MediaType::Yaml).unwrap();
        prop_assert_eq!(&decode(&yaml).unwrap(), &n, "{}", String::from_utf8_lossy(&yaml));
    }

    #[test]
    fn arbitrary_json_never_panics(seed in any::<u64>(), kind in 0usize..64, cut in 0usize..400) {
        // Truncated or type-confused JSON must give an error, never a panic.
        let obj = generated(seed, kind);
        let text = serde_json::to_vec(&obj).unwrap();
        let _ = decode(&text[..cut.min(text.len())]);
        let mut confused = obj.clone();
        if let Some(map) = confused.as_object_mut() {
            for v in map.values_mut() {
                if v.is_object() { *v = json!([1, "x"]); }
            }
        }
        let _ = encode(&confused, MediaType::Protobuf);
    }
}

#[test]
fn every_kind_is_generated_and_covered() {
    assert!(KINDS.len() >= 15, "{}", KINDS.len());
    for i in 0..KINDS.len() {
        let obj = generated(0x9e37_79b9_7f4a_7c15 + i as u64, i);
        let n = normalize(&obj).unwrap();
        assert_eq!(
            decode(&encode(&n, MediaType::Protobuf).unwrap()).unwrap(),
            n
        );
    }
}

#[test]
fn generated_objects_are_substantial() {
    // Guard against a generator that silently produces near-empty objects.
    let pod = KINDS.iter().position(|(_, k, _)| *k == "Pod").unwrap();
    let sizes: Vec<usize> = (0..20u64)
        .map(|s| {
            encode(
                &normalize(&generated(s * 7919 + 1, pod)).unwrap(),
                MediaType::Protobuf,
            )
            .unwrap()
            .len()
        })
        .collect();
    assert!(
        sizes.iter().filter(|&&n| n > 500).count() >= 10,
        "{sizes:?}"
    );
}
