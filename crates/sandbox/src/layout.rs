//! The kubeadm node layout under the sandbox root: what `kubeadm init` leaves on a control-plane node.
//!
//! The root stands for the node's `/`: `/etc/kubernetes/pki/ca.crt` lives at `ROOT/etc/kubernetes/pki/ca.crt`.
//! Certificates follow `cmd/kubeadm/app/phases/certs/certlist.go` (names, CNs, organizations, SANs, usages),
//! kubeconfigs `cmd/kubeadm/app/phases/kubeconfig/kubeconfig.go` (admin.conf with `O=kubeadm:cluster-admins` since
//! kubeadm 1.29, super-admin.conf with `O=system:masters`), static pod manifests
//! `cmd/kubeadm/app/phases/controlplane/manifests.go` and `cmd/kubeadm/app/phases/etcd/local.go` (flags sorted, as
//! kubeadm's `BuildArgumentListFromMap` emits them).

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener};
use std::path::{Path, PathBuf};

use base64::Engine;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use crate::ControlPlane;
use crate::pki::{self, CertSpec, PkiError};
use atrest_core::fsutil::{self, FsError};

/// Errors laying out the node.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    File(#[from] FsError),
    #[error("certificates: {0}")]
    Pki(#[from] PkiError),
    #[error("unsupported Kubernetes version {0:?}: use 1.27 … 1.33 (e.g. \"1.32\" or \"v1.32.4\")")]
    Version(String),
}

/// Certificates, public keys and manifests: 0644, written atomically.
fn write_public(path: &Path, contents: &[u8]) -> Result<(), FsError> {
    fsutil::write_with_mode(path, contents, 0o644)
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LayoutError + '_ {
    move |source| LayoutError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A Kubernetes release the sandbox impersonates: picks the image tags written into the manifests and the
/// version the API server reports (which makes the kubectl dispatcher pick the matching kubectl).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeVersion {
    pub minor: u32,
    /// e.g. `v1.32.4`.
    pub git_version: String,
    /// The etcd image tag when it is not the one kubeadm pairs with `minor` (the real control plane's etcd).
    pub etcd_tag: Option<String>,
}

impl KubeVersion {
    /// Parse `1.32`, `v1.32`, `1.32.4` or `v1.32.4`; a bare minor gets the patch release the sandbox defaults to.
    pub fn parse(s: &str) -> Result<Self, LayoutError> {
        let bad = || LayoutError::Version(s.to_string());
        let t = s.trim().trim_start_matches('v');
        let mut parts = t.split('.');
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let patch: Option<u32> = match parts.next() {
            Some(p) => Some(p.parse().map_err(|_| bad())?),
            None => None,
        };
        if major != 1 || !(27..=33).contains(&minor) || parts.next().is_some() {
            return Err(bad());
        }
        let patch = patch.unwrap_or(match minor {
            27 => 16,
            28 => 15,
            29 => 15,
            30 => 13,
            31 => 9,
            32 => 4,
            _ => 1,
        });
        Ok(KubeVersion {
            minor,
            git_version: format!("v1.{minor}.{patch}"),
            etcd_tag: None,
        })
    }

    /// A release that really runs (the real control plane): `v1.34.4` with etcd `v3.6.4`, any 1.x minor.
    pub fn release(git_version: &str, etcd_version: &str) -> Result<Self, LayoutError> {
        let bad = || LayoutError::Version(git_version.to_string());
        let t = git_version.trim().trim_start_matches('v');
        let mut parts = t.split('.');
        if parts.next() != Some("1") {
            return Err(bad());
        }
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        Ok(KubeVersion {
            minor,
            git_version: format!("v{t}"),
            etcd_tag: Some(format!("{}-0", etcd_version.trim_start_matches('v'))),
        })
    }

    /// The etcd image of the manifest: the real control plane's etcd, else the one kubeadm of this minor deploys
    /// (`cmd/kubeadm/app/constants/constants.go` `SupportedEtcdVersion`; atrest's control plane runs the machine's
    /// etcd whatever the tag says).
    pub fn etcd_image_tag(&self) -> String {
        if let Some(t) = &self.etcd_tag {
            return t.clone();
        }
        match self.minor {
            27 => "3.5.7-0",
            28 => "3.5.9-0",
            29 => "3.5.10-0",
            30 => "3.5.12-0",
            31 => "3.5.15-0",
            32 => "3.5.16-0",
            33 => "3.5.21-0",
            _ => "3.6.5-0",
        }
        .to_string()
    }

    /// Whether the etcd of the manifest is 3.6 or later (kubeadm then writes etcd 3.6's flag names).
    fn etcd_3_6(&self) -> bool {
        let tag = self.etcd_image_tag();
        let mut p = tag.split(['.', '-']);
        let major: u32 = p.next().and_then(|x| x.parse().ok()).unwrap_or(0);
        let minor: u32 = p.next().and_then(|x| x.parse().ok()).unwrap_or(0);
        (major, minor) >= (3, 6)
    }
}

/// Ports chosen for a fresh node.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub apiserver: u16,
    pub etcd_client: u16,
    pub etcd_peer: u16,
    pub etcd_metrics: u16,
    /// kube-controller-manager's `--secure-port` on the real control plane (kubeadm's default 10257 would clash
    /// between sandboxes on one machine).
    pub controller_manager: u16,
}

impl Ports {
    /// The given ports, with every 0 replaced by a free loopback port.
    pub fn pick(apiserver: u16, etcd_client: u16) -> io::Result<Self> {
        let mut held = Vec::new();
        let mut free = |want: u16| -> io::Result<u16> {
            if want != 0 {
                return Ok(want);
            }
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
            let p = l.local_addr()?.port();
            held.push(l); // keep it bound until all are chosen, so no two are the same
            Ok(p)
        };
        Ok(Ports {
            apiserver: free(apiserver)?,
            etcd_client: free(etcd_client)?,
            etcd_peer: free(0)?,
            etcd_metrics: free(0)?,
            controller_manager: free(0)?,
        })
    }
}

/// Paths of a kubeadm node rooted at a directory.
#[derive(Debug, Clone)]
pub struct NodeLayout {
    root: PathBuf,
}

/// The node's cluster name (kubeadm's default `clusterName`).
pub const CLUSTER_NAME: &str = "kubernetes";

impl NodeLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        NodeLayout { root: root.into() }
    }

    /// The directory standing for the node's `/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of an absolute node path (`/etc/kubernetes` → `ROOT/etc/kubernetes`).
    pub fn host(&self, node_path: impl AsRef<Path>) -> PathBuf {
        atrest_core::kubeadm::node::under_root(&self.root, node_path)
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.host("/etc/kubernetes/pki")
    }
    pub fn manifests_dir(&self) -> PathBuf {
        self.host("/etc/kubernetes/manifests")
    }
    pub fn manifest(&self, component: &str) -> PathBuf {
        self.manifests_dir().join(format!("{component}.yaml"))
    }
    pub fn admin_conf(&self) -> PathBuf {
        self.host("/etc/kubernetes/admin.conf")
    }
    pub fn super_admin_conf(&self) -> PathBuf {
        self.host("/etc/kubernetes/super-admin.conf")
    }
    pub fn controller_manager_conf(&self) -> PathBuf {
        self.host("/etc/kubernetes/controller-manager.conf")
    }
    /// The kubelet's kubeconfig (user `system:node:<node>`).
    pub fn kubelet_conf(&self) -> PathBuf {
        self.host("/etc/kubernetes/kubelet.conf")
    }
    pub fn etcd_data_dir(&self) -> PathBuf {
        self.host("/var/lib/etcd")
    }
    /// `ROOT/sandbox.env`: KUBECONFIG and the ETCDCTL_* variables.
    pub fn env_file(&self) -> PathBuf {
        self.root.join("sandbox.env")
    }
    /// Logs of processes the kubelet runs (etcd), like `/var/log/pods`.
    pub fn log_dir(&self) -> PathBuf {
        self.host("/var/log/pods")
    }
    pub fn etcd_ca(&self) -> PathBuf {
        self.pki_dir().join("etcd/ca.crt")
    }
    /// The client certificate the API server uses for etcd (also handy for direct etcd access).
    pub fn etcd_client_cert(&self) -> PathBuf {
        self.pki_dir().join("apiserver-etcd-client.crt")
    }
    pub fn etcd_client_key(&self) -> PathBuf {
        self.pki_dir().join("apiserver-etcd-client.key")
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.pki_dir().join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.pki_dir().join("ca.key")
    }

    /// `etc/hostname`: the machine's name is the node name (a sandbox node stands for a machine; its static pods
    /// share the node's UTS namespace, so kube-apiserver's identity derives from it).
    /// The node's directories every control-plane node has: pki/etcd, manifests, logs.
    fn create_dirs(&self) -> Result<(), LayoutError> {
        for d in [
            self.pki_dir().join("etcd"),
            self.manifests_dir(),
            self.log_dir(),
        ] {
            fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        Ok(())
    }

    fn write_hostname(&self, node: &str) -> Result<(), LayoutError> {
        let p = self.host("/etc/hostname");
        fs::write(&p, format!("{node}\n")).map_err(io_err(&p))
    }

    /// Whether `kubeadm init` already ran here (admin.conf and the manifests dir exist).
    pub fn is_initialized(&self) -> bool {
        self.admin_conf().is_file() && self.manifests_dir().is_dir()
    }

    /// Lay out a fresh node: certificates, kubeconfigs, static pod manifests, etcd data dir.
    pub fn init(&self, node: &str, version: &KubeVersion, ports: Ports) -> Result<(), LayoutError> {
        self.init_for(node, version, ports, ControlPlane::Atrest)
    }

    /// [`init`](Self::init) for a control plane: the real one's manifests carry the flags kubeadm's
    /// `extraArgs` would add for a node on loopback ports (`--bind-address=127.0.0.1` for kube-apiserver,
    /// `--secure-port` for kube-controller-manager).
    pub fn init_for(
        &self,
        node: &str,
        version: &KubeVersion,
        ports: Ports,
        control_plane: ControlPlane,
    ) -> Result<(), LayoutError> {
        self.create_dirs()?;
        let data = self.etcd_data_dir();
        fs::create_dir_all(&data).map_err(io_err(&data))?;
        set_mode(&data, 0o700)?;
        self.write_hostname(node)?;
        let ca = self.write_certs(node)?;
        self.write_kubeconfigs(&ca, ports.apiserver, node)?;
        self.write_manifests(node, version, ports, control_plane)?;
        Ok(())
    }

    /// `kubeadm join --control-plane` of a second control-plane node sharing `primary`'s etcd (kubeadm's external
    /// etcd topology as seen from this node): the shared certificates are copied from the primary (kubeadm's
    /// `--certificate-key` upload does the same), kubeconfigs point at this node's API server, and the only static pod
    /// is kube-apiserver with `--etcd-servers` of the primary's etcd (the primary runs the controller-manager).
    pub fn init_joined(
        &self,
        primary: &NodeLayout,
        node: &str,
        version: &KubeVersion,
        apiserver_port: u16,
    ) -> Result<(), LayoutError> {
        self.create_dirs()?;
        self.write_hostname(node)?;
        for sub in ["", "etcd"] {
            let from = primary.pki_dir().join(sub);
            for e in fs::read_dir(&from).map_err(io_err(&from))? {
                let e = e.map_err(io_err(&from))?;
                if e.file_type().map_err(io_err(&from))?.is_file() {
                    let to = self.pki_dir().join(sub).join(e.file_name());
                    // fs::copy keeps the mode (0600 keys stay 0600).
                    fs::copy(e.path(), &to).map_err(io_err(&to))?;
                }
            }
        }
        let read = |p: PathBuf| {
            fs::read(&p).map_err(|source| LayoutError::Io {
                path: p.clone(),
                source,
            })
        };
        let ca = X509::from_pem(&read(self.ca_cert())?).map_err(PkiError::from)?;
        let ca_key = PKey::private_key_from_pem(&read(self.ca_key())?).map_err(PkiError::from)?;
        self.write_kubeconfigs(&(ca, ca_key), apiserver_port, node)?;
        let primary_api = primary.manifest("kube-apiserver");
        let text = String::from_utf8_lossy(&read(primary_api.clone())?).into_owned();
        let etcd_client = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("- --etcd-servers=https://127.0.0.1:"))
            .and_then(|p| p.trim().parse::<u16>().ok())
            .ok_or_else(|| LayoutError::Io {
                path: primary_api.clone(),
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    "no --etcd-servers=https://127.0.0.1:<port>",
                ),
            })?;
        let ports = Ports {
            apiserver: apiserver_port,
            etcd_client,
            etcd_peer: 0,
            etcd_metrics: 0,
            controller_manager: 0,
        };
        write_public(
            &self.manifest("kube-apiserver"),
            apiserver_manifest(version, ports, ControlPlane::Atrest).as_bytes(),
        )?;
        Ok(())
    }

    fn write_pair(&self, name: &str, cert: &X509, key: &PKey<Private>) -> Result<(), LayoutError> {
        let crt = self.pki_dir().join(format!("{name}.crt"));
        write_public(&crt, &cert.to_pem().map_err(PkiError::from)?)?;
        let k = self.pki_dir().join(format!("{name}.key"));
        fsutil::write_private(&k, &pki::key_pem(key)?)?;
        Ok(())
    }

    /// `kubeadm init phase certs all`. Returns the cluster CA.
    fn write_certs(&self, node: &str) -> Result<(X509, PKey<Private>), LayoutError> {
        let loopback4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let (ca, ca_key) = pki::new_ca("kubernetes")?;
        self.write_pair("ca", &ca, &ca_key)?;
        let leaf = |spec: CertSpec,
                    name: &str,
                    ca: &X509,
                    key: &PKey<Private>|
         -> Result<(), LayoutError> {
            let (c, k) = pki::new_leaf(&spec, ca, key)?;
            self.write_pair(name, &c, &k)
        };
        leaf(
            CertSpec {
                common_name: "kube-apiserver".into(),
                dns_names: vec![
                    "kubernetes".into(),
                    "kubernetes.default".into(),
                    "kubernetes.default.svc".into(),
                    "kubernetes.default.svc.cluster.local".into(),
                    "localhost".into(),
                    node.into(),
                ],
                // 10.96.0.1: the first address of kubeadm's default service CIDR 10.96.0.0/12.
                ips: vec![IpAddr::V4(Ipv4Addr::new(10, 96, 0, 1)), loopback4],
                server_auth: true,
                ..Default::default()
            },
            "apiserver",
            &ca,
            &ca_key,
        )?;
        leaf(
            CertSpec::client("kube-apiserver-kubelet-client", &["kubeadm:cluster-admins"]),
            "apiserver-kubelet-client",
            &ca,
            &ca_key,
        )?;
        let (fp_ca, fp_key) = pki::new_ca("front-proxy-ca")?;
        self.write_pair("front-proxy-ca", &fp_ca, &fp_key)?;
        leaf(
            CertSpec::client("front-proxy-client", &[]),
            "front-proxy-client",
            &fp_ca,
            &fp_key,
        )?;
        let (etcd_ca, etcd_key) = pki::new_ca("etcd-ca")?;
        self.write_pair("etcd/ca", &etcd_ca, &etcd_key)?;
        let etcd_names = CertSpec {
            common_name: node.into(),
            dns_names: vec!["localhost".into(), node.into()],
            ips: vec![loopback4, IpAddr::V6(Ipv6Addr::LOCALHOST)],
            server_auth: true,
            client_auth: true,
            ..Default::default()
        };
        leaf(etcd_names.clone(), "etcd/server", &etcd_ca, &etcd_key)?;
        leaf(etcd_names, "etcd/peer", &etcd_ca, &etcd_key)?;
        leaf(
            CertSpec::client("kube-etcd-healthcheck-client", &[]),
            "etcd/healthcheck-client",
            &etcd_ca,
            &etcd_key,
        )?;
        leaf(
            CertSpec::client("kube-apiserver-etcd-client", &[]),
            "apiserver-etcd-client",
            &etcd_ca,
            &etcd_key,
        )?;
        // Service account signing key pair: sa.key (RSA, PKCS#1) and sa.pub (PKIX).
        let sa = pki::new_key()?;
        let p = self.pki_dir().join("sa.key");
        fsutil::write_private(&p, &pki::key_pem(&sa)?)?;
        let p = self.pki_dir().join("sa.pub");
        write_public(&p, &pki::public_key_pem(&sa)?)?;
        Ok((ca, ca_key))
    }

    /// `kubeadm init phase kubeconfig`: admin.conf, super-admin.conf, controller-manager.conf, kubelet.conf
    /// (`system:node:<node>`, group `system:nodes`).
    fn write_kubeconfigs(
        &self,
        ca: &(X509, PKey<Private>),
        port: u16,
        node: &str,
    ) -> Result<(), LayoutError> {
        let server = format!("https://127.0.0.1:{port}");
        let kubelet_user = format!("system:node:{node}");
        let users: [(&str, &str, Vec<String>, PathBuf); 4] = [
            (
                "kubernetes-admin",
                "kubernetes-admin",
                vec!["kubeadm:cluster-admins".into()],
                self.admin_conf(),
            ),
            (
                "kubernetes-super-admin",
                "kubernetes-super-admin",
                vec!["system:masters".into()],
                self.super_admin_conf(),
            ),
            (
                "system:kube-controller-manager",
                "system:kube-controller-manager",
                vec![],
                self.controller_manager_conf(),
            ),
            (
                &kubelet_user,
                &kubelet_user,
                vec!["system:nodes".into()],
                self.kubelet_conf(),
            ),
        ];
        for (user, cn, orgs, path) in users {
            let spec = CertSpec {
                organizations: orgs,
                ..CertSpec::client(cn, &[])
            };
            let (cert, key) = pki::new_leaf(&spec, &ca.0, &ca.1)?;
            let text = kubeconfig_yaml(
                &server,
                &ca.0.to_pem().map_err(PkiError::from)?,
                user,
                &cert.to_pem().map_err(PkiError::from)?,
                &pki::key_pem(&key)?,
            );
            fsutil::write_private(&path, text.as_bytes())?;
        }
        Ok(())
    }

    /// `kubeadm init phase control-plane all` + `etcd local`.
    fn write_manifests(
        &self,
        node: &str,
        v: &KubeVersion,
        ports: Ports,
        control_plane: ControlPlane,
    ) -> Result<(), LayoutError> {
        for (name, text) in [
            ("etcd", etcd_manifest(node, v, ports)),
            (
                "kube-apiserver",
                apiserver_manifest(v, ports, control_plane),
            ),
            (
                "kube-controller-manager",
                controller_manager_manifest(v, ports, control_plane),
            ),
        ] {
            let p = self.manifest(name);
            // kubeadm writes static pod manifests 0600 (`cmd/kubeadm/app/util/staticpod/utils.go`
            // `WriteStaticPodToDisk`; CIS 1.1.1/1.1.7 check it).
            fsutil::write_with_mode(&p, text.as_bytes(), 0o600)?;
        }
        Ok(())
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), LayoutError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

/// A kubeconfig in the exact shape kubeadm writes (client-go's `clientcmd.Write` field order).
pub fn kubeconfig_yaml(
    server: &str,
    ca_pem: &[u8],
    user: &str,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: {CLUSTER_NAME}\n\
         contexts:\n- context:\n    cluster: {CLUSTER_NAME}\n    user: {user}\n  name: {user}@{CLUSTER_NAME}\n\
         current-context: {user}@{CLUSTER_NAME}\nkind: Config\npreferences: {{}}\nusers:\n- name: {user}\n  user:\n\
         \x20   client-certificate-data: {cert}\n    client-key-data: {key}\n",
        ca = b64(ca_pem),
        cert = b64(cert_pem),
        key = b64(key_pem),
    )
}

/// A container probe as kubeadm writes it (`cmd/kubeadm/app/util/staticpod/utils.go` `createHTTPProbe`, host
/// 127.0.0.1, timeout 15 s), with the numbers of its `LivenessProbe`, `ReadinessProbe` and `StartupProbe` (the
/// startup failure threshold is the 4-minute control-plane timeout over the 10 s period).
#[derive(Clone, Copy)]
enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

fn probe(kind: ProbeKind, path: &str, port: u16, scheme: &str) -> String {
    let (name, initial_delay, failures, period) = match kind {
        ProbeKind::Liveness => ("livenessProbe", true, 8, 10),
        ProbeKind::Readiness => ("readinessProbe", false, 3, 1),
        ProbeKind::Startup => ("startupProbe", true, 24, 10),
    };
    let (indent, host) = ("    ", "127.0.0.1");
    let initial = if initial_delay {
        format!("{indent}  initialDelaySeconds: 10\n")
    } else {
        String::new()
    };
    format!(
        "{indent}{name}:\n{indent}  failureThreshold: {failures}\n{indent}  httpGet:\n{indent}    host: {host}\n\
         {indent}    path: {path}\n{indent}    port: {port}\n{indent}    scheme: {scheme}\n{initial}\
         {indent}  periodSeconds: {period}\n{indent}  timeoutSeconds: 15\n"
    )
}

/// A hostPath volume and its mount: (name, path, hostPath type, readOnly).
type Volume<'a> = (&'a str, &'a str, &'a str, bool);

/// The CA certificate directories and the cluster PKI, mounted read-only into kube-apiserver and
/// kube-controller-manager (`cmd/kubeadm/app/phases/controlplane/volumes.go` `getHostPathVolumesForTheControlPlane`).
const CERT_VOLUMES: &[Volume<'static>] = &[
    ("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate", true),
    (
        "etc-ca-certificates",
        "/etc/ca-certificates",
        "DirectoryOrCreate",
        true,
    ),
    (
        "k8s-certs",
        "/etc/kubernetes/pki",
        "DirectoryOrCreate",
        true,
    ),
    (
        "usr-local-share-ca-certificates",
        "/usr/local/share/ca-certificates",
        "DirectoryOrCreate",
        true,
    ),
    (
        "usr-share-ca-certificates",
        "/usr/share/ca-certificates",
        "DirectoryOrCreate",
        true,
    ),
];

/// `volumeMounts` (sorted by mountPath) and `volumes` (sorted by name), as kubeadm sorts them.
fn volumes(list: &[Volume<'_>]) -> (String, String) {
    let mut mounts: Vec<_> = list.to_vec();
    mounts.sort_by(|a, b| a.1.cmp(b.1));
    let mut m = String::from("    volumeMounts:\n");
    for (name, path, _, ro) in &mounts {
        m.push_str(&format!("    - mountPath: {path}\n      name: {name}\n"));
        if *ro {
            m.push_str("      readOnly: true\n");
        }
    }
    let mut vols: Vec<_> = list.to_vec();
    vols.sort_by(|a, b| a.0.cmp(b.0));
    let mut v = String::from("  volumes:\n");
    for (name, path, ty, _) in &vols {
        v.push_str(&format!(
            "  - hostPath:\n      path: {path}\n      type: {ty}\n    name: {name}\n"
        ));
    }
    (m, v)
}

const POD_TAIL: &str = "  hostNetwork: true\n  priority: 2000001000\n  priorityClassName: system-node-critical\n  securityContext:\n    seccompProfile:\n      type: RuntimeDefault\n";

/// One static pod manifest of kubeadm's (`staticpod.ComponentPod`), its fields in the order kubeadm's YAML has them.
struct StaticPod<'a> {
    component: &'a str,
    /// kubeadm's endpoint annotation (name below `kubeadm.kubernetes.io/`, value), if the component has one.
    annotation: Option<(&'a str, String)>,
    flags: &'a [String],
    image: String,
    /// Probes in field order: livenessProbe, then (after `name`) readinessProbe if any, then startupProbe.
    liveness: String,
    readiness: Option<String>,
    startup: String,
    /// The `resources:` block.
    resources: &'a str,
    volumes: &'a [Volume<'a>],
}

impl StaticPod<'_> {
    fn render(&self) -> String {
        let component = self.component;
        let annotations = match &self.annotation {
            Some((name, value)) => {
                format!("  annotations:\n    kubeadm.kubernetes.io/{name}: {value}\n")
            }
            None => String::new(),
        };
        let mut s = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n{annotations}  creationTimestamp: null\n  labels:\n    component: {component}\n\
             \x20   tier: control-plane\n  name: {component}\n  namespace: kube-system\n\
             spec:\n  containers:\n  - command:\n    - {component}\n"
        );
        for f in self.flags {
            s.push_str(&format!("    - {f}\n"));
        }
        s.push_str(&format!(
            "    image: {}\n    imagePullPolicy: IfNotPresent\n",
            self.image
        ));
        s.push_str(&self.liveness);
        s.push_str(&format!("    name: {component}\n"));
        if let Some(r) = &self.readiness {
            s.push_str(r);
        }
        s.push_str(self.resources);
        s.push_str(&self.startup);
        let (mounts, vols) = volumes(self.volumes);
        s.push_str(&mounts);
        s.push_str(POD_TAIL);
        s.push_str(&vols);
        s.push_str("status: {}\n");
        s
    }
}

fn etcd_manifest(node: &str, v: &KubeVersion, p: Ports) -> String {
    let client = format!("https://127.0.0.1:{}", p.etcd_client);
    let peer = format!("https://127.0.0.1:{}", p.etcd_peer);
    let mut flags = vec![
        format!("--advertise-client-urls={client}"),
        "--cert-file=/etc/kubernetes/pki/etcd/server.crt".into(),
        "--client-cert-auth=true".into(),
        "--data-dir=/var/lib/etcd".into(),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster={node}={peer}"),
        "--key-file=/etc/kubernetes/pki/etcd/server.key".into(),
        format!("--listen-client-urls={client}"),
        format!("--listen-metrics-urls=http://127.0.0.1:{}", p.etcd_metrics),
        format!("--listen-peer-urls={peer}"),
        format!("--name={node}"),
        "--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt".into(),
        "--peer-client-cert-auth=true".into(),
        "--peer-key-file=/etc/kubernetes/pki/etcd/peer.key".into(),
        "--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt".into(),
        "--snapshot-count=10000".into(),
        "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt".into(),
    ];
    // `cmd/kubeadm/app/phases/etcd/local.go` `getEtcdCommand`: etcd 3.6 renamed the experimental flags.
    if v.etcd_3_6() {
        flags.push("--feature-gates=InitialCorruptCheck=true".into());
        flags.push("--watch-progress-notify-interval=5s".into());
    } else {
        flags.push("--experimental-initial-corrupt-check=true".into());
        flags.push("--experimental-watch-progress-notify-interval=5s".into());
    }
    flags.sort();
    let m = p.etcd_metrics;
    StaticPod {
        component: "etcd",
        annotation: Some(("etcd.advertise-client-urls", client)),
        flags: &flags,
        image: format!("registry.k8s.io/etcd:{}", v.etcd_image_tag()),
        liveness: probe(
            ProbeKind::Liveness,
            "/health?exclude=NOSPACE&serializable=true",
            m,
            "HTTP",
        ),
        readiness: None,
        startup: probe(ProbeKind::Startup, "/health?serializable=false", m, "HTTP"),
        resources: "    resources:\n      requests:\n        cpu: 100m\n        memory: 100Mi\n",
        volumes: &[
            (
                "etcd-certs",
                "/etc/kubernetes/pki/etcd",
                "DirectoryOrCreate",
                false,
            ),
            ("etcd-data", "/var/lib/etcd", "DirectoryOrCreate", false),
        ],
    }
    .render()
}

fn apiserver_manifest(v: &KubeVersion, p: Ports, control_plane: ControlPlane) -> String {
    let port = p.apiserver;
    let mut flags = vec![
        "--advertise-address=127.0.0.1".to_string(),
        "--allow-privileged=true".into(),
        "--authorization-mode=Node,RBAC".into(),
        "--client-ca-file=/etc/kubernetes/pki/ca.crt".into(),
        "--enable-admission-plugins=NodeRestriction".into(),
        "--enable-bootstrap-token-auth=true".into(),
        "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt".into(),
        "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt".into(),
        "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key".into(),
        format!("--etcd-servers=https://127.0.0.1:{}", p.etcd_client),
        "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt".into(),
        "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key".into(),
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname".into(),
        "--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy-client.crt".into(),
        "--proxy-client-key-file=/etc/kubernetes/pki/front-proxy-client.key".into(),
        "--requestheader-allowed-names=front-proxy-client".into(),
        "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt".into(),
        "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
        "--requestheader-group-headers=X-Remote-Group".into(),
        "--requestheader-username-headers=X-Remote-User".into(),
        format!("--secure-port={port}"),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
        "--service-account-key-file=/etc/kubernetes/pki/sa.pub".into(),
        "--service-account-signing-key-file=/etc/kubernetes/pki/sa.key".into(),
        "--service-cluster-ip-range=10.96.0.0/12".into(),
        "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt".into(),
        "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key".into(),
    ];
    if control_plane == ControlPlane::Real {
        // Serve on loopback only (the default 0.0.0.0 would expose a test cluster on every interface).
        flags.push("--bind-address=127.0.0.1".into());
        flags.sort();
    }
    StaticPod {
        component: "kube-apiserver",
        annotation: Some((
            "kube-apiserver.advertise-address.endpoint",
            format!("127.0.0.1:{port}"),
        )),
        flags: &flags,
        image: format!("registry.k8s.io/kube-apiserver:{}", v.git_version),
        liveness: probe(ProbeKind::Liveness, "/livez", port, "HTTPS"),
        readiness: Some(probe(ProbeKind::Readiness, "/readyz", port, "HTTPS")),
        startup: probe(ProbeKind::Startup, "/livez", port, "HTTPS"),
        resources: "    resources:\n      requests:\n        cpu: 250m\n",
        volumes: CERT_VOLUMES,
    }
    .render()
}

fn controller_manager_manifest(v: &KubeVersion, p: Ports, control_plane: ControlPlane) -> String {
    let mut flags: Vec<String> = [
        "--allocate-node-cidrs=true",
        "--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf",
        "--authorization-kubeconfig=/etc/kubernetes/controller-manager.conf",
        "--bind-address=127.0.0.1",
        "--client-ca-file=/etc/kubernetes/pki/ca.crt",
        "--cluster-cidr=10.244.0.0/16",
        "--cluster-name=kubernetes",
        "--cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt",
        "--cluster-signing-key-file=/etc/kubernetes/pki/ca.key",
        "--controllers=*,bootstrapsigner,tokencleaner",
        "--kubeconfig=/etc/kubernetes/controller-manager.conf",
        "--leader-elect=true",
        "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy-ca.crt",
        "--root-ca-file=/etc/kubernetes/pki/ca.crt",
        "--service-account-private-key-file=/etc/kubernetes/pki/sa.key",
        "--service-cluster-ip-range=10.96.0.0/12",
        "--use-service-account-credentials=true",
    ]
    .map(String::from)
    .to_vec();
    let mut health_port = 10257;
    if control_plane == ControlPlane::Real {
        health_port = p.controller_manager;
        flags.push(format!("--secure-port={health_port}"));
        flags.sort();
    }
    let volumes = [
        CERT_VOLUMES,
        &[
            (
                "flexvolume-dir",
                "/usr/libexec/kubernetes/kubelet-plugins/volume/exec",
                "DirectoryOrCreate",
                false,
            ),
            (
                "kubeconfig",
                "/etc/kubernetes/controller-manager.conf",
                "FileOrCreate",
                true,
            ),
        ],
    ]
    .concat();
    StaticPod {
        component: "kube-controller-manager",
        annotation: None,
        flags: &flags,
        image: format!("registry.k8s.io/kube-controller-manager:{}", v.git_version),
        liveness: probe(ProbeKind::Liveness, "/healthz", health_port, "HTTPS"),
        readiness: None,
        startup: probe(ProbeKind::Startup, "/healthz", health_port, "HTTPS"),
        resources: "    resources:\n      requests:\n        cpu: 200m\n",
        volumes: &volumes,
    }
    .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_PORTS: Ports = Ports {
        apiserver: 16443,
        etcd_client: 12379,
        etcd_peer: 12380,
        etcd_metrics: 12381,
        controller_manager: 12382,
    };

    #[test]
    fn version_parsing_and_defaults() {
        assert_eq!(KubeVersion::parse("1.32").unwrap().git_version, "v1.32.4");
        assert_eq!(
            KubeVersion::parse("v1.27.3").unwrap().git_version,
            "v1.27.3"
        );
        assert_eq!(
            KubeVersion::parse("1.30").unwrap().etcd_image_tag(),
            "3.5.12-0"
        );
        assert!(KubeVersion::parse("1.26").is_err());
        assert!(KubeVersion::parse("2.1").is_err());
        assert!(KubeVersion::parse("1.32.x").is_err());
    }

    #[test]
    fn real_control_plane_manifests_carry_kubeadm_1_34_flags() {
        let dir = tempfile::tempdir().unwrap();
        let l = NodeLayout::new(dir.path());
        let ports = TEST_PORTS;
        let v = KubeVersion::release("v1.34.4", "v3.6.4").unwrap();
        assert_eq!((v.minor, v.git_version.as_str()), (34, "v1.34.4"));
        l.init_for("n", &v, ports, ControlPlane::Real).unwrap();
        let read = |c: &str| fs::read_to_string(l.manifest(c)).unwrap();
        let api = read("kube-apiserver");
        assert!(api.contains("    - --authorization-mode=Node,RBAC\n    - --bind-address=127.0.0.1\n    - --client-ca-file="));
        assert!(api.contains("image: registry.k8s.io/kube-apiserver:v1.34.4\n"));
        let etcd = read("etcd");
        assert!(etcd.contains("    - --feature-gates=InitialCorruptCheck=true\n"));
        assert!(etcd.contains("    - --trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt\n    - --watch-progress-notify-interval=5s\n"));
        assert!(!etcd.contains("experimental"));
        assert!(etcd.contains("image: registry.k8s.io/etcd:3.6.4-0\n"));
        let cm = read("kube-controller-manager");
        assert!(cm.contains(
            "    - --root-ca-file=/etc/kubernetes/pki/ca.crt\n    - --secure-port=12382\n"
        ));
        assert!(cm.contains("      port: 12382\n") && !cm.contains("10257"));
        // atrest's control plane keeps kubeadm's defaults.
        let d2 = tempfile::tempdir().unwrap();
        let l2 = NodeLayout::new(d2.path());
        l2.init("n", &KubeVersion::parse("1.32").unwrap(), ports)
            .unwrap();
        let api = fs::read_to_string(l2.manifest("kube-apiserver")).unwrap();
        assert!(!api.contains("--bind-address"));
        let etcd = fs::read_to_string(l2.manifest("etcd")).unwrap();
        assert!(etcd.contains("    - --experimental-initial-corrupt-check=true\n"));
    }

    #[test]
    fn init_lays_out_kubeadm_files_with_private_keys() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let l = NodeLayout::new(dir.path());
        let ports = TEST_PORTS;
        l.init("node1", &KubeVersion::parse("1.32").unwrap(), ports)
            .unwrap();
        for f in [
            "ca.crt",
            "ca.key",
            "apiserver.crt",
            "apiserver.key",
            "apiserver-kubelet-client.key",
            "apiserver-etcd-client.crt",
            "sa.key",
            "sa.pub",
            "front-proxy-ca.crt",
            "front-proxy-client.key",
            "etcd/ca.crt",
            "etcd/server.key",
            "etcd/peer.crt",
            "etcd/healthcheck-client.key",
        ] {
            let p = l.pki_dir().join(f);
            let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, if f.ends_with(".key") { 0o600 } else { 0o644 }, "{f}");
        }
        let mode = fs::metadata(l.admin_conf()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let api = fs::read_to_string(l.manifest("kube-apiserver")).unwrap();
        assert!(api.contains("    - --secure-port=16443\n"));
        assert!(api.contains("    - --etcd-servers=https://127.0.0.1:12379\n"));
        assert!(api.contains("image: registry.k8s.io/kube-apiserver:v1.32.4\n"));
        let etcd = fs::read_to_string(l.manifest("etcd")).unwrap();
        assert!(etcd.contains("    - --initial-cluster=node1=https://127.0.0.1:12380\n"));
        assert!(etcd.contains("image: registry.k8s.io/etcd:3.5.16-0\n"));
        let admin = fs::read_to_string(l.admin_conf()).unwrap();
        assert!(admin.contains("current-context: kubernetes-admin@kubernetes\n"));
        assert!(admin.contains("server: https://127.0.0.1:16443\n"));
    }
}
