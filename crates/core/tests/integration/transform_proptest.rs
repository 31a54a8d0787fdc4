//! Property tests: no input makes the transformers or the value classifier panic; writes always read back.

use atrest_core::config::*;
use atrest_core::transform::*;
use proptest::prelude::*;
use std::sync::Arc;

const CONFIG: &str = "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aesgcm: {keys: [{name: g, secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=}]}
      - aescbc: {keys: [{name: c, secret: MDEyMzQ1Njc4OWFiY2RlZg==}]}
      - secretbox: {keys: [{name: s, secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=}]}
      - kms: {apiVersion: v2, name: k2, endpoint: 'unix:///k2.sock'}
      - kms: {name: k1, endpoint: 'unix:///k1.sock'}
      - identity: {}
";

fn transformers() -> EncryptionTransformers {
    let cfg = EncryptionConfiguration::from_text(CONFIG, "p.yaml").unwrap();
    EncryptionTransformers::from_config_with_kms(&cfg, |_| {
        Some(Arc::new(Base64EnvelopeService {
            key_id: "id".into(),
        }) as Arc<dyn EnvelopeService>)
    })
    .unwrap()
}

fn prefixed() -> impl Strategy<Value = Vec<u8>> {
    let prefixes = prop::sample::select(vec![
        "",
        "k8s\0",
        "{",
        "k8s:enc:",
        "k8s:enc:aesgcm:v1:g:",
        "k8s:enc:aescbc:v1:c:",
        "k8s:enc:secretbox:v1:s:",
        "k8s:enc:kms:v2:k2:",
        "k8s:enc:kms:v1:k1:",
        "k8s:enc:kms:v1:k1:\x00\x04TUFBQQ==",
        "k8s:enc:aesgcm:v1:",
        "k8s:enc:kms:v2:",
    ]);
    (prefixes, prop::collection::vec(any::<u8>(), 0..200)).prop_map(|(p, rest)| {
        let mut v = p.as_bytes().to_vec();
        v.extend(rest);
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn reading_arbitrary_values_never_panics(value in prefixed(), ad in prop::collection::vec(any::<u8>(), 0..40)) {
        let t = transformers();
        let s = t.for_resource(&GroupResource::core("secrets"));
        let _ = s.read(&value, &ad);
        let _ = classify(&value);
        let _ = KmsV2Transformer::parse(&value);
        let _ = split_kms_v1(&value);
        let _ = PrefixTransformers::identity().read(&value, &ad);
    }

    #[test]
    fn writes_read_back(plain in prop::collection::vec(any::<u8>(), 0..300), ad in prop::collection::vec(any::<u8>(), 0..40)) {
        let t = transformers();
        let s = t.for_resource(&GroupResource::core("secrets"));
        let stored = s.write(&plain, &ad).unwrap();
        let out = s.read(&stored, &ad).unwrap();
        prop_assert_eq!(out.plaintext, plain);
        prop_assert!(!out.stale);
    }
}
