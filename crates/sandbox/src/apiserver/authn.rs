//! Authentication: x509 client certificates (CN → user, O → groups) and impersonation headers.
//!
//! Upstream: apiserver `pkg/authentication/request/x509/x509.go` (`CommonNameUserConversion`),
//! `pkg/authentication/group/authenticated_group_adder.go`, `pkg/endpoints/filters/impersonation.go`.

use std::collections::BTreeMap;

use openssl::nid::Nid;
use openssl::x509::{X509Ref, X509VerifyResult};

/// `user.Info`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

pub(crate) const AUTHENTICATED: &str = "system:authenticated";
pub(crate) const UNAUTHENTICATED: &str = "system:unauthenticated";
pub(crate) const ANONYMOUS: &str = "system:anonymous";
pub(crate) const MASTERS: &str = "system:masters";

/// What the TLS handshake established about the client.
#[derive(Debug, Clone)]
pub(crate) enum PeerIdentity {
    /// No certificate presented.
    None,
    /// A certificate that chains to `--client-ca-file` with clientAuth.
    User(UserInfo),
    /// A certificate that does not verify (wrong CA, expired, no clientAuth): the request is rejected with 401.
    Invalid(String),
}

/// Map a verified peer certificate to a user: CN → name, every O → group (in order), plus
/// `system:authenticated`. An empty CN is "not authenticated by this method".
pub(crate) fn identity_from_cert(
    cert: Option<&X509Ref>,
    verify: X509VerifyResult,
    have_ca: bool,
) -> PeerIdentity {
    let Some(cert) = cert else {
        return PeerIdentity::None;
    };
    if !have_ca {
        return PeerIdentity::None;
    }
    if verify != X509VerifyResult::OK {
        return PeerIdentity::Invalid(format!("verifying certificate: {}", verify.error_string()));
    }
    let subject = cert.subject_name();
    let cn = subject
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
        .unwrap_or_default();
    if cn.is_empty() {
        return PeerIdentity::None;
    }
    let mut groups: Vec<String> = subject
        .entries_by_nid(Nid::ORGANIZATIONNAME)
        .filter_map(|e| e.data().to_string().ok())
        .collect();
    add_authenticated(&mut groups);
    PeerIdentity::User(UserInfo {
        name: cn,
        uid: String::new(),
        groups,
        extra: BTreeMap::new(),
    })
}

fn add_authenticated(groups: &mut Vec<String>) {
    if !groups.iter().any(|g| g == AUTHENTICATED) {
        groups.push(AUTHENTICATED.to_string());
    }
}

/// The anonymous user (`--anonymous-auth=true`, the default).
pub(crate) fn anonymous() -> UserInfo {
    UserInfo {
        name: ANONYMOUS.into(),
        groups: vec![UNAUTHENTICATED.into()],
        ..Default::default()
    }
}
