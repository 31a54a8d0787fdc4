//! pki tests, cross-checked with the real `openssl` CLI.

use super::*;
use std::process::Command;

/// `openssl verify -CAfile CA -purpose PURPOSE LEAF`.
fn verify_purpose(ca: &str, purpose: &str, leaf: &str) -> (bool, String) {
    openssl(&["verify", "-CAfile", ca, "-purpose", purpose, leaf])
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run the openssl CLI");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.display().to_string()
}

#[test]
fn every_algorithm_round_trips_pem_and_matches_its_certificate() {
    let ca =
        CertificateAuthority::new_self_signed("kubernetes", KeyAlgorithm::EcdsaP256, CA_VALIDITY)
            .unwrap();
    for alg in KeyAlgorithm::ALL {
        let key = PrivateKey::generate(alg).unwrap();
        assert_eq!(key.algorithm(), Some(alg));
        let pem = key.to_pem().unwrap();
        assert!(String::from_utf8_lossy(&pem).starts_with("-----BEGIN PRIVATE KEY-----"));
        let back = PrivateKey::from_pem(&pem, "mem").unwrap();
        assert_eq!(back.algorithm(), Some(alg));
        // Debug shows no key material.
        let dbg = format!("{key:?}");
        assert_eq!(dbg, format!("PrivateKey({alg})"));
        let cert = ca
            .issue(&key, "u", &[], &LeafProfile::Client, LEAF_VALIDITY)
            .unwrap();
        assert!(cert.matches_key(&back));
        let other = PrivateKey::generate(alg).unwrap();
        assert!(!cert.matches_key(&other));
        let err = cert.check_key(&other, "other.key").unwrap_err();
        assert_eq!(
            err.to_string(),
            "private key other.key does not match certificate u"
        );
    }
}

#[test]
fn ca_and_server_certificate_verify_with_openssl_cli() {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::new_self_signed("etcd-ca", KeyAlgorithm::Rsa2048, CA_VALIDITY)
        .unwrap();
    assert!(ca.cert.is_ca());
    let life = ca.cert.not_after().unwrap() - ca.cert.not_before().unwrap();
    assert_eq!(life, CA_VALIDITY.as_secs() as i64);
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let profile = LeafProfile::ServerClient {
        dns_names: vec!["localhost".into(), "etcd-0".into()],
        ips: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
    };
    let cert = ca
        .issue(&key, "etcd-0", &[], &profile, LEAF_VALIDITY)
        .unwrap();
    assert!(!cert.is_ca());
    assert_eq!(cert.dns_names(), ["localhost", "etcd-0"]);
    assert_eq!(cert.ip_addresses().len(), 2);
    cert.verify(std::slice::from_ref(&ca.cert), &[]).unwrap();

    let ca_path = dir.path().join("ca.crt");
    let ca_key = dir.path().join("ca.key");
    ca.write(&ca_path, &ca_key).unwrap();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&ca_key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let leaf = write(dir.path(), "leaf.crt", &cert.to_pem().unwrap());
    let (ok, out) = openssl(&["verify", "-CAfile", ca_path.to_str().unwrap(), &leaf]);
    assert!(ok, "{out}");
    let (ok, out) = openssl(&[
        "x509",
        "-in",
        &leaf,
        "-noout",
        "-subject",
        "-ext",
        "subjectAltName,extendedKeyUsage",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("CN=etcd-0") || out.contains("CN = etcd-0"),
        "{out}"
    );
    assert!(
        out.contains("DNS:localhost, DNS:etcd-0, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"),
        "{out}"
    );
    assert!(
        out.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
        "{out}"
    );
    let (ok, out) = openssl(&[
        "x509",
        "-in",
        ca_path.to_str().unwrap(),
        "-noout",
        "-ext",
        "basicConstraints,keyUsage",
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains("CA:TRUE") && out.contains("Certificate Sign"),
        "{out}"
    );

    // Fingerprint matches the CLI's.
    let (ok, out) = openssl(&["x509", "-in", &leaf, "-noout", "-fingerprint", "-sha256"]);
    assert!(ok);
    assert!(out.contains(&cert.fingerprint_sha256().unwrap()), "{out}");
    // Serial too.
    let (_, out) = openssl(&["x509", "-in", &leaf, "-noout", "-serial"]);
    assert_eq!(out.trim(), format!("serial={}", cert.serial_hex()));

    // Loaded from disk, the CA checks its key; a foreign CA does not verify the leaf.
    let loaded = CertificateAuthority::load(&ca_path, &ca_key).unwrap();
    assert_eq!(
        loaded.cert.fingerprint_sha256().unwrap(),
        ca.cert.fingerprint_sha256().unwrap()
    );
    let other =
        CertificateAuthority::new_self_signed("etcd-ca", KeyAlgorithm::EcdsaP256, CA_VALIDITY)
            .unwrap();
    let err = cert.verify(&[other.cert], &[]).unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
}

#[test]
fn client_certificate_carries_user_and_groups() {
    let dir = tempfile::tempdir().unwrap();
    let ca =
        CertificateAuthority::new_self_signed("kubernetes", KeyAlgorithm::Ed25519, CA_VALIDITY)
            .unwrap();
    let key = PrivateKey::generate(KeyAlgorithm::Rsa2048).unwrap();
    let groups = vec!["system:masters".to_string(), "dev".to_string()];
    let cert = ca
        .issue(
            &key,
            "kube-apiserver-etcd-client",
            &groups,
            &LeafProfile::Client,
            LEAF_VALIDITY,
        )
        .unwrap();
    assert_eq!(
        cert.common_name().as_deref(),
        Some("kube-apiserver-etcd-client")
    );
    assert_eq!(cert.organizations(), groups);
    let ca_path = write(dir.path(), "ca.crt", &ca.cert.to_pem().unwrap());
    let leaf = write(dir.path(), "c.crt", &cert.to_pem().unwrap());
    let (ok, out) = verify_purpose(&ca_path, "sslclient", &leaf);
    assert!(ok, "{out}");
    let (ok, out) = verify_purpose(&ca_path, "sslserver", &leaf);
    assert!(!ok, "a client certificate must not pass as a server: {out}");
}

#[test]
fn csr_build_parse_verify_and_sign_like_the_controller_manager() {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let csr = CertificateRequest::build(&key, "john", &["marketing".into()]).unwrap();
    let pem = csr.to_pem().unwrap();
    let path = write(dir.path(), "john.csr", &pem);
    let (ok, out) = openssl(&["req", "-in", &path, "-noout", "-verify", "-subject"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("O=marketing, CN=john") || out.contains("O = marketing, CN = john"),
        "{out}"
    );

    let parsed = CertificateRequest::from_pem(&pem, "john.csr").unwrap();
    parsed.verify_signature().unwrap();
    assert_eq!(parsed.common_name().as_deref(), Some("john"));
    assert_eq!(parsed.organizations(), ["marketing"]);
    assert!(parsed.matches_key(&key));

    // A CSR made by the openssl CLI parses too, SANs included.
    let k2 = dir.path().join("k2.pem");
    let c2 = dir.path().join("c2.csr");
    let (ok, out) = openssl(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        k2.to_str().unwrap(),
        "-out",
        c2.to_str().unwrap(),
        "-subj",
        "/O=a/O=b/CN=jane",
        "-addext",
        "subjectAltName=DNS:jane.example,IP:10.0.0.1",
    ]);
    assert!(ok, "{out}");
    let cli = CertificateRequest::from_pem(&std::fs::read(&c2).unwrap(), "c2.csr").unwrap();
    cli.verify_signature().unwrap();
    assert_eq!(cli.organizations(), ["a", "b"]);
    assert_eq!(cli.dns_names(), ["jane.example"]);
    assert_eq!(cli.ip_addresses(), ["10.0.0.1".parse::<IpAddr>().unwrap()]);

    let ca =
        CertificateAuthority::new_self_signed("kubernetes", KeyAlgorithm::EcdsaP256, CA_VALIDITY)
            .unwrap();
    let now = unix_now();
    // >= 8h: notBefore = now-5m, notAfter = now+ttl-5m.
    let day = Duration::from_secs(86_400);
    let cert = ca
        .sign_csr(&parsed, day, &[Usage::DigitalSignature, Usage::ClientAuth])
        .unwrap();
    let nb = cert.not_before().unwrap();
    let na = cert.not_after().unwrap();
    assert!((nb - (now - 300)).abs() <= 2, "notBefore {nb} vs {now}");
    assert!((na - (now + 86_400 - 300)).abs() <= 2);
    assert_eq!(cert.common_name().as_deref(), Some("john"));
    assert!(cert.matches_key(&key));
    let ca_path = write(dir.path(), "ca.crt", &ca.cert.to_pem().unwrap());
    let leaf = write(dir.path(), "john.crt", &cert.to_pem().unwrap());
    // The subject is re-encoded in Go's pkix order (O before CN), as kube-controller-manager's signer does,
    // whatever order the request had: this request (the tutorial's openssl command) has CN first. RFC 2253
    // prints the certificate's subject most specific first.
    let c3 = dir.path().join("c3.csr");
    let k3 = dir.path().join("k3.pem");
    let (ok, out) = openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        k3.to_str().unwrap(),
        "-out",
        c3.to_str().unwrap(),
        "-subj",
        "/CN=john/O=marketing",
    ]);
    assert!(ok, "{out}");
    let cn_first = CertificateRequest::from_pem(&std::fs::read(&c3).unwrap(), "c3.csr").unwrap();
    let signed = ca.sign_csr(&cn_first, day, &[Usage::ClientAuth]).unwrap();
    let john2 = write(dir.path(), "john2.crt", &signed.to_pem().unwrap());
    let (ok, subject) = openssl(&[
        "x509", "-in", &john2, "-noout", "-subject", "-nameopt", "RFC2253",
    ]);
    assert!(ok, "{subject}");
    assert_eq!(subject.trim(), "subject=CN=john,O=marketing");
    let (ok, out) = verify_purpose(&ca_path, "sslclient", &leaf);
    assert!(ok, "{out}");
    // < 8h: the window is ttl + 5m.
    let short = ca
        .sign_csr(&parsed, Duration::from_secs(600), &[Usage::ClientAuth])
        .unwrap();
    assert_eq!(
        short.not_after().unwrap() - short.not_before().unwrap(),
        900
    );
    // Capped at the CA's notAfter.
    let long = ca
        .sign_csr(
            &parsed,
            Duration::from_secs(20 * 365 * 86_400),
            &[Usage::ClientAuth],
        )
        .unwrap();
    assert_eq!(long.not_after().unwrap(), ca.cert.not_after().unwrap());
}

#[test]
fn tampered_csr_fails_signature_check() {
    let key = PrivateKey::generate(KeyAlgorithm::Rsa2048).unwrap();
    let csr = CertificateRequest::build(&key, "john", &[]).unwrap();
    let mut der = csr.req.to_der().unwrap();
    // Flip a byte inside the subject CN "john" -> "jOhn".
    let pos = der.windows(4).position(|w| w == b"john").unwrap();
    der[pos + 1] = b'O';
    let bad = CertificateRequest::from_der(&der, "bad.csr").unwrap();
    let err = bad.verify_signature().unwrap_err();
    assert_eq!(
        err.to_string(),
        "certificate request bad.csr: signature does not verify"
    );
    let ca =
        CertificateAuthority::new_self_signed("kubernetes", KeyAlgorithm::EcdsaP256, CA_VALIDITY)
            .unwrap();
    assert!(
        ca.sign_csr(&bad, LEAF_VALIDITY, &[Usage::ClientAuth])
            .is_err()
    );
}

#[test]
fn bad_pem_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ca.crt");
    std::fs::write(&p, b"hello").unwrap();
    let err = Certificate::load(&p).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: not a PEM certificate", p.display())),
        "{err}"
    );
    let err = Certificate::load_bundle(&p).unwrap_err().to_string();
    assert!(err.contains("not a PEM certificate"), "{err}");
    let err = PrivateKey::load(&p).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: not a PEM private key", p.display())),
        "{err}"
    );
    let missing = dir.path().join("nope.key");
    let err = PrivateKey::load(&missing).unwrap_err().to_string();
    assert!(err.contains("nope.key"), "{err}");
    assert!("rsa-1024".parse::<KeyAlgorithm>().is_err());
    assert_eq!(
        "RSA-4096".parse::<KeyAlgorithm>().unwrap(),
        KeyAlgorithm::Rsa4096
    );
    assert_eq!("client auth".parse::<Usage>().unwrap(), Usage::ClientAuth);
}

#[test]
fn bundle_with_two_cas_verifies_either() {
    let a =
        CertificateAuthority::new_self_signed("a", KeyAlgorithm::EcdsaP256, CA_VALIDITY).unwrap();
    let b =
        CertificateAuthority::new_self_signed("b", KeyAlgorithm::EcdsaP256, CA_VALIDITY).unwrap();
    let mut pem = a.cert.to_pem().unwrap();
    pem.extend(b.cert.to_pem().unwrap());
    let bundle = Certificate::bundle_from_pem(&pem, "bundle.crt").unwrap();
    assert_eq!(bundle.len(), 2);
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let leaf = b
        .issue(&key, "x", &[], &LeafProfile::Client, LEAF_VALIDITY)
        .unwrap();
    leaf.verify(&bundle, &[]).unwrap();
}
