//! Live probes of etcd's listeners with OpenSSL: what a client without the right certificate gets.
//!
//! For each client (and peer) URL: plain HTTP must not be served; a TLS client without a certificate
//! and one with a certificate from a throwaway CA (made in memory, never written) must be refused; the
//! served certificate must chain to the expected CA, name the host, and not expire within 30 days.
//! A request with the configured client certificate is the positive control: it shows the endpoint
//! is etcd and answers (`GET /version`, which etcd serves on its client and peer listeners).
//! Every step has the same short timeout.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use openssl::pkey::{PKey, Private};
use openssl::ssl::{HandshakeError, SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::X509;

use super::checks::{is_wildcard, split_url};
use super::{Check, EXPIRY_WARNING, EtcdServer, PostureOptions, Status, under_root};
use crate::manifest::Manifest;
use crate::pki::{Certificate, CertificateAuthority, KeyAlgorithm, LeafProfile, PrivateKey};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Client,
    Peer,
}

struct Target {
    url: String,
    role: Role,
    ca: Option<PathBuf>,
    cert: Option<(PathBuf, PathBuf)>,
}

/// What came back for one attempt.
struct Attempt {
    /// The HTTP status line, when the server answered the request.
    status: Option<String>,
    /// Why there was no answer (TLS alert, reset, EOF...).
    refused: String,
    /// The server's certificate chain, leaf first, when the handshake got that far.
    chain: Vec<X509>,
}

impl Attempt {
    fn code(&self) -> Option<u16> {
        self.status
            .as_ref()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

type ClientCert = (X509, PKey<Private>);

pub(super) fn probe_all(
    opts: &PostureOptions,
    etcd: Option<&EtcdServer>,
    apiserver: Option<&Manifest>,
    out: &mut Vec<Check>,
) {
    let root = &opts.root;
    let api_file = |flag: &str| -> Option<PathBuf> {
        let m = apiserver?;
        let v = m.flag(flag)?;
        Some(under_root(root, &m.host_path_for(&v)?))
    };
    let etcd_file = |flag: &str| -> Option<PathBuf> {
        let e = etcd?;
        e.host_path(root, e.get(flag)?)
    };
    let client_ca = opts
        .cacert
        .clone()
        .or_else(|| api_file("etcd-cafile"))
        .or_else(|| etcd_file("trusted-ca-file"));
    let client_cert = match (&opts.cert, &opts.key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => api_file("etcd-certfile").zip(api_file("etcd-keyfile")),
    };
    let mut targets: Vec<Target> = Vec::new();
    let mut push =
        |url: String, role: Role, ca: Option<PathBuf>, cert: Option<(PathBuf, PathBuf)>| {
            if !targets.iter().any(|t| t.url == url) {
                targets.push(Target {
                    url,
                    role,
                    ca,
                    cert,
                });
            }
        };
    if !opts.endpoints.is_empty() {
        for u in &opts.endpoints {
            push(
                u.trim().to_string(),
                Role::Client,
                client_ca.clone(),
                client_cert.clone(),
            );
        }
    } else if let Some(e) = etcd {
        for f in ["listen-client-urls", "listen-client-http-urls"] {
            if f == "listen-client-http-urls" && !e.is_set(f) {
                continue;
            }
            for u in e.urls(f) {
                push(
                    connectable(&u),
                    Role::Client,
                    client_ca.clone(),
                    client_cert.clone(),
                );
            }
        }
        let peer_ca = etcd_file("peer-trusted-ca-file");
        let peer_cert = etcd_file("peer-cert-file").zip(etcd_file("peer-key-file"));
        for u in e.urls("listen-peer-urls") {
            push(
                connectable(&u),
                Role::Peer,
                peer_ca.clone(),
                peer_cert.clone(),
            );
        }
    } else if let Some(m) = apiserver {
        for u in m.etcd_flags().servers {
            push(u, Role::Client, client_ca.clone(), client_cert.clone());
        }
    }
    if targets.is_empty() {
        out.push(
            Check::new("probe", None, Status::Error)
                .detail("no etcd endpoint to probe")
                .fix("pass --endpoints URLS, or --skip-probes"),
        );
        return;
    }
    let foreign = match throwaway_client_cert() {
        Ok(c) => Some(c),
        Err(e) => {
            out.push(
                Check::new("probe-foreign-ca", None, Status::Error)
                    .detail(format!("cannot make a throwaway CA: {e}")),
            );
            None
        }
    };
    for t in &targets {
        probe_target(t, opts.timeout, foreign.as_ref(), out);
    }
}

/// A listen URL as something to connect to: a wildcard host becomes loopback.
fn connectable(u: &str) -> String {
    match split_url(u) {
        Some((scheme, host, port)) if is_wildcard(&host) => {
            let h = if host.contains(':') {
                "[::1]"
            } else {
                "127.0.0.1"
            };
            match port {
                Some(p) => format!("{scheme}://{h}:{p}"),
                None => format!("{scheme}://{h}"),
            }
        }
        _ => u.to_string(),
    }
}

fn throwaway_client_cert() -> Result<ClientCert, crate::pki::PkiError> {
    let hour = Duration::from_secs(3600);
    let ca = CertificateAuthority::new_self_signed(
        "atrest posture probe CA",
        KeyAlgorithm::EcdsaP256,
        hour,
    )?;
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let cert = ca.issue(
        &key,
        "kube-apiserver-etcd-client",
        &[],
        &LeafProfile::Client,
        hour,
    )?;
    Ok((cert.x509().clone(), key.pkey().clone()))
}

fn load_client_cert(cert: &Path, key: &Path) -> Result<ClientCert, String> {
    let c = Certificate::load(cert).map_err(|e| e.to_string())?;
    let k = PrivateKey::load(key).map_err(|e| e.to_string())?;
    c.check_key(&k, &key.display().to_string())
        .map_err(|e| e.to_string())?;
    Ok((c.x509().clone(), k.pkey().clone()))
}

fn probe_target(t: &Target, timeout: Duration, foreign: Option<&ClientCert>, out: &mut Vec<Check>) {
    let url = &t.url;
    let (no_cert_cis, foreign_cis, tls_cis) = match t.role {
        Role::Client => ("2.2", "2.7", "2.1"),
        Role::Peer => ("2.5", "2.5", "2.4"),
    };
    let Some((scheme, host, port)) = split_url(url) else {
        out.push(
            Check::new(format!("probe {url}"), None, Status::Error)
                .detail("not a URL")
                .fix("pass --endpoints https://HOST:PORT"),
        );
        return;
    };
    let port = port.unwrap_or(if t.role == Role::Peer { 2380 } else { 2379 });
    let addr = match (host.as_str(), port)
        .to_socket_addrs()
        .map(|mut a| a.next())
    {
        Ok(Some(a)) => a,
        _ => {
            out.push(
                Check::new(format!("probe {url}"), None, Status::Error)
                    .detail(format!("cannot resolve {host}")),
            );
            return;
        }
    };
    if let Err(e) = TcpStream::connect_timeout(&addr, timeout) {
        out.push(
            Check::new(format!("probe {url}"), None, Status::Error)
                .detail(format!("cannot connect to {addr}: {e}"))
                .fix("run on the node with etcd up, pass --endpoints, or --skip-probes"),
        );
        return;
    }

    // Plain HTTP.
    let plain = plain_get(addr, &host, timeout);
    let served = plain.code().is_some_and(|c| c != 400);
    out.push(if served {
        Check::new(
            format!("probe-plain-http {url}"),
            Some(tls_cis),
            Status::Fail,
        )
        .detail(format!(
            "served without TLS: {}",
            plain.status.unwrap_or_default()
        ))
        .fix("listen with https:// URLs and --cert-file/--key-file")
    } else {
        Check::new(
            format!("probe-plain-http {url}"),
            Some(tls_cis),
            Status::Pass,
        )
        .detail(format!(
            "refused: {}",
            plain.status.unwrap_or(plain.refused)
        ))
    });
    if scheme != "https" {
        return;
    }

    // The first certificate chain etcd served on this URL, for the serving-certificate check.
    let mut chain: Vec<X509> = Vec::new();
    let mut attempt = |cert: Option<&ClientCert>| {
        let a = tls_get(addr, &host, cert, timeout);
        if chain.is_empty() {
            chain = a.chain.clone();
        }
        a
    };

    // Positive control with the configured certificate.
    match &t.cert {
        None => out.push(
            Check::new(format!("probe-client-cert {url}"), None, Status::Skip)
                .detail("no client certificate configured to compare with (pass --cert and --key)"),
        ),
        Some((c, k)) => match load_client_cert(c, k) {
            Err(e) => out.push(
                Check::new(format!("probe-client-cert {url}"), None, Status::Error)
                    .detail(e)
                    .fix("pass --cert and --key of a valid etcd client certificate"),
            ),
            Ok(cc) => {
                let a = attempt(Some(&cc));
                out.push(if a.code() == Some(200) {
                    Check::new(format!("probe-client-cert {url}"), None, Status::Pass)
                        .detail(format!("{} accepted: {}", c.display(), a.status.unwrap_or_default()))
                } else {
                    Check::new(format!("probe-client-cert {url}"), None, Status::Error)
                        .detail(format!(
                            "{} was not accepted: {}",
                            c.display(),
                            a.status.unwrap_or(a.refused)
                        ))
                        .fix("check that this is etcd and that the certificate is signed by its --trusted-ca-file")
                });
            }
        },
    }

    // No client certificate.
    let a = attempt(None);
    out.push(refusal(
        format!("probe-no-client-cert {url}"),
        no_cert_cis,
        &a,
        "TLS without a client certificate",
        "set --client-cert-auth=true (--peer-client-cert-auth=true for peers)",
    ));

    // A certificate from a CA etcd must not trust.
    if let Some(f) = foreign {
        let a = attempt(Some(f));
        out.push(refusal(
            format!("probe-foreign-ca {url}"),
            foreign_cis,
            &a,
            "a client certificate from a throwaway CA",
            "point --trusted-ca-file at etcd's own CA only (not a system bundle or the cluster CA)",
        ));
    }

    out.push(serving_cert(url, &host, &chain, t.ca.as_deref(), tls_cis));
}

fn refusal(name: String, cis: &str, a: &Attempt, what: &str, fix: &str) -> Check {
    match &a.status {
        Some(s) => Check::new(name, Some(cis), Status::Fail)
            .detail(format!("{what} was served: {s}"))
            .fix(fix),
        None if a.chain.is_empty() && a.refused.starts_with("connect") => {
            Check::new(name, Some(cis), Status::Error).detail(a.refused.clone())
        }
        None => Check::new(name, Some(cis), Status::Pass)
            .detail(format!("{what} refused: {}", a.refused)),
    }
}

fn serving_cert(url: &str, host: &str, chain: &[X509], ca: Option<&Path>, cis: &str) -> Check {
    let name = format!("probe-serving-cert {url}");
    let Some(leaf) = chain.first() else {
        return Check::new(name, Some(cis), Status::Error).detail("no certificate was received");
    };
    let pem = |x: &X509| {
        x.to_pem()
            .ok()
            .and_then(|p| Certificate::from_pem(&p, url).ok())
    };
    let Some(leaf_c) = pem(leaf) else {
        return Check::new(name, Some(cis), Status::Error)
            .detail("the served certificate cannot be read");
    };
    let subject = leaf_c.subject();
    let now = crate::time::unix_now();
    let not_after = leaf_c.not_after().unwrap_or(0);
    let days = (not_after - now) / 86400;
    let expires = date(not_after);
    if not_after <= now {
        return Check::new(name, Some(cis), Status::Fail)
            .detail(format!("{subject}: expired ({expires})"))
            .fix("renew etcd's serving certificate (kubeadm certs renew etcd-server)");
    }
    let Some(ca) = ca else {
        return Check::new(name, Some(cis), Status::Warn)
            .detail(format!(
                "{subject}, expires {expires}; no CA to verify it against"
            ))
            .fix("pass --cacert FILE (etcd's CA)");
    };
    let roots = match Certificate::load_bundle(ca) {
        Ok(r) => r,
        Err(e) => {
            return Check::new(name, Some(cis), Status::Error)
                .detail(e.to_string())
                .fix("pass --cacert FILE (etcd's CA)");
        }
    };
    let intermediates: Vec<Certificate> = chain[1..].iter().filter_map(pem).collect();
    if let Err(e) = leaf_c.verify(&roots, &intermediates) {
        return Check::new(name, Some(cis), Status::Fail)
            .detail(format!("does not chain to {}: {e}", ca.display()))
            .fix("serve a certificate signed by etcd's CA, or pass the right --cacert");
    }
    let names_host = match host.parse::<IpAddr>() {
        Ok(ip) => leaf_c.ip_addresses().contains(&ip),
        Err(_) => leaf_c
            .dns_names()
            .iter()
            .any(|d| d.eq_ignore_ascii_case(host)),
    };
    if !names_host {
        return Check::new(name, Some(cis), Status::Fail)
            .detail(format!("{subject} does not name {host} in subjectAltName"))
            .fix("reissue etcd's serving certificate with this address in its SANs");
    }
    if (not_after - now) < EXPIRY_WARNING.as_secs() as i64 {
        return Check::new(name, Some(cis), Status::Warn)
            .detail(format!("{subject}: expires {expires}, in {days} days"))
            .fix("renew etcd's serving certificate (kubeadm certs renew etcd-server)");
    }
    Check::new(name, Some(cis), Status::Pass).detail(format!(
        "{subject}, signed by {}, expires {expires} ({days} days)",
        ca.display()
    ))
}

fn request(host: &str) -> String {
    let h = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!(
        "GET /version HTTP/1.1\r\nHost: {h}\r\nUser-Agent: atrest-posture\r\nConnection: close\r\n\r\n"
    )
}

/// Read until the end of the status line (or EOF / error); returns the status line.
fn read_status(s: &mut impl Read) -> Result<Option<String>, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..i]).to_string();
            return Ok(line.starts_with("HTTP/").then_some(line));
        }
        if buf.len() > 8192 {
            return Ok(None);
        }
        match s.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Err("connection closed without a response".into()),
            Ok(0) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, String> {
    let s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    Ok(s)
}

fn plain_get(addr: SocketAddr, host: &str, timeout: Duration) -> Attempt {
    let mut a = Attempt {
        status: None,
        refused: String::new(),
        chain: Vec::new(),
    };
    let mut s = match connect(addr, timeout) {
        Ok(s) => s,
        Err(e) => {
            a.refused = e;
            return a;
        }
    };
    if let Err(e) = s.write_all(request(host).as_bytes()) {
        a.refused = e.to_string();
        return a;
    }
    match read_status(&mut s) {
        Ok(Some(st)) => a.status = Some(st),
        Ok(None) => a.refused = "no HTTP response".into(),
        Err(e) => a.refused = e,
    }
    a
}

/// TLS handshake (no server verification here: [`serving_cert`] verifies the chain it returns),
/// then `GET /version`.
fn tls_get(addr: SocketAddr, host: &str, cert: Option<&ClientCert>, timeout: Duration) -> Attempt {
    let mut a = Attempt {
        status: None,
        refused: String::new(),
        chain: Vec::new(),
    };
    let connector = (|| -> Result<SslConnector, openssl::error::ErrorStack> {
        let mut b = SslConnector::builder(SslMethod::tls_client())?;
        b.set_verify(SslVerifyMode::NONE);
        if let Some((c, k)) = cert {
            b.set_certificate(c)?;
            b.set_private_key(k)?;
        }
        Ok(b.build())
    })();
    let connector = match connector {
        Ok(c) => c,
        Err(e) => {
            a.refused = format!("TLS setup: {e}");
            return a;
        }
    };
    let tcp = match connect(addr, timeout) {
        Ok(s) => s,
        Err(e) => {
            a.refused = e;
            return a;
        }
    };
    let is_ip = host.parse::<IpAddr>().is_ok();
    let cfg = match connector.configure() {
        Ok(c) => c.verify_hostname(false).use_server_name_indication(!is_ip),
        Err(e) => {
            a.refused = format!("TLS setup: {e}");
            return a;
        }
    };
    let chain_of = |ssl: &openssl::ssl::SslRef| -> Vec<X509> {
        ssl.peer_cert_chain()
            .map(|c| c.iter().map(|x| x.to_owned()).collect())
            .or_else(|| ssl.peer_certificate().map(|c| vec![c]))
            .unwrap_or_default()
    };
    let mut s = match cfg.connect(host, tcp) {
        Ok(s) => s,
        Err(HandshakeError::Failure(mid)) => {
            a.chain = chain_of(mid.ssl());
            a.refused = format!("TLS handshake failed: {}", short(&mid.error().to_string()));
            return a;
        }
        Err(HandshakeError::WouldBlock(mid)) => {
            a.chain = chain_of(mid.ssl());
            a.refused = "TLS handshake timed out".into();
            return a;
        }
        Err(HandshakeError::SetupFailure(e)) => {
            a.refused = format!("TLS setup: {e}");
            return a;
        }
    };
    a.chain = chain_of(s.ssl());
    if let Err(e) = s.write_all(request(host).as_bytes()) {
        a.refused = format!("TLS session closed: {}", short(&e.to_string()));
        return a;
    }
    match read_status(&mut s) {
        Ok(Some(st)) => a.status = Some(st),
        Ok(None) => a.refused = "no HTTP response".into(),
        Err(e) => a.refused = format!("TLS session closed: {}", short(&e)),
    }
    a
}

/// OpenSSL error texts are long (`error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad
/// certificate:../ssl/record/rec_layer_s3.c:1601:SSL alert number 42`); keep the reason.
fn short(e: &str) -> String {
    let e = e.trim();
    if let Some(rest) = e.strip_prefix("error:") {
        let f: Vec<&str> = rest.splitn(5, ':').collect();
        if let Some(reason) = f.get(3) {
            return reason.to_string();
        }
    }
    e.chars().take(160).collect()
}

/// `YYYY-MM-DD` of Unix seconds (UTC), by the civil-from-days algorithm.
fn date(secs: i64) -> String {
    let (y, m, d) = crate::time::civil_from_days(secs.div_euclid(86400));
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_reason_and_dates() {
        assert_eq!(
            short(
                "error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../ssl/record/rec_layer_s3.c:1601:SSL alert number 42"
            ),
            "sslv3 alert bad certificate"
        );
        assert_eq!(
            short("Connection reset by peer (os error 104)"),
            "Connection reset by peer (os error 104)"
        );
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_803_000_000), "2027-02-19");
        assert_eq!(date(951_782_400), "2000-02-29");
    }

    fn server(ca: &CertificateAuthority, days: u64) -> X509 {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let profile = LeafProfile::Server {
            dns_names: vec!["localhost".into()],
            ips: vec!["127.0.0.1".parse().unwrap()],
        };
        ca.issue(
            &key,
            "etcd",
            &[],
            &profile,
            Duration::from_secs(days * 86400),
        )
        .unwrap()
        .x509()
        .clone()
    }

    #[test]
    fn serving_certificate_chain_names_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let year = Duration::from_secs(365 * 86400);
        let ca = CertificateAuthority::new_self_signed("etcd-ca", KeyAlgorithm::EcdsaP256, year)
            .unwrap();
        let other =
            CertificateAuthority::new_self_signed("other", KeyAlgorithm::EcdsaP256, year).unwrap();
        let ca_file = dir.path().join("ca.crt");
        std::fs::write(&ca_file, ca.cert.to_pem().unwrap()).unwrap();
        let url = "https://127.0.0.1:2379";
        let ok = serving_cert(url, "127.0.0.1", &[server(&ca, 200)], Some(&ca_file), "2.1");
        assert_eq!(ok.result, Status::Pass, "{ok:?}");
        assert!(ok.detail.starts_with("CN=etcd, signed by"), "{ok:?}");
        let soon = serving_cert(url, "localhost", &[server(&ca, 10)], Some(&ca_file), "2.1");
        assert_eq!(soon.result, Status::Warn, "{soon:?}");
        assert!(
            soon.detail.contains("in 9 days") || soon.detail.contains("in 10 days"),
            "{soon:?}"
        );
        let foreign = serving_cert(
            url,
            "127.0.0.1",
            &[server(&other, 200)],
            Some(&ca_file),
            "2.1",
        );
        assert_eq!(foreign.result, Status::Fail, "{foreign:?}");
        assert!(foreign.detail.contains("does not chain to"), "{foreign:?}");
        let wrong_host = serving_cert(
            "https://10.0.0.9:2379",
            "10.0.0.9",
            &[server(&ca, 200)],
            Some(&ca_file),
            "2.1",
        );
        assert_eq!(wrong_host.result, Status::Fail, "{wrong_host:?}");
        assert!(
            wrong_host.detail.contains("does not name 10.0.0.9"),
            "{wrong_host:?}"
        );
        let no_ca = serving_cert(url, "127.0.0.1", &[server(&ca, 200)], None, "2.1");
        assert_eq!(no_ca.result, Status::Warn);
        let none = serving_cert(url, "127.0.0.1", &[], Some(&ca_file), "2.1");
        assert_eq!(none.result, Status::Error);
        assert_eq!(
            connectable("https://0.0.0.0:2379"),
            "https://127.0.0.1:2379"
        );
        assert_eq!(connectable("https://[::]:2380"), "https://[::1]:2380");
        assert_eq!(
            connectable("https://10.0.0.1:2379"),
            "https://10.0.0.1:2379"
        );
    }
}
