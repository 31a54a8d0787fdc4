//! A key-less look at how objects are stored in the API server's etcd, through the API server's own etcd client
//! certificate (from the manifest's `--etcd-*` flags): `kubectl encrypt status` counts per resource, storage and
//! key, and the verify phase of rotate/disable proves that no object uses a retired key (or any encryption).
//!
//! The reads go through the one etcd read path, [`crate::etcd::EtcdReader`] (one revision, pages of
//! [`DEFAULT_PAGE_SIZE`] halved while a page is larger than the receive limit, so values up to etcd's 1.5 MiB
//! request limit are fine), and each value is classified by its prefix alone with [`transform::classify`], as
//! `kubectl etcdcheck` does without keys.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::{EncryptError, Node, Result};
use crate::etcd::{DEFAULT_PAGE_SIZE, EtcdConfig, EtcdReader, prefix_range_end};
use crate::manifest::Manifest;
use crate::transform::{self, Classification, ENCRYPTED_PREFIX, StorageKind};

/// Where the API server's etcd is and how to reach it.
pub(crate) struct EtcdAccess {
    config: EtcdConfig,
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
        config: EtcdConfig {
            endpoints: f.servers.clone(),
            cacert: resolve("etcd-cafile", &f.cafile)?,
            cert: resolve("etcd-certfile", &f.certfile)?,
            key: resolve("etcd-keyfile", &f.keyfile)?,
            dial_timeout: Duration::from_secs(5),
        },
        prefix: f.prefix.clone().unwrap_or_else(|| "/registry".into()),
    })
}

/// Calls `f(key, classification, value)` for every key under `<prefix>/<sub>`, page by page at one revision.
async fn for_each(
    etcd: &EtcdAccess,
    sub: &str,
    mut f: impl FnMut(&[u8], &Classification, &[u8]),
) -> Result<()> {
    let reader = EtcdReader::connect(&etcd.config).await?;
    let start = format!("{}/{}", etcd.prefix.trim_end_matches('/'), sub).into_bytes();
    let end = prefix_range_end(&start);
    let mut pager = reader.pages(start, end, DEFAULT_PAGE_SIZE);
    crate::scan::each_page(&mut pager, |kvs| {
        for kv in kvs {
            f(kv.key(), &transform::classify(kv.value()), kv.value());
        }
        Ok(())
    })
    .await
    .map_err(|e| match e {
        crate::scan::ScanError::Etcd(e) => EncryptError::from(e),
        other => EncryptError::Phase(other.to_string()),
    })
}

/// Counts the objects under the registry prefix that `matches` selects; returns the count and up to five example
/// keys.
async fn count_matching(
    etcd: &EtcdAccess,
    matches: impl Fn(&Classification, &[u8]) -> bool,
) -> Result<(u64, Vec<String>)> {
    let mut count = 0u64;
    let mut examples = Vec::new();
    for_each(etcd, "", |k, c, v| {
        if matches(c, v) {
            count += 1;
            if examples.len() < 5 {
                examples.push(String::from_utf8_lossy(k).into_owned());
            }
        }
    })
    .await?;
    Ok((count, examples))
}

/// Objects stored with `provider` (`aescbc`, `aesgcm`, `secretbox`) under key `key`.
pub(crate) async fn count_with_key(
    etcd: &EtcdAccess,
    provider: &str,
    key: &str,
) -> Result<(u64, Vec<String>)> {
    count_matching(etcd, |c, _| {
        c.storage.as_str() == provider && c.key_name.as_deref() == Some(key)
    })
    .await
}

/// Objects stored encrypted in any way, including a `k8s:enc:` provider this tool does not know.
pub(crate) async fn count_encrypted(etcd: &EtcdAccess) -> Result<(u64, Vec<String>)> {
    count_matching(etcd, |c, v| {
        crate::scan::is_encrypted(c.storage)
            || (c.storage == StorageKind::Unknown && v.starts_with(ENCRYPTED_PREFIX))
    })
    .await
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

/// Counts objects per storage and key for each resource of the config (`secrets`, `deployments.apps`), under
/// the etcd path kube-apiserver stores it at ([`crate::scan::StoredResource`]: `services/specs`, `apps/deployments`).
pub(crate) async fn storage_counts(
    etcd: &EtcdAccess,
    resources: &[String],
) -> Result<Vec<StorageCount>> {
    let mut out = Vec::new();
    for r in resources {
        let mut counts: BTreeMap<(StorageKind, Option<String>), u64> = BTreeMap::new();
        let segment = crate::scan::StoredResource::parse(r).etcd_segment();
        for_each(etcd, &format!("{segment}/"), |_, c, _| {
            *counts.entry((c.storage, c.key_name.clone())).or_default() += 1
        })
        .await?;
        out.extend(
            counts
                .into_iter()
                .map(|((storage, key), count)| StorageCount {
                    resource: r.clone(),
                    storage: storage.as_str().to_string(),
                    key,
                    count,
                }),
        );
    }
    Ok(out)
}
