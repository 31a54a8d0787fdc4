//! A KMS v2 plugin as an [`EnvelopeService`]: the `KeyManagementService` gRPC API of `k8s.io/kms/apis/v2`
//! (`atrest_proto::kms_v2`) on the plugin's unix socket, as kube-apiserver's kms v2 provider calls it
//! (apiserver `pkg/storage/value/encrypt/envelope/kmsv2/grpc_service.go`: `Decrypt` with the wrapped DEK source,
//! the key ID and the annotations stored with the value; `Encrypt` with a fresh DEK source; `Status` polled for
//! health).
//!
//! The transformers are synchronous, so the service runs the gRPC calls on a small runtime of its own and waits
//! for each answer (bounded by the provider's `timeout`); it works from inside or outside another runtime.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use atrest_proto::kms_v2::key_management_service_client::KeyManagementServiceClient;
use atrest_proto::kms_v2::{DecryptRequest, EncryptRequest, StatusRequest};

use super::{EnvelopeDecryptRequest, EnvelopeEncryptResponse, EnvelopeService, random_bytes};

/// A connected KMS v2 plugin.
pub struct KmsPluginService {
    socket: PathBuf,
    timeout: Duration,
    client: KeyManagementServiceClient<tonic::transport::Channel>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// What the plugin's `Status` answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsPluginStatus {
    /// The API version (`v2`, or `v2beta1`).
    pub version: String,
    /// `ok` when healthy.
    pub healthz: String,
    /// The current key ID.
    pub key_id: String,
}

/// The socket path of a KMS `endpoint` (`unix:///path` or `unix:@abstract` are what upstream accepts; the
/// abstract namespace has no path on the node and is refused here).
pub fn kms_socket_path(endpoint: &str) -> Result<PathBuf, String> {
    let rest = endpoint.strip_prefix("unix://").ok_or_else(|| {
        format!("KMS endpoint {endpoint:?} is not unix:///PATH (the only scheme KMS plugins use)")
    })?;
    if !rest.starts_with('/') {
        return Err(format!(
            "KMS endpoint {endpoint:?} is not an absolute socket path (unix:///PATH)"
        ));
    }
    Ok(PathBuf::from(rest))
}

impl KmsPluginService {
    /// Connect to the plugin on `socket` and ask its `Status`, which must say `ok`; every call waits at most
    /// `timeout`.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<(Self, KmsPluginStatus), String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kms-plugin")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the KMS client runtime: {e}"))?;
        let channel = {
            let _in = runtime.enter();
            tonic::transport::Endpoint::from_static("http://kms-plugin")
                .connect_timeout(timeout)
                .timeout(timeout)
                .connect_with_connector_lazy({
                    // Dials the unix socket (the URI is a placeholder).
                    let path = socket.to_path_buf();
                    tower::service_fn(move |_: http::Uri| {
                        let path = path.clone();
                        async move {
                            let s = tokio::net::UnixStream::connect(&path).await?;
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                        }
                    })
                })
        };
        let service = KmsPluginService {
            socket: socket.to_path_buf(),
            timeout,
            client: KeyManagementServiceClient::new(channel),
            runtime: Some(runtime),
        };
        let status = service.status()?;
        if status.healthz != "ok" {
            return Err(format!(
                "KMS plugin on {} is unhealthy: {}",
                socket.display(),
                status.healthz
            ));
        }
        if status.version != "v2" && status.version != "v2beta1" {
            return Err(format!(
                "KMS plugin on {} speaks API version {:?}, not v2",
                socket.display(),
                status.version
            ));
        }
        Ok((service, status))
    }

    /// Run one call on the service's runtime and wait for it.
    fn call<T: Send + 'static>(
        &self,
        what: &str,
        f: impl Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send + 'static,
    ) -> Result<T, String> {
        let runtime = self.runtime.as_ref().ok_or("KMS client runtime stopped")?;
        let (tx, rx) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let _ = tx.send(f.await);
        });
        let fail = |why: String| format!("KMS plugin on {}: {what}: {why}", self.socket.display());
        match rx.recv_timeout(self.timeout + Duration::from_secs(1)) {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(s)) => Err(fail(format!("{} ({:?})", s.message(), s.code()))),
            Err(_) => Err(fail(format!("no answer within {:?}", self.timeout))),
        }
    }

    /// The plugin's `Status`.
    pub fn status(&self) -> Result<KmsPluginStatus, String> {
        let mut client = self.client.clone();
        let r = self.call(
            "Status",
            async move { client.status(StatusRequest {}).await },
        )?;
        Ok(KmsPluginStatus {
            version: r.version,
            healthz: r.healthz,
            key_id: r.key_id,
        })
    }
}

/// A request ID, as upstream sends a UUID per call (for the plugin's logs).
fn uid() -> String {
    let mut b = [0u8; 16];
    if random_bytes(&mut b).is_err() {
        return String::new();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl EnvelopeService for KmsPluginService {
    fn decrypt(&self, request: &EnvelopeDecryptRequest<'_>) -> Result<Vec<u8>, String> {
        let req = DecryptRequest {
            ciphertext: request.ciphertext.to_vec(),
            uid: uid(),
            key_id: request.key_id.to_string(),
            annotations: request
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let mut client = self.client.clone();
        let r = self.call("Decrypt", async move { client.decrypt(req).await })?;
        Ok(r.plaintext)
    }

    fn encrypt(&self, plaintext: &[u8]) -> Result<EnvelopeEncryptResponse, String> {
        let req = EncryptRequest {
            plaintext: plaintext.to_vec(),
            uid: uid(),
        };
        let mut client = self.client.clone();
        let r = self.call("Encrypt", async move { client.encrypt(req).await })?;
        Ok(EnvelopeEncryptResponse {
            ciphertext: r.ciphertext,
            key_id: r.key_id,
            annotations: r.annotations.into_iter().collect::<BTreeMap<_, _>>(),
        })
    }
}

impl Drop for KmsPluginService {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed inside another runtime; let it wind down on its own.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_map_to_socket_paths() {
        assert_eq!(
            kms_socket_path("unix:///var/run/kms.sock").unwrap(),
            PathBuf::from("/var/run/kms.sock")
        );
        assert!(kms_socket_path("unix:@abstract").is_err());
        assert!(kms_socket_path("tcp://127.0.0.1:1").is_err());
    }

    #[test]
    fn a_missing_plugin_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("none.sock");
        let err = KmsPluginService::connect(&sock, Duration::from_secs(2))
            .err()
            .unwrap();
        assert!(err.contains("none.sock") && err.contains("Status"), "{err}");
    }
}
