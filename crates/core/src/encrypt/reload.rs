//! Config changes on a kube-apiserver running with `--encryption-provider-config-automatic-reload=true`: write the
//! file and wait until the server reports it reloaded it, instead of restarting the static pod.
//!
//! The evidence is the server's own reload metrics on `/metrics` (kubernetes/apiserver
//! `pkg/server/options/encryptionconfig/metrics/metrics.go`): from 1.34
//! `apiserver_encryption_config_controller_last_config_info{hash="sha256:<hex>"}` names the loaded file's hash
//! exactly (the same `computeEncryptionConfigHash` as [`super::config_hash`]); before that
//! `apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds{status="success"}` later than
//! our write says the file we wrote was loaded — the metric the Kubernetes docs name for "when the new config
//! becomes effective" (kubernetes/website `content/en/docs/tasks/administer-cluster/encrypt-data.md`). A
//! `status="failure"` after our write means the server rejected the file and keeps the old config (the reload
//! controller only swaps transformers that load, validate and pass their KMS health check,
//! `pkg/server/options/encryptionconfig/controller/controller.go`). Upstream polls the file once a minute.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube::Client;

use super::{ConfigText, EncryptError, Look, Node, Result, poll, readyz};
use crate::config;
use crate::fsutil;

const METRIC: &str = "apiserver_encryption_config_controller_";

/// What a server's `/metrics` says about its encryption config reloads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReloadEvidence {
    /// `last_config_info{hash}` (1.34+).
    pub config_hash: Option<String>,
    /// `automatic_reload_last_timestamp_seconds{status="success"}`.
    pub last_success: Option<f64>,
    /// `automatic_reload_last_timestamp_seconds{status="failure"}`.
    pub last_failure: Option<f64>,
}

/// The value of label `name` in `a="x",b="y"` (values carry no quotes or commas here: hashes and statuses).
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

impl ReloadEvidence {
    /// Reads the reload metrics from Prometheus text.
    pub fn parse(text: &str) -> ReloadEvidence {
        let mut ev = ReloadEvidence::default();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(METRIC) else {
                continue;
            };
            let Some((name, rest)) = rest.split_once('{') else {
                continue;
            };
            let Some((labels, value)) = rest.split_once('}') else {
                continue;
            };
            let value = value.trim().parse::<f64>().ok();
            match name {
                "last_config_info" if value.is_some_and(|v| v > 0.0) => {
                    ev.config_hash = label(labels, "hash").map(str::to_string);
                }
                "automatic_reload_last_timestamp_seconds" => match label(labels, "status") {
                    Some("success") => ev.last_success = value,
                    Some("failure") => ev.last_failure = value,
                    _ => {}
                },
                _ => {}
            }
        }
        ev
    }

    /// Whether the server loaded the config with `hash`, written at `written` (unix seconds): `Some(true)` yes,
    /// `Some(false)` it failed to load it, `None` not yet.
    pub fn loaded(&self, hash: &str, written: f64) -> Option<bool> {
        if let Some(h) = &self.config_hash {
            if h == hash {
                return Some(true);
            }
        } else if self.last_success.is_some_and(|t| t >= written) {
            return Some(true);
        }
        if self.last_failure.is_some_and(|t| t >= written)
            && self.last_success.is_none_or(|s| s < written)
        {
            return Some(false);
        }
        None
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// `GET /metrics` of the server behind `client`.
pub async fn reload_evidence(client: &Client) -> Result<ReloadEvidence, String> {
    let req = http::Request::get("/metrics")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    client
        .request_text(req)
        .await
        .map(|t| ReloadEvidence::parse(&t))
        .map_err(|e| format!("/metrics: {e}"))
}

/// Waits until the server reloaded the config `hash` written at `written`; `Err` says why not.
async fn wait_reloaded(
    client: &Client,
    hash: &str,
    written: f64,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> Result<(), String> {
    let look = || async move {
        let ev = match reload_evidence(client).await {
            Ok(ev) => ev,
            Err(e) => return Look::Pending(e),
        };
        match ev.loaded(hash, written) {
            Some(true) => match readyz(client).await {
                Ok(()) => Look::Done,
                Err(e) => Look::Pending(e),
            },
            Some(false) => Look::Failed("kube-apiserver failed to reload the new config (apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds{status=\"failure\"}) and keeps the previous one".into()),
            None => Look::Pending("kube-apiserver has not reloaded the config yet (it polls the file; upstream once a minute)".to_string()),
        }
    };
    poll(
        timeout,
        progress,
        |secs, last| {
            format!(
                "kube-apiserver did not report reloading the config within {secs}s (last: {last})"
            )
        },
        look,
    )
    .await
}

/// Writes `cfg` (0600, atomically, after a backup) and waits until the server reloaded it; on a failure or timeout
/// the previous file is put back byte for byte, the reload of it is awaited, and [`EncryptError::ReloadRolledBack`]
/// is returned. No restart: the manifest is not touched.
pub async fn reload_with_config(
    node: &Node,
    client: &Client,
    text: &ConfigText,
    timeout: Duration,
    what: &str,
    progress: &dyn Fn(&str),
) -> Result<()> {
    let file = node.config_file();
    let hash = text.sha256();
    let current = std::fs::read(&file).ok();
    if current.as_deref() == Some(text.expose().as_bytes()) {
        // Written before (an interrupted run): the server has reloaded it unless it failed to; check readiness.
        return readyz(client)
            .await
            .map_err(|reason| EncryptError::Api(format!("{what}: {reason}")));
    }
    let backup: Option<PathBuf> = if file.exists() {
        Some(node.backup(&file)?)
    } else {
        None
    };
    if let Some(b) = &backup {
        progress(&format!(
            "backed up {} to {}",
            node.config.display(),
            b.display()
        ));
    }
    let written = unix_now();
    fsutil::write_private(&file, text.expose().as_bytes())?;
    config::load(&file)?;
    progress(&format!(
        "wrote {}; kube-apiserver runs with automatic reload: waiting up to {}s for it to reload the file (no restart)",
        node.config.display(),
        timeout.as_secs()
    ));
    match wait_reloaded(client, &hash, written, timeout, progress).await {
        Ok(()) => {
            progress(&format!("kube-apiserver reloaded {hash}"));
            Ok(())
        }
        Err(reason) => {
            progress(&format!(
                "{what} failed: {reason}; restoring the previous config"
            ));
            let recovered = match &backup {
                Some(b) => {
                    let bytes = std::fs::read(b).map_err(|source| fsutil::FsError {
                        op: "read",
                        path: b.clone(),
                        source,
                    })?;
                    let restored_at = unix_now();
                    fsutil::write_private(&file, &bytes)?;
                    // Only a server that loaded our file (it may have after the timeout) must reload the old one;
                    // one that rejected ours still runs the old config and sees no change.
                    let ours_loaded = reload_evidence(client)
                        .await
                        .is_ok_and(|ev| ev.loaded(&hash, written) == Some(true));
                    if ours_loaded {
                        wait_reloaded(
                            client,
                            &super::config_hash(&bytes),
                            restored_at,
                            timeout.max(Duration::from_secs(90)),
                            progress,
                        )
                        .await
                        .is_ok()
                    } else {
                        readyz(client).await.is_ok()
                    }
                }
                None => readyz(client).await.is_ok(),
            };
            Err(EncryptError::ReloadRolledBack {
                what: what.to_string(),
                reason,
                config_backup: backup,
                recovered,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_from_the_metrics_text() {
        let text = "# HELP apiserver_encryption_config_controller_automatic_reloads_total [ALPHA] x\n\
            apiserver_encryption_config_controller_automatic_reloads_total{apiserver_id_hash=\"sha256:a\",status=\"success\"} 2\n\
            apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds{apiserver_id_hash=\"sha256:a\",status=\"failure\"} 1.7000000005e+09\n\
            apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds{apiserver_id_hash=\"sha256:a\",status=\"success\"} 1.700000001e+09\n";
        let ev = ReloadEvidence::parse(text);
        assert_eq!(ev.last_success, Some(1_700_000_001.0));
        assert_eq!(ev.last_failure, Some(1_700_000_000.5));
        assert_eq!(ev.config_hash, None);
        assert_eq!(ev.loaded("sha256:b", 1_700_000_000.0), Some(true));
        assert_eq!(ev.loaded("sha256:b", 1_700_000_002.0), None);
        let failed = ReloadEvidence {
            last_failure: Some(10.0),
            last_success: Some(5.0),
            config_hash: None,
        };
        assert_eq!(failed.loaded("sha256:b", 8.0), Some(false));
        // 1.34+: the hash decides; a success timestamp for another file does not count.
        let ev = ReloadEvidence::parse(
            "apiserver_encryption_config_controller_last_config_info{apiserver_id_hash=\"sha256:a\",hash=\"sha256:c\"} 1\n\
             apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds{apiserver_id_hash=\"sha256:a\",status=\"success\"} 20\n",
        );
        assert_eq!(ev.config_hash.as_deref(), Some("sha256:c"));
        assert_eq!(ev.loaded("sha256:c", 30.0), Some(true));
        assert_eq!(ev.loaded("sha256:b", 10.0), None);
    }
}
