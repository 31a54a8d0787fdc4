//! Strict decoding of the configuration document, like the apiserver's strict codec
//! (`serializer.NewCodecFactory(configScheme, serializer.EnableStrict)` in
//! kubernetes/apiserver `pkg/server/options/encryptionconfig/config.go`): unknown fields, duplicate fields and
//! wrong value types are errors, and so is an unknown apiVersion/kind.

use super::node::{self, Node, Value};
use super::{
    ConfigError, ConfigKind, EncryptionConfiguration, FieldProblem, GoDuration, Key, KeySecret,
    KeysConfiguration, KmsConfiguration, ParsedConfig, ProviderConfiguration,
    ResourceConfiguration,
};
use std::collections::HashMap;

pub(super) fn decode(text: &str, origin: &str) -> Result<ParsedConfig, ConfigError> {
    if text.trim().is_empty() || is_only_comments(text) {
        return Err(ConfigError::Empty {
            origin: origin.to_owned(),
        });
    }
    let root = parse_tree(text, origin)?;
    let mut d = Decoder {
        problems: Vec::new(),
        positions: HashMap::new(),
    };
    let config = d.document(&root);
    if !d.problems.is_empty() {
        return Err(ConfigError::Invalid {
            origin: origin.to_owned(),
            problems: d.problems,
        });
    }
    Ok(ParsedConfig {
        config: config.unwrap_or_default(),
        origin: origin.to_owned(),
        positions: d.positions,
    })
}

fn is_only_comments(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

fn parse_tree(text: &str, origin: &str) -> Result<Node, ConfigError> {
    let mut opts = serde_saphyr::Options::default();
    // Never render source snippets: they could show key material.
    opts.with_snippet = false;
    opts.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    match serde_saphyr::from_str_with_options::<Node>(text, opts) {
        Ok(n) => Ok(n),
        Err(e) => {
            // JSON the YAML parser did not take (for example tab indentation): retry as JSON, without positions.
            if text.trim_start().starts_with('{')
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(text)
            {
                return Ok(node::from_json(v));
            }
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            Err(ConfigError::Syntax {
                origin: origin.to_owned(),
                line,
                column,
                message: syntax_message(&e.to_string()),
            })
        }
    }
}

/// The parser's message, first line only, without its own position suffix, with a hint on what to do.
fn syntax_message(s: &str) -> String {
    let mut m = s.lines().next().unwrap_or("").trim().to_owned();
    if let Some(i) = m.rfind(" at line ") {
        m.truncate(i);
    }
    if let Some(rest) = m.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest);
        return format!(
            "duplicate field {key:?} (fix: keep only one {key:?} in this mapping; the apiserver's strict decoding rejects duplicates)"
        );
    }
    format!(
        "{m} (fix: correct the YAML at this position; check indentation, list dashes and quoting)"
    )
}

struct Decoder {
    problems: Vec<FieldProblem>,
    positions: HashMap<String, (u64, u64)>,
}

/// A struct-like YAML mapping being decoded: its fields, checked against the allowed names.
struct Fields<'a> {
    entries: Vec<(&'a str, &'a Node)>,
}

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .filter(|v| !matches!(v.value, Value::Null))
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

impl Decoder {
    fn problem(&mut self, path: &str, node: Option<&Node>, message: String, hint: &str) {
        let (line, column) = node.map(|n| (n.line, n.column)).unwrap_or((0, 0));
        self.problems.push(FieldProblem {
            path: path.to_owned(),
            line,
            column,
            message,
            hint: hint.to_owned(),
        });
    }

    fn record(&mut self, path: &str, node: &Node) {
        if node.line > 0 {
            self.positions
                .entry(path.to_owned())
                .or_insert((node.line, node.column));
        }
    }

    /// Checks that `node` is a mapping whose keys are all in `allowed`; reports unknown fields.
    fn fields<'a>(
        &mut self,
        node: &'a Node,
        path: &str,
        what: &str,
        allowed: &[&str],
    ) -> Option<Fields<'a>> {
        self.record(path, node);
        let Value::Map(entries) = &node.value else {
            self.problem(
                path,
                Some(node),
                format!(
                    "expected {what} (a mapping), got {}",
                    node.value.type_name()
                ),
                "write this field as a YAML mapping (key: value lines)",
            );
            return None;
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let Value::Str(name) = &k.value else {
                self.problem(
                    path,
                    Some(k),
                    format!("field names must be strings, got {}", k.value.type_name()),
                    "quote the field name",
                );
                continue;
            };
            let fpath = join(path, name);
            if !allowed.contains(&name.as_str()) {
                let suggestion = allowed
                    .iter()
                    .find(|a| a.eq_ignore_ascii_case(name))
                    .map(|a| format!("did you mean {a:?}? "))
                    .unwrap_or_default();
                self.problem(
                    &fpath,
                    Some(k),
                    format!("strict decoding error: unknown field {fpath:?}"),
                    &format!(
                        "{suggestion}remove it; allowed fields in {what} are: {}",
                        allowed.join(", ")
                    ),
                );
                continue;
            }
            self.record(&fpath, k);
            out.push((name.as_str(), v));
        }
        Some(Fields { entries: out })
    }

    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        self.record(path, node);
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Null => Some(String::new()),
            other => {
                self.problem(
                    path,
                    Some(node),
                    format!("expected a string, got {}", other.type_name()),
                    "quote the value so YAML reads it as a string",
                );
                None
            }
        }
    }

    fn seq<'a>(&mut self, node: &'a Node, path: &str) -> Option<&'a [Node]> {
        self.record(path, node);
        match &node.value {
            Value::Seq(items) => Some(items),
            other => {
                self.problem(
                    path,
                    Some(node),
                    format!("expected a list, got {}", other.type_name()),
                    "write this field as a YAML list (lines starting with '- ')",
                );
                None
            }
        }
    }

    fn document(&mut self, root: &Node) -> Option<EncryptionConfiguration> {
        let f = self.fields(
            root,
            "",
            "an EncryptionConfiguration",
            &["apiVersion", "kind", "resources"],
        )?;
        let api_version = match f.get("apiVersion") {
            Some(n) => self.string(n, "apiVersion").unwrap_or_default(),
            None => String::new(),
        };
        let kind = match f.get("kind") {
            Some(n) => self.string(n, "kind").unwrap_or_default(),
            None => String::new(),
        };
        let config_kind = match (api_version.as_str(), kind.as_str()) {
            (super::API_VERSION, super::KIND) => Some(ConfigKind::EncryptionConfiguration),
            (super::LEGACY_API_VERSION, super::LEGACY_KIND) => {
                Some(ConfigKind::LegacyEncryptionConfig)
            }
            _ => {
                let (path, node) = if kind.is_empty() {
                    ("kind", f.get("kind").or(Some(root)))
                } else {
                    ("apiVersion", f.get("apiVersion").or(Some(root)))
                };
                let message = if kind.is_empty() {
                    "Object 'Kind' is missing".to_owned()
                } else if api_version.is_empty() {
                    "Object 'apiVersion' is missing".to_owned()
                } else {
                    format!("no kind {kind:?} is registered for version {api_version:?}")
                };
                self.problem(
                    path,
                    node,
                    message,
                    "start the file with 'apiVersion: apiserver.config.k8s.io/v1' and 'kind: EncryptionConfiguration'",
                );
                None
            }
        };
        let mut resources = Vec::new();
        if let Some(list) = f.get("resources").and_then(|n| self.seq(n, "resources")) {
            for (i, item) in list.iter().enumerate() {
                if let Some(rc) = self.resource_configuration(item, &format!("resources[{i}]")) {
                    resources.push(rc);
                }
            }
        }
        Some(EncryptionConfiguration {
            kind: config_kind?,
            resources,
        })
    }

    fn resource_configuration(&mut self, node: &Node, path: &str) -> Option<ResourceConfiguration> {
        let f = self.fields(
            node,
            path,
            "a resources[] entry",
            &["resources", "providers"],
        )?;
        let mut rc = ResourceConfiguration::default();
        let rpath = join(path, "resources");
        if let Some(list) = f.get("resources").and_then(|n| self.seq(n, &rpath)) {
            for (j, item) in list.iter().enumerate() {
                if let Some(s) = self.string(item, &format!("{rpath}[{j}]")) {
                    rc.resources.push(s);
                }
            }
        }
        let ppath = join(path, "providers");
        if let Some(list) = f.get("providers").and_then(|n| self.seq(n, &ppath)) {
            for (j, item) in list.iter().enumerate() {
                if let Some(p) = self.provider(item, &format!("{ppath}[{j}]")) {
                    rc.providers.push(p);
                }
            }
        }
        Some(rc)
    }

    fn provider(&mut self, node: &Node, path: &str) -> Option<ProviderConfiguration> {
        const NAMES: [&str; 5] = ["aesgcm", "aescbc", "secretbox", "identity", "kms"];
        let f = self.fields(node, path, "a providers[] element", &NAMES)?;
        let present: Vec<(&str, &Node)> = NAMES
            .iter()
            .filter_map(|n| f.get(n).map(|v| (*n, v)))
            .collect();
        match present.as_slice() {
            [] => {
                // validation_encryption.go validateSingleProvider
                self.problem(
                    path,
                    Some(node),
                    "Invalid value: provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity".into(),
                    "set exactly one of aesgcm, aescbc, secretbox, identity: {}, kms",
                );
                None
            }
            [(name, value)] => {
                let vpath = join(path, name);
                match *name {
                    "identity" => {
                        self.fields(value, &vpath, "identity", &[])?;
                        Some(ProviderConfiguration::Identity)
                    }
                    "kms" => self.kms(value, &vpath).map(ProviderConfiguration::Kms),
                    _ => {
                        let keys = self.keys_configuration(value, &vpath)?;
                        Some(match *name {
                            "aesgcm" => ProviderConfiguration::Aesgcm(keys),
                            "aescbc" => ProviderConfiguration::Aescbc(keys),
                            _ => ProviderConfiguration::Secretbox(keys),
                        })
                    }
                }
            }
            _ => {
                self.problem(
                    path,
                    Some(node),
                    format!("Invalid value: {}", super::validate::MORE_THAN_ONE),
                    "give each provider its own '- ' list element under providers",
                );
                None
            }
        }
    }

    fn keys_configuration(&mut self, node: &Node, path: &str) -> Option<KeysConfiguration> {
        let f = self.fields(node, path, "a key provider", &["keys"])?;
        let mut keys = Vec::new();
        let kpath = join(path, "keys");
        if let Some(list) = f.get("keys").and_then(|n| self.seq(n, &kpath)) {
            for (i, item) in list.iter().enumerate() {
                let ipath = format!("{kpath}[{i}]");
                let Some(kf) = self.fields(item, &ipath, "a key", &["name", "secret"]) else {
                    continue;
                };
                let name = kf
                    .get("name")
                    .and_then(|n| self.string(n, &join(&ipath, "name")))
                    .unwrap_or_default();
                let secret = match kf.get("secret") {
                    Some(n) => {
                        let spath = join(&ipath, "secret");
                        self.record(&spath, n);
                        match &n.value {
                            Value::Str(s) => s.clone(),
                            other => {
                                // Do not echo the value: it is key material.
                                self.problem(
                                    &spath,
                                    Some(n),
                                    format!("expected a base64 string, got {}", other.type_name()),
                                    "quote the secret so YAML reads it as a string",
                                );
                                String::new()
                            }
                        }
                    }
                    None => String::new(),
                };
                keys.push(Key {
                    name,
                    secret: KeySecret::from_base64(secret),
                });
            }
        }
        Some(KeysConfiguration { keys })
    }

    fn kms(&mut self, node: &Node, path: &str) -> Option<KmsConfiguration> {
        let f = self.fields(
            node,
            path,
            "kms",
            &["apiVersion", "name", "cachesize", "endpoint", "timeout"],
        )?;
        let mut k = KmsConfiguration::default();
        if let Some(n) = f.get("apiVersion") {
            k.api_version = self.string(n, &join(path, "apiVersion"));
        }
        if let Some(n) = f.get("name") {
            k.name = self.string(n, &join(path, "name")).unwrap_or_default();
        }
        if let Some(n) = f.get("endpoint") {
            k.endpoint = self.string(n, &join(path, "endpoint")).unwrap_or_default();
        }
        if let Some(n) = f.get("cachesize") {
            let cpath = join(path, "cachesize");
            self.record(&cpath, n);
            match &n.value {
                Value::Int(i) if i32::try_from(*i).is_ok() => k.cachesize = i32::try_from(*i).ok(),
                other => {
                    let shown = match other {
                        Value::Int(i) => format!("number {i} (out of int32 range)"),
                        o => o.type_name().to_owned(),
                    };
                    self.problem(
                        &cpath,
                        Some(n),
                        format!("expected an int32, got {shown}"),
                        "write cachesize as a whole number, e.g. 1000 (negative disables the cache)",
                    );
                }
            }
        }
        if let Some(n) = f.get("timeout") {
            let tpath = join(path, "timeout");
            self.record(&tpath, n);
            match &n.value {
                Value::Str(s) => match GoDuration::parse(s) {
                    Ok(d) => k.timeout = Some(d),
                    Err(e) => self.problem(
                        &tpath,
                        Some(n),
                        e,
                        "write a Go duration such as 3s, 500ms or 1m30s",
                    ),
                },
                other => self.problem(
                    &tpath,
                    Some(n),
                    format!("expected a duration string, got {}", other.type_name()),
                    "write a Go duration with a unit, such as 3s",
                ),
            }
        }
        Some(k)
    }
}
