//! `metadata.managedFields` for non-apply writes, like the apiserver's field manager records an `Update`
//! operation (apiserver `pkg/endpoints/handlers/fieldmanager`, structured-merge-diff `fieldpath` FieldsV1):
//! on create the manager owns every field it set; on update it gains the fields it changed and its entry's
//! time moves; an update that changes nothing leaves managedFields alone.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::codec::now_rfc3339;
use super::resources::ResourceDef;
use super::router::Ctx;

/// A FieldsV1 set as a tree: `f:<name>` / `k:<key>` children, `.` for "the node itself".
#[derive(Debug, Default, Clone, PartialEq)]
struct FieldSet(BTreeMap<String, FieldSet>);

impl FieldSet {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in &self.0 {
            m.insert(k.clone(), v.to_json());
        }
        Value::Object(m)
    }
    fn from_json(v: &Value) -> FieldSet {
        let mut s = FieldSet::default();
        if let Some(m) = v.as_object() {
            for (k, c) in m {
                s.0.insert(k.clone(), FieldSet::from_json(c));
            }
        }
        s
    }
    fn union(&mut self, other: &FieldSet) {
        for (k, v) in &other.0 {
            self.0.entry(k.clone()).or_default().union(v);
        }
    }
}

/// Fields whose JSON object is a Go map (`.` marks ownership of the map itself).
const MAP_FIELDS: &[&str] = &[
    "data",
    "binaryData",
    "stringData",
    "labels",
    "annotations",
    "nodeSelector",
    "extra",
    "limits",
    "requests",
];
/// Associative lists and their merge keys.
const KEYED_LISTS: &[(&str, &[&str])] = &[
    ("containers", &["name"]),
    ("initContainers", &["name"]),
    ("volumes", &["name"]),
    ("env", &["name"]),
    ("volumeMounts", &["mountPath"]),
    ("conditions", &["type"]),
    ("ports", &["containerPort", "protocol"]),
    ("ownerReferences", &["uid"]),
];
/// Set-like lists of scalars (`v:<value>` entries).
const SET_LISTS: &[&str] = &["finalizers"];

fn key_of(item: &Value, keys: &[&str]) -> Option<String> {
    let mut m = Map::new();
    for k in keys {
        let v = item.get(*k)?;
        m.insert((*k).to_string(), v.clone());
    }
    Some(format!(
        "k:{}",
        serde_json::to_string(&Value::Object(m)).ok()?
    ))
}

/// The fields set in `v` (a struct-like object); `changed_from` restricts to fields that differ.
fn fields(v: &Value, old: Option<&Value>, is_map: bool) -> FieldSet {
    let mut set = FieldSet::default();
    let Some(obj) = v.as_object() else { return set };
    for (k, child) in obj {
        let old_child = old.and_then(|o| o.get(k));
        if old.is_some() && old_child == Some(child) {
            continue;
        }
        let key = format!("f:{k}");
        let sub = child_fields(
            k,
            child,
            if old.is_some() {
                old_child.or(Some(&Value::Null))
            } else {
                None
            },
        );
        set.0.insert(key, sub);
    }
    if is_map && !obj.is_empty() && old.is_none_or(|o| !o.is_object()) {
        set.0.insert(".".into(), FieldSet::default());
    }
    set
}

fn child_fields(name: &str, child: &Value, old: Option<&Value>) -> FieldSet {
    match child {
        Value::Object(_) => {
            let is_map = MAP_FIELDS.contains(&name);
            let old = old.filter(|o| o.is_object());
            let mut s = fields(child, old, is_map);
            if is_map && s.0.is_empty() {
                s.0.insert(".".into(), FieldSet::default());
            }
            s
        }
        Value::Array(items) => {
            if let Some((_, keys)) = KEYED_LISTS.iter().find(|(n, _)| *n == name) {
                let mut s = FieldSet::default();
                for it in items {
                    if let Some(k) = key_of(it, keys) {
                        let mut entry = fields(it, None, false);
                        entry.0.insert(".".into(), FieldSet::default());
                        s.0.insert(k, entry);
                    }
                }
                s
            } else if SET_LISTS.contains(&name) {
                let mut s = FieldSet::default();
                s.0.insert(".".into(), FieldSet::default());
                for it in items {
                    s.0.insert(
                        format!("v:{}", serde_json::to_string(it).unwrap_or_default()),
                        FieldSet::default(),
                    );
                }
                s
            } else {
                FieldSet::default()
            }
        }
        _ => FieldSet::default(),
    }
}

/// Fields of the object a manager can own: without identity/system metadata, and without `status` on the
/// main resource (or only `status` on `/status`).
fn ownable(obj: &Value, def: &ResourceDef, sub: &str) -> Value {
    let mut o = obj.as_object().cloned().unwrap_or_default();
    o.remove("kind");
    o.remove("apiVersion");
    if let Some(Value::Object(m)) = o.get_mut("metadata") {
        for k in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
            "managedFields",
            "generateName",
        ] {
            m.remove(k);
        }
        if m.is_empty() {
            o.remove("metadata");
        }
    }
    let has_status_sub = def.subresources.iter().any(|(s, _)| *s == "status");
    match sub {
        "" if has_status_sub => {
            o.remove("status");
        }
        "status" | "approval" => {
            let st = o.remove("status");
            o.clear();
            if let Some(st) = st {
                o.insert("status".into(), st);
            }
        }
        _ => {}
    }
    Value::Object(o)
}

/// Record the request's manager in `obj.metadata.managedFields`.
pub(crate) fn on_write(obj: &mut Value, old: Option<&Value>, ctx: &Ctx<'_>, def: &ResourceDef) {
    let sub = ctx.info.subresource.as_str();
    let manager = match ctx.q("fieldManager").filter(|m| !m.is_empty()) {
        Some(m) => m.to_string(),
        // fieldmanager: the default manager is the user agent's program name.
        None => {
            let ua = ctx.header("user-agent");
            let prog = ua.split('/').next().unwrap_or("").trim();
            if prog.is_empty() {
                "unknown".to_string()
            } else {
                prog.to_string()
            }
        }
    };
    let new_view = ownable(obj, def, sub);
    let set = match old {
        None => fields(&new_view, None, false),
        Some(o) => fields(&new_view, Some(&ownable(o, def, sub)), false),
    };
    let mut entries: Vec<Value> = obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if set.0.is_empty() {
        return;
    }
    let api_version = def.api_version();
    let pos = entries.iter().position(|e| {
        e["manager"] == manager.as_str()
            && e["operation"] == "Update"
            && e["apiVersion"] == api_version.as_str()
            && e.get("subresource").and_then(|s| s.as_str()).unwrap_or("") == sub
    });
    let mut merged = set;
    if let Some(i) = pos {
        let prev = FieldSet::from_json(&entries[i]["fieldsV1"]);
        let mut p = prev;
        p.union(&merged);
        merged = p;
        entries.remove(i);
    }
    let mut entry = Map::new();
    entry.insert("manager".into(), json!(manager));
    entry.insert("operation".into(), json!("Update"));
    entry.insert("apiVersion".into(), json!(api_version));
    entry.insert("time".into(), json!(now_rfc3339()));
    entry.insert("fieldsType".into(), json!("FieldsV1"));
    entry.insert("fieldsV1".into(), merged.to_json());
    if !sub.is_empty() {
        entry.insert("subresource".into(), json!(sub));
    }
    entries.push(Value::Object(entry));
    if let Some(m) = obj.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.insert("managedFields".into(), Value::Array(entries));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_create_fieldset_matches_kubectl_create() {
        let obj = json!({"data": {"password": "MTIz", "username": "bXlhcHA="}, "type": "Opaque"});
        let s = fields(&obj, None, false).to_json();
        assert_eq!(
            s,
            json!({"f:data": {".": {}, "f:password": {}, "f:username": {}}, "f:type": {}})
        );
        let ns = json!({"metadata": {"labels": {"kubernetes.io/metadata.name": "m"}}});
        assert_eq!(
            fields(&ns, None, false).to_json(),
            json!({"f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/metadata.name": {}}}})
        );
    }

    #[test]
    fn update_owns_only_changed_fields() {
        let old = json!({"data": {"a": "1", "b": "2"}, "type": "Opaque"});
        let new = json!({"data": {"a": "1", "b": "3"}, "type": "Opaque"});
        assert_eq!(
            fields(&new, Some(&old), false).to_json(),
            json!({"f:data": {"f:b": {}}})
        );
        assert!(fields(&old, Some(&old), false).0.is_empty());
    }
}
