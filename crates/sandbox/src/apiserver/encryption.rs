//! `--encryption-provider-config` (+ `-automatic-reload`): the EncryptionConfiguration's transformers via
//! `atrest_core::config` / `atrest_core::transform`, the KMS health checks, and the reload controller of apiserver
//! `pkg/server/options/encryptionconfig/controller/controller.go`: poll the file, compare the sha256 of its
//! bytes, and swap the transformers only when the new file loads and validates (a bad file keeps the old ones).
//! Without `--encryption-provider-config-automatic-reload=true` the file is read once at start, as upstream.
//!
//! Health checks (upstream `pkg/server/options/encryptionconfig/config.go` `LoadEncryptionConfig`): with automatic
//! reload, or when only KMS v2 providers are configured, a single check `kms-providers` (present even without any
//! KMS provider when reload is on); otherwise one check `kms-provider-<i>` per KMS provider. They are part of
//! `/healthz` and `/readyz`, not `/livez` (`addHealthChecksWithoutLivez` in `pkg/server/options/etcd.go`).
//! The sandbox's probe dials the plugin's unix socket (resolved through the container's mounts): a socket nobody
//! listens on fails the check like upstream's failing `Status` gRPC call; any listening socket passes (the
//! sandbox does not speak the KMS v2 gRPC API, so a data write through a KMS provider still fails).
//!
//! Reload metrics (`pkg/server/options/encryptionconfig/metrics/metrics.go`, served on `/metrics`):
//! `apiserver_encryption_config_controller_automatic_reloads_total{apiserver_id_hash,status}` (1.30+; before:
//! `automatic_reload_success_total` / `automatic_reload_failures_total`) and
//! `apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds{apiserver_id_hash,status}`, the
//! metric the Kubernetes docs name to see "when the new config becomes effective" (kubernetes/website
//! `content/en/docs/tasks/administer-cluster/encrypt-data.md`).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atrest_core::config::{EncryptionConfiguration, GroupResource, ProviderConfiguration};
use atrest_core::transform::EncryptionTransformers;

use super::PathResolver;
use super::store::{Store, ValueTransformer};

/// Transformers from one EncryptionConfiguration, with its KMS health checks and the reload metrics.
pub(crate) struct ConfiguredTransformers {
    transformers: EncryptionTransformers,
    health: KmsHealth,
    metrics: Option<Arc<ReloadMetrics>>,
}

impl ValueTransformer for ConfiguredTransformers {
    fn read(
        &self,
        group: &str,
        resource: &str,
        data: &[u8],
        ad: &[u8],
    ) -> Result<(Vec<u8>, bool), String> {
        let t = self
            .transformers
            .for_resource(&GroupResource::new(group, resource));
        t.read(data, ad)
            .map(|o| (o.plaintext, o.stale))
            .map_err(|e| e.to_string())
    }
    fn write(
        &self,
        group: &str,
        resource: &str,
        plaintext: &[u8],
        ad: &[u8],
    ) -> Result<Vec<u8>, String> {
        let t = self
            .transformers
            .for_resource(&GroupResource::new(group, resource));
        t.write(plaintext, ad).map_err(|e| e.to_string())
    }
    fn encryption(&self) -> Option<&ConfiguredTransformers> {
        Some(self)
    }
}

impl ConfiguredTransformers {
    /// The KMS health checks of this configuration: `(name, result)` in upstream order.
    pub(crate) fn health_checks(&self) -> Vec<(String, Result<(), String>)> {
        self.health.run()
    }

    /// The reload metrics (only with automatic reload).
    pub(crate) fn metrics(&self) -> Option<&ReloadMetrics> {
        self.metrics.as_deref()
    }
}

/// One KMS provider's plugin endpoint.
struct KmsProbe {
    name: String,
    endpoint: String,
}

/// The health checks built from a configuration.
struct KmsHealth {
    /// One `kms-providers` check for all plugins (reload on, or only KMS v2 in use).
    single: bool,
    probes: Vec<KmsProbe>,
    paths: Arc<dyn PathResolver>,
}

impl KmsHealth {
    fn new(config: &EncryptionConfiguration, reload: bool, paths: Arc<dyn PathResolver>) -> Self {
        let mut probes = Vec::new();
        let (mut v1, mut v2) = (false, false);
        for rc in &config.resources {
            for p in &rc.providers {
                if let ProviderConfiguration::Kms(k) = p {
                    if k.is_v2() {
                        v2 = true;
                    } else {
                        v1 = true;
                    }
                    probes.push(KmsProbe {
                        name: k.name.clone(),
                        endpoint: k.endpoint.clone(),
                    });
                }
            }
        }
        KmsHealth {
            single: reload || (v2 && !v1),
            probes,
            paths,
        }
    }

    fn run(&self) -> Vec<(String, Result<(), String>)> {
        let results: Vec<(String, Result<(), String>)> = self
            .probes
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("kms-provider-{i}"), p.check(&*self.paths)))
            .collect();
        if !self.single {
            return results;
        }
        // kmsHealthChecker.Check: every probe in turn, errors aggregated as "<name>: <error>".
        let errors: Vec<String> = results
            .into_iter()
            .filter_map(|(n, r)| r.err().map(|e| format!("{n}: {e}")))
            .collect();
        let r = if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join(", "))
        };
        vec![(KMS_PROVIDERS_CHECK.to_string(), r)]
    }
}

/// `kmsReloadHealthCheckName`.
const KMS_PROVIDERS_CHECK: &str = "kms-providers";

impl KmsProbe {
    /// Dials the plugin's unix socket; the error reads like upstream's failed `Status` call.
    fn check(&self, paths: &dyn PathResolver) -> Result<(), String> {
        let path = self
            .endpoint
            .strip_prefix("unix://")
            .unwrap_or(&self.endpoint);
        let fail = |why: &str| {
            format!(
                "failed to perform status section of the healthz check for KMS Provider {}, error: rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial unix {path}: connect: {why}\"",
                self.name
            )
        };
        let host = paths
            .host_path(Path::new(path))
            .ok_or_else(|| fail("no such file or directory"))?;
        std::os::unix::net::UnixStream::connect(&host)
            .map(|_| ())
            .map_err(|e| {
                fail(&match e.kind() {
                    std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
                    std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                    _ => e.to_string(),
                })
            })
    }
}

/// Successes and failures of automatic reloads (`pkg/server/options/encryptionconfig/metrics/metrics.go`).
#[derive(Default)]
pub(crate) struct ReloadMetrics {
    counts: Mutex<ReloadCounts>,
}

#[derive(Default, Clone, Copy)]
struct ReloadCounts {
    success: u64,
    failure: u64,
    last_success: Option<f64>,
    last_failure: Option<f64>,
}

impl ReloadMetrics {
    fn record(&self, ok: bool) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let now = atrest_core::time::since_epoch().as_secs_f64();
        if ok {
            c.success += 1;
            c.last_success = Some(now);
        } else {
            c.failure += 1;
            c.last_failure = Some(now);
        }
    }

    /// The Prometheus text of the reload metrics as kube-apiserver `minor` names them; `id_hash` is
    /// `sha256:<hex>` of the server identity. Series appear once observed, like upstream vectors.
    pub(crate) fn render(&self, minor: u32, id_hash: &str) -> String {
        let c = *self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let ns = "apiserver_encryption_config_controller";
        let mut s = String::new();
        let mut family = |name: &str, kind: &str, help: &str, series: &[(&str, Option<String>)]| {
            let series: Vec<_> = series
                .iter()
                .filter_map(|(st, v)| v.as_ref().map(|v| (*st, v)))
                .collect();
            if series.is_empty() {
                return;
            }
            s.push_str(&format!(
                "# HELP {ns}_{name} [ALPHA] {help}\n# TYPE {ns}_{name} {kind}\n"
            ));
            for (st, v) in series {
                if st.is_empty() {
                    s.push_str(&format!(
                        "{ns}_{name}{{apiserver_id_hash=\"{id_hash}\"}} {v}\n"
                    ));
                } else {
                    s.push_str(&format!(
                        "{ns}_{name}{{apiserver_id_hash=\"{id_hash}\",status=\"{st}\"}} {v}\n"
                    ));
                }
            }
        };
        let count = |n: u64| (n > 0).then(|| n.to_string());
        if minor >= 30 {
            family(
                "automatic_reloads_total",
                "counter",
                "Total number of reload successes and failures of encryption configuration split by apiserver identity.",
                &[("failure", count(c.failure)), ("success", count(c.success))],
            );
        } else {
            family(
                "automatic_reload_failures_total",
                "counter",
                "Total number of failed automatic reloads of encryption configuration split by apiserver identity.",
                &[("", count(c.failure))],
            );
            family(
                "automatic_reload_success_total",
                "counter",
                "Total number of successful automatic reloads of encryption configuration split by apiserver identity.",
                &[("", count(c.success))],
            );
        }
        let ts = |t: Option<f64>| t.map(|t| format!("{t:e}"));
        family(
            "automatic_reload_last_timestamp_seconds",
            "gauge",
            "Timestamp of the last successful or failed automatic reload of encryption configuration split by apiserver identity.",
            &[
                ("failure", ts(c.last_failure)),
                ("success", ts(c.last_success)),
            ],
        );
        s
    }
}

/// Read the file (through the container's mounts), parse strictly, validate, build transformers and KMS health
/// checks. Errors carry kube-apiserver's wording (`error while parsing file: ...`,
/// `error while building transformers: ...`).
pub(crate) fn load(
    paths: &Arc<dyn PathResolver>,
    container_path: &str,
    metrics: Option<Arc<ReloadMetrics>>,
) -> Result<(Arc<ConfiguredTransformers>, [u8; 32]), String> {
    let bytes = paths
        .read(Path::new(container_path))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        })
        .map_err(|e| format!("error while parsing file: error reading encryption provider configuration file \"{container_path}\": open {container_path}: {e}"))?;
    let hash = openssl::sha::sha256(&bytes);
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("error while parsing file: {container_path}: not UTF-8"))?;
    let config = EncryptionConfiguration::from_text(&text, container_path)
        .map_err(|e| format!("error while parsing file: {e}"))?;
    let t = EncryptionTransformers::from_config(&config)
        .map_err(|e| format!("error while building transformers: {e}"))?;
    let health = KmsHealth::new(&config, metrics.is_some(), paths.clone());
    Ok((
        Arc::new(ConfiguredTransformers {
            transformers: t,
            health,
            metrics,
        }),
        hash,
    ))
}

/// How often the reload controller polls (upstream `EncryptionConfigFileChangePollDuration`: one minute; the
/// sandbox polls every second so tests and demos see a rotation within seconds).
pub(crate) const RELOAD_POLL: Duration = Duration::from_secs(1);

/// The automatic-reload loop (only started with `--encryption-provider-config-automatic-reload=true`); runs until
/// the task is aborted. A changed file is loaded, validated and its KMS health checks must pass before the
/// transformers are swapped; otherwise the old ones stay and a failure is recorded (retried on the next poll).
pub(crate) async fn reload_loop(
    store: Arc<Store>,
    paths: Arc<dyn PathResolver>,
    container_path: String,
    mut hash: [u8; 32],
    metrics: Arc<ReloadMetrics>,
) {
    loop {
        tokio::time::sleep(RELOAD_POLL).await;
        let bytes = match paths.read(Path::new(&container_path)) {
            Ok(b) => b,
            // Upstream's controller counts an unreadable file as a failed reload.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                metrics.record(false);
                tracing::warn!(
                    "failed to reload encryption provider configuration: open {container_path}: permission denied"
                );
                continue;
            }
            Err(_) => continue,
        };
        if openssl::sha::sha256(&bytes) == hash {
            continue;
        }
        let loaded = load(&paths, &container_path, Some(metrics.clone())).and_then(|(t, h)| {
            let failed: Vec<String> = t
                .health_checks()
                .into_iter()
                .filter_map(|(n, r)| r.err().map(|e| format!("{n}: {e}")))
                .collect();
            if failed.is_empty() {
                Ok((t, h))
            } else {
                Err(format!(
                    "health check for new encryption config failed: {}",
                    failed.join(", ")
                ))
            }
        });
        match loaded {
            Ok((t, h)) => {
                store.set_transformer(t);
                hash = h;
                metrics.record(true);
                tracing::info!(file = %container_path, "loaded new encryption provider configuration");
            }
            Err(e) => {
                // Keep the old transformers; retry on the next poll.
                metrics.record(false);
                tracing::warn!("failed to reload encryption provider configuration: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::HostPaths;

    fn kms_config(dir: &Path, sockets: &[(&str, &str)]) -> std::path::PathBuf {
        let mut y = String::from(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources:\n  - secrets\n  providers:\n",
        );
        for (name, sock) in sockets {
            y.push_str(&format!(
                "  - kms:\n      apiVersion: v2\n      name: {name}\n      endpoint: unix://{sock}\n"
            ));
        }
        y.push_str("  - identity: {}\n");
        let p = dir.join("enc.yaml");
        std::fs::write(&p, y).unwrap();
        p
    }

    #[test]
    fn kms_v2_health_is_one_kms_providers_check_that_dials_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&live).unwrap();
        let dead = dir.path().join("dead.sock");
        let paths: Arc<dyn PathResolver> = Arc::new(HostPaths);
        let cfg = kms_config(
            dir.path(),
            &[("a", live.to_str().unwrap()), ("b", dead.to_str().unwrap())],
        );
        let (t, _) = load(&paths, cfg.to_str().unwrap(), None).unwrap();
        let checks = t.health_checks();
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].0, "kms-providers");
        let err = checks[0].1.clone().unwrap_err();
        assert!(
            err.starts_with("kms-provider-1: failed to perform status section of the healthz check for KMS Provider b")
                && err.contains("connect: no such file or directory")
                && !err.contains("kms-provider-0"),
            "{err}"
        );
        let cfg = kms_config(dir.path(), &[("a", live.to_str().unwrap())]);
        let (t, _) = load(&paths, cfg.to_str().unwrap(), None).unwrap();
        assert_eq!(
            t.health_checks(),
            vec![("kms-providers".to_string(), Ok(()))]
        );
    }

    #[test]
    fn reload_metrics_render_per_version() {
        let m = ReloadMetrics::default();
        assert_eq!(m.render(32, "sha256:x"), "", "no series before a reload");
        m.record(true);
        let t = m.render(32, "sha256:x");
        assert!(t.contains("apiserver_encryption_config_controller_automatic_reloads_total{apiserver_id_hash=\"sha256:x\",status=\"success\"} 1\n"), "{t}");
        assert!(t.contains("apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds{apiserver_id_hash=\"sha256:x\",status=\"success\"} 1."), "{t}");
        assert!(!t.contains("status=\"failure\""), "{t}");
        let t = m.render(29, "sha256:x");
        assert!(t.contains("apiserver_encryption_config_controller_automatic_reload_success_total{apiserver_id_hash=\"sha256:x\"} 1\n"), "{t}");
    }
}
