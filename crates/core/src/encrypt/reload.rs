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
//!
//! Every series carries `apiserver_id_hash`, the sha256 of the server's identity (`metrics.go` `getHash`), and on
//! an HA control plane the `/metrics` of another API server (through a load balancer) says nothing about this
//! node's: only the series of this node's server count ([`apiserver_id_hash`]), read from it directly when its
//! address is known. The identity is `apiserver-` + base32 of the first 16 bytes of sha256 over the
//! length-prefixed hostname and `kube-apiserver` (apiserver `pkg/server/config.go` `NewConfig`, feature
//! APIServerIdentity, on by default since 1.26); static pods run in the node's UTS namespace, so the hostname is
//! the node's.

use std::path::PathBuf;
use std::time::Duration;

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
    /// `apiserver_id_hash` values of series that were skipped (another API server's).
    pub other_servers: Vec<String>,
}

/// The API server identity kube-apiserver derives from its host's name (apiserver `pkg/server/config.go`
/// `NewConfig`): `apiserver-` + lower-case unpadded base32 of the first 16 bytes of sha256 over the hostname and
/// `kube-apiserver`, each prefixed by its length as a big-endian u16 (cryptobyte `AddUint16LengthPrefixed`).
pub fn apiserver_id(hostname: &str) -> String {
    let mut data = Vec::new();
    for part in [hostname.as_bytes(), b"kube-apiserver"] {
        data.extend_from_slice(&(part.len() as u16).to_be_bytes());
        data.extend_from_slice(part);
    }
    let digest = openssl::sha::sha256(&data);
    format!("apiserver-{}", base32_lower(&digest[..16]))
}

/// `apiserver_id_hash` of the server on `hostname`: `sha256:<hex>` of its identity (`metrics.go` `getHash`).
pub fn apiserver_id_hash(hostname: &str) -> String {
    super::config_hash(apiserver_id(hostname).as_bytes())
}

/// RFC 4648 base32 without padding, lower case.
fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The value of label `name` in `a="x",b="y"` (values carry no quotes or commas here: hashes and statuses).
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

impl ReloadEvidence {
    /// Reads the reload metrics from Prometheus text; with `id_hash`, only the series of that API server.
    pub fn parse(text: &str, id_hash: Option<&str>) -> ReloadEvidence {
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
            if let Some(want) = id_hash {
                let have = label(labels, "apiserver_id_hash").unwrap_or_default();
                if have != want {
                    if !ev.other_servers.iter().any(|o| o == have) {
                        ev.other_servers.push(have.to_string());
                    }
                    continue;
                }
            }
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

/// `GET /metrics` of the server behind `client`, keeping only the series of the server `id_hash` (when given).
pub async fn reload_evidence(
    client: &Client,
    id_hash: Option<&str>,
) -> Result<ReloadEvidence, String> {
    let req = http::Request::get("/metrics")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    client
        .request_text(req)
        .await
        .map(|t| ReloadEvidence::parse(&t, id_hash))
        .map_err(|e| format!("/metrics: {e}"))
}

/// Waits until the server `id_hash` reloaded the config `hash` written at `written`; `Err` says why not.
async fn wait_reloaded(
    client: &Client,
    id_hash: &str,
    hash: &str,
    written: f64,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> Result<(), String> {
    let look = || async move {
        let ev = match reload_evidence(client, Some(id_hash)).await {
            Ok(ev) => ev,
            Err(e) => return Look::Pending(e),
        };
        if ev
            == (ReloadEvidence {
                other_servers: ev.other_servers.clone(),
                ..Default::default()
            })
            && !ev.other_servers.is_empty()
        {
            return Look::Pending(format!(
                "/metrics was answered by another API server (apiserver_id_hash {}), not this node's ({id_hash})",
                ev.other_servers.join(", ")
            ));
        }
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
    let id_hash = apiserver_id_hash(&node.hostname());
    let id_hash = id_hash.as_str();
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
    let written = crate::time::since_epoch().as_secs_f64();
    node.write_config(text.expose().as_bytes())?;
    config::load(&file)?;
    progress(&format!(
        "wrote {}; kube-apiserver runs with automatic reload: waiting up to {}s for it to reload the file (no restart)",
        node.config.display(),
        timeout.as_secs()
    ));
    match wait_reloaded(client, id_hash, &hash, written, timeout, progress).await {
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
                    let bytes = fsutil::read(b)?;
                    let restored_at = crate::time::since_epoch().as_secs_f64();
                    node.write_config(&bytes)?;
                    // Only a server that loaded our file (it may have after the timeout) must reload the old one;
                    // one that rejected ours still runs the old config and sees no change.
                    let ours_loaded = reload_evidence(client, Some(id_hash))
                        .await
                        .is_ok_and(|ev| ev.loaded(&hash, written) == Some(true));
                    if ours_loaded {
                        wait_reloaded(
                            client,
                            id_hash,
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
        let ev = ReloadEvidence::parse(text, None);
        assert_eq!(ev.last_success, Some(1_700_000_001.0));
        assert_eq!(ev.last_failure, Some(1_700_000_000.5));
        assert_eq!(ev.config_hash, None);
        assert_eq!(ev.loaded("sha256:b", 1_700_000_000.0), Some(true));
        assert_eq!(ev.loaded("sha256:b", 1_700_000_002.0), None);
        let failed = ReloadEvidence {
            last_failure: Some(10.0),
            last_success: Some(5.0),
            ..Default::default()
        };
        assert_eq!(failed.loaded("sha256:b", 8.0), Some(false));
        // 1.34+: the hash decides; a success timestamp for another file does not count.
        let ev = ReloadEvidence::parse(
            "apiserver_encryption_config_controller_last_config_info{apiserver_id_hash=\"sha256:a\",hash=\"sha256:c\"} 1\n\
             apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds{apiserver_id_hash=\"sha256:a\",status=\"success\"} 20\n",
            None,
        );
        assert_eq!(ev.config_hash.as_deref(), Some("sha256:c"));
        assert_eq!(ev.loaded("sha256:c", 30.0), Some(true));
        assert_eq!(ev.loaded("sha256:b", 10.0), None);
    }

    #[test]
    fn apiserver_identity_as_upstream() {
        // k8s.io/apiserver v0.34.4 server.NewConfig(...).APIServerID after SetHostnameFuncForTests(hostname).
        assert_eq!(
            apiserver_id("node1"),
            "apiserver-hbz46noag6fulempxd2cbk6bvq"
        );
        assert_eq!(
            apiserver_id("cp-1.example.com"),
            "apiserver-lsfukkfgkdk2xizut5vnak76ni"
        );
        assert_eq!(
            apiserver_id_hash("node1"),
            crate::encrypt::config_hash(b"apiserver-hbz46noag6fulempxd2cbk6bvq")
        );
        assert_eq!(base32_lower(b"foobar"), "mzxw6ytboi");
    }

    #[test]
    fn only_the_checked_servers_series_count() {
        // Through a load balancer: the answer holds another server's reload (after our write) and none of ours.
        let text = "apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds{apiserver_id_hash=\"sha256:other\",status=\"success\"} 50\n\
            apiserver_encryption_config_controller_last_config_info{apiserver_id_hash=\"sha256:other\",hash=\"sha256:new\"} 1\n";
        assert_eq!(
            ReloadEvidence::parse(text, None).loaded("sha256:new", 40.0),
            Some(true),
            "unfiltered, another server's reload looks like ours"
        );
        let ev = ReloadEvidence::parse(text, Some("sha256:mine"));
        assert_eq!(ev.loaded("sha256:new", 40.0), None);
        assert_eq!(ev.other_servers, ["sha256:other"]);
        let both = format!(
            "{text}apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds{{apiserver_id_hash=\"sha256:mine\",status=\"failure\"}} 45\n"
        );
        let ev = ReloadEvidence::parse(&both, Some("sha256:mine"));
        assert_eq!(ev.loaded("sha256:new", 40.0), Some(false), "ours failed");
    }
}
