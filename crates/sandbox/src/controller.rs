//! kube-controller-manager's parts the sandbox needs, run as clients of the API server like the real one:
//! the CSR signing controller for `kubernetes.io/kube-apiserver-client` and the CSR cleaner. Plus the objects
//! `kubeadm init` creates through the API once the server is up.
//!
//! Signer: `pkg/controller/certificates/signer/signer.go` (`handle`, `duration`, `validAPIServerClientUsages`)
//! and `pkg/controller/certificates/authority/policies.go` (`PermissiveSigningPolicy{Backdate: 5m, Short: 8h}`).
//! Without `--cluster-signing-cert-file`/`--cluster-signing-key-file` the signer does not start
//! (`cmd/kube-controller-manager/app/certificates.go`), which leaves approved CSRs without a certificate.
//! Cleaner: `pkg/controller/certificates/cleaner/cleaner.go`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, PostParams};

use crate::kubelet::Shared;
use crate::layout::KubeVersion;
use crate::pod::StaticPod;
use atrest_core::config::GoDuration;
use atrest_core::pki::{Certificate, CertificateAuthority, CertificateRequest, Usage};

/// The controller-manager configuration the sandbox honours, from its static pod's flags.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// `--kubeconfig`, as a host path.
    pub kubeconfig: PathBuf,
    /// `--cluster-signing-cert-file` / `--cluster-signing-key-file` as host paths; None = no signer.
    pub signing: Option<(PathBuf, PathBuf)>,
    /// `--cluster-signing-duration` (default 8760h).
    pub signing_duration: Duration,
}

impl ControllerConfig {
    /// Read the flags; container paths resolve through the pod's mounts.
    pub fn from_pod(sp: &StaticPod) -> Result<Self, String> {
        let resolve = |flag: &str| -> Result<Option<PathBuf>, String> {
            match sp.flag(flag) {
                None => Ok(None),
                Some(v) => sp
                    .mounts
                    .resolve(std::path::Path::new(&v))
                    .map(Some)
                    .ok_or_else(|| format!("--{flag}={v}: open {v}: no such file or directory")),
            }
        };
        let kubeconfig = resolve("kubeconfig")?.ok_or_else(|| {
            "--kubeconfig is required: the sandbox's controller-manager runs only as an API client".to_string()
        })?;
        let cert = resolve("cluster-signing-cert-file")?;
        let key = resolve("cluster-signing-key-file")?;
        let signing = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            _ => {
                tracing::info!(
                    "Skipping CSR signer controller because no csr cert/key was specified"
                );
                None
            }
        };
        let signing_duration = match sp.flag("cluster-signing-duration") {
            None => Duration::from_secs(8760 * 3600),
            Some(v) => GoDuration::parse(&v)
                .and_then(|d| d.to_std().ok_or_else(|| "must not be negative".to_string()))
                .map_err(|e| {
                    format!("invalid argument {v:?} for \"--cluster-signing-duration\" flag: {e}")
                })?,
        };
        Ok(ControllerConfig {
            kubeconfig,
            signing,
            signing_duration,
        })
    }
}

/// A running controller-manager; stop it with [`ControllerHandle::stop`] (dropping aborts it too).
pub struct ControllerHandle {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ControllerHandle {
    pub async fn stop(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for ControllerHandle {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// Start the controllers; they retry while the API server is unreachable.
pub(crate) fn start(shared: Arc<Shared>, cfg: ControllerConfig) -> ControllerHandle {
    ControllerHandle {
        task: Some(tokio::spawn(run(shared, cfg))),
    }
}

struct Signer {
    ca: CertificateAuthority,
    duration: Duration,
}

fn load_signer(
    cert: &std::path::Path,
    key: &std::path::Path,
    duration: Duration,
) -> Result<Signer, String> {
    let ca = CertificateAuthority::load(cert, key).map_err(|e| e.to_string())?;
    Ok(Signer { ca, duration })
}

const SIGNER_NAME: &str = "kubernetes.io/kube-apiserver-client";

async fn run(shared: Arc<Shared>, cfg: ControllerConfig) {
    let mut client: Option<kube::Client> = None;
    let mut last_clean = std::time::Instant::now() - Duration::from_secs(3600);
    loop {
        if client.is_none() {
            client = crate::client_from_kubeconfig(&cfg.kubeconfig).await.ok();
        }
        if let Some(c) = &client {
            let enabled = shared.lock().csr_signer_enabled;
            if enabled && let Some((cert, key)) = &cfg.signing {
                match load_signer(cert, key, cfg.signing_duration) {
                    Ok(s) => {
                        if let Err(e) = sign_pending(c, &s).await {
                            tracing::debug!(error = %e, "csr signer pass failed");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "csr signer cannot load the CA"),
                }
            }
            if last_clean.elapsed() > Duration::from_secs(60) {
                match clean(c).await {
                    Ok(()) => last_clean = std::time::Instant::now(),
                    Err(e) => tracing::debug!(error = %e, "csr cleaner pass failed"),
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn has_condition(csr: &CertificateSigningRequest, t: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == t && c.status == "True"))
}

fn condition_time(csr: &CertificateSigningRequest, t: &str) -> Option<Timestamp> {
    csr.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t)
        .and_then(|c| {
            c.last_update_time
                .as_ref()
                .or(c.last_transition_time.as_ref())
        })
        .map(|t| t.0)
}

/// `validAPIServerClientUsages` of the upstream signer.
pub fn validate_client_usages(usages: &[String]) -> Result<Vec<Usage>, String> {
    let mut has_client_auth = false;
    let mut ku = Vec::new();
    for u in usages {
        match u.as_str() {
            "client auth" => has_client_auth = true,
            "digital signature" => ku.push(Usage::DigitalSignature),
            "key encipherment" => ku.push(Usage::KeyEncipherment),
            other => return Err(format!("invalid usage for client certificate: {other}")),
        }
    }
    if !has_client_auth {
        return Err("missing required usage for client certificate: client auth".into());
    }
    ku.push(Usage::ClientAuth);
    Ok(ku)
}

/// The certificate window for a request made at `now` (seconds): `(notBefore, notAfter)`.
pub fn validity(
    now: i64,
    expiration_seconds: Option<i32>,
    signing_duration: Duration,
    ca_not_after: i64,
) -> (i64, i64) {
    const BACKDATE: i64 = 5 * 60;
    const SHORT: i64 = 8 * 3600;
    let ttl = requested_ttl(expiration_seconds, signing_duration).as_secs() as i64;
    let not_before = now - BACKDATE;
    let not_after = if ttl < SHORT {
        now + ttl
    } else {
        not_before + ttl
    };
    (not_before, not_after.min(ca_not_after))
}

/// signer.go `duration`: the requested `expirationSeconds`, capped at the signing duration and raised to the
/// API's 10-minute minimum; the signing duration when none was requested.
fn requested_ttl(expiration_seconds: Option<i32>, signing_duration: Duration) -> Duration {
    let max = signing_duration.as_secs();
    let secs = match expiration_seconds.map(|s| s.max(0) as u64) {
        None => max,
        Some(s) if s > max => max,
        Some(s) if s < 600 => 600,
        Some(s) => s,
    };
    Duration::from_secs(secs)
}

async fn sign_pending(client: &kube::Client, signer: &Signer) -> Result<(), kube::Error> {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    for csr in api.list(&ListParams::default()).await? {
        if csr.spec.signer_name != SIGNER_NAME
            || !has_condition(&csr, "Approved")
            || has_condition(&csr, "Denied")
            || has_condition(&csr, "Failed")
            || csr
                .status
                .as_ref()
                .and_then(|s| s.certificate.as_ref())
                .is_some_and(|c| !c.0.is_empty())
        {
            continue;
        }
        let name = csr.metadata.name.clone().unwrap_or_default();
        let outcome = sign_one(&csr, signer);
        let mut updated = csr.clone();
        let status = updated.status.get_or_insert_with(Default::default);
        match outcome {
            Ok(pem) => {
                status.certificate = Some(ByteString(pem));
                tracing::info!(csr = %name, "signed certificate");
            }
            Err(SignError::Validation(msg)) => {
                status.conditions.get_or_insert_with(Vec::new).push(
                    CertificateSigningRequestCondition {
                        type_: "Failed".into(),
                        status: "True".into(),
                        reason: Some("SignerValidationFailure".into()),
                        message: Some(msg),
                        last_update_time: Some(Time(Timestamp::now())),
                        last_transition_time: None,
                    },
                );
            }
            Err(SignError::Other(msg)) => {
                // Upstream returns the error and requeues; nothing is written to the object.
                tracing::warn!(csr = %name, error = %msg, "unable to sign csr");
                continue;
            }
        }
        match api
            .replace_status(&name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

enum SignError {
    Validation(String),
    Other(String),
}

fn sign_one(csr: &CertificateSigningRequest, signer: &Signer) -> Result<Vec<u8>, SignError> {
    let request = CertificateRequest::from_pem(&csr.spec.request.0, "spec.request")
        .map_err(|e| SignError::Other(format!("unable to parse csr: {e}")))?;
    let usages = validate_client_usages(csr.spec.usages.as_deref().unwrap_or_default())
        .map_err(SignError::Validation)?;
    // Backdating, the 8-hour rule and the cap at the CA's notAfter are core's (kube-controller-manager's rules).
    let ttl = requested_ttl(csr.spec.expiration_seconds, signer.duration);
    let cert = signer
        .ca
        .sign_csr(&request, ttl, &usages)
        .map_err(|e| SignError::Other(e.to_string()))?;
    cert.to_pem().map_err(|e| SignError::Other(e.to_string()))
}

/// The CSR cleaner: approved or denied CSRs go 1 h after the decision, pending ones after 24 h, and any whose
/// issued certificate expired.
async fn clean(client: &kube::Client) -> Result<(), kube::Error> {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let now = Timestamp::now();
    let older =
        |t: Option<Timestamp>, secs: i64| t.is_some_and(|t| now.as_second() - t.as_second() > secs);
    for csr in api.list(&ListParams::default()).await? {
        let name = csr.metadata.name.clone().unwrap_or_default();
        let created = csr.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let expired = csr
            .status
            .as_ref()
            .and_then(|s| s.certificate.as_ref())
            .and_then(|c| Certificate::from_pem(&c.0, "status.certificate").ok())
            .and_then(|c| c.not_after().ok())
            .is_some_and(|na| na < now.as_second());
        let gc = expired
            || (has_condition(&csr, "Approved")
                && older(condition_time(&csr, "Approved").or(created), 3600))
            || (has_condition(&csr, "Denied")
                && older(condition_time(&csr, "Denied").or(created), 3600))
            || (has_condition(&csr, "Failed")
                && older(condition_time(&csr, "Failed").or(created), 3600))
            || older(created, 24 * 3600);
        if gc {
            tracing::info!(csr = %name, "garbage collecting csr");
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// What `kubeadm init` creates through the API after the control plane is up
/// (`cmd/kubeadm/app/phases/kubeconfig/kubeconfig.go` `EnsureAdminClusterRoleBinding`): the
/// `kubeadm:cluster-admins` ClusterRoleBinding to `cluster-admin`, created with super-admin.conf, and the
/// `kubeadm-config` ConfigMap; plus, when
/// missing, the RBAC of the node's own components ([`component_rbac`]). Idempotent.
///
/// Retried while the server comes up: the in-process server answers at once, the real kube-apiserver after some
/// seconds (a minute or more on a loaded machine), so tries go on for [`BOOTSTRAP_PATIENCE`] or until shutdown.
pub(crate) async fn kubeadm_bootstrap(shared: Arc<Shared>, version: KubeVersion) {
    let deadline = std::time::Instant::now() + BOOTSTRAP_PATIENCE;
    while std::time::Instant::now() < deadline && !shared.lock().shutting_down {
        match try_bootstrap(&shared, &version).await {
            Ok(()) => return,
            Err(e) => tracing::debug!(error = %e, "kubeadm bootstrap not done yet"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tracing::warn!("could not create kubeadm's ClusterRoleBinding kubeadm:cluster-admins");
}

/// How long [`kubeadm_bootstrap`] keeps trying.
const BOOTSTRAP_PATIENCE: Duration = Duration::from_secs(300);

fn rule(groups: &[&str], resources: &[&str], names: &[&str], verbs: &[&str]) -> PolicyRule {
    let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(v(groups)),
        resources: Some(v(resources)),
        resource_names: (!names.is_empty()).then(|| v(names)),
        verbs: v(verbs),
        non_resource_urls: None,
    }
}

fn cluster_role_binding(name: &str, role: &str, kind: &str, subject: &str) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: role.into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: kind.into(),
            name: subject.into(),
            namespace: None,
        }]),
    }
}

/// The RBAC the sandbox's own kubelet and controller-manager need, created only when the API server did not
/// bootstrap it. Upstream, kube-apiserver's bootstrap policy
/// (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`) grants `system:kube-controller-manager`, and
/// the Node authorizer (not RBAC) lets `system:node:<node>` manage its mirror pods; here a `system:node`
/// ClusterRole bound to the group `system:nodes` stands in for the Node authorizer, limited to what the
/// kubelet does with pods.
fn component_rbac() -> Vec<(ClusterRole, ClusterRoleBinding)> {
    let cm = ClusterRole {
        metadata: ObjectMeta {
            name: Some("system:kube-controller-manager".into()),
            ..Default::default()
        },
        rules: Some(vec![
            rule(
                &["certificates.k8s.io"],
                &["certificatesigningrequests"],
                &[],
                &["delete", "get", "list", "watch"],
            ),
            rule(
                &["certificates.k8s.io"],
                &["certificatesigningrequests/status"],
                &[],
                &["update"],
            ),
            rule(
                &["certificates.k8s.io"],
                &["signers"],
                &["kubernetes.io/kube-apiserver-client"],
                &["sign"],
            ),
        ]),
        aggregation_rule: None,
    };
    let node = ClusterRole {
        metadata: ObjectMeta {
            name: Some("system:node".into()),
            ..Default::default()
        },
        rules: Some(vec![
            rule(
                &[""],
                &["pods"],
                &[],
                &["create", "delete", "get", "list", "watch"],
            ),
            rule(&[""], &["pods/status"], &[], &["patch", "update"]),
        ]),
        aggregation_rule: None,
    };
    vec![
        (
            cm,
            cluster_role_binding(
                "system:kube-controller-manager",
                "system:kube-controller-manager",
                "User",
                "system:kube-controller-manager",
            ),
        ),
        (
            node,
            cluster_role_binding("system:node", "system:node", "Group", "system:nodes"),
        ),
    ]
}

async fn create_if_missing<K>(api: &Api<K>, obj: &K) -> Result<(), String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// kubeadm's `kube-system/kubeadm-config` ConfigMap (`cmd/kubeadm/app/phases/uploadconfig/uploadconfig.go`):
/// the ClusterConfiguration this node was made with (v1beta4 from kubeadm 1.31, v1beta3 before).
fn kubeadm_config(version: &KubeVersion) -> ConfigMap {
    let api = if version.minor >= 31 {
        "v1beta4"
    } else {
        "v1beta3"
    };
    let v1beta4_only = if version.minor >= 31 {
        "caCertificateValidityPeriod: 87600h0m0s\ncertificateValidityPeriod: 8760h0m0s\n"
    } else {
        ""
    };
    let cluster_configuration = format!(
        "apiServer: {{}}\napiVersion: kubeadm.k8s.io/{api}\n{v1beta4_only}certificatesDir: /etc/kubernetes/pki\n\
         clusterName: kubernetes\ncontrollerManager: {{}}\ndns: {{}}\nencryptionAlgorithm: ECDSA-P256\netcd:\n  local:\n\
         \x20   dataDir: /var/lib/etcd\nimageRepository: registry.k8s.io\nkind: ClusterConfiguration\n\
         kubernetesVersion: {}\nnetworking:\n  dnsDomain: cluster.local\n  serviceSubnet: 10.96.0.0/12\nproxy: {{}}\n\
         scheduler: {{}}\n",
        version.git_version
    );
    ConfigMap {
        metadata: ObjectMeta {
            name: Some("kubeadm-config".into()),
            namespace: Some("kube-system".into()),
            ..Default::default()
        },
        data: Some([("ClusterConfiguration".to_string(), cluster_configuration)].into()),
        ..Default::default()
    }
}

async fn try_bootstrap(shared: &Shared, version: &KubeVersion) -> Result<(), String> {
    let client = crate::client_from_kubeconfig(&shared.layout.super_admin_conf()).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    create_if_missing(&cms, &kubeadm_config(version)).await?;
    let crbs: Api<ClusterRoleBinding> = Api::all(client.clone());
    let roles: Api<ClusterRole> = Api::all(client);
    create_if_missing(
        &crbs,
        &cluster_role_binding(
            "kubeadm:cluster-admins",
            "cluster-admin",
            "Group",
            "kubeadm:cluster-admins",
        ),
    )
    .await?;
    for (role, binding) in component_rbac() {
        // A role the server bootstrapped itself (or we did on an earlier start) is left alone, binding and all.
        match roles.create(&PostParams::default(), &role).await {
            Ok(_) => create_if_missing(&crbs, &binding).await?,
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_duration_is_a_go_duration_flag() {
        let layout = crate::layout::NodeLayout::new("/r");
        let manifest = |duration: &str| {
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-controller-manager\nspec:\n  containers:\n  - command:\n    - kube-controller-manager\n    - --kubeconfig=/etc/kubernetes/controller-manager.conf\n{duration}    name: kube-controller-manager\n    volumeMounts:\n    - mountPath: /etc/kubernetes/controller-manager.conf\n      name: kubeconfig\n  volumes:\n  - hostPath:\n      path: /etc/kubernetes/controller-manager.conf\n    name: kubeconfig\n"
            )
        };
        let config = |duration: &str| {
            let text = manifest(duration);
            let pod = crate::pod::parse(std::path::Path::new("kcm.yaml"), text.as_bytes(), &layout)
                .unwrap();
            ControllerConfig::from_pod(&pod)
        };
        assert_eq!(
            config("").unwrap().signing_duration,
            Duration::from_secs(8760 * 3600),
            "kube-controller-manager's default"
        );
        assert_eq!(
            config("    - --cluster-signing-duration=1h30m\n")
                .unwrap()
                .signing_duration,
            Duration::from_secs(5400)
        );
        let e = config("    - --cluster-signing-duration=5d\n").unwrap_err();
        assert_eq!(
            e,
            "invalid argument \"5d\" for \"--cluster-signing-duration\" flag: time: unknown unit \"d\" in duration \"5d\""
        );
        let e = config("    - --cluster-signing-duration=-1h\n").unwrap_err();
        assert!(e.contains("must not be negative"), "{e}");
    }

    #[test]
    fn usages_like_the_upstream_signer() {
        assert!(validate_client_usages(&["client auth".into()]).is_ok());
        assert_eq!(
            validate_client_usages(&[
                "digital signature".into(),
                "server auth".into(),
                "client auth".into()
            ])
            .unwrap_err(),
            "invalid usage for client certificate: server auth"
        );
        assert_eq!(
            validate_client_usages(&["digital signature".into()]).unwrap_err(),
            "missing required usage for client certificate: client auth"
        );
    }

    #[test]
    fn validity_window_backdates_caps_and_clamps() {
        let year = Duration::from_secs(8760 * 3600);
        let far = i64::MAX / 2;
        // Short TTL: notAfter = now + ttl, window ttl + 5m (upstream's integration test: 10m → 15m).
        assert_eq!(
            validity(1_000_000, Some(600), year, far),
            (1_000_000 - 300, 1_000_600)
        );
        // Long TTL: notAfter = notBefore + ttl.
        assert_eq!(
            validity(1_000_000, Some(86400), year, far),
            (999_700, 999_700 + 86400)
        );
        // Capped at the signing duration, and at the CA's notAfter.
        assert_eq!(
            validity(0, Some(i32::MAX), Duration::from_secs(36000), far).1,
            -300 + 36000
        );
        assert_eq!(validity(0, None, year, 5000).1, 5000);
    }
}
