//! Enabling, rotating and disabling encryption at rest on a kubeadm control-plane node (the `kubectl encrypt` verb).
//!
//! The node's files are addressed by their paths on the node (`/etc/kubernetes/...`), resolved under a root
//! directory ([`Node`]); tests and the sandbox use a tempdir as root. Every change goes through the same
//! [`Node::roll_out`]: back up the manifest (and the config) **outside** the manifests directory (the kubelet runs
//! every file it finds there), write the config atomically with mode 0600, write the manifest, then wait until
//! `/readyz` answers and the kube-apiserver mirror pod carries exactly the new command line (and config hash); on a
//! timeout restore the backups byte for byte, wait for recovery and report the backup and what failed.
//!
//! * enable: [`plan_enable`] → [`EnablePlan`] (already enabled as asked / the change), [`Node::apply_files`],
//!   [`Node::roll_out`].
//! * rotate: [`run_phases`] with [`Operation::Rotate`], phases kept in a 0600 phase file beside the config
//!   ([`RotationState`]); the documented procedure (kubernetes/website
//!   `content/en/docs/tasks/administer-cluster/encrypt-data.md`, "Rotating a decryption key"): add the new key
//!   second, restart; make it first, restart; rewrite everything; prove no object uses the old key; remove the old
//!   key, restart.
//! * disable: [`run_phases`] with [`Operation::Disable`]: identity first, restart, rewrite everything, verify, only
//!   then drop the flag (dropping the config first leaves encrypted objects unreadable: the identity transformer
//!   refuses `k8s:enc:` data,
//!   kubernetes/apiserver `pkg/storage/value/encrypt/identity/identity.go`).
//!
//! A restart of the static pod is made by changing the pod annotation [`CONFIG_HASH_ANNOTATION`] to the sha256 of
//! the config file (the kubelet restarts a static pod whose manifest changed); the mirror pod then shows which
//! config the running API server loaded.

mod command;
mod reload;
mod rotation;
mod storage;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};
use serde::Serialize;

use crate::config::{
    self, EncryptionConfiguration, GroupResource, Key, KeysConfiguration, KmsConfiguration,
    ProviderConfiguration, ProviderKind, ResourceConfiguration,
};
use crate::fsutil;
use crate::kubeadm::node;
use crate::manifest::{self, Manifest, ManifestError};

pub use command::{KubeadmStep, keep_kubeadm_config};
pub use reload::{
    ReloadEvidence, apiserver_id, apiserver_id_hash, reload_evidence, reload_with_config,
};
pub use rotation::{
    Operation, RotateOptions, RotationPhase, RotationState, rewrite_all, run_phases,
};
pub use storage::StorageCount;

/// kubeadm's certificates directory is mounted read-only into kube-apiserver, so a config here needs no new volume.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/kubernetes/pki/enc.yaml";
/// Where manifest and config backups go (node path): kubeadm keeps its own backups under `/etc/kubernetes/tmp`,
/// outside the manifests directory the kubelet watches.
pub const BACKUP_DIR: &str = "/etc/kubernetes/tmp/atrest-backups";
/// The pod annotation holding `sha256:<hex>` of the config file; changing it restarts the static pod.
pub const CONFIG_HASH_ANNOTATION: &str = "atrest.io/encryption-config-sha256";

/// What went wrong; messages say what to do. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum EncryptError {
    /// The manifest is broken or an edit was refused.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The encryption configuration is invalid or unreadable.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] fsutil::FsError),
    /// Reading the API server's etcd failed.
    #[error(transparent)]
    Etcd(#[from] crate::etcd::EtcdError),
    /// Preflight refused the request (for example a different config is already in use).
    #[error("{0}")]
    Refused(String),
    /// Talking to the API server failed (a timeout, an unexpected answer).
    #[error("{0}")]
    Api(String),
    /// A request to the API server failed: what was asked, and kube-rs's error (the causes in its source chain).
    #[error("{what}: {source}")]
    Kube {
        /// What was asked (`listing kube-apiserver pods`).
        what: String,
        /// Why it failed.
        #[source]
        source: kube::Error,
    },
    /// Rewriting the objects failed.
    #[error(transparent)]
    Reencrypt(#[from] crate::reencrypt::ReencryptError),
    /// The API server did not come back with the change; the backups were restored.
    #[error(
        "{what}: {reason}; restored the previous manifest{} from {} and the API server {}",
        if config_backup.is_some() { " and config" } else { "" },
        backup.display(),
        if *recovered { "is ready again" } else { "has NOT recovered yet: check `crictl ps -a` and the kubelet log" }
    )]
    RolledBack {
        what: String,
        reason: String,
        backup: PathBuf,
        config_backup: Option<PathBuf>,
        recovered: bool,
    },
    /// kube-apiserver (automatic reload) did not load the new config; the previous file was restored.
    #[error(
        "{what}: {reason}; {} and kube-apiserver {}",
        match config_backup {
            Some(b) => format!("restored the previous config from {}", b.display()),
            None => "there was no previous config to restore".to_string(),
        },
        if *recovered { "is ready with it" } else { "has NOT reported reloading it yet: check /readyz?verbose and its log" }
    )]
    ReloadRolledBack {
        what: String,
        reason: String,
        config_backup: Option<PathBuf>,
        recovered: bool,
    },
    /// A rotation or disable phase cannot run yet.
    #[error("{0}")]
    Phase(String),
}

/// Result alias.
pub type Result<T, E = EncryptError> = std::result::Result<T, E>;

/// A control-plane node's files: node paths resolved under `root`.
#[derive(Clone, Debug)]
pub struct Node {
    /// Directory every node path resolves under (`/` on a real node).
    pub root: PathBuf,
    /// The kube-apiserver manifest (node path).
    pub manifest: PathBuf,
    /// The EncryptionConfiguration (node path; the same path inside the container).
    pub config: PathBuf,
}

impl Node {
    /// A node with the given root, manifest and config node paths.
    pub fn new(
        root: impl Into<PathBuf>,
        manifest: impl Into<PathBuf>,
        config: impl Into<PathBuf>,
    ) -> Self {
        Node {
            root: root.into(),
            manifest: manifest.into(),
            config: config.into(),
        }
    }

    /// The file behind a node path.
    pub fn host(&self, node_path: &Path) -> PathBuf {
        node::under_root(&self.root, node_path)
    }

    /// The manifest file.
    pub fn manifest_file(&self) -> PathBuf {
        self.host(&self.manifest)
    }

    /// The config file.
    pub fn config_file(&self) -> PathBuf {
        self.host(&self.config)
    }

    /// The rotation phase file beside the config (`enc.yaml.rotation`).
    pub fn phase_file(&self) -> PathBuf {
        let mut name = self
            .config
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".rotation");
        self.host(&self.config.with_file_name(name))
    }

    /// The backup directory (outside the manifests directory).
    pub fn backup_dir(&self) -> PathBuf {
        self.host(Path::new(BACKUP_DIR))
    }

    /// The node's hostname, from which kube-apiserver derives its identity ([`reload::apiserver_id`]): the
    /// kernel's on the node itself (root `/`), else `<root>/etc/hostname` (a node image or a test node), falling
    /// back to the kernel's.
    pub fn hostname(&self) -> String {
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let kernel = || read(Path::new("/proc/sys/kernel/hostname")).unwrap_or_default();
        if self.root == Path::new("/") {
            return kernel();
        }
        read(&self.host(Path::new("/etc/hostname"))).unwrap_or_else(kernel)
    }

    /// `<root>/etc/kubernetes/admin.conf`.
    pub fn admin_conf(&self) -> PathBuf {
        self.host(Path::new(node::ADMIN_CONF))
    }

    /// Reads and parses the manifest.
    pub fn load_manifest(&self) -> Result<Manifest> {
        Ok(Manifest::load(&self.manifest_file())?)
    }

    /// The config file the manifest points at (through its mounts), if the flag is set and the path is mounted.
    pub fn configured_config_file(&self, m: &Manifest) -> Option<PathBuf> {
        let p = m.encryption_provider_config()?;
        m.host_path_for(&p).map(|h| self.host(&h))
    }

    /// Writes the config file (0600, atomically) and gives it to the user kube-apiserver runs as
    /// ([`Node::own_config`]).
    pub fn write_config(&self, bytes: &[u8]) -> Result<()> {
        let file = self.config_file();
        fsutil::write_private(&file, bytes)?;
        self.own_config()
    }

    /// Under kubeadm's RootlessControlPlane kube-apiserver runs as a non-root user ([`Manifest::run_as`]) that
    /// cannot read a root-owned 0600 file: the config then belongs to that user and group, mode 0600, as kubeadm
    /// does for the API server's private keys (`runKubeAPIServerAsNonRoot`). Nothing to do for a root server.
    pub fn own_config(&self) -> Result<()> {
        let Ok(m) = self.load_manifest() else {
            return Ok(());
        };
        let Some((uid, gid)) = m.run_as() else {
            return Ok(());
        };
        let file = self.config_file();
        if !file.exists() {
            return Ok(());
        }
        std::os::unix::fs::chown(&file, Some(uid), gid).map_err(|source| fsutil::FsError {
            op: "chown",
            path: file.clone(),
            source,
        })?;
        tracing::info!(uid, ?gid, file = %file.display(), "kube-apiserver runs as non-root: gave it the config");
        Ok(())
    }

    /// Backs up `file` into the backup directory (refusing a backup directory inside the manifests directory).
    pub fn backup(&self, file: &Path) -> Result<PathBuf> {
        let dir = self.backup_dir();
        if let Some(manifests) = self.manifest_file().parent()
            && dir.starts_with(manifests)
        {
            return Err(EncryptError::Refused(format!(
                "the backup directory {} is inside the manifests directory {}; the kubelet would run the backup",
                dir.display(),
                manifests.display()
            )));
        }
        Ok(fsutil::backup(file, &dir)?)
    }
}

/// The provider to enable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderChoice {
    /// A local-key provider: secretbox, aesgcm or aescbc.
    Local(ProviderKind),
    /// KMS v2 with this plugin name and `unix://` endpoint.
    KmsV2 { name: String, endpoint: String },
}

impl ProviderChoice {
    /// The provider kind.
    pub fn kind(&self) -> ProviderKind {
        match self {
            ProviderChoice::Local(k) => *k,
            ProviderChoice::KmsV2 { .. } => ProviderKind::Kms,
        }
    }
}

/// What `kubectl encrypt enable` asks for.
#[derive(Clone, Debug)]
pub struct EnableRequest {
    /// Provider for new writes.
    pub provider: ProviderChoice,
    /// Resources to encrypt (`secrets`, `configmaps`, `*.apps`, ...).
    pub resources: Vec<String>,
    /// Add `--encryption-provider-config-automatic-reload=true`.
    pub automatic_reload: bool,
}

/// The config text to write (key material inside: never printed; Debug is redacted).
#[derive(Clone)]
pub struct ConfigText(String);

impl ConfigText {
    /// The bytes for the 0600 file.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// `sha256:<hex>` of the bytes (what kube-apiserver reports for a loaded config, `computeEncryptionConfigHash`).
    pub fn sha256(&self) -> String {
        config_hash(self.0.as_bytes())
    }
}

impl fmt::Debug for ConfigText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConfigText(<redacted>)")
    }
}

/// `sha256:<hex>` of config bytes (kubernetes/apiserver `pkg/server/options/encryptionconfig/config.go`
/// `computeEncryptionConfigHash`).
pub fn config_hash(bytes: &[u8]) -> String {
    let d = openssl::sha::sha256(bytes);
    let mut s = String::from("sha256:");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A change to the node's files: an optional new config and the manifest before/after.
#[derive(Clone, Debug)]
pub struct Change {
    /// The config to write (`None`: keep the file as it is).
    pub config: Option<(EncryptionConfiguration, ConfigText)>,
    /// The manifest now.
    pub before: Manifest,
    /// The manifest to write.
    pub after: Manifest,
    /// One line per manifest change.
    pub manifest_changes: Vec<String>,
}

impl Change {
    /// A unified diff of the manifest (`a/<path>` → `b/<path>`).
    pub fn manifest_diff(&self, label: &str) -> String {
        let before = self.before.text();
        let after = self.after.text();
        similar::TextDiff::from_lines(&before, &after)
            .unified_diff()
            .context_radius(3)
            .header(&format!("a{label}"), &format!("b{label}"))
            .to_string()
    }

    /// The config to write with every key replaced by `<redacted>`.
    pub fn redacted_config(&self) -> Option<String> {
        self.config.as_ref().map(|(c, _)| c.to_redacted_yaml())
    }
}

/// The outcome of enable's preflight.
#[derive(Clone, Debug)]
pub enum EnablePlan {
    /// Encryption is already configured as asked; nothing to do.
    AlreadyEnabled { config: PathBuf, summary: String },
    /// Files to change.
    Change(Box<Change>),
}

/// A new configuration: `resources` encrypted with a fresh key of the provider, identity second so existing
/// plaintext objects stay readable until they are rewritten.
pub fn new_config(
    provider: &ProviderChoice,
    resources: &[String],
) -> Result<EncryptionConfiguration> {
    let first = match provider {
        ProviderChoice::Local(kind) => {
            let keys = KeysConfiguration {
                keys: vec![Key::generate("key1", *kind)?],
            };
            match kind {
                ProviderKind::Secretbox => ProviderConfiguration::Secretbox(keys),
                ProviderKind::Aesgcm => ProviderConfiguration::Aesgcm(keys),
                ProviderKind::Aescbc => ProviderConfiguration::Aescbc(keys),
                other => {
                    return Err(EncryptError::Refused(format!(
                        "{other} is not a local-key provider"
                    )));
                }
            }
        }
        ProviderChoice::KmsV2 { name, endpoint } => ProviderConfiguration::Kms(KmsConfiguration {
            api_version: Some("v2".into()),
            name: name.clone(),
            endpoint: endpoint.clone(),
            ..Default::default()
        }),
    };
    let cfg = EncryptionConfiguration {
        resources: vec![ResourceConfiguration {
            resources: resources.to_vec(),
            providers: vec![first, ProviderConfiguration::Identity],
        }],
        ..Default::default()
    };
    cfg.validate()?;
    Ok(cfg)
}

/// Serializes a config and checks that the text loads back strictly to the same configuration.
pub fn render_config(cfg: &EncryptionConfiguration, origin: &str) -> Result<ConfigText> {
    let text = cfg.to_yaml();
    let back = EncryptionConfiguration::from_text(&text, origin)?;
    if &back != cfg {
        return Err(EncryptError::Refused(format!(
            "{origin}: the serialized configuration does not read back the same"
        )));
    }
    Ok(ConfigText(text))
}

/// Whether `cfg` writes every one of `resources` with `provider` (as the apiserver picks the write provider).
pub fn writes_with(
    cfg: &EncryptionConfiguration,
    resources: &[String],
    provider: &ProviderChoice,
) -> bool {
    resources.iter().all(|r| {
        cfg.write_provider_for(&GroupResource::parse(r))
            .is_some_and(|p| {
                p.kind() == provider.kind()
                    && match (p, provider) {
                        (ProviderConfiguration::Kms(k), ProviderChoice::KmsV2 { name, .. }) => {
                            k.is_v2() && &k.name == name
                        }
                        _ => true,
                    }
            })
    })
}

/// One line per resource entry: `secrets: secretbox(key1), identity`.
pub fn summarize(cfg: &EncryptionConfiguration) -> String {
    cfg.resources
        .iter()
        .map(|rc| {
            format!(
                "{}: {}",
                rc.resources.join(","),
                providers_summary(&rc.providers)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn providers_summary(ps: &[ProviderConfiguration]) -> String {
    ps.iter()
        .map(|p| match p {
            ProviderConfiguration::Kms(k) => {
                format!("kms{}({})", if k.is_v2() { "v2" } else { "v1" }, k.name)
            }
            other => match other.keys() {
                Some(keys) => format!(
                    "{}({})",
                    other.kind(),
                    keys.iter()
                        .map(|k| k.name.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                None => other.kind().to_string(),
            },
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Preflight for enable: reads the manifest (refusing broken ones), detects an existing flag and config, and
/// returns either "already enabled as asked" or the change to make (a new config with a fresh key, or an existing
/// config at the requested path that already matches, and the manifest edit).
pub fn plan_enable(node: &Node, req: &EnableRequest) -> Result<EnablePlan> {
    let m = node.load_manifest()?;
    m.validate()?;
    let want = node.config.to_string_lossy().to_string();
    let reload = req.automatic_reload.then_some(true);
    if let Some(current) = m.encryption_provider_config() {
        if Path::new(&current) != node.config {
            return Err(EncryptError::Refused(format!(
                "kube-apiserver already uses --encryption-provider-config={current} (in {}); to change keys run `kubectl encrypt rotate --config {current}`, to switch it off run `kubectl encrypt disable --config {current}`",
                node.manifest.display()
            )));
        }
        let file = node.configured_config_file(&m).ok_or_else(|| {
            EncryptError::Refused(format!("{current} is not inside any hostPath volume of the kube-apiserver pod; add a volume for it"))
        })?;
        let cfg = config::load(&file)?;
        if !writes_with(&cfg, &req.resources, &req.provider) {
            return Err(EncryptError::Refused(format!(
                "{current} is already in use and configures {}; to switch providers or keys run `kubectl encrypt rotate`, or `kubectl encrypt disable` first",
                summarize(&cfg)
            )));
        }
        let edit = m.enable_encryption(&want, reload)?;
        if !edit.changed() {
            return Ok(EnablePlan::AlreadyEnabled {
                config: node.config.clone(),
                summary: summarize(&cfg),
            });
        }
        let hash = file_hash(&file)?;
        return Ok(EnablePlan::Change(Box::new(enable_change(
            m, edit, None, &hash,
        )?)));
    }
    let file = node.config_file();
    let hash;
    let config = if file.exists() {
        let cfg = config::load(&file).map_err(|e| {
            EncryptError::Refused(format!("{} already exists and does not load ({e}); move it away or choose another --config", file.display()))
        })?;
        if !writes_with(&cfg, &req.resources, &req.provider) {
            return Err(EncryptError::Refused(format!(
                "{} already exists and configures {}, not what was asked; move it away or choose another --config",
                file.display(),
                summarize(&cfg)
            )));
        }
        hash = file_hash(&file)?;
        None
    } else {
        let cfg = new_config(&req.provider, &req.resources)?;
        let text = render_config(&cfg, &want)?;
        hash = text.sha256();
        Some((cfg, text))
    };
    let edit = m.enable_encryption(&want, reload)?;
    Ok(EnablePlan::Change(Box::new(enable_change(
        m, edit, config, &hash,
    )?)))
}

/// `sha256:<hex>` of a config file.
pub(crate) fn file_hash(file: &Path) -> Result<String> {
    let bytes = fsutil::read(file)?;
    Ok(config_hash(&bytes))
}

/// The enable change: the manifest edit plus [`CONFIG_HASH_ANNOTATION`] naming the config the server will run
/// with, so the other control-plane nodes (rotate's and enable's HA checks) can see which config it loaded.
fn enable_change(
    before: Manifest,
    edit: manifest::Edit,
    config: Option<(EncryptionConfiguration, ConfigText)>,
    hash: &str,
) -> Result<Change> {
    let mut changes = edit.changes;
    let after = match edit.manifest.set_annotation(CONFIG_HASH_ANNOTATION, hash)? {
        Some(m) => {
            changes.push(format!("set {CONFIG_HASH_ANNOTATION}"));
            m
        }
        None => edit.manifest,
    };
    Ok(Change {
        config,
        before,
        after,
        manifest_changes: changes,
    })
}

/// Backups taken by [`Node::apply_files`].
#[derive(Clone, Debug, Default)]
pub struct Backups {
    /// The manifest's backup.
    pub manifest: Option<PathBuf>,
    /// The previous config's backup (when a config was replaced).
    pub config: Option<PathBuf>,
    /// The config file did not exist before (created by this change).
    pub config_created: bool,
}

impl Node {
    /// Writes a change to disk: the config (0600, atomically, then loaded and validated like the apiserver does)
    /// and the manifest (after a backup outside the manifests directory). Returns the backups.
    pub fn apply_files(&self, change: &Change) -> Result<Backups> {
        let mut backups = Backups::default();
        if let Some((_, text)) = &change.config {
            let file = self.config_file();
            if file.exists() {
                backups.config = Some(self.backup(&file)?);
            } else {
                backups.config_created = true;
                if let Some(dir) = file.parent()
                    && !dir.exists()
                {
                    fsutil::ensure_dir_with_mode(dir, 0o700)?;
                }
            }
            self.write_config(text.expose().as_bytes())?;
            config::load(&file)?;
        } else {
            // An existing config (copied from another node, or written by hand) must be readable by the server.
            self.own_config()?;
        }
        if change.before.text() != change.after.text() {
            let file = self.manifest_file();
            backups.manifest = Some(self.backup(&file)?);
            fsutil::write_atomic(&file, change.after.text().as_bytes())?;
        }
        Ok(backups)
    }

    /// Puts the backups back byte for byte (a config this change created is left: it is 0600 and unused).
    pub fn restore(&self, backups: &Backups) -> Result<()> {
        if let Some(b) = &backups.config {
            let bytes = fsutil::read(b)?;
            self.write_config(&bytes)?;
        }
        if let Some(b) = &backups.manifest {
            let bytes = fsutil::read(b)?;
            fsutil::write_atomic(&self.manifest_file(), &bytes)?;
        }
        Ok(())
    }

    /// Applies a change and waits for the API server to run it; on failure restores the backups, waits for
    /// recovery and returns [`EncryptError::RolledBack`].
    pub async fn roll_out(
        &self,
        client: &Client,
        change: &Change,
        timeout: Duration,
        what: &str,
        progress: &dyn Fn(&str),
    ) -> Result<Backups> {
        let backups = self.apply_files(change)?;
        // Each fact once, as it happens: what was written, where the backup is, then the wait.
        let applied = change.applied_text(self, &backups);
        if !applied.is_empty() {
            progress(&applied);
        }
        progress(&format!(
            "waiting up to {}s for kube-apiserver to restart with the change",
            timeout.as_secs()
        ));
        match wait_for_apiserver(client, &change.after, timeout, progress).await {
            Ok(()) => Ok(backups),
            Err(reason) => {
                progress(&format!("{what} failed: {reason}; restoring the backup"));
                self.restore(&backups)?;
                let recovered = wait_for_apiserver(
                    client,
                    &change.before,
                    timeout.max(Duration::from_secs(60)),
                    progress,
                )
                .await
                .is_ok();
                Err(EncryptError::RolledBack {
                    what: what.to_string(),
                    reason,
                    backup: backups.manifest.clone().unwrap_or_default(),
                    config_backup: backups.config.clone(),
                    recovered,
                })
            }
        }
    }
}

/// A config backup (in [`BACKUP_DIR`]) holding keys that the current config no longer has.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RetiredKeyBackup {
    /// The backup file (on this machine, under the root).
    pub path: PathBuf,
    /// Names of the keys in it that the current config does not have (compared by key material).
    pub keys: Vec<String>,
}

fn key_material(cfg: &EncryptionConfiguration) -> Vec<(String, Vec<u8>)> {
    cfg.resources
        .iter()
        .flat_map(|rc| rc.providers.iter())
        .flat_map(|p| p.keys().unwrap_or(&[]).iter())
        .map(|k| (k.name.clone(), k.secret.decode().unwrap_or_default()))
        .collect()
}

impl Node {
    /// The backups of this node's config (`<config file name>.<UTC time>[.n]` in the backup directory, written by
    /// [`fsutil::backup`]) that hold keys `current` does not have (every key when there is no config). Backups that
    /// do not load as a config are skipped.
    pub fn retired_key_backups(
        &self,
        current: Option<&EncryptionConfiguration>,
    ) -> Result<Vec<RetiredKeyBackup>> {
        let dir = self.backup_dir();
        let Some(name) = self
            .config
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
        else {
            return Ok(Vec::new());
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(fsutil::FsError {
                    op: "read directory",
                    path: dir,
                    source,
                }
                .into());
            }
        };
        let kept: Vec<Vec<u8>> = current
            .map(key_material)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, m)| m)
            .collect();
        let prefix = format!("{name}.");
        let mut out = Vec::new();
        for e in entries.flatten() {
            let file_name = e.file_name().to_string_lossy().to_string();
            let Some(stamp) = file_name.strip_prefix(&prefix) else {
                continue;
            };
            // `<YYYYMMDDTHHMMSSZ>` or `<...Z>.<n>`: not `enc.yaml.rotation` or other files.
            let stamp = stamp.split('.').next().unwrap_or_default();
            if !(stamp.len() == 16 && stamp.ends_with('Z') && stamp.as_bytes()[8] == b'T') {
                continue;
            }
            let Ok(cfg) = config::load(&e.path()) else {
                continue;
            };
            let mut keys: Vec<String> = key_material(&cfg)
                .into_iter()
                .filter(|(_, m)| !kept.contains(m))
                .map(|(n, _)| n)
                .collect();
            keys.dedup();
            if !keys.is_empty() {
                out.push(RetiredKeyBackup {
                    path: e.path(),
                    keys,
                });
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// After a rotation removed `retired` (key names) from the config at its end: deletes the config backups that
    /// still hold one of them (their material no longer in `current`), so a leaked key does not stay on disk.
    /// Returns what was removed.
    pub fn remove_retired_key_backups(
        &self,
        current: &EncryptionConfiguration,
        retired: &[String],
    ) -> Result<Vec<RetiredKeyBackup>> {
        let mut removed = Vec::new();
        for b in self.retired_key_backups(Some(current))? {
            if !b.keys.iter().any(|k| retired.contains(k)) {
                continue;
            }
            std::fs::remove_file(&b.path).map_err(|source| fsutil::FsError {
                op: "remove",
                path: b.path.clone(),
                source,
            })?;
            removed.push(b);
        }
        if !removed.is_empty() {
            fsutil::sync_dir(&self.backup_dir())?;
        }
        Ok(removed)
    }
}

/// What became of kubeadm's ClusterConfiguration ([`sync_kubeadm_config`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KubeadmSync {
    /// Updated: one line per change, and the backup of the previous document.
    Updated {
        changes: Vec<String>,
        backup: PathBuf,
    },
    /// Already carried the manifest's encryption settings.
    InSync,
    /// No `kube-system/kubeadm-config` (not a kubeadm cluster): nothing to keep in step.
    NotKubeadm,
}

/// Keeps `kube-system/kubeadm-config` in step with this node's manifest (see [`crate::kubeadm`]): `kubeadm
/// upgrade` regenerates the manifest from it and `kubeadm join --control-plane` builds new nodes from it. The
/// previous document is backed up (0600) into the backup directory before the ConfigMap is replaced (with its
/// resourceVersion: a concurrent change is re-read once).
pub async fn sync_kubeadm_config(node: &Node, client: &Client) -> Result<KubeadmSync> {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::PostParams;

    use crate::kubeadm::{self, CLUSTER_CONFIGURATION_KEY, ClusterConfiguration};
    let m = node.load_manifest()?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), kubeadm::CONFIG_MAP_NAMESPACE);
    let origin = format!(
        "ConfigMap {}/{} {CLUSTER_CONFIGURATION_KEY}",
        kubeadm::CONFIG_MAP_NAMESPACE,
        kubeadm::CONFIG_MAP
    );
    for attempt in 0..2 {
        let mut cm = match api.get_opt(kubeadm::CONFIG_MAP).await {
            Ok(Some(cm)) => cm,
            Ok(None) => return Ok(KubeadmSync::NotKubeadm),
            Err(source) => {
                let what = format!("reading {origin}");
                return Err(EncryptError::Kube { what, source });
            }
        };
        let Some(text) = cm
            .data
            .as_ref()
            .and_then(|d| d.get(CLUSTER_CONFIGURATION_KEY))
            .cloned()
        else {
            return Ok(KubeadmSync::NotKubeadm);
        };
        let cc = ClusterConfiguration::parse(&text, &origin)
            .map_err(|e| EncryptError::Refused(e.to_string()))?;
        let (synced, changes) =
            kubeadm::sync(&cc, &m).map_err(|e| EncryptError::Refused(e.to_string()))?;
        if changes.is_empty() {
            return Ok(KubeadmSync::InSync);
        }
        let dir = node.backup_dir();
        fsutil::ensure_dir_with_mode(&dir, 0o700)?;
        let backup = dir.join(format!(
            "kubeadm-config.yaml.{}",
            fsutil::utc_timestamp(std::time::SystemTime::now())
        ));
        fsutil::write_private(&backup, text.as_bytes())?;
        cm.data
            .get_or_insert_with(Default::default)
            .insert(CLUSTER_CONFIGURATION_KEY.into(), synced.text());
        match api
            .replace(kubeadm::CONFIG_MAP, &PostParams::default(), &cm)
            .await
        {
            Ok(_) => return Ok(KubeadmSync::Updated { changes, backup }),
            Err(kube::Error::Api(s)) if s.code == 409 && attempt == 0 => continue,
            Err(source) => {
                let what = format!("updating {origin}");
                return Err(EncryptError::Kube { what, source });
            }
        }
    }
    Err(EncryptError::Api(format!(
        "updating {origin}: changed concurrently twice; run the command again"
    )))
}

/// What `status` says about kubeadm-config and the other control-plane nodes: a one-line summary and the drift
/// (differences `kubeadm upgrade`/`join` or another API server would act on).
async fn kubeadm_status(m: &Manifest, client: &Client) -> (String, Vec<String>) {
    use k8s_openapi::api::core::v1::ConfigMap;

    use crate::kubeadm::{self, CLUSTER_CONFIGURATION_KEY, ClusterConfiguration};
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), kubeadm::CONFIG_MAP_NAMESPACE);
    let text = match api.get_opt(kubeadm::CONFIG_MAP).await {
        Ok(Some(cm)) => cm
            .data
            .and_then(|mut d| d.remove(CLUSTER_CONFIGURATION_KEY)),
        Ok(None) => None,
        Err(e) => return (format!("unknown ({e})"), Vec::new()),
    };
    let Some(text) = text else {
        return (
            "not found (kube-system/kubeadm-config: not a kubeadm cluster)".into(),
            Vec::new(),
        );
    };
    match ClusterConfiguration::parse(&text, "kubeadm-config") {
        Ok(cc) => {
            let drift: Vec<String> = kubeadm::drift(&cc, m)
                .into_iter()
                .map(|d| format!("{d}: `kubeadm upgrade` would undo it, a joined node would not have it; run `kubectl encrypt` (enable, rotate or disable) again without --no-kubeadm-config"))
                .collect();
            (
                format!(
                    "{:?}, {}",
                    cc.version(),
                    if drift.is_empty() {
                        "in step with the manifest"
                    } else {
                        "differs from the manifest"
                    }
                )
                .to_lowercase(),
                drift,
            )
        }
        Err(e) => (format!("unreadable ({e})"), Vec::new()),
    }
}

/// Differences between the control-plane nodes' API servers: the config each runs with (flag and hash).
fn node_drift(pods: &[MirrorPodStatus]) -> Vec<String> {
    let describe = |p: &MirrorPodStatus| match (&p.encryption_provider_config, &p.config_hash) {
        (None, _) => "no encryption config".to_string(),
        (Some(c), Some(h)) => format!("{c} ({h})"),
        (Some(c), None) => format!("{c} (hash unknown)"),
    };
    let mut seen: Vec<String> = pods.iter().map(describe).collect();
    seen.sort();
    seen.dedup();
    if seen.len() <= 1 {
        return Vec::new();
    }
    vec![format!(
        "the control-plane nodes' API servers run different encryption configs: {}",
        pods.iter()
            .map(|p| format!("{} (node {}): {}", p.name, p.node, describe(p)))
            .collect::<Vec<_>>()
            .join("; ")
    )]
}

/// How a kube-apiserver mirror pod looks.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MirrorPodStatus {
    /// Pod name (`kube-apiserver-<node>`).
    pub name: String,
    /// Node name.
    pub node: String,
    /// `--encryption-provider-config` on its command line.
    pub encryption_provider_config: Option<String>,
    /// `--encryption-provider-config-automatic-reload` is true.
    pub automatic_reload: bool,
    /// The [`CONFIG_HASH_ANNOTATION`] value.
    pub config_hash: Option<String>,
    /// Ready condition true.
    pub ready: bool,
    /// Waiting reason of the container (`CrashLoopBackOff`, ...).
    pub waiting_reason: Option<String>,
    /// Container restarts.
    pub restarts: i32,
    #[serde(skip)]
    command: Vec<String>,
    /// The host path on its node behind `encryption_provider_config` (through the pod's hostPath mounts).
    #[serde(skip)]
    config_host_path: Option<PathBuf>,
}

/// The kube-apiserver mirror pods (label `component=kube-apiserver` in the manifest's namespace).
pub async fn mirror_pods(client: &Client, namespace: &str) -> Result<Vec<MirrorPodStatus>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().labels("component=kube-apiserver"))
        .await
        .map_err(|source| EncryptError::Kube {
            what: "listing kube-apiserver pods".into(),
            source,
        })?;
    Ok(list.items.iter().filter_map(pod_status).collect())
}

fn pod_status(p: &Pod) -> Option<MirrorPodStatus> {
    let spec = p.spec.as_ref()?;
    let c = spec
        .containers
        .iter()
        .find(|c| c.name == "kube-apiserver")
        .or(spec.containers.first())?;
    let mut command: Vec<String> = c.command.clone().unwrap_or_default();
    command.extend(c.args.clone().unwrap_or_default());
    let flag = |name: &str| {
        let long = format!("--{name}=");
        command
            .iter()
            .rev()
            .find_map(|a| a.strip_prefix(&long).map(str::to_string))
    };
    let status = p.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let cs = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|v| v.first());
    let config = flag(manifest::CONFIG_FLAG);
    // The mirror pod is the static pod's manifest: the manifest reader maps the flag through its mounts.
    let config_host_path = config.as_deref().and_then(|c| {
        let json = serde_json::to_string(p).ok()?;
        Manifest::parse(&json, "mirror pod").ok()?.host_path_for(c)
    });
    Some(MirrorPodStatus {
        name: p.metadata.name.clone().unwrap_or_default(),
        node: spec.node_name.clone().unwrap_or_default(),
        encryption_provider_config: config,
        automatic_reload: flag(manifest::RELOAD_FLAG).is_some_and(|v| v == "true"),
        config_hash: p
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CONFIG_HASH_ANNOTATION))
            .cloned(),
        ready,
        waiting_reason: cs
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.clone()),
        restarts: cs.map_or(0, |c| c.restart_count),
        command,
        config_host_path,
    })
}

/// HA preflight of enable (before anything changes): every kube-apiserver of a control plane must run with the
/// same EncryptionConfiguration (kubernetes/website `encrypt-data.md`: "the encryption configuration file must be
/// the same" on every control-plane node), or a Secret written through one server is unreadable through another.
/// Looks at the other API servers' mirror pods (the ones whose command line is not this node's manifest, as
/// rotate does): when one already runs with `--encryption-provider-config` and this change would generate a new
/// key, or this node's config file differs from the one that server was restarted with
/// ([`CONFIG_HASH_ANNOTATION`]), refuses naming that server's node and what to copy where. Returns notes for the
/// cases it cannot decide (a server configured by hand, or reloading its config automatically, shows no reliable
/// hash).
pub async fn check_other_servers_for_enable(
    node: &Node,
    client: &Client,
    change: &Change,
) -> Result<Vec<String>> {
    let local = change.before.command_line();
    let pods = tokio::time::timeout(
        Duration::from_secs(30),
        mirror_pods(client, change.before.namespace()),
    )
    .await
    .unwrap_or_else(|_| {
        Err(EncryptError::Api(
            "listing kube-apiserver pods timed out".into(),
        ))
    })?;
    let encrypted: Vec<&MirrorPodStatus> = pods
        .iter()
        .filter(|p| p.command != local && p.encryption_provider_config.is_some())
        .collect();
    if encrypted.is_empty() {
        return Ok(Vec::new());
    }
    let local_hash = match &change.config {
        Some(_) => None,
        None => std::fs::read(node.config_file())
            .ok()
            .map(|b| config_hash(&b)),
    };
    let copy_hint = |p: &MirrorPodStatus| {
        let theirs = p
            .config_host_path
            .as_ref()
            .map(|h| h.display().to_string())
            .or_else(|| p.encryption_provider_config.clone())
            .unwrap_or_default();
        format!(
            "copy {theirs} from node {} to {} on this node (mode 0600) and run this command again, or copy it anywhere on this node and pass --config FILE",
            p.node,
            node.config.display()
        )
    };
    let mut notes = Vec::new();
    let mut mismatched = Vec::new();
    for p in &encrypted {
        let who = format!(
            "{} (node {}) runs with --encryption-provider-config={}",
            p.name,
            p.node,
            p.encryption_provider_config.as_deref().unwrap_or_default()
        );
        match (&local_hash, &p.config_hash) {
            (None, _) => {
                return Err(EncryptError::Refused(format!(
                    "{who}; enabling here would generate a different key, and Secrets written through one API server could not be read through the other: {}",
                    copy_hint(p)
                )));
            }
            (Some(mine), Some(theirs)) if !p.automatic_reload => {
                if mine == theirs {
                    return Ok(Vec::new());
                }
                mismatched.push(p);
            }
            (Some(_), _) => notes.push(format!(
                "{who}{}; cannot tell whether it is the same as {}: make sure both files are identical",
                if p.automatic_reload {
                    " and reloads it automatically (its mirror pod does not show which config it loaded)"
                } else {
                    ", not set by `kubectl encrypt`"
                },
                node.config.display()
            )),
        }
    }
    if let Some(p) = mismatched.first() {
        return Err(EncryptError::Refused(format!(
            "{} (node {}) runs with a different encryption config ({}) than {} on this node ({}); Secrets written through one API server could not be read through the other: {}",
            p.name,
            p.node,
            p.config_hash.as_deref().unwrap_or_default(),
            node.config.display(),
            local_hash.as_deref().unwrap_or_default(),
            copy_hint(p)
        )));
    }
    Ok(notes)
}

/// Restarts after which a CrashLoopBackOff mirror pod ends the wait early.
const CRASH_LOOP_RESTARTS: i32 = 3;

/// `GET /readyz?verbose` answers 200. On a failure the error carries the failing checks as the server lists them
/// (`[-]kms-providers failed: reason withheld`; apiserver `pkg/server/healthz/healthz.go` prints every check when
/// one fails).
pub async fn readyz(client: &Client) -> Result<(), String> {
    let req = http::Request::get("/readyz?verbose")
        .body(kube::client::Body::from(Vec::new()))
        .map_err(|e| e.to_string())?;
    let resp = client
        .send(req)
        .await
        .map_err(|e| format!("/readyz: {e}"))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect_bytes()
        .await
        .map_err(|e| format!("/readyz: {e}"))?;
    let body = String::from_utf8_lossy(&body);
    if status.is_success() {
        return Ok(());
    }
    let failed: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("[-]"))
        .collect();
    Err(if failed.is_empty() {
        format!(
            "/readyz answered {status}: {:?}",
            body.chars().take(200).collect::<String>()
        )
    } else {
        format!("/readyz answered {status}: {}", failed.join(", "))
    })
}

/// What one look of a [`poll`] loop saw.
pub(crate) enum Look {
    /// What was waited for happened.
    Done,
    /// Not yet: what was seen instead.
    Pending(String),
    /// Waiting longer cannot help: why.
    Failed(String),
}

/// Looks every 500 ms, each look bounded by 5 s, until `look` is done or failed or `timeout` has passed. What is
/// seen is reported through `progress` each time it changes; after the timeout the error is
/// `timed_out(seconds, last seen)`.
pub(crate) async fn poll<F, Fut>(
    timeout: Duration,
    progress: &dyn Fn(&str),
    timed_out: impl Fn(u64, &str) -> String,
    mut look: F,
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Look>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let seen = match tokio::time::timeout(Duration::from_secs(5), look()).await {
            Ok(Look::Done) => return Ok(()),
            Ok(Look::Failed(e)) => return Err(e),
            Ok(Look::Pending(seen)) => seen,
            Err(_) => "request timed out".to_string(),
        };
        if seen != last {
            progress(&format!("  {seen}"));
            last = seen;
        }
        if Instant::now() >= deadline {
            return Err(timed_out(timeout.as_secs(), &last));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until `/readyz` answers and a Ready kube-apiserver mirror pod runs exactly `expected`'s command line
/// (and its config-hash annotation). Polls every 500 ms; the error says what was last seen.
pub async fn wait_for_apiserver(
    client: &Client,
    expected: &Manifest,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> Result<(), String> {
    let want_cmd = &expected.command_line();
    let want_hash = &expected.annotation(CONFIG_HASH_ANNOTATION);
    let ns = expected.namespace();
    let look = || async move {
        if let Err(e) = readyz(client).await {
            return Look::Pending(e);
        }
        let pods = match mirror_pods(client, ns).await {
            Ok(p) => p,
            Err(e) => return Look::Pending(crate::cli::error_chain(&e)),
        };
        let matching: Vec<&MirrorPodStatus> = pods
            .iter()
            .filter(|p| {
                &p.command == want_cmd && (want_hash.is_none() || &p.config_hash == want_hash)
            })
            .collect();
        if matching.iter().any(|p| p.ready) {
            return Look::Done;
        }
        if let Some(p) = matching.first() {
            // The kubelet's back-off reason: the new container keeps exiting (seen from another API server
            // of an HA control plane; a single one is simply unreachable while it crash-loops).
            if p.waiting_reason.as_deref() == Some("CrashLoopBackOff")
                && p.restarts >= CRASH_LOOP_RESTARTS
            {
                return Look::Failed(format!(
                    "kube-apiserver is crash-looping with the change: mirror pod {} is in CrashLoopBackOff after {} restarts",
                    p.name, p.restarts
                ));
            }
            return Look::Pending(format!(
                "mirror pod {} has the new flags but is not Ready{}",
                p.name,
                p.waiting_reason
                    .as_ref()
                    .map(|r| format!(" ({r}, {} restarts)", p.restarts))
                    .unwrap_or_default()
            ));
        }
        Look::Pending(if pods.is_empty() {
            "no kube-apiserver mirror pod yet".to_string()
        } else {
            "the kube-apiserver mirror pod still runs the previous command line".to_string()
        })
    };
    poll(
        timeout,
        progress,
        |secs, last| {
            format!("kube-apiserver was not ready with the change after {secs}s (last: {last})")
        },
        look,
    )
    .await
}

/// A manifest with [`CONFIG_HASH_ANNOTATION`] set to `hash` (which makes the kubelet restart the pod).
pub fn with_config_hash(m: &Manifest, hash: &str) -> Result<Manifest> {
    Ok(m.set_annotation(CONFIG_HASH_ANNOTATION, hash)?
        .unwrap_or_else(|| m.clone()))
}

/// Writes a new config and makes kube-apiserver use it, rolling back on failure: with automatic reload in the
/// manifest by waiting for the server's reload ([`reload_with_config`], asking `local`, a client of this node's
/// own API server, when given: through a load balancer `client` may reach another one), otherwise by restarting
/// it through the config-hash annotation.
pub async fn restart_with_config(
    node: &Node,
    client: &Client,
    local: Option<&Client>,
    cfg: &EncryptionConfiguration,
    timeout: Duration,
    what: &str,
    progress: &dyn Fn(&str),
) -> Result<()> {
    let text = render_config(cfg, &node.config.to_string_lossy())?;
    let before = node.load_manifest()?;
    before.validate()?;
    let config_path = node.config.to_string_lossy();
    if before.automatic_reload()
        && before.encryption_provider_config().as_deref() == Some(&*config_path)
    {
        if before.is_single_file_mount(&config_path) {
            // The running container holds the inode it started with: the file written by rename below is only
            // seen after a restart. Writing in place instead would let the reload poll read a half-written file
            // (a failed reload, which rolls the change back), so restart as without automatic reload.
            progress(&format!(
                "{config_path} is mounted into kube-apiserver as a single file: the running server cannot see a new version of it, restarting it instead of waiting for a reload"
            ));
        } else {
            // The running server reloads the file itself: no restart (reload.rs).
            return reload_with_config(
                node,
                local.unwrap_or(client),
                &text,
                timeout,
                what,
                progress,
            )
            .await;
        }
    }
    let after = with_config_hash(&before, &text.sha256())?;
    let current = std::fs::read(node.config_file()).ok();
    if current.as_deref() == Some(text.expose().as_bytes()) && after.text() == before.text() {
        // Already written and restarted with it: only make sure the server runs it.
        return wait_for_apiserver(client, &after, timeout, progress)
            .await
            .map_err(|reason| EncryptError::Api(format!("{what}: {reason}")));
    }
    let change = Change {
        config: Some((cfg.clone(), text)),
        before,
        after,
        manifest_changes: vec![format!("set {CONFIG_HASH_ANNOTATION}")],
    };
    node.roll_out(client, &change, timeout, what, progress)
        .await
        .map(|_| ())
}

/// Status of encryption at rest on this node, for `kubectl encrypt status`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The manifest (node path).
    pub manifest: String,
    /// `--encryption-provider-config` in the manifest.
    pub config: Option<String>,
    /// The file it resolves to on this node (through the pod's mounts).
    pub config_file: Option<String>,
    /// `--encryption-provider-config-automatic-reload` in the manifest.
    pub automatic_reload: bool,
    /// Per resource entry: resources and providers in order (key names only).
    pub resources: Vec<ResourceStatus>,
    /// Why the config could not be read, if it could not.
    pub config_error: Option<String>,
    /// `sha256:<hex>` of the config file.
    pub config_hash: Option<String>,
    /// The kube-apiserver mirror pods, when the API server was reachable.
    pub mirror_pods: Option<Vec<MirrorPodStatus>>,
    /// Why the API server could not be asked, if it could not.
    pub api_error: Option<String>,
    /// An unfinished rotation, if any.
    pub rotation: Option<RotationState>,
    /// Objects per resource, storage and key, read from etcd (when reachable).
    pub storage: Option<Vec<StorageCount>>,
    /// Why etcd could not be read, if it could not.
    pub etcd_error: Option<String>,
    /// Config backups holding keys no longer in the config (delete them once no etcd backup needs those keys).
    pub retired_key_backups: Vec<RetiredKeyBackup>,
    /// kubeadm's ClusterConfiguration (kube-system/kubeadm-config), when the API server was reachable.
    pub kubeadm_config: Option<String>,
    /// Drift between the manifest and kubeadm-config, and between the control-plane nodes' API servers.
    pub drift: Vec<String>,
}

/// One resource entry in [`Status`].
#[derive(Clone, Debug, Serialize)]
pub struct ResourceStatus {
    /// Resource strings.
    pub resources: Vec<String>,
    /// Providers in order, e.g. `secretbox(key2,key1)`, `identity`.
    pub providers: Vec<String>,
}

/// Reads the node's encryption status; `client` (when given) adds the mirror pods.
pub async fn status(node: &Node, client: Option<&Client>) -> Result<Status> {
    let m = node.load_manifest()?;
    let config = m.encryption_provider_config();
    let config_file = node.configured_config_file(&m);
    let mut st = Status {
        manifest: node.manifest.display().to_string(),
        config: config.clone(),
        config_file: config_file.as_ref().map(|p| p.display().to_string()),
        automatic_reload: m.automatic_reload(),
        resources: Vec::new(),
        config_error: None,
        config_hash: None,
        mirror_pods: None,
        api_error: None,
        rotation: None,
        storage: None,
        etcd_error: None,
        retired_key_backups: Vec::new(),
        kubeadm_config: None,
        drift: Vec::new(),
    };
    match (&config, &config_file) {
        (Some(_), Some(file)) => match config::load(file) {
            Ok(cfg) => {
                st.resources = cfg
                    .resources
                    .iter()
                    .map(|rc| ResourceStatus {
                        resources: rc.resources.clone(),
                        providers: providers_summary(&rc.providers)
                            .split(", ")
                            .map(str::to_string)
                            .collect(),
                    })
                    .collect();
                st.config_hash = std::fs::read(file).ok().map(|b| config_hash(&b));
            }
            Err(e) => st.config_error = Some(e.to_string()),
        },
        (Some(c), None) => {
            st.config_error = Some(format!(
                "{c} is not inside any hostPath volume of the pod: kube-apiserver cannot read it"
            ))
        }
        _ => {}
    }
    let status_node = Node {
        config: config
            .as_deref()
            .map(PathBuf::from)
            .unwrap_or_else(|| node.config.clone()),
        ..node.clone()
    };
    st.rotation = RotationState::load(&status_node.phase_file())
        .ok()
        .flatten();
    let current = config::load(
        &config_file
            .clone()
            .unwrap_or_else(|| status_node.config_file()),
    )
    .ok();
    st.retired_key_backups = status_node
        .retired_key_backups(current.as_ref())
        .unwrap_or_default();
    let mut resources: Vec<String> = st
        .resources
        .iter()
        .flat_map(|r| r.resources.iter().filter(|r| !r.contains('*')).cloned())
        .collect();
    if resources.is_empty() {
        resources.push("secrets".into());
    }
    let counts = match storage::etcd_access(node, &m) {
        Ok(e) => tokio::time::timeout(
            Duration::from_secs(20),
            storage::storage_counts(&e, &resources),
        )
        .await
        .unwrap_or_else(|_| Err(EncryptError::Api("reading etcd timed out".into()))),
        Err(e) => Err(e),
    };
    match counts {
        Ok(c) => st.storage = Some(c),
        Err(e) => st.etcd_error = Some(e.to_string()),
    }
    if let Some(client) = client {
        let ns = m.namespace();
        match mirror_pods(client, ns).await {
            Ok(p) => {
                st.drift.extend(node_drift(&p));
                st.mirror_pods = Some(p);
            }
            Err(e) => st.api_error = Some(crate::cli::error_chain(&e)),
        }
        if st.api_error.is_none() {
            let (summary, drift) = kubeadm_status(&m, client).await;
            st.kubeadm_config = Some(summary);
            st.drift.splice(0..0, drift);
        }
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_paths_resolve_under_the_root() {
        let n = Node::new(
            "/tmp/node",
            "/etc/kubernetes/manifests/kube-apiserver.yaml",
            "/etc/kubernetes/pki/enc.yaml",
        );
        assert_eq!(
            n.manifest_file(),
            PathBuf::from("/tmp/node/etc/kubernetes/manifests/kube-apiserver.yaml")
        );
        assert_eq!(
            n.phase_file(),
            PathBuf::from("/tmp/node/etc/kubernetes/pki/enc.yaml.rotation")
        );
        assert_eq!(
            n.backup_dir(),
            PathBuf::from("/tmp/node/etc/kubernetes/tmp/atrest-backups")
        );
        assert!(
            !n.backup_dir()
                .starts_with(n.manifest_file().parent().unwrap())
        );
    }

    #[test]
    fn new_configs_validate_and_match_the_request() {
        for kind in [
            ProviderKind::Secretbox,
            ProviderKind::Aesgcm,
            ProviderKind::Aescbc,
        ] {
            let p = ProviderChoice::Local(kind);
            let resources = vec!["secrets".to_string(), "configmaps".to_string()];
            let cfg = new_config(&p, &resources).unwrap();
            assert!(writes_with(&cfg, &resources, &p));
            assert!(!writes_with(
                &cfg,
                &resources,
                &ProviderChoice::Local(ProviderKind::Identity)
            ));
            let text = render_config(&cfg, "enc.yaml").unwrap();
            assert!(format!("{text:?}").contains("redacted"));
            assert!(
                !format!("{cfg:?}").contains(
                    cfg.resources[0].providers[0].keys().unwrap()[0]
                        .secret
                        .expose_base64()
                )
            );
            assert_eq!(
                summarize(&cfg),
                format!("secrets,configmaps: {kind}(key1), identity")
            );
        }
        let kms = ProviderChoice::KmsV2 {
            name: "vault".into(),
            endpoint: "unix:///run/kms.sock".into(),
        };
        let cfg = new_config(&kms, &["secrets".into()]).unwrap();
        assert_eq!(summarize(&cfg), "secrets: kmsv2(vault), identity");
        assert!(
            new_config(
                &ProviderChoice::KmsV2 {
                    name: "a:b".into(),
                    endpoint: "unix:///x".into()
                },
                &["secrets".into()]
            )
            .is_err()
        );
    }

    #[test]
    fn mirror_pod_status_reads_flags_annotation_and_crash_loops() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "kube-apiserver-n1", "annotations": {CONFIG_HASH_ANNOTATION: "sha256:ab"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "kube-apiserver", "command": [
                "kube-apiserver", "--encryption-provider-config=/etc/kubernetes/pki/enc.yaml",
                "--encryption-provider-config-automatic-reload=true"]}]},
            "status": {"conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "kube-apiserver", "ready": false, "restartCount": 4, "image": "x", "imageID": "",
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
        }))
        .unwrap();
        let st = pod_status(&pod).unwrap();
        assert_eq!(
            st.encryption_provider_config.as_deref(),
            Some("/etc/kubernetes/pki/enc.yaml")
        );
        assert!(st.automatic_reload);
        assert_eq!(st.config_hash.as_deref(), Some("sha256:ab"));
        assert!(!st.ready);
        assert_eq!(st.waiting_reason.as_deref(), Some("CrashLoopBackOff"));
        assert_eq!(st.restarts, 4);
        let json = serde_json::to_value(&st).unwrap();
        assert!(json.get("command").is_none() && json.get("encryptionProviderConfig").is_some());
    }

    #[test]
    fn config_hash_is_sha256_hex() {
        assert_eq!(
            config_hash(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
