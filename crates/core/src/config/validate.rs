//! The kube-apiserver's validation rules, with its messages, and atrest's stricter lint.
//!
//! Rules and message texts follow kubernetes/apiserver `pkg/apis/apiserver/validation/validation_encryption.go`
//! (`ValidateEncryptionConfiguration`) and the masking check in `pkg/server/options/encryptionconfig/config.go`
//! (`getTransformerOverridesAndKMSPluginProbes`). Messages use the `field.Error` body form
//! (`Required value: ...`, `Invalid value: <v>: ...`).

use super::{
    EncryptionConfiguration, FieldProblem, GroupResource, Key, KmsConfiguration,
    ProviderConfiguration,
};
use std::collections::{HashMap, HashSet};

pub(super) const MORE_THAN_ONE: &str = "more than one provider specified in a single element, should split into different list elements";
const BASE64_ERR: &str = "secrets must be base64 encoded";
const EVENTS_GROUP_ERR: &str = "'*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use 'events' instead in the config file";
const EXTENSIONS_GROUP_ERR: &str =
    "'extensions' group has been removed and cannot be used for encryption";
const STAR_RESOURCE_ERR: &str =
    "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources";
const OVERLAP_ERR: &str = "using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked";
const NON_REST_ERR: &str = "resources which do not have REST API/s cannot be encrypted";
const RESOURCE_NAME_ERR: &str = "resource name should not contain capital letters";
const ACROSS_GROUP_ERR: &str = "encrypting the same resource across groups is not supported";
const DUPLICATE_RESOURCE_ERR: &str = "the same resource cannot be specified multiple times";

fn required(path: String, detail: String, hint: &str) -> FieldProblem {
    FieldProblem {
        path,
        line: 0,
        column: 0,
        message: format!("Required value: {detail}"),
        hint: hint.to_owned(),
    }
}

fn invalid(path: String, value: &str, detail: &str, hint: &str) -> FieldProblem {
    FieldProblem {
        path,
        line: 0,
        column: 0,
        message: format!("Invalid value: {value}: {detail}"),
        hint: hint.to_owned(),
    }
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

fn go_string_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| quoted(s)).collect();
    format!("[]string{{{}}}", inner.join(", "))
}

fn fmt_sizes(sizes: &[usize]) -> String {
    let s: Vec<String> = sizes.iter().map(usize::to_string).collect();
    format!("[{}]", s.join(" "))
}

/// `ValidateEncryptionConfiguration(c, reload)` plus the masking check. Problems come in file order.
pub(super) fn validate(c: &EncryptionConfiguration, reload: bool) -> Vec<FieldProblem> {
    let mut errs = Vec::new();
    if c.resources.is_empty() {
        errs.push(required(
            "resources".into(),
            "at least one resources is required".into(),
            "add a resources entry, e.g. resources: [secrets] with providers",
        ));
        return errs;
    }
    let mut kms_names: HashSet<String> = HashSet::new();
    for (i, conf) in c.resources.iter().enumerate() {
        let r = format!("resources[{i}].resources");
        let p = format!("resources[{i}].providers");
        if conf.resources.is_empty() {
            errs.push(required(
                r.clone(),
                format!("at least one {r} is required"),
                "list the resources to encrypt, e.g. - secrets",
            ));
        }
        errs.extend(validate_resource_overlap(&conf.resources, &r));
        errs.extend(validate_resource_names(&conf.resources, &r));
        if conf.providers.is_empty() {
            errs.push(required(
                p.clone(),
                format!("at least one {p} is required"),
                "add providers, e.g. - aescbc: {keys: [...]} and - identity: {}",
            ));
        }
        for (j, provider) in conf.providers.iter().enumerate() {
            let path = format!("{p}[{j}]");
            match provider {
                ProviderConfiguration::Kms(k) => {
                    errs.extend(validate_kms(k, &format!("{path}.kms"), &kms_names, reload));
                    kms_names.insert(k.name.clone());
                }
                ProviderConfiguration::Aesgcm(k) => errs.extend(validate_keys(
                    &k.keys,
                    &format!("{path}.aesgcm.keys"),
                    &[16, 24, 32],
                )),
                ProviderConfiguration::Aescbc(k) => errs.extend(validate_keys(
                    &k.keys,
                    &format!("{path}.aescbc.keys"),
                    &[16, 24, 32],
                )),
                ProviderConfiguration::Secretbox(k) => errs.extend(validate_keys(
                    &k.keys,
                    &format!("{path}.secretbox.keys"),
                    &[32],
                )),
                ProviderConfiguration::Identity => {}
            }
        }
    }
    if errs.is_empty() {
        errs.extend(masking(c));
    }
    errs
}

/// `getTransformerOverridesAndKMSPluginProbes`: a resource listed after a `*.<group>` or `*.*` rule that
/// already covers it is rejected with `resource %q is masked by earlier rule %q` (checked in list order,
/// so `[configmaps, '*.', secrets]` masks `secrets` too).
fn masking(c: &EncryptionConfiguration) -> Vec<FieldProblem> {
    let mut seen: HashSet<GroupResource> = HashSet::new();
    for (i, conf) in c.resources.iter().enumerate() {
        for (j, res) in conf.resources.iter().enumerate() {
            let gr = GroupResource::parse(res);
            let any_in_group = GroupResource::new(gr.group.clone(), "*");
            let any = GroupResource::new("*", "*");
            for mask in [any_in_group, any] {
                if seen.contains(&mask) {
                    return vec![FieldProblem {
                        path: format!("resources[{i}].resources[{j}]"),
                        line: 0,
                        column: 0,
                        message: format!(
                            "resource {:?} is masked by earlier rule {:?}",
                            gr.yaml_string(),
                            mask.yaml_string()
                        ),
                        hint:
                            "move specific resources into entries placed before the wildcard entry"
                                .into(),
                    }];
                }
            }
            seen.insert(gr);
        }
    }
    Vec::new()
}

fn validate_resource_overlap(resources: &[String], path: &str) -> Vec<FieldProblem> {
    if resources.len() < 2 {
        return Vec::new();
    }
    let r: Vec<GroupResource> = resources.iter().map(|s| GroupResource::parse(s)).collect();
    let any = GroupResource::new("*", "*");
    let (mut has_overlap, mut has_duplicate) = (false, false);
    for (i, r1) in r.iter().enumerate() {
        for (j, r2) in r.iter().enumerate() {
            if i == j {
                continue;
            }
            if r1 == r2 && !has_duplicate {
                has_duplicate = true;
                continue;
            }
            if has_overlap {
                continue;
            }
            if *r1 == any {
                has_overlap = true;
                continue;
            }
            if r1.group != r2.group {
                continue;
            }
            if r1.resource == "*" || r2.resource == "*" {
                has_overlap = true;
            }
        }
    }
    let mut errs = Vec::new();
    let shown = go_string_list(resources);
    if has_duplicate {
        errs.push(invalid(
            path.to_owned(),
            &shown,
            DUPLICATE_RESOURCE_ERR,
            "list each resource once",
        ));
    }
    if has_overlap {
        errs.push(invalid(
            path.to_owned(),
            &shown,
            OVERLAP_ERR,
            "put the specific resources in their own entry before the wildcard entry",
        ));
    }
    errs
}

fn validate_resource_names(resources: &[String], path: &str) -> Vec<FieldProblem> {
    let mut errs = Vec::new();
    for (j, res) in resources.iter().enumerate() {
        let jj = format!("{path}[{j}]");
        let v = quoted(res);
        let gr = GroupResource::parse(res);
        let (detail, hint) = if res.to_lowercase() != *res {
            (
                RESOURCE_NAME_ERR,
                "write resource names in lower case, e.g. secrets",
            )
        } else if res == "*" {
            (STAR_RESOURCE_ERR, "write '*.' or '*.*' (quoted in YAML)")
        } else if matches!(
            res.as_str(),
            "apiserveripinfo" | "serviceipallocations" | "servicenodeportallocations"
        ) {
            (NON_REST_ERR, "remove this resource")
        } else if gr.group == "events.k8s.io" {
            (EVENTS_GROUP_ERR, "write 'events' instead")
        } else if gr.group == "extensions" {
            (
                EXTENSIONS_GROUP_ERR,
                "use the resource's current group (e.g. deployments.apps)",
            )
        } else if gr.group == "*" && gr.resource != "*" {
            (
                ACROSS_GROUP_ERR,
                "name the group explicitly, e.g. deployments.apps",
            )
        } else {
            continue;
        };
        errs.push(invalid(jj, &v, detail, hint));
    }
    errs
}

fn validate_keys(keys: &[Key], path: &str, sizes: &[usize]) -> Vec<FieldProblem> {
    if keys.is_empty() {
        return vec![required(
            path.to_owned(),
            "at least one keys is required".into(),
            "add a key: - name: key1, secret: <base64 of 32 random bytes>",
        )];
    }
    let mut errs = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let kp = format!("{path}[{i}]");
        if key.name.is_empty() {
            errs.push(required(
                format!("{kp}.name"),
                "name is a mandatory field for a key".into(),
                "give the key a name, e.g. key1",
            ));
        }
        if key.secret.is_empty() {
            errs.push(required(
                format!("{kp}.secret"),
                "secret is a mandatory field for a key".into(),
                "set secret to base64 of random key bytes (head -c 32 /dev/urandom | base64)",
            ));
            continue;
        }
        match key.secret.decode() {
            Err(_) => errs.push(invalid(
                format!("{kp}.secret"),
                "\"REDACTED\"",
                BASE64_ERR,
                "encode the key with standard padded base64 (head -c 32 /dev/urandom | base64), on one line",
            )),
            Ok(mut bytes) => {
                let n = bytes.len();
                bytes.fill(0);
                if !sizes.contains(&n) {
                    errs.push(invalid(
                        format!("{kp}.secret"),
                        "\"REDACTED\"",
                        &format!(
                            "secret is not of the expected length, got {n}, expected one of {}",
                            fmt_sizes(sizes)
                        ),
                        "generate a key of the right size: head -c 32 /dev/urandom | base64",
                    ));
                }
            }
        }
    }
    errs
}

fn validate_kms(
    c: &KmsConfiguration,
    path: &str,
    names: &HashSet<String>,
    reload: bool,
) -> Vec<FieldProblem> {
    let mut errs = Vec::new();
    let version = c.effective_api_version();
    // name
    let np = format!("{path}.name");
    if c.name.is_empty() {
        errs.push(required(
            np.clone(),
            "name is a mandatory field for a provider".into(),
            "give the KMS provider a name",
        ));
    }
    if version != "v1" && c.name.contains(':') {
        errs.push(invalid(
            np.clone(),
            &quoted(&c.name),
            &format!("invalid KMS provider name {}, must not contain ':'", c.name),
            "remove ':' from the name",
        ));
    }
    if (reload || version != "v1") && names.contains(&c.name) {
        errs.push(invalid(
            np,
            &quoted(&c.name),
            &format!(
                "duplicate KMS provider name {}, names must be unique",
                c.name
            ),
            "give every kms provider a different name",
        ));
    }
    // timeout
    let t = c.effective_timeout();
    if t.nanos <= 0 {
        errs.push(invalid(
            format!("{path}.timeout"),
            &quoted(&t.to_string()),
            "timeout should be a positive value",
            "use a positive duration such as 3s",
        ));
    }
    // endpoint
    let ep = format!("{path}.endpoint");
    if c.endpoint.is_empty() {
        errs.push(invalid(
            ep,
            "\"\"",
            "endpoint is a mandatory field for a kms",
            "set endpoint to the plugin's socket, e.g. unix:///var/run/kmsplugin/socket.sock",
        ));
    } else {
        match url_scheme(&c.endpoint) {
            Err(e) => errs.push(invalid(
                ep,
                &quoted(&c.endpoint),
                &format!("invalid endpoint for kms provider, error: {e}"),
                "write the endpoint as unix:///path/to/socket",
            )),
            Ok(scheme) if scheme != "unix" => errs.push(invalid(
                ep,
                &quoted(&c.endpoint),
                &format!("unsupported scheme {scheme:?} for KMS provider, only unix is supported"),
                "write the endpoint as unix:///path/to/socket",
            )),
            Ok(_) => {}
        }
    }
    // cachesize
    let cp = format!("{path}.cachesize");
    if version != "v1"
        && let Some(cs) = c.cachesize
    {
        errs.push(invalid(
            cp.clone(),
            &cs.to_string(),
            "cachesize is not supported in v2",
            "remove cachesize from kms v2 providers",
        ));
    }
    if version == "v1" && c.effective_cachesize() == Some(0) {
        errs.push(invalid(
            cp,
            "0",
            "cachesize should be a positive value, or negative to disable",
            "remove cachesize (default 1000) or set a positive value",
        ));
    }
    // apiVersion
    if version != "v1" && version != "v2" {
        // Upstream formats the literal word "apiVersion" into this message; we show the value instead.
        errs.push(invalid(
            format!("{path}.apiVersion"),
            &quoted(version),
            &format!(
                "unsupported apiVersion {version} for KMS provider, only v1 and v2 are supported"
            ),
            "set apiVersion: v2 (or v1, deprecated)",
        ));
    }
    errs
}

/// The scheme of a URL the way Go's `url.Parse` finds it (letters, digits, `+-.`, starting with a letter,
/// before the first `:`); no scheme → `""`.
fn url_scheme(s: &str) -> Result<String, String> {
    if s.chars()
        .any(|c| c.is_ascii_control() || c == ' ' && s.starts_with(' '))
    {
        return Err(format!(
            "parse {s:?}: net/url: invalid control character in URL"
        ));
    }
    let Some(idx) = s.find(':') else {
        return Ok(String::new());
    };
    let scheme = &s[..idx];
    if scheme.is_empty() {
        return Err(format!("parse {s:?}: missing protocol scheme"));
    }
    let mut chars = scheme.chars();
    let first = chars.next().unwrap_or('0');
    if !first.is_ascii_alphabetic() {
        // Go treats this as a path without scheme, unless the colon is in the first segment.
        if !scheme.contains('/') {
            return Err(format!(
                "parse {s:?}: first path segment in URL cannot contain colon"
            ));
        }
        return Ok(String::new());
    }
    if chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) {
        Ok(scheme.to_ascii_lowercase())
    } else {
        Ok(String::new())
    }
}

/// A finding of atrest's own, stricter checks. Not fatal for kube-apiserver, but worth fixing.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LintFinding {
    /// Field path.
    pub path: String,
    /// 1-based line when known (set by [`super::ParsedConfig::lint`]).
    pub line: u64,
    /// 1-based column when known.
    pub column: u64,
    /// What is wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for LintFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// atrest's stricter rules:
/// - key names must be non-empty, free of `:` and unique within a provider (upstream accepts duplicates and
///   `:`, which make the stored prefix ambiguous: a reader stops at the first matching name);
/// - the same key secret must not be used by two keys of one provider type (rotation would not rotate);
/// - kms v1 is deprecated and off by default since Kubernetes 1.29 (`KMSv1` feature gate);
/// - `identity` first, followed by encrypting providers, means new writes are NOT encrypted (an entry with
///   identity alone is a deliberate opt-out and not reported).
pub(super) fn lint(c: &EncryptionConfiguration) -> Vec<LintFinding> {
    let mut out = Vec::new();
    let mut push = |path: String, message: String| {
        out.push(LintFinding {
            path,
            line: 0,
            column: 0,
            message,
        })
    };
    for (i, conf) in c.resources.iter().enumerate() {
        if matches!(
            conf.providers.first(),
            Some(ProviderConfiguration::Identity)
        ) && conf.providers.len() > 1
        {
            push(
                format!("resources[{i}].providers[0]"),
                "identity is the first provider: new writes of these resources are stored in plaintext although encrypting providers follow; move an encrypting provider first".into(),
            );
        }
        let mut secrets_by_kind: HashMap<&'static str, Vec<(String, Vec<u8>)>> = HashMap::new();
        for (j, p) in conf.providers.iter().enumerate() {
            let kind = p.kind().as_str();
            if let ProviderConfiguration::Kms(k) = p
                && !k.is_v2()
            {
                push(
                    format!("resources[{i}].providers[{j}].kms.apiVersion"),
                    "kms v1 is deprecated and disabled by default since Kubernetes 1.29 (feature gate KMSv1); migrate to apiVersion: v2".into(),
                );
            }
            let Some(keys) = p.keys() else { continue };
            let mut names: HashMap<&str, usize> = HashMap::new();
            for (k, key) in keys.iter().enumerate() {
                let path = format!("resources[{i}].providers[{j}].{kind}.keys[{k}].name");
                if key.name.contains(':') {
                    push(
                        path.clone(),
                        format!(
                            "key name {:?} contains ':', which makes the stored prefix k8s:enc:{kind}:v1:<name>: ambiguous; rename it",
                            key.name
                        ),
                    );
                }
                if let Some(first) = names.insert(&key.name, k) {
                    push(
                        path.clone(),
                        format!(
                            "key name {:?} is also used by keys[{first}] of this provider; reads stop at the first key with a matching name, so give every key a unique name",
                            key.name
                        ),
                    );
                }
                if let Ok(bytes) = key.secret.decode() {
                    let list = secrets_by_kind.entry(kind).or_default();
                    if let Some((other, _)) = list.iter().find(|(_, b)| *b == bytes) {
                        push(
                            format!("resources[{i}].providers[{j}].{kind}.keys[{k}].secret"),
                            format!(
                                "the same secret is already used by {other}; a rotated key must be new"
                            ),
                        );
                    }
                    list.push((path.trim_end_matches(".name").to_owned(), bytes));
                }
            }
        }
        for list in secrets_by_kind.values_mut() {
            for (_, b) in list.iter_mut() {
                b.fill(0);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_schemes_like_go() {
        assert_eq!(url_scheme("unix:///tmp/x.sock").unwrap(), "unix");
        assert_eq!(url_scheme("UNIX:///tmp/x.sock").unwrap(), "unix");
        assert_eq!(url_scheme("https://kms.example").unwrap(), "https");
        assert_eq!(url_scheme("/tmp/x.sock").unwrap(), "");
        assert!(url_scheme("://x").is_err());
        assert!(url_scheme("1a:b").is_err());
    }
}
