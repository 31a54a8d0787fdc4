//! The resumable state file: how far each resource got, for one cluster: the last object done of a cluster-wide
//! listing (its key `namespace/name`, in etcd key order), or the finished namespaces of a namespace-by-namespace run.
//!
//! Written atomically (temp file, fsync, rename) after every finished namespace, so a run killed at any moment
//! (Ctrl-C, `kill -9`) leaves either the previous or the next state, never a torn file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ReencryptError;
use super::discovery::Target;

/// Version of the state file format.
const STATE_VERSION: u32 = 1;

/// Progress of one resource.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceState {
    /// Namespaces (`""` for a cluster-scoped resource) whose every object was rewritten or found current.
    pub done_namespaces: BTreeSet<String>,
    /// Every namespace of the resource is done.
    pub complete: bool,
    /// Cluster-wide listing: every object whose key `namespace/name` sorts (bytewise, as etcd orders keys) at or
    /// before this one is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_through: Option<String>,
}

/// The content of a state file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Format version.
    pub version: u32,
    /// The cluster the state belongs to (its API server URL).
    pub cluster: String,
    /// Per resource (`secrets`, `deployments.apps`).
    pub resources: BTreeMap<String, ResourceState>,
}

/// A state file on disk and its content.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    state: State,
}

/// The user's kube directory: `$HOME/.kube`.
pub fn kube_dir() -> Result<PathBuf, ReencryptError> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            ReencryptError::State(
                "HOME is not set; pass --state-file to choose where progress is kept".into(),
            )
        })?;
    Ok(PathBuf::from(home).join(".kube"))
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl StateFile {
    /// Default location: `~/.kube/atrest/reencrypt/<cluster>__<resources>.json`, keyed by cluster and resources.
    pub fn default_path(cluster: &str, targets: &[Target]) -> Result<PathBuf, ReencryptError> {
        let host = cluster
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(cluster)
            .trim_end_matches('/');
        let mut res: Vec<String> = targets.iter().map(Target::display_name).collect();
        res.sort();
        let mut joined = res.join("+");
        if joined.len() > 120 {
            // Many resources (`--all-encrypted` with `*.*`): keep the name short but still keyed by the set.
            let mut h: u64 = 0xcbf29ce484222325;
            for b in joined.bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
            }
            joined = format!("{}-resources-{h:016x}", res.len());
        }
        Ok(kube_dir()?.join("atrest").join("reencrypt").join(format!(
            "{}__{}.json",
            sanitize(host),
            sanitize(&joined)
        )))
    }

    /// A fresh state for `cluster` at `path` (nothing is written until [`StateFile::save`]).
    pub fn new(path: PathBuf, cluster: &str) -> Self {
        StateFile {
            path,
            state: State {
                version: STATE_VERSION,
                cluster: cluster.to_string(),
                resources: BTreeMap::new(),
            },
        }
    }

    /// The state of a run at `path` (default: [`StateFile::default_path`]): loaded to resume a run (`resume`),
    /// else fresh. The flag is true when a resumed state holds no progress at all.
    pub fn open(
        path: Option<PathBuf>,
        cluster: &str,
        targets: &[Target],
        resume: bool,
    ) -> Result<(Self, bool), ReencryptError> {
        let path = match path {
            Some(p) => p,
            None => Self::default_path(cluster, targets)?,
        };
        if !resume {
            return Ok((Self::new(path, cluster), false));
        }
        let s = Self::load(path, cluster)?;
        let empty = s.state.resources.is_empty();
        Ok((s, empty))
    }

    /// Loads the state at `path` to resume a run; a missing file gives a fresh state. A state of another
    /// cluster or an unreadable file is an error naming the file.
    pub fn load(path: PathBuf, cluster: &str) -> Result<Self, ReencryptError> {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::new(path, cluster));
            }
            Err(e) => {
                return Err(ReencryptError::State(format!(
                    "cannot read state file {}: {e}",
                    path.display()
                )));
            }
        };
        let state: State = serde_json::from_str(&text).map_err(|e| {
            ReencryptError::State(format!(
                "state file {} is not valid ({e}); delete it or run without --resume",
                path.display()
            ))
        })?;
        if state.version != STATE_VERSION {
            return Err(ReencryptError::State(format!(
                "state file {} has version {}, expected {STATE_VERSION}; delete it or run without --resume",
                path.display(),
                state.version
            )));
        }
        if state.cluster != cluster {
            return Err(ReencryptError::State(format!(
                "state file {} belongs to cluster {}, not {cluster}; pass another --state-file or run without --resume",
                path.display(),
                state.cluster
            )));
        }
        Ok(StateFile { path, state })
    }

    /// Where the state is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The content.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Whether `namespace` of `resource` is already done.
    pub fn is_done(&self, resource: &str, namespace: &str) -> bool {
        self.state
            .resources
            .get(resource)
            .is_some_and(|r| r.complete || r.done_namespaces.contains(namespace))
    }

    /// Records a finished namespace.
    pub fn mark_done(&mut self, resource: &str, namespace: &str) {
        self.state
            .resources
            .entry(resource.to_string())
            .or_default()
            .done_namespaces
            .insert(namespace.to_string());
    }

    /// The key (`namespace/name`) through which a cluster-wide listing of `resource` is done.
    pub fn done_through(&self, resource: &str) -> Option<&str> {
        self.state
            .resources
            .get(resource)
            .and_then(|r| r.done_through.as_deref())
    }

    /// The namespaces of `resource` recorded as done (by a namespace-by-namespace run).
    pub fn done_namespaces(&self, resource: &str) -> Option<&BTreeSet<String>> {
        self.state
            .resources
            .get(resource)
            .map(|r| &r.done_namespaces)
    }

    /// Whether every object of `resource` is done.
    pub fn is_complete(&self, resource: &str) -> bool {
        self.state
            .resources
            .get(resource)
            .is_some_and(|r| r.complete)
    }

    /// Records that every object of `resource` up to and including `key` (`namespace/name`) is done.
    pub fn set_done_through(&mut self, resource: &str, key: &str) {
        self.state
            .resources
            .entry(resource.to_string())
            .or_default()
            .done_through = Some(key.to_string());
    }

    /// Records a fully finished resource.
    pub fn mark_complete(&mut self, resource: &str) {
        self.state
            .resources
            .entry(resource.to_string())
            .or_default()
            .complete = true;
    }

    /// Writes the state atomically (temp file, fsync, rename, fsync the directory; `atrest_core::fsutil`).
    pub fn save(&self) -> Result<(), ReencryptError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut data = serde_json::to_vec_pretty(&self.state).expect("state serializes");
        data.push(b'\n');
        crate::fsutil::ensure_dir(dir)
            .and_then(|()| crate::fsutil::write_atomic(&self.path, &data))
            .map_err(|e| ReencryptError::State(format!("cannot save progress: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_cluster_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let mut s = StateFile::new(path.clone(), "https://127.0.0.1:6443");
        s.mark_done("secrets", "ns1");
        s.save().unwrap();
        let mut loaded = StateFile::load(path.clone(), "https://127.0.0.1:6443").unwrap();
        assert!(loaded.is_done("secrets", "ns1"));
        assert_eq!(loaded.done_through("secrets"), None);
        loaded.set_done_through("secrets", "ns2/s1");
        loaded.save().unwrap();
        let loaded = StateFile::load(path.clone(), "https://127.0.0.1:6443").unwrap();
        assert_eq!(loaded.done_through("secrets"), Some("ns2/s1"));
        assert!(!loaded.is_done("secrets", "ns2"));
        assert!(!loaded.is_done("configmaps", "ns1"));
        let err = StateFile::load(path.clone(), "https://10.0.0.1:6443")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("belongs to cluster https://127.0.0.1:6443"),
            "{err}"
        );
        std::fs::write(&path, "{not json").unwrap();
        let err = StateFile::load(path.clone(), "https://127.0.0.1:6443")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not valid"), "{err}");
        // A missing file is a fresh start.
        let fresh = StateFile::load(dir.path().join("none.json"), "x").unwrap();
        assert!(fresh.state().resources.is_empty());
        // No temp files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn default_path_is_keyed_by_cluster_and_resources() {
        let a = StateFile::default_path("https://127.0.0.1:6443", &[Target::secrets()]).unwrap();
        assert!(
            a.ends_with(".kube/atrest/reencrypt/127.0.0.1_6443__secrets.json"),
            "{a:?}"
        );
        let b = StateFile::default_path("https://127.0.0.1:7443", &[Target::secrets()]).unwrap();
        assert_ne!(a, b);
    }
}
