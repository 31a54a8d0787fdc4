//! `EncryptionConfiguration` (apiserver.config.k8s.io/v1): strict parsing, validation with the kube-apiserver rules, serialization.
//!
//! Entry points:
//! - [`load`] / [`EncryptionConfiguration::from_text`]: read, strictly decode (unknown fields are errors) and validate
//!   a file exactly as kube-apiserver would accept it; errors carry the file, line, column and field path.
//! - [`EncryptionConfiguration::validate`]: the apiserver's own rules on an in-memory value
//!   (`validation_encryption.go` plus the masking check of `config.go`).
//! - [`EncryptionConfiguration::lint`]: atrest's stricter rules (unique key names without `:` ...).
//! - [`EncryptionConfiguration::to_yaml`] / [`EncryptionConfiguration::to_redacted_yaml`]: write back / dry-run view.
//! - [`Key::generate`]: a fresh key from the OS CSPRNG.
//! - [`EncryptionConfiguration::providers_for`]: the provider list for a group/resource, like `transformerFromOverrides`.
//!
//! Upstream: kubernetes/apiserver `pkg/apis/apiserver/v1/types_encryption.go` (types),
//! `pkg/apis/apiserver/v1/defaults.go` (defaults), `pkg/apis/apiserver/validation/validation_encryption.go`
//! (validation), `pkg/server/options/encryptionconfig/config.go` (loading, masking, lookup).

mod decode;
mod duration;
mod node;
mod validate;
mod yaml_out;

pub use duration::GoDuration;
pub use validate::LintFinding;

use std::fmt;
use std::path::Path;

/// apiVersion of the current form.
pub const API_VERSION: &str = "apiserver.config.k8s.io/v1";
/// kind of the current form.
pub const KIND: &str = "EncryptionConfiguration";
/// kind of the legacy form (`apiVersion: v1`), still accepted by kube-apiserver (`pkg/apis/apiserver/v1/register.go`).
pub const LEGACY_KIND: &str = "EncryptionConfig";
/// apiVersion of the legacy form.
pub const LEGACY_API_VERSION: &str = "v1";

/// Default KMS `timeout` (`defaults.go`: `defaultTimeout = &metav1.Duration{Duration: 3 * time.Second}`).
pub const DEFAULT_KMS_TIMEOUT: GoDuration = GoDuration::from_secs(3);
/// Default KMS v1 `cachesize` (`defaults.go`: `defaultCacheSize int32 = 1000`).
pub const DEFAULT_KMS_CACHE_SIZE: i32 = 1000;

/// Which of the two accepted `apiVersion`/`kind` pairs the file used (kept so a rewrite keeps it).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum ConfigKind {
    /// `apiVersion: apiserver.config.k8s.io/v1`, `kind: EncryptionConfiguration`.
    #[default]
    EncryptionConfiguration,
    /// `apiVersion: v1`, `kind: EncryptionConfig`.
    LegacyEncryptionConfig,
}

/// The whole configuration file: an ordered list of resource rules.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct EncryptionConfiguration {
    /// apiVersion/kind pair.
    pub kind: ConfigKind,
    /// `resources`: rules in file order; the first rule naming a resource (or a wildcard covering it) wins.
    pub resources: Vec<ResourceConfiguration>,
}

/// One `resources[]` entry: which resources, and the providers used for them (first = write provider).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ResourceConfiguration {
    /// Resource strings: `secrets`, `deployments.apps`, `*.`, `*.apps`, `*.*`.
    pub resources: Vec<String>,
    /// Providers in order: `providers[0]` (and its first key) writes; all are tried on read.
    pub providers: Vec<ProviderConfiguration>,
}

/// One `providers[]` element. The file form has five optional fields of which exactly one must be set;
/// decoding rejects zero or several with the apiserver's message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ProviderConfiguration {
    /// `aesgcm: {keys: [...]}`.
    Aesgcm(KeysConfiguration),
    /// `aescbc: {keys: [...]}`.
    Aescbc(KeysConfiguration),
    /// `secretbox: {keys: [...]}`.
    Secretbox(KeysConfiguration),
    /// `identity: {}`.
    Identity,
    /// `kms: {...}`.
    Kms(KmsConfiguration),
}

/// The provider types, named as in the configuration file and in the `k8s:enc:<type>:` prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum ProviderKind {
    /// AES-GCM, random nonce, AD = etcd key.
    Aesgcm,
    /// AES-CBC with PKCS#7 padding, no AD.
    Aescbc,
    /// XSalsa20-Poly1305 (NaCl secretbox), no AD.
    Secretbox,
    /// Plaintext.
    Identity,
    /// KMS envelope (v1 or v2, see [`KmsConfiguration::api_version`]).
    Kms,
}

impl ProviderKind {
    /// The field name used in the configuration (`aesgcm`, `aescbc`, `secretbox`, `identity`, `kms`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Aesgcm => "aesgcm",
            ProviderKind::Aescbc => "aescbc",
            ProviderKind::Secretbox => "secretbox",
            ProviderKind::Identity => "identity",
            ProviderKind::Kms => "kms",
        }
    }

    /// Key sizes (decoded bytes) the apiserver accepts (`aesKeySizes`, `secretBoxKeySizes`); empty for identity/kms.
    pub fn key_sizes(self) -> &'static [usize] {
        match self {
            ProviderKind::Aesgcm | ProviderKind::Aescbc => &[16, 24, 32],
            ProviderKind::Secretbox => &[32],
            ProviderKind::Identity | ProviderKind::Kms => &[],
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ProviderConfiguration {
    /// The provider type.
    pub fn kind(&self) -> ProviderKind {
        match self {
            ProviderConfiguration::Aesgcm(_) => ProviderKind::Aesgcm,
            ProviderConfiguration::Aescbc(_) => ProviderKind::Aescbc,
            ProviderConfiguration::Secretbox(_) => ProviderKind::Secretbox,
            ProviderConfiguration::Identity => ProviderKind::Identity,
            ProviderConfiguration::Kms(_) => ProviderKind::Kms,
        }
    }

    /// The keys of an aesgcm/aescbc/secretbox provider; `None` for identity and kms.
    pub fn keys(&self) -> Option<&[Key]> {
        match self {
            ProviderConfiguration::Aesgcm(k)
            | ProviderConfiguration::Aescbc(k)
            | ProviderConfiguration::Secretbox(k) => Some(&k.keys),
            _ => None,
        }
    }

    /// Mutable keys of an aesgcm/aescbc/secretbox provider (for rotation); `None` for identity and kms.
    pub fn keys_mut(&mut self) -> Option<&mut Vec<Key>> {
        match self {
            ProviderConfiguration::Aesgcm(k)
            | ProviderConfiguration::Aescbc(k)
            | ProviderConfiguration::Secretbox(k) => Some(&mut k.keys),
            _ => None,
        }
    }
}

/// `keys` of an aesgcm, aescbc or secretbox provider.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct KeysConfiguration {
    /// Keys in order; the first encrypts new writes.
    pub keys: Vec<Key>,
}

/// A named key. `secret` is base64 (StdEncoding, padded) of the raw key bytes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Key {
    /// Key name; appears in the stored prefix `k8s:enc:<provider>:v1:<name>:`.
    pub name: String,
    /// The key material; never printed.
    pub secret: KeySecret,
}

/// Base64 key material as written in the file. `Debug` prints `<redacted>`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySecret(String);

impl KeySecret {
    /// Wraps base64 text (not validated here; see [`EncryptionConfiguration::validate`]).
    pub fn from_base64(text: impl Into<String>) -> Self {
        KeySecret(text.into())
    }

    /// Encodes raw key bytes as base64 StdEncoding.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        use base64::Engine;
        KeySecret(base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// The base64 text, for writing the configuration file (0600) only.
    pub fn expose_base64(&self) -> &str {
        &self.0
    }

    /// Decodes the key bytes (base64 StdEncoding, padding required, as Go's `base64.StdEncoding`).
    pub fn decode(&self) -> Result<Vec<u8>, base64::DecodeError> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(self.0.as_bytes())
    }

    /// True when the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for KeySecret {
    fn drop(&mut self) {
        // Best-effort wipe of the key text: overwrite the bytes in place through a safe API
        // (NUL bytes are valid UTF-8, and the replacement has the same length, so no reallocation).
        let zeros = "\0".repeat(self.0.len());
        self.0.replace_range(.., &zeros);
    }
}

impl Key {
    /// A new key for `provider` named `name`, `len` random bytes from the OS CSPRNG
    /// (the equivalent of `head -c 32 /dev/urandom | base64`). Use [`Key::generate`] for the recommended size.
    pub fn generate_with_len(name: impl Into<String>, len: usize) -> Result<Key, ConfigError> {
        let mut buf = vec![0u8; len];
        fill_os_random(&mut buf)?;
        let secret = KeySecret::from_bytes(&buf);
        buf.fill(0);
        Ok(Key {
            name: name.into(),
            secret,
        })
    }

    /// A new 32-byte key (AES-256 for aesgcm/aescbc, the only size for secretbox) from the OS CSPRNG.
    /// Errors for identity and kms, which have no keys.
    pub fn generate(name: impl Into<String>, provider: ProviderKind) -> Result<Key, ConfigError> {
        match provider {
            ProviderKind::Aesgcm | ProviderKind::Aescbc | ProviderKind::Secretbox => {
                Key::generate_with_len(name, 32)
            }
            ProviderKind::Identity | ProviderKind::Kms => Err(ConfigError::NoKeys { provider }),
        }
    }
}

/// Fills `buf` from the operating system's CSPRNG (getrandom(2)).
pub(crate) fn fill_os_random(buf: &mut [u8]) -> Result<(), ConfigError> {
    use rand::TryRng;
    rand::rngs::SysRng
        .try_fill_bytes(buf)
        .map_err(ConfigError::Random)
}

/// `kms` provider settings. Optional fields keep "absent" so a rewrite does not add defaults.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct KmsConfiguration {
    /// `apiVersion`: `v1` (default) or `v2`.
    pub api_version: Option<String>,
    /// Provider name; appears in the stored prefix `k8s:enc:kms:v<N>:<name>:`.
    pub name: String,
    /// `cachesize` (v1 only).
    pub cachesize: Option<i32>,
    /// `endpoint`: `unix:///path/to/socket`.
    pub endpoint: String,
    /// `timeout` (default 3s).
    pub timeout: Option<GoDuration>,
}

impl KmsConfiguration {
    /// The effective apiVersion (`v1` when absent, `defaults.go`).
    pub fn effective_api_version(&self) -> &str {
        match self.api_version.as_deref() {
            None | Some("") => "v1",
            Some(v) => v,
        }
    }
    /// True for a KMS v2 provider.
    pub fn is_v2(&self) -> bool {
        self.effective_api_version() == "v2"
    }
    /// The effective timeout (3s when absent).
    pub fn effective_timeout(&self) -> GoDuration {
        self.timeout.unwrap_or(DEFAULT_KMS_TIMEOUT)
    }
    /// The effective cache size: the value, or 1000 for v1 when absent; `None` for v2.
    pub fn effective_cachesize(&self) -> Option<i32> {
        match (self.cachesize, self.effective_api_version()) {
            (Some(c), _) => Some(c),
            (None, "v1") => Some(DEFAULT_KMS_CACHE_SIZE),
            _ => None,
        }
    }
}

/// A Kubernetes group/resource. The core group is `""`. Wildcards use `*`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct GroupResource {
    /// API group (`""` = core, `apps`, ..., `*`).
    pub group: String,
    /// Plural resource (`secrets`, ..., `*`).
    pub resource: String,
}

impl GroupResource {
    /// A group/resource.
    pub fn new(group: impl Into<String>, resource: impl Into<String>) -> Self {
        GroupResource {
            group: group.into(),
            resource: resource.into(),
        }
    }
    /// A core-group resource (`secrets`, `configmaps`).
    pub fn core(resource: impl Into<String>) -> Self {
        GroupResource::new("", resource)
    }
    /// `schema.ParseGroupResource`: `secrets` → (``, `secrets`); `deployments.apps` → (`apps`, `deployments`);
    /// `*.` → (``, `*`); `*.*` → (`*`, `*`). Splits at the first dot.
    pub fn parse(s: &str) -> Self {
        match s.split_once('.') {
            Some((r, g)) => GroupResource::new(g, r),
            None => GroupResource::new("", s),
        }
    }
    /// The YAML form used in the config and in apiserver messages (`grYAMLString`): `*.` for all core resources.
    pub fn yaml_string(&self) -> String {
        if self.group.is_empty() && self.resource == "*" {
            "*.".to_owned()
        } else if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

impl fmt::Display for GroupResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.yaml_string())
    }
}

/// One problem found while decoding or validating, located in the file where possible.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FieldProblem {
    /// Field path in apiserver form: `resources[0].providers[1].aesgcm.keys[0].secret`.
    pub path: String,
    /// 1-based line in the file (0 = unknown).
    pub line: u64,
    /// 1-based column (0 = unknown).
    pub column: u64,
    /// The message; for validation rules, the apiserver's own wording (`field.Error` form).
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}", self.line)?;
            if self.column > 0 {
                write!(f, ", column {}", self.column)?;
            }
            f.write_str(": ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if !self.hint.is_empty() {
            write!(f, " (fix: {})", self.hint)?;
        }
        Ok(())
    }
}

/// Errors from loading, decoding, validating or generating an encryption configuration.
/// Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read encryption provider configuration file {path}: {source}")]
    Read {
        /// File path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is empty (apiserver: `encryption provider configuration file %q is empty`).
    #[error(
        "encryption provider configuration file {origin:?} is empty (fix: write an EncryptionConfiguration into it, or point --encryption-provider-config at the right file)"
    )]
    Empty {
        /// File name or other origin label.
        origin: String,
    },
    /// Not parseable as YAML or JSON.
    #[error("{origin}:{line}:{column}: not valid YAML or JSON: {message}")]
    Syntax {
        /// File name or other origin label.
        origin: String,
        /// 1-based line (0 = unknown).
        line: u64,
        /// 1-based column (0 = unknown).
        column: u64,
        /// Parser message.
        message: String,
    },
    /// Strict decoding or validation found problems.
    #[error("{}", render_problems(origin, problems))]
    Invalid {
        /// File name or other origin label.
        origin: String,
        /// Every problem found.
        problems: Vec<FieldProblem>,
    },
    /// Key generation asked for a provider without keys.
    #[error("provider {provider} has no keys to generate")]
    NoKeys {
        /// The provider asked for.
        provider: ProviderKind,
    },
    /// The OS random number generator failed.
    #[error("cannot read random bytes from the operating system: {0}")]
    Random(#[source] rand::rngs::SysError),
    /// Writing the file failed.
    #[error("cannot write encryption provider configuration: {0}")]
    Write(#[from] crate::fsutil::FsError),
}

impl ConfigError {
    /// The problems of an [`ConfigError::Invalid`] error (empty for the other variants).
    pub fn problems(&self) -> &[FieldProblem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

fn render_problems(origin: &str, problems: &[FieldProblem]) -> String {
    let mut out = format!(
        "invalid encryption provider configuration {origin}: {} problem{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str("\n  ");
        out.push_str(origin);
        if p.line > 0 {
            out.push_str(&format!(":{}", p.line));
            if p.column > 0 {
                out.push_str(&format!(":{}", p.column));
            }
        }
        out.push_str(": ");
        if !p.path.is_empty() {
            out.push_str(&p.path);
            out.push_str(": ");
        }
        out.push_str(&p.message);
        if !p.hint.is_empty() {
            out.push_str(" (fix: ");
            out.push_str(&p.hint);
            out.push(')');
        }
    }
    out
}

/// Reads, strictly decodes and validates an encryption configuration file, like kube-apiserver at startup.
pub fn load(path: &Path) -> Result<EncryptionConfiguration, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let origin = path.display().to_string();
    let text = String::from_utf8(bytes).map_err(|e| ConfigError::Syntax {
        origin: origin.clone(),
        line: 0,
        column: 0,
        message: format!(
            "file is not UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })?;
    EncryptionConfiguration::from_text(&text, &origin)
}

/// The result of strict decoding, before validation, with the source position of every field path.
pub struct ParsedConfig {
    /// The decoded configuration.
    pub config: EncryptionConfiguration,
    origin: String,
    positions: std::collections::HashMap<String, (u64, u64)>,
}

impl ParsedConfig {
    /// Strictly decodes YAML or JSON text (unknown fields, wrong types, duplicate keys, bad kind are errors).
    /// `origin` names the file in messages.
    pub fn decode(text: &str, origin: &str) -> Result<ParsedConfig, ConfigError> {
        decode::decode(text, origin)
    }

    /// Applies [`EncryptionConfiguration::validate`] and locates each problem in the source.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = validate::validate(&self.config, false);
        if problems.is_empty() {
            return Ok(());
        }
        for p in &mut problems {
            self.locate(p);
        }
        Err(ConfigError::Invalid {
            origin: self.origin.clone(),
            problems,
        })
    }

    /// [`EncryptionConfiguration::lint`] with source positions.
    pub fn lint(&self) -> Vec<LintFinding> {
        let mut findings = self.config.lint();
        for f in &mut findings {
            let (line, column) = self.position(&f.path);
            f.line = line;
            f.column = column;
        }
        findings
    }

    /// The (line, column) of a field path, or of its nearest ancestor that has one.
    pub fn position(&self, path: &str) -> (u64, u64) {
        let mut p = path.to_owned();
        loop {
            if let Some(pos) = self.positions.get(&p) {
                return *pos;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p.truncate(i),
                None => return (0, 0),
            }
        }
    }

    fn locate(&self, p: &mut FieldProblem) {
        let (line, column) = self.position(&p.path);
        p.line = line;
        p.column = column;
    }
}

impl EncryptionConfiguration {
    /// Strictly decodes and validates YAML or JSON text. `origin` names the file in messages.
    pub fn from_text(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let parsed = ParsedConfig::decode(text, origin)?;
        parsed.validate()?;
        Ok(parsed.config)
    }

    /// The kube-apiserver's validation (`ValidateEncryptionConfiguration(c, reload=false)` followed by the
    /// masking check of `getTransformerOverridesAndKMSPluginProbes`). Problems carry no line numbers here;
    /// use [`ParsedConfig::validate`] for located errors.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_with_reload(false)
    }

    /// As [`EncryptionConfiguration::validate`]; `reload = true` applies the hot-reload rules
    /// (`--encryption-provider-config-automatic-reload`: kms v1 names must be unique too).
    pub fn validate_with_reload(&self, reload: bool) -> Result<(), ConfigError> {
        let problems = validate::validate(self, reload);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                origin: "EncryptionConfiguration".into(),
                problems,
            })
        }
    }

    /// atrest's stricter checks, beyond what the apiserver enforces (see [`LintFinding`]).
    pub fn lint(&self) -> Vec<LintFinding> {
        validate::lint(self)
    }

    /// YAML text for writing the file (contains key material: write it 0600).
    pub fn to_yaml(&self) -> String {
        yaml_out::to_yaml(self, false)
    }

    /// Validates, then writes [`EncryptionConfiguration::to_yaml`] to `path` atomically (temp file, fsync, rename),
    /// created 0600 because it holds keys. Back up the previous file first with `fsutil::backup` if needed.
    pub fn write_file(&self, path: &Path) -> Result<(), ConfigError> {
        self.validate()?;
        crate::fsutil::write_private(path, self.to_yaml().as_bytes())?;
        Ok(())
    }

    /// YAML text with every `secret` replaced by `<redacted>`, for dry runs and logs.
    pub fn to_redacted_yaml(&self) -> String {
        yaml_out::to_yaml(self, true)
    }

    /// The providers that apply to `gr`, in read order, like the apiserver's `transformerFromOverrides`:
    /// exact group/resource, else `<group>/*`, else `*/*`. An empty result means the resource is not covered
    /// and is stored with identity. Rules naming the same resource twice contribute their providers in order.
    pub fn providers_for(&self, gr: &GroupResource) -> Vec<&ProviderConfiguration> {
        let candidates = [
            gr.clone(),
            GroupResource::new(gr.group.clone(), "*"),
            GroupResource::new("*", "*"),
        ];
        for cand in &candidates {
            let providers: Vec<&ProviderConfiguration> = self
                .resources
                .iter()
                .filter(|rc| {
                    rc.resources
                        .iter()
                        .any(|r| GroupResource::parse(r) == *cand)
                })
                .flat_map(|rc| rc.providers.iter())
                .collect();
            if !providers.is_empty() {
                return providers;
            }
        }
        Vec::new()
    }

    /// The provider that encrypts new writes of `gr` (`None` = identity because not covered).
    pub fn write_provider_for(&self, gr: &GroupResource) -> Option<&ProviderConfiguration> {
        self.providers_for(gr).into_iter().next()
    }
}
