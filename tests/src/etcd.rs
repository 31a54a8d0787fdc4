//! A real etcd (Debian 3.4) started with TLS and client-certificate auth on free loopback ports.
//!
//! [`TlsEtcd::start`] makes a kubeadm-shaped node root in a temp dir
//! (`<root>/etc/kubernetes/pki/etcd/{ca,server,peer}.{crt,key}`,
//! `<root>/etc/kubernetes/pki/apiserver-etcd-client.{crt,key}`), starts etcd with client and peer TLS
//! and `--client-cert-auth`, polls until it answers, and kills it and removes everything on drop.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use atrest_core::etcd::{EtcdClient, EtcdTls};
use atrest_core::fsutil;
use atrest_core::pki::{
    CA_VALIDITY, CertificateAuthority, KeyAlgorithm, LEAF_VALIDITY, LeafProfile, PrivateKey,
};

/// The etcd binary (Debian's `etcd-server` package).
pub const ETCD_BIN: &str = "etcd";
/// The etcdctl binary (Debian's `etcd-client` package).
pub const ETCDCTL_BIN: &str = "etcdctl";

/// A running TLS etcd; killed and cleaned up on drop.
pub struct TlsEtcd {
    child: Child,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    ca: CertificateAuthority,
    cached: tokio::sync::OnceCell<EtcdClient>,
    client_cert_auth: bool,
}

/// Client-side file paths for talking to a [`TlsEtcd`].
#[derive(Debug, Clone)]
pub struct EtcdClientFiles {
    /// The etcd CA certificate.
    pub ca: PathBuf,
    /// A client certificate signed by that CA.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

fn free_ports() -> (u16, u16) {
    loop {
        let (a, b) = (free_port(), free_port());
        if a != b {
            return (a, b);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

impl TlsEtcd {
    /// Start etcd; panics (showing etcd's log) if it does not become healthy within 20 s.
    pub fn start() -> Self {
        Self::start_with(true)
    }

    /// Start etcd with `--client-cert-auth=<client_cert_auth>`. False also leaves out
    /// `--trusted-ca-file` (etcd requires client certificates whenever that is set, whatever
    /// `--client-cert-auth` says: etcd `pkg/transport/listener.go` `TLSInfo.ServerConfig`), so any TLS
    /// client may read and write: the insecure setup `kubectl etcdcheck posture` must catch.
    pub fn start_with(client_cert_auth: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("atrest-etcd-")
            .tempdir()
            .expect("temp dir");
        let ca = make_pki(dir.path());
        let (client_port, peer_port) = free_ports();
        let mut etcd = Self {
            child: spawn_etcd(dir.path(), client_port, peer_port, client_cert_auth),
            dir,
            client_port,
            peer_port,
            ca,
            cached: tokio::sync::OnceCell::new(),
            client_cert_auth,
        };
        // A freshly probed port can be taken by another process before etcd binds it: retry.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match etcd.wait_healthy(Duration::from_secs(20)) {
                Ok(()) => return etcd,
                Err(log) if attempt < 3 && log.contains("address already in use") => {
                    let _ = std::fs::remove_dir_all(etcd.dir.path().join("data"));
                    let (client_port, peer_port) = free_ports();
                    etcd.client_port = client_port;
                    etcd.peer_port = peer_port;
                    etcd.child =
                        spawn_etcd(etcd.dir.path(), client_port, peer_port, client_cert_auth);
                }
                Err(log) => panic!("etcd did not become healthy; its log:\n{log}"),
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn wait_healthy(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("etcd exited with {status}\n{}", self.log()));
            }
            let ok = Command::new(ETCDCTL_BIN)
                .args(self.etcdctl_args())
                .args([
                    "--dial-timeout=1s",
                    "--command-timeout=2s",
                    "endpoint",
                    "health",
                ])
                .env_remove("ETCDCTL_ENDPOINTS")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!("timed out after {timeout:?}\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// etcd's combined stdout/stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    /// `https://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.client_port)
    }

    /// The arguments etcd was started with (host paths under [`Self::root`]).
    pub fn args(&self) -> Vec<String> {
        etcd_args(
            self.root(),
            self.client_port,
            self.peer_port,
            self.client_cert_auth,
        )
    }

    /// The kubeadm-shaped node root (pass as `--root`).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The etcd CA (to sign more client certificates in tests).
    pub fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    /// kubeadm's apiserver-etcd-client files under [`Self::root`].
    pub fn client_files(&self) -> EtcdClientFiles {
        let pki = self.root().join("etc/kubernetes/pki");
        EtcdClientFiles {
            ca: pki.join("etcd/ca.crt"),
            cert: pki.join("apiserver-etcd-client.crt"),
            key: pki.join("apiserver-etcd-client.key"),
        }
    }

    /// `--endpoints … --cacert … --cert … --key …` (etcdctl and `kubectl etcdcheck` spell them alike).
    pub fn etcdctl_args(&self) -> Vec<String> {
        let f = self.client_files();
        vec![
            format!("--endpoints={}", self.endpoint()),
            format!("--cacert={}", f.ca.display()),
            format!("--cert={}", f.cert.display()),
            format!("--key={}", f.key.display()),
        ]
    }

    /// An etcd client (TLS, client certificate) for loading values.
    pub async fn client(&self) -> EtcdClient {
        let f = self.client_files();
        let tls = EtcdTls::from_pem(
            std::fs::read(&f.ca).unwrap(),
            Some((
                std::fs::read(&f.cert).unwrap(),
                std::fs::read(&f.key).unwrap(),
            )),
        );
        atrest_core::etcd::connect_client(&[self.endpoint()], Some(&tls), Duration::from_secs(5))
            .await
            .expect("connect to the test etcd")
    }

    /// Put raw bytes at `key` (through one shared client).
    pub async fn put(&self, key: &str, value: impl Into<Vec<u8>>) {
        let client = self.cached.get_or_init(|| self.client()).await;
        client
            .put(key, value)
            .await
            .unwrap_or_else(|e| panic!("put {key}: {e}"));
    }
}

impl Drop for TlsEtcd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn make_pki(root: &Path) -> CertificateAuthority {
    let pki = root.join("etc/kubernetes/pki");
    let etcd_pki = pki.join("etcd");
    fsutil::ensure_dir_with_mode(&etcd_pki, 0o700).expect("pki dir");
    let ca = CertificateAuthority::new_self_signed("etcd-ca", KeyAlgorithm::EcdsaP256, CA_VALIDITY)
        .expect("etcd CA");
    ca.write(&etcd_pki.join("ca.crt"), &etcd_pki.join("ca.key"))
        .expect("write CA");
    let san = LeafProfile::ServerClient {
        dns_names: vec!["localhost".into()],
        ips: vec![Ipv4Addr::LOCALHOST.into()],
    };
    for (name, cn) in [("server", "localhost"), ("peer", "localhost")] {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let cert = ca.issue(&key, cn, &[], &san, LEAF_VALIDITY).unwrap();
        atrest_core::pki::write_cert_and_key(
            &cert,
            &key,
            &etcd_pki.join(format!("{name}.crt")),
            &etcd_pki.join(format!("{name}.key")),
        )
        .unwrap();
    }
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let cert = ca
        .issue(
            &key,
            "kube-apiserver-etcd-client",
            &[],
            &LeafProfile::Client,
            LEAF_VALIDITY,
        )
        .unwrap();
    atrest_core::pki::write_cert_and_key(
        &cert,
        &key,
        &pki.join("apiserver-etcd-client.crt"),
        &pki.join("apiserver-etcd-client.key"),
    )
    .unwrap();
    ca
}

fn etcd_args(root: &Path, client_port: u16, peer_port: u16, client_cert_auth: bool) -> Vec<String> {
    let p = root.join("etc/kubernetes/pki/etcd");
    let data = root.join("data");
    let client = format!("https://127.0.0.1:{client_port}");
    let peer = format!("https://127.0.0.1:{peer_port}");
    let f = |n: &str| p.join(n).display().to_string();
    let mut args = vec![
        "--name=atrest-test".to_string(),
        format!("--data-dir={}", data.display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=atrest-test={peer}"),
        format!("--cert-file={}", f("server.crt")),
        format!("--key-file={}", f("server.key")),
        format!("--client-cert-auth={client_cert_auth}"),
        format!("--peer-cert-file={}", f("peer.crt")),
        format!("--peer-key-file={}", f("peer.key")),
        format!("--peer-trusted-ca-file={}", f("ca.crt")),
        "--peer-client-cert-auth=true".into(),
        "--logger=zap".into(),
        "--log-outputs=stderr".into(),
        "--snapshot-count=100000".into(),
    ];
    if client_cert_auth {
        args.push(format!("--trusted-ca-file={}", f("ca.crt")));
    }
    args
}

fn spawn_etcd(root: &Path, client_port: u16, peer_port: u16, client_cert_auth: bool) -> Child {
    let log = std::fs::File::create(root.join("etcd.log")).expect("etcd log file");
    Command::new(ETCD_BIN)
        .args(etcd_args(root, client_port, peer_port, client_cert_auth))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log fd"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {ETCD_BIN} (Debian package etcd-server): {e}"))
}
