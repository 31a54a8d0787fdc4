//! The few kube-apiserver flags etcdcheck reads from the kubeadm static pod manifest.

use std::path::{Path, PathBuf};

/// kubeadm's kube-apiserver static pod manifest, relative to the node root.
pub const KUBE_APISERVER_MANIFEST: &str = "etc/kubernetes/manifests/kube-apiserver.yaml";

/// Flags from the kube-apiserver command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiserverFlags {
    /// The manifest file read.
    pub manifest: PathBuf,
    /// `--encryption-provider-config` (a container path; the same on the host with kubeadm).
    pub encryption_provider_config: Option<PathBuf>,
    /// `--etcd-prefix`.
    pub etcd_prefix: Option<String>,
}

impl ApiserverFlags {
    /// Read `<root>/etc/kubernetes/manifests/kube-apiserver.yaml`; `None` when absent or unreadable.
    pub fn read(root: &Path) -> Option<Self> {
        let manifest = root.join(KUBE_APISERVER_MANIFEST);
        let text = match std::fs::read_to_string(&manifest) {
            Ok(t) => t,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("cannot read {}: {e}", manifest.display());
                }
                return None;
            }
        };
        let mut flags = Self::parse(&text);
        flags.manifest = manifest;
        Some(flags)
    }

    /// Find `--flag=value` items in the manifest's command/args lists (`- --flag=value`, quoted
    /// or not). Only the two flags above are looked at.
    pub fn parse(text: &str) -> Self {
        let mut flags = Self::default();
        for line in text.lines() {
            let item = line.trim_start();
            let Some(item) = item.strip_prefix("- ") else {
                continue;
            };
            let item = item.trim().trim_matches(|c| c == '"' || c == '\'');
            let Some((name, value)) = item.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match name {
                "--encryption-provider-config" if !value.is_empty() => {
                    flags.encryption_provider_config = Some(PathBuf::from(value));
                }
                "--etcd-prefix" if !value.is_empty() => flags.etcd_prefix = Some(value.to_string()),
                _ => {}
            }
        }
        flags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flags_from_a_kubeadm_manifest() {
        let text = "spec:\n  containers:\n  - command:\n    - kube-apiserver\n    - --advertise-address=10.0.0.1\n    - \"--encryption-provider-config=/etc/kubernetes/enc/enc.yaml\"\n    - --etcd-servers=https://127.0.0.1:2379\n";
        let f = ApiserverFlags::parse(text);
        assert_eq!(
            f.encryption_provider_config.as_deref(),
            Some(Path::new("/etc/kubernetes/enc/enc.yaml"))
        );
        assert_eq!(f.etcd_prefix, None);
        let f = ApiserverFlags::parse("    - --etcd-prefix=/kubernetes.io\n");
        assert_eq!(f.etcd_prefix.as_deref(), Some("/kubernetes.io"));
    }
}
