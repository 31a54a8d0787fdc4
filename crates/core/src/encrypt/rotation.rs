//! Key rotation and disabling as resumable phases recorded in a 0600 phase file beside the config.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use serde::{Deserialize, Serialize};

use super::storage::{count_encrypted, count_with_key, etcd_access};
use super::{EncryptError, Node, Result, restart_with_config};
use crate::config::{self, EncryptionConfiguration, Key, ProviderConfiguration, ProviderKind};
use crate::fsutil;
use crate::manifest::Manifest;
use crate::reencrypt;

/// A phase of `rotate` or `disable`, in order.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum RotationPhase {
    /// rotate: add the new key as the second key of the write provider; restart.
    AddKey,
    /// rotate: make the new key the first (write) key; restart.
    Promote,
    /// disable: put `identity: {}` first in every resource entry; restart.
    IdentityFirst,
    /// Rewrite every object of the configured resources (the reencrypt core).
    Rewrite,
    /// Prove from etcd that no object uses the old key (rotate) or any encryption (disable).
    Verify,
    /// rotate: remove the old keys; restart.
    RemoveOld,
    /// disable: remove `--encryption-provider-config` from the manifest; restart.
    RemoveFlag,
}

impl RotationPhase {
    /// The name used by `--phase` and in the phase file.
    pub fn as_str(self) -> &'static str {
        match self {
            RotationPhase::AddKey => "add-key",
            RotationPhase::Promote => "promote",
            RotationPhase::IdentityFirst => "identity-first",
            RotationPhase::Rewrite => "rewrite",
            RotationPhase::Verify => "verify",
            RotationPhase::RemoveOld => "remove-old",
            RotationPhase::RemoveFlag => "remove-flag",
        }
    }
}

/// `rotate` or `disable`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Key rotation.
    Rotate,
    /// Switching encryption off.
    Disable,
}

impl Operation {
    /// The phases in order.
    pub fn phases(self) -> &'static [RotationPhase] {
        match self {
            Operation::Rotate => &[
                RotationPhase::AddKey,
                RotationPhase::Promote,
                RotationPhase::Rewrite,
                RotationPhase::Verify,
                RotationPhase::RemoveOld,
            ],
            Operation::Disable => &[
                RotationPhase::IdentityFirst,
                RotationPhase::Rewrite,
                RotationPhase::Verify,
                RotationPhase::RemoveFlag,
            ],
        }
    }
}

/// The phase file: which operation, which keys, which phases are done. Holds key names, never key bytes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RotationState {
    /// The operation in progress.
    pub operation: Operation,
    /// The rotated provider (`secretbox`, ...); empty for disable.
    pub provider: String,
    /// Key names being retired.
    pub old_keys: Vec<String>,
    /// The new key's name (rotate).
    pub new_key: Option<String>,
    /// Phases completed on this node.
    pub done: Vec<RotationPhase>,
}

impl RotationState {
    /// Reads the phase file; `Ok(None)` when there is none.
    pub fn load(path: &Path) -> Result<Option<RotationState>> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
                EncryptError::Phase(format!(
                    "{}: not a phase file ({e}); remove it to start over",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(fsutil::FsError {
                op: "read",
                path: path.to_path_buf(),
                source,
            }
            .into()),
        }
    }

    /// Writes the phase file (0600, atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).expect("serializable");
        Ok(fsutil::write_private(path, &text)?)
    }

    /// The next phase not yet done.
    pub fn next(&self) -> Option<RotationPhase> {
        self.operation
            .phases()
            .iter()
            .copied()
            .find(|p| !self.done.contains(p))
    }
}

/// Options of `rotate` and `disable`.
#[derive(Clone)]
pub struct RotateOptions {
    /// Run only this phase (HA: run it on every control-plane node before the next one).
    pub phase: Option<RotationPhase>,
    /// How long to wait for each restart.
    pub timeout: Duration,
    /// Workers for the rewrite.
    pub concurrency: usize,
    /// rotate: keep the config backups that hold the retired keys (by default they are deleted once the old keys
    /// are removed).
    pub keep_backups: bool,
    /// A client of this node's own kube-apiserver (its advertise address), for the reload checks; `None`: the
    /// main client.
    pub local_server: Option<Client>,
}

impl std::fmt::Debug for RotateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotateOptions")
            .field("phase", &self.phase)
            .field("timeout", &self.timeout)
            .field("concurrency", &self.concurrency)
            .field("keep_backups", &self.keep_backups)
            .field("local_server", &self.local_server.is_some())
            .finish()
    }
}

/// The resources named in the config, for the rewrite (wildcards cannot be listed and are refused).
fn rewrite_names(cfg: &EncryptionConfiguration) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for rc in &cfg.resources {
        for r in &rc.resources {
            if r.contains('*') {
                return Err(EncryptError::Phase(format!(
                    "the config covers the wildcard {r:?}; rewrite those resources with `kubectl reencrypt RESOURCE...`, then run this command again with --phase verify"
                )));
            }
            if !names.contains(r) {
                names.push(r.clone());
            }
        }
    }
    Ok(names)
}

/// Rewrites every object of the config's resources through the API server (reencrypt core).
pub async fn rewrite_all(
    client: &Client,
    cfg: &EncryptionConfiguration,
    concurrency: usize,
    progress: &dyn Fn(&str),
) -> Result<reencrypt::Report> {
    let names = rewrite_names(cfg)?;
    let targets = reencrypt::resolve(client, &names).await?;
    progress(&format!("rewriting every object of {}", names.join(", ")));
    let (_tx, cancel) = tokio::sync::watch::channel(false);
    let options = reencrypt::Options {
        concurrency: concurrency.max(1),
        ..Default::default()
    };
    let report = reencrypt::run(
        client,
        &targets,
        options,
        cancel,
        Arc::new(reencrypt::NoProgress),
    )
    .await?;
    progress(&format!(
        "rewrote {} objects ({} already current, {} gone, {} failed)",
        report.totals.rewritten, report.totals.current, report.totals.gone, report.totals.failed
    ));
    if report.has_failures() {
        let first = report
            .failures
            .first()
            .map(|f| format!(": {}/{} {}", f.namespace, f.name, f.error))
            .unwrap_or_default();
        return Err(EncryptError::Phase(format!(
            "{} objects could not be rewritten{first}; run this phase again",
            report.totals.failed
        )));
    }
    Ok(report)
}

/// Keyed write providers (`providers[0]` with keys) of every resource entry.
fn keyed_first_providers(cfg: &mut EncryptionConfiguration) -> Vec<&mut Vec<Key>> {
    cfg.resources
        .iter_mut()
        .filter_map(|rc| {
            rc.providers
                .first_mut()
                .and_then(ProviderConfiguration::keys_mut)
        })
        .collect()
}

fn next_key_name(cfg: &EncryptionConfiguration) -> String {
    let names: Vec<String> = cfg
        .resources
        .iter()
        .flat_map(|rc| rc.providers.iter())
        .flat_map(|p| p.keys().unwrap_or(&[]).iter().map(|k| k.name.clone()))
        .collect();
    let max = names
        .iter()
        .filter_map(|n| n.strip_prefix("key").and_then(|d| d.parse::<u64>().ok()))
        .max()
        .unwrap_or(0);
    let mut n = max + 1;
    while names.contains(&format!("key{n}")) {
        n += 1;
    }
    format!("key{n}")
}

fn load_context(node: &Node) -> Result<(Manifest, EncryptionConfiguration)> {
    let m = node.load_manifest()?;
    m.validate()?;
    let current = m.encryption_provider_config().ok_or_else(|| {
        EncryptError::Phase(format!(
            "encryption at rest is not enabled in {}; run `kubectl encrypt` first",
            node.manifest.display()
        ))
    })?;
    if Path::new(&current) != node.config {
        return Err(EncryptError::Phase(format!(
            "the manifest uses --encryption-provider-config={current}, not {}; pass --config {current}",
            node.config.display()
        )));
    }
    let cfg = config::load(&node.config_file())?;
    Ok((m, cfg))
}

/// How often a full run repeats rewrite + verify when the scan still finds objects on the old storage.
const VERIFY_RETRIES: u32 = 2;

/// Runs `rotate` or `disable` (all remaining phases, or `opts.phase`); disable in the safe order: identity first,
/// restart, rewrite, verify, then remove the flag. Returns the state after the run (`done` lists every phase
/// completed; the phase file is removed when the operation finished).
pub async fn run_phases(
    node: &Node,
    client: &Client,
    op: Operation,
    opts: &RotateOptions,
    progress: &dyn Fn(&str),
) -> Result<RotationState> {
    let phase_file = node.phase_file();
    let (_, mut cfg) = load_context(node)?;
    let mut state = match RotationState::load(&phase_file)? {
        Some(s) if s.operation == op => s,
        Some(s) => {
            return Err(EncryptError::Phase(format!(
                "a {:?} is in progress ({}); finish it first (phases done: {})",
                s.operation,
                phase_file.display(),
                s.done
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        None => {
            let s = match op {
                Operation::Rotate => {
                    let provider = cfg
                        .resources
                        .iter()
                        .find_map(|rc| rc.providers.first())
                        .map(|p| p.kind());
                    let keyed: Vec<(ProviderKind, Vec<String>)> = cfg
                        .resources
                        .iter()
                        .filter_map(|rc| rc.providers.first())
                        .filter_map(|p| {
                            p.keys()
                                .map(|k| (p.kind(), k.iter().map(|k| k.name.clone()).collect()))
                        })
                        .collect();
                    if keyed.is_empty() {
                        return Err(EncryptError::Phase(format!(
                            "the write provider is {}; key rotation here applies to aescbc, aesgcm and secretbox keys (rotate a KMS key in the KMS plugin)",
                            provider
                                .map(|p| p.to_string())
                                .unwrap_or_else(|| "none".into())
                        )));
                    }
                    let mut old: Vec<String> = keyed.iter().flat_map(|(_, k)| k.clone()).collect();
                    old.dedup();
                    RotationState {
                        operation: op,
                        provider: keyed[0].0.to_string(),
                        old_keys: old,
                        new_key: Some(next_key_name(&cfg)),
                        done: Vec::new(),
                    }
                }
                Operation::Disable => RotationState {
                    operation: op,
                    provider: String::new(),
                    old_keys: Vec::new(),
                    new_key: None,
                    done: Vec::new(),
                },
            };
            s.save(&phase_file)?;
            progress(&format!(
                "started {:?}; progress is kept in {}",
                op,
                phase_file.display()
            ));
            s
        }
    };
    let phases: Vec<RotationPhase> = match opts.phase {
        Some(p) => {
            if !op.phases().contains(&p) {
                return Err(EncryptError::Phase(format!(
                    "--phase {} is not a phase of {:?} (phases: {})",
                    p.as_str(),
                    op,
                    op.phases()
                        .iter()
                        .map(|p| p.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let missing: Vec<&str> = op
                .phases()
                .iter()
                .take_while(|q| **q != p)
                .filter(|q| !state.done.contains(q))
                .map(|q| q.as_str())
                .collect();
            if !missing.is_empty() {
                return Err(EncryptError::Phase(format!(
                    "--phase {} needs the earlier phases first: {}",
                    p.as_str(),
                    missing.join(", ")
                )));
            }
            vec![p]
        }
        None => op
            .phases()
            .iter()
            .copied()
            .filter(|p| !state.done.contains(p))
            .collect(),
    };
    for phase in phases {
        progress(&format!("phase {}", phase.as_str()));
        let mut result = run_phase(node, client, &mut cfg, &state, phase, opts, progress).await;
        // A full run re-does the rewrite when the scan still finds objects (written meanwhile through a server
        // that had not switched yet); both phases are idempotent. With --phase the admin decides.
        let mut retries = 0;
        while phase == RotationPhase::Verify
            && opts.phase.is_none()
            && retries < VERIFY_RETRIES
            && matches!(result, Err(EncryptError::Phase(_)))
        {
            retries += 1;
            if let Err(e) = &result {
                progress(&format!(
                    "{e}; rewriting again ({retries}/{VERIFY_RETRIES})"
                ));
            }
            run_phase(
                node,
                client,
                &mut cfg,
                &state,
                RotationPhase::Rewrite,
                opts,
                progress,
            )
            .await?;
            result = run_phase(node, client, &mut cfg, &state, phase, opts, progress).await;
        }
        result?;
        if !state.done.contains(&phase) {
            state.done.push(phase);
        }
        if state.next().is_none() {
            let _ = std::fs::remove_file(&phase_file);
            progress(&format!("{:?} finished", op));
        } else {
            state.save(&phase_file)?;
        }
    }
    Ok(state)
}

/// HA: refuses to go on unless every other kube-apiserver (its mirror pod, on any node) was restarted with one of
/// the `allowed` config hashes ([`super::CONFIG_HASH_ANNOTATION`]) and is Ready. The server on this node is
/// recognised by its command line (the manifest here) and skipped: this node's own restart is awaited anyway.
/// A server that reloads its config automatically is refused: its mirror pod does not show what it loaded.
async fn require_other_servers(
    node: &Node,
    client: &Client,
    allowed: &[String],
    need: &str,
    hint: &str,
    progress: &dyn Fn(&str),
) -> Result<()> {
    let m = node.load_manifest()?;
    let ns = m.namespace();
    let local = m.command_line();
    let pods = super::mirror_pods(client, ns).await?;
    let short = |h: &str| h.chars().take(7 + 12).collect::<String>();
    let mut problems = Vec::new();
    let mut others = 0;
    for p in pods.iter().filter(|p| p.command != local) {
        others += 1;
        let who = format!("{} (node {})", p.name, p.node);
        match &p.config_hash {
            _ if p.automatic_reload => problems.push(format!(
                "{who} reloads its config automatically, so its mirror pod does not show which config it loaded (check its /metrics)"
            )),
            Some(h) if allowed.contains(h) && p.ready => {}
            Some(h) if allowed.contains(h) => problems.push(format!("{who} is not Ready")),
            Some(h) => problems.push(format!(
                "{who} runs config {}… (this phase needs {})",
                short(h),
                allowed.iter().map(|a| format!("{}…", short(a))).collect::<Vec<_>>().join(" or ")
            )),
            None => problems.push(format!(
                "{who} was not restarted with a config written by `kubectl encrypt`"
            )),
        }
    }
    if problems.is_empty() {
        if others > 0 {
            progress(&format!("all {others} other API server(s) {need}"));
        }
        return Ok(());
    }
    Err(EncryptError::Phase(format!(
        "not every API server {need}: {}; {hint}",
        problems.join("; ")
    )))
}

fn file_hash(node: &Node) -> Result<String> {
    super::file_hash(&node.config_file())
}

fn rendered_hash(node: &Node, cfg: &EncryptionConfiguration) -> Result<String> {
    Ok(super::render_config(cfg, &node.config.to_string_lossy())?.sha256())
}

/// Proves from etcd that no object uses the old keys (rotate) or any encryption (disable).
async fn verify(node: &Node, state: &RotationState, progress: &dyn Fn(&str)) -> Result<()> {
    let m = node.load_manifest()?;
    let etcd = etcd_access(node, &m)?;
    match state.operation {
        Operation::Rotate => {
            for old in &state.old_keys {
                let (n, ex) = count_with_key(&etcd, &state.provider, old).await?;
                if n > 0 {
                    return Err(EncryptError::Phase(format!(
                        "{n} objects in etcd still use key {old} (e.g. {}); run --phase rewrite again",
                        ex.join(", ")
                    )));
                }
                progress(&format!("etcd scan: no object uses key {old}"));
            }
            Ok(())
        }
        Operation::Disable => {
            let (n, ex) = count_encrypted(&etcd).await?;
            if n > 0 {
                return Err(EncryptError::Phase(format!(
                    "{n} objects in etcd are still encrypted (e.g. {}); run --phase rewrite again",
                    ex.join(", ")
                )));
            }
            progress("etcd scan: no encrypted object remains");
            Ok(())
        }
    }
}

async fn run_phase(
    node: &Node,
    client: &Client,
    cfg: &mut EncryptionConfiguration,
    state: &RotationState,
    phase: RotationPhase,
    opts: &RotateOptions,
    progress: &dyn Fn(&str),
) -> Result<()> {
    let new_name = state.new_key.clone().unwrap_or_default();
    let restart = async |cfg: &EncryptionConfiguration, what: &str| {
        let local = opts.local_server.as_ref();
        restart_with_config(node, client, local, cfg, opts.timeout, what, progress).await
    };
    match phase {
        RotationPhase::AddKey => {
            let kind: ProviderKind = match state.provider.as_str() {
                "aesgcm" => ProviderKind::Aesgcm,
                "aescbc" => ProviderKind::Aescbc,
                _ => ProviderKind::Secretbox,
            };
            let has_new = keyed_first_providers(cfg)
                .iter()
                .all(|keys| keys.iter().any(|k| k.name == new_name));
            if !has_new {
                let key = Key::generate(new_name.clone(), kind)?;
                for keys in keyed_first_providers(cfg) {
                    if !keys.iter().any(|k| k.name == new_name) {
                        keys.insert(1.min(keys.len()), key.clone());
                    }
                }
                progress(&format!(
                    "added key {new_name} as the second key (every API server can now decrypt with it)"
                ));
            }
            restart(cfg, "adding the new key").await
        }
        RotationPhase::Promote => {
            let current = file_hash(node)?;
            for keys in keyed_first_providers(cfg) {
                if let Some(i) = keys.iter().position(|k| k.name == new_name) {
                    let k = keys.remove(i);
                    keys.insert(0, k);
                } else {
                    return Err(EncryptError::Phase(format!(
                        "key {new_name} is not in the config; run --phase add-key first"
                    )));
                }
            }
            // Before any server writes with the new key, every server must be able to read it.
            require_other_servers(
                node,
                client,
                &[current, rendered_hash(node, cfg)?],
                &format!("can decrypt with {new_name}"),
                &format!(
                    "copy {} and {} to that node and run `kubectl encrypt rotate --phase add-key` there first",
                    node.config.display(),
                    node.phase_file().file_name().unwrap_or_default().to_string_lossy()
                ),
                progress,
            )
            .await?;
            progress(&format!(
                "made {new_name} the first key (new writes use it)"
            ));
            restart(cfg, "promoting the new key").await
        }
        RotationPhase::IdentityFirst => {
            for rc in &mut cfg.resources {
                rc.providers
                    .retain(|p| !matches!(p, ProviderConfiguration::Identity));
                rc.providers.insert(0, ProviderConfiguration::Identity);
            }
            progress("put identity first (new writes are plaintext; the keys stay for reading)");
            restart(cfg, "putting identity first").await
        }
        RotationPhase::Rewrite | RotationPhase::Verify => {
            // A server still writing with the old key (or encrypting, for disable) would undo the rewrite.
            let (need, hint) = match state.operation {
                Operation::Rotate => (
                    format!("writes with {new_name}"),
                    format!(
                        "copy {} to that node and run `kubectl encrypt rotate --phase promote` there first",
                        node.config.display()
                    ),
                ),
                Operation::Disable => (
                    "writes plaintext".to_string(),
                    format!(
                        "copy {} to that node and run `kubectl encrypt disable --phase identity-first` there first",
                        node.config.display()
                    ),
                ),
            };
            require_other_servers(node, client, &[file_hash(node)?], &need, &hint, progress)
                .await?;
            if phase == RotationPhase::Rewrite {
                rewrite_all(client, cfg, opts.concurrency, progress)
                    .await
                    .map(|_| ())
            } else {
                verify(node, state, progress).await
            }
        }
        RotationPhase::RemoveOld => {
            let current = file_hash(node)?;
            for keys in keyed_first_providers(cfg) {
                if keys.first().is_none_or(|k| k.name != new_name) {
                    return Err(EncryptError::Phase(format!(
                        "key {new_name} is not the first key; run --phase promote first"
                    )));
                }
                keys.retain(|k| !state.old_keys.contains(&k.name));
            }
            require_other_servers(
                node,
                client,
                &[current, rendered_hash(node, cfg)?],
                &format!("writes with {new_name}"),
                &format!(
                    "copy {} to that node and run `kubectl encrypt rotate --phase promote` there first",
                    node.config.display()
                ),
                progress,
            )
            .await?;
            progress(&format!(
                "removed the old keys {}",
                state.old_keys.join(", ")
            ));
            restart(cfg, "removing the old key").await?;
            // Verify proved no object uses the old keys and the servers run without them: the backups made on
            // the way are the last copies of those keys on this node.
            let retired = node.retired_key_backups(Some(cfg))?;
            if opts.keep_backups {
                for b in &retired {
                    progress(&format!(
                        "kept {} (holds retired key {}; --keep-backups)",
                        b.path.display(),
                        b.keys.join(", ")
                    ));
                }
                return Ok(());
            }
            let removed = node.remove_retired_key_backups(cfg, &state.old_keys)?;
            if removed.is_empty() {
                progress("no config backup holds the retired keys");
            }
            for b in &removed {
                progress(&format!(
                    "removed backup {} (held retired key {})",
                    b.path.display(),
                    b.keys.join(", ")
                ));
            }
            Ok(())
        }
        RotationPhase::RemoveFlag => {
            let before = node.load_manifest()?;
            let edit = before.disable_encryption()?;
            let mut after = edit.manifest;
            let mut changes = edit.changes;
            if let Some(m) = after.remove_annotation(super::CONFIG_HASH_ANNOTATION)? {
                after = m;
                changes.push(format!("removed {}", super::CONFIG_HASH_ANNOTATION));
            }
            if after.text() == before.text() {
                return super::wait_for_apiserver(client, &after, opts.timeout, progress)
                    .await
                    .map_err(EncryptError::Api);
            }
            let change = super::Change {
                config: None,
                before,
                after,
                manifest_changes: changes,
            };
            node.roll_out(
                client,
                &change,
                opts.timeout,
                "removing --encryption-provider-config",
                progress,
            )
            .await?;
            progress(&format!(
                "encryption at rest is off; {} is no longer used (keep it until etcd backups made with it are gone)",
                node.config.display()
            ));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{KeysConfiguration, ResourceConfiguration};

    #[test]
    fn key_names_and_phase_order() {
        let cfg = EncryptionConfiguration {
            resources: vec![ResourceConfiguration {
                resources: vec!["secrets".into()],
                providers: vec![
                    ProviderConfiguration::Secretbox(KeysConfiguration {
                        keys: vec![
                            Key::generate("key3", ProviderKind::Secretbox).unwrap(),
                            Key::generate("old", ProviderKind::Secretbox).unwrap(),
                        ],
                    }),
                    ProviderConfiguration::Identity,
                ],
            }],
            ..Default::default()
        };
        assert_eq!(next_key_name(&cfg), "key4");
        let mut st = RotationState {
            operation: Operation::Rotate,
            provider: "secretbox".into(),
            old_keys: vec!["key3".into()],
            new_key: Some("key4".into()),
            done: vec![],
        };
        assert_eq!(st.next(), Some(RotationPhase::AddKey));
        st.done = vec![RotationPhase::AddKey, RotationPhase::Promote];
        assert_eq!(st.next(), Some(RotationPhase::Rewrite));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enc.yaml.rotation");
        st.save(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(RotationState::load(&path).unwrap(), Some(st));
        assert_eq!(
            Operation::Disable.phases().last(),
            Some(&RotationPhase::RemoveFlag)
        );
        assert!(
            rewrite_names(&EncryptionConfiguration {
                resources: vec![ResourceConfiguration {
                    resources: vec!["*.*".into()],
                    providers: vec![ProviderConfiguration::Identity]
                }],
                ..Default::default()
            })
            .is_err()
        );
    }
}
