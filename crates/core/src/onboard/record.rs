//! Issuance records: what was issued to whom, kept in the cluster because CSRs are garbage-collected an hour
//! after approval (`pkg/controller/certificates/cleaner/cleaner.go`) and Kubernetes keeps no other record.
//!
//! Where: one ConfigMap per user in [`RECORD_NAMESPACE`] (`kube-system`, readable only by admins), named
//! `atrest-onboard-<slug>-<8 hex of sha256(user)>`, labelled `app.kubernetes.io/managed-by=atrest` and
//! `atrest.io/record=issuance`, annotated `atrest.io/user=<user>`. Each certificate is one data key
//! `<serial>.json` holding an [`IssuanceRecord`] (no key material: serial, fingerprint, subject, validity).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde::{Deserialize, Serialize};

use super::{
    Change, MANAGED_BY, MANAGED_BY_LABEL, ObjectChange, OnboardError, Result, USER_ANNOTATION,
};

/// The namespace holding the records.
pub const RECORD_NAMESPACE: &str = "kube-system";
/// Label marking record ConfigMaps.
pub const RECORD_LABEL: &str = "atrest.io/record";

/// One issued certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuanceRecord {
    /// CN.
    pub user: String,
    /// O values.
    pub groups: Vec<String>,
    /// Namespace access was granted in.
    pub namespace: String,
    /// Serial (hex).
    pub serial: String,
    /// SHA-256 fingerprint of the DER (`AB:CD:...`).
    pub fingerprint_sha256: String,
    /// Subject as text.
    pub subject: String,
    /// notBefore, RFC 3339.
    pub not_before: String,
    /// notAfter, RFC 3339.
    pub not_after: String,
    /// notAfter, Unix seconds.
    pub not_after_unix: i64,
    /// `kubernetes.io/kube-apiserver-client` or `local`.
    pub signer: String,
    /// The CSR's name (gone an hour after approval).
    pub csr: Option<String>,
    /// Who ran onboard.
    pub issued_by: String,
    /// When, RFC 3339.
    pub issued_at: String,
    /// RoleBindings created for it (`namespace/name`).
    pub bindings: Vec<String>,
    /// Set by `--remove`.
    pub offboarded_at: Option<String>,
}

/// A DNS-1123 label fragment of `user` (lowercase alphanumerics and `-`, ≤ 30 chars).
pub fn slug(user: &str) -> String {
    let mut s: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(30);
    let s = s.trim_matches('-').to_string();
    if s.is_empty() { "user".into() } else { s }
}

/// The record ConfigMap's name for `user`.
pub fn configmap_name(user: &str) -> String {
    let digest = openssl::sha::sha256(user.as_bytes());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("atrest-onboard-{}-{hex}", slug(user))
}

fn api(client: &kube::Client) -> Api<ConfigMap> {
    Api::namespaced(client.clone(), RECORD_NAMESPACE)
}

fn parse(cm: &ConfigMap) -> Vec<IssuanceRecord> {
    let name = cm.metadata.name.clone().unwrap_or_default();
    cm.data
        .iter()
        .flatten()
        .filter_map(|(k, v)| match serde_json::from_str::<IssuanceRecord>(v) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(configmap = %name, key = %k, error = %e, "skipping an unreadable issuance record");
                None
            }
        })
        .collect()
}

/// The records for `user`.
pub async fn load_user(client: &kube::Client, user: &str) -> Result<Vec<IssuanceRecord>> {
    let name = configmap_name(user);
    let cm = api(client)
        .get_opt(&name)
        .await
        .map_err(|e| OnboardError::api(format!("get configmap {RECORD_NAMESPACE}/{name}"), e))?;
    Ok(cm
        .map(|c| parse(&c))
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.user == user)
        .collect())
}

/// All records.
pub async fn load_all(client: &kube::Client) -> Result<Vec<IssuanceRecord>> {
    let lp = ListParams::default().labels(&format!(
        "{RECORD_LABEL}=issuance,{MANAGED_BY_LABEL}={MANAGED_BY}"
    ));
    let list = api(client)
        .list(&lp)
        .await
        .map_err(|e| OnboardError::api(format!("list configmaps in {RECORD_NAMESPACE}"), e))?;
    Ok(list.items.iter().flat_map(parse).collect())
}

fn key(serial: &str) -> String {
    format!("{serial}.json")
}

/// Adds (or keeps) the record; `Unchanged` when a record with that serial is already there.
pub async fn upsert(client: &kube::Client, rec: &IssuanceRecord) -> Result<ObjectChange> {
    let api = api(client);
    let name = configmap_name(&rec.user);
    let json = serde_json::to_string_pretty(rec).expect("record serializes");
    let change = |change| ObjectChange {
        kind: "ConfigMap".into(),
        namespace: Some(RECORD_NAMESPACE.into()),
        name: name.clone(),
        change,
    };
    for _ in 0..5 {
        let existing = api.get_opt(&name).await.map_err(|e| {
            OnboardError::api(format!("get configmap {RECORD_NAMESPACE}/{name}"), e)
        })?;
        let result = match existing {
            None => {
                let cm = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(RECORD_NAMESPACE.into()),
                        labels: Some(BTreeMap::from([
                            (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
                            (RECORD_LABEL.to_string(), "issuance".to_string()),
                        ])),
                        annotations: Some(BTreeMap::from([(
                            USER_ANNOTATION.to_string(),
                            rec.user.clone(),
                        )])),
                        ..Default::default()
                    },
                    data: Some(BTreeMap::from([(key(&rec.serial), json.clone())])),
                    ..Default::default()
                };
                api.create(&PostParams::default(), &cm)
                    .await
                    .map(|_| Change::Created)
            }
            Some(mut cm) => {
                if parse(&cm).iter().any(|r| r.serial == rec.serial) {
                    return Ok(change(Change::Unchanged));
                }
                cm.data
                    .get_or_insert_with(BTreeMap::new)
                    .insert(key(&rec.serial), json.clone());
                api.replace(&name, &PostParams::default(), &cm)
                    .await
                    .map(|_| Change::Updated)
            }
        };
        match result {
            Ok(c) => return Ok(change(c)),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => {
                return Err(OnboardError::api(
                    format!("write configmap {RECORD_NAMESPACE}/{name}"),
                    e,
                ));
            }
        }
    }
    Err(OnboardError::Api {
        action: format!("write configmap {RECORD_NAMESPACE}/{name}"),
        message: "still conflicting after 5 attempts".into(),
        code: Some(409),
    })
}

/// Sets `offboardedAt` on the user's records (for `namespace`, or all).
pub async fn mark_offboarded(
    client: &kube::Client,
    user: &str,
    namespace: Option<&str>,
) -> Result<Vec<ObjectChange>> {
    let api = api(client);
    let name = configmap_name(user);
    let Some(mut cm) = api
        .get_opt(&name)
        .await
        .map_err(|e| OnboardError::api(format!("get configmap {RECORD_NAMESPACE}/{name}"), e))?
    else {
        return Ok(vec![]);
    };
    let now = super::rfc3339(super::unix_now());
    let mut changed = false;
    if let Some(data) = cm.data.as_mut() {
        for v in data.values_mut() {
            if let Ok(mut r) = serde_json::from_str::<IssuanceRecord>(v)
                && r.user == user
                && r.offboarded_at.is_none()
                && namespace.is_none_or(|n| n == r.namespace)
            {
                r.offboarded_at = Some(now.clone());
                *v = serde_json::to_string_pretty(&r).expect("record serializes");
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(vec![]);
    }
    api.replace(&name, &PostParams::default(), &cm)
        .await
        .map_err(|e| OnboardError::api(format!("update configmap {RECORD_NAMESPACE}/{name}"), e))?;
    Ok(vec![ObjectChange {
        kind: "ConfigMap".into(),
        namespace: Some(RECORD_NAMESPACE.into()),
        name,
        change: Change::Updated,
    }])
}
