//! Helpers shared by the sandbox's integration tests: a real etcd process, a throwaway PKI (openssl), the sandbox
//! API server started from a kube-apiserver command line, and the real kubectl / etcdctl.
#![allow(clippy::new_without_default)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atrest_sandbox::apiserver::{ApiServer, Faults, HostPaths, RunningApiServer};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509NameBuilder};

/// A free loopback port (bind 0, read, release).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real etcd on loopback (plain HTTP), killed on drop.
pub struct Etcd {
    child: Child,
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

impl Etcd {
    pub fn start() -> Etcd {
        let dir = tempfile::tempdir().unwrap();
        let (cp, pp) = (free_port(), free_port());
        let client = format!("http://127.0.0.1:{cp}");
        let peer = format!("http://127.0.0.1:{pp}");
        let child = Command::new("etcd")
            .args([
                "--name=default",
                &format!("--data-dir={}", dir.path().join("data").display()),
                &format!("--listen-client-urls={client}"),
                &format!("--advertise-client-urls={client}"),
                &format!("--listen-peer-urls={peer}"),
                &format!("--initial-advertise-peer-urls={peer}"),
                &format!("--initial-cluster=default={peer}"),
                "--log-level=error",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        let etcd = Etcd {
            child,
            endpoint: client,
            _dir: dir,
        };
        wait_for("etcd to become healthy", Duration::from_secs(60), || {
            etcd.etcdctl(&["endpoint", "health"]).status.success()
        });
        etcd
    }

    /// `etcdctl --endpoints <this etcd> ARGS` (API v3).
    pub fn etcdctl(&self, args: &[&str]) -> std::process::Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoint])
            .args(args)
            .output()
            .unwrap()
    }

    /// `etcdctl get KEY --print-value-only` raw bytes (trailing newline removed).
    pub fn get_raw(&self, key: &str) -> Vec<u8> {
        let out = self.etcdctl(&["get", key, "--print-value-only"]);
        assert!(
            out.status.success(),
            "etcdctl get: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut v = out.stdout;
        if v.last() == Some(&b'\n') {
            v.pop();
        }
        v
    }

    /// `etcdctl get KEY -w json` mod_revision, or None when absent.
    pub fn mod_revision(&self, key: &str) -> Option<i64> {
        let out = self.etcdctl(&["get", key, "-w", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["kvs"]
            .get(0)
            .map(|kv| kv["mod_revision"].as_i64().unwrap())
    }

    /// Keys under a prefix.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let out = self.etcdctl(&["get", prefix, "--prefix", "--keys-only"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    /// Compact etcd to its current revision (expires continue tokens).
    pub fn compact(&self) {
        let out = self.etcdctl(&["endpoint", "status", "-w", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let rev = v[0]["Status"]["header"]["revision"].as_i64().unwrap();
        let st = self.etcdctl(&["compact", &rev.to_string()]);
        assert!(st.status.success());
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA plus issued certificates, written as PEM files into a temp dir.
pub struct Pki {
    pub dir: tempfile::TempDir,
    ca_cert: X509,
    ca_key: PKey<Private>,
}

fn name(cn: &str, orgs: &[&str]) -> openssl::x509::X509Name {
    let mut n = X509NameBuilder::new().unwrap();
    for o in orgs {
        n.append_entry_by_nid(Nid::ORGANIZATIONNAME, o).unwrap();
    }
    n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    n.build()
}

fn serial() -> openssl::asn1::Asn1Integer {
    let mut s = BigNum::new().unwrap();
    s.rand(63, MsbOption::MAYBE_ZERO, false).unwrap();
    s.to_asn1_integer().unwrap()
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&serial()).unwrap();
        let n = name("kubernetes", &[]);
        b.set_subject_name(&n).unwrap();
        b.set_issuer_name(&n).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(10).unwrap())
            .unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .digital_signature()
                .key_encipherment()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let ca = b.build();
        std::fs::write(dir.path().join("ca.crt"), ca.to_pem().unwrap()).unwrap();
        std::fs::write(
            dir.path().join("ca.key"),
            key.private_key_to_pem_pkcs8().unwrap(),
        )
        .unwrap();
        let pki = Pki {
            dir,
            ca_cert: ca,
            ca_key: key,
        };
        pki.issue("apiserver", "kube-apiserver", &[], true);
        pki
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn ca_pem(&self) -> Vec<u8> {
        self.ca_cert.to_pem().unwrap()
    }

    /// Issue `<file>.crt`/`<file>.key` for CN/O; `server` gives serverAuth + SANs 127.0.0.1/localhost.
    pub fn issue(&self, file: &str, cn: &str, orgs: &[&str], server: bool) -> (Vec<u8>, Vec<u8>) {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&serial()).unwrap();
        b.set_subject_name(&name(cn, orgs)).unwrap();
        b.set_issuer_name(self.ca_cert.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(5).unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()
                .unwrap(),
        )
        .unwrap();
        if server {
            b.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap())
                .unwrap();
            let san = SubjectAlternativeName::new()
                .ip("127.0.0.1")
                .dns("localhost")
                .build(&b.x509v3_context(Some(&self.ca_cert), None))
                .unwrap();
            b.append_extension(san).unwrap();
        } else {
            b.append_extension(ExtendedKeyUsage::new().client_auth().build().unwrap())
                .unwrap();
        }
        b.sign(&self.ca_key, MessageDigest::sha256()).unwrap();
        let cert = b.build().to_pem().unwrap();
        let key = key.private_key_to_pem_pkcs8().unwrap();
        std::fs::write(self.path(&format!("{file}.crt")), &cert).unwrap();
        std::fs::write(self.path(&format!("{file}.key")), &key).unwrap();
        (cert, key)
    }

    /// A CertificateSigningRequest (JSON) named `name` for CN/O, for kube-apiserver-client with client auth.
    pub fn csr_json(name: &str, cn: &str, orgs: &[&str], expiration: Option<i64>) -> String {
        use base64::Engine;
        let pem = Pki::csr_pem(cn, orgs);
        let mut v = serde_json::json!({
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": {
                "request": base64::engine::general_purpose::STANDARD.encode(pem),
                "signerName": "kubernetes.io/kube-apiserver-client",
                "usages": ["client auth"],
            }
        });
        if let Some(e) = expiration {
            v["spec"]["expirationSeconds"] = serde_json::json!(e);
        }
        v.to_string()
    }

    /// A PEM CSR for CN/O with a fresh key.
    pub fn csr_pem(cn: &str, orgs: &[&str]) -> Vec<u8> {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut r = openssl::x509::X509ReqBuilder::new().unwrap();
        r.set_subject_name(&name(cn, orgs)).unwrap();
        r.set_pubkey(&key).unwrap();
        r.sign(&key, MessageDigest::sha256()).unwrap();
        r.build().to_pem().unwrap()
    }
}

/// etcd + PKI + the sandbox API server, plus kubeconfigs for client-certificate users.
pub struct Cluster {
    pub etcd: Etcd,
    pub pki: Pki,
    pub server: Option<RunningApiServer>,
    pub faults: Arc<Faults>,
    pub port: u16,
    pub kube_version: String,
    pub extra_flags: Vec<String>,
}

impl Cluster {
    /// Start with kubeadm-like flags (Node,RBAC, client CA) plus `extra` flags.
    pub async fn start(kube_version: &str, extra: &[&str]) -> Cluster {
        let etcd = tokio::task::spawn_blocking(Etcd::start).await.unwrap();
        let pki = Pki::new();
        let faults = Arc::new(Faults::new());
        let mut c = Cluster {
            etcd,
            pki,
            server: None,
            faults,
            port: free_port(),
            kube_version: kube_version.into(),
            extra_flags: extra.iter().map(|s| s.to_string()).collect(),
        };
        c.start_server().await.expect("server starts");
        c
    }

    pub fn command(&self) -> Vec<String> {
        let p = |f: &str| self.pki.path(f).display().to_string();
        let mut v = vec![
            "kube-apiserver".to_string(),
            "--advertise-address=127.0.0.1".into(),
            "--allow-privileged=true".into(),
            "--authorization-mode=Node,RBAC".into(),
            format!("--client-ca-file={}", p("ca.crt")),
            "--enable-admission-plugins=NodeRestriction".into(),
            "--enable-bootstrap-token-auth=true".into(),
            format!("--etcd-servers={}", self.etcd.endpoint),
            format!("--secure-port={}", self.port),
            "--bind-address=127.0.0.1".into(),
            "--service-cluster-ip-range=10.96.0.0/12".into(),
            format!("--tls-cert-file={}", p("apiserver.crt")),
            format!("--tls-private-key-file={}", p("apiserver.key")),
        ];
        v.extend(self.extra_flags.iter().cloned());
        v
    }

    pub async fn start_server(&mut self) -> Result<(), atrest_sandbox::apiserver::StartError> {
        let cmd = self.command();
        let s = ApiServer::start(
            &cmd,
            Arc::new(HostPaths),
            self.faults.clone(),
            &self.kube_version,
        )
        .await?;
        self.server = Some(s);
        Ok(())
    }

    pub async fn stop_server(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    /// Write a kubeconfig for a new client certificate CN/O and return its path.
    pub fn kubeconfig(&self, cn: &str, orgs: &[&str]) -> PathBuf {
        let file = format!("user-{}", cn.replace(':', "_"));
        let (cert, key) = self.pki.issue(&file, cn, orgs, false);
        self.write_kubeconfig(&file, &cert, &key)
    }

    /// Write `<file>.kubeconfig` for a client certificate (the sandbox's kubeadm-style kubeconfig) and return its path.
    pub fn write_kubeconfig(&self, file: &str, cert: &[u8], key: &[u8]) -> PathBuf {
        let text = atrest_sandbox::layout::kubeconfig_yaml(
            &format!("https://127.0.0.1:{}", self.port),
            &self.pki.ca_pem(),
            "user",
            cert,
            key,
        );
        let path = self.pki.path(&format!("{file}.kubeconfig"));
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The admin kubeconfig (O=system:masters).
    pub fn admin(&self) -> PathBuf {
        let p = self.pki.path("user-admin.kubeconfig");
        if p.exists() {
            p
        } else {
            self.kubeconfig("admin", &["system:masters"])
        }
    }
}

/// Result of one kubectl run.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "kubectl failed: stdout={} stderr={}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// stdout of a successful run, parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        let out = self.ok();
        serde_json::from_str(out)
            .unwrap_or_else(|e| panic!("kubectl's output is not JSON ({e}): {out}"))
    }

    /// kubectl exited 1 with `needle` in its stderr.
    #[track_caller]
    pub fn fails_with(&self, needle: &str) {
        assert_eq!(
            self.code, 1,
            "stdout={} stderr={}",
            self.stdout, self.stderr
        );
        assert!(self.stderr.contains(needle), "{}", self.stderr);
    }
}

/// [`kubectl`] without stdin that must succeed: its stdout.
#[track_caller]
pub fn kubectl_ok<'a>(
    kubeconfig: &'a Path,
    args: &'a [&'a str],
) -> impl std::future::Future<Output = String> + 'a {
    let caller = std::panic::Location::caller();
    async move {
        let out = kubectl(kubeconfig, args, None).await;
        assert_eq!(
            out.code, 0,
            "kubectl failed (called at {caller}): stdout={} stderr={}",
            out.stdout, out.stderr
        );
        out.stdout
    }
}

/// Run the real kubectl with a fresh `--cache-dir`, optional stdin.
pub async fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Out {
    let cache = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache.path())
        .args(args)
        .env("HOME", cache.path())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("kubectl on PATH");
    if let Some(input) = stdin {
        use tokio::io::AsyncWriteExt;
        let mut w = child.stdin.take().unwrap();
        w.write_all(input.as_bytes()).await.unwrap();
        drop(w);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("kubectl timed out")
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `cmd` to its end; its stdout, or a panic with its stderr when it fails.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// SIGTERM an `atrest-sandbox` process: it must exit successfully within two minutes.
pub fn terminate(mut child: Child) {
    match atrest_sandbox::container::terminate(&mut child, Duration::from_secs(120)) {
        Some(st) => assert!(st.success(), "atrest-sandbox exited with {st}"),
        None => panic!("atrest-sandbox did not stop on SIGTERM"),
    }
}

/// Poll `f` until it holds; panic naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pids of the processes started as `argv0` with an argument that mentions `needle`.
pub fn pids(argv0: &str, needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().map(String::as_str) == Some(argv0)
            && args.iter().any(|a| a.contains(needle))
        {
            out.push(pid);
        }
    }
    out
}

/// The etcd processes whose command line mentions the node root `root`.
pub fn etcd_pids(root: &Path) -> Vec<u32> {
    pids("/usr/bin/etcd", &root.display().to_string())
}

/// Rewrite a file through `f`, replacing it atomically (a manifest edit as an editor or kubeadm makes it).
pub fn edit(path: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    let tmp = path.with_file_name(".edit.tmp");
    std::fs::write(&tmp, f(text)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
