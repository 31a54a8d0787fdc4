//! The kubeconfig file format: building, writing and reading back a client-certificate kubeconfig.
//!
//! Reading and merging kubeconfigs lives in [`crate::client`] (on top of kube-rs `kube::config::Kubeconfig`).
//! Here: [`ClientCertKubeconfig`] builds the file `kubeadm kubeconfig user` writes (cluster with server and
//! `certificate-authority-data`, user with `client-certificate-data`/`client-key-data`, context `USER@CLUSTER`,
//! set as `current-context`; see kubernetes `cmd/kubeadm/app/util/kubeconfig/kubeconfig.go` `CreateWithCerts`),
//! plus the context namespace, and writes it 0600 through [`crate::fsutil::write_private`];
//! [`client_credentials`] reads the certificate and key of such a file back (kube-rs `Kubeconfig`).

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use kube::config::Kubeconfig;
use secrecy::ExposeSecret as _;
use serde::Serialize;

use crate::client::ClusterInfo;

/// Errors writing a kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigWriteError {
    /// A required field is empty.
    #[error("cannot build a kubeconfig: {0}")]
    Invalid(String),
    /// Serialization failed.
    #[error("cannot serialize the kubeconfig: {0}")]
    Serialize(String),
    /// The file could not be written.
    #[error(transparent)]
    Write(#[from] crate::fsutil::FsError),
}

/// A kubeconfig that authenticates with a client certificate. `Debug` never shows the key.
#[derive(Clone)]
pub struct ClientCertKubeconfig {
    /// Cluster entry name (e.g. `kubernetes`).
    pub cluster_name: String,
    /// API server URL.
    pub server: String,
    /// CA bundle (PEM) for the server; written as `certificate-authority-data`.
    pub certificate_authority_pem: Option<Vec<u8>>,
    /// `tls-server-name`, if the admin's cluster entry has one.
    pub tls_server_name: Option<String>,
    /// `insecure-skip-tls-verify` (only when the admin's cluster entry has it and no CA).
    pub insecure_skip_tls_verify: bool,
    /// `proxy-url`, if the admin's cluster entry has one (the user reaches the cluster the same way).
    pub proxy_url: Option<String>,
    /// User entry name (the certificate's CN).
    pub user_name: String,
    /// Namespace of the context.
    pub namespace: Option<String>,
    /// Client certificate chain (PEM).
    pub client_certificate_pem: Vec<u8>,
    /// Client private key (PEM). Key material: only ever written to a 0600 file.
    pub client_key_pem: Vec<u8>,
}

impl fmt::Debug for ClientCertKubeconfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertKubeconfig")
            .field("cluster_name", &self.cluster_name)
            .field("server", &self.server)
            .field("has_ca", &self.certificate_authority_pem.is_some())
            .field("user_name", &self.user_name)
            .field("namespace", &self.namespace)
            .field("client_key_pem", &"<redacted>")
            .finish()
    }
}

// The kubeconfig layout (field order as `kubectl config view` prints it).
#[derive(Serialize)]
struct File<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    clusters: Vec<NamedCluster<'a>>,
    contexts: Vec<NamedContext<'a>>,
    #[serde(rename = "current-context")]
    current_context: &'a str,
    preferences: Empty,
    users: Vec<NamedUser<'a>>,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct NamedCluster<'a> {
    name: &'a str,
    cluster: ClusterEntry<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterEntry<'a> {
    server: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_authority_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_server_name: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    insecure_skip_tls_verify: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy_url: Option<&'a str>,
}

#[derive(Serialize)]
struct NamedContext<'a> {
    name: &'a str,
    context: ContextEntry<'a>,
}

#[derive(Serialize)]
struct ContextEntry<'a> {
    cluster: &'a str,
    user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
}

#[derive(Serialize)]
struct NamedUser<'a> {
    name: &'a str,
    user: UserEntry,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct UserEntry {
    client_certificate_data: String,
    client_key_data: String,
}

impl ClientCertKubeconfig {
    /// A kubeconfig for `user` on the admin's resolved cluster (server, CA, tls-server-name copied).
    pub fn for_cluster(
        cluster: &ClusterInfo,
        user: &str,
        namespace: Option<&str>,
        client_certificate_pem: Vec<u8>,
        client_key_pem: Vec<u8>,
    ) -> Self {
        Self {
            cluster_name: cluster.name.clone(),
            server: cluster.server.clone(),
            certificate_authority_pem: cluster.certificate_authority_pem.clone(),
            tls_server_name: cluster.tls_server_name.clone(),
            insecure_skip_tls_verify: cluster.insecure_skip_tls_verify
                && cluster.certificate_authority_pem.is_none(),
            proxy_url: cluster.proxy_url.clone(),
            user_name: user.to_string(),
            namespace: namespace.map(str::to_string),
            client_certificate_pem,
            client_key_pem,
        }
    }

    /// The context name, `USER@CLUSTER` (as kubeadm).
    pub fn context_name(&self) -> String {
        format!("{}@{}", self.user_name, self.cluster_name)
    }

    /// The YAML text. It contains the private key: write it only with [`Self::write`].
    pub fn to_yaml(&self) -> Result<String, KubeconfigWriteError> {
        for (what, value) in [
            ("cluster name", &self.cluster_name),
            ("server", &self.server),
            ("user name", &self.user_name),
        ] {
            if value.trim().is_empty() {
                return Err(KubeconfigWriteError::Invalid(format!(
                    "the {what} is empty"
                )));
            }
        }
        if self.client_certificate_pem.is_empty() || self.client_key_pem.is_empty() {
            return Err(KubeconfigWriteError::Invalid(
                "the client certificate or key is empty".into(),
            ));
        }
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let context = self.context_name();
        let file = File {
            api_version: "v1",
            kind: "Config",
            clusters: vec![NamedCluster {
                name: &self.cluster_name,
                cluster: ClusterEntry {
                    server: &self.server,
                    certificate_authority_data: self.certificate_authority_pem.as_deref().map(b64),
                    tls_server_name: self.tls_server_name.as_deref(),
                    insecure_skip_tls_verify: self.insecure_skip_tls_verify,
                    proxy_url: self.proxy_url.as_deref(),
                },
            }],
            contexts: vec![NamedContext {
                name: &context,
                context: ContextEntry {
                    cluster: &self.cluster_name,
                    user: &self.user_name,
                    namespace: self.namespace.as_deref(),
                },
            }],
            current_context: &context,
            preferences: Empty {},
            users: vec![NamedUser {
                name: &self.user_name,
                user: UserEntry {
                    client_certificate_data: b64(&self.client_certificate_pem),
                    client_key_data: b64(&self.client_key_pem),
                },
            }],
        };
        // The serializer's error names a field at most, never the key bytes.
        serde_saphyr::to_string(&file).map_err(|e| KubeconfigWriteError::Serialize(e.to_string()))
    }

    /// Writes the kubeconfig atomically, mode 0600 from creation on.
    pub fn write(&self, path: &Path) -> Result<(), KubeconfigWriteError> {
        let yaml = self.to_yaml()?;
        crate::fsutil::write_private(path, yaml.as_bytes())?;
        Ok(())
    }
}

/// The current context's client certificate chain and key (PEM, from `client-certificate-data` and
/// `client-key-data`) of the kubeconfig at `path`; `None` when the file cannot be read or has no such user.
pub fn client_credentials(path: &Path) -> Option<(Vec<u8>, Vec<u8>)> {
    let file = Kubeconfig::read_from(path).ok()?;
    let ctx = file.current_context.as_ref()?;
    let user_name = file
        .contexts
        .iter()
        .find(|c| &c.name == ctx)?
        .context
        .as_ref()?
        .user
        .clone()?;
    let user = file
        .auth_infos
        .iter()
        .find(|u| u.name == user_name)?
        .auth_info
        .as_ref()?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let cert = b64.decode(user.client_certificate_data.as_ref()?).ok()?;
    let key = b64
        .decode(user.client_key_data.as_ref()?.expose_secret())
        .ok()?;
    Some((cert, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ConfigFlags, KubeconfigEnv};
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> ClientCertKubeconfig {
        ClientCertKubeconfig::for_cluster(
            &ClusterInfo {
                name: "kubernetes".into(),
                server: "https://127.0.0.1:6443".into(),
                certificate_authority_pem: Some(
                    b"-----BEGIN CERTIFICATE-----\nY2E=\n-----END CERTIFICATE-----\n".to_vec(),
                ),
                tls_server_name: Some("kubernetes".into()),
                insecure_skip_tls_verify: true,
                proxy_url: Some("http://proxy.example:3128".into()),
            },
            "john",
            Some("marketing"),
            b"-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n".to_vec(),
            b"-----BEGIN PRIVATE KEY-----\na2V5\n-----END PRIVATE KEY-----\n".to_vec(),
        )
    }

    #[test]
    fn debug_redacts_the_key() {
        let d = format!("{:?}", sample());
        assert!(
            !d.contains("PRIVATE KEY") && d.contains("<redacted>"),
            "{d}"
        );
    }

    #[tokio::test]
    async fn written_kubeconfig_is_private_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("john.kubeconfig");
        let kc = sample();
        kc.write(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Read back through the same path every plugin uses.
        let f = ConfigFlags {
            kubeconfig: Some(path.clone()),
            ..Default::default()
        };
        let r = f.resolve_with(&KubeconfigEnv::default()).await.unwrap();
        assert_eq!(r.context, "john@kubernetes");
        assert_eq!(r.user.as_deref(), Some("john"));
        assert_eq!(r.namespace, "marketing");
        assert_eq!(r.cluster.server, "https://127.0.0.1:6443");
        assert_eq!(r.cluster.tls_server_name.as_deref(), Some("kubernetes"));
        assert_eq!(
            r.proxy.map(|p| p.url.to_string()).as_deref(),
            Some("http://proxy.example:3128/")
        );
        // CA present, so insecure-skip-tls-verify is not carried over.
        assert!(!r.cluster.insecure_skip_tls_verify);
        assert_eq!(
            r.cluster.certificate_authority_pem,
            kc.certificate_authority_pem
        );
        let user = r
            .kubeconfig
            .auth_infos
            .iter()
            .find(|u| u.name == "john")
            .unwrap()
            .auth_info
            .clone()
            .unwrap();
        let cert = base64::engine::general_purpose::STANDARD
            .decode(user.client_certificate_data.unwrap())
            .unwrap();
        assert_eq!(cert, kc.client_certificate_pem);
        // Overwrite keeps 0600.
        kc.write(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn empty_fields_are_refused() {
        let mut kc = sample();
        kc.user_name = String::new();
        assert!(kc.to_yaml().unwrap_err().to_string().contains("user name"));
        let mut kc = sample();
        kc.client_key_pem.clear();
        assert!(kc.to_yaml().unwrap_err().to_string().contains("key"));
    }
    #[test]
    fn credentials_read_back_from_the_written_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("john.kubeconfig");
        let kc = sample();
        kc.write(&path).unwrap();
        let (cert, key) = client_credentials(&path).unwrap();
        assert_eq!(cert, kc.client_certificate_pem);
        assert_eq!(key, kc.client_key_pem);
        // Another current context, or no file: nothing.
        let other = std::fs::read_to_string(&path).unwrap().replace(
            "current-context: john@kubernetes",
            "current-context: nobody",
        );
        std::fs::write(&path, other).unwrap();
        assert!(client_credentials(&path).is_none());
        assert!(client_credentials(&dir.path().join("missing")).is_none());
    }
}
