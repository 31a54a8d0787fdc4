//! Static pods as the kubelet's file source reads them, and the container's view of the node's filesystem.
//!
//! A container sees a host file only through a `volumeMounts[]` entry whose volume is a `hostPath`; the longest
//! matching `mountPath` wins, as in the container runtime's bind mounts. Host paths are node paths, rooted at the
//! sandbox root (see [`crate::layout::NodeLayout::host`]).

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use openssl::hash::{MessageDigest, hash};

use atrest_core::kubeadm::node::{self, CommandLine};

use crate::layout::NodeLayout;

/// Why a manifest cannot run.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PodError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
}

/// One parsed static pod manifest.
#[derive(Debug, Clone)]
pub struct StaticPod {
    /// The manifest file.
    pub file: PathBuf,
    /// Content hash, used as the kubelet's `kubernetes.io/config.hash` (hex MD5 of the manifest bytes).
    pub hash: String,
    pub pod: Pod,
    /// First container's `command` followed by its `args`.
    pub command: Vec<String>,
    pub image: String,
    pub mounts: MountTable,
}

impl StaticPod {
    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or_default()
    }
    /// The first container's name.
    pub fn container_name(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .map(|c| c.name.as_str())
            .unwrap_or_default()
    }
    /// The value of `--flag=value` (or `--flag value`) on the command line, as the program reads it
    /// ([`CommandLine`]: pflag for the Kubernetes components, Go's `flag` for etcd; the last occurrence wins).
    pub fn flag(&self, name: &str) -> Option<String> {
        self.flags().get(name).map(str::to_string)
    }
    /// The command line's flags.
    pub fn flags(&self) -> CommandLine {
        CommandLine::parse(&self.command)
    }
    /// The version in the image tag (`registry.k8s.io/kube-apiserver:v1.32.4` → `v1.32.4`).
    pub fn image_tag(&self) -> Option<&str> {
        let last = self.image.rsplit('/').next()?;
        last.split_once(':').map(|(_, t)| t)
    }
}

/// Hex MD5 of some bytes.
pub fn content_hash(bytes: &[u8]) -> String {
    hash(MessageDigest::md5(), bytes)
        .map(|d| d.iter().map(|b| format!("{b:02x}")).collect())
        .unwrap_or_default()
}

/// Parse a manifest file's bytes into a static pod.
pub fn parse(file: &Path, bytes: &[u8], layout: &NodeLayout) -> Result<StaticPod, PodError> {
    let invalid = |message: String| PodError::Invalid {
        file: file.display().to_string(),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| invalid(format!("not UTF-8: {e}")))?;
    let pod: Pod =
        serde_saphyr::from_str(text).map_err(|e| invalid(format!("invalid pod manifest: {e}")))?;
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| invalid("pod has no spec".into()))?;
    if pod.metadata.name.as_deref().unwrap_or_default().is_empty() {
        return Err(invalid(
            "metadata.name: Required value: name or generateName is required".into(),
        ));
    }
    let c = spec
        .containers
        .first()
        .ok_or_else(|| invalid("spec.containers: Required value".into()))?;
    let command = node::typed_container_argv(c);
    if command.is_empty() {
        return Err(invalid(format!("container {:?} has no command", c.name)));
    }
    let mut volumes = BTreeMap::new();
    for v in spec.volumes.iter().flatten() {
        if v.name.is_empty() {
            return Err(invalid("spec.volumes[].name: Required value".into()));
        }
        volumes.insert(
            v.name.clone(),
            v.host_path
                .as_ref()
                .map(|h| (h.path.clone(), h.type_.clone())),
        );
    }
    let mut mounts = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        match volumes.get(&m.name) {
            None => {
                return Err(invalid(format!(
                    "spec.containers[0].volumeMounts.name: Not found: {:?} (no volume of that name)",
                    m.name
                )));
            }
            Some(None) => {} // not a hostPath: nothing of the node is visible there
            Some(Some((host, ty))) => mounts.push(Mount {
                mount_path: clean(Path::new(m.mount_path.trim())),
                host_path: layout.host(clean(Path::new(host.trim()))),
                host_type: ty.clone().unwrap_or_default(),
                read_only: m.read_only.unwrap_or(false),
                pinned: None,
            }),
        }
    }
    let run_as = run_as(&pod, c);
    Ok(StaticPod {
        file: file.to_path_buf(),
        hash: content_hash(bytes),
        image: c.image.clone().unwrap_or_default(),
        command,
        pod,
        mounts: MountTable { mounts, run_as },
    })
}

/// The non-root user and group the first container runs as: its `securityContext` over the pod's.
fn run_as(pod: &Pod, c: &k8s_openapi::api::core::v1::Container) -> Option<(u32, u32)> {
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let csc = c.security_context.as_ref();
    let uid = csc
        .and_then(|s| s.run_as_user)
        .or_else(|| psc.and_then(|s| s.run_as_user))?;
    let gid = csc
        .and_then(|s| s.run_as_group)
        .or_else(|| psc.and_then(|s| s.run_as_group))
        .unwrap_or(0);
    (uid != 0).then_some((uid as u32, gid as u32))
}

/// Lexically clean a path as an absolute one ([`node::clean_path`] from `/`).
fn clean(p: &Path) -> PathBuf {
    node::clean_path(Path::new("/").join(p)).unwrap_or_else(|| PathBuf::from("/"))
}

/// One bind mount: container path → host path.
#[derive(Debug, Clone)]
pub struct Mount {
    pub mount_path: PathBuf,
    pub host_path: PathBuf,
    /// The hostPath `type` (`DirectoryOrCreate`, `FileOrCreate`, `File`, ...).
    pub host_type: String,
    /// `readOnly: true` on the volumeMount.
    pub read_only: bool,
    /// A single file bind-mounted at container start ([`MountTable::prepare`]): the container keeps that inode,
    /// whatever later happens to the host path (a rename over it is not seen; a write into it is).
    pub pinned: Option<Arc<fs::File>>,
}

/// The container's mounts; resolves container paths to host paths.
#[derive(Debug, Clone, Default)]
pub struct MountTable {
    pub mounts: Vec<Mount>,
    /// The container's user and group when not root (`securityContext.runAsUser`/`runAsGroup`, the container's
    /// over the pod's, as kubeadm's RootlessControlPlane sets them): files are read as that user.
    pub run_as: Option<(u32, u32)>,
}

impl crate::apiserver::PathResolver for MountTable {
    fn host_path(&self, container_path: &Path) -> Option<PathBuf> {
        self.resolve(container_path)
    }

    fn read(&self, container_path: &Path) -> std::io::Result<Vec<u8>> {
        let host = self
            .resolve(container_path)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        if let Some((uid, gid)) = self.run_as {
            use std::os::unix::fs::MetadataExt;
            let md = fs::metadata(&host)?;
            let mode = md.mode();
            let allowed = if md.uid() == uid {
                mode & 0o400 != 0
            } else if md.gid() == gid {
                mode & 0o040 != 0
            } else {
                mode & 0o004 != 0
            };
            if !allowed {
                return Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
            }
        }
        fs::read(host)
    }
}

impl MountTable {
    /// The host path behind a container path, or None when no mount covers it (invisible in the container).
    pub fn resolve(&self, container_path: &Path) -> Option<PathBuf> {
        if !container_path.is_absolute() {
            return None;
        }
        let p = clean(container_path);
        node::covering_mount(self.mounts.iter().map(|m| (&m.mount_path, m)), &p).map(|(m, rest)| {
            if rest.as_os_str().is_empty() {
                match &m.pinned {
                    // The bound inode, through this process's descriptor for it.
                    Some(f) => PathBuf::from(format!("/proc/self/fd/{}", f.as_raw_fd())),
                    None => m.host_path.clone(),
                }
            } else {
                m.host_path.join(rest)
            }
        })
    }

    /// What the kubelet and the runtime do before starting the container: create `DirectoryOrCreate` dirs and
    /// `FileOrCreate` files; a missing `Directory`/`File` host path fails the pod start with the kubelet's message.
    /// Returns the container's table: a host path that is a regular file is bind-mounted as that file, so it is
    /// pinned to its inode for the life of the container (as a runtime's file bind mount: a config replaced by
    /// rename is not seen until the container restarts).
    pub fn prepare(&self) -> Result<MountTable, String> {
        self.check_and_create()?;
        let mut bound = self.clone();
        for m in &mut bound.mounts {
            if fs::metadata(&m.host_path).is_ok_and(|md| md.is_file()) {
                let f = fs::File::open(&m.host_path)
                    .map_err(|e| format!("{}: {e}", m.host_path.display()))?;
                m.pinned = Some(Arc::new(f));
            }
        }
        Ok(bound)
    }

    fn check_and_create(&self) -> Result<(), String> {
        for m in &self.mounts {
            let h = &m.host_path;
            match m.host_type.as_str() {
                "DirectoryOrCreate" => {
                    fs::create_dir_all(h).map_err(|e| format!("{}: {e}", h.display()))?
                }
                "FileOrCreate" if !h.exists() => {
                    if let Some(d) = h.parent() {
                        fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
                    }
                    fs::write(h, b"").map_err(|e| format!("{}: {e}", h.display()))?;
                }
                "Directory" if !h.is_dir() => {
                    return Err(format!(
                        "hostPath type check failed: {} is not a directory",
                        m.mount_path.display()
                    ));
                }
                "File" if !h.is_file() => {
                    return Err(format!(
                        "hostPath type check failed: {} is not a file",
                        m.mount_path.display()
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\n  namespace: kube-system\n\
        spec:\n  containers:\n  - command:\n    - kube-apiserver\n    - --secure-port=6443\n    - --encryption-provider-config=/etc/kubernetes/enc/enc.yaml\n\
        \x20   image: registry.k8s.io/kube-apiserver:v1.32.4\n    name: kube-apiserver\n    volumeMounts:\n\
        \x20   - mountPath: /etc/kubernetes/pki\n      name: k8s-certs\n      readOnly: true\n    - mountPath: /etc/kubernetes/enc/\n      name: enc\n\
        \x20 volumes:\n  - hostPath:\n      path: /etc/kubernetes/pki\n      type: DirectoryOrCreate\n    name: k8s-certs\n\
        \x20 - hostPath:\n      path: /srv/enc\n    name: enc\n";

    #[test]
    fn paths_resolve_only_through_host_path_mounts() {
        let layout = NodeLayout::new("/root-x");
        let p = parse(Path::new("m.yaml"), MANIFEST.as_bytes(), &layout).unwrap();
        assert_eq!(p.name(), "kube-apiserver");
        assert_eq!(p.image_tag(), Some("v1.32.4"));
        assert_eq!(p.flag("secure-port").as_deref(), Some("6443"));
        let r = |s: &str| p.mounts.resolve(Path::new(s));
        assert_eq!(
            r("/etc/kubernetes/pki/ca.crt"),
            Some(PathBuf::from("/root-x/etc/kubernetes/pki/ca.crt"))
        );
        assert_eq!(
            r("/etc/kubernetes/enc/enc.yaml"),
            Some(PathBuf::from("/root-x/srv/enc/enc.yaml"))
        );
        assert_eq!(r("/etc/kubernetes/enc.yaml"), None);
        assert_eq!(r("/etc/kubernetes/pkix/ca.crt"), None);
        assert_eq!(r("/etc/kubernetes/pki/../admin.conf"), None);
    }

    #[test]
    fn broken_manifests_are_rejected_with_the_file_named() {
        let layout = NodeLayout::new("/r");
        let e = parse(
            Path::new("/m/kube-apiserver.yaml"),
            b"apiVersion: v1\nkind: Pod\nspec: [",
            &layout,
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/m/kube-apiserver.yaml: invalid pod manifest"),
            "{e}"
        );
        let bad_mount = MANIFEST.replace("\n      name: enc\n", "\n      name: other\n");
        let e = parse(Path::new("x.yaml"), bad_mount.as_bytes(), &layout).unwrap_err();
        assert!(e.to_string().contains("\"other\""), "{e}");
    }

    #[test]
    fn a_file_mount_keeps_the_inode_it_started_with() {
        let dir = tempfile::tempdir().unwrap();
        let layout = NodeLayout::new(dir.path());
        let host = dir.path().join("srv/enc");
        fs::create_dir_all(&host).unwrap();
        fs::write(host.join("enc.yaml"), "old").unwrap();
        let single = MANIFEST
            .replace(
                "mountPath: /etc/kubernetes/enc/\n",
                "mountPath: /etc/kubernetes/enc/enc.yaml\n",
            )
            .replace(
                "path: /srv/enc\n",
                "path: /srv/enc/enc.yaml\n      type: File\n",
            );
        let p = parse(Path::new("m.yaml"), single.as_bytes(), &layout).unwrap();
        let bound = p.mounts.prepare().unwrap();
        let read = |t: &MountTable| {
            fs::read_to_string(
                t.resolve(Path::new("/etc/kubernetes/enc/enc.yaml"))
                    .unwrap(),
            )
            .unwrap()
        };
        // Replaced by rename: the running container still sees the old file; written in place: it sees that.
        fs::write(host.join("new"), "renamed").unwrap();
        fs::rename(host.join("new"), host.join("enc.yaml")).unwrap();
        assert_eq!(read(&bound), "old");
        assert_eq!(
            read(&p.mounts.prepare().unwrap()),
            "renamed",
            "a restarted container binds the new file"
        );
        // A directory mount sees the rename at once.
        let dir_mount = parse(Path::new("m.yaml"), MANIFEST.as_bytes(), &layout).unwrap();
        let bound_dir = dir_mount.mounts.prepare().unwrap();
        fs::write(host.join("new"), "again").unwrap();
        fs::rename(host.join("new"), host.join("enc.yaml")).unwrap();
        assert_eq!(read(&bound_dir), "again");
    }

    #[test]
    fn flag_values_last_wins() {
        let layout = NodeLayout::new("/r");
        let repeated = MANIFEST.replace(
            "    - --secure-port=6443\n",
            "    - --secure-port=6443\n    - --secure-port\n    - \"7443\"\n    - --secure-ports=3\n",
        );
        let p = parse(Path::new("m.yaml"), repeated.as_bytes(), &layout).unwrap();
        assert_eq!(p.flag("secure-port").as_deref(), Some("7443"));
        assert_eq!(p.flag("secure-ports").as_deref(), Some("3"));
        assert_eq!(p.flag("secure"), None);
    }
}
