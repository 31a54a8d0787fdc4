//! The serving TLS context: `--tls-cert-file`/`--tls-private-key-file` (or a generated self-signed pair, as
//! kube-apiserver does in `--cert-dir` when none is given), optional client certificates against
//! `--client-ca-file` (requested, not required: `tls.RequestClientCert`; verification failures become 401),
//! ALPN `http/1.1`.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{AlpnError, SslAcceptor, SslMethod, SslVerifyMode};
use openssl::stack::Stack;
use openssl::x509::extension::{ExtendedKeyUsage, SubjectAlternativeName};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509Name, X509NameBuilder};

use super::StartError;

/// PEM inputs for the acceptor (already read through the path resolver).
pub(crate) struct TlsFiles {
    pub cert_pem: Option<(String, Vec<u8>)>,
    pub key_pem: Option<(String, Vec<u8>)>,
    pub client_ca_pem: Option<(String, Vec<u8>)>,
}

/// Build the acceptor. Errors carry the file name, like kube-apiserver's
/// `failed to load certificate/key ...` / `unable to load client CA file ...`.
pub(crate) fn acceptor(files: &TlsFiles) -> Result<SslAcceptor, StartError> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .map_err(|e| StartError::Config(format!("creating TLS context: {e}")))?;
    // A server that asks for client certificates must name a session id context, or OpenSSL refuses every
    // resumed session ("tlsv1 alert internal error") when a client reuses one on a new connection.
    b.set_session_id_context(b"atrest-sandbox")
        .map_err(|e| StartError::Config(format!("creating TLS context: {e}")))?;
    let (chain, key) = match (&files.cert_pem, &files.key_pem) {
        (Some((cn, cert)), Some((kn, key))) => {
            let chain = X509::stack_from_pem(cert).map_err(|e| {
                StartError::Config(format!(
                    "failed to load certificate/key: unable to load server certificate {cn}: {e}"
                ))
            })?;
            if chain.is_empty() {
                return Err(StartError::Config(format!(
                    "failed to load certificate/key: unable to load server certificate {cn}: no certificate found"
                )));
            }
            let key = PKey::private_key_from_pem(key).map_err(|e| {
                StartError::Config(format!(
                    "failed to load certificate/key: unable to load server key {kn}: {e}"
                ))
            })?;
            (chain, key)
        }
        (None, None) => self_signed()
            .map_err(|e| StartError::Config(format!("generating self-signed certificate: {e}")))?,
        _ => {
            return Err(StartError::Flags(
                "--tls-cert-file and --tls-private-key-file must be specified together".into(),
            ));
        }
    };
    b.set_certificate(&chain[0])
        .map_err(|e| StartError::Config(format!("failed to load certificate/key: {e}")))?;
    for extra in chain.iter().skip(1) {
        b.add_extra_chain_cert(extra.clone())
            .map_err(|e| StartError::Config(format!("certificate chain: {e}")))?;
    }
    b.set_private_key(&key)
        .map_err(|e| StartError::Config(format!("failed to load certificate/key: {e}")))?;
    b.check_private_key().map_err(|e| {
        StartError::Config(format!(
            "failed to load certificate/key: tls: private key does not match public key: {e}"
        ))
    })?;
    if let Some((name, pem)) = &files.client_ca_pem {
        let cas = X509::stack_from_pem(pem).map_err(|e| {
            StartError::Config(format!("unable to load client CA file \"{name}\": {e}"))
        })?;
        if cas.is_empty() {
            return Err(StartError::Config(format!(
                "unable to load client CA file \"{name}\": no certificates found"
            )));
        }
        let mut store = X509StoreBuilder::new().map_err(|e| StartError::Config(e.to_string()))?;
        let mut names = Stack::<X509Name>::new().map_err(|e| StartError::Config(e.to_string()))?;
        for ca in cas {
            names
                .push(
                    ca.subject_name()
                        .to_owned()
                        .map_err(|e| StartError::Config(e.to_string()))?,
                )
                .ok();
            store
                .add_cert(ca)
                .map_err(|e| StartError::Config(e.to_string()))?;
        }
        b.set_verify_cert_store(store.build())
            .map_err(|e| StartError::Config(e.to_string()))?;
        b.set_client_ca_list(names);
        // Request a certificate but do not fail the handshake; the authenticator judges it (401 when invalid).
        // Drain OpenSSL's error queue: a failed signature check leaves entries that would otherwise make the
        // next SSL_read on this thread fail.
        b.set_verify_callback(SslVerifyMode::PEER, |_, _| {
            let _ = openssl::error::ErrorStack::get();
            true
        });
    }
    b.set_alpn_select_callback(|_, client| {
        openssl::ssl::select_next_proto(b"\x08http/1.1", client).ok_or(AlpnError::NOACK)
    });
    Ok(b.build())
}

type Pair = (Vec<X509>, PKey<Private>);

fn self_signed() -> Result<Pair, openssl::error::ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, "localhost@sandbox")?;
    let name = name.build();
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(63, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    let nb = Asn1Time::days_from_now(0)?;
    let na = Asn1Time::days_from_now(365)?;
    b.set_not_before(&nb)?;
    b.set_not_after(&na)?;
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&b.x509v3_context(None, None))?;
    b.append_extension(san)?;
    b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok((vec![b.build()], key))
}
