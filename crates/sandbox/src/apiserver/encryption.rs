//! `--encryption-provider-config` (+ `-automatic-reload`): the EncryptionConfiguration's transformers via
//! `atrest_core::config` / `atrest_core::transform`, and the reload controller of apiserver
//! `pkg/server/options/encryptionconfig/controller/controller.go`: poll the file, compare the sha256 of its
//! bytes, and swap the transformers only when the new file loads and validates (a bad file keeps the old ones).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use atrest_core::config::{EncryptionConfiguration, GroupResource};
use atrest_core::transform::EncryptionTransformers;

use super::PathResolver;
use super::store::{Store, ValueTransformer};

/// Transformers from one EncryptionConfiguration.
pub(crate) struct ConfiguredTransformers(EncryptionTransformers);

impl ValueTransformer for ConfiguredTransformers {
    fn read(
        &self,
        group: &str,
        resource: &str,
        data: &[u8],
        ad: &[u8],
    ) -> Result<(Vec<u8>, bool), String> {
        let t = self.0.for_resource(&GroupResource::new(group, resource));
        t.read(data, ad)
            .map(|o| (o.plaintext, o.stale))
            .map_err(|e| e.to_string())
    }
    fn write(
        &self,
        group: &str,
        resource: &str,
        plaintext: &[u8],
        ad: &[u8],
    ) -> Result<Vec<u8>, String> {
        let t = self.0.for_resource(&GroupResource::new(group, resource));
        t.write(plaintext, ad).map_err(|e| e.to_string())
    }
}

/// Read the file (through the container's mounts), parse strictly, validate, build transformers.
/// Errors carry kube-apiserver's wording (`error while parsing file: ...`, `error while building transformers: ...`).
pub(crate) fn load(
    paths: &dyn PathResolver,
    container_path: &str,
) -> Result<(Arc<dyn ValueTransformer>, [u8; 32]), String> {
    let bytes = match paths.host_path(Path::new(container_path)) {
        Some(h) => std::fs::read(&h).map_err(|e| e.to_string()),
        None => Err("no such file or directory".to_string()),
    }
    .map_err(|e| format!("error while parsing file: error reading encryption provider configuration file \"{container_path}\": open {container_path}: {e}"))?;
    let hash = openssl::sha::sha256(&bytes);
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("error while parsing file: {container_path}: not UTF-8"))?;
    let config = EncryptionConfiguration::from_text(&text, container_path)
        .map_err(|e| format!("error while parsing file: {e}"))?;
    let t = EncryptionTransformers::from_config(&config)
        .map_err(|e| format!("error while building transformers: {e}"))?;
    Ok((Arc::new(ConfiguredTransformers(t)), hash))
}

/// How often the reload controller polls (upstream: one minute; the sandbox polls faster so tests and demos
/// see a rotation within seconds).
pub(crate) const RELOAD_POLL: Duration = Duration::from_secs(1);

/// The automatic-reload loop; runs until the task is aborted.
pub(crate) async fn reload_loop(
    store: Arc<Store>,
    paths: Arc<dyn PathResolver>,
    container_path: String,
    mut hash: [u8; 32],
) {
    loop {
        tokio::time::sleep(RELOAD_POLL).await;
        let current = paths
            .host_path(Path::new(&container_path))
            .and_then(|h| std::fs::read(h).ok());
        let Some(bytes) = current else { continue };
        if openssl::sha::sha256(&bytes) == hash {
            continue;
        }
        match load(&*paths, &container_path) {
            Ok((t, h)) => {
                store.set_transformer(t);
                hash = h;
                tracing::info!(file = %container_path, "loaded new encryption provider configuration");
            }
            Err(e) => {
                // Keep the old transformers; retry on the next poll.
                tracing::warn!("failed to reload encryption provider configuration: {e}");
            }
        }
    }
}
