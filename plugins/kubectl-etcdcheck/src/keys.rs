//! Which EncryptionConfiguration decrypts the values, and the scan checker built from it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use atrest_core::scan::Checker;

use crate::manifest::ApiserverFlags;

/// Build the checker: from `--encryption-config` when given (an error if unusable), else from the
/// kube-apiserver manifest's `--encryption-provider-config` when present and readable (a warning
/// otherwise), else without keys.
pub fn checker(
    explicit: &Option<PathBuf>,
    apiserver: Option<&ApiserverFlags>,
    root: &Path,
    resource: &str,
) -> Result<Checker> {
    if let Some(path) = explicit {
        return load(path, resource);
    }
    let Some(flags) = apiserver else {
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

fn load(path: &Path, resource: &str) -> Result<Checker> {
    let config = atrest_core::config::load(path)
        .with_context(|| format!("cannot use the encryption configuration {}", path.display()))?;
    config
        .validate()
        .with_context(|| format!("the encryption configuration {} is invalid", path.display()))?;
    Checker::with_config(&config, resource)
        .with_context(|| format!("cannot build the transformers of {}", path.display()))
}
