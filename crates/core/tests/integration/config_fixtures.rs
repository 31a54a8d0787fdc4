//! EncryptionConfiguration parsing and validation against our fixtures (tests/fixtures/encryption-config).

use atrest_core::config::*;
use std::path::PathBuf;

use crate::support::{fixture_files, fixtures};

fn dir(sub: &str) -> PathBuf {
    fixtures("encryption-config").join(sub)
}

fn files(sub: &str) -> Vec<PathBuf> {
    fixture_files(&format!("encryption-config/{sub}"), None)
}

/// Every file in invalid/ fails with the message and path named in its header, at the marked line.
#[test]
fn invalid_fixtures_fail_with_apiserver_messages_at_the_right_place() {
    let all = files("invalid");
    assert!(
        all.len() >= 45,
        "expected one fixture per rule, got {}",
        all.len()
    );
    for path in all {
        let text = std::fs::read_to_string(&path).unwrap();
        let header = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("# {k}: ")).map(str::to_owned))
                .or_else(|| {
                    text.lines()
                        .any(|l| l == format!("# {k}:"))
                        .then(String::new)
                })
                .unwrap_or_else(|| panic!("{}: no '# {k}:' header", path.display()))
        };
        let want_path = header("expect-path");
        let want_msg = header("expect");
        let want_line = text
            .lines()
            .position(|l| l.ends_with("# <-- error"))
            .map(|i| i as u64 + 1)
            .unwrap_or_else(|| panic!("{}: no '# <-- error' marker", path.display()));
        let err = load(&path).expect_err(&path.display().to_string());
        let rendered = err.to_string();
        let problems = err.problems();
        let p = problems
            .iter()
            .find(|p| p.path == want_path)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no problem at {want_path:?}: {rendered}",
                    path.display()
                )
            });
        assert!(
            p.to_string().contains(&want_msg),
            "{}: {:?} does not contain {want_msg:?}",
            path.display(),
            p.to_string()
        );
        assert_eq!(p.line, want_line, "{}: {rendered}", path.display());
        assert!(p.column > 0, "{}: no column: {rendered}", path.display());
        assert!(!p.hint.is_empty(), "{}: no hint", path.display());
        // The rendered error names the file, line and path.
        let file = path.display().to_string();
        assert!(
            rendered.contains(&format!("{file}:{want_line}:")),
            "{rendered}"
        );
        assert!(rendered.contains(&want_path), "{rendered}");
    }
}

/// No error ever shows key material, even for secrets that fail validation.
#[test]
fn errors_never_show_secrets() {
    for path in files("invalid") {
        let text = std::fs::read_to_string(&path).unwrap();
        let err = load(&path).unwrap_err().to_string();
        for line in text.lines() {
            if let Some(v) = line.trim().strip_prefix("secret: ") {
                let v = v.trim_end_matches(" # <-- error");
                assert!(!err.contains(v), "{}: secret leaked: {err}", path.display());
            }
        }
    }
}

#[test]
fn valid_fixtures_load_and_round_trip_through_yaml() {
    for path in files("valid") {
        let cfg = load(&path).unwrap_or_else(|e| panic!("{e}"));
        let again = EncryptionConfiguration::from_text(&cfg.to_yaml(), "rewritten")
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), cfg.to_redacted_yaml()));
        assert_eq!(again, cfg, "{}", path.display());
    }
}

#[test]
fn upstream_fixtures() {
    // The upstream valid-configs and the jdcloud deployment load.
    for name in [
        "k8s-apiserver-legacy-EncryptionConfig-v1.yaml",
        "k8s-apiserver-kmsv2-first.yaml",
        "k8s-apiserver-kms-multiple-providers-mixed.yaml",
        "k8s-apiserver-aes-gcm-first.yaml",
        "jdcloud-k8s-kms-plugin-apiserver-encryption.yaml",
    ] {
        let cfg = load(&dir("upstream").join(name)).unwrap_or_else(|e| panic!("{e}"));
        let again = EncryptionConfiguration::from_text(&cfg.to_yaml(), "rewritten").unwrap();
        assert_eq!(again, cfg, "{name}");
    }
    let legacy = load(&dir(
        "upstream/k8s-apiserver-legacy-EncryptionConfig-v1.yaml",
    ))
    .unwrap();
    assert_eq!(legacy.kind, ConfigKind::LegacyEncryptionConfig);
    assert_eq!(legacy.resources[0].resources, ["secrets", "namespaces"]);
    let kinds: Vec<ProviderKind> = legacy.resources[0]
        .providers
        .iter()
        .map(|p| p.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            ProviderKind::Identity,
            ProviderKind::Aesgcm,
            ProviderKind::Kms,
            ProviderKind::Aescbc,
            ProviderKind::Secretbox
        ]
    );
    assert!(
        legacy
            .to_yaml()
            .starts_with("apiVersion: v1\nkind: EncryptionConfig\n")
    );

    let mixed = load(&dir(
        "upstream/k8s-apiserver-kms-multiple-providers-mixed.yaml",
    ))
    .unwrap();
    let ProviderConfiguration::Kms(foo) = &mixed.resources[0].providers[0] else {
        panic!()
    };
    assert!(foo.is_v2());
    assert_eq!(foo.effective_timeout(), GoDuration::from_secs(15));
    assert_eq!(foo.effective_cachesize(), None);
    let ProviderConfiguration::Kms(bar) = &mixed.resources[0].providers[1] else {
        panic!()
    };
    assert!(!bar.is_v2());
    assert_eq!(bar.effective_cachesize(), Some(1000));

    let jd = load(&dir(
        "upstream/jdcloud-k8s-kms-plugin-apiserver-encryption.yaml",
    ))
    .unwrap();
    let ProviderConfiguration::Kms(k) = &jd.resources[0].providers[0] else {
        panic!()
    };
    assert_eq!((k.name.as_str(), k.cachesize), ("myKmsPlugin", Some(100)));

    // The docs' wildcard example is rejected by the apiserver: two aescbc secrets have the wrong length.
    let path = dir("upstream/k8s-website-encrypt-data-wildcards.yaml");
    let err = load(&path).unwrap_err();
    let p = err.problems();
    assert_eq!(p.len(), 2, "{err}");
    assert_eq!(p[0].path, "resources[2].providers[0].aescbc.keys[0].secret");
    assert!(p[0].message.contains("got 28, expected one of [16 24 32]"));
    assert_eq!(p[0].line, 45);
    assert_eq!(p[1].path, "resources[3].providers[0].aescbc.keys[0].secret");
    assert!(p[1].message.contains("got 25, expected one of [16 24 32]"));
    assert_eq!(p[1].line, 52);
}

#[test]
fn json_form_with_tabs_loads() {
    let cfg = load(&dir("valid/json-form.json")).unwrap();
    assert_eq!(cfg.resources[0].providers[0].kind(), ProviderKind::Aesgcm);
    // JSON errors are still strict, with the field path.
    let err = EncryptionConfiguration::from_text(
        "{\"apiVersion\":\"apiserver.config.k8s.io/v1\",\"kind\":\"EncryptionConfiguration\",\"resources\":[],\"extra\":1}",
        "c.json",
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown field \"extra\""), "{err}");
}

#[test]
fn kms_v1_names_must_be_unique_only_on_reload() {
    let cfg = load(&dir("valid/kmsv1-duplicate-names.yaml")).unwrap();
    let err = cfg.validate_with_reload(true).unwrap_err();
    assert_eq!(err.problems()[0].path, "resources[0].providers[1].kms.name");
    assert!(
        err.problems()[0]
            .message
            .contains("duplicate KMS provider name same, names must be unique")
    );
}

#[test]
fn null_fields_take_defaults() {
    let cfg = load(&dir("valid/null-optional-fields.yaml")).unwrap();
    let ProviderConfiguration::Kms(k) = &cfg.resources[0].providers[0] else {
        panic!()
    };
    assert_eq!(k.effective_api_version(), "v1");
    assert_eq!(k.effective_timeout(), GoDuration::from_secs(3));
    assert_eq!(k.effective_cachesize(), Some(1000));
}

#[test]
fn empty_and_syntax_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("enc.yaml");
    std::fs::write(&empty, "").unwrap();
    let err = load(&empty).unwrap_err();
    assert!(matches!(err, ConfigError::Empty { .. }));
    assert!(err.to_string().contains("is empty"), "{err}");

    let missing = load(&tmp.path().join("nope.yaml")).unwrap_err();
    assert!(matches!(missing, ConfigError::Read { .. }), "{missing}");
    assert!(missing.to_string().contains("nope.yaml"));

    let bad = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets\n    providers: x\n";
    match EncryptionConfiguration::from_text(bad, "bad.yaml").unwrap_err() {
        ConfigError::Syntax { origin, line, .. } => {
            assert_eq!(origin, "bad.yaml");
            assert!(line >= 4, "line {line}");
        }
        other => panic!("{other}"),
    }

    let dup = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources: []\nresources: []\n";
    let err = EncryptionConfiguration::from_text(dup, "dup.yaml").unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { line: 4, .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("dup.yaml:4:1: not valid YAML or JSON: duplicate field \"resources\""),
        "{err}"
    );

    // Parser errors never echo key material.
    let unclosed = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - aescbc:\n          keys:\n            - name: k\n              secret: \"SECRETSECRETSECRET\n";
    let err = EncryptionConfiguration::from_text(unclosed, "u.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("u.yaml:9:23: not valid YAML or JSON: unclosed quote (fix:"),
        "{err}"
    );
    assert!(!err.contains("SECRETSECRET"), "{err}");
}

#[test]
fn lookup_follows_transformer_from_overrides() {
    let cfg = load(&dir("valid/wildcards-ordered.yaml")).unwrap();
    let first_key = |gr: GroupResource| {
        cfg.providers_for(&gr)
            .first()
            .and_then(|p| p.keys())
            .and_then(|k| k.first())
            .map(|k| k.name.clone())
    };
    assert_eq!(
        cfg.providers_for(&GroupResource::core("events"))[0].kind(),
        ProviderKind::Identity
    );
    for (gr, key) in [
        (GroupResource::core("secrets"), "key1"),
        (GroupResource::parse("deployments.apps"), "key2"),
        (GroupResource::core("configmaps"), "key3"),
        (GroupResource::parse("pandas.awesome.bears.example"), "key4"),
    ] {
        let what = format!("{gr:?}");
        assert_eq!(first_key(gr).as_deref(), Some(key), "{what}");
    }

    let twice = load(&dir("valid/same-resource-twice.yaml")).unwrap();
    let kinds: Vec<ProviderKind> = twice
        .providers_for(&GroupResource::core("secrets"))
        .iter()
        .map(|p| p.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            ProviderKind::Aesgcm,
            ProviderKind::Aescbc,
            ProviderKind::Identity
        ]
    );
    assert!(twice.providers_for(&GroupResource::core("pods")).is_empty());
    assert!(
        twice
            .write_provider_for(&GroupResource::core("pods"))
            .is_none()
    );
}

#[test]
fn group_resource_parsing() {
    assert_eq!(
        GroupResource::parse("secrets"),
        GroupResource::core("secrets")
    );
    assert_eq!(GroupResource::parse("*."), GroupResource::core("*"));
    assert_eq!(GroupResource::parse("*.*"), GroupResource::new("*", "*"));
    assert_eq!(
        GroupResource::parse("pandas.awesome.bears.example"),
        GroupResource::new("awesome.bears.example", "pandas")
    );
    assert_eq!(GroupResource::core("*").yaml_string(), "*.");
    assert_eq!(GroupResource::new("apps", "*").to_string(), "*.apps");
}

#[test]
fn parsed_config_positions_and_lint() {
    let text = "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - identity: {}
      - aescbc:
          keys:
            - name: a:b
              secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
            - name: a:b
              secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
      - kms:
          name: old
          endpoint: unix:///tmp/k.sock
";
    let parsed = ParsedConfig::decode(text, "lint.yaml").unwrap();
    parsed.validate().unwrap();
    let findings = parsed.lint();
    let at = |path: &str| {
        findings
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("{path}: {findings:?}"))
    };
    assert!(
        at("resources[0].providers[0]")
            .message
            .contains("plaintext")
    );
    assert_eq!(at("resources[0].providers[0]").line, 6);
    assert!(
        at("resources[0].providers[1].aescbc.keys[0].name")
            .message
            .contains("':'")
    );
    assert_eq!(at("resources[0].providers[1].aescbc.keys[0].name").line, 9);
    assert!(findings.iter().any(
        |f| f.path == "resources[0].providers[1].aescbc.keys[1].name"
            && f.message.contains("also used by keys[0]")
    ));
    assert!(
        at("resources[0].providers[1].aescbc.keys[1].secret")
            .message
            .contains("same secret")
    );
    assert!(
        at("resources[0].providers[2].kms.apiVersion")
            .message
            .contains("deprecated")
    );
    // A clean config has no findings.
    let clean = load(&dir("valid/wildcards-ordered.yaml")).unwrap();
    assert_eq!(clean.lint(), Vec::<LintFinding>::new());
}

#[test]
fn write_file_is_private_and_reads_back() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("enc.yaml");
    let mut cfg = load(&dir("valid/all-providers.yaml")).unwrap();
    cfg.write_file(&out).unwrap();
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(load(&out).unwrap(), cfg);
    // Rotation-style edit: a new first key; invalid configs are not written.
    let new_key = Key::generate("key-new", ProviderKind::Aesgcm).unwrap();
    cfg.resources[0].providers[0]
        .keys_mut()
        .unwrap()
        .insert(0, new_key);
    cfg.write_file(&out).unwrap();
    assert_eq!(
        load(&out).unwrap().resources[0].providers[0]
            .keys()
            .unwrap()[0]
            .name,
        "key-new"
    );
    cfg.resources[0].providers.clear();
    assert!(matches!(
        cfg.write_file(&out),
        Err(ConfigError::Invalid { .. })
    ));
    assert_eq!(load(&out).unwrap().resources[0].providers.len(), 6);
}
