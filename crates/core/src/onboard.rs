//! Certificate users: CSR, approval, kubeconfig, RBAC and verification (the `kubectl onboard` verb).
//!
//! [`onboard`] does the tutorial's "Configuring RBAC Rules" in one step, in this order, so that a run that cannot
//! finish stops before it has created anything:
//! 1. subject safety ([`check_subjects`]: no `system:` CN/O, no `kubeadm:cluster-admins`), TTL ≥ 10 minutes;
//! 2. preflight: one SelfSubjectAccessReview per permission the run needs ([`preflight`]);
//! 3. server-side dry run (`?dryRun=All`) of the Role, RoleBinding and CertificateSigningRequest, which surfaces
//!    RBAC escalation errors and CSR admission errors (`system:masters`);
//! 4. key generated in-process (never sent), PKCS#10 request with CN=user, O=groups;
//! 5. signing: a `certificates.k8s.io/v1` CSR for `kubernetes.io/kube-apiserver-client`, approved with PUT on
//!    `/approval`, waited for with a diagnosis of "approved but not issued" ([`csr`]); or offline with the
//!    cluster CA (`--signer local`);
//! 6. certificate checks (key, subject, real notAfter), kubeconfig + key written 0600;
//! 7. Role and RoleBinding created or updated idempotently ([`rbac`]);
//! 8. an issuance record in the cluster ([`record`]: ConfigMaps in `kube-system`), since the CSR is
//!    garbage-collected an hour after approval;
//! 9. verification ([`verify`]): SubjectAccessReview matrix in the namespace and outside it, and a live
//!    SelfSubjectReview (`kubectl auth whoami`) with the new kubeconfig.
//!
//! A second run with the same arguments reuses the certificate in the existing kubeconfig when it still has at
//! least half of the TTL left (and its issuance record is in the cluster), and then changes nothing.
//! [`remove`] offboards; [`list`] shows the issuance records.

pub mod csr;
pub mod output;
pub mod preflight;
pub mod rbac;
pub mod record;
pub mod verify;

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use serde::Serialize;

use crate::client::ResolvedConfig;
use crate::kubeconfig::{ClientCertKubeconfig, KubeconfigWriteError};
use crate::pki::{
    Certificate, CertificateAuthority, CertificateRequest, KeyAlgorithm, PrivateKey, Usage,
};
use crate::time::{rfc3339, unix_now};

/// Label put on every object onboard creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "atrest";
/// Annotation naming the user an object was created for.
pub const USER_ANNOTATION: &str = "atrest.io/user";
/// The signer for client certificates the API server accepts.
pub const SIGNER_NAME: &str = "kubernetes.io/kube-apiserver-client";
/// The smallest `expirationSeconds` the API accepts (`pkg/apis/certificates/validation/validation.go`).
pub const MIN_TTL: Duration = Duration::from_secs(600);
/// Default certificate lifetime: 30 days.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// What went wrong in an onboard/offboard run. Messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum OnboardError {
    /// Bad arguments or an unsafe subject.
    #[error("{0}")]
    Refused(String),
    /// The caller lacks permissions the run needs; nothing was changed.
    #[error(
        "preflight: you ({who}) are missing permissions this run needs; nothing was changed:\n{}",
        .missing.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n")
    )]
    Preflight {
        /// Who asked (from SelfSubjectReview, or the kubeconfig user).
        who: String,
        /// One line per missing permission.
        missing: Vec<String>,
    },
    /// The server-side dry run refused an object (typically RBAC escalation prevention); nothing was changed.
    #[error("the API server refused {object} in a dry run, so nothing was changed: {message}")]
    DryRunRefused {
        /// `Role marketing/john-marketing`, ...
        object: String,
        /// The API server's message.
        message: String,
    },
    /// An API call failed.
    #[error("{action}: {message}")]
    Api {
        /// What was being done.
        action: String,
        /// The API server's (or the transport's) message.
        message: String,
        /// HTTP status code, when the server answered.
        code: Option<u16>,
    },
    /// The CSR was denied or failed.
    #[error("CertificateSigningRequest {csr} was {condition}: {reason}: {message}")]
    CsrRejected {
        /// CSR name.
        csr: String,
        /// `Denied` or `Failed`.
        condition: String,
        /// The condition's reason.
        reason: String,
        /// The condition's message.
        message: String,
    },
    /// The CSR was approved but no certificate appeared in time.
    #[error(
        "CertificateSigningRequest {csr} was approved but no certificate was issued within {waited:?}: no signer for \
         {SIGNER_NAME} is running in this cluster (kube-controller-manager started without \
         --cluster-signing-cert-file/--cluster-signing-key-file, or a managed cluster such as EKS, which does not \
         sign client certificates). Sign offline instead: --signer local --ca-cert ca.crt --ca-key ca.key \
         (inspect with `kubectl get csr {csr} -o yaml`)"
    )]
    NotIssued {
        /// CSR name.
        csr: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The issued certificate is not what was asked for.
    #[error("the issued certificate is wrong: {0}")]
    BadCertificate(String),
    /// A PKI operation failed.
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    /// Writing the kubeconfig failed.
    #[error(transparent)]
    Kubeconfig(#[from] KubeconfigWriteError),
    /// Writing a file failed.
    #[error(transparent)]
    Fs(#[from] crate::fsutil::FsError),
    /// Building a client from the new kubeconfig failed.
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
    /// Verification found access that differs from what was granted.
    #[error("verification failed:\n{}", .0.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    Verification(Vec<String>),
}

impl OnboardError {
    /// Wraps the error of a write: in a server-side dry run, a refusal by the API server (RBAC escalation,
    /// admission) becomes [`OnboardError::DryRunRefused`] naming `object`.
    pub fn write(action: impl Into<String>, object: String, dry_run: bool, e: kube::Error) -> Self {
        match Self::api(action, e) {
            Self::Api {
                message,
                code: Some(_),
                ..
            } if dry_run => Self::DryRunRefused { object, message },
            err => err,
        }
    }

    /// Wraps a kube-rs error with what was being done.
    pub fn api(action: impl Into<String>, e: kube::Error) -> Self {
        let action = action.into();
        match e {
            kube::Error::Api(s) => Self::Api {
                action,
                message: s.message.clone(),
                code: Some(s.code),
            },
            // Transport errors: include the causes ("client error (Connect)" alone says little), each once (kube's
            // "ServiceError: {0}" already says its source).
            other => Self::Api {
                action,
                message: crate::cli::error_chain(&other),
                code: None,
            },
        }
    }
}

/// The parameters of every create and update (`kubectl-onboard` as field manager; `?dryRun=All` in a dry run).
pub fn post_params(dry_run: bool) -> PostParams {
    PostParams {
        dry_run,
        field_manager: Some("kubectl-onboard".into()),
    }
}

/// Result alias.
pub type Result<T, E = OnboardError> = std::result::Result<T, E>;

/// One resource of a Role rule: `pods`, `pods/log`, `deployments.apps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceRef {
    /// API group (`""` = core).
    pub group: String,
    /// Resource, possibly `resource/subresource`.
    pub resource: String,
}

impl ResourceRef {
    /// Parses `RESOURCE[.GROUP][/SUBRESOURCE]` like `kubectl create role --resource`. Well-known workload
    /// resources get their group (deployments → apps, jobs → batch, ...); other bare names are core.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.is_empty() || s.contains(char::is_whitespace) {
            return Err(OnboardError::Refused(format!(
                "--resources: {s:?} is not a resource name (use e.g. pods, secrets, deployments.apps, pods/log)"
            )));
        }
        let (base, sub) = match s.split_once('/') {
            Some((b, sub)) => (b, Some(sub)),
            None => (s, None),
        };
        let (name, group) = match base.split_once('.') {
            Some((n, g)) => (n.to_string(), g.to_string()),
            None => {
                let group = match base {
                    "deployments"
                    | "replicasets"
                    | "statefulsets"
                    | "daemonsets"
                    | "controllerrevisions" => "apps",
                    "jobs" | "cronjobs" => "batch",
                    "ingresses" | "networkpolicies" => "networking.k8s.io",
                    "horizontalpodautoscalers" => "autoscaling",
                    "poddisruptionbudgets" => "policy",
                    "roles" | "rolebindings" => "rbac.authorization.k8s.io",
                    _ => "",
                };
                (base.to_string(), group.to_string())
            }
        };
        let resource = match sub {
            Some(sub) => format!("{name}/{sub}"),
            None => name,
        };
        Ok(Self { group, resource })
    }

    /// `resource` or `resource.group`, as kubectl prints it.
    pub fn display(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            let (r, sub) = match self.resource.split_once('/') {
                Some((r, s)) => (r, format!("/{s}")),
                None => (self.resource.as_str(), String::new()),
            };
            format!("{r}.{}{sub}", self.group)
        }
    }

    /// The resource without subresource, and the subresource.
    pub fn split(&self) -> (&str, Option<&str>) {
        match self.resource.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (&self.resource, None),
        }
    }
}

/// What the user is granted in the namespace.
#[derive(Debug, Clone)]
pub enum Access {
    /// A Role named `role` with `verbs` on `resources` (the tutorial's `kubectl create role`).
    Rules {
        /// Role (and RoleBinding) name.
        role: String,
        /// Verbs.
        verbs: Vec<String>,
        /// Resources.
        resources: Vec<ResourceRef>,
    },
    /// A RoleBinding to an existing ClusterRole (`view`, `edit`, ...). `verbs` × `resources` is the matrix checked.
    ClusterRole {
        /// ClusterRole name.
        name: String,
        /// Verbs for the verification matrix.
        verbs: Vec<String>,
        /// Resources for the verification matrix.
        resources: Vec<ResourceRef>,
    },
}

impl Access {
    /// The verification matrix's verbs and resources.
    pub fn matrix(&self) -> (&[String], &[ResourceRef]) {
        match self {
            Access::Rules {
                verbs, resources, ..
            }
            | Access::ClusterRole {
                verbs, resources, ..
            } => (verbs, resources),
        }
    }
}

/// How the certificate gets signed.
#[derive(Debug, Clone)]
pub enum SignerChoice {
    /// The in-cluster CSR API; wait this long for the certificate.
    Csr {
        /// Timeout for issuance after approval.
        timeout: Duration,
    },
    /// Offline with the cluster CA's files (kubeadm's way; needs the CA key).
    Local {
        /// CA certificate (PEM).
        ca_cert: PathBuf,
        /// CA private key (PEM).
        ca_key: PathBuf,
    },
}

/// Everything `kubectl onboard USER -n NAMESPACE` was asked to do.
#[derive(Debug, Clone)]
pub struct OnboardOptions {
    /// The user (certificate CN).
    pub user: String,
    /// The namespace access is granted in.
    pub namespace: String,
    /// Certificate O fields (groups).
    pub groups: Vec<String>,
    /// What is granted.
    pub access: Access,
    /// Bind this group instead of the user.
    pub bind_group: Option<String>,
    /// Requested lifetime.
    pub ttl: Duration,
    /// Key algorithm.
    pub key_type: KeyAlgorithm,
    /// Signing path.
    pub signer: SignerChoice,
    /// Kubeconfig output path; the key and certificate go next to it (`.key`, `.crt`).
    pub out: PathBuf,
    /// Create the namespace if missing.
    pub create_namespace: bool,
    /// Check and dry-run only: nothing persisted, no key written.
    pub dry_run: bool,
    /// Allow `system:` and `kubeadm:cluster-admins` subjects.
    pub allow_system_subjects: bool,
    /// Issue a new certificate even if the existing kubeconfig's is still good.
    pub renew: bool,
    /// How long the verification waits for the new Role and RoleBinding to reach the authorizer before it calls a
    /// denied check a failure ([`verify::RBAC_PROPAGATION_WAIT`] by default).
    pub rbac_wait: Duration,
}

impl OnboardOptions {
    /// The key file next to the kubeconfig (`john.kubeconfig` → `john.key`).
    pub fn key_path(&self) -> PathBuf {
        self.out.with_extension("key")
    }

    /// The certificate file next to the kubeconfig (`john.crt`).
    pub fn cert_path(&self) -> PathBuf {
        self.out.with_extension("crt")
    }

    /// The certificate's groups: `--group` values plus `--bind-group` (the binding only works if the
    /// certificate carries the group).
    pub fn cert_groups(&self) -> Vec<String> {
        let mut g = self.groups.clone();
        if let Some(b) = &self.bind_group
            && !g.contains(b)
        {
            g.push(b.clone());
        }
        g
    }
}

/// What happened (or would happen, in a dry run) to one object or file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Created.
    Created,
    /// Updated in place (or deleted and recreated, for a RoleBinding whose roleRef changed).
    Updated,
    /// Already as desired.
    Unchanged,
    /// Deleted.
    Deleted,
    /// Dry run: would be created.
    WouldCreate,
    /// Dry run: would be updated.
    WouldUpdate,
    /// Dry run: would be deleted.
    WouldDelete,
}

impl Change {
    /// The dry-run form of a change.
    pub fn dry(self) -> Self {
        match self {
            Change::Created => Change::WouldCreate,
            Change::Updated => Change::WouldUpdate,
            Change::Deleted => Change::WouldDelete,
            other => other,
        }
    }

    /// kubectl-style word.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "configured",
            Change::Unchanged => "unchanged",
            Change::Deleted => "deleted",
            Change::WouldCreate => "created (server dry run)",
            Change::WouldUpdate => "configured (server dry run)",
            Change::WouldDelete => "deleted (server dry run)",
        }
    }
}

/// One object the run touched.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectChange {
    /// Kind.
    pub kind: String,
    /// Namespace (`None` for cluster-scoped).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// What happened.
    pub change: Change,
}

impl ObjectChange {
    /// kubectl's name-printer line: `role.rbac.authorization.k8s.io/john-marketing created`.
    pub fn line(&self) -> String {
        let kind = match self.kind.as_str() {
            "Role" => "role.rbac.authorization.k8s.io",
            "RoleBinding" => "rolebinding.rbac.authorization.k8s.io",
            "Namespace" => "namespace",
            "ConfigMap" => "configmap",
            "CertificateSigningRequest" => "certificatesigningrequest.certificates.k8s.io",
            other => other,
        };
        let ns = self
            .namespace
            .as_deref()
            .map(|n| format!(" -n {n}"))
            .unwrap_or_default();
        format!("{kind}/{}{ns} {}", self.name, self.change.as_str())
    }
}

/// The certificate a run issued or reused.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateInfo {
    /// Subject, e.g. `O=marketing, CN=john`.
    pub subject: String,
    /// Serial number (hex).
    pub serial: String,
    /// SHA-256 fingerprint of the DER (`AB:CD:..`); the audit log's credential id is `X509SHA256=<hex>`.
    pub fingerprint_sha256: String,
    /// notBefore (RFC 3339).
    pub not_before: String,
    /// notAfter (RFC 3339): the real expiry.
    pub not_after: String,
    /// The CSR name, for the CSR signer.
    pub csr: Option<String>,
    /// `kubernetes.io/kube-apiserver-client` or `local`.
    pub signer: String,
    /// True when the certificate in the existing kubeconfig was kept.
    pub reused: bool,
}

/// A file the run wrote.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileChange {
    /// The path.
    pub path: PathBuf,
    /// What happened.
    pub change: Change,
    /// The backup of the previous content, if it was replaced.
    pub backup: Option<PathBuf>,
}

/// Result of `kubectl onboard USER -n NS`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OnboardReport {
    /// The user.
    pub user: String,
    /// Certificate groups.
    pub groups: Vec<String>,
    /// Namespace.
    pub namespace: String,
    /// True for `--dry-run`.
    pub dry_run: bool,
    /// The certificate (absent in a dry run).
    pub certificate: Option<CertificateInfo>,
    /// Kubeconfig, key and certificate files.
    pub files: Vec<FileChange>,
    /// Objects created/updated.
    pub objects: Vec<ObjectChange>,
    /// The SubjectAccessReview matrix (inside and outside the namespace).
    pub access: Vec<verify::AccessCheck>,
    /// What the API server says the new kubeconfig authenticates as.
    pub whoami: Option<verify::WhoAmI>,
    /// Things the admin should know.
    pub warnings: Vec<String>,
}

/// Refuses reserved or admin-equivalent subjects: CN/O starting with `system:` and the group
/// `kubeadm:cluster-admins` (bound to cluster-admin by kubeadm ≥ 1.29), unless `allow`; an empty CN always.
/// The API server itself only refuses `O=system:masters` for this signer
/// (`plugin/pkg/admission/certificates/subjectrestriction/admission.go`).
pub fn check_subjects(user: &str, groups: &[String], allow: bool) -> Result<()> {
    if user.trim().is_empty() {
        return Err(OnboardError::Refused(
            "the user name (certificate CN) is empty; the API server would not authenticate it"
                .into(),
        ));
    }
    for g in groups {
        if g.trim().is_empty() {
            return Err(OnboardError::Refused("--group: empty group name".into()));
        }
    }
    if allow {
        return Ok(());
    }
    let reserved = |s: &str| s.starts_with("system:") || s == "kubeadm:cluster-admins";
    if reserved(user) {
        return Err(OnboardError::Refused(format!(
            "refusing to issue a certificate for user {user:?}: names starting with \"system:\" belong to \
             Kubernetes components and service accounts (pass --allow-system-subjects if you really mean it)"
        )));
    }
    if let Some(g) = groups.iter().find(|g| reserved(g)) {
        return Err(OnboardError::Refused(format!(
            "refusing to issue a certificate with group {g:?}: \"system:\" groups and \"kubeadm:cluster-admins\" \
             are Kubernetes-reserved or cluster-admin groups; a certificate cannot be revoked, so such a \
             certificate would be a permanent admin credential (pass --allow-system-subjects if you really mean it)"
        )));
    }
    Ok(())
}

fn validate(opts: &OnboardOptions) -> Result<()> {
    check_subjects(&opts.user, &opts.cert_groups(), opts.allow_system_subjects)?;
    if opts.ttl < MIN_TTL {
        return Err(OnboardError::Refused(format!(
            "--ttl {:?} is shorter than 10 minutes, the minimum the CertificateSigningRequest API accepts \
             (spec.expirationSeconds ≥ 600)",
            opts.ttl
        )));
    }
    if opts.ttl.as_secs() > i32::MAX as u64 {
        return Err(OnboardError::Refused(format!(
            "--ttl {:?} is too long (spec.expirationSeconds is a 32-bit number of seconds)",
            opts.ttl
        )));
    }
    if opts.namespace.trim().is_empty() {
        return Err(OnboardError::Refused(
            "the namespace is empty: pass -n NAMESPACE".into(),
        ));
    }
    let (verbs, resources) = opts.access.matrix();
    if verbs.is_empty() || resources.is_empty() {
        return Err(OnboardError::Refused(
            "--verbs and --resources must not be empty".into(),
        ));
    }
    if let Access::Rules { role, .. } = &opts.access
        && (role.is_empty()
            || role.contains('/')
            || role.contains('%')
            || role == "."
            || role == "..")
    {
        return Err(OnboardError::Refused(format!(
            "--role {role:?} is not a valid Role name (no '/', '%', '.' or '..')"
        )));
    }
    Ok(())
}

/// Human duration: `29d 23h`, `9m`, ...
pub fn human_duration(secs: i64) -> String {
    if secs <= 0 {
        return "expired".into();
    }
    let (d, h, m) = (secs / 86400, (secs % 86400) / 3600, (secs % 3600) / 60);
    match (d, h) {
        (0, 0) => format!("{}m", m.max(1)),
        (0, h) => format!("{h}h {m}m"),
        (d, h) => format!("{d}d {h}h"),
    }
}

fn usages_for(key: KeyAlgorithm) -> Vec<Usage> {
    // kube-apiserver-client allows exactly these three; key encipherment only makes sense for RSA
    // (RFC 9295 forbids it for Ed25519). `pkg/controller/certificates/signer/signer.go` validAPIServerClientUsages.
    match key {
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa4096 => {
            vec![
                Usage::DigitalSignature,
                Usage::KeyEncipherment,
                Usage::ClientAuth,
            ]
        }
        _ => vec![Usage::DigitalSignature, Usage::ClientAuth],
    }
}

/// A certificate already in the kubeconfig at `--out` that is good enough to keep.
struct Existing {
    cert: Certificate,
    chain_pem: Vec<u8>,
    key: PrivateKey,
    record: record::IssuanceRecord,
}

/// Loads the kubeconfig at `out` and keeps its certificate when it is for the same subject, matches its key,
/// has at least half of the TTL left and has an issuance record in this cluster.
async fn reusable(client: &kube::Client, opts: &OnboardOptions) -> Option<Existing> {
    if opts.renew || !opts.out.exists() {
        return None;
    }
    let (chain_pem, key_pem) = crate::kubeconfig::client_credentials(&opts.out)?;
    let source = opts.out.display().to_string();
    let cert = Certificate::bundle_from_pem(&chain_pem, &source)
        .ok()?
        .into_iter()
        .next()?;
    let key = PrivateKey::from_pem(&key_pem, &source).ok()?;
    let mut want = opts.cert_groups();
    want.sort();
    let mut have = cert.organizations();
    have.sort();
    let left = cert.not_after().ok()? - unix_now();
    if !cert.matches_key(&key)
        || cert.common_name().as_deref() != Some(opts.user.as_str())
        || want != have
        || left < (opts.ttl.as_secs() / 2) as i64
    {
        return None;
    }
    let records = record::load_user(client, &opts.user).await.ok()?;
    let serial = cert.serial_hex();
    let rec = records.into_iter().find(|r| r.serial == serial)?;
    Some(Existing {
        cert,
        chain_pem,
        key,
        record: rec,
    })
}

/// Writes `contents` to `path` (0600 when `private`) unless it already holds exactly that; backs up a different
/// previous content next to it.
fn write_file(path: &Path, contents: &[u8], private: bool, dry_run: bool) -> Result<FileChange> {
    let existing = std::fs::read(path).ok();
    if existing.as_deref() == Some(contents) {
        let mode_ok = !private || {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(path)
                .map(|m| m.permissions().mode() & 0o077 == 0)
                .unwrap_or(false)
        };
        if mode_ok {
            return Ok(FileChange {
                path: path.to_path_buf(),
                change: Change::Unchanged,
                backup: None,
            });
        }
    }
    let change = if existing.is_some() {
        Change::Updated
    } else {
        Change::Created
    };
    if dry_run {
        return Ok(FileChange {
            path: path.to_path_buf(),
            change: change.dry(),
            backup: None,
        });
    }
    let backup = match existing {
        Some(_) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            Some(crate::fsutil::backup(path, dir)?)
        }
        None => None,
    };
    if private {
        crate::fsutil::write_private(path, contents)?;
    } else {
        crate::fsutil::write_atomic(path, contents)?;
    }
    Ok(FileChange {
        path: path.to_path_buf(),
        change,
        backup,
    })
}

/// Runs `kubectl onboard`. `resolved`/`client` are the admin's connection.
pub async fn onboard(
    client: &kube::Client,
    resolved: &ResolvedConfig,
    opts: &OnboardOptions,
) -> Result<OnboardReport> {
    validate(opts)?;
    let groups = opts.cert_groups();
    let mut warnings = access_warnings(opts);
    let admin_name = admin_name(client, resolved).await;
    let ns_api: Api<Namespace> = Api::all(client.clone());
    let ns_exists = namespace_exists(&ns_api, opts).await?;
    preflight(client, opts, ns_exists, admin_name.clone()).await?;
    warnings.extend(rbac::existing_cluster_grants(client, &opts.user, &groups).await);

    // Certificate to keep, if any; else a key and request (in memory; the key is never sent anywhere).
    let source = match reusable(client, opts).await {
        Some(existing) => CertSource::Kept(Box::new(existing)),
        None => {
            let key = PrivateKey::generate(opts.key_type)?;
            let req = CertificateRequest::build(&key, &opts.user, &groups)?;
            CertSource::New { key, req }
        }
    };

    let mut objects = Vec::new();
    let created_namespace = if ns_exists {
        false
    } else {
        objects.push(create_namespace(&ns_api, opts).await?);
        !opts.dry_run
    };
    let rollback = |e| rollback_namespace(&ns_api, created_namespace, &opts.namespace, e);
    let request = match &source {
        CertSource::New { req, .. } => Some(req),
        CertSource::Kept(_) => None,
    };
    let plan = match dry_run_on_server(client, opts, ns_exists || created_namespace, request).await
    {
        Ok((plan, warning)) => {
            warnings.extend(warning);
            plan
        }
        Err(e) => return Err(rollback(e).await),
    };
    if opts.dry_run {
        let kept = match &source {
            CertSource::Kept(e) => Some(info_from_record(&e.record, true)),
            CertSource::New { .. } => None,
        };
        objects.extend(dry_run_changes(opts, &plan, kept.is_none()));
        return Ok(OnboardReport {
            user: opts.user.clone(),
            groups,
            namespace: opts.namespace.clone(),
            dry_run: true,
            certificate: kept,
            files: vec![],
            objects,
            access: vec![],
            whoami: None,
            warnings,
        });
    }

    let issued = match source {
        CertSource::Kept(e) => Issued {
            info: info_from_record(&e.record, true),
            cert: e.cert,
            chain_pem: e.chain_pem,
            key: e.key,
        },
        CertSource::New { key, req } => sign(client, opts, &groups, key, &req).await?,
    };
    let not_after = issued.cert.not_after()?;
    warnings.extend(issued.warnings(opts, resolved, not_after));
    let files = issued.write_files(opts, resolved)?;

    // RBAC for real.
    objects.extend(rbac::apply(client, &plan, false).await?);

    // Issuance record.
    let rec = record::IssuanceRecord {
        user: opts.user.clone(),
        groups: groups.clone(),
        namespace: opts.namespace.clone(),
        serial: issued.info.serial.clone(),
        fingerprint_sha256: issued.info.fingerprint_sha256.clone(),
        subject: issued.info.subject.clone(),
        not_before: issued.info.not_before.clone(),
        not_after: issued.info.not_after.clone(),
        not_after_unix: not_after,
        signer: issued.info.signer.clone(),
        csr: issued.info.csr.clone(),
        issued_by: admin_name,
        issued_at: rfc3339(unix_now()),
        bindings: plan.binding_names(),
        offboarded_at: None,
    };
    objects.push(record::upsert(client, &rec).await?);

    let (access, whoami, mut vwarn) = verify_access(client, opts, &groups, &plan).await?;
    warnings.append(&mut vwarn);
    Ok(OnboardReport {
        user: opts.user.clone(),
        groups,
        namespace: opts.namespace.clone(),
        dry_run: false,
        certificate: Some(issued.info),
        files,
        objects,
        access,
        whoami,
        warnings,
    })
}

/// What the admin should know about the access asked for, before anything runs.
fn access_warnings(opts: &OnboardOptions) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(group) = &opts.bind_group {
        warnings.push(format!(
            "access is bound to group {group:?}: every certificate carrying that group gets it, and offboarding one \
             member means removing the whole group's binding until that member's certificate expires"
        ));
    }
    let (verbs, resources) = opts.access.matrix();
    if resources
        .iter()
        .any(|r| r.group.is_empty() && r.resource == "secrets")
        && verbs
            .iter()
            .any(|v| v == "list" || v == "watch" || v == "get" || v == "*")
    {
        warnings.push(
            "get/list/watch on secrets reveals every secret's content in the namespace".to_string(),
        );
    }
    warnings
}

/// Who is running this (for the preflight message and the issuance record).
async fn admin_name(client: &kube::Client, resolved: &ResolvedConfig) -> String {
    let admin = verify::whoami(client).await.ok();
    admin
        .map(|w| w.username)
        .or_else(|| resolved.user.clone())
        .unwrap_or_else(|| "the current user".into())
}

/// Whether the namespace exists; a missing one is refused unless `--create-namespace`.
async fn namespace_exists(ns_api: &Api<Namespace>, opts: &OnboardOptions) -> Result<bool> {
    let exists = ns_api
        .get_opt(&opts.namespace)
        .await
        .map_err(|e| OnboardError::api(format!("get namespace {}", opts.namespace), e))?
        .is_some();
    if !exists && !opts.create_namespace {
        return Err(OnboardError::Refused(format!(
            "namespace {:?} does not exist: create it (kubectl create namespace {}) or pass --create-namespace",
            opts.namespace, opts.namespace
        )));
    }
    Ok(exists)
}

/// One SelfSubjectAccessReview per permission the run needs; every missing one is reported at once.
async fn preflight(
    client: &kube::Client,
    opts: &OnboardOptions,
    ns_exists: bool,
    who: String,
) -> Result<()> {
    let needed = preflight::needed_for_onboard(opts, !ns_exists);
    let missing = preflight::missing(client, &needed).await?;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(OnboardError::Preflight { who, missing })
    }
}

/// Creates the namespace (`--create-namespace`; server-side only in a dry run).
async fn create_namespace(ns_api: &Api<Namespace>, opts: &OnboardOptions) -> Result<ObjectChange> {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(opts.namespace.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    let pp = post_params(opts.dry_run);
    ns_api
        .create(&pp, &ns)
        .await
        .map_err(|e| OnboardError::api(format!("create namespace {}", opts.namespace), e))?;
    Ok(ObjectChange {
        kind: "Namespace".into(),
        namespace: None,
        name: opts.namespace.clone(),
        change: if opts.dry_run {
            Change::WouldCreate
        } else {
            Change::Created
        },
    })
}

/// Server-side dry run of everything that can be refused (Role, RoleBinding, CSR), before anything persistent
/// is created. Returns the RBAC plan, and a warning when the namespace does not exist yet (`ns_ready` false: no
/// RBAC dry run).
async fn dry_run_on_server(
    client: &kube::Client,
    opts: &OnboardOptions,
    ns_ready: bool,
    request: Option<&CertificateRequest>,
) -> Result<(rbac::Plan, Option<String>)> {
    let plan = rbac::plan(client, opts).await?;
    let mut warning = None;
    if ns_ready {
        rbac::apply(client, &plan, true).await?;
    } else {
        warning = Some(format!(
            "namespace {} does not exist yet, so the Role/RoleBinding dry run was skipped",
            opts.namespace
        ));
    }
    if let (Some(req), SignerChoice::Csr { .. }) = (request, &opts.signer) {
        let usages = usages_for(opts.key_type);
        csr::create(client, &opts.user, req, opts.ttl, &usages, true).await?;
    }
    Ok((plan, warning))
}

/// The objects a dry run would create or change.
fn dry_run_changes(opts: &OnboardOptions, plan: &rbac::Plan, new_cert: bool) -> Vec<ObjectChange> {
    let mut objects = rbac::changes(plan, true);
    if new_cert {
        objects.push(ObjectChange {
            kind: "CertificateSigningRequest".into(),
            namespace: None,
            name: format!("atrest-onboard-{}-…", record::slug(&opts.user)),
            change: match opts.signer {
                SignerChoice::Csr { .. } => Change::WouldCreate,
                SignerChoice::Local { .. } => Change::Unchanged,
            },
        });
    }
    objects
}

/// Where the run's certificate comes from.
enum CertSource {
    /// The one in the kubeconfig at `--out`, still good.
    Kept(Box<Existing>),
    /// A new key and the request to sign.
    New {
        key: PrivateKey,
        req: CertificateRequest,
    },
}

/// The certificate a run ends with (issued now, or kept), its key and chain.
struct Issued {
    cert: Certificate,
    chain_pem: Vec<u8>,
    key: PrivateKey,
    info: CertificateInfo,
}

/// Signs `req` with the CSR API (create, approve, wait) or the local CA, and checks what came back.
async fn sign(
    client: &kube::Client,
    opts: &OnboardOptions,
    groups: &[String],
    key: PrivateKey,
    req: &CertificateRequest,
) -> Result<Issued> {
    let usages = usages_for(opts.key_type);
    let (chain_pem, csr_name, signer) = match &opts.signer {
        SignerChoice::Csr { timeout } => {
            let name = csr::create(client, &opts.user, req, opts.ttl, &usages, false).await?;
            tracing::info!(csr = %name, "created CertificateSigningRequest");
            csr::approve(client, &name).await?;
            tracing::info!(csr = %name, "approved; waiting for the certificate");
            let pem = csr::wait_for_certificate(client, &name, *timeout).await?;
            (pem, Some(name), SIGNER_NAME.to_string())
        }
        SignerChoice::Local { ca_cert, ca_key } => {
            let ca = CertificateAuthority::load(ca_cert, ca_key)?;
            let cert = ca.sign_csr(req, opts.ttl, &usages)?;
            // Verify the chain right away: a wrong --ca-cert/--ca-key pair fails here.
            cert.verify(std::slice::from_ref(&ca.cert), &[])?;
            (cert.to_pem()?, None, "local".to_string())
        }
    };
    let cert = Certificate::bundle_from_pem(&chain_pem, "the issued certificate")?
        .into_iter()
        .next()
        .ok_or_else(|| OnboardError::BadCertificate("no certificate in the response".into()))?;
    check_certificate(&cert, &key, &opts.user, groups)?;
    let info = CertificateInfo {
        subject: cert.subject(),
        serial: cert.serial_hex(),
        fingerprint_sha256: cert.fingerprint_sha256()?,
        not_before: rfc3339(cert.not_before()?),
        not_after: rfc3339(cert.not_after()?),
        csr: csr_name,
        signer,
        reused: false,
    };
    Ok(Issued {
        cert,
        chain_pem,
        key,
        info,
    })
}

impl Issued {
    /// A certificate that ends earlier than asked (the signer capped it), or does not chain to the kubeconfig's
    /// CA.
    fn warnings(
        &self,
        opts: &OnboardOptions,
        resolved: &ResolvedConfig,
        not_after: i64,
    ) -> Vec<String> {
        let mut warnings = Vec::new();
        let asked_end = unix_now() + opts.ttl.as_secs() as i64;
        // The signer backdates by 5 minutes (signer.go PermissiveSigningPolicy); allow one more minute of slack.
        if !self.info.reused && not_after < asked_end - 6 * 60 {
            warnings.push(format!(
                "the certificate expires {} ({} from now), earlier than the requested --ttl {}: the signer capped it \
                 (kube-controller-manager --cluster-signing-duration, or the CA's own expiry)",
                rfc3339(not_after),
                human_duration(not_after - unix_now()),
                human_duration(opts.ttl.as_secs() as i64)
            ));
        }
        if let Some(ca_pem) = &resolved.cluster.certificate_authority_pem
            && let Ok(roots) = Certificate::bundle_from_pem(ca_pem, "the cluster CA")
            && self.cert.verify(&roots, &[]).is_err()
        {
            warnings.push(
                "the certificate does not chain to the CA in your kubeconfig (the cluster may use a separate client CA)"
                    .to_string(),
            );
        }
        warnings
    }

    /// Files: kubeconfig, key, certificate.
    fn write_files(
        &self,
        opts: &OnboardOptions,
        resolved: &ResolvedConfig,
    ) -> Result<Vec<FileChange>> {
        let key_pem = self.key.to_pem()?;
        let kubeconfig = ClientCertKubeconfig::for_cluster(
            &resolved.cluster,
            &opts.user,
            Some(&opts.namespace),
            self.chain_pem.clone(),
            key_pem.clone(),
        );
        let yaml = kubeconfig.to_yaml()?;
        Ok(vec![
            write_file(&opts.out, yaml.as_bytes(), true, false)?,
            write_file(&opts.key_path(), &key_pem, true, false)?,
            write_file(&opts.cert_path(), &self.chain_pem, false, false)?,
        ])
    }
}

/// Verification: the SubjectAccessReview matrix, and whoami with the new kubeconfig (the user and every group).
/// Any mismatch is an error listing them all.
async fn verify_access(
    client: &kube::Client,
    opts: &OnboardOptions,
    groups: &[String],
    plan: &rbac::Plan,
) -> Result<(
    Vec<verify::AccessCheck>,
    Option<verify::WhoAmI>,
    Vec<String>,
)> {
    let (access, mut failures, warnings) =
        verify::access_matrix(client, opts, &plan.cluster_role_rules).await?;
    let whoami = match verify::whoami_with_kubeconfig(&opts.out).await {
        Ok(w) => {
            if w.username != opts.user {
                failures.push(format!(
                    "the new kubeconfig authenticates as {:?}, not {:?}",
                    w.username, opts.user
                ));
            }
            for g in groups {
                if !w.groups.contains(g) {
                    failures.push(format!("the new kubeconfig's identity lacks group {g:?}"));
                }
            }
            Some(w)
        }
        Err(e) => {
            failures.push(format!("whoami with the new kubeconfig failed: {e}"));
            None
        }
    };
    if !failures.is_empty() {
        tracing::error!("verification failed");
        return Err(OnboardError::Verification(failures));
    }
    Ok((access, whoami, warnings))
}

async fn rollback_namespace(
    api: &Api<Namespace>,
    created: bool,
    name: &str,
    e: OnboardError,
) -> OnboardError {
    if created {
        if let Err(de) = api.delete(name, &Default::default()).await {
            tracing::warn!(namespace = name, error = %de, "could not delete the namespace created by this run");
        } else {
            tracing::info!(
                namespace = name,
                "deleted the namespace this run had created"
            );
        }
    }
    e
}

fn info_from_record(r: &record::IssuanceRecord, reused: bool) -> CertificateInfo {
    CertificateInfo {
        subject: r.subject.clone(),
        serial: r.serial.clone(),
        fingerprint_sha256: r.fingerprint_sha256.clone(),
        not_before: r.not_before.clone(),
        not_after: r.not_after.clone(),
        csr: r.csr.clone(),
        signer: r.signer.clone(),
        reused,
    }
}

/// Checks an issued certificate: it belongs to `key`, CN = user, O = groups (any order).
pub fn check_certificate(
    cert: &Certificate,
    key: &PrivateKey,
    user: &str,
    groups: &[String],
) -> Result<()> {
    if !cert.matches_key(key) {
        return Err(OnboardError::BadCertificate(
            "its public key is not the key generated for this request".into(),
        ));
    }
    if cert.common_name().as_deref() != Some(user) {
        return Err(OnboardError::BadCertificate(format!(
            "subject CN is {:?}, expected {user:?}",
            cert.common_name()
        )));
    }
    let mut want = groups.to_vec();
    want.sort();
    let mut have = cert.organizations();
    have.sort();
    if want != have {
        return Err(OnboardError::BadCertificate(format!(
            "subject O is {have:?}, expected {want:?}"
        )));
    }
    Ok(())
}

/// `kubectl onboard USER --remove`.
#[derive(Debug, Clone)]
pub struct RemoveOptions {
    /// The user.
    pub user: String,
    /// One namespace, or `None` for all namespaces.
    pub namespace: Option<String>,
    /// Server-side dry run only.
    pub dry_run: bool,
    /// How long the residual-access check waits for the deletions to reach the authorizer before it reports
    /// access that remains ([`verify::RBAC_PROPAGATION_WAIT`] by default).
    pub rbac_wait: Duration,
}

/// A certificate that still authenticates after offboarding.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutstandingCertificate {
    /// Serial (hex).
    pub serial: String,
    /// SHA-256 fingerprint.
    pub fingerprint_sha256: String,
    /// Groups it carries.
    pub groups: Vec<String>,
    /// Expiry (RFC 3339).
    pub not_after: String,
    /// Time left, human.
    pub expires_in: String,
}

/// Result of `--remove`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveReport {
    /// The user.
    pub user: String,
    /// True for `--dry-run`.
    pub dry_run: bool,
    /// Bindings and roles deleted or edited.
    pub objects: Vec<ObjectChange>,
    /// Certificates that are still valid.
    pub outstanding: Vec<OutstandingCertificate>,
    /// Access that remains (SubjectAccessReview checks that are still allowed).
    pub still_allowed: Vec<String>,
    /// Things the admin must know (group bindings, bindings not managed by atrest).
    pub warnings: Vec<String>,
}

/// Offboards a user: deletes the atrest-managed RoleBindings naming the user (or removes the user from shared
/// ones) and the atrest-managed Roles no binding uses any more, marks the issuance records, lists the certificates
/// that stay valid, and warns about bindings that still admit them (certificates cannot be revoked).
pub async fn remove(client: &kube::Client, opts: &RemoveOptions) -> Result<RemoveReport> {
    if opts.user.trim().is_empty() {
        return Err(OnboardError::Refused("the user name is empty".into()));
    }
    let needed = preflight::needed_for_remove(opts);
    let missing = preflight::missing(client, &needed).await?;
    if !missing.is_empty() {
        let who = verify::whoami(client)
            .await
            .map(|w| w.username)
            .unwrap_or_else(|_| "the current user".into());
        return Err(OnboardError::Preflight { who, missing });
    }

    let records = record::load_user(client, &opts.user).await?;
    let now = unix_now();
    let valid: Vec<&record::IssuanceRecord> =
        records.iter().filter(|r| r.not_after_unix > now).collect();
    let mut cert_groups: Vec<String> = valid
        .iter()
        .flat_map(|r| r.groups.iter().cloned())
        .collect();
    cert_groups.sort();
    cert_groups.dedup();

    let outcome = rbac::offboard(
        client,
        &opts.user,
        &cert_groups,
        opts.namespace.as_deref(),
        opts.dry_run,
    )
    .await?;
    let mut objects = outcome.objects;
    let mut warnings = outcome.warnings;
    if !opts.dry_run {
        objects
            .extend(record::mark_offboarded(client, &opts.user, opts.namespace.as_deref()).await?);
    }

    let outstanding: Vec<OutstandingCertificate> = valid
        .iter()
        .map(|r| OutstandingCertificate {
            serial: r.serial.clone(),
            fingerprint_sha256: r.fingerprint_sha256.clone(),
            groups: r.groups.clone(),
            not_after: r.not_after.clone(),
            expires_in: human_duration(r.not_after_unix - now),
        })
        .collect();
    if !outstanding.is_empty() {
        warnings.push(format!(
            "Kubernetes cannot revoke client certificates: {} certificate(s) for {:?} stay valid until they \
             expire (see below). From now on they are worth only what RBAC still grants to user {:?}{}",
            outstanding.len(),
            opts.user,
            opts.user,
            if cert_groups.is_empty() {
                String::new()
            } else {
                format!(" or to groups {cert_groups:?} (embedded in the certificate)")
            }
        ));
    }
    let still_allowed = if opts.dry_run {
        vec![]
    } else {
        verify::residual_access(
            client,
            &opts.user,
            &cert_groups,
            &outcome.checked,
            opts.rbac_wait,
        )
        .await?
    };
    Ok(RemoveReport {
        user: opts.user.clone(),
        dry_run: opts.dry_run,
        objects,
        outstanding,
        still_allowed,
        warnings,
    })
}

/// `--list`: the issuance records (all users, or one).
pub async fn list(
    client: &kube::Client,
    user: Option<&str>,
) -> Result<Vec<record::IssuanceRecord>> {
    let mut all = match user {
        Some(u) => record::load_user(client, u).await?,
        None => record::load_all(client).await?,
    };
    all.sort_by(|a, b| (&a.user, a.not_after_unix).cmp(&(&b.user, b.not_after_unix)));
    Ok(all)
}

#[cfg(test)]
mod tests;
