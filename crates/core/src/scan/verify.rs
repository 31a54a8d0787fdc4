//! `kubectl reencrypt --verify`: read etcd directly ([`super::scan`]) and count, per namespace, the objects a run
//! still has to rewrite: stored in plaintext or through a provider/key other than the write key (the
//! apiserver's "stale": kubernetes/apiserver `pkg/storage/value/transformer.go`, the first transformer of a
//! resource writes, the others only read).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::{Checker, ScanError, ScanRequest, Scope, StorageKind, StoredResource};
use crate::config::EncryptionConfiguration;
use crate::etcd::{DEFAULT_PAGE_SIZE, EtcdArgs, EtcdError, EtcdReader};
use crate::reencrypt::report::namespace_table;
use crate::reencrypt::{SCREEN_ROWS, Target};
use crate::transform::TransformError;

/// The etcd flags of `--verify` (as `kubectl etcdcheck` and etcdctl spell them).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Verification in etcd (--verify)")]
pub struct VerifyArgs {
    /// After the run (or with --dry-run: instead of writing), read etcd and count the objects still in
    /// plaintext or on a key other than the write key. Needs the etcd flags (kubeadm's files under --root by default).
    #[arg(long)]
    pub verify: bool,
    /// The node's root directory for kubeadm's default etcd certificate paths.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// kube-apiserver's --etcd-prefix.
    #[arg(long, value_name = "PREFIX", default_value = "/registry")]
    pub etcd_prefix: String,
    #[command(flatten)]
    pub etcd: EtcdArgs,
}

/// Verification could not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Connecting to etcd failed.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// The EncryptionConfiguration has no usable transformers for a resource.
    #[error("cannot build the transformers for {resource}")]
    Transformers {
        /// Resource display name.
        resource: String,
        /// Why.
        #[source]
        source: TransformError,
    },
    /// Reading a resource's keys failed.
    #[error("scanning {resource} in etcd")]
    Scan {
        /// Resource display name.
        resource: String,
        /// Why.
        #[source]
        source: ScanError,
    },
}

/// Counts for one namespace (`""` for cluster-scoped objects) of one resource.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyRow {
    /// Resource display name.
    pub resource: String,
    /// Namespace.
    pub namespace: String,
    /// Objects in etcd.
    pub objects: u64,
    /// Stored with the write provider and key (with an encryption config; without one: encrypted).
    pub current: u64,
    /// Plaintext, or on a non-first provider/key: a run rewrites these.
    pub stale: u64,
    /// Of `stale`, stored in plaintext.
    pub plaintext: u64,
    /// Values no configured key reads, or that fail to decode.
    pub unreadable: u64,
}

impl VerifyRow {
    fn add(&mut self, o: &VerifyRow) {
        self.objects += o.objects;
        self.current += o.current;
        self.stale += o.stale;
        self.plaintext += o.plaintext;
        self.unreadable += o.unreadable;
    }

    /// `rows` summed under `label` (the resource of the first row).
    fn summed(label: String, rows: &[&VerifyRow]) -> VerifyRow {
        let mut sum = VerifyRow {
            resource: rows.first().map(|r| r.resource.clone()).unwrap_or_default(),
            namespace: label,
            ..VerifyRow::default()
        };
        for r in rows {
            sum.add(r);
        }
        sum
    }
}

/// The verification result.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// Whether an EncryptionConfiguration was used (otherwise only plaintext is told apart).
    pub with_config: bool,
    /// The etcd revision read (of the last resource scanned).
    pub revision: i64,
    /// Per resource and namespace.
    pub namespaces: Vec<VerifyRow>,
    /// Totals.
    pub totals: VerifyRow,
}

impl Verification {
    /// Objects a run would still rewrite, plus unreadable ones.
    pub fn problems(&self) -> u64 {
        self.totals.stale + self.totals.unreadable
    }
}

/// Scans etcd for `targets` (one namespace or all).
pub async fn verify(
    args: &VerifyArgs,
    targets: &[Target],
    namespace: Option<&str>,
    config: Option<&EncryptionConfiguration>,
) -> Result<Verification, VerifyError> {
    let cfg = args.etcd.resolve(&args.root);
    let reader = EtcdReader::connect(&cfg).await?;
    let mut rows: BTreeMap<(String, String), VerifyRow> = BTreeMap::new();
    let mut revision = 0;
    for t in targets {
        let name = t.display_name();
        // kube-apiserver's own key segment (services/specs, minions, <group>/<plural> for custom resources...).
        let segment = StoredResource::new(&t.group, &t.resource).etcd_segment();
        let checker = match config {
            Some(c) => {
                Checker::with_config(c, &segment).map_err(|source| VerifyError::Transformers {
                    resource: name.clone(),
                    source,
                })?
            }
            None => Checker::without_keys(),
        };
        let req = ScanRequest {
            prefix: args.etcd_prefix.clone(),
            resource: segment.clone(),
            scope: match namespace {
                Some(ns) if t.namespaced => Scope::Namespace(ns.to_string()),
                _ => Scope::AllNamespaces,
            },
        };
        let summary = super::scan(&reader, &req, &checker, DEFAULT_PAGE_SIZE, |item| {
            let ns = item.namespace.clone().unwrap_or_default();
            let row = rows
                .entry((name.clone(), ns.clone()))
                .or_insert_with(|| VerifyRow {
                    resource: name.clone(),
                    namespace: ns,
                    ..VerifyRow::default()
                });
            row.objects += 1;
            let plaintext = item.storage == StorageKind::Identity;
            if item.finding {
                row.unreadable += 1;
            } else if item.stale || (plaintext && config.is_none()) {
                row.stale += 1;
                row.plaintext += u64::from(plaintext);
            } else {
                row.current += 1;
            }
            Ok(())
        })
        .await
        .map_err(|source| VerifyError::Scan {
            resource: name.clone(),
            source,
        })?;
        revision = summary.revision;
    }
    let mut totals = VerifyRow {
        resource: String::new(),
        namespace: "TOTAL".into(),
        ..VerifyRow::default()
    };
    for r in rows.values() {
        totals.add(r);
    }
    Ok(Verification {
        with_config: config.is_some(),
        revision,
        namespaces: rows.into_values().collect(),
        totals,
    })
}

/// The etcd table: every namespace when they fit a screen (or `wide`); otherwise only the namespaces with objects
/// not on the current key (at most a screenful, the rest of them summed in one line), the others summed.
pub fn render(v: &Verification, with_resource: bool, wide: bool) -> String {
    let columns = ["IN ETCD", "CURRENT KEY", "STALE", "PLAINTEXT", "UNREADABLE"];
    let mut table = namespace_table(with_resource, &columns);
    let num = |n: u64| n.to_string();
    let mut shown: Vec<VerifyRow> = Vec::new();
    if wide || v.namespaces.len() <= SCREEN_ROWS {
        shown.extend(v.namespaces.iter().cloned());
    } else {
        let (bad, good): (Vec<&VerifyRow>, Vec<&VerifyRow>) = v
            .namespaces
            .iter()
            .partition(|r| r.stale + r.plaintext + r.unreadable > 0);
        let n = bad.len().min(SCREEN_ROWS);
        shown.extend(bad[..n].iter().map(|r| (*r).clone()));
        if bad.len() > n {
            shown.push(VerifyRow::summed(
                format!("({} more not on the current key)", bad.len() - n),
                &bad[n..],
            ));
        }
        if !good.is_empty() {
            shown.push(VerifyRow::summed(
                format!("({} namespaces all on the current key)", good.len()),
                &good,
            ));
        }
    }
    for r in shown.iter().chain(std::iter::once(&v.totals)) {
        let mut cells = Vec::new();
        if with_resource {
            cells.push(r.resource.clone());
        }
        cells.push(if r.namespace.is_empty() {
            "(cluster)".to_string()
        } else {
            r.namespace.clone()
        });
        cells.extend([
            num(r.objects),
            num(r.current),
            num(r.stale),
            num(r.plaintext),
            num(r.unreadable),
        ]);
        table.row(cells);
    }
    let mut out = format!("\nin etcd (revision {}):\n{table}\n", v.revision);
    if !v.with_config {
        out.push_str(
            "note: without --encryption-config only plaintext is told apart; encrypted values are counted as current\n",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_namespaces_show_only_those_not_on_the_current_key() {
        let row = |i: usize, stale: u64| VerifyRow {
            resource: "secrets".into(),
            namespace: format!("team-{i:04}"),
            objects: 1,
            current: 1 - stale,
            stale,
            plaintext: stale,
            unreadable: 0,
        };
        let v = Verification {
            with_config: true,
            revision: 7,
            namespaces: (0..2000).map(|i| row(i, u64::from(i % 50 == 3))).collect(),
            totals: VerifyRow {
                namespace: "TOTAL".into(),
                objects: 2000,
                current: 1960,
                stale: 40,
                plaintext: 40,
                ..VerifyRow::default()
            },
        };
        let t = render(&v, false, false);
        let lines: Vec<&str> = t.lines().filter(|l| !l.trim().is_empty()).collect();
        // Title, header, 20 stale namespaces, the other 20 summed, the current ones summed, TOTAL.
        assert_eq!(lines.len(), 2 + 20 + 3, "{t}");
        assert!(t.contains("team-0003") && !t.contains("team-0004"), "{t}");
        assert!(t.contains("(20 more not on the current key)"), "{t}");
        assert!(
            t.contains("(1960 namespaces all on the current key)"),
            "{t}"
        );
        let summed = lines
            .iter()
            .find(|l| l.contains("(20 more not on the current key)"))
            .unwrap();
        let nums: Vec<&str> = summed.split_whitespace().rev().take(5).collect();
        assert_eq!(nums, ["0", "20", "20", "0", "20"], "{summed}");
        assert_eq!(
            render(&v, false, true).matches("team-").count(),
            2000,
            "wide"
        );
    }
}
