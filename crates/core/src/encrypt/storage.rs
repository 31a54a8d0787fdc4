//! A key-less look at how objects are stored in the API server's etcd, through the API server's own etcd client
//! certificate (from the manifest's `--etcd-*` flags). Only the value prefix is read: `k8s:enc:<provider>:v1:<key>:`
//! (kubernetes/apiserver `pkg/storage/value/encrypt/*`), `k8s\0` protobuf or `{` JSON for identity.
//!
//! A small private reader for `kubectl encrypt` (verify phases and `status` counts); the full per-object scan with
//! decryption is `crate::scan` (etcdcheck).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::{EncryptError, Node, Result};
use crate::fsutil;
use crate::manifest::Manifest;

/// Where the API server's etcd is and how to reach it.
pub(crate) struct EtcdAccess {
    endpoints: Vec<String>,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    pub prefix: String,
}

/// Reads the `--etcd-*` flags and resolves the certificate paths through the pod's mounts under the node root.
pub(crate) fn etcd_access(node: &Node, m: &Manifest) -> Result<EtcdAccess> {
    let f = m.etcd_flags();
    let resolve = |flag: &str, v: &Option<String>| -> Result<PathBuf> {
        let p = v.as_ref().ok_or_else(|| {
            EncryptError::Phase(format!("the manifest has no --{flag}; cannot read etcd"))
        })?;
        let host = m.host_path_for(p).ok_or_else(|| {
            EncryptError::Phase(format!("--{flag}={p} is not inside a hostPath volume"))
        })?;
        Ok(node.host(&host))
    };
    if f.servers.is_empty() {
        return Err(EncryptError::Phase(
            "the manifest has no --etcd-servers; cannot read etcd".into(),
        ));
    }
    Ok(EtcdAccess {
        endpoints: f.servers.clone(),
        ca: resolve("etcd-cafile", &f.cafile)?,
        cert: resolve("etcd-certfile", &f.certfile)?,
        key: resolve("etcd-keyfile", &f.keyfile)?,
        prefix: f.prefix.clone().unwrap_or_else(|| "/registry".into()),
    })
}

async fn connect(etcd: &EtcdAccess) -> Result<etcd_client::Client> {
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|source| {
            EncryptError::from(fsutil::FsError {
                op: "read",
                path: p.clone(),
                source,
            })
        })
    };
    let tls = etcd_client::OpenSslClientConfig::default()
        .ca_cert_pem(&read(&etcd.ca)?)
        .client_cert_pem_and_key(&read(&etcd.cert)?, &read(&etcd.key)?);
    let opts = etcd_client::ConnectOptions::new()
        .with_openssl_tls(tls)
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(30));
    etcd_client::Client::connect(etcd.endpoints.clone(), Some(opts))
        .await
        .map_err(|e| {
            EncryptError::Api(format!(
                "connecting to etcd {}: {e}",
                etcd.endpoints.join(",")
            ))
        })
}

/// Calls `f(key, value)` for every key under `<prefix>/<sub>` in pages of 200 (etcd 3.4 has no streaming reads).
async fn for_each(etcd: &EtcdAccess, sub: &str, mut f: impl FnMut(&[u8], &[u8])) -> Result<()> {
    let mut client = connect(etcd).await?;
    let base = format!("{}/{}", etcd.prefix.trim_end_matches('/'), sub);
    let mut end = base.clone().into_bytes();
    *end.last_mut().expect("non-empty") += 1;
    let mut start = base.into_bytes();
    loop {
        let resp = client
            .get(
                start.clone(),
                Some(
                    etcd_client::GetOptions::new()
                        .with_range(end.clone())
                        .with_limit(200),
                ),
            )
            .await
            .map_err(|e| EncryptError::Api(format!("reading etcd: {e}")))?;
        for kv in resp.kvs() {
            f(kv.key(), kv.value());
        }
        match resp.kvs().last() {
            Some(last) if resp.more() => {
                start = last.key().to_vec();
                start.push(0);
            }
            _ => break,
        }
    }
    Ok(())
}

/// Counts values under the registry prefix whose stored bytes start with `value_prefix`; returns the count and up
/// to five example keys.
pub(crate) async fn count_values_with_prefix(
    etcd: &EtcdAccess,
    value_prefix: &[u8],
) -> Result<(u64, Vec<String>)> {
    let mut count = 0u64;
    let mut examples = Vec::new();
    for_each(etcd, "", |k, v| {
        if v.starts_with(value_prefix) {
            count += 1;
            if examples.len() < 5 {
                examples.push(String::from_utf8_lossy(k).into_owned());
            }
        }
    })
    .await?;
    Ok((count, examples))
}

/// How a value is stored, from its prefix alone: `(storage, key or KMS provider name)`.
pub fn classify(value: &[u8]) -> (String, Option<String>) {
    if let Some(rest) = value.strip_prefix(b"k8s:enc:") {
        let mut parts = rest.splitn(4, |b| *b == b':');
        let provider = parts
            .next()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        let version = parts
            .next()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        let name = parts
            .next()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let storage = if provider == "kms" && version == "v2" {
            "kmsv2".to_string()
        } else {
            provider
        };
        return (storage, name);
    }
    if value.starts_with(b"k8s\0") || value.starts_with(b"{") {
        return ("identity".into(), None);
    }
    ("unknown".into(), None)
}

/// Objects of one resource stored one way.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StorageCount {
    /// Resource (the etcd path segment: `secrets`, `configmaps`).
    pub resource: String,
    /// `identity`, `aescbc`, `aesgcm`, `secretbox`, `kms`, `kmsv2`, `unknown`.
    pub storage: String,
    /// Key name (or KMS provider name).
    pub key: Option<String>,
    /// Number of objects.
    pub count: u64,
}

/// Counts objects per storage and key for each resource (etcd path `<prefix>/<resource>/`).
pub(crate) async fn storage_counts(
    etcd: &EtcdAccess,
    resources: &[String],
) -> Result<Vec<StorageCount>> {
    let mut out = Vec::new();
    for r in resources {
        let mut counts: BTreeMap<(String, Option<String>), u64> = BTreeMap::new();
        for_each(etcd, &format!("{r}/"), |_, v| {
            *counts.entry(classify(v)).or_default() += 1
        })
        .await?;
        out.extend(
            counts
                .into_iter()
                .map(|((storage, key), count)| StorageCount {
                    resource: r.clone(),
                    storage,
                    key,
                    count,
                }),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn prefixes_classify() {
        assert_eq!(
            classify(b"k8s:enc:secretbox:v1:key1:\x01\x02"),
            ("secretbox".into(), Some("key1".into()))
        );
        assert_eq!(
            classify(b"k8s:enc:kms:v2:vault:\x0a"),
            ("kmsv2".into(), Some("vault".into()))
        );
        assert_eq!(classify(b"k8s\x00\x0a\x0d"), ("identity".into(), None));
        assert_eq!(
            classify(b"{\"kind\":\"Secret\"}"),
            ("identity".into(), None)
        );
        assert_eq!(classify(b"garbage"), ("unknown".into(), None));
    }
}
