//! YAML writer for `EncryptionConfiguration`, in the layout of the Kubernetes docs.

use super::{ConfigKind, EncryptionConfiguration, KmsConfiguration, ProviderConfiguration};
use std::fmt::Write;

/// Renders the configuration; with `redact`, each `secret` is written as `<redacted>`.
pub(super) fn to_yaml(c: &EncryptionConfiguration, redact: bool) -> String {
    let mut out = String::new();
    match c.kind {
        ConfigKind::EncryptionConfiguration => {
            out.push_str("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n")
        }
        ConfigKind::LegacyEncryptionConfig => {
            out.push_str("apiVersion: v1\nkind: EncryptionConfig\n")
        }
    }
    if c.resources.is_empty() {
        out.push_str("resources: []\n");
        return out;
    }
    out.push_str("resources:\n");
    for rc in &c.resources {
        if rc.resources.is_empty() {
            out.push_str("  - resources: []\n");
        } else {
            out.push_str("  - resources:\n");
            for r in &rc.resources {
                let _ = writeln!(out, "      - {}", scalar(r));
            }
        }
        if rc.providers.is_empty() {
            out.push_str("    providers: []\n");
            continue;
        }
        out.push_str("    providers:\n");
        for p in &rc.providers {
            match p {
                ProviderConfiguration::Identity => out.push_str("      - identity: {}\n"),
                ProviderConfiguration::Kms(k) => write_kms(&mut out, k),
                ProviderConfiguration::Aesgcm(k)
                | ProviderConfiguration::Aescbc(k)
                | ProviderConfiguration::Secretbox(k) => {
                    let _ = writeln!(out, "      - {}:", p.kind().as_str());
                    if k.keys.is_empty() {
                        out.push_str("          keys: []\n");
                        continue;
                    }
                    out.push_str("          keys:\n");
                    for key in &k.keys {
                        let _ = writeln!(out, "            - name: {}", scalar(&key.name));
                        let secret = if redact {
                            "<redacted>".to_owned()
                        } else {
                            scalar(key.secret.expose_base64())
                        };
                        let _ = writeln!(out, "              secret: {secret}");
                    }
                }
            }
        }
    }
    out
}

fn write_kms(out: &mut String, k: &KmsConfiguration) {
    out.push_str("      - kms:\n");
    if let Some(v) = &k.api_version {
        let _ = writeln!(out, "          apiVersion: {}", scalar(v));
    }
    let _ = writeln!(out, "          name: {}", scalar(&k.name));
    let _ = writeln!(out, "          endpoint: {}", scalar(&k.endpoint));
    if let Some(c) = k.cachesize {
        let _ = writeln!(out, "          cachesize: {c}");
    }
    if let Some(t) = k.timeout {
        let _ = writeln!(out, "          timeout: {}", scalar(&t.to_string()));
    }
}

/// A YAML scalar that reads back as exactly this string: plain when unambiguous, else double-quoted
/// (JSON string syntax is valid YAML double-quoted syntax).
pub(super) fn scalar(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
    }
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphanumeric() || first == '/') {
        return false;
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '+' | '=' | ':' | '-'))
    {
        return false;
    }
    if s.ends_with(':') || s.contains(": ") {
        return false;
    }
    // Anything a YAML 1.1 or 1.2 reader might take for a bool, null or number stays quoted.
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~" | ".inf" | ".nan"
    ) {
        return false;
    }
    let numeric_like = s.chars().all(|c| {
        c.is_ascii_digit() || matches!(c, '.' | '_' | '+' | '-' | ':' | 'e' | 'E' | 'x' | 'o' | 'b')
    }) && s.chars().any(|c| c.is_ascii_digit());
    !numeric_like && !s.starts_with("0x") && !s.starts_with("0o")
}
