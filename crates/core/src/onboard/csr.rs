//! The `certificates.k8s.io/v1` CertificateSigningRequest flow: create, approve (PUT `/approval`), wait.
//!
//! Approval mirrors `kubectl certificate approve` (kubernetes/kubectl `pkg/cmd/certificates/certificates.go`):
//! GET, refuse if Denied, skip if already Approved, append an `Approved` condition and PUT the whole object to
//! the `/approval` subresource, retrying on 409 Conflict. PUT (not kube-rs' PATCH helper) needs only the
//! documented `update` on `certificatesigningrequests/approval`.

use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Api;
use kube::api::PostParams;

use super::{
    MANAGED_BY, MANAGED_BY_LABEL, OnboardError, Result, SIGNER_NAME, USER_ANNOTATION, record,
};
use crate::pki::{CertificateRequest, Usage};

/// Reason on the Approved condition.
pub const APPROVE_REASON: &str = "AtrestOnboardApprove";
/// Message on the Approved condition.
pub const APPROVE_MESSAGE: &str = "This CSR was approved by kubectl onboard.";

/// The CSR object for `req` (generateName `atrest-onboard-<user>-`).
pub fn build(
    user: &str,
    req: &CertificateRequest,
    ttl: Duration,
    usages: &[Usage],
) -> Result<CertificateSigningRequest> {
    Ok(CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some(format!("atrest-onboard-{}-", record::slug(user))),
            labels: Some([(MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string())].into()),
            annotations: Some([(USER_ANNOTATION.to_string(), user.to_string())].into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(req.to_pem()?),
            signer_name: SIGNER_NAME.to_string(),
            usages: Some(usages.iter().map(|u| u.as_str().to_string()).collect()),
            expiration_seconds: Some(i32::try_from(ttl.as_secs()).unwrap_or(i32::MAX)),
            ..Default::default()
        },
        status: None,
    })
}

/// Creates the CSR (or dry-runs it: admission such as the `system:masters` restriction still runs). Returns its
/// name.
pub async fn create(
    client: &kube::Client,
    user: &str,
    req: &CertificateRequest,
    ttl: Duration,
    usages: &[Usage],
    dry_run: bool,
) -> Result<String> {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let csr = build(user, req, ttl, usages)?;
    let pp = super::post_params(dry_run);
    let created = api.create(&pp, &csr).await.map_err(|e| {
        let object = format!("CertificateSigningRequest for {user}");
        OnboardError::write("create CertificateSigningRequest", object, dry_run, e)
    })?;
    Ok(created.metadata.name.unwrap_or_default())
}

fn has_condition(
    csr: &CertificateSigningRequest,
    t: &str,
) -> Option<CertificateSigningRequestCondition> {
    csr.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t && c.status == "True")
        .cloned()
}

/// Approves the CSR through PUT `/approval`, retrying on conflicts (like `kubectl certificate approve`).
pub async fn approve(client: &kube::Client, name: &str) -> Result<()> {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let mut last_conflict = None;
    for _ in 0..10 {
        let mut csr = api
            .get(name)
            .await
            .map_err(|e| OnboardError::api(format!("get CertificateSigningRequest {name}"), e))?;
        if let Some(c) = has_condition(&csr, "Denied") {
            return Err(rejected(name, "Denied", &c));
        }
        if has_condition(&csr, "Approved").is_some() {
            return Ok(());
        }
        let status = csr.status.get_or_insert_with(Default::default);
        status
            .conditions
            .get_or_insert_with(Vec::new)
            .push(CertificateSigningRequestCondition {
                type_: "Approved".into(),
                status: "True".into(),
                reason: Some(APPROVE_REASON.into()),
                message: Some(APPROVE_MESSAGE.into()),
                last_update_time: Some(Time(k8s_openapi::jiff::Timestamp::now())),
                ..Default::default()
            });
        match api
            .replace_subresource("approval", name, &PostParams::default(), &csr)
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                last_conflict = Some(s.message.clone());
                continue;
            }
            Err(e) => {
                return Err(OnboardError::api(
                    format!("approve CertificateSigningRequest {name}"),
                    e,
                ));
            }
        }
    }
    Err(OnboardError::Api {
        action: format!("approve CertificateSigningRequest {name}"),
        message: format!(
            "still conflicting after 10 attempts: {}",
            last_conflict.unwrap_or_default()
        ),
        code: Some(409),
    })
}

fn rejected(name: &str, condition: &str, c: &CertificateSigningRequestCondition) -> OnboardError {
    OnboardError::CsrRejected {
        csr: name.to_string(),
        condition: condition.to_string(),
        reason: c.reason.clone().unwrap_or_default(),
        message: c.message.clone().unwrap_or_default(),
    }
}

/// Polls the CSR until `status.certificate` is set (returns the PEM chain), a Denied/Failed condition appears
/// (the signer records usage errors as `Failed/SignerValidationFailure`), or `timeout` passes — then explains
/// "approved but not issued".
pub async fn wait_for_certificate(
    client: &kube::Client,
    name: &str,
    timeout: Duration,
) -> Result<Vec<u8>> {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let start = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        let csr = api
            .get(name)
            .await
            .map_err(|e| OnboardError::api(format!("get CertificateSigningRequest {name}"), e))?;
        if let Some(c) = has_condition(&csr, "Denied") {
            return Err(rejected(name, "Denied", &c));
        }
        if let Some(c) = has_condition(&csr, "Failed") {
            return Err(rejected(name, "Failed", &c));
        }
        if let Some(cert) = csr.status.as_ref().and_then(|s| s.certificate.as_ref())
            && !cert.0.is_empty()
        {
            return Ok(cert.0.clone());
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Err(OnboardError::NotIssued {
                csr: name.to_string(),
                waited: timeout,
            });
        }
        tokio::time::sleep(delay.min(timeout - elapsed)).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
}
