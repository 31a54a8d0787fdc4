//! etcd's effective configuration, as etcd itself would read it from its static pod or systemd unit.
//!
//! etcd parses its command line with Go's `flag` package (`-flag`, `--flag`, `--flag=value`,
//! `--flag value`; a bare boolean flag is true; parsing stops at the first non-flag word), then fills
//! every flag not given on the command line from `ETCD_<FLAG>` environment variables (upper case,
//! `-` → `_`; etcd `pkg/flags/flag.go` `SetFlagsFromEnv`). When `--config-file` (or
//! `ETCD_CONFIG_FILE`) is set, only that YAML file counts and flags and environment are ignored
//! (etcd `etcdmain/config.go` `parse`: "other configuration command line flags and environment
//! variables will be ignored"). Defaults are those of etcd `embed/config.go`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::under_root;
use crate::kubeadm::node::{self, CommandLine, Dialect};

/// Where etcd's configuration was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EtcdSource {
    /// A static pod manifest (host path).
    StaticPod(PathBuf),
    /// A systemd unit (host path).
    Unit(PathBuf),
}

impl fmt::Display for EtcdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtcdSource::StaticPod(p) => write!(f, "static pod {}", p.display()),
            EtcdSource::Unit(p) => write!(f, "systemd unit {}", p.display()),
        }
    }
}

/// Where a setting came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlagOrigin {
    /// The command line.
    CommandLine,
    /// An `ETCD_*` environment variable.
    Env(String),
    /// The `--config-file` YAML.
    ConfigFile,
    /// etcd's built-in default.
    Default,
}

/// Defaults from etcd `embed/config.go` (`DefaultListenClientURLs` etc.).
fn default_of(flag: &str) -> Option<&'static str> {
    match flag {
        "listen-client-urls" | "advertise-client-urls" => Some("http://localhost:2379"),
        "listen-peer-urls" | "initial-advertise-peer-urls" => Some("http://localhost:2380"),
        _ => None,
    }
}

/// etcd's effective settings and how to find its files.
#[derive(Clone, Debug)]
pub struct EtcdServer {
    /// Where the configuration came from.
    pub source: EtcdSource,
    flags: BTreeMap<String, (String, FlagOrigin)>,
    /// (container mountPath, host path) of the pod's hostPath mounts; `None` for a systemd unit.
    mounts: Option<Vec<(PathBuf, PathBuf)>>,
    /// The `--config-file` in effect (as written), if any.
    pub config_file: Option<String>,
}

impl EtcdServer {
    /// Read the etcd static pod at `manifest` (a host path). `Ok(None)` when the file does not exist.
    pub fn from_static_pod(manifest: &Path, root: &Path) -> Result<Option<Self>, String> {
        let origin = manifest.display().to_string();
        let text = match std::fs::read_to_string(manifest) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{origin}: cannot read: {e}")),
        };
        Self::parse_static_pod(&text, manifest, root).map(Some)
    }

    /// Parse etcd static pod text (see [`Self::from_static_pod`]).
    pub fn parse_static_pod(text: &str, manifest: &Path, root: &Path) -> Result<Self, String> {
        let origin = manifest.display().to_string();
        let pod: Value =
            serde_saphyr::from_str(text).map_err(|e| format!("{origin}: not valid YAML: {e}"))?;
        let containers = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                format!("{origin}: spec.containers is missing; expected the etcd static pod")
            })?;
        let container = containers
            .iter()
            .find(|c| c.get("name").and_then(Value::as_str) == Some("etcd"))
            .or_else(|| {
                containers
                    .iter()
                    .find(|c| node::runs(&node::container_argv(c), "etcd"))
            })
            .ok_or_else(|| format!("{origin}: no etcd container in spec.containers"))?;
        let command = node::container_argv(container);
        let args: Vec<String> = if node::runs(&command, "etcd") {
            command[1..].to_vec()
        } else {
            command
        };
        let env: BTreeMap<String, String> = container
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                Some((
                    e.get("name")?.as_str()?.to_string(),
                    e.get("value")?.as_str()?.to_string(),
                ))
            })
            .collect();
        let volumes: BTreeMap<String, String> = pod
            .pointer("/spec/volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| {
                Some((
                    v.get("name")?.as_str()?.to_string(),
                    v.pointer("/hostPath/path")?.as_str()?.to_string(),
                ))
            })
            .collect();
        let mounts = container
            .get("volumeMounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let name = m.get("name")?.as_str()?;
                let mount = clean(Path::new(m.get("mountPath")?.as_str()?.trim()))?;
                let mut host = clean(Path::new(volumes.get(name)?))?;
                if let Some(sub) = m
                    .get("subPath")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    host.push(sub);
                }
                Some((mount, host))
            })
            .collect();
        let mut s = EtcdServer {
            source: EtcdSource::StaticPod(manifest.to_path_buf()),
            flags: BTreeMap::new(),
            mounts: Some(mounts),
            config_file: None,
        };
        s.load(&args, &env, root)?;
        Ok(s)
    }

    /// Read the etcd systemd unit at `unit` (a host path); its EnvironmentFile=s are node paths under
    /// `root`. A missing unit file is an error (it was asked for).
    pub fn from_unit(unit: &Path, root: &Path) -> Result<Option<Self>, String> {
        let cmd = super::unit::load_etcd_command(unit, root)?;
        let mut s = EtcdServer {
            source: EtcdSource::Unit(unit.to_path_buf()),
            flags: BTreeMap::new(),
            mounts: None,
            config_file: None,
        };
        s.load(&cmd.args, &cmd.env, root)?;
        Ok(Some(s))
    }

    fn origin(&self) -> String {
        match &self.source {
            EtcdSource::StaticPod(p) | EtcdSource::Unit(p) => p.display().to_string(),
        }
    }

    fn load(
        &mut self,
        args: &[String],
        env: &BTreeMap<String, String>,
        root: &Path,
    ) -> Result<(), String> {
        let mut flags: BTreeMap<String, (String, FlagOrigin)> =
            CommandLine::parse_args(args, Dialect::Etcd)
                .iter()
                .map(|(n, v)| (n.to_string(), (v.to_string(), FlagOrigin::CommandLine)))
                .collect();
        for (k, v) in env {
            let Some(name) = k.strip_prefix("ETCD_") else {
                continue;
            };
            let flag = name.to_ascii_lowercase().replace('_', "-");
            flags
                .entry(flag)
                .or_insert_with(|| (v.clone(), FlagOrigin::Env(k.clone())));
        }
        if let Some((cfg, _)) = flags.get("config-file").filter(|(v, _)| !v.is_empty()) {
            let cfg = cfg.clone();
            let host = self.host_path(root, &cfg).ok_or_else(|| {
                format!(
                    "{}: --config-file={cfg} is not inside any hostPath volumeMount of the etcd pod",
                    self.origin()
                )
            })?;
            let text = std::fs::read_to_string(&host).map_err(|e| {
                format!(
                    "{}: --config-file={cfg}: cannot read {}: {e}",
                    self.origin(),
                    host.display()
                )
            })?;
            self.flags = parse_config_file(&text, &host.display().to_string())?;
            self.config_file = Some(cfg);
        } else {
            self.flags = flags;
        }
        Ok(())
    }

    /// The effective value of `flag` (without dashes), from the command line, environment or config
    /// file; etcd's default for the URL flags; `None` when unset.
    pub fn get(&self, flag: &str) -> Option<&str> {
        self.flags
            .get(flag)
            .map(|(v, _)| v.as_str())
            .or_else(|| default_of(flag))
    }

    /// Whether `flag` was set explicitly (not defaulted).
    pub fn is_set(&self, flag: &str) -> bool {
        self.flags.contains_key(flag)
    }

    /// `--flag=value (from ETCD_FLAG)` style text for reports.
    pub fn describe(&self, flag: &str) -> String {
        match self.flags.get(flag) {
            Some((v, FlagOrigin::CommandLine)) => format!("--{flag}={v}"),
            Some((v, FlagOrigin::Env(k))) => format!("{k}={v}"),
            Some((v, FlagOrigin::ConfigFile)) => format!("{flag}: {v} (config file)"),
            Some((v, FlagOrigin::Default)) => format!("--{flag}={v} (default)"),
            None => match default_of(flag) {
                Some(d) => format!("--{flag} not set (default {d})"),
                None => format!("--{flag} not set"),
            },
        }
    }

    /// A boolean flag as Go's `strconv.ParseBool` reads it; `Ok(None)` when unset, `Err` with the bad
    /// value otherwise.
    pub fn bool(&self, flag: &str) -> Result<Option<bool>, String> {
        match self.get(flag) {
            None => Ok(None),
            Some(v) => node::parse_go_bool(v)
                .map(Some)
                .ok_or_else(|| format!("{}: not a boolean", self.describe(flag))),
        }
    }

    /// A comma-separated URL list flag (with etcd's default when unset).
    pub fn urls(&self, flag: &str) -> Vec<String> {
        self.get(flag)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The host path (under `root`) of a path etcd sees: through the pod's hostPath mounts for a static
    /// pod (`None` when no mount covers it: etcd cannot see the file), as a node path for a unit.
    /// Relative paths are taken from `/` (a unit's WorkingDirectory= is not followed).
    pub fn host_path(&self, root: &Path, path: &str) -> Option<PathBuf> {
        let p = clean(&Path::new("/").join(path))?;
        match &self.mounts {
            None => Some(under_root(root, &p)),
            Some(mounts) => node::covering_mount(mounts.iter().map(|(m, h)| (m, h)), &p)
                .map(|(h, rest)| under_root(root, h.join(rest))),
        }
    }

    /// Whether the configuration is a static pod (files resolve through mounts).
    pub fn is_static_pod(&self) -> bool {
        self.mounts.is_some()
    }
}

/// etcd's YAML config file (`embed.Config` / `etcdmain/config.go` `configYAML`): top-level keys are
/// the flag names; TLS settings sit in `client-transport-security` and `peer-transport-security`.
fn parse_config_file(
    text: &str,
    origin: &str,
) -> Result<BTreeMap<String, (String, FlagOrigin)>, String> {
    let v: Value =
        serde_saphyr::from_str(text).map_err(|e| format!("{origin}: not valid YAML: {e}"))?;
    let map = v
        .as_object()
        .ok_or_else(|| format!("{origin}: expected a YAML mapping of etcd settings"))?;
    let mut out = BTreeMap::new();
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    };
    for (k, val) in map {
        let prefix = match k.as_str() {
            "client-transport-security" => Some(""),
            "peer-transport-security" => Some("peer-"),
            _ => None,
        };
        match (prefix, val) {
            (Some(p), Value::Object(inner)) => {
                for (ik, iv) in inner {
                    if let Some(s) = scalar(iv) {
                        out.insert(format!("{p}{ik}"), (s, FlagOrigin::ConfigFile));
                    }
                }
            }
            (_, val) => {
                if let Some(s) = scalar(val) {
                    out.insert(k.clone(), (s, FlagOrigin::ConfigFile));
                }
            }
        }
    }
    Ok(out)
}

/// Lexically clean an absolute path ([`node::clean_path`]); `None` for relative paths.
fn clean(p: &Path) -> Option<PathBuf> {
    if p.is_absolute() {
        node::clean_path(p)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_flag_syntax() {
        let pod = "spec:\n  containers:\n  - name: etcd\n    command: [etcd, -name, n1, --client-cert-auth, --data-dir=/d, --auto-tls=false, --data-dir=/e, positional, --ignored=1]\n";
        let s = EtcdServer::parse_static_pod(pod, Path::new("m.yaml"), Path::new("/")).unwrap();
        assert_eq!(s.get("name"), Some("n1"));
        assert_eq!(s.bool("client-cert-auth").unwrap(), Some(true));
        assert_eq!(s.bool("auto-tls").unwrap(), Some(false));
        assert_eq!(s.get("data-dir"), Some("/e"), "last wins");
        assert!(!s.is_set("ignored"), "parsing stops at the first non-flag");
        assert_eq!(s.describe("data-dir"), "--data-dir=/e");
    }

    #[test]
    fn env_fills_unset_flags_only_and_config_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let manifest = root.join("etcd.yaml");
        let pod = "spec:\n  containers:\n  - name: etcd\n    command: [etcd, --client-cert-auth=true]\n    env:\n    - {name: ETCD_CLIENT_CERT_AUTH, value: \"false\"}\n    - {name: ETCD_AUTO_TLS, value: \"true\"}\n    volumeMounts:\n    - {name: cfg, mountPath: /etc/etcd}\n  volumes:\n  - name: cfg\n    hostPath: {path: /srv/etcd-config}\n";
        let s = EtcdServer::parse_static_pod(pod, &manifest, root).unwrap();
        assert_eq!(s.bool("client-cert-auth").unwrap(), Some(true));
        assert_eq!(s.bool("auto-tls").unwrap(), Some(true));
        assert_eq!(s.describe("auto-tls"), "ETCD_AUTO_TLS=true");
        assert_eq!(s.urls("listen-client-urls"), ["http://localhost:2379"]);
        assert_eq!(
            s.host_path(root, "/etc/etcd/x/../etcd.yaml"),
            Some(root.join("srv/etcd-config/etcd.yaml"))
        );
        assert_eq!(s.host_path(root, "/var/lib/etcd"), None);

        std::fs::create_dir_all(root.join("srv/etcd-config")).unwrap();
        std::fs::write(
            root.join("srv/etcd-config/etcd.yaml"),
            "name: n\nlisten-client-urls: https://10.0.0.1:2379\nclient-transport-security:\n  cert-file: /etc/etcd/server.crt\n  client-cert-auth: false\npeer-transport-security:\n  auto-tls: true\n",
        )
        .unwrap();
        let pod = pod.replace(
            "--client-cert-auth=true]",
            "--client-cert-auth=true, --config-file=/etc/etcd/etcd.yaml]",
        );
        let s = EtcdServer::parse_static_pod(&pod, &manifest, root).unwrap();
        assert_eq!(s.config_file.as_deref(), Some("/etc/etcd/etcd.yaml"));
        assert_eq!(
            s.bool("client-cert-auth").unwrap(),
            Some(false),
            "flags ignored"
        );
        assert_eq!(s.bool("peer-auto-tls").unwrap(), Some(true));
        assert_eq!(s.bool("auto-tls").unwrap(), None, "env ignored");
        assert_eq!(s.get("cert-file"), Some("/etc/etcd/server.crt"));
        assert_eq!(s.urls("listen-client-urls"), ["https://10.0.0.1:2379"]);
    }

    #[test]
    fn kubeadm_manifest_fixture() {
        let text = include_str!(
            "../../../../tests/fixtures/posture/cppntn-kubernetes-3.5.10-k8s1.29.yaml"
        );
        let root = Path::new("/node");
        let s = EtcdServer::parse_static_pod(
            text,
            Path::new("/node/etc/kubernetes/manifests/etcd.yaml"),
            root,
        )
        .unwrap();
        assert_eq!(s.bool("client-cert-auth").unwrap(), Some(true));
        assert_eq!(
            s.urls("listen-client-urls"),
            ["https://127.0.0.1:2379", "https://192.37.70.3:2379"]
        );
        assert_eq!(
            s.host_path(root, s.get("key-file").unwrap()),
            Some(PathBuf::from("/node/etc/kubernetes/pki/etcd/server.key"))
        );
        assert_eq!(
            s.host_path(root, "/var/lib/etcd"),
            Some(PathBuf::from("/node/var/lib/etcd"))
        );
        let bad =
            EtcdServer::parse_static_pod("spec: {}\n", Path::new("m.yaml"), root).unwrap_err();
        assert!(
            bad.starts_with("m.yaml: spec.containers is missing"),
            "{bad}"
        );
    }
}
