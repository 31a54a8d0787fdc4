//! Prefix transformers built from configurations: round trips, read order, stale flags and failures.

use atrest_core::config::*;
use atrest_core::transform::*;

const AD: &[u8] = b"/registry/secrets/default/s1";
const PLAIN: &[u8] = b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret plaintext body";

fn key(name: &str, byte: u8, len: usize) -> Key {
    Key {
        name: name.into(),
        secret: KeySecret::from_bytes(&vec![byte; len]),
    }
}

fn keys(list: Vec<Key>) -> KeysConfiguration {
    KeysConfiguration { keys: list }
}

fn set(providers: Vec<ProviderConfiguration>) -> PrefixTransformers {
    let cfg = EncryptionConfiguration {
        kind: ConfigKind::EncryptionConfiguration,
        resources: vec![ResourceConfiguration {
            resources: vec!["secrets".into()],
            providers,
        }],
    };
    cfg.validate().unwrap();
    EncryptionTransformers::from_config(&cfg)
        .unwrap()
        .for_resource(&GroupResource::core("secrets"))
        .clone()
}

/// One single-key set per key provider and key size, with the prefix its writes must carry.
fn all_key_providers() -> Vec<(ProviderConfiguration, String)> {
    [
        ("aesgcm", "g1", 1, 32),
        ("aesgcm", "g16", 2, 16),
        ("aesgcm", "g24", 3, 24),
        ("aescbc", "c1", 4, 32),
        ("aescbc", "c16", 5, 16),
        ("secretbox", "s1", 6, 32),
    ]
    .into_iter()
    .map(|(provider, name, byte, len)| {
        let k = keys(vec![key(name, byte, len)]);
        let p = match provider {
            "aesgcm" => ProviderConfiguration::Aesgcm(k),
            "aescbc" => ProviderConfiguration::Aescbc(k),
            _ => ProviderConfiguration::Secretbox(k),
        };
        (p, format!("k8s:enc:{provider}:v1:{name}:"))
    })
    .collect()
}

#[test]
fn round_trip_every_provider() {
    for (p, prefix) in all_key_providers() {
        let kind = p.kind();
        let t = set(vec![p]);
        for plain in [&b""[..], b"x", PLAIN, &[0u8; 4096][..]] {
            let stored = t.write(plain, AD).unwrap();
            assert!(stored.starts_with(prefix.as_bytes()), "{prefix}");
            assert_ne!(&stored[prefix.len()..], plain);
            let c = classify(&stored);
            assert_eq!(c.storage.as_str(), kind.as_str());
            assert_eq!(
                Some(c.key_name.as_deref().unwrap()),
                prefix.split(':').nth(4)
            );
            let out = t.read(&stored, AD).unwrap();
            assert_eq!(out.plaintext, plain);
            assert_eq!(out.provider, kind);
            assert_eq!((out.provider_index, out.key_index), (0, Some(0)));
            assert!(!out.stale);
            // two writes differ (random IV/nonce)
            assert_ne!(t.write(plain, AD).unwrap(), stored);
        }
    }
    // identity
    let t = set(vec![ProviderConfiguration::Identity]);
    assert_eq!(t.write(PLAIN, AD).unwrap(), PLAIN);
    let out = t.read(PLAIN, AD).unwrap();
    assert_eq!(
        (out.provider, out.stale, out.key_name),
        (ProviderKind::Identity, false, None)
    );
}

#[test]
fn tampered_wrong_key_and_wrong_ad() {
    for (p, prefix) in all_key_providers() {
        let kind = p.kind();
        let t = set(vec![p.clone()]);
        let stored = t.write(PLAIN, AD).unwrap();
        // Tampering with the ciphertext: AEADs (gcm, secretbox) always fail. CBC has no MAC: a flipped last
        // byte fails the padding check except with probability ~1/256, and never yields the plaintext.
        let mut bad = stored.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x01;
        match t.read(&bad, AD) {
            Err(err) => {
                assert!(matches!(err, TransformError::Key { .. }), "{prefix}: {err}");
                assert!(err.to_string().contains(kind.as_str()), "{err}");
            }
            Ok(o) => {
                assert_eq!(
                    kind,
                    ProviderKind::Aescbc,
                    "{prefix}: tampering not detected"
                );
                assert_ne!(o.plaintext, PLAIN);
            }
        }
        // A padding byte of 0 is always rejected (upstream check), named with provider and key.
        if prefix == "k8s:enc:aescbc:v1:c1:" {
            let c = AescbcTransformer::new(&[4u8; 32]).unwrap();
            let mut block = vec![1u8; 15];
            block.push(0);
            // Encrypt a block whose last byte is 0 without padding: take the first block of a padded encryption.
            let enc = c.encrypt_with_iv(&block, &[0u8; 16]);
            let mut v = prefix.as_bytes().to_vec();
            v.extend_from_slice(&enc[..32]);
            let err = t.read(&v, AD).unwrap_err();
            assert!(err.to_string().contains("invalid padding"), "{err}");
            assert!(err.to_string().contains("aescbc key \"c"), "{err}");
        }
        // Truncated values fail cleanly.
        assert!(t.read(&stored[..prefix.len() + 3], AD).is_err());
        // Same key name, different key material.
        let other = match p {
            ProviderConfiguration::Aesgcm(k) => {
                ProviderConfiguration::Aesgcm(keys(vec![key(&k.keys[0].name, 0x77, 32)]))
            }
            ProviderConfiguration::Aescbc(k) => {
                ProviderConfiguration::Aescbc(keys(vec![key(&k.keys[0].name, 0x77, 32)]))
            }
            ProviderConfiguration::Secretbox(k) => {
                ProviderConfiguration::Secretbox(keys(vec![key(&k.keys[0].name, 0x77, 32)]))
            }
            _ => unreachable!(),
        };
        let wrong = set(vec![other]);
        let r = wrong.read(&stored, AD);
        if kind == ProviderKind::Aescbc {
            // CBC has no MAC: a wrong key yields garbage or a padding error, never the plaintext.
            if let Ok(o) = r {
                assert_ne!(o.plaintext, PLAIN);
            }
        } else {
            let err = r.unwrap_err();
            assert!(err.to_string().contains("authentication failed"), "{err}");
        }
        // Moving the value to another etcd key: GCM binds the AD, CBC and secretbox do not.
        let moved = t.read(&stored, b"/registry/secrets/default/other");
        match kind {
            ProviderKind::Aesgcm => assert!(moved.is_err()),
            _ => assert_eq!(moved.unwrap().plaintext, PLAIN),
        }
    }
}

#[test]
fn read_order_and_stale_flags() {
    let gcm = ProviderConfiguration::Aesgcm(keys(vec![key("new", 1, 32), key("old", 2, 32)]));
    let cbc = ProviderConfiguration::Aescbc(keys(vec![key("cbc", 3, 32)]));
    let old_only = set(vec![ProviderConfiguration::Aesgcm(keys(vec![key(
        "old", 2, 32,
    )]))]);
    let cbc_only = set(vec![cbc.clone()]);
    let t = set(vec![
        gcm.clone(),
        cbc.clone(),
        ProviderConfiguration::Identity,
    ]);

    let fresh = t.write(PLAIN, AD).unwrap();
    assert!(fresh.starts_with(b"k8s:enc:aesgcm:v1:new:"));
    let o = t.read(&fresh, AD).unwrap();
    assert_eq!((o.key_name.as_deref(), o.stale), (Some("new"), false));

    // second key of the first provider: stale
    let o = t.read(&old_only.write(PLAIN, AD).unwrap(), AD).unwrap();
    assert_eq!(
        (
            o.provider_index,
            o.key_index,
            o.key_name.as_deref(),
            o.stale
        ),
        (0, Some(1), Some("old"), true)
    );
    // second provider: stale
    let o = t.read(&cbc_only.write(PLAIN, AD).unwrap(), AD).unwrap();
    assert_eq!(
        (o.provider, o.provider_index, o.stale),
        (ProviderKind::Aescbc, 1, true)
    );
    // identity last: plaintext readable, stale
    let o = t.read(PLAIN, AD).unwrap();
    assert_eq!(
        (o.provider, o.provider_index, o.stale),
        (ProviderKind::Identity, 2, true)
    );

    // identity first (decrypt-all migration): identity steps aside on encrypted data.
    let id_first = set(vec![ProviderConfiguration::Identity, gcm.clone()]);
    assert_eq!(id_first.write(PLAIN, AD).unwrap(), PLAIN);
    let o = id_first.read(&fresh, AD).unwrap();
    assert_eq!(
        (o.provider, o.provider_index, o.stale),
        (ProviderKind::Aesgcm, 1, true)
    );
    let o = id_first.read(PLAIN, AD).unwrap();
    assert_eq!((o.provider, o.stale), (ProviderKind::Identity, false));

    // Encrypted data with only identity configured: the apiserver's error, plus what the value is.
    let only_id = PrefixTransformers::identity();
    let err = only_id.read(&fresh, AD).unwrap_err();
    assert!(matches!(err, TransformError::IdentityReadEncrypted { .. }));
    assert!(
        err.to_string()
            .contains("identity transformer tried to read encrypted data")
    );
    assert!(err.to_string().contains("aesgcm key \"new\""), "{err}");

    // Encrypted with a provider that is not configured.
    let gcm_only = set(vec![gcm]);
    let err = gcm_only
        .read(&cbc_only.write(PLAIN, AD).unwrap(), AD)
        .unwrap_err();
    assert!(
        matches!(err, TransformError::NoMatchingPrefix { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("aescbc key \"cbc\""), "{err}");
    let err = gcm_only.read(PLAIN, AD).unwrap_err();
    assert!(
        err.to_string().contains("no matching prefix found"),
        "{err}"
    );

    // Unknown key name within a configured provider.
    let other_key = set(vec![ProviderConfiguration::Aesgcm(keys(vec![key(
        "zzz", 9, 32,
    )]))]);
    let err = gcm_only
        .read(&other_key.write(PLAIN, AD).unwrap(), AD)
        .unwrap_err();
    match &err {
        TransformError::NoMatchingKey {
            provider,
            key_name,
            configured,
        } => {
            assert_eq!(*provider, ProviderKind::Aesgcm);
            assert_eq!(key_name, "zzz");
            assert_eq!(configured, &["new".to_string(), "old".to_string()]);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn uncovered_resources_use_identity_and_wildcards_apply() {
    let cfg = EncryptionConfiguration::from_text(
        "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [events]
    providers: [identity: {}]
  - resources: ['*.apps']
    providers:
      - secretbox: {keys: [{name: apps, secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=}]}
  - resources: ['*.']
    providers:
      - aesgcm: {keys: [{name: core, secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=}]}
",
        "w.yaml",
    )
    .unwrap();
    let t = EncryptionTransformers::from_config(&cfg).unwrap();
    let name = |gr: GroupResource| {
        t.for_resource(&gr)
            .write_provider()
            .and_then(|p| p.write_key_name().map(str::to_owned))
    };
    assert_eq!(
        name(GroupResource::core("secrets")).as_deref(),
        Some("core")
    );
    assert_eq!(name(GroupResource::core("events")), None);
    assert_eq!(
        name(GroupResource::new("apps", "deployments")).as_deref(),
        Some("apps")
    );
    assert_eq!(
        t.for_resource(&GroupResource::new("batch", "jobs"))
            .write_provider()
            .unwrap()
            .kind(),
        ProviderKind::Identity
    );
    assert_eq!(
        t.for_resource(&GroupResource::new("batch", "jobs"))
            .write(PLAIN, AD)
            .unwrap(),
        PLAIN
    );
}

#[test]
fn kms_v1_envelope_round_trip_and_cbc_fallback() {
    use std::sync::Arc;
    let cfg = EncryptionConfiguration::from_text(
        "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms: {name: v1p, endpoint: 'unix:///tmp/v1.sock'}
",
        "kms1.yaml",
    )
    .unwrap();
    let svc: Arc<dyn EnvelopeService> = Arc::new(Base64EnvelopeService { key_id: "k".into() });
    let t = EncryptionTransformers::from_config_with_kms(&cfg, |_| Some(svc.clone())).unwrap();
    let s = t.for_resource(&GroupResource::core("secrets"));
    let stored = s.write(PLAIN, AD).unwrap();
    assert!(stored.starts_with(b"k8s:enc:kms:v1:v1p:"));
    let c = classify(&stored);
    assert_eq!(
        (c.storage, c.key_name.as_deref(), c.problem.as_deref()),
        (StorageKind::Kms, Some("v1p"), None)
    );
    let o = s.read(&stored, AD).unwrap();
    assert_eq!(
        (o.plaintext.as_slice(), o.stale, o.kms_version),
        (PLAIN, false, Some("v1"))
    );
    assert!(s.read(&stored, b"/elsewhere").is_err());

    // A ≤1.24 value: AES-CBC with the DEK; readable and stale.
    use base64::Engine;
    let dek = [7u8; 32];
    let wrapped = base64::engine::general_purpose::STANDARD.encode(dek);
    let cbc = AescbcTransformer::new(&dek)
        .unwrap()
        .encrypt_with_iv(PLAIN, &[3u8; 16]);
    let mut old = b"k8s:enc:kms:v1:v1p:".to_vec();
    old.extend_from_slice(&(wrapped.len() as u16).to_be_bytes());
    old.extend_from_slice(wrapped.as_bytes());
    old.extend_from_slice(&cbc);
    let o = s.read(&old, AD).unwrap();
    assert_eq!((o.plaintext.as_slice(), o.stale), (PLAIN, true));

    // Without a plugin: a clear error naming the provider.
    let no_plugin = EncryptionTransformers::from_config(&cfg).unwrap();
    let err = no_plugin
        .for_resource(&GroupResource::core("secrets"))
        .read(&stored, AD)
        .unwrap_err();
    assert!(err.to_string().contains("kms v1 provider \"v1p\""), "{err}");
    assert!(
        no_plugin
            .for_resource(&GroupResource::core("secrets"))
            .write(PLAIN, AD)
            .is_err()
    );
}

#[test]
fn classifier_without_keys() {
    let c = classify(PLAIN);
    assert_eq!(
        (c.storage, c.encoding),
        (StorageKind::Identity, Some(Encoding::Protobuf))
    );
    let c = classify(b"  {\"kind\":\"Secret\"}");
    assert_eq!(
        (c.storage, c.encoding),
        (StorageKind::Identity, Some(Encoding::Json))
    );
    let c = classify(b"garbage");
    assert_eq!(c.storage, StorageKind::Unknown);
    assert!(c.problem.unwrap().contains("neither"));
    let c = classify(b"");
    assert_eq!(c.storage, StorageKind::Unknown);
    let c = classify(b"k8s:enc:rot13:v1:key:xxx");
    assert_eq!(c.storage, StorageKind::Unknown);
    assert!(c.problem.as_deref().unwrap().contains("\"rot13\""), "{c:?}");
    let c = classify(b"k8s:enc:aesgcm:v1:no-colon-here");
    assert_eq!(c.storage, StorageKind::Unknown);
    let c = classify(b"k8s:enc:secretbox:v1:key1:\x00\x01");
    assert_eq!(
        (c.storage, c.key_name.as_deref()),
        (StorageKind::Secretbox, Some("key1"))
    );
    assert_eq!(c.describe(), "secretbox key \"key1\"");
    let c = classify(b"k8s:enc:kms:v2:p:\xff\xff");
    assert_eq!(
        (c.storage, c.key_name.as_deref()),
        (StorageKind::Kmsv2, Some("p"))
    );
    assert!(c.problem.is_some());
    for (k, s) in [
        (StorageKind::Identity, "identity"),
        (StorageKind::Aescbc, "aescbc"),
        (StorageKind::Aesgcm, "aesgcm"),
        (StorageKind::Secretbox, "secretbox"),
        (StorageKind::Kms, "kms"),
        (StorageKind::Kmsv2, "kmsv2"),
        (StorageKind::Unknown, "unknown"),
    ] {
        assert_eq!(k.as_str(), s);
    }
}

#[test]
fn key_material_never_in_debug_output() {
    let k = Key::generate("k1", ProviderKind::Aesgcm).unwrap();
    let b64 = k.secret.expose_base64().to_owned();
    assert_eq!(k.secret.decode().unwrap().len(), 32);
    let cfg = EncryptionConfiguration {
        kind: ConfigKind::EncryptionConfiguration,
        resources: vec![ResourceConfiguration {
            resources: vec!["secrets".into()],
            providers: vec![ProviderConfiguration::Aesgcm(keys(vec![k.clone()]))],
        }],
    };
    assert!(!format!("{cfg:?}").contains(&b64));
    assert!(format!("{cfg:?}").contains("<redacted>"));
    assert!(!cfg.to_redacted_yaml().contains(&b64));
    assert!(cfg.to_yaml().contains(&b64));
    let o = set(cfg.resources[0].providers.clone())
        .read(
            &set(cfg.resources[0].providers.clone())
                .write(b"top secret", AD)
                .unwrap(),
            AD,
        )
        .unwrap();
    assert!(!format!("{o:?}").contains("top secret"));
    // Fresh keys differ; sizes per provider; no keys for identity/kms.
    assert_ne!(
        Key::generate("a", ProviderKind::Secretbox).unwrap().secret,
        Key::generate("a", ProviderKind::Secretbox).unwrap().secret
    );
    assert_eq!(
        Key::generate_with_len("x", 16)
            .unwrap()
            .secret
            .decode()
            .unwrap()
            .len(),
        16
    );
    assert!(Key::generate("x", ProviderKind::Identity).is_err());
    assert!(Key::generate("x", ProviderKind::Kms).is_err());
}

#[test]
fn transformers_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<EncryptionTransformers>();
    assert_send_sync::<PrefixTransformers>();
    // Concurrent writes and reads through one set (as the sandbox API server does).
    let t = std::sync::Arc::new(set(vec![ProviderConfiguration::Secretbox(keys(vec![
        key("s", 1, 32),
    ]))]));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let t = t.clone();
            std::thread::spawn(move || {
                let ad = format!("/registry/secrets/ns/{i}");
                for _ in 0..50 {
                    let w = t.write(PLAIN, ad.as_bytes()).unwrap();
                    assert_eq!(t.read(&w, ad.as_bytes()).unwrap().plaintext, PLAIN);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
