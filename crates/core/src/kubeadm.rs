//! kubeadm's ClusterConfiguration (ConfigMap `kube-system/kubeadm-config`, key `ClusterConfiguration`): reading
//! and format-preserving edits of `apiServer.extraArgs` and `apiServer.extraVolumes`.
//!
//! `kubeadm upgrade` and `kubeadm join --control-plane` generate the kube-apiserver manifest from this document
//! (kubernetes `cmd/kubeadm/app/phases/controlplane/manifests.go`, `volumes.go`), so a flag or volume that is only
//! in a node's manifest disappears at the next upgrade and is missing on a node joined later. The two API versions
//! differ in `extraArgs`: a map of flag name to value in `kubeadm.k8s.io/v1beta3`
//! (`cmd/kubeadm/app/apis/kubeadm/v1beta3/types.go` `ControlPlaneComponent.ExtraArgs map[string]string`), a list
//! of `{name, value}` in `v1beta4` (kubeadm 1.31+, `v1beta4/types.go` `ExtraArgs []Arg`); `extraVolumes` is a list
//! of `HostPathMount` `{name, hostPath, mountPath, readOnly, pathType}` in both.
//!
//! Edits use the manifest editor's line scanner ([`crate::manifest`]): only the lines of the changed entries
//! change (kubeadm writes keys sorted; new keys and entries go where it would put them), and every edit is parsed
//! again and compared with the intended semantic change; anything else is refused and nothing is returned.

pub mod node;

use serde_json::{Map, Value, json};

use crate::manifest::lines::{self, KeyPos, Line, MapRegion};
use crate::manifest::{
    self, CONFIG_FLAG, Manifest, RELOAD_FLAG, back_over_comments, delete_lines, insert_lines,
    render_like, render_plain_or_quoted,
};

/// The ConfigMap kubeadm uploads its configuration to (`cmd/kubeadm/app/constants/constants.go`
/// `KubeadmConfigConfigMap`), in `kube-system`.
pub const CONFIG_MAP: &str = "kubeadm-config";
/// Its namespace.
pub const CONFIG_MAP_NAMESPACE: &str = "kube-system";
/// The data key holding the ClusterConfiguration (`ClusterConfigurationConfigMapKey`).
pub const CLUSTER_CONFIGURATION_KEY: &str = "ClusterConfiguration";

/// The kube-apiserver volumes kubeadm always generates (`phases/controlplane/volumes.go`: the certificates
/// directory, `/etc/ssl/certs` and the CA directories it links to); a config under one of them needs no
/// extraVolume.
pub const KUBEADM_APISERVER_VOLUMES: &[&str] = &[
    "k8s-certs",
    "ca-certs",
    "etc-pki-ca-trust",
    "etc-pki-tls-certs",
    "etc-ca-certificates",
    "usr-share-ca-certificates",
    "usr-local-share-ca-certificates",
];

/// Why the ClusterConfiguration could not be read or edited.
#[derive(Debug, thiserror::Error)]
pub enum KubeadmError {
    /// Not a usable ClusterConfiguration.
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    /// An edit could not be made safely; nothing changed.
    #[error("{origin}{}: edit refused: {message}; kubeadm-config was not changed", line.map(|l| format!(":{l}")).unwrap_or_default())]
    EditRefused {
        origin: String,
        line: Option<usize>,
        message: String,
    },
}

type Result<T, E = KubeadmError> = std::result::Result<T, E>;

/// `apiServer.extraArgs` as a map (v1beta3) or a list of `{name, value}` (v1beta4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiVersion {
    /// `kubeadm.k8s.io/v1beta3`.
    V1beta3,
    /// `kubeadm.k8s.io/v1beta4`.
    V1beta4,
}

/// One `apiServer.extraVolumes` entry (kubeadm `HostPathMount`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPathMount {
    pub name: String,
    pub host_path: String,
    pub mount_path: String,
    pub read_only: bool,
    pub path_type: Option<String>,
}

impl HostPathMount {
    fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("hostPath".into(), json!(self.host_path));
        m.insert("mountPath".into(), json!(self.mount_path));
        m.insert("name".into(), json!(self.name));
        if let Some(t) = &self.path_type {
            m.insert("pathType".into(), json!(t));
        }
        if self.read_only {
            m.insert("readOnly".into(), json!(true));
        }
        Value::Object(m)
    }

    /// The entry's fields in kubeadm's (sorted) order, as YAML lines without indentation.
    fn field_lines(&self) -> Vec<String> {
        let mut f = vec![
            format!("hostPath: {}", render_plain_or_quoted(&self.host_path)),
            format!("mountPath: {}", render_plain_or_quoted(&self.mount_path)),
            format!("name: {}", render_plain_or_quoted(&self.name)),
        ];
        if let Some(t) = &self.path_type {
            f.push(format!("pathType: {}", render_plain_or_quoted(t)));
        }
        if self.read_only {
            f.push("readOnly: true".into());
        }
        f
    }
}

/// A parsed ClusterConfiguration, keeping its exact text.
#[derive(Clone, Debug)]
pub struct ClusterConfiguration {
    origin: String,
    lines: Vec<Line>,
    value: Value,
    version: ApiVersion,
}

impl ClusterConfiguration {
    /// Parses the document; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<ClusterConfiguration> {
        let invalid = |message: String| KubeadmError::Invalid {
            origin: origin.to_string(),
            message,
        };
        let value: Value =
            serde_saphyr::from_str(text).map_err(|e| invalid(format!("not valid YAML: {e}")))?;
        if value.get("kind").and_then(Value::as_str) != Some("ClusterConfiguration") {
            return Err(invalid("kind is not ClusterConfiguration".into()));
        }
        let version = match value.get("apiVersion").and_then(Value::as_str) {
            Some("kubeadm.k8s.io/v1beta3") => ApiVersion::V1beta3,
            Some("kubeadm.k8s.io/v1beta4") => ApiVersion::V1beta4,
            other => {
                return Err(invalid(format!(
                    "apiVersion {other:?} is not kubeadm.k8s.io/v1beta3 or v1beta4 (kubeadm 1.22+)"
                )));
            }
        };
        Ok(ClusterConfiguration {
            origin: origin.to_string(),
            lines: lines::split_lines(text),
            value,
            version,
        })
    }

    /// The exact text.
    pub fn text(&self) -> String {
        lines::join_lines(&self.lines)
    }

    /// The API version.
    pub fn version(&self) -> ApiVersion {
        self.version
    }

    /// The semantic view.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// `apiServer.extraArgs` as (name, value) pairs in document order.
    pub fn extra_args(&self) -> Vec<(String, String)> {
        match self.value.pointer("/apiServer/extraArgs") {
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), scalar(v))).collect(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|i| {
                    (
                        i.get("name").map(scalar).unwrap_or_default(),
                        i.get("value").map(scalar).unwrap_or_default(),
                    )
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The value of one extra arg (the last one: duplicates are allowed and the last wins on the command line).
    pub fn extra_arg(&self, name: &str) -> Option<String> {
        self.extra_args()
            .into_iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// `apiServer.extraVolumes`.
    pub fn extra_volumes(&self) -> Vec<HostPathMount> {
        self.value
            .pointer("/apiServer/extraVolumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|v| HostPathMount {
                name: v.get("name").map(scalar).unwrap_or_default(),
                host_path: v.get("hostPath").map(scalar).unwrap_or_default(),
                mount_path: v.get("mountPath").map(scalar).unwrap_or_default(),
                read_only: v.get("readOnly").and_then(Value::as_bool).unwrap_or(false),
                path_type: v.get("pathType").map(scalar).filter(|s| !s.is_empty()),
            })
            .collect()
    }

    fn refused(&self, line0: Option<usize>, message: &str) -> KubeadmError {
        KubeadmError::EditRefused {
            origin: self.origin.clone(),
            line: line0.map(|l| l + 1),
            message: message.to_string(),
        }
    }

    fn finish(&self, new_lines: Vec<Line>, expected: Value, what: &str) -> Result<Self> {
        let text = lines::join_lines(&new_lines);
        let cc = ClusterConfiguration::parse(&text, &self.origin).map_err(|e| {
            self.refused(
                None,
                &format!("{what}: the edited text does not parse ({e})"),
            )
        })?;
        if cc.value != expected {
            return Err(self.refused(
                None,
                &format!("{what}: the edited text does not mean exactly the intended change"),
            ));
        }
        Ok(cc)
    }

    /// The `apiServer` key and its block mapping (made a block when it is `{}` or missing); returns the lines
    /// (possibly changed), the key and the mapping region (None when empty).
    fn api_server_block(&self) -> Result<(Vec<Line>, KeyPos, Option<MapRegion>)> {
        let root = lines::root_region(&self.lines)
            .ok_or_else(|| self.refused(None, "the document is empty"))?;
        match lines::find_key(&self.lines, root, "apiServer") {
            Some(k) if k.inline.is_empty() => {
                let r = lines::value_map(&self.lines, &k, root.end);
                Ok((self.lines.clone(), k, r))
            }
            Some(k) if k.inline == "{}" || k.inline == "null" || k.inline == "~" => {
                let mut nl = self.lines.clone();
                let t = &nl[k.line].text;
                let end = lines::content_end(t);
                nl[k.line].text = format!("{}apiServer:{}", " ".repeat(k.col), &t[end..]);
                let k = KeyPos {
                    inline: String::new(),
                    ..k
                };
                Ok((nl, k, None))
            }
            Some(k) => Err(self.refused(
                Some(k.line),
                "apiServer is written in flow style; write it as a block mapping",
            )),
            None => {
                // kubeadm writes keys sorted: apiServer comes first.
                let at = root.first_line;
                let nl = insert_lines(
                    &self.lines,
                    at,
                    &[format!("{}apiServer:", " ".repeat(root.col))],
                );
                let k = KeyPos {
                    key: "apiServer".into(),
                    line: at,
                    col: root.col,
                    inline: String::new(),
                };
                Ok((nl, k, None))
            }
        }
    }

    /// Replaces the value of the child `key` of `apiServer` by `entries` (block lines produced by `render`
    /// given the child's indentation), keeping other children; `None` entries remove the child (and leave
    /// `apiServer: {}` when nothing else remains).
    fn replace_child(
        &self,
        key: &str,
        expected: Value,
        what: &str,
        edit: impl Fn(&[Line], Option<(&KeyPos, usize)>, usize) -> Result<Vec<Line>>,
    ) -> Result<Self> {
        let (nl, ak, region) = self.api_server_block()?;
        let root_end = nl.len();
        let step = 2;
        let child_col = region.map_or(ak.col + step, |r| r.col);
        let child = region.and_then(|r| lines::find_key(&nl, r, key));
        let new_lines = match child {
            Some(ck) if !ck.inline.is_empty() && ck.inline != "{}" && ck.inline != "[]" => {
                return Err(self.refused(
                    Some(ck.line),
                    &format!("apiServer.{key} is written in flow style; write it in block style"),
                ));
            }
            Some(ck) => {
                let end = region.map_or(root_end, |r| r.end);
                let ck_end = lines::key_end(&nl, &ck, end);
                edit(&nl, Some((&ck, ck_end)), child_col)?
            }
            None => {
                // Insert `key:` where kubeadm's sorted output puts it.
                let at = sorted_key_line(&nl, region, key, ak.line + 1);
                let with_key = insert_lines(&nl, at, &[format!("{}{key}:", " ".repeat(child_col))]);
                let ck = KeyPos {
                    key: key.into(),
                    line: at,
                    col: child_col,
                    inline: String::new(),
                };
                edit(&with_key, Some((&ck, at + 1)), child_col)?
            }
        };
        // An emptied apiServer becomes `apiServer: {}` again (what kubeadm writes).
        let mut new_lines = new_lines;
        let root = lines::root_region(&new_lines)
            .ok_or_else(|| self.refused(None, "the document became empty"))?;
        if let Some(k) = lines::find_key(&new_lines, root, "apiServer")
            && k.inline.is_empty()
            && lines::value_map(&new_lines, &k, root.end).is_none()
        {
            let t = &new_lines[k.line].text;
            let end = lines::content_end(t);
            new_lines[k.line].text = format!("{}apiServer: {{}}{}", " ".repeat(k.col), &t[end..]);
        }
        self.finish(new_lines, expected, what)
    }

    fn expected_api_server(&self) -> Value {
        let mut v = self.value.clone();
        let obj = v.as_object_mut().expect("a mapping");
        let api = obj
            .entry("apiServer")
            .or_insert_with(|| Value::Object(Map::new()));
        if !api.is_object() {
            *api = Value::Object(Map::new());
        }
        v
    }

    /// Sets (`Some`) or removes (`None`) the extra arg `name` of the API server. `Ok(None)`: already so.
    pub fn set_extra_arg(&self, name: &str, value: Option<&str>) -> Result<Option<Self>> {
        let current: Vec<String> = self
            .extra_args()
            .into_iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v)
            .collect();
        let already = match value {
            Some(v) => current.len() == 1 && current[0] == v,
            None => current.is_empty(),
        };
        if already {
            return Ok(None);
        }
        let mut expected = self.expected_api_server();
        let api = expected["apiServer"].as_object_mut().expect("object");
        let what = format!(
            "{} apiServer.extraArgs {name}",
            if value.is_some() {
                "setting"
            } else {
                "removing"
            }
        );
        match self.version {
            ApiVersion::V1beta3 => {
                let args = api
                    .entry("extraArgs")
                    .or_insert_with(|| Value::Object(Map::new()));
                if !args.is_object() {
                    *args = Value::Object(Map::new());
                }
                let m = args.as_object_mut().expect("object");
                match value {
                    Some(v) => {
                        m.insert(name.into(), json!(v));
                    }
                    None => {
                        m.remove(name);
                    }
                }
                if m.is_empty() {
                    api.remove("extraArgs");
                }
            }
            ApiVersion::V1beta4 => {
                let args = api.entry("extraArgs").or_insert_with(|| json!([]));
                if !args.is_array() {
                    *args = json!([]);
                }
                let a = args.as_array_mut().expect("array");
                let same = |i: &Value| i.get("name").map(scalar).as_deref() == Some(name);
                match value {
                    // One entry: its value changes in place.
                    Some(v) if current.len() == 1 => {
                        if let Some(i) = a.iter_mut().find(|i| same(i)) {
                            i["value"] = json!(v);
                        }
                    }
                    Some(v) => {
                        a.retain(|i| !same(i));
                        a.push(json!({"name": name, "value": v}));
                    }
                    None => a.retain(|i| !same(i)),
                }
                if a.is_empty() {
                    api.remove("extraArgs");
                }
            }
        }
        let version = self.version;
        let old = self.value.pointer("/apiServer/extraArgs").cloned();
        let edited = self.replace_child("extraArgs", expected, &what, |nl, child, col| {
            let (ck, ck_end) = child.expect("the key exists");
            match version {
                ApiVersion::V1beta3 => edit_map_entry(nl, ck, ck_end, col, name, value),
                ApiVersion::V1beta4 => {
                    let index = match &old {
                        Some(Value::Array(a)) => a
                            .iter()
                            .position(|i| i.get("name").map(scalar).as_deref() == Some(name)),
                        _ => None,
                    };
                    let fields = value.map(|v| {
                        vec![
                            format!("name: {}", render_plain_or_quoted(name)),
                            format!("value: {}", render_plain_or_quoted(v)),
                        ]
                    });
                    edit_list_entry(self, nl, ck, ck_end, index, fields, |it_lines, it| {
                        // Replace only the value of an existing {name, value} entry.
                        let v = value?;
                        let r = lines::item_map(it_lines, it)?;
                        let vk = lines::find_key(it_lines, r, "value")?;
                        Some(replace_inline(it_lines, &vk, v))
                    })
                }
            }
        })?;
        Ok(Some(edited))
    }

    /// Adds or replaces (`Some`) or removes (`None`) the extraVolume named `name`. `Ok(None)`: already so.
    pub fn set_extra_volume(
        &self,
        name: &str,
        mount: Option<&HostPathMount>,
    ) -> Result<Option<Self>> {
        let current: Vec<HostPathMount> = self
            .extra_volumes()
            .into_iter()
            .filter(|v| v.name == name)
            .collect();
        let already = match mount {
            Some(m) => current.len() == 1 && &current[0] == m,
            None => current.is_empty(),
        };
        if already {
            return Ok(None);
        }
        let mut expected = self.expected_api_server();
        let api = expected["apiServer"].as_object_mut().expect("object");
        let vols = api.entry("extraVolumes").or_insert_with(|| json!([]));
        if !vols.is_array() {
            *vols = json!([]);
        }
        let a = vols.as_array_mut().expect("array");
        let index = a
            .iter()
            .position(|i| i.get("name").map(scalar).as_deref() == Some(name));
        a.retain(|i| i.get("name").map(scalar).as_deref() != Some(name));
        if let Some(m) = mount {
            a.insert(index.unwrap_or(a.len()).min(a.len()), m.to_value());
        }
        if a.is_empty() {
            api.remove("extraVolumes");
        }
        let what = format!(
            "{} apiServer.extraVolumes {name}",
            if mount.is_some() {
                "setting"
            } else {
                "removing"
            }
        );
        let index = self.extra_volumes().iter().position(|v| v.name == name);
        let edited = self.replace_child("extraVolumes", expected, &what, |nl, child, _| {
            let (ck, ck_end) = child.expect("the key exists");
            edit_list_entry(
                self,
                nl,
                ck,
                ck_end,
                index,
                mount.map(HostPathMount::field_lines),
                |_, _| None,
            )
        })?;
        Ok(Some(edited))
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The line `k` with its inline value replaced by `value` (in the old value's quoting style).
fn replace_inline(nl: &[Line], k: &KeyPos, value: &str) -> Vec<Line> {
    let mut out = nl.to_vec();
    let t = &nl[k.line].text;
    let end = lines::content_end(t);
    let colon = t[k.col..end]
        .find(':')
        .map(|i| k.col + i + 1)
        .unwrap_or(end);
    let start = colon + lines::indent(&t[colon..end]);
    let old = &t[start..end];
    out[k.line].text = format!(
        "{}{}{}",
        &t[..colon],
        if old.is_empty() {
            format!(" {}", render_plain_or_quoted(value))
        } else {
            format!("{}{}", &t[colon..start], render_like(old, value))
        },
        &t[end..]
    );
    out
}

/// The text with `ck`'s inline empty value dropped (`extraArgs: {}` → `extraArgs:`), and `ck` without it, so
/// that entries can go below it in block style.
fn without_inline_value(nl: &[Line], ck: &KeyPos) -> (Vec<Line>, KeyPos) {
    let mut nl = nl.to_vec();
    if !ck.inline.is_empty() {
        let t = &nl[ck.line].text;
        let end = lines::content_end(t);
        let colon = t[..end].rfind(':').unwrap_or(end);
        nl[ck.line].text = format!("{}{}", &t[..colon + 1], &t[end..]);
    }
    let ck = KeyPos {
        inline: String::new(),
        ..ck.clone()
    };
    (nl, ck)
}

/// Sets or removes `name` in the block mapping under `ck` (v1beta3 extraArgs).
fn edit_map_entry(
    nl: &[Line],
    ck: &KeyPos,
    ck_end: usize,
    default_col: usize,
    name: &str,
    value: Option<&str>,
) -> Result<Vec<Line>> {
    let (mut nl, ck) = without_inline_value(nl, ck);
    let region = lines::value_map(&nl, &ck, ck_end.max(ck.line + 1));
    let col = region.map_or(default_col + 2, |r| r.col);
    let existing: Vec<KeyPos> = region
        .map(|r| {
            lines::map_keys(&nl, r)
                .into_iter()
                .filter(|k| k.key == name)
                .collect()
        })
        .unwrap_or_default();
    match (value, existing.as_slice()) {
        (Some(v), [k]) => Ok(replace_inline(&nl, k, v)),
        (Some(v), _) => {
            for k in existing.iter().rev() {
                let end = lines::key_end(&nl, k, region.map_or(nl.len(), |r| r.end));
                nl = delete_lines(&nl, k.line, end);
            }
            let region = lines::value_map(&nl, &ck, lines::key_end(&nl, &ck, nl.len()));
            let at = sorted_key_line(&nl, region, name, ck.line + 1);
            Ok(insert_lines(
                &nl,
                at,
                &[format!(
                    "{}{}: {}",
                    " ".repeat(col),
                    render_plain_or_quoted(name),
                    render_plain_or_quoted(v)
                )],
            ))
        }
        (None, keys) => {
            for k in keys.iter().rev() {
                let end = lines::key_end(&nl, k, region.map_or(nl.len(), |r| r.end));
                nl = delete_lines(&nl, k.line, end);
            }
            Ok(drop_if_empty(nl, &ck))
        }
    }
}

/// Removes the key `ck` when its value became empty.
fn drop_if_empty(nl: Vec<Line>, ck: &KeyPos) -> Vec<Line> {
    let end = lines::key_end(&nl, ck, nl.len());
    if (ck.line + 1..end).any(|j| lines::is_content(&nl[j].text)) {
        return nl;
    }
    delete_lines(&nl, ck.line, ck.line + 1)
}

/// Replaces, adds or removes the list entry at `index` under `ck` (a block sequence of mappings). `fields`: the
/// new entry's lines (`None` removes it); `in_place` may edit an existing entry's lines itself.
fn edit_list_entry(
    cc: &ClusterConfiguration,
    nl: &[Line],
    ck: &KeyPos,
    ck_end: usize,
    index: Option<usize>,
    fields: Option<Vec<String>>,
    in_place: impl Fn(&[Line], lines::Item) -> Option<Vec<Line>>,
) -> Result<Vec<Line>> {
    let (nl, ck) = without_inline_value(nl, ck);
    let items = lines::value_seq(&nl, &ck, ck_end.max(ck.line + 1)).unwrap_or_default();
    if (ck.line + 1..ck_end.min(nl.len())).any(|j| lines::is_content(&nl[j].text))
        && items.is_empty()
    {
        return Err(cc.refused(
            Some(ck.line),
            &format!("apiServer.{} is not a block list", ck.key),
        ));
    }
    // kubeadm (go-yaml) writes list items at the key's column; follow the document's own style when it has items.
    let (dash, off) = items
        .first()
        .map(|it| {
            let off = lines::item_map(&nl, *it).map_or(2, |r| {
                if r.first_line == it.line {
                    r.col - it.col
                } else {
                    2
                }
            });
            (it.col, off.max(2))
        })
        .unwrap_or((ck.col, 2));
    let render = |f: &[String]| -> Vec<String> {
        f.iter()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 {
                    format!("{}-{}{l}", " ".repeat(dash), " ".repeat(off - 1))
                } else {
                    format!("{}{l}", " ".repeat(dash + off))
                }
            })
            .collect()
    };
    match (index.and_then(|i| items.get(i).copied()), fields) {
        (Some(it), Some(f)) => {
            if let Some(done) = in_place(&nl, it) {
                return Ok(done);
            }
            let nl = delete_lines(&nl, it.line, it.end);
            Ok(insert_lines(&nl, it.line, &render(&f)))
        }
        (None, Some(f)) => {
            let at = items.last().map_or(ck.line + 1, |it| it.end);
            Ok(insert_lines(&nl, at, &render(&f)))
        }
        (Some(it), None) => {
            let nl = delete_lines(&nl, it.line, it.end);
            Ok(drop_if_empty(nl, &ck))
        }
        (None, None) => Ok(nl),
    }
}

/// What the ClusterConfiguration should say about encryption at rest, from the kube-apiserver manifest: the two
/// flags and, when the config is mounted through a volume kubeadm does not generate, that volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub config: Option<String>,
    pub automatic_reload: bool,
    pub volume: Option<HostPathMount>,
}

impl Desired {
    /// From the manifest.
    pub fn from_manifest(m: &Manifest) -> Desired {
        let config = m.encryption_provider_config();
        let volume = config.as_deref().and_then(|c| {
            let mount = m.mount_for(c)?;
            if KUBEADM_APISERVER_VOLUMES.contains(&mount.name.as_str()) {
                return None;
            }
            let vol = m.volumes().into_iter().find(|v| v.name == mount.name)?;
            Some(HostPathMount {
                name: mount.name,
                host_path: vol.host_path?,
                mount_path: mount.mount_path,
                read_only: mount.read_only,
                path_type: vol.host_path_type.filter(|t| !t.is_empty()),
            })
        });
        Desired {
            config,
            automatic_reload: m.automatic_reload(),
            volume,
        }
    }
}

/// The edits that make `cc` carry the manifest's encryption settings: the flags in `apiServer.extraArgs`, the
/// config's volume in `extraVolumes` (and no stale volume that atrest added for an earlier config). Returns the
/// edited document and one line per change (empty: already in sync).
pub fn sync(
    cc: &ClusterConfiguration,
    m: &Manifest,
) -> Result<(ClusterConfiguration, Vec<String>)> {
    let want = Desired::from_manifest(m);
    let mut cur = cc.clone();
    let mut changes = Vec::new();
    if let Some(next) = cur.set_extra_arg(CONFIG_FLAG, want.config.as_deref())? {
        changes.push(match &want.config {
            Some(c) => format!("set apiServer.extraArgs {CONFIG_FLAG}={c}"),
            None => format!("removed apiServer.extraArgs {CONFIG_FLAG}"),
        });
        cur = next;
    }
    let reload = want.automatic_reload.then_some("true");
    if let Some(next) = cur.set_extra_arg(RELOAD_FLAG, reload)? {
        changes.push(match reload {
            Some(_) => format!("set apiServer.extraArgs {RELOAD_FLAG}=true"),
            None => format!("removed apiServer.extraArgs {RELOAD_FLAG}"),
        });
        cur = next;
    }
    let ours = |n: &str| n.starts_with(manifest::CONFIG_VOLUME_NAME);
    for v in cur.extra_volumes() {
        if ours(&v.name)
            && want.volume.as_ref().is_none_or(|w| w.name != v.name)
            && let Some(next) = cur.set_extra_volume(&v.name, None)?
        {
            changes.push(format!("removed apiServer.extraVolumes {}", v.name));
            cur = next;
        }
    }
    if let Some(w) = &want.volume
        && let Some(next) = cur.set_extra_volume(&w.name, Some(w))?
    {
        changes.push(format!(
            "set apiServer.extraVolumes {} ({} → {})",
            w.name, w.host_path, w.mount_path
        ));
        cur = next;
    }
    Ok((cur, changes))
}

/// Differences between the manifest and the ClusterConfiguration (what `kubeadm upgrade` would undo), one line
/// each; empty when they agree.
pub fn drift(cc: &ClusterConfiguration, m: &Manifest) -> Vec<String> {
    let want = Desired::from_manifest(m);
    let mut out = Vec::new();
    let arg = |flag: &str, want: Option<&str>, out: &mut Vec<String>| {
        let have = cc.extra_arg(flag);
        if have.as_deref() != want {
            out.push(format!(
                "the manifest has {}, kubeadm-config apiServer.extraArgs has {}",
                want.map(|v| format!("--{flag}={v}"))
                    .unwrap_or_else(|| format!("no --{flag}")),
                have.map(|v| format!("{flag}={v}"))
                    .unwrap_or_else(|| format!("no {flag}")),
            ));
        }
    };
    arg(CONFIG_FLAG, want.config.as_deref(), &mut out);
    arg(
        RELOAD_FLAG,
        want.automatic_reload.then_some("true"),
        &mut out,
    );
    if let Some(w) = &want.volume
        && !cc.extra_volumes().contains(w)
    {
        out.push(format!(
            "the manifest mounts {} at {} (volume {}), kubeadm-config apiServer.extraVolumes does not",
            w.host_path, w.mount_path, w.name
        ));
    }
    out
}

/// The line where a new `key` goes in a block map kubeadm writes sorted (`region`): before the first greater
/// key and the comments above it, else after the last entry; `empty_at` when the map has no entries yet.
fn sorted_key_line(nl: &[Line], region: Option<MapRegion>, key: &str, empty_at: usize) -> usize {
    let Some(r) = region else {
        return empty_at;
    };
    let keys = lines::map_keys(nl, r);
    match keys.iter().find(|k| k.key.as_str() > key) {
        Some(next) => back_over_comments(nl, next.line, r.col),
        None => keys
            .last()
            .map(|l| lines::key_end(nl, l, r.end))
            .unwrap_or(empty_at),
    }
}

#[cfg(test)]
mod tests;
