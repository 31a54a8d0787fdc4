//! krew's rules, to check our manifests and archives the way krew does, offline.
//!
//! - [`parse`] + [`validate`]: kubernetes-sigs/krew `internal/index/validation/validate.go` (`ValidatePlugin`) and
//!   `cmd/validate-krew-manifest/main.go` (supported platforms, no overlap, license installed), plus unknown keys
//!   rejected (krew itself ignores them, so a typo only shows as a missing field later).
//!
//! Installing is left to the real krew (crates/devtools/tests/release/krew_archive.rs runs `kubectl krew install --archive`).

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Deserialize;

/// `apiVersion` krew reads (`pkg/constants/constants.go` `CurrentAPIVersion`).
pub const API_VERSION: &str = "krew.googlecontainertools.github.com/v1alpha2";

/// A krew plugin manifest (krew `pkg/index/types.go`), unknown keys refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Plugin {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: Metadata,
    pub spec: Spec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Spec {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub short_description: String,
    pub description: Option<String>,
    pub caveats: Option<String>,
    pub homepage: Option<String>,
    #[serde(default)]
    pub platforms: Vec<Platform>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    pub selector: Option<Selector>,
    #[serde(default)]
    pub uri: String,
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub bin: String,
    pub files: Option<Vec<FileOperation>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    pub match_labels: Option<BTreeMap<String, String>>,
    pub match_expressions: Option<Vec<Requirement>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOperation {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
}

/// The `<os, arch>` pairs krew-index accepts (krew `cmd/validate-krew-manifest/main.go` `allPlatforms`).
pub const SUPPORTED_PLATFORMS: [(&str, &str); 11] = [
    ("windows", "386"),
    ("windows", "amd64"),
    ("windows", "arm64"),
    ("linux", "386"),
    ("linux", "amd64"),
    ("linux", "arm"),
    ("linux", "arm64"),
    ("linux", "ppc64le"),
    ("darwin", "386"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
];

/// Longest `shortDescription` we allow: krew enforces none; 65 characters is krew-index's 95th percentile.
pub const MAX_SHORT_DESCRIPTION: usize = 70;

/// Parses a manifest, refusing unknown keys.
pub fn parse(text: &str) -> Result<Plugin> {
    serde_saphyr::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Every rule the manifest breaks (empty: valid). `file_name` is the manifest's file name (`encrypt.yaml`).
pub fn validate(p: &Plugin, file_name: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let mut err = |s: String| errs.push(s);
    if p.api_version != API_VERSION {
        err(format!(
            "apiVersion={:?}, want {API_VERSION:?}",
            p.api_version
        ));
    }
    if p.kind != "Plugin" {
        err(format!("kind={:?}, want \"Plugin\"", p.kind));
    }
    let name = &p.metadata.name;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        err(format!("metadata.name {name:?} must match ^[\\w-]+$"));
    }
    let reserved = ["con", "prn", "aux", "nul"];
    let lname = name.to_ascii_lowercase();
    if reserved.contains(&lname.as_str())
        || ((lname.starts_with("com") || lname.starts_with("lpt"))
            && lname.len() == 4
            && lname.as_bytes()[3].is_ascii_digit()
            && lname.as_bytes()[3] != b'0')
    {
        err(format!("metadata.name {name:?} is a reserved Windows name"));
    }
    match file_name.strip_suffix(".yaml") {
        Some(stem) if stem == name => {}
        Some(stem) => err(format!(
            "metadata.name {name:?} differs from the file name {stem:?}"
        )),
        None => err(format!("{file_name}: a manifest file must end in .yaml")),
    }
    let short = &p.spec.short_description;
    if short.is_empty() {
        err("spec.shortDescription is empty".into());
    }
    if short.contains(['\r', '\n']) {
        err("spec.shortDescription must be one line".into());
    }
    if short.chars().count() > MAX_SHORT_DESCRIPTION {
        err(format!(
            "spec.shortDescription is {} characters, keep it under {MAX_SHORT_DESCRIPTION}",
            short.chars().count()
        ));
    }
    if p.spec.platforms.is_empty() {
        err("spec.platforms is empty".into());
    }
    if let Err(e) = check_version(&p.spec.version) {
        err(format!("spec.version {:?}: {e}", p.spec.version));
    }
    for (i, pl) in p.spec.platforms.iter().enumerate() {
        let at = format!("spec.platforms[{i}]");
        if pl.uri.is_empty() {
            err(format!("{at}.uri is empty"));
        }
        if pl.sha256.len() != 64
            || !pl
                .sha256
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        {
            err(format!(
                "{at}.sha256 {:?} must be 64 lower-case hex characters",
                pl.sha256
            ));
        }
        if pl.bin.is_empty() {
            err(format!("{at}.bin is empty"));
        }
        if let Some(files) = &pl.files {
            if files.is_empty() {
                err(format!("{at}.files has to be unspecified or non-empty"));
            }
            for (j, f) in files.iter().enumerate() {
                if f.from.is_empty() || f.to.is_empty() {
                    err(format!("{at}.files[{j}] needs from and to"));
                }
                if clean(&f.to) != f.to {
                    err(format!(
                        "{at}.files[{j}].to {:?} is not clean (want {:?})",
                        f.to,
                        clean(&f.to)
                    ));
                }
            }
        }
        match &pl.selector {
            None => err(format!("{at}.selector is missing")),
            Some(s) => {
                if s.match_labels.is_none() && s.match_expressions.is_none() {
                    err(format!("{at}.selector is empty"));
                }
                if s.match_labels.as_ref().is_some_and(|m| m.is_empty()) {
                    err(format!("{at}.selector.matchLabels is empty"));
                }
                if s.match_expressions.as_ref().is_some_and(|m| m.is_empty()) {
                    err(format!("{at}.selector.matchExpressions is empty"));
                }
                let keys = s
                    .match_labels
                    .iter()
                    .flat_map(|m| m.keys().cloned())
                    .chain(s.match_expressions.iter().flatten().map(|r| r.key.clone()));
                for k in keys {
                    if k != "os" && k != "arch" {
                        err(format!("{at}.selector key {k:?}: only os and arch"));
                    }
                }
                if !SUPPORTED_PLATFORMS
                    .iter()
                    .any(|(os, arch)| selector_matches(s, os, arch))
                {
                    err(format!("{at}.selector matches no supported os/arch"));
                }
            }
        }
    }
    for (os, arch) in SUPPORTED_PLATFORMS {
        let n = p
            .spec
            .platforms
            .iter()
            .filter(|pl| {
                pl.selector
                    .as_ref()
                    .is_some_and(|s| selector_matches(s, os, arch))
            })
            .count();
        if n > 1 {
            err(format!(
                "{n} platforms match {os}/{arch} (they must not overlap)"
            ));
        }
    }
    errs
}

/// krew `internal/installation/semver`: a leading `v`, then `MAJOR.MINOR.PATCH` without leading zeros, optional
/// `-prerelease` and `+build` (apimachinery `version.ParseSemantic`).
pub fn check_version(v: &str) -> Result<(), String> {
    let Some(rest) = v.strip_prefix('v') else {
        return Err("must start with 'v'".into());
    };
    let (core, build) = match rest.split_once('+') {
        Some((c, b)) => (c, Some(b)),
        None => (rest, None),
    };
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 {
        return Err("want exactly MAJOR.MINOR.PATCH".into());
    }
    for p in parts {
        if p.is_empty()
            || !p.chars().all(|c| c.is_ascii_digit())
            || (p.len() > 1 && p.starts_with('0'))
        {
            return Err(format!("{p:?} is not a number without leading zeros"));
        }
    }
    for ids in [pre, build].into_iter().flatten() {
        if ids
            .split('.')
            .any(|id| id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(format!(
                "{ids:?}: identifiers are [0-9A-Za-z-], dot separated"
            ));
        }
    }
    Ok(())
}

/// Whether a label selector matches `os=<os>, arch=<arch>` (apimachinery label selector semantics).
pub fn selector_matches(s: &Selector, os: &str, arch: &str) -> bool {
    let label = |k: &str| match k {
        "os" => Some(os),
        "arch" => Some(arch),
        _ => None,
    };
    let labels_ok = s
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| label(k) == Some(v.as_str()));
    let exprs_ok = s.match_expressions.iter().flatten().all(|r| {
        let have = label(&r.key);
        match r.operator.as_str() {
            "In" => have.is_some_and(|h| r.values.iter().any(|v| v == h)),
            "NotIn" => have.is_none_or(|h| !r.values.iter().any(|v| v == h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// Go's `filepath.Clean` for the relative paths manifests use.
pub fn clean(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !abs {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_krew_semver() {
        for ok in ["v0.1.0", "v1.2.3-rc.1+abc", "v10.0.0"] {
            assert_eq!(check_version(ok), Ok(()), "{ok}");
        }
        for bad in [
            "1.2.3", "v1.2", "v01.2.3", "v1.2.3.4", "v1.2.x", "v1.2.3-", "", "v",
        ] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn clean_is_go_filepath_clean() {
        assert_eq!(clean("."), ".");
        assert_eq!(clean("./foo"), "foo");
        assert_eq!(clean("a/../b"), "b");
        assert_eq!(clean("a//b/"), "a/b");
        assert_eq!(clean("../x"), "../x");
    }
}
