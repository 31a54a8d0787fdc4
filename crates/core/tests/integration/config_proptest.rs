//! Property tests: no input makes the configuration parser panic; written YAML always reads back unchanged.

use atrest_core::config::*;
use proptest::prelude::*;

const CONFIG: &str = include_str!("../fixtures/encryption-config/valid/all-providers.yaml");

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn config_parser_never_panics(text in "\\PC{0,300}") {
        let _ = EncryptionConfiguration::from_text(&text, "p.yaml");
        let _ = GoDuration::parse(&text);
    }

    #[test]
    fn config_parser_never_panics_on_mutated_configs(pos in 0usize..600, junk in "[ :\\-\\[\\]{}#'\"\\n\\ta-z0-9*&!|>%@`]{1,6}") {
        let mut text = CONFIG.to_owned();
        let pos = pos.min(text.len());
        let pos = (0..=pos).rev().find(|p| text.is_char_boundary(*p)).unwrap_or(0);
        text.insert_str(pos, &junk);
        let _ = EncryptionConfiguration::from_text(&text, "p.yaml");
    }

    #[test]
    fn yaml_output_reads_back(
        names in prop::collection::vec("\\PC{1,12}", 1..4),
        resources in prop::collection::vec("[a-z*.]{1,12}", 1..3),
        endpoint in "\\PC{0,20}",
        timeout in any::<i32>(),
    ) {
        let keys = names.iter().enumerate().map(|(i, n)| Key { name: n.clone(), secret: KeySecret::from_bytes(&[i as u8; 32]) }).collect();
        let cfg = EncryptionConfiguration {
            kind: ConfigKind::EncryptionConfiguration,
            resources: vec![ResourceConfiguration {
                resources,
                providers: vec![
                    ProviderConfiguration::Secretbox(KeysConfiguration { keys }),
                    ProviderConfiguration::Kms(KmsConfiguration {
                        api_version: Some("v2".into()),
                        name: names[0].clone(),
                        cachesize: None,
                        endpoint,
                        timeout: Some(GoDuration { nanos: i64::from(timeout) * 1000 }),
                    }),
                    ProviderConfiguration::Identity,
                ],
            }],
        };
        let yaml = cfg.to_yaml();
        let parsed = ParsedConfig::decode(&yaml, "out.yaml").map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
        prop_assert_eq!(parsed.config, cfg);
    }
}
