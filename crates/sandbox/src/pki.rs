//! The certificates a kubeadm control-plane node carries (the CSR signer uses `atrest_core::pki`).
//!
//! Private to the sandbox (core's `pki` serves the plugins). Validity follows kubeadm: CAs 10 years, leaves 1
//! year (`cmd/kubeadm/app/constants/constants.go` `CACertificateValidityPeriod`, `CertificateValidityPeriod`).
//! Keys are ECDSA P-256, what kubeadm makes with `ClusterConfiguration.encryptionAlgorithm: ECDSA-P256` (RSA-2048
//! key generation made every fresh sandbox take seconds); they are written SEC1 (`EC PRIVATE KEY`) as kubeadm's
//! `keyutil.MarshalPrivateKeyToPEM` does.

use std::net::IpAddr;
use std::time::Duration;

use atrest_core::time::unix_now;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private, Public};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509NameBuilder, X509NameRef};

/// Errors from key and certificate operations.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    #[error("{0}")]
    Invalid(String),
}

/// kubeadm's CA validity: 10 years.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// kubeadm's leaf certificate validity: 1 year.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// A new ECDSA P-256 private key (kubeadm's `encryptionAlgorithm: ECDSA-P256`).
pub fn new_key() -> Result<PKey<Private>, PkiError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

/// PEM of a private key as kubeadm writes it (SEC1 for ECDSA, PKCS#1 for RSA, PKCS#8 otherwise).
pub fn key_pem(key: &PKey<Private>) -> Result<Vec<u8>, PkiError> {
    if let Ok(ec) = key.ec_key() {
        return Ok(ec.private_key_to_pem()?);
    }
    match key.rsa() {
        Ok(rsa) => Ok(rsa.private_key_to_pem()?),
        Err(_) => Ok(key.private_key_to_pem_pkcs8()?),
    }
}

/// `PUBLIC KEY` PEM of a key (kubeadm's sa.pub).
pub fn public_key_pem(key: &PKey<Private>) -> Result<Vec<u8>, PkiError> {
    Ok(key.public_key_to_pem()?)
}

/// What a certificate is for.
#[derive(Debug, Clone, Default)]
pub struct CertSpec {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub server_auth: bool,
    pub client_auth: bool,
}

impl CertSpec {
    /// A client certificate (clientAuth) for CN `common_name`, O `organizations`.
    pub fn client(common_name: &str, organizations: &[&str]) -> CertSpec {
        CertSpec {
            common_name: common_name.into(),
            organizations: organizations.iter().map(|o| o.to_string()).collect(),
            client_auth: true,
            ..Default::default()
        }
    }
}

fn random_serial() -> Result<Asn1Integer, PkiError> {
    let mut bn = BigNum::new()?;
    bn.rand(127, MsbOption::MAYBE_ZERO, false)?;
    Ok(bn.to_asn1_integer()?)
}

/// An X.509 v3 certificate under construction: a random serial, subject, issuer, public key and validity window.
fn builder<T: HasPublic>(
    subject: &X509NameRef,
    issuer: &X509NameRef,
    key: &PKeyRef<T>,
    not_before: i64,
    not_after: i64,
) -> Result<X509Builder, PkiError> {
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    b.set_serial_number(&*random_serial()?)?;
    b.set_subject_name(subject)?;
    b.set_issuer_name(issuer)?;
    b.set_pubkey(key)?;
    b.set_not_before(&*Asn1Time::from_unix(not_before)?)?;
    b.set_not_after(&*Asn1Time::from_unix(not_after)?)?;
    Ok(b)
}

/// A self-signed CA like kubeadm's (`CN=kubernetes`, `etcd-ca`, `front-proxy-ca`), valid 10 years.
pub fn new_ca(common_name: &str) -> Result<(X509, PKey<Private>), PkiError> {
    let key = new_key()?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    let name = name.build();
    let now = unix_now();
    let mut b = builder(&name, &name, &key, now, now + CA_VALIDITY.as_secs() as i64)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .key_cert_sign()
            .build()?,
    )?;
    b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok((b.build(), key))
}

/// A leaf certificate for `spec`, signed by the CA, valid one year, with a fresh key.
pub fn new_leaf(
    spec: &CertSpec,
    ca: &X509,
    ca_key: &PKey<Private>,
) -> Result<(X509, PKey<Private>), PkiError> {
    let key = new_key()?;
    let pubkey = PKey::public_key_from_der(&key.public_key_to_der()?)?;
    let now = unix_now();
    let cert = build_leaf(
        spec,
        &pubkey,
        ca,
        ca_key,
        now,
        now + LEAF_VALIDITY.as_secs() as i64,
        &[
            KeyUsageName::DigitalSignature,
            KeyUsageName::KeyEncipherment,
        ],
    )?;
    Ok((cert, key))
}

/// Key usages a CSR may name that end up in the KeyUsage extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsageName {
    DigitalSignature,
    KeyEncipherment,
}

fn build_leaf(
    spec: &CertSpec,
    pubkey: &PKey<Public>,
    ca: &X509,
    ca_key: &PKey<Private>,
    not_before: i64,
    not_after: i64,
    key_usages: &[KeyUsageName],
) -> Result<X509, PkiError> {
    let mut name = X509NameBuilder::new()?;
    for o in &spec.organizations {
        name.append_entry_by_nid(Nid::ORGANIZATIONNAME, o)?;
    }
    name.append_entry_by_nid(Nid::COMMONNAME, &spec.common_name)?;
    let name = name.build();
    let mut b = builder(&name, ca.subject_name(), pubkey, not_before, not_after)?;
    if !key_usages.is_empty() {
        let mut ku = KeyUsage::new();
        ku.critical();
        for u in key_usages {
            match u {
                KeyUsageName::DigitalSignature => ku.digital_signature(),
                KeyUsageName::KeyEncipherment => ku.key_encipherment(),
            };
        }
        b.append_extension(ku.build()?)?;
    }
    if spec.server_auth || spec.client_auth {
        let mut eku = ExtendedKeyUsage::new();
        if spec.server_auth {
            eku.server_auth();
        }
        if spec.client_auth {
            eku.client_auth();
        }
        b.append_extension(eku.build()?)?;
    }
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(Some(ca), None))?;
    b.append_extension(aki)?;
    if !spec.dns_names.is_empty() || !spec.ips.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for d in &spec.dns_names {
            san.dns(d);
        }
        for ip in &spec.ips {
            san.ip(&ip.to_string());
        }
        let ext = san.build(&b.x509v3_context(Some(ca), None))?;
        b.append_extension(ext)?;
    }
    b.sign(ca_key, MessageDigest::sha256())?;
    Ok(b.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_verifies_against_its_ca_and_carries_sans() {
        let (ca, ca_key) = new_ca("kubernetes").unwrap();
        let spec = CertSpec {
            common_name: "kube-apiserver".into(),
            dns_names: vec!["kubernetes".into(), "localhost".into()],
            ips: vec!["127.0.0.1".parse().unwrap()],
            server_auth: true,
            ..Default::default()
        };
        let (cert, key) = new_leaf(&spec, &ca, &ca_key).unwrap();
        assert!(cert.verify(&ca.public_key().unwrap()).unwrap());
        assert!(cert.public_key().unwrap().public_eq(&key));
        let sans: Vec<String> = cert
            .subject_alt_names()
            .unwrap()
            .iter()
            .filter_map(|n| n.dnsname().map(str::to_string))
            .collect();
        assert_eq!(sans, ["kubernetes", "localhost"]);
        assert!(
            key_pem(&key)
                .unwrap()
                .starts_with(b"-----BEGIN EC PRIVATE KEY-----")
        );
    }
}
