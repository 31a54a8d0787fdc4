//! kube-apiserver static pod manifests: parsing and format-preserving edits.
//!
//! [`Manifest::parse`] reads a kubeadm-style static pod manifest (the semantic view comes from
//! serde-saphyr as a [`serde_json::Value`]); [`Manifest::flag`], [`Manifest::etcd_flags`] and
//! [`Manifest::host_path_for`] read the running configuration; [`Manifest::enable_encryption`]
//! and [`Manifest::disable_encryption`] edit it. Edits change only the lines they must: comments,
//! alignment, key order, indentation style, quoting, trailing spaces, CRLF line endings and a
//! missing final newline all survive. Every edit is parsed again and compared with the intended
//! semantic change; anything else is refused and nothing is returned to write.

pub(crate) mod lines;

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use lines::{Item, KeyPos, Line, MapRegion};

use crate::kubeadm::node::{self, CommandLine};

/// The kube-apiserver flag naming the EncryptionConfiguration file.
pub const CONFIG_FLAG: &str = "encryption-provider-config";
/// The kube-apiserver flag that reloads the EncryptionConfiguration file when it changes
/// (`k8s.io/apiserver/pkg/server/options/etcd.go`, Kubernetes 1.26+).
pub const RELOAD_FLAG: &str = "encryption-provider-config-automatic-reload";
/// Name of the volume (and volumeMount) the editor adds for the config directory.
pub const CONFIG_VOLUME_NAME: &str = "encryption-config";

/// Why a manifest could not be read or edited. `line` is 1-based; messages say what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("{origin}: cannot read the manifest: {source}")]
    Read {
        origin: String,
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not a usable kube-apiserver static pod (YAML error, typo, missing field...).
    #[error("{}{message}", location(origin, *line))]
    Invalid {
        origin: String,
        line: Option<usize>,
        message: String,
    },
    /// An edit could not be made safely; the manifest was left as it was.
    #[error("{}edit refused: {message}; the manifest was not changed", location(origin, *line))]
    EditRefused {
        origin: String,
        line: Option<usize>,
        message: String,
    },
}

fn location(origin: &str, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{origin}:{l}: "),
        None => format!("{origin}: "),
    }
}

/// The etcd connection flags of the kube-apiserver (`--etcd-servers`, `--etcd-cafile`,
/// `--etcd-certfile`, `--etcd-keyfile`, `--etcd-prefix`), as container paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EtcdFlags {
    pub servers: Vec<String>,
    pub cafile: Option<String>,
    pub certfile: Option<String>,
    pub keyfile: Option<String>,
    pub prefix: Option<String>,
}

/// The kube-apiserver flags that tell how it stores Secrets, read from a node's manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiserverFlags {
    /// The manifest file read.
    pub manifest: PathBuf,
    /// `--encryption-provider-config` (a path inside the kube-apiserver container).
    pub encryption_provider_config: Option<PathBuf>,
    /// The node path of that file, through the pod's hostPath mounts (`None` when no mount covers it: the
    /// server cannot read it either).
    pub encryption_provider_config_host: Option<PathBuf>,
    /// `--etcd-prefix`.
    pub etcd_prefix: Option<String>,
}

impl ApiserverFlags {
    /// Reads kubeadm's kube-apiserver manifest of the node rooted at `root`; `None` when it is absent or
    /// unusable (logged as a warning).
    pub fn read(root: &Path) -> Option<Self> {
        let manifest = node::under_root(root, node::KUBE_APISERVER_MANIFEST);
        if !manifest.exists() {
            return None;
        }
        match Manifest::load(&manifest) {
            Ok(m) => {
                let mut flags = Self::from_manifest(&m);
                flags.manifest = manifest;
                Some(flags)
            }
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        }
    }

    /// The flags of a parsed manifest.
    pub fn from_manifest(m: &Manifest) -> Self {
        let config = m.encryption_provider_config();
        Self {
            manifest: PathBuf::from(m.origin()),
            encryption_provider_config_host: config.as_deref().and_then(|c| m.host_path_for(c)),
            encryption_provider_config: config.map(PathBuf::from),
            etcd_prefix: m.flag("etcd-prefix").filter(|p| !p.is_empty()),
        }
    }
}

/// A volumeMount of the kube-apiserver container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    pub read_only: bool,
    pub sub_path: Option<String>,
}

/// A pod volume; `host_path` is set for hostPath volumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    pub host_path: Option<String>,
    pub host_path_type: Option<String>,
}

/// The result of an edit: the new manifest and a human-readable line per change made.
#[derive(Clone, Debug)]
pub struct Edit {
    pub manifest: Manifest,
    pub changes: Vec<String>,
}

impl Edit {
    /// Whether anything changed (false: the manifest already was as asked).
    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// A parsed kube-apiserver static pod manifest, keeping its exact text.
#[derive(Clone, Debug)]
pub struct Manifest {
    origin: String,
    lines: Vec<Line>,
    value: Value,
    container: usize,
}

/// Where the nodes the editor touches are in the text.
struct Located {
    spec: MapRegion,
    spec_key: KeyPos,
    container_item: Item,
    container_map: MapRegion,
    command_key: KeyPos,
    command: Vec<Item>,
    mounts_key: Option<KeyPos>,
    mounts: Vec<Item>,
    volumes_key: Option<KeyPos>,
    volumes: Vec<Item>,
}

/// A block list the editor appends to ([`Manifest::append_item`]).
struct BlockList<'a> {
    /// Its key (`volumeMounts`).
    key: &'static str,
    /// Its name in messages (`spec.volumes`).
    path: &'static str,
    /// Its key, when present.
    found: Option<&'a KeyPos>,
    /// Its entries.
    items: &'a [Item],
    /// The mapping holding it.
    parent: MapRegion,
    /// Where its key goes when absent.
    new_key_at: usize,
}

const MOUNT_FIELDS: &[&str] = &[
    "name",
    "mountPath",
    "readOnly",
    "recursiveReadOnly",
    "subPath",
    "subPathExpr",
    "mountPropagation",
];
// core/v1 VolumeSource members (k8s.io/api/core/v1/types.go `VolumeSource`).
const VOLUME_FIELDS: &[&str] = &[
    "name",
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];
const HOST_PATH_FIELDS: &[&str] = &["path", "type"];
// core/v1 HostPathType values.
const HOST_PATH_TYPES: &[&str] = &[
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
];

impl Manifest {
    /// Reads and parses the manifest at `path` (see [`Manifest::parse`]).
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            origin: origin.clone(),
            source,
        })?;
        Manifest::parse(&text, &origin)
    }

    /// Parses manifest text; `origin` names it in errors (usually the file path). Requires a YAML
    /// Pod with exactly one kube-apiserver container that has a `command` list of strings.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest, ManifestError> {
        let invalid = |line: Option<usize>, message: String| ManifestError::Invalid {
            origin: origin.to_string(),
            line,
            message,
        };
        if text.trim().is_empty() {
            return Err(invalid(None, "the manifest is empty".into()));
        }
        let value: Value = serde_saphyr::from_str(text).map_err(|e| {
            let line = e.location().map(|l| l.line() as usize).filter(|l| *l > 0);
            invalid(line, format!("not valid YAML: {e}; fix the YAML syntax"))
        })?;
        let lines = lines::split_lines(text);
        let mut m = Manifest {
            origin: origin.to_string(),
            lines,
            value,
            container: 0,
        };
        if !m.value.is_object() {
            return Err(invalid(
                None,
                "not a YAML mapping; expected a kube-apiserver static Pod".into(),
            ));
        }
        if let Some(kind) = m.value.get("kind")
            && kind != "Pod"
        {
            return Err(invalid(
                m.root_key_line("kind"),
                format!("kind is {kind}, expected Pod"),
            ));
        }
        let containers = match m.value.pointer("/spec/containers") {
            Some(Value::Array(c)) => c.clone(),
            _ => {
                return Err(invalid(
                    m.root_key_line("spec"),
                    "spec.containers is missing or not a list".into(),
                ));
            }
        };
        let by_name: Vec<usize> = (0..containers.len())
            .filter(|&i| {
                containers[i].get("name").and_then(Value::as_str) == Some("kube-apiserver")
            })
            .collect();
        let candidates = if by_name.is_empty() {
            (0..containers.len())
                .filter(|&i| {
                    containers[i]
                        .pointer("/command/0")
                        .and_then(Value::as_str)
                        .is_some_and(|c| c.rsplit('/').next() == Some("kube-apiserver"))
                })
                .collect()
        } else {
            by_name
        };
        match candidates.as_slice() {
            [] => {
                return Err(invalid(
                    m.root_key_line("spec"),
                    "no kube-apiserver container in spec.containers".into(),
                ));
            }
            [one] => m.container = *one,
            [a, b, ..] => {
                let la = m.container_line(*a);
                let lb = m.container_line(*b);
                return Err(invalid(
                    lb,
                    format!(
                        "two kube-apiserver containers (spec.containers[{a}]{} and spec.containers[{b}]); keep exactly one",
                        la.map(|l| format!(" at line {l}")).unwrap_or_default()
                    ),
                ));
            }
        }
        let c = m.container;
        match m.value.pointer(&format!("/spec/containers/{c}/command")) {
            Some(Value::Array(items))
                if !items.is_empty() && items.iter().all(Value::is_string) => {}
            Some(_) => {
                return Err(invalid(
                    m.container_line(c),
                    format!("spec.containers[{c}].command must be a non-empty list of strings"),
                ));
            }
            None => {
                return Err(invalid(
                    m.container_line(c),
                    format!(
                        "the kube-apiserver container (spec.containers[{c}]) has no command; kubeadm puts kube-apiserver and its flags there"
                    ),
                ));
            }
        }
        Ok(m)
    }

    /// The exact manifest text.
    pub fn text(&self) -> String {
        lines::join_lines(&self.lines)
    }

    /// The semantic view (the YAML as JSON).
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Where the manifest came from (used in messages).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    fn container_value(&self) -> &Value {
        &self.value["spec"]["containers"][self.container]
    }

    /// The static pod's namespace (`metadata.namespace`; kubeadm writes `kube-system`, its default here).
    pub fn namespace(&self) -> &str {
        self.value
            .pointer("/metadata/namespace")
            .and_then(|v| v.as_str())
            .unwrap_or("kube-system")
    }

    /// The kube-apiserver container's `command` followed by its `args`.
    pub fn command_line(&self) -> Vec<String> {
        node::container_argv(self.container_value())
    }

    /// The kube-apiserver's flags, read as pflag reads them ([`node::CommandLine`]).
    pub fn flags(&self) -> CommandLine {
        CommandLine::parse(&self.command_line())
    }

    /// The value of `--name` on the kube-apiserver command line ([`CommandLine::get`]: the last
    /// `--name=value` or `--name value` wins; a bare `--name` (a boolean flag) is `"true"`).
    pub fn flag(&self, name: &str) -> Option<String> {
        self.flags().get(name).map(str::to_string)
    }

    /// `--encryption-provider-config` (a container path), if set.
    pub fn encryption_provider_config(&self) -> Option<String> {
        self.flag(CONFIG_FLAG).filter(|v| !v.is_empty())
    }

    /// Whether `--encryption-provider-config-automatic-reload` is true.
    pub fn automatic_reload(&self) -> bool {
        self.flags().bool(RELOAD_FLAG) == Ok(Some(true))
    }

    /// The `--etcd-*` flags.
    pub fn etcd_flags(&self) -> EtcdFlags {
        let flags = self.flags();
        let get = |name: &str| flags.get(name).map(str::to_string);
        EtcdFlags {
            servers: flags.list("etcd-servers"),
            cafile: get("etcd-cafile"),
            certfile: get("etcd-certfile"),
            keyfile: get("etcd-keyfile"),
            prefix: get("etcd-prefix"),
        }
    }

    /// The kube-apiserver container's volumeMounts.
    pub fn volume_mounts(&self) -> Vec<VolumeMount> {
        self.container_value()
            .get("volumeMounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|m| VolumeMount {
                name: str_field(m, "name"),
                mount_path: str_field(m, "mountPath"),
                read_only: m.get("readOnly").and_then(Value::as_bool).unwrap_or(false),
                sub_path: m
                    .get("subPath")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            })
            .collect()
    }

    /// The pod's volumes.
    pub fn volumes(&self) -> Vec<Volume> {
        self.value
            .pointer("/spec/volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|v| Volume {
                name: str_field(v, "name"),
                host_path: v
                    .pointer("/hostPath/path")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                host_path_type: v
                    .pointer("/hostPath/type")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
            .collect()
    }

    /// The mount through which the container sees `container_path` (the longest mountPath that
    /// contains it), if any.
    pub fn mount_for(&self, container_path: &str) -> Option<VolumeMount> {
        let p = node::clean_path(container_path)?;
        let mounts = self
            .volume_mounts()
            .into_iter()
            .filter_map(|m| Some((node::clean_path(&m.mount_path)?, m)));
        node::covering_mount(mounts, &p).map(|(m, _)| m)
    }

    /// The host path behind a container path, resolved through the volumeMounts and their hostPath
    /// volumes like the kubelet does. `None` when no hostPath mount covers it (the file is then
    /// invisible to the container).
    pub fn host_path_for(&self, container_path: &str) -> Option<PathBuf> {
        let p = node::clean_path(container_path)?;
        let m = self.mount_for(container_path)?;
        let mp = node::clean_path(&m.mount_path)?;
        let vol = self.volumes().into_iter().find(|v| v.name == m.name)?;
        let mut host = node::clean_path(vol.host_path.as_deref()?)?;
        if let Some(sub) = &m.sub_path {
            host.push(sub);
        }
        let rel = p.strip_prefix(&mp).ok()?;
        if !rel.as_os_str().is_empty() {
            host.push(rel);
        }
        Some(host)
    }

    /// The non-root user and group kube-apiserver runs as: `securityContext.runAsUser`/`runAsGroup` of its
    /// container over the pod's (kubeadm's RootlessControlPlane feature gate sets the pod's,
    /// `cmd/kubeadm/app/util/staticpod/utils_linux.go`). `None` when it runs as root.
    pub fn run_as(&self) -> Option<(u32, Option<u32>)> {
        let field = |name: &str| {
            self.container_value()
                .pointer(&format!("/securityContext/{name}"))
                .or_else(|| self.value.pointer(&format!("/spec/securityContext/{name}")))
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
        };
        let uid = field("runAsUser").filter(|u| *u != 0)?;
        Some((uid, field("runAsGroup")))
    }

    /// The URL this kube-apiserver serves on as other servers reach it: `https://<--advertise-address>:<--secure-port>`
    /// (6443 by default, kube-apiserver's), `None` without an advertise address.
    pub fn advertised_url(&self) -> Option<String> {
        let addr = self.flag("advertise-address").filter(|a| !a.is_empty())?;
        let port = self
            .flag("secure-port")
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "6443".into());
        Some(if addr.contains(':') {
            format!("https://[{addr}]:{port}")
        } else {
            format!("https://{addr}:{port}")
        })
    }

    /// Whether `container_path` is bind-mounted as a single file (its mount's `mountPath` is the file itself, as
    /// with a hostPath of type `File`, or the mount uses a `subPath`). The container runtime then binds the inode
    /// the path had when the container started: a file replaced by rename on the host is not seen inside until the
    /// container is restarted, while a directory mount shows the new file at once.
    pub fn is_single_file_mount(&self, container_path: &str) -> bool {
        let Some(m) = self.mount_for(container_path) else {
            return false;
        };
        m.sub_path.is_some() || node::clean_path(&m.mount_path) == node::clean_path(container_path)
    }

    /// Checks everything the editor relies on and refuses broken manifests with a line-numbered
    /// reason: volumeMounts and volumes fields (typos such as `readOlny`), names, mount → volume
    /// references, hostPath types, duplicate encryption flags, block-style lists.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let loc = self.locate_lenient()?;
        let c = self.container;
        let mounts = self.container_value().get("volumeMounts");
        let volumes = self.value.pointer("/spec/volumes");
        let mut volume_names: Vec<String> = Vec::new();
        if let Some(vs) = volumes {
            let vs = vs.as_array().ok_or_else(|| {
                self.invalid(
                    loc.volumes_key.as_ref().map(|k| k.line),
                    "spec.volumes must be a list",
                )
            })?;
            for (i, v) in vs.iter().enumerate() {
                let line = loc.volumes.get(i).map(|it| it.line);
                let obj = v.as_object().ok_or_else(|| {
                    self.invalid(line, &format!("spec.volumes[{i}] must be a mapping"))
                })?;
                self.check_fields(
                    obj,
                    VOLUME_FIELDS,
                    &format!("spec.volumes[{i}]"),
                    loc.volumes.get(i).copied(),
                )?;
                let name = obj.get("name").and_then(Value::as_str).unwrap_or("");
                if name.is_empty() {
                    return Err(self.invalid(line, &format!("spec.volumes[{i}] has no name; every volume needs a `name:` that its volumeMount refers to")));
                }
                if volume_names.iter().any(|n| n == name) {
                    return Err(self.invalid(
                        line,
                        &format!("spec.volumes[{i}]: duplicate volume name {name:?}"),
                    ));
                }
                volume_names.push(name.to_string());
                if let Some(hp) = obj.get("hostPath") {
                    let hp = hp.as_object().ok_or_else(|| {
                        self.invalid(
                            line,
                            &format!("spec.volumes[{i}].hostPath must be a mapping"),
                        )
                    })?;
                    let item = loc.volumes.get(i).copied();
                    let hp_region = item.and_then(|it| {
                        let r = lines::item_map(&self.lines, it)?;
                        let k = lines::find_key(&self.lines, r, "hostPath")?;
                        lines::value_map(&self.lines, &k, r.end)
                    });
                    for key in hp.keys() {
                        if !HOST_PATH_FIELDS.contains(&key.as_str()) {
                            let kline = hp_region
                                .and_then(|r| lines::find_key(&self.lines, r, key))
                                .map(|k| k.line)
                                .or(line);
                            return Err(self.invalid(
                                kline,
                                &format!(
                                    "spec.volumes[{i}].hostPath: unknown field `{key}`{}",
                                    suggest(key, HOST_PATH_FIELDS)
                                ),
                            ));
                        }
                    }
                    if hp
                        .get("path")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        return Err(
                            self.invalid(line, &format!("spec.volumes[{i}].hostPath has no path"))
                        );
                    }
                    if let Some(t) = hp.get("type") {
                        let ok = t.as_str().is_some_and(|t| HOST_PATH_TYPES.contains(&t));
                        if !ok {
                            let kline = hp_region
                                .and_then(|r| lines::find_key(&self.lines, r, "type"))
                                .map(|k| k.line)
                                .or(line);
                            return Err(self.invalid(kline, &format!("spec.volumes[{i}].hostPath.type {t} is not a HostPathType (one of {})", HOST_PATH_TYPES[1..].join(", "))));
                        }
                    }
                }
            }
        }
        if let Some(ms) = mounts {
            let ms = ms.as_array().ok_or_else(|| {
                self.invalid(
                    loc.mounts_key.as_ref().map(|k| k.line),
                    &format!("spec.containers[{c}].volumeMounts must be a list"),
                )
            })?;
            for (i, m) in ms.iter().enumerate() {
                let path = format!("spec.containers[{c}].volumeMounts[{i}]");
                let line = loc.mounts.get(i).map(|it| it.line);
                let obj = m
                    .as_object()
                    .ok_or_else(|| self.invalid(line, &format!("{path} must be a mapping")))?;
                self.check_fields(obj, MOUNT_FIELDS, &path, loc.mounts.get(i).copied())?;
                let name = obj.get("name").and_then(Value::as_str).unwrap_or("");
                if name.is_empty() {
                    return Err(self.invalid(line, &format!("{path} has no name")));
                }
                if obj
                    .get("mountPath")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(self.invalid(line, &format!("{path} has no mountPath")));
                }
                if let Some(ro) = obj.get("readOnly")
                    && !ro.is_boolean()
                {
                    return Err(self.invalid(
                        line,
                        &format!("{path}.readOnly must be true or false, not {ro}"),
                    ));
                }
                if !volume_names.iter().any(|n| n == name) {
                    return Err(self.invalid(
                        line,
                        &format!("{path} refers to volume {name:?}, which is not in spec.volumes"),
                    ));
                }
            }
        }
        for flag in [CONFIG_FLAG, RELOAD_FLAG] {
            let occ = self.flag_items(flag);
            if occ.len() > 1 {
                let l = loc.command.get(occ[1].0).map(|it| it.line);
                return Err(self.invalid(
                    l,
                    &format!("--{flag} is given {} times; keep one", occ.len()),
                ));
            }
        }
        if self
            .container_value()
            .get("args")
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .any(|s| is_flag(s, CONFIG_FLAG) || is_flag(s, RELOAD_FLAG))
            })
        {
            let l = lines::find_key(&self.lines, loc.container_map, "args").map(|k| k.line);
            return Err(self.invalid(l, "--encryption-provider-config is set in args; move it into command, where kubeadm keeps the flags"));
        }
        Ok(())
    }

    fn check_fields(
        &self,
        obj: &Map<String, Value>,
        known: &[&str],
        path: &str,
        item: Option<Item>,
    ) -> Result<(), ManifestError> {
        for key in obj.keys() {
            if !known.contains(&key.as_str()) {
                let line = item
                    .and_then(|it| lines::item_map(&self.lines, it))
                    .and_then(|r| lines::find_key(&self.lines, r, key))
                    .map(|k| k.line)
                    .or(item.map(|it| it.line));
                return Err(self.invalid(
                    line,
                    &format!("{path}: unknown field `{key}`{}", suggest(key, known)),
                ));
            }
        }
        Ok(())
    }

    fn invalid(&self, line0: Option<usize>, message: &str) -> ManifestError {
        ManifestError::Invalid {
            origin: self.origin.clone(),
            line: line0.map(|l| l + 1),
            message: message.to_string(),
        }
    }

    fn refused(&self, line0: Option<usize>, message: &str) -> ManifestError {
        ManifestError::EditRefused {
            origin: self.origin.clone(),
            line: line0.map(|l| l + 1),
            message: message.to_string(),
        }
    }

    fn root_key_line(&self, key: &str) -> Option<usize> {
        let r = lines::root_region(&self.lines)?;
        lines::find_key(&self.lines, r, key).map(|k| k.line + 1)
    }

    fn container_line(&self, index: usize) -> Option<usize> {
        let r = lines::root_region(&self.lines)?;
        let spec = lines::find_key(&self.lines, r, "spec")?;
        let spec_map = lines::value_map(&self.lines, &spec, r.end)?;
        let ck = lines::find_key(&self.lines, spec_map, "containers")?;
        let items = lines::value_seq(&self.lines, &ck, spec_map.end)?;
        items.get(index).map(|it| it.line + 1)
    }

    /// Locates the edited nodes in the text, checking the line view against the semantic view.
    fn locate_lenient(&self) -> Result<Located, ManifestError> {
        let fail = |line: Option<usize>, what: &str| {
            self.refused(line, &format!("cannot locate {what} in the text (the editor handles block-style YAML as kubeadm writes it)"))
        };
        let root =
            lines::root_region(&self.lines).ok_or_else(|| fail(None, "the top-level mapping"))?;
        let spec_key =
            lines::find_key(&self.lines, root, "spec").ok_or_else(|| fail(None, "spec"))?;
        let spec = lines::value_map(&self.lines, &spec_key, root.end)
            .ok_or_else(|| fail(Some(spec_key.line), "spec's mapping"))?;
        let ck = lines::find_key(&self.lines, spec, "containers")
            .ok_or_else(|| fail(Some(spec_key.line), "spec.containers"))?;
        let containers = lines::value_seq(&self.lines, &ck, spec.end)
            .ok_or_else(|| fail(Some(ck.line), "the spec.containers list"))?;
        let n = self.value["spec"]["containers"]
            .as_array()
            .map_or(0, Vec::len);
        if containers.len() != n {
            return Err(fail(Some(ck.line), "each of spec.containers"));
        }
        let container_item = containers[self.container];
        let container_map = lines::item_map(&self.lines, container_item)
            .ok_or_else(|| fail(Some(container_item.line), "the kube-apiserver container"))?;
        let command_key = lines::find_key(&self.lines, container_map, "command")
            .ok_or_else(|| fail(Some(container_item.line), "the container's command"))?;
        let command =
            lines::value_seq(&self.lines, &command_key, container_map.end).ok_or_else(|| {
                fail(
                    Some(command_key.line),
                    "the command list (a flow-style [...] list is not supported)",
                )
            })?;
        let ncmd = self.container_value()["command"]
            .as_array()
            .map_or(0, Vec::len);
        if command.len() != ncmd {
            return Err(fail(Some(command_key.line), "each command item"));
        }
        let mounts_key = lines::find_key(&self.lines, container_map, "volumeMounts");
        let mounts = self.seq_of(
            &mounts_key,
            container_map.end,
            self.container_value().get("volumeMounts"),
            "volumeMounts",
        )?;
        let volumes_key = lines::find_key(&self.lines, spec, "volumes");
        let volumes = self.seq_of(
            &volumes_key,
            spec.end,
            self.value.pointer("/spec/volumes"),
            "spec.volumes",
        )?;
        Ok(Located {
            spec,
            spec_key,
            container_item,
            container_map,
            command_key,
            command,
            mounts_key,
            mounts,
            volumes_key,
            volumes,
        })
    }

    fn seq_of(
        &self,
        key: &Option<KeyPos>,
        limit: usize,
        value: Option<&Value>,
        what: &str,
    ) -> Result<Vec<Item>, ManifestError> {
        let Some(k) = key else { return Ok(Vec::new()) };
        let n = match value {
            Some(Value::Array(a)) => a.len(),
            Some(Value::Null) | None => 0,
            Some(_) => return Ok(Vec::new()),
        };
        if n == 0 && k.inline.is_empty() {
            return Ok(Vec::new());
        }
        match lines::value_seq(&self.lines, k, limit) {
            Some(items) if items.len() == n => Ok(items),
            _ => Err(self.refused(
                Some(k.line),
                &format!("cannot locate each item of {what} in the text (the editor handles block-style lists as kubeadm writes them)"),
            )),
        }
    }

    /// Indices into `command` of the items setting `--name` (with `=value`, or bare), each with the
    /// index of a separate value item when the flag is written as `--name value`.
    fn flag_items(&self, name: &str) -> Vec<(usize, Option<usize>)> {
        let cmd: Vec<&str> = self.container_value()["command"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let long = format!("--{name}");
        let mut out = Vec::new();
        for (i, a) in cmd.iter().enumerate().skip(1) {
            if a.strip_prefix(&long).is_some_and(|r| r.starts_with('=')) {
                out.push((i, None));
            } else if *a == long {
                let sep = cmd
                    .get(i + 1)
                    .filter(|n| !n.starts_with('-'))
                    .map(|_| i + 1);
                out.push((i, sep));
            }
        }
        out
    }

    /// Re-parses edited lines and requires that they mean exactly `expected`.
    fn finish(
        &self,
        new_lines: Vec<Line>,
        expected: Value,
        what: &str,
        line0: Option<usize>,
    ) -> Result<Manifest, ManifestError> {
        let text = lines::join_lines(&new_lines);
        let m = Manifest::parse(&text, &self.origin).map_err(|e| {
            self.refused(
                line0,
                &format!("{what}: the edited text does not parse ({e})"),
            )
        })?;
        if m.value != expected {
            return Err(self.refused(
                line0,
                &format!("{what}: the edited text does not mean exactly the intended change"),
            ));
        }
        if m.container != self.container {
            return Err(self.refused(
                line0,
                &format!("{what}: the kube-apiserver container moved"),
            ));
        }
        Ok(m)
    }

    /// Sets `--name=value` in the kube-apiserver command: replaces an existing setting in place
    /// (keeping its quoting and any end-of-line comment) or inserts a new item in the flags'
    /// alphabetical place (kubeadm writes them sorted). Returns `None` when already set so.
    pub fn set_flag(&self, name: &str, value: &str) -> Result<Option<Manifest>, ManifestError> {
        let loc = self.locate_lenient()?;
        let occ = self.flag_items(name);
        let c = self.container;
        let mut expected = self.value.clone();
        let cmd = expected["spec"]["containers"][c]["command"]
            .as_array_mut()
            .expect("checked in parse");
        let new_item = format!("--{name}={value}");
        match occ.as_slice() {
            [] => {
                let at = self.insert_index(name, &loc);
                cmd.insert(at, Value::String(new_item.clone()));
                let (line_at, indent_col) = if at < loc.command.len() {
                    (
                        back_over_comments(&self.lines, loc.command[at].line, loc.command[at].col),
                        loc.command[at].col,
                    )
                } else {
                    let last = loc.command[loc.command.len() - 1];
                    (last.end, last.col)
                };
                let text = format!(
                    "{}- {}",
                    " ".repeat(indent_col),
                    render_plain_or_quoted(&new_item)
                );
                let new_lines = insert_lines(&self.lines, line_at, &[text]);
                self.finish(
                    new_lines,
                    expected,
                    &format!("adding --{name}"),
                    Some(line_at),
                )
                .map(Some)
            }
            [(i, sep)] => {
                let (target, new_scalar) = match sep {
                    Some(s) => (*s, value.to_string()),
                    None => (*i, new_item.clone()),
                };
                if cmd[target] == Value::String(new_scalar.clone()) {
                    return Ok(None);
                }
                cmd[target] = Value::String(new_scalar.clone());
                let it = loc.command[target];
                let line0 = Some(it.line);
                if it.end != it.line + 1 {
                    return Err(self.refused(
                        line0,
                        &format!("--{name} spans several lines; put it on one line"),
                    ));
                }
                let (s, e) = lines::item_scalar_span(&self.lines, it)
                    .ok_or_else(|| self.refused(line0, "cannot find the flag's text"))?;
                let old = &self.lines[it.line].text;
                let rendered = render_like(&old[s..e], &new_scalar);
                let mut rest = old[e..].to_string();
                // Keep an end-of-line comment in its column when there is room.
                if let Some(hash) = rest.find('#') {
                    let comment_col = e + hash;
                    let pad = comment_col.saturating_sub(s + rendered.len()).max(1);
                    rest = format!("{}{}", " ".repeat(pad), &rest[hash..]);
                }
                let mut new_lines = self.lines.clone();
                new_lines[it.line].text = format!("{}{}{}", &old[..s], rendered, rest);
                self.finish(new_lines, expected, &format!("changing --{name}"), line0)
                    .map(Some)
            }
            _ => Err(self.refused(
                loc.command.get(occ[1].0).map(|it| it.line),
                &format!("--{name} is given more than once; keep one"),
            )),
        }
    }

    /// Removes every `--name` setting from the kube-apiserver command. `None` when absent.
    pub fn remove_flag(&self, name: &str) -> Result<Option<Manifest>, ManifestError> {
        let loc = self.locate_lenient()?;
        let occ = self.flag_items(name);
        if occ.is_empty() {
            return Ok(None);
        }
        let mut idx: Vec<usize> = occ
            .iter()
            .flat_map(|(i, s)| std::iter::once(*i).chain(*s))
            .collect();
        idx.sort_unstable();
        let mut expected = self.value.clone();
        let cmd = expected["spec"]["containers"][self.container]["command"]
            .as_array_mut()
            .expect("checked in parse");
        let mut new_lines = self.lines.clone();
        for &i in idx.iter().rev() {
            cmd.remove(i);
            let it = loc.command[i];
            new_lines = delete_lines(&new_lines, it.line, it.end);
        }
        let first = loc.command[idx[0]].line;
        self.finish(
            new_lines,
            expected,
            &format!("removing --{name}"),
            Some(first),
        )
        .map(Some)
    }

    /// Where a new `--name` goes: right after `--encryption-provider-config` for its reload
    /// companion, else before the first flag that sorts after it.
    fn insert_index(&self, name: &str, loc: &Located) -> usize {
        let cmd = self.container_value()["command"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if name == RELOAD_FLAG
            && let Some((i, sep)) = self.flag_items(CONFIG_FLAG).first()
        {
            return sep.unwrap_or(*i) + 1;
        }
        for (i, v) in cmd.iter().enumerate().skip(1) {
            if let Some(other) = v.as_str().and_then(|s| s.strip_prefix("--")) {
                let other_name = other.split('=').next().unwrap_or(other);
                if other_name > name {
                    return i;
                }
            }
        }
        loc.command.len()
    }

    /// Adds a volumeMount (readOnly) of host directory `dir` at the same path in the container,
    /// and its hostPath volume (type DirectoryOrCreate), both named `name`.
    pub fn add_host_dir_mount(&self, name: &str, dir: &str) -> Result<Manifest, ManifestError> {
        let step1 = self.append_mount(name, dir)?;
        step1.append_volume(name, dir)
    }

    fn append_mount(&self, name: &str, dir: &str) -> Result<Manifest, ManifestError> {
        let loc = self.locate_lenient()?;
        let mut expected = self.value.clone();
        let container = expected["spec"]["containers"][self.container]
            .as_object_mut()
            .expect("container is a mapping");
        let entry = json!({"mountPath": dir, "name": name, "readOnly": true});
        match container.get_mut("volumeMounts") {
            Some(Value::Array(a)) => a.push(entry),
            _ => {
                container.insert("volumeMounts".into(), Value::Array(vec![entry]));
            }
        }
        let fields = |k: &str| -> Vec<String> {
            vec![
                format!("{k}mountPath: {}", render_plain_or_quoted(dir)),
                format!("{k}name: {}", render_plain_or_quoted(name)),
                format!("{k}readOnly: true"),
            ]
        };
        let list = BlockList {
            key: "volumeMounts",
            path: "volumeMounts",
            found: loc.mounts_key.as_ref(),
            items: &loc.mounts,
            parent: loc.container_map,
            new_key_at: loc.container_item.end,
        };
        self.append_item(&loc, list, fields, expected, "adding a volumeMount")
    }

    fn append_volume(&self, name: &str, dir: &str) -> Result<Manifest, ManifestError> {
        let loc = self.locate_lenient()?;
        let mut expected = self.value.clone();
        let spec = expected["spec"].as_object_mut().expect("spec is a mapping");
        let entry = json!({"hostPath": {"path": dir, "type": "DirectoryOrCreate"}, "name": name});
        match spec.get_mut("volumes") {
            Some(Value::Array(a)) => a.push(entry),
            _ => {
                spec.insert("volumes".into(), Value::Array(vec![entry]));
            }
        }
        let nested = self.host_path_nesting(&loc);
        let fields = |k: &str| -> Vec<String> {
            let n = format!("{k}{}", " ".repeat(nested));
            vec![
                format!("{k}hostPath:"),
                format!("{n}path: {}", render_plain_or_quoted(dir)),
                format!("{n}type: DirectoryOrCreate"),
                format!("{k}name: {}", render_plain_or_quoted(name)),
            ]
        };
        let list = BlockList {
            key: "volumes",
            path: "spec.volumes",
            found: loc.volumes_key.as_ref(),
            items: &loc.volumes,
            parent: loc.spec,
            new_key_at: lines::key_end(&self.lines, &loc.spec_key, self.lines.len()),
        };
        self.append_item(&loc, list, fields, expected, "adding a volume")
    }

    /// Appends an entry (`fields` at a key indentation) to a block list, in the list's own style; creates the
    /// list (in the style of the manifest's other lists) when it is absent or empty.
    fn append_item(
        &self,
        loc: &Located,
        list: BlockList<'_>,
        fields: impl Fn(&str) -> Vec<String>,
        expected: Value,
        what: &str,
    ) -> Result<Manifest, ManifestError> {
        let new_list = |col: usize| {
            let (seq_col, key_off) = self.seq_style(loc, col);
            let mut t = vec![format!("{}{}:", " ".repeat(col), list.key)];
            t.extend(dash_item(seq_col, key_off, &fields));
            t
        };
        let (at, texts) = match (list.found, list.items.last()) {
            (Some(_), Some(last)) => {
                let (dash, key) = item_style(&self.lines, list.items[0]);
                (last.end, dash_item(dash, key, &fields))
            }
            (Some(k), None) if k.inline.is_empty() || k.inline == "null" || k.inline == "~" => {
                let end = lines::key_end(&self.lines, k, list.parent.end);
                let mut nl = delete_lines(&self.lines, k.line, end);
                nl = insert_lines(&nl, k.line, &new_list(k.col));
                return self.finish(nl, expected, what, Some(k.line));
            }
            (Some(k), None) => {
                return Err(self.refused(
                    Some(k.line),
                    &format!(
                        "{} is written in flow style; write it as a block list",
                        list.path
                    ),
                ));
            }
            (None, _) => (list.new_key_at, new_list(list.parent.col)),
        };
        let nl = insert_lines(&self.lines, at, &texts);
        self.finish(nl, expected, what, Some(at))
    }

    /// The document's sequence style, taken from the command list: the dash column for a list
    /// under a key at `key_col`, and the offset of the item's keys from its dash.
    fn seq_style(&self, loc: &Located, key_col: usize) -> (usize, usize) {
        let extra = loc
            .command
            .first()
            .map_or(0, |it| it.col.saturating_sub(loc.command_key.col));
        let key_off = lines::item_map(&self.lines, loc.container_item)
            .map_or(2, |r| r.col - loc.container_item.col);
        (key_col + extra, key_off.max(2))
    }

    fn host_path_nesting(&self, loc: &Located) -> usize {
        for it in &loc.volumes {
            if let Some(r) = lines::item_map(&self.lines, *it)
                && let Some(k) = lines::find_key(&self.lines, r, "hostPath")
                && let Some(inner) = lines::value_map(&self.lines, &k, r.end)
                && inner.col > k.col
            {
                return inner.col - k.col;
            }
        }
        2
    }

    /// Removes the volumeMount named `name` and the volume it uses (when no other mount uses it).
    /// A list left empty loses its key too.
    pub fn remove_mount(&self, name: &str) -> Result<Option<Manifest>, ManifestError> {
        let loc = self.locate_lenient()?;
        let mounts = self.volume_mounts();
        let Some(mi) = mounts.iter().position(|m| m.name == name) else {
            return Ok(None);
        };
        let mut expected = self.value.clone();
        let mut ranges = Vec::new();
        {
            let container = expected["spec"]["containers"][self.container]
                .as_object_mut()
                .expect("container is a mapping");
            let list = container
                .get_mut("volumeMounts")
                .and_then(Value::as_array_mut)
                .expect("mounts exist");
            list.remove(mi);
            let key = loc.mounts_key.as_ref().expect("mounts exist");
            if list.is_empty() && key.inline.is_empty() {
                container.remove("volumeMounts");
                ranges.push((
                    key.line,
                    lines::key_end(&self.lines, key, loc.container_map.end),
                ));
            } else {
                ranges.push((loc.mounts[mi].line, loc.mounts[mi].end));
            }
        }
        let still_used = mounts
            .iter()
            .enumerate()
            .any(|(i, m)| i != mi && m.name == name);
        if !still_used && let Some(vi) = self.volumes().iter().position(|v| v.name == name) {
            let spec = expected["spec"].as_object_mut().expect("spec is a mapping");
            let list = spec
                .get_mut("volumes")
                .and_then(Value::as_array_mut)
                .expect("volumes exist");
            list.remove(vi);
            let key = loc.volumes_key.as_ref().expect("volumes exist");
            if list.is_empty() && key.inline.is_empty() {
                spec.remove("volumes");
                ranges.push((key.line, lines::key_end(&self.lines, key, loc.spec.end)));
            } else {
                ranges.push((loc.volumes[vi].line, loc.volumes[vi].end));
            }
        }
        ranges.sort_unstable();
        let mut nl = self.lines.clone();
        for (s, e) in ranges.into_iter().rev() {
            nl = delete_lines(&nl, s, e);
        }
        self.finish(nl, expected, "removing a volume", Some(loc.mounts[mi].line))
            .map(Some)
    }

    /// The pod annotation `key`, if set.
    pub fn annotation(&self, key: &str) -> Option<String> {
        self.value
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Sets the pod annotation `key` to `value` (replacing its value in place, or adding it at the
    /// end of `metadata.annotations`, adding that mapping when missing). Changing an annotation
    /// makes the kubelet restart the static pod. `None` when already set so.
    pub fn set_annotation(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Option<Manifest>, ManifestError> {
        if self.annotation(key).as_deref() == Some(value) {
            return Ok(None);
        }
        let mut expected = self.value.clone();
        let meta = expected
            .as_object_mut()
            .expect("root is a mapping")
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(meta) = meta.as_object_mut() else {
            return Err(self.refused(None, "metadata is not a mapping"));
        };
        let ann = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if ann.is_null() {
            *ann = Value::Object(Map::new());
        }
        let Some(ann) = ann.as_object_mut() else {
            return Err(self.refused(None, "metadata.annotations is not a mapping"));
        };
        ann.insert(key.to_string(), Value::String(value.to_string()));
        let fail = |line: Option<usize>, what: &str| {
            self.refused(line, &format!("cannot locate {what} in the text"))
        };
        let root =
            lines::root_region(&self.lines).ok_or_else(|| fail(None, "the top-level mapping"))?;
        let meta_key =
            lines::find_key(&self.lines, root, "metadata").ok_or_else(|| fail(None, "metadata"))?;
        let meta_map = lines::value_map(&self.lines, &meta_key, root.end)
            .ok_or_else(|| fail(Some(meta_key.line), "metadata's mapping"))?;
        let step = meta_map.col.saturating_sub(meta_key.col).max(2);
        let rendered_key = render_plain_or_quoted(key);
        let rendered_value = render_plain_or_quoted(value);
        let new_lines = match lines::find_key(&self.lines, meta_map, "annotations") {
            Some(ak) if ak.inline.is_empty() || ak.inline == "null" || ak.inline == "~" => {
                match lines::value_map(&self.lines, &ak, meta_map.end) {
                    Some(am) => {
                        if let Some(k) = lines::find_key(&self.lines, am, key) {
                            let t = &self.lines[k.line].text;
                            let end = lines::content_end(t);
                            let colon = t[k.col..end]
                                .find(": ")
                                .map(|i| k.col + i + 2)
                                .ok_or_else(|| fail(Some(k.line), "the annotation's value"))?;
                            let start = colon + lines::indent(&t[colon..]);
                            let old = &t[start..end];
                            let mut nl = self.lines.clone();
                            nl[k.line].text =
                                format!("{}{}{}", &t[..start], render_like(old, value), &t[end..]);
                            nl
                        } else {
                            let at = lines::key_end(
                                &self.lines,
                                &lines::map_keys(&self.lines, am)
                                    .last()
                                    .cloned()
                                    .expect("non-empty"),
                                am.end,
                            );
                            insert_lines(
                                &self.lines,
                                at,
                                &[format!(
                                    "{}{rendered_key}: {rendered_value}",
                                    " ".repeat(am.col)
                                )],
                            )
                        }
                    }
                    None => {
                        let mut nl = delete_lines(&self.lines, ak.line, ak.line + 1);
                        nl = insert_lines(
                            &nl,
                            ak.line,
                            &[
                                format!("{}annotations:", " ".repeat(ak.col)),
                                format!(
                                    "{}{rendered_key}: {rendered_value}",
                                    " ".repeat(ak.col + step)
                                ),
                            ],
                        );
                        nl
                    }
                }
            }
            Some(ak) => {
                return Err(self.refused(
                    Some(ak.line),
                    "metadata.annotations is written in flow style; write it as a block mapping",
                ));
            }
            None => insert_lines(
                &self.lines,
                meta_map.first_line,
                &[
                    format!("{}annotations:", " ".repeat(meta_map.col)),
                    format!(
                        "{}{rendered_key}: {rendered_value}",
                        " ".repeat(meta_map.col + step)
                    ),
                ],
            ),
        };
        self.finish(
            new_lines,
            expected,
            &format!("setting the annotation {key}"),
            Some(meta_key.line),
        )
        .map(Some)
    }

    /// Removes the pod annotation `key` (and `annotations:` itself when that leaves it empty).
    pub fn remove_annotation(&self, key: &str) -> Result<Option<Manifest>, ManifestError> {
        if self.annotation(key).is_none() {
            return Ok(None);
        }
        let mut expected = self.value.clone();
        let meta = expected["metadata"]
            .as_object_mut()
            .expect("annotation exists");
        let ann = meta["annotations"]
            .as_object_mut()
            .expect("annotation exists");
        ann.remove(key);
        let now_empty = ann.is_empty();
        if now_empty {
            meta.remove("annotations");
        }
        let fail = |what: &str| self.refused(None, &format!("cannot locate {what} in the text"));
        let root = lines::root_region(&self.lines).ok_or_else(|| fail("the top-level mapping"))?;
        let meta_key =
            lines::find_key(&self.lines, root, "metadata").ok_or_else(|| fail("metadata"))?;
        let meta_map = lines::value_map(&self.lines, &meta_key, root.end)
            .ok_or_else(|| fail("metadata's mapping"))?;
        let ak = lines::find_key(&self.lines, meta_map, "annotations")
            .ok_or_else(|| fail("metadata.annotations"))?;
        let am = lines::value_map(&self.lines, &ak, meta_map.end)
            .ok_or_else(|| fail("metadata.annotations"))?;
        let k = lines::find_key(&self.lines, am, key).ok_or_else(|| fail("the annotation"))?;
        let new_lines = if now_empty {
            delete_lines(
                &self.lines,
                ak.line,
                lines::key_end(&self.lines, &ak, meta_map.end),
            )
        } else {
            delete_lines(&self.lines, k.line, lines::key_end(&self.lines, &k, am.end))
        };
        self.finish(
            new_lines,
            expected,
            &format!("removing the annotation {key}"),
            Some(k.line),
        )
        .map(Some)
    }

    /// Points the kube-apiserver at the EncryptionConfiguration at `config` (a path that is the
    /// same on the host and in the container, as kubeadm mounts directories), optionally sets
    /// `--encryption-provider-config-automatic-reload` (`Some(true)` adds it, `Some(false)`
    /// removes it, `None` leaves it), and mounts the config's directory read-only when no mounted
    /// host directory already contains it. Idempotent: a second run changes nothing.
    pub fn enable_encryption(
        &self,
        config: &str,
        automatic_reload: Option<bool>,
    ) -> Result<Edit, ManifestError> {
        self.validate()?;
        let config_path = node::clean_path(config)
            .filter(|p| p.is_absolute())
            .ok_or_else(|| {
                self.refused(
                    None,
                    &format!("the config path {config:?} must be absolute"),
                )
            })?;
        let config = config_path.to_string_lossy().to_string();
        let mut m = self.clone();
        let mut changes = Vec::new();
        if let Some(next) = m.set_flag(CONFIG_FLAG, &config)? {
            changes.push(format!("set --{CONFIG_FLAG}={config}"));
            m = next;
        }
        match automatic_reload {
            Some(true) => {
                if let Some(next) = m.set_flag(RELOAD_FLAG, "true")? {
                    changes.push(format!("set --{RELOAD_FLAG}=true"));
                    m = next;
                }
            }
            Some(false) => {
                if let Some(next) = m.remove_flag(RELOAD_FLAG)? {
                    changes.push(format!("removed --{RELOAD_FLAG}"));
                    m = next;
                }
            }
            None => {}
        }
        match m.host_path_for(&config) {
            Some(host) if host == config_path => {}
            Some(host) => {
                let mount = m
                    .mount_for(&config)
                    .map(|mt| mt.mount_path)
                    .unwrap_or_default();
                return Err(self.refused(
                    None,
                    &format!(
                        "{config} is inside the mount {mount}, whose host directory puts it at {} on the host; choose a --config outside that mount or at its host location",
                        host.display()
                    ),
                ));
            }
            None => {
                let dir = config_path
                    .parent()
                    .map(|p| p.to_string_lossy().to_string())
                    .unwrap_or_else(|| "/".into());
                let names: Vec<String> = m
                    .volumes()
                    .into_iter()
                    .map(|v| v.name)
                    .chain(m.volume_mounts().into_iter().map(|v| v.name))
                    .collect();
                let mut name = CONFIG_VOLUME_NAME.to_string();
                let mut n = 2;
                while names.contains(&name) {
                    name = format!("{CONFIG_VOLUME_NAME}-{n}");
                    n += 1;
                }
                m = m.add_host_dir_mount(&name, &dir)?;
                changes.push(format!(
                    "mounted host directory {dir} read-only (volume {name})"
                ));
            }
        }
        Ok(Edit {
            manifest: m,
            changes,
        })
    }

    /// Removes `--encryption-provider-config` and its automatic-reload flag, and the volume that
    /// mounted the config's directory when nothing else on the command line uses that mount.
    /// Only call this after every object was rewritten with the identity provider.
    pub fn disable_encryption(&self) -> Result<Edit, ManifestError> {
        self.validate()?;
        let mut m = self.clone();
        let mut changes = Vec::new();
        let config = m.encryption_provider_config();
        if let Some(next) = m.remove_flag(RELOAD_FLAG)? {
            changes.push(format!("removed --{RELOAD_FLAG}"));
            m = next;
        }
        if let Some(next) = m.remove_flag(CONFIG_FLAG)? {
            changes.push(format!("removed --{CONFIG_FLAG}"));
            m = next;
        }
        if let Some(config) = config
            && let Some(mount) = m.mount_for(&config)
        {
            let mp = node::clean_path(&mount.mount_path);
            let cp = node::clean_path(&config);
            let dedicated =
                mp.is_some() && (mp == cp || mp.as_deref() == cp.as_deref().and_then(Path::parent));
            let used_elsewhere = m.command_line().iter().any(|a| {
                let v = a.split_once('=').map_or(a.as_str(), |(_, v)| v);
                v.split(',').any(|p| {
                    node::clean_path(p)
                        .zip(mp.as_ref())
                        .is_some_and(|(p, mp)| p.starts_with(mp))
                })
            });
            let shared = m
                .volume_mounts()
                .iter()
                .filter(|v| v.name == mount.name)
                .count()
                > 1;
            if dedicated
                && !used_elsewhere
                && !shared
                && let Some(next) = m.remove_mount(&mount.name)?
            {
                changes.push(format!(
                    "removed the volume {} for {}",
                    mount.name, mount.mount_path
                ));
                m = next;
            }
        }
        Ok(Edit {
            manifest: m,
            changes,
        })
    }
}

fn str_field(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn is_flag(arg: &str, name: &str) -> bool {
    arg.strip_prefix("--")
        .and_then(|r| r.strip_prefix(name))
        .is_some_and(|r| r.is_empty() || r.starts_with('='))
}

/// " (did you mean `x`?)" for a known field within edit distance 2.
fn suggest(key: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (distance(&key.to_lowercase(), &k.to_lowercase()), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// A scalar written plain when that reads back as the same string, else double-quoted.
pub(crate) fn render_plain_or_quoted(s: &str) -> String {
    let charset_ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+~".contains(c));
    let start_ok = !s.starts_with([':', '~', '@', ',', '.', '+']) && !s.starts_with("-.");
    if charset_ok && start_ok && !s.ends_with(':') && !looks_non_string(s) {
        s.to_string()
    } else {
        double_quote(s)
    }
}

/// Plain scalars YAML would read as something other than a string.
fn looks_non_string(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
    ) || s.parse::<f64>().is_ok()
        || s.starts_with(|c: char| c.is_ascii_digit())
}

fn double_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Renders `new` in the quoting style of the scalar text `old`.
pub(crate) fn render_like(old: &str, new: &str) -> String {
    if old.starts_with('\'') && !new.contains('\n') {
        format!("'{}'", new.replace('\'', "''"))
    } else if old.starts_with('"') {
        double_quote(new)
    } else {
        render_plain_or_quoted(new)
    }
}

/// The dash column of an item and the offset of its mapping's keys from the dash.
fn item_style(lines: &[Line], it: Item) -> (usize, usize) {
    let off = lines::item_map(lines, it).map_or(2, |r| {
        if r.first_line == it.line {
            r.col - it.col
        } else {
            2
        }
    });
    (it.col, off.max(2))
}

/// Lines of a new sequence item whose mapping fields come from `fields(indent of keys)`.
fn dash_item(dash_col: usize, key_off: usize, fields: impl Fn(&str) -> Vec<String>) -> Vec<String> {
    let k = " ".repeat(dash_col + key_off);
    let mut f = fields(&k);
    if let Some(first) = f.first_mut() {
        *first = format!(
            "{}-{}{}",
            " ".repeat(dash_col),
            " ".repeat(key_off - 1),
            first.trim_start()
        );
    }
    f
}

/// Moves an insertion point at `line` up over comment lines directly above it at its column, so
/// a new item does not split a comment from the item it describes.
pub(crate) fn back_over_comments(lines: &[Line], line: usize, col: usize) -> usize {
    let mut at = line;
    while at > 0 {
        let t = &lines[at - 1].text;
        if t.trim_start().starts_with('#') && lines::indent(t) == col {
            at -= 1;
        } else {
            break;
        }
    }
    at
}

/// Inserts `texts` as new lines before index `at`, using the document's line ending; a missing
/// final newline stays missing.
pub(crate) fn insert_lines(lines: &[Line], at: usize, texts: &[String]) -> Vec<Line> {
    let eol = lines::document_eol(lines);
    let mut out: Vec<Line> = lines[..at].to_vec();
    let mut new: Vec<Line> = texts
        .iter()
        .map(|t| Line {
            text: t.clone(),
            eol: eol.to_string(),
        })
        .collect();
    if at == lines.len()
        && let Some(prev) = out.last_mut()
        && prev.eol.is_empty()
    {
        prev.eol = eol.to_string();
        if let Some(last) = new.last_mut() {
            last.eol.clear();
        }
    }
    out.append(&mut new);
    out.extend_from_slice(&lines[at..]);
    out
}

/// Deletes lines `start..end`; when that removes the last line and it had no final newline,
/// the new last line loses its newline too.
pub(crate) fn delete_lines(lines: &[Line], start: usize, end: usize) -> Vec<Line> {
    let mut out: Vec<Line> = lines[..start].to_vec();
    out.extend_from_slice(&lines[end..]);
    if end == lines.len()
        && lines.last().is_some_and(|l| l.eol.is_empty())
        && let Some(l) = out.last_mut()
    {
        l.eol.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_suggests_typos() {
        assert_eq!(
            suggest("readOlny", MOUNT_FIELDS),
            " (did you mean `readOnly`?)"
        );
        assert_eq!(
            suggest("readonly", MOUNT_FIELDS),
            " (did you mean `readOnly`?)"
        );
        assert_eq!(suggest("zzzzzz", MOUNT_FIELDS), "");
    }

    #[test]
    fn rendering_round_trips_through_yaml() {
        for s in [
            "--a=b",
            "/etc/kubernetes/enc",
            "a b",
            "x: y",
            "true",
            "123",
            "#x",
            "it's",
            "--x=\"q\"",
            "enc-2",
        ] {
            let doc = format!("k: {}\n", render_plain_or_quoted(s));
            let v: Value = serde_saphyr::from_str(&doc).unwrap();
            assert_eq!(v["k"], Value::String(s.into()), "{doc}");
            let doc = format!("k: {}\n", render_like("'x'", s));
            let v: Value = serde_saphyr::from_str(&doc).unwrap();
            assert_eq!(v["k"], Value::String(s.into()), "{doc}");
        }
    }

    #[test]
    fn apiserver_flags_map_the_config_through_the_mounts() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\nspec:\n  containers:\n  - command:\n    - kube-apiserver\n    - --advertise-address=10.0.0.1\n    - \"--encryption-provider-config=/etc/kubernetes/enc/enc.yaml\"\n    - --etcd-servers=https://127.0.0.1:2379\n    name: kube-apiserver\n    volumeMounts:\n    - mountPath: /etc/kubernetes/enc\n      name: enc\n      readOnly: true\n  volumes:\n  - hostPath:\n      path: /srv/keys\n      type: DirectoryOrCreate\n    name: enc\n";
        let f = ApiserverFlags::from_manifest(&Manifest::parse(text, "m.yaml").unwrap());
        assert_eq!(
            f.encryption_provider_config.as_deref(),
            Some(Path::new("/etc/kubernetes/enc/enc.yaml"))
        );
        assert_eq!(
            f.encryption_provider_config_host.as_deref(),
            Some(Path::new("/srv/keys/enc.yaml")),
            "the host path, not the container path"
        );
        assert_eq!(f.etcd_prefix, None);
        let unmounted = text.replace("/etc/kubernetes/enc/enc.yaml", "/opt/enc.yaml");
        let f = ApiserverFlags::from_manifest(&Manifest::parse(&unmounted, "m.yaml").unwrap());
        assert_eq!(f.encryption_provider_config_host, None);
        let prefixed = text.replace(
            "    - kube-apiserver\n",
            "    - kube-apiserver\n    - --etcd-prefix=/kubernetes.io\n",
        );
        let f = ApiserverFlags::from_manifest(&Manifest::parse(&prefixed, "m.yaml").unwrap());
        assert_eq!(f.etcd_prefix.as_deref(), Some("/kubernetes.io"));

        let root = tempfile::tempdir().unwrap();
        assert_eq!(ApiserverFlags::read(root.path()), None, "no manifest");
        let file = node::under_root(root.path(), node::KUBE_APISERVER_MANIFEST);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &prefixed).unwrap();
        let f = ApiserverFlags::read(root.path()).unwrap();
        assert_eq!(f.manifest, file);
        assert_eq!(f.etcd_prefix.as_deref(), Some("/kubernetes.io"));
        std::fs::write(&file, "kind: Pod\n").unwrap();
        assert_eq!(ApiserverFlags::read(root.path()), None, "unusable");
    }

    #[test]
    fn host_dir_mounts_fill_empty_lists_and_refuse_flow_lists() {
        let base = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\nspec:\n  containers:\n  - command:\n    - kube-apiserver\n    name: kube-apiserver\n    volumeMounts:\n  volumes:\n";
        let m = Manifest::parse(base, "m.yaml").unwrap();
        let e = m.add_host_dir_mount("enc", "/srv/enc").unwrap();
        assert_eq!(
            e.text(),
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\nspec:\n  containers:\n  - command:\n    - kube-apiserver\n    name: kube-apiserver\n    volumeMounts:\n    - mountPath: /srv/enc\n      name: enc\n      readOnly: true\n  volumes:\n  - hostPath:\n      path: /srv/enc\n      type: DirectoryOrCreate\n    name: enc\n"
        );
        assert_eq!(
            e.host_path_for("/srv/enc/x.yaml"),
            Some(PathBuf::from("/srv/enc/x.yaml"))
        );
        let flow = base.replace("  volumes:\n", "  volumes: [{name: a, emptyDir: {}}]\n");
        let err = Manifest::parse(&flow, "m.yaml")
            .unwrap()
            .add_host_dir_mount("enc", "/srv/enc")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("m.yaml:11: edit refused: ")
                && err.contains("spec.volumes")
                && err.ends_with("the manifest was not changed"),
            "{err}"
        );
    }
}
