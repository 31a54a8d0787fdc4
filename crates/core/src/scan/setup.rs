//! What a scan checks and with which keys, from the command line and the node: the objects ([`Scope`]), the
//! apiserver's `--etcd-prefix`, and the [`Checker`] built from the EncryptionConfiguration: the one named, else
//! the one the kube-apiserver static pod manifest names (`--encryption-provider-config`, found on the node through
//! the pod's hostPath mounts), else none (encrypted values are classified, not verified).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{Checker, ScanRequest, Scope, StoredResource};
use crate::config::{ConfigError, ProviderConfiguration};
use crate::kubeadm::node::{KUBE_APISERVER_MANIFEST, under_root};
use crate::manifest::Manifest;
use crate::transform::{EnvelopeService, KmsPluginService, TransformError, kms_socket_path};

/// The apiserver's default `--etcd-prefix`.
pub const DEFAULT_ETCD_PREFIX: &str = "/registry";

/// What to scan, as the command line says.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// One object's name.
    pub name: Option<String>,
    /// The namespace (`default` when `None`).
    pub namespace: Option<String>,
    /// Every namespace.
    pub all_namespaces: bool,
    /// The resource, as kubectl names it or by its etcd path segment ([`StoredResource::parse`]).
    pub resource: String,
    /// `--etcd-prefix` [default: the manifest's, else `/registry`].
    pub prefix: Option<String>,
    /// The EncryptionConfiguration to decrypt with [default: the manifest's].
    pub encryption_config: Option<PathBuf>,
    /// Ask the KMS v2 plugins (their sockets under `root`) to unwrap data keys.
    pub kms: bool,
    /// The node root the kubeadm paths are under.
    pub root: PathBuf,
}

/// A scan ready to run: what it reads, how it checks, and what the user should know before it starts.
pub struct ScanPlan {
    /// The keys to read.
    pub request: ScanRequest,
    /// How each value is checked.
    pub checker: Checker,
    /// Why encrypted values will not be verified, or what `--kms` will not do (printed as `warning: …`).
    pub warnings: Vec<String>,
}

/// The scan cannot start: the arguments or the encryption configuration are unusable.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A name with `-A`.
    #[error("a resource cannot be checked by name across all namespaces: drop -A or the NAME")]
    NameAcrossNamespaces,
    /// `--kms` without a configuration to find the plugins in.
    #[error(
        "--kms needs the encryption configuration: pass --encryption-config FILE (no kube-apiserver manifest under {})",
        root.display()
    )]
    KmsWithoutConfig {
        /// The node root.
        root: PathBuf,
    },
    /// The configuration cannot be read or parsed.
    #[error("cannot use the encryption configuration {}", path.display())]
    Load {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ConfigError,
    },
    /// The configuration is invalid.
    #[error("the encryption configuration {} is invalid", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The problems.
        #[source]
        source: ConfigError,
    },
    /// A KMS v2 provider's endpoint is not a unix socket.
    #[error("kms provider {provider:?} in {}: {message}", path.display())]
    KmsEndpoint {
        /// The provider's name.
        provider: String,
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A KMS v2 plugin cannot be reached.
    #[error("--kms: kms provider {provider:?} in {}: {message}", path.display())]
    KmsConnect {
        /// The provider's name.
        provider: String,
        /// The configuration file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The transformers cannot be built.
    #[error("cannot build the transformers of {}", path.display())]
    Transformers {
        /// The configuration file.
        path: PathBuf,
        /// Why.
        #[source]
        source: TransformError,
    },
}

impl ScanOptions {
    /// The objects to check: one by name, a namespace (`default` unless named), or all.
    pub fn scope(&self) -> Result<Scope, SetupError> {
        let namespace = || self.namespace.clone().unwrap_or_else(|| "default".into());
        Ok(match (&self.name, self.all_namespaces) {
            (Some(_), true) => return Err(SetupError::NameAcrossNamespaces),
            (Some(name), false) => Scope::Object {
                namespace: namespace(),
                name: name.clone(),
            },
            (None, true) => Scope::AllNamespaces,
            (None, false) => Scope::Namespace(namespace()),
        })
    }

    /// Read the node's kube-apiserver manifest (when present) and load the keys.
    pub fn plan(&self) -> Result<ScanPlan, SetupError> {
        let scope = self.scope()?;
        let manifest = apiserver_manifest(&self.root);
        let prefix = self
            .prefix
            .clone()
            .or_else(|| {
                manifest
                    .as_ref()
                    .and_then(|m| m.flag("etcd-prefix"))
                    .filter(|p| !p.is_empty())
            })
            .unwrap_or_else(|| DEFAULT_ETCD_PREFIX.into());
        let request = ScanRequest {
            prefix,
            resource: StoredResource::parse(&self.resource).etcd_segment(),
            scope,
        };
        let mut warnings = Vec::new();
        let checker = self.checker(manifest.as_ref(), &request.resource, &mut warnings)?;
        Ok(ScanPlan {
            request,
            checker,
            warnings,
        })
    }

    /// The checker: from `--encryption-config` when given (an error if unusable), else from the manifest's
    /// `--encryption-provider-config` when present and readable (a warning otherwise), else without keys.
    fn checker(
        &self,
        manifest: Option<&Manifest>,
        resource: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Checker, SetupError> {
        if let Some(path) = &self.encryption_config {
            return self.load(path, resource, warnings);
        }
        let Some(m) = manifest else {
            if self.kms {
                return Err(SetupError::KmsWithoutConfig {
                    root: self.root.clone(),
                });
            }
            return Ok(Checker::without_keys());
        };
        let Some(cfg) = m.encryption_provider_config() else {
            tracing::debug!("{} has no --encryption-provider-config", m.origin());
            return Ok(Checker::without_keys());
        };
        // The flag names the file inside the container; the node's file is behind the pod's hostPath mounts.
        let Some(node_path) = m.host_path_for(&cfg) else {
            warnings.push(format!(
                "{} names --encryption-provider-config={cfg} but no hostPath volume of the pod mounts it \
                 (kube-apiserver cannot read it either); encrypted values will not be verified (pass --encryption-config FILE)",
                m.origin()
            ));
            return Ok(Checker::without_keys());
        };
        let host = under_root(&self.root, &node_path);
        match std::fs::metadata(&host) {
            Ok(_) => {
                tracing::debug!(
                    "using {} (--encryption-provider-config={cfg} in {})",
                    host.display(),
                    m.origin()
                );
                self.load(&host, resource, warnings)
            }
            Err(e) => {
                warnings.push(format!(
                    "{} names --encryption-provider-config={cfg} but {} is not readable ({e}); \
                     encrypted values will not be verified (pass --encryption-config FILE)",
                    m.origin(),
                    host.display()
                ));
                Ok(Checker::without_keys())
            }
        }
    }

    /// The checker of `resource` from the configuration at `path`; with `--kms`, each KMS v2 provider's plugin is
    /// connected (its socket under the node root) and asked to unwrap data keys.
    fn load(
        &self,
        path: &Path,
        resource: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Checker, SetupError> {
        let config = crate::config::load(path).map_err(|source| SetupError::Load {
            path: path.to_path_buf(),
            source,
        })?;
        config.validate().map_err(|source| SetupError::Invalid {
            path: path.to_path_buf(),
            source,
        })?;
        let mut plugins: HashMap<String, Arc<dyn EnvelopeService>> = HashMap::new();
        if self.kms {
            let kms_v2 = config
                .resources
                .iter()
                .flat_map(|r| &r.providers)
                .filter_map(|p| match p {
                    ProviderConfiguration::Kms(k) if k.is_v2() => Some(k),
                    _ => None,
                });
            for k in kms_v2 {
                if plugins.contains_key(&k.name) {
                    continue;
                }
                let (provider, path) = (k.name.clone(), path.to_path_buf());
                let socket = match kms_socket_path(&k.endpoint) {
                    Ok(s) => under_root(&self.root, &s),
                    Err(message) => {
                        return Err(SetupError::KmsEndpoint {
                            provider,
                            path,
                            message,
                        });
                    }
                };
                let timeout = k
                    .effective_timeout()
                    .to_std()
                    .unwrap_or_default()
                    .max(Duration::from_millis(100));
                let (service, status) =
                    KmsPluginService::connect(&socket, timeout).map_err(|message| {
                        SetupError::KmsConnect {
                            provider,
                            path,
                            message,
                        }
                    })?;
                tracing::debug!(provider = %k.name, socket = %socket.display(), key_id = %status.key_id,
                    "connected to the KMS v2 plugin");
                plugins.insert(k.name.clone(), Arc::new(service));
            }
            if plugins.is_empty() {
                warnings.push(format!(
                    "--kms: {} has no kms v2 provider; nothing to ask a plugin",
                    path.display()
                ));
            }
        }
        Checker::with_config_and_kms(&config, resource, |k| plugins.get(&k.name).cloned()).map_err(
            |source| SetupError::Transformers {
                path: path.to_path_buf(),
                source,
            },
        )
    }
}

/// kubeadm's kube-apiserver manifest under `root`; `None` when absent or unusable (logged).
fn apiserver_manifest(root: &Path) -> Option<Manifest> {
    let path = under_root(root, Path::new(KUBE_APISERVER_MANIFEST));
    if !path.exists() {
        return None;
    }
    Manifest::load(&path)
        .inspect_err(|e| tracing::warn!("{e}"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kubeadm-like kube-apiserver manifest: the configuration flag and, optionally, a hostPath mount of its
    /// directory from `/srv/keys`.
    fn node(config_flag: &str, prefix_flag: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let manifests = root.path().join("etc/kubernetes/manifests");
        std::fs::create_dir_all(&manifests).unwrap();
        let text = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\n  namespace: kube-system\nspec:\n  containers:\n  - command:\n    - kube-apiserver\n    - --advertise-address=10.0.0.1\n    - \"--encryption-provider-config={config_flag}\"\n{prefix_flag}    - --etcd-servers=https://127.0.0.1:2379\n    name: kube-apiserver\n    volumeMounts:\n    - mountPath: /etc/kubernetes/enc\n      name: enc\n      readOnly: true\n  volumes:\n  - hostPath:\n      path: /srv/keys\n      type: DirectoryOrCreate\n    name: enc\n"
        );
        std::fs::write(manifests.join("kube-apiserver.yaml"), text).unwrap();
        root
    }

    const CONFIG: &str = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aesgcm:\n      keys:\n      - name: k1\n        secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n";

    fn options(root: &Path) -> ScanOptions {
        ScanOptions {
            resource: "secrets".into(),
            root: root.to_path_buf(),
            ..Default::default()
        }
    }

    #[test]
    fn the_manifest_gives_the_prefix_and_the_keys_through_its_mounts() {
        let root = node(
            "/etc/kubernetes/enc/enc.yaml",
            "    - --etcd-prefix=/kubernetes.io\n",
        );
        // The flag names the container path; the node's file is behind the hostPath mount.
        let keys = root.path().join("srv/keys");
        std::fs::create_dir_all(&keys).unwrap();
        std::fs::write(keys.join("enc.yaml"), CONFIG).unwrap();
        let plan = options(root.path()).plan().unwrap();
        assert_eq!(plan.request.prefix, "/kubernetes.io");
        assert_eq!(
            plan.request.range_start(),
            "/kubernetes.io/secrets/default/"
        );
        assert!(plan.checker.has_keys());
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);

        // The file missing on the node: a warning, and no keys.
        std::fs::remove_file(keys.join("enc.yaml")).unwrap();
        let plan = options(root.path()).plan().unwrap();
        assert!(!plan.checker.has_keys());
        assert!(
            plan.warnings[0].contains("srv/keys/enc.yaml is not readable"),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn a_config_outside_every_mount_is_a_warning_and_the_default_prefix_applies() {
        let root = node("/opt/enc.yaml", "");
        let plan = options(root.path()).plan().unwrap();
        assert_eq!(plan.request.prefix, DEFAULT_ETCD_PREFIX);
        assert!(!plan.checker.has_keys());
        assert!(
            plan.warnings[0].contains(
                "names --encryption-provider-config=/opt/enc.yaml but no hostPath volume"
            ),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn the_named_config_wins_and_bad_arguments_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("enc.yaml");
        std::fs::write(&file, CONFIG).unwrap();
        let mut o = options(&dir.path().join("no-node"));
        o.encryption_config = Some(file);
        o.name = Some("demo".into());
        o.namespace = Some("prod".into());
        let plan = o.plan().unwrap();
        assert!(plan.checker.has_keys());
        assert_eq!(
            plan.request.single_key().unwrap(),
            "/registry/secrets/prod/demo"
        );

        o.all_namespaces = true;
        assert!(matches!(o.plan(), Err(SetupError::NameAcrossNamespaces)));
        let mut o = options(&dir.path().join("no-node"));
        o.kms = true;
        let e = o.plan().err().unwrap().to_string();
        assert!(
            e.starts_with("--kms needs the encryption configuration"),
            "{e}"
        );
        o.encryption_config = Some(dir.path().join("missing.yaml"));
        let e = o.plan().err().unwrap();
        assert!(matches!(e, SetupError::Load { .. }), "{e}");
    }
}
