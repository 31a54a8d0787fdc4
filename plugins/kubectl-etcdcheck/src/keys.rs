//! Which EncryptionConfiguration decrypts the values, and the scan checker built from it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use atrest_core::config::ProviderConfiguration;
use atrest_core::scan::Checker;
use atrest_core::transform::{EnvelopeService, KmsPluginService, kms_socket_path};

use atrest_core::manifest::ApiserverFlags;

/// Build the checker: from `--encryption-config` when given (an error if unusable), else from the
/// kube-apiserver manifest's `--encryption-provider-config` when present and readable (a warning
/// otherwise), else without keys. With `kms` (`--kms`), each KMS v2 provider's plugin is connected
/// (its socket under `root`) and asked to unwrap data keys.
pub fn checker(
    explicit: &Option<PathBuf>,
    apiserver: Option<&ApiserverFlags>,
    root: &Path,
    resource: &str,
    kms: bool,
) -> Result<Checker> {
    let load = |path: &Path, resource: &str| load(path, resource, kms.then_some(root));
    if let Some(path) = explicit {
        return load(path, resource);
    }
    let Some(flags) = apiserver else {
        if kms {
            anyhow::bail!(
                "--kms needs the encryption configuration: pass --encryption-config FILE (no kube-apiserver manifest under {})",
                root.display()
            );
        }
        return Ok(Checker::without_keys());
    };
    let Some(cfg) = &flags.encryption_provider_config else {
        tracing::debug!(
            "{} has no --encryption-provider-config",
            flags.manifest.display()
        );
        return Ok(Checker::without_keys());
    };
    // The flag names the file inside the container; the node's file is behind the pod's hostPath mounts.
    let Some(node_path) = &flags.encryption_provider_config_host else {
        eprintln!(
            "warning: {} names --encryption-provider-config={} but no hostPath volume of the pod mounts it \
             (kube-apiserver cannot read it either); encrypted values will not be verified (pass --encryption-config FILE)",
            flags.manifest.display(),
            cfg.display()
        );
        return Ok(Checker::without_keys());
    };
    let host = crate::under_root(root, node_path);
    match std::fs::metadata(&host) {
        Ok(_) => {
            tracing::debug!(
                "using {} (--encryption-provider-config={} in {})",
                host.display(),
                cfg.display(),
                flags.manifest.display()
            );
            load(&host, resource)
        }
        Err(e) => {
            eprintln!(
                "warning: {} names --encryption-provider-config={} but {} is not readable ({e}); \
                 encrypted values will not be verified (pass --encryption-config FILE)",
                flags.manifest.display(),
                cfg.display(),
                host.display()
            );
            Ok(Checker::without_keys())
        }
    }
}

fn load(path: &Path, resource: &str, kms_root: Option<&Path>) -> Result<Checker> {
    let config = atrest_core::config::load(path)
        .with_context(|| format!("cannot use the encryption configuration {}", path.display()))?;
    config
        .validate()
        .with_context(|| format!("the encryption configuration {} is invalid", path.display()))?;
    let mut plugins: HashMap<String, Arc<dyn EnvelopeService>> = HashMap::new();
    if let Some(root) = kms_root {
        for k in config
            .resources
            .iter()
            .flat_map(|r| &r.providers)
            .filter_map(|p| match p {
                ProviderConfiguration::Kms(k) if k.is_v2() => Some(k),
                _ => None,
            })
        {
            if plugins.contains_key(&k.name) {
                continue;
            }
            let socket = kms_socket_path(&k.endpoint)
                .map(|s| crate::under_root(root, &s))
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("kms provider {:?} in {}", k.name, path.display()))?;
            let timeout =
                Duration::from_nanos(u64::try_from(k.effective_timeout().nanos).unwrap_or(0))
                    .max(Duration::from_millis(100));
            let (service, status) = KmsPluginService::connect(&socket, timeout)
                .map_err(anyhow::Error::msg)
                .with_context(|| {
                    format!("--kms: kms provider {:?} in {}", k.name, path.display())
                })?;
            tracing::debug!(provider = %k.name, socket = %socket.display(), key_id = %status.key_id,
                "connected to the KMS v2 plugin");
            plugins.insert(k.name.clone(), Arc::new(service));
        }
        if plugins.is_empty() {
            eprintln!(
                "warning: --kms: {} has no kms v2 provider; nothing to ask a plugin",
                path.display()
            );
        }
    }
    Checker::with_config_and_kms(&config, resource, |k| plugins.get(&k.name).cloned())
        .with_context(|| format!("cannot build the transformers of {}", path.display()))
}
