//! The few kube-apiserver flags etcdcheck reads from the kubeadm static pod manifest (parsed by core's
//! [`atrest_core::manifest::Manifest`]).

use std::path::{Path, PathBuf};

use atrest_core::manifest::Manifest;

/// kubeadm's kube-apiserver static pod manifest, relative to the node root.
pub const KUBE_APISERVER_MANIFEST: &str = "etc/kubernetes/manifests/kube-apiserver.yaml";

/// Flags from the kube-apiserver command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiserverFlags {
    /// The manifest file read.
    pub manifest: PathBuf,
    /// `--encryption-provider-config` (a path inside the kube-apiserver container).
    pub encryption_provider_config: Option<PathBuf>,
    /// The node path of that file, through the pod's hostPath mounts (`None` when no mount covers it: the
    /// server cannot read it either).
    pub encryption_provider_config_host: Option<PathBuf>,
    /// `--etcd-prefix`.
    pub etcd_prefix: Option<String>,
}

impl ApiserverFlags {
    /// Read `<root>/etc/kubernetes/manifests/kube-apiserver.yaml`; `None` when absent or unusable.
    pub fn read(root: &Path) -> Option<Self> {
        let manifest = root.join(KUBE_APISERVER_MANIFEST);
        if !manifest.exists() {
            return None;
        }
        match Manifest::load(&manifest) {
            Ok(m) => {
                let mut flags = Self::from_manifest(&m);
                flags.manifest = manifest;
                Some(flags)
            }
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        }
    }

    /// The flags of a parsed manifest.
    pub fn from_manifest(m: &Manifest) -> Self {
        let config = m.encryption_provider_config();
        Self {
            manifest: PathBuf::from(m.origin()),
            encryption_provider_config_host: config.as_deref().and_then(|c| m.host_path_for(c)),
            encryption_provider_config: config.map(PathBuf::from),
            etcd_prefix: m.flag("etcd-prefix").filter(|p| !p.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flags_and_maps_the_config_through_the_mounts() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\nspec:\n  containers:\n  - command:\n    - kube-apiserver\n    - --advertise-address=10.0.0.1\n    - \"--encryption-provider-config=/etc/kubernetes/enc/enc.yaml\"\n    - --etcd-servers=https://127.0.0.1:2379\n    name: kube-apiserver\n    volumeMounts:\n    - mountPath: /etc/kubernetes/enc\n      name: enc\n      readOnly: true\n  volumes:\n  - hostPath:\n      path: /srv/keys\n      type: DirectoryOrCreate\n    name: enc\n";
        let f = ApiserverFlags::from_manifest(&Manifest::parse(text, "m.yaml").unwrap());
        assert_eq!(
            f.encryption_provider_config.as_deref(),
            Some(Path::new("/etc/kubernetes/enc/enc.yaml"))
        );
        assert_eq!(
            f.encryption_provider_config_host.as_deref(),
            Some(Path::new("/srv/keys/enc.yaml")),
            "the host path, not the container path"
        );
        assert_eq!(f.etcd_prefix, None);
        let unmounted = text.replace("/etc/kubernetes/enc/enc.yaml", "/opt/enc.yaml");
        let f = ApiserverFlags::from_manifest(&Manifest::parse(&unmounted, "m.yaml").unwrap());
        assert_eq!(f.encryption_provider_config_host, None);
        let prefixed = text.replace(
            "    - kube-apiserver\n",
            "    - kube-apiserver\n    - --etcd-prefix=/kubernetes.io\n",
        );
        let f = ApiserverFlags::from_manifest(&Manifest::parse(&prefixed, "m.yaml").unwrap());
        assert_eq!(f.etcd_prefix.as_deref(), Some("/kubernetes.io"));
    }
}
