//! Keys, certificates and certificate signing requests (OpenSSL).
//!
//! - [`PrivateKey`]: generate ([`KeyAlgorithm`]: ecdsa-p256 default, rsa-2048, rsa-4096, ed25519),
//!   PKCS#8 PEM in/out. Its `Debug` never shows key material.
//! - [`CertificateAuthority`]: a kubeadm-style self-signed CA (`CN=kubernetes`, `etcd-ca`, 10 years)
//!   that issues [`LeafProfile`] certificates (server, client, server+client) and signs CSRs like
//!   kube-controller-manager's signer ([`CertificateAuthority::sign_csr`]).
//! - [`Certificate`]: load/inspect (CN, O, serial, validity, SANs, SHA-256 fingerprint), key match,
//!   chain verification against a CA bundle.
//! - [`CertificateRequest`]: build (CN + O list) and parse a PKCS#10 CSR, verify its self-signature.
//!
//! Errors name the file they came from (`not a PEM certificate`, `private key does not match
//! certificate`).

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{
    X509, X509Builder, X509Name, X509NameBuilder, X509Req, X509ReqBuilder, X509StoreContext,
};

use crate::time::unix_now;

/// Ten years, kubeadm's CA validity (`kubernetes/kubernetes` `cmd/kubeadm/app/constants/constants.go`:
/// `CACertificateValidityPeriod = time.Hour * 24 * 365 * 10`).
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// One year, kubeadm's leaf validity (`CertificateValidityPeriod = time.Hour * 24 * 365`).
pub const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// kube-controller-manager's signer backdates `notBefore` by 5 minutes
/// (`pkg/controller/certificates/signer/signer.go`: `PermissiveSigningPolicy{Backdate: 5 * time.Minute, Short: 8 * time.Hour}`).
pub const SIGNER_BACKDATE: Duration = Duration::from_secs(5 * 60);
/// Below this TTL the signer does not shorten `notAfter` by the backdate (`Short: 8h`).
pub const SIGNER_SHORT: Duration = Duration::from_secs(8 * 3600);

/// A PKI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The input is not PEM of the expected kind.
    #[error("{source_name}: not a PEM {what}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    NotPem {
        /// The file (or a description of where the bytes came from).
        source_name: String,
        /// "certificate", "private key", "certificate request".
        what: &'static str,
        /// OpenSSL's reason, when useful.
        detail: Option<String>,
    },
    /// A private key does not belong to a certificate.
    #[error("private key {key} does not match certificate {cert}")]
    KeyMismatch {
        /// Where the certificate came from.
        cert: String,
        /// Where the key came from.
        key: String,
    },
    /// Chain verification failed.
    #[error("certificate {subject} does not verify against {bundle}: {reason}")]
    Verify {
        /// The certificate's subject.
        subject: String,
        /// The CA bundle's name.
        bundle: String,
        /// OpenSSL's verification error.
        reason: String,
    },
    /// A CSR's self-signature is invalid.
    #[error("certificate request {0}: signature does not verify")]
    BadCsrSignature(String),
    /// An argument was invalid (unknown algorithm, bad usage name, expired CA, ...).
    #[error("{0}")]
    Invalid(String),
    /// OpenSSL reported an error while doing `context`.
    #[error("{context}: {source}")]
    OpenSsl {
        /// What was being done.
        context: &'static str,
        /// OpenSSL's error stack.
        #[source]
        source: ErrorStack,
    },
}

/// Result alias for this module.
pub type Result<T, E = PkiError> = std::result::Result<T, E>;

trait Ctx<T> {
    fn ctx(self, context: &'static str) -> Result<T>;
}

impl<T> Ctx<T> for std::result::Result<T, ErrorStack> {
    fn ctx(self, context: &'static str) -> Result<T> {
        self.map_err(|source| PkiError::OpenSsl { context, source })
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn first_error(e: &ErrorStack) -> Option<String> {
    e.errors()
        .first()
        .and_then(|x| x.reason().map(str::to_string))
}

/// Maps OpenSSL's error parsing `what` from `source` to [`PkiError::NotPem`].
fn not_pem<'a>(source: &'a str, what: &'static str) -> impl FnOnce(ErrorStack) -> PkiError + 'a {
    move |e| PkiError::NotPem {
        source_name: source.to_string(),
        what,
        detail: first_error(&e),
    }
}

// ---------------------------------------------------------------------------------------------
// Keys

/// Private key algorithms offered to users (`--key-algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 (the default, like kubeadm's `ECDSA-P256`).
    #[default]
    EcdsaP256,
    /// RSA 2048 bits.
    Rsa2048,
    /// RSA 4096 bits.
    Rsa4096,
    /// Ed25519.
    Ed25519,
}

impl KeyAlgorithm {
    /// All algorithms, in the order shown in help texts.
    pub const ALL: [KeyAlgorithm; 4] =
        [Self::EcdsaP256, Self::Rsa2048, Self::Rsa4096, Self::Ed25519];

    /// The flag spelling: `ecdsa-p256`, `rsa-2048`, `rsa-4096`, `ed25519`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa4096 => "rsa-4096",
            Self::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = PkiError;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                PkiError::Invalid(format!(
                    "unknown key algorithm {s:?}; use one of ecdsa-p256, rsa-2048, rsa-4096, ed25519"
                ))
            })
    }
}

/// A private key. `Debug` shows only the algorithm; the PEM is only available through
/// [`PrivateKey::to_pem`], meant for [`crate::fsutil::write_private`].
pub struct PrivateKey {
    key: PKey<Private>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.describe())
    }
}

impl PrivateKey {
    /// Generate a fresh key.
    pub fn generate(alg: KeyAlgorithm) -> Result<Self> {
        let key = match alg {
            KeyAlgorithm::EcdsaP256 => {
                let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).ctx("P-256 group")?;
                PKey::from_ec_key(EcKey::generate(&group).ctx("generate ECDSA key")?)
            }
            KeyAlgorithm::Rsa2048 => PKey::from_rsa(Rsa::generate(2048).ctx("generate RSA key")?),
            KeyAlgorithm::Rsa4096 => PKey::from_rsa(Rsa::generate(4096).ctx("generate RSA key")?),
            KeyAlgorithm::Ed25519 => PKey::generate_ed25519(),
        }
        .ctx("generate key")?;
        Ok(Self { key })
    }

    /// Parse a PEM private key (PKCS#8, or traditional RSA/EC); `source` names it in errors.
    pub fn from_pem(pem: &[u8], source: &str) -> Result<Self> {
        PKey::private_key_from_pem(pem)
            .map(|key| Self { key })
            .map_err(not_pem(source, "private key"))
    }

    /// Load a PEM private key file.
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_pem(&read_file(path)?, &path.display().to_string())
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). Key material: write it with
    /// [`crate::fsutil::write_private`], never print it.
    pub fn to_pem(&self) -> Result<Vec<u8>> {
        self.key
            .private_key_to_pem_pkcs8()
            .ctx("encode private key")
    }

    /// The public half as PEM (SubjectPublicKeyInfo).
    pub fn public_key_pem(&self) -> Result<Vec<u8>> {
        self.key.public_key_to_pem().ctx("encode public key")
    }

    /// The algorithm, if it is one of ours (keys loaded from elsewhere may be e.g. P-384).
    pub fn algorithm(&self) -> Option<KeyAlgorithm> {
        match self.key.id() {
            Id::ED25519 => Some(KeyAlgorithm::Ed25519),
            Id::RSA => match self.key.bits() {
                2048 => Some(KeyAlgorithm::Rsa2048),
                4096 => Some(KeyAlgorithm::Rsa4096),
                _ => None,
            },
            Id::EC => self
                .key
                .ec_key()
                .ok()
                .filter(|k| k.group().curve_name() == Some(Nid::X9_62_PRIME256V1))
                .map(|_| KeyAlgorithm::EcdsaP256),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self.algorithm() {
            Some(a) => a.to_string(),
            None => format!("{:?}-{}", self.key.id(), self.key.bits()),
        }
    }

    /// The underlying OpenSSL key (for TLS configuration).
    pub fn pkey(&self) -> &PKey<Private> {
        &self.key
    }

    fn digest(&self) -> MessageDigest {
        // Ed25519 signs the message itself; OpenSSL wants a null digest for it.
        if self.key.id() == Id::ED25519 {
            MessageDigest::null()
        } else {
            MessageDigest::sha256()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Names, times

fn build_name(cn: &str, orgs: &[String]) -> Result<X509Name> {
    let mut b = X509NameBuilder::new().ctx("subject name")?;
    for o in orgs {
        b.append_entry_by_nid(Nid::ORGANIZATIONNAME, o)
            .ctx("subject O")?;
    }
    b.append_entry_by_nid(Nid::COMMONNAME, cn)
        .ctx("subject CN")?;
    Ok(b.build())
}

fn name_entries(name: &openssl::x509::X509NameRef, nid: Nid) -> Vec<String> {
    name.entries_by_nid(nid)
        .filter_map(|e| e.data().to_string().ok())
        .collect()
}

fn name_to_string(name: &openssl::x509::X509NameRef) -> String {
    let parts: Vec<String> = name
        .entries()
        .filter_map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            e.data().to_string().ok().map(|v| format!("{key}={v}"))
        })
        .collect();
    parts.join(", ")
}

fn asn1_to_unix(t: &openssl::asn1::Asn1TimeRef) -> Result<i64> {
    let epoch = Asn1Time::from_unix(0).ctx("epoch")?;
    let d = epoch.diff(t).ctx("time difference")?;
    Ok(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

fn random_serial() -> Result<Asn1Integer> {
    // 127 random bits: positive, non-zero with overwhelming probability, < 20 octets (RFC 5280 §4.1.2.2).
    let mut bn = BigNum::new().ctx("serial")?;
    bn.rand(127, MsbOption::ONE, false).ctx("serial")?;
    bn.to_asn1_integer().ctx("serial")
}

// ---------------------------------------------------------------------------------------------
// Certificates

/// An X.509 certificate plus where it came from (for error messages).
#[derive(Clone)]
pub struct Certificate {
    cert: X509,
    source: String,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Certificate({}, from {})", self.subject(), self.source)
    }
}

impl Certificate {
    /// Parse the first PEM certificate in `pem`; `source` names it in errors.
    pub fn from_pem(pem: &[u8], source: &str) -> Result<Self> {
        X509::from_pem(pem)
            .map(|cert| Self {
                cert,
                source: source.to_string(),
            })
            .map_err(not_pem(source, "certificate"))
    }

    /// Load the first certificate of a PEM file.
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_pem(&read_file(path)?, &path.display().to_string())
    }

    /// Load every certificate of a PEM bundle (at least one).
    pub fn load_bundle(path: &Path) -> Result<Vec<Self>> {
        Self::bundle_from_pem(&read_file(path)?, &path.display().to_string())
    }

    /// Parse every certificate of a PEM bundle (at least one).
    pub fn bundle_from_pem(pem: &[u8], source: &str) -> Result<Vec<Self>> {
        let certs = X509::stack_from_pem(pem).map_err(not_pem(source, "certificate"))?;
        if certs.is_empty() {
            return Err(PkiError::NotPem {
                source_name: source.to_string(),
                what: "certificate",
                detail: Some("no CERTIFICATE block found".into()),
            });
        }
        Ok(certs
            .into_iter()
            .map(|cert| Self {
                cert,
                source: source.to_string(),
            })
            .collect())
    }

    fn wrap(cert: X509, source: &str) -> Self {
        Self {
            cert,
            source: source.to_string(),
        }
    }

    /// PEM encoding.
    pub fn to_pem(&self) -> Result<Vec<u8>> {
        self.cert.to_pem().ctx("encode certificate")
    }

    /// DER encoding.
    pub fn to_der(&self) -> Result<Vec<u8>> {
        self.cert.to_der().ctx("encode certificate")
    }

    /// Where this certificate was loaded from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The underlying OpenSSL certificate.
    pub fn x509(&self) -> &X509 {
        &self.cert
    }

    /// Subject common name (the Kubernetes user name for client certificates).
    pub fn common_name(&self) -> Option<String> {
        name_entries(self.cert.subject_name(), Nid::COMMONNAME)
            .into_iter()
            .next()
    }

    /// Subject organizations (the Kubernetes groups for client certificates).
    pub fn organizations(&self) -> Vec<String> {
        name_entries(self.cert.subject_name(), Nid::ORGANIZATIONNAME)
    }

    /// Subject as `O=..., CN=...`.
    pub fn subject(&self) -> String {
        name_to_string(self.cert.subject_name())
    }

    /// Issuer as `CN=...`.
    pub fn issuer(&self) -> String {
        name_to_string(self.cert.issuer_name())
    }

    /// Serial number, upper-case hex.
    pub fn serial_hex(&self) -> String {
        self.cert
            .serial_number()
            .to_bn()
            .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
            .unwrap_or_default()
    }

    /// `notBefore` as Unix seconds.
    pub fn not_before(&self) -> Result<i64> {
        asn1_to_unix(self.cert.not_before())
    }

    /// `notAfter` as Unix seconds.
    pub fn not_after(&self) -> Result<i64> {
        asn1_to_unix(self.cert.not_after())
    }

    /// SHA-256 fingerprint of the DER encoding, `AB:CD:...` like `openssl x509 -fingerprint -sha256`.
    pub fn fingerprint_sha256(&self) -> Result<String> {
        let d = self
            .cert
            .digest(MessageDigest::sha256())
            .ctx("fingerprint")?;
        Ok(d.iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":"))
    }

    /// DNS names in subjectAltName.
    pub fn dns_names(&self) -> Vec<String> {
        self.cert
            .subject_alt_names()
            .map(|s| {
                s.iter()
                    .filter_map(|n| n.dnsname().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// IP addresses in subjectAltName.
    pub fn ip_addresses(&self) -> Vec<IpAddr> {
        self.cert
            .subject_alt_names()
            .map(|s| {
                s.iter()
                    .filter_map(|n| n.ipaddress())
                    .filter_map(|b| match b.len() {
                        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
                        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether this certificate's public key is `key`'s.
    pub fn matches_key(&self, key: &PrivateKey) -> bool {
        self.cert
            .public_key()
            .map(|p| p.public_eq(&key.key))
            .unwrap_or(false)
    }

    /// Fail with [`PkiError::KeyMismatch`] unless this certificate belongs to `key`.
    pub fn check_key(&self, key: &PrivateKey, key_source: &str) -> Result<()> {
        if self.matches_key(key) {
            Ok(())
        } else {
            Err(PkiError::KeyMismatch {
                cert: self.source.clone(),
                key: key_source.to_string(),
            })
        }
    }

    /// Verify this certificate chains to one of `roots` (at the current time), using `intermediates`
    /// as untrusted chain members.
    pub fn verify(&self, roots: &[Certificate], intermediates: &[Certificate]) -> Result<()> {
        let bundle = roots
            .first()
            .map_or_else(|| "an empty CA bundle".to_string(), |c| c.source.clone());
        let mut store = X509StoreBuilder::new().ctx("CA store")?;
        for r in roots {
            store.add_cert(r.cert.clone()).ctx("add CA to store")?;
        }
        let store = store.build();
        let mut chain = Stack::new().ctx("chain")?;
        for i in intermediates {
            chain.push(i.cert.clone()).ctx("chain")?;
        }
        let mut ctx = X509StoreContext::new().ctx("verify context")?;
        let (ok, reason) = ctx
            .init(&store, &self.cert, &chain, |c| {
                let ok = c.verify_cert()?;
                Ok((ok, c.error().error_string().to_string()))
            })
            .ctx("verify certificate")?;
        if ok {
            Ok(())
        } else {
            Err(PkiError::Verify {
                subject: self.subject(),
                bundle,
                reason,
            })
        }
    }

    /// Whether basicConstraints says CA.
    pub fn is_ca(&self) -> bool {
        // The openssl crate exposes no basicConstraints getter; read OpenSSL's text rendering.
        self.cert
            .to_text()
            .map(|t| String::from_utf8_lossy(&t).contains("CA:TRUE"))
            .unwrap_or(false)
    }
}

// ---------------------------------------------------------------------------------------------
// Issuing

/// Key usages as named by `certificates.k8s.io/v1` `KeyUsage` (`kubernetes/api` `certificates/v1/types.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// "digital signature"
    DigitalSignature,
    /// "key encipherment"
    KeyEncipherment,
    /// "cert sign"
    CertSign,
    /// "crl sign"
    CrlSign,
    /// "server auth"
    ServerAuth,
    /// "client auth"
    ClientAuth,
}

impl Usage {
    /// All usages.
    pub const ALL: [Usage; 6] = [
        Self::DigitalSignature,
        Self::KeyEncipherment,
        Self::CertSign,
        Self::CrlSign,
        Self::ServerAuth,
        Self::ClientAuth,
    ];

    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DigitalSignature => "digital signature",
            Self::KeyEncipherment => "key encipherment",
            Self::CertSign => "cert sign",
            Self::CrlSign => "crl sign",
            Self::ServerAuth => "server auth",
            Self::ClientAuth => "client auth",
        }
    }
}

impl FromStr for Usage {
    type Err = PkiError;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|u| u.as_str() == s)
            .ok_or_else(|| PkiError::Invalid(format!("unsupported key usage {s:?}")))
    }
}

/// What kind of leaf certificate to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafProfile {
    /// TLS server: EKU serverAuth, with these SANs.
    Server {
        /// DNS SANs.
        dns_names: Vec<String>,
        /// IP SANs.
        ips: Vec<IpAddr>,
    },
    /// TLS client: EKU clientAuth (CN = user, O = groups).
    Client,
    /// Both (etcd server and peer certificates): EKU serverAuth + clientAuth, with these SANs.
    ServerClient {
        /// DNS SANs.
        dns_names: Vec<String>,
        /// IP SANs.
        ips: Vec<IpAddr>,
    },
}

/// A certificate authority: its certificate and private key.
#[derive(Debug)]
pub struct CertificateAuthority {
    /// The CA certificate.
    pub cert: Certificate,
    /// The CA private key.
    pub key: PrivateKey,
}

impl CertificateAuthority {
    /// A kubeadm-style self-signed CA: `CN=<cn>` (kubeadm uses `kubernetes` and `etcd-ca`), valid
    /// from now for `validity` (kubeadm: [`CA_VALIDITY`]), basicConstraints critical CA:TRUE,
    /// keyUsage critical digitalSignature+keyEncipherment+keyCertSign.
    pub fn new_self_signed(cn: &str, alg: KeyAlgorithm, validity: Duration) -> Result<Self> {
        let key = PrivateKey::generate(alg)?;
        let name = build_name(cn, &[])?;
        let now = unix_now();
        let mut b = X509Builder::new().ctx("CA certificate")?;
        b.set_version(2).ctx("version")?;
        b.set_serial_number(&*random_serial()?).ctx("serial")?;
        b.set_subject_name(&name).ctx("subject")?;
        b.set_issuer_name(&name).ctx("issuer")?;
        b.set_pubkey(&key.key).ctx("public key")?;
        b.set_not_before(&*Asn1Time::from_unix(now).ctx("notBefore")?)
            .ctx("notBefore")?;
        b.set_not_after(&*Asn1Time::from_unix(now + validity.as_secs() as i64).ctx("notAfter")?)
            .ctx("notAfter")?;
        b.append_extension(
            BasicConstraints::new()
                .critical()
                .ca()
                .build()
                .ctx("basicConstraints")?,
        )
        .ctx("basicConstraints")?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .key_cert_sign()
                .build()
                .ctx("keyUsage")?,
        )
        .ctx("keyUsage")?;
        let ski = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(None, None))
            .ctx("subjectKeyIdentifier")?;
        b.append_extension(ski).ctx("subjectKeyIdentifier")?;
        b.sign(&key.key, key.digest()).ctx("sign CA certificate")?;
        Ok(Self {
            cert: Certificate::wrap(b.build(), cn),
            key,
        })
    }

    /// Load a CA from its certificate and key files; fails if they do not match.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self> {
        let cert = Certificate::load(cert_path)?;
        let key = PrivateKey::load(key_path)?;
        cert.check_key(&key, &key_path.display().to_string())?;
        Ok(Self { cert, key })
    }

    /// Write `ca.crt` (0644) and `ca.key` (0600) style files atomically.
    pub fn write(&self, cert_path: &Path, key_path: &Path) -> Result<()> {
        write_cert_and_key(&self.cert, &self.key, cert_path, key_path)
    }

    /// Issue a leaf certificate for `key` with subject `CN=cn, O=orgs`, valid now until now+`validity`
    /// (capped at the CA's notAfter), with the EKUs/SANs of `profile`.
    pub fn issue(
        &self,
        key: &PrivateKey,
        cn: &str,
        orgs: &[String],
        profile: &LeafProfile,
        validity: Duration,
    ) -> Result<Certificate> {
        let pubkey = PKey::public_key_from_der(&key.key.public_key_to_der().ctx("public key")?)
            .ctx("public key")?;
        let (usages, dns, ips): (Vec<Usage>, &[String], &[IpAddr]) = match profile {
            LeafProfile::Server { dns_names, ips } => (
                vec![
                    Usage::DigitalSignature,
                    Usage::KeyEncipherment,
                    Usage::ServerAuth,
                ],
                dns_names,
                ips,
            ),
            LeafProfile::Client => (
                vec![
                    Usage::DigitalSignature,
                    Usage::KeyEncipherment,
                    Usage::ClientAuth,
                ],
                &[],
                &[],
            ),
            LeafProfile::ServerClient { dns_names, ips } => (
                vec![
                    Usage::DigitalSignature,
                    Usage::KeyEncipherment,
                    Usage::ServerAuth,
                    Usage::ClientAuth,
                ],
                dns_names,
                ips,
            ),
        };
        let now = unix_now();
        let cert = self.build_leaf(
            &*build_name(cn, orgs)?,
            &pubkey,
            now,
            now + validity.as_secs() as i64,
            &usages,
            dns,
            ips,
        )?;
        Ok(Certificate::wrap(cert, cn))
    }

    /// Sign a CSR like kube-controller-manager's signer (`pkg/controller/certificates/signer/signer.go`
    /// and `authority/policies.go`): the CSR's signature must verify; its extensions are dropped;
    /// subject and SANs are kept; key usages come from `usages`; `notBefore = now - 5m`;
    /// `notAfter = now + ttl - 5m` when `ttl >= 8h`, else `now + ttl`; `notAfter` is capped at the
    /// CA's own `notAfter`. Refuses when the CA has expired.
    pub fn sign_csr(
        &self,
        csr: &CertificateRequest,
        ttl: Duration,
        usages: &[Usage],
    ) -> Result<Certificate> {
        csr.verify_signature()?;
        let now = unix_now();
        let ca_not_after = self.cert.not_after()?;
        if ca_not_after <= now {
            return Err(PkiError::Invalid(format!(
                "the signing CA {} has expired",
                self.cert.source
            )));
        }
        let backdate = SIGNER_BACKDATE.as_secs() as i64;
        let not_before = now - backdate;
        let mut not_after = now + ttl.as_secs() as i64;
        if ttl >= SIGNER_SHORT {
            not_after -= backdate;
        }
        let not_after = not_after.min(ca_not_after);
        let pubkey = csr.req.public_key().ctx("CSR public key")?;
        let (dns, ips) = (csr.dns_names(), csr.ip_addresses());
        let subject = go_subject_order(csr.req.subject_name())?;
        let cert = self.build_leaf(&subject, &pubkey, not_before, not_after, usages, &dns, &ips)?;
        Ok(Certificate::wrap(
            cert,
            &csr.common_name().unwrap_or_else(|| csr.source.clone()),
        ))
    }
}

/// The subject as kube-controller-manager's signer writes it: the template takes the CSR's parsed `pkix.Name`
/// (not its raw bytes), so Go re-encodes it with `Name.ToRDNSequence` — country, province, locality, street,
/// postal code, organization, organizational unit, common name, serial number, in that order; other attributes
/// are dropped (kubernetes `pkg/controller/certificates/authority/authority.go`, Go `crypto/x509/pkix`).
fn go_subject_order(csr_subject: &openssl::x509::X509NameRef) -> Result<openssl::x509::X509Name> {
    const ORDER: [Nid; 9] = [
        Nid::COUNTRYNAME,
        Nid::STATEORPROVINCENAME,
        Nid::LOCALITYNAME,
        Nid::STREETADDRESS,
        Nid::POSTALCODE,
        Nid::ORGANIZATIONNAME,
        Nid::ORGANIZATIONALUNITNAME,
        Nid::COMMONNAME,
        Nid::SERIALNUMBER,
    ];
    let mut b = openssl::x509::X509NameBuilder::new().ctx("subject")?;
    for nid in ORDER {
        for entry in csr_subject.entries_by_nid(nid) {
            let value = entry.data().to_string().ctx("subject attribute")?;
            b.append_entry_by_nid(nid, &value)
                .ctx("subject attribute")?;
        }
    }
    Ok(b.build())
}

impl CertificateAuthority {
    #[allow(clippy::too_many_arguments)]
    fn build_leaf(
        &self,
        subject: &openssl::x509::X509NameRef,
        pubkey: &PKey<Public>,
        not_before: i64,
        not_after: i64,
        usages: &[Usage],
        dns: &[String],
        ips: &[IpAddr],
    ) -> Result<X509> {
        let not_after = not_after.min(self.cert.not_after()?);
        let mut b = X509Builder::new().ctx("certificate")?;
        b.set_version(2).ctx("version")?;
        b.set_serial_number(&*random_serial()?).ctx("serial")?;
        b.set_subject_name(subject).ctx("subject")?;
        b.set_issuer_name(self.cert.cert.subject_name())
            .ctx("issuer")?;
        b.set_pubkey(pubkey).ctx("public key")?;
        b.set_not_before(&*Asn1Time::from_unix(not_before).ctx("notBefore")?)
            .ctx("notBefore")?;
        b.set_not_after(&*Asn1Time::from_unix(not_after).ctx("notAfter")?)
            .ctx("notAfter")?;
        b.append_extension(
            BasicConstraints::new()
                .critical()
                .build()
                .ctx("basicConstraints")?,
        )
        .ctx("basicConstraints")?;
        // keyUsage (critical) and extendedKeyUsage, each only when some usage of its kind is asked for.
        let (extended, basic): (Vec<Usage>, Vec<Usage>) = usages
            .iter()
            .partition(|u| matches!(u, Usage::ServerAuth | Usage::ClientAuth));
        if !basic.is_empty() {
            let mut ku = KeyUsage::new();
            ku.critical();
            for u in &basic {
                match u {
                    Usage::DigitalSignature => ku.digital_signature(),
                    Usage::KeyEncipherment => ku.key_encipherment(),
                    Usage::CertSign => ku.key_cert_sign(),
                    Usage::CrlSign => ku.crl_sign(),
                    Usage::ServerAuth | Usage::ClientAuth => continue,
                };
            }
            b.append_extension(ku.build().ctx("keyUsage")?)
                .ctx("keyUsage")?;
        }
        if !extended.is_empty() {
            let mut eku = ExtendedKeyUsage::new();
            for u in &extended {
                if *u == Usage::ServerAuth {
                    eku.server_auth();
                } else {
                    eku.client_auth();
                }
            }
            b.append_extension(eku.build().ctx("extendedKeyUsage")?)
                .ctx("extendedKeyUsage")?;
        }
        let aki = AuthorityKeyIdentifier::new()
            .keyid(false)
            .build(&b.x509v3_context(Some(&self.cert.cert), None))
            .ctx("authorityKeyIdentifier")?;
        b.append_extension(aki).ctx("authorityKeyIdentifier")?;
        if !dns.is_empty() || !ips.is_empty() {
            let mut san = SubjectAlternativeName::new();
            for d in dns {
                san.dns(d);
            }
            for ip in ips {
                san.ip(&ip.to_string());
            }
            let ext = san
                .build(&b.x509v3_context(Some(&self.cert.cert), None))
                .ctx("subjectAltName")?;
            b.append_extension(ext).ctx("subjectAltName")?;
        }
        b.sign(&self.key.key, self.key.digest())
            .ctx("sign certificate")?;
        Ok(b.build())
    }
}

/// Write a certificate (0644) and its key (0600) atomically.
pub fn write_cert_and_key(
    cert: &Certificate,
    key: &PrivateKey,
    cert_path: &Path,
    key_path: &Path,
) -> Result<()> {
    let io = |path: &Path, e: crate::fsutil::FsError| PkiError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    };
    crate::fsutil::write_private(key_path, &key.to_pem()?).map_err(|e| io(key_path, e))?;
    crate::fsutil::write_with_mode(cert_path, &cert.to_pem()?, crate::fsutil::PUBLIC_FILE_MODE)
        .map_err(|e| io(cert_path, e))
}

// ---------------------------------------------------------------------------------------------
// CSRs

/// A PKCS#10 certificate signing request.
pub struct CertificateRequest {
    req: X509Req,
    source: String,
}

impl fmt::Debug for CertificateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CertificateRequest({})",
            name_to_string(self.req.subject_name())
        )
    }
}

impl CertificateRequest {
    /// Build and self-sign a CSR with subject `O=orgs..., CN=cn` (Kubernetes: user and groups).
    pub fn build(key: &PrivateKey, cn: &str, orgs: &[String]) -> Result<Self> {
        let mut b = X509ReqBuilder::new().ctx("certificate request")?;
        b.set_subject_name(&*build_name(cn, orgs)?).ctx("subject")?;
        b.set_pubkey(&key.key).ctx("public key")?;
        b.sign(&key.key, key.digest())
            .ctx("sign certificate request")?;
        Ok(Self {
            req: b.build(),
            source: cn.to_string(),
        })
    }

    /// Parse a PEM CSR (`-----BEGIN CERTIFICATE REQUEST-----`); `source` names it in errors.
    pub fn from_pem(pem: &[u8], source: &str) -> Result<Self> {
        X509Req::from_pem(pem)
            .map(|req| Self {
                req,
                source: source.to_string(),
            })
            .map_err(not_pem(source, "certificate request"))
    }

    /// Parse a DER CSR.
    pub fn from_der(der: &[u8], source: &str) -> Result<Self> {
        X509Req::from_der(der)
            .map(|req| Self {
                req,
                source: source.to_string(),
            })
            .map_err(not_pem(source, "certificate request"))
    }

    /// PEM encoding (what goes, base64-encoded, into `CertificateSigningRequest.spec.request`).
    pub fn to_pem(&self) -> Result<Vec<u8>> {
        self.req.to_pem().ctx("encode certificate request")
    }

    /// Check the request's self-signature with its own public key.
    pub fn verify_signature(&self) -> Result<()> {
        let pk = self.req.public_key().ctx("CSR public key")?;
        match self.req.verify(&pk) {
            Ok(true) => Ok(()),
            _ => Err(PkiError::BadCsrSignature(self.source.clone())),
        }
    }

    /// Subject CN.
    pub fn common_name(&self) -> Option<String> {
        name_entries(self.req.subject_name(), Nid::COMMONNAME)
            .into_iter()
            .next()
    }

    /// Subject O entries.
    pub fn organizations(&self) -> Vec<String> {
        name_entries(self.req.subject_name(), Nid::ORGANIZATIONNAME)
    }

    /// Whether the request's public key is `key`'s.
    pub fn matches_key(&self, key: &PrivateKey) -> bool {
        self.req
            .public_key()
            .map(|p| p.public_eq(&key.key))
            .unwrap_or(false)
    }

    /// DNS names requested in the subjectAltName extension.
    pub fn dns_names(&self) -> Vec<String> {
        self.requested_sans().0
    }

    /// IP addresses requested in the subjectAltName extension.
    pub fn ip_addresses(&self) -> Vec<IpAddr> {
        self.requested_sans().1
    }

    fn requested_sans(&self) -> (Vec<String>, Vec<IpAddr>) {
        // The openssl crate does not expose GENERAL_NAMES of a request extension; read them from
        // OpenSSL's own text rendering (`X509_REQ_print`: "DNS:a, IP Address:1.2.3.4").
        let Ok(text) = self.req.to_text() else {
            return (Vec::new(), Vec::new());
        };
        let text = String::from_utf8_lossy(&text);
        let mut dns = Vec::new();
        let mut ips = Vec::new();
        let mut in_san = false;
        for line in text.lines() {
            let t = line.trim();
            if t.starts_with("X509v3 Subject Alternative Name") {
                in_san = true;
                continue;
            }
            if in_san {
                for part in t.split(", ") {
                    if let Some(d) = part.strip_prefix("DNS:") {
                        dns.push(d.to_string());
                    } else if let Some(Ok(ip)) = part.strip_prefix("IP Address:").map(str::parse) {
                        ips.push(ip);
                    }
                }
                in_san = false;
            }
        }
        (dns, ips)
    }
}

#[cfg(test)]
mod tests;
