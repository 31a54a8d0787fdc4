//! `meta.k8s.io/v1` Table responses with the columns kube-apiserver's printers use
//! (kubernetes `pkg/printers/internalversion/printers.go`).

use serde_json::{Map, Value, json};

use atrest_core::time::{parse_rfc3339, unix_now};

use super::codec::human_duration;
use super::resources::ResourceDef;

fn col(name: &str, ty: &str, format: &str, priority: i64, description: &str) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": description, "priority": priority})
}

fn columns(def: &ResourceDef) -> Vec<Value> {
    let name = col(
        "Name",
        "string",
        "name",
        0,
        "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    );
    let age = col(
        "Age",
        "string",
        "",
        0,
        "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    );
    match def.resource {
        "secrets" => vec![
            name,
            col("Type", "string", "", 0, "The type of the secret"),
            col(
                "Data",
                "string",
                "",
                0,
                "The number of data entries in the secret",
            ),
            age,
        ],
        "configmaps" => vec![
            name,
            col(
                "Data",
                "string",
                "",
                0,
                "The number of data entries in the config map",
            ),
            age,
        ],
        "namespaces" => vec![
            name,
            col("Status", "string", "", 0, "The status of the namespace"),
            age,
        ],
        "serviceaccounts" => vec![
            name,
            col(
                "Secrets",
                "string",
                "",
                0,
                "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
            ),
            age,
        ],
        "pods" => vec![
            name,
            col(
                "Ready",
                "string",
                "",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                "",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                "",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            age,
            col(
                "IP",
                "string",
                "",
                1,
                "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
            ),
            col(
                "Node",
                "string",
                "",
                1,
                "NodeName is a request to schedule this pod onto a specific node.",
            ),
            col(
                "Nominated Node",
                "string",
                "",
                1,
                "nominatedNodeName is set when this pod preempts other pods on the node.",
            ),
            col(
                "Readiness Gates",
                "string",
                "",
                1,
                "If specified, all readiness gates will be evaluated for pod readiness.",
            ),
        ],
        "roles" | "clusterroles" => vec![
            name,
            col(
                "Created At",
                "string",
                "date",
                0,
                "CreationTimestamp is a timestamp representing the server time when this object was created.",
            ),
        ],
        "rolebindings" | "clusterrolebindings" => vec![
            name,
            col(
                "Role",
                "string",
                "",
                0,
                "Role references the role for this binding",
            ),
            age,
            col("Users", "string", "", 1, "Users in the roleBinding"),
            col("Groups", "string", "", 1, "Groups in the roleBinding"),
            col(
                "ServiceAccounts",
                "string",
                "",
                1,
                "ServiceAccounts in the roleBinding",
            ),
        ],
        "certificatesigningrequests" => vec![
            name,
            age,
            col(
                "SignerName",
                "string",
                "",
                0,
                "Name of the signer that will sign this CSR.",
            ),
            col(
                "Requestor",
                "string",
                "",
                0,
                "Name of the user that requested this CSR.",
            ),
            col(
                "RequestedDuration",
                "string",
                "",
                0,
                "Requested duration of the issued certificate.",
            ),
            col(
                "Condition",
                "string",
                "",
                0,
                "Approval and issuance status of the CSR.",
            ),
        ],
        _ => vec![name, age],
    }
}

fn age(obj: &Value) -> String {
    match obj["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(parse_rfc3339)
    {
        Some((t, _)) => human_duration(unix_now() - t),
        None => "<unknown>".into(),
    }
}

fn subjects(obj: &Value, kind: &str) -> String {
    let names: Vec<String> = obj["subjects"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|s| s["kind"] == kind)
                .map(|s| {
                    let n = s["name"].as_str().unwrap_or("");
                    if kind == "ServiceAccount" {
                        format!("{}/{n}", s["namespace"].as_str().unwrap_or(""))
                    } else {
                        n.to_string()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    names.join(", ")
}

fn pod_cells(obj: &Value) -> Vec<Value> {
    let statuses = obj["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = obj["spec"]["containers"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    let ready = statuses.iter().filter(|s| s["ready"] == true).count();
    let restarts: i64 = statuses
        .iter()
        .map(|s| s["restartCount"].as_i64().unwrap_or(0))
        .sum();
    let mut reason = obj["status"]["reason"]
        .as_str()
        .or(obj["status"]["phase"].as_str())
        .unwrap_or("")
        .to_string();
    for s in &statuses {
        if let Some(r) = s["state"]["waiting"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty())
        {
            reason = r.to_string();
        } else if let Some(r) = s["state"]["terminated"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty())
        {
            reason = r.to_string();
        }
    }
    if obj["metadata"]["deletionTimestamp"].is_string() {
        reason = "Terminating".into();
    }
    let ip = obj["status"]["podIP"]
        .as_str()
        .unwrap_or("<none>")
        .to_string();
    let node = obj["spec"]["nodeName"]
        .as_str()
        .unwrap_or("<none>")
        .to_string();
    vec![
        json!(obj["metadata"]["name"]),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts),
        json!(age(obj)),
        json!(ip),
        json!(node),
        json!("<none>"),
        json!("<none>"),
    ]
}

fn cells(def: &ResourceDef, obj: &Value) -> Vec<Value> {
    let name = obj["metadata"]["name"].clone();
    match def.resource {
        "secrets" => vec![
            name,
            obj["type"].clone(),
            json!(obj["data"].as_object().map(|m| m.len()).unwrap_or(0)),
            json!(age(obj)),
        ],
        "configmaps" => vec![
            name,
            json!(
                obj["data"].as_object().map(|m| m.len()).unwrap_or(0)
                    + obj["binaryData"].as_object().map(|m| m.len()).unwrap_or(0)
            ),
            json!(age(obj)),
        ],
        "namespaces" => vec![name, obj["status"]["phase"].clone(), json!(age(obj))],
        "serviceaccounts" => vec![
            name,
            json!(obj["secrets"].as_array().map(|a| a.len()).unwrap_or(0)),
            json!(age(obj)),
        ],
        "pods" => pod_cells(obj),
        "roles" | "clusterroles" => vec![name, obj["metadata"]["creationTimestamp"].clone()],
        "rolebindings" | "clusterrolebindings" => vec![
            name,
            json!(format!(
                "{}/{}",
                obj["roleRef"]["kind"].as_str().unwrap_or(""),
                obj["roleRef"]["name"].as_str().unwrap_or("")
            )),
            json!(age(obj)),
            json!(subjects(obj, "User")),
            json!(subjects(obj, "Group")),
            json!(subjects(obj, "ServiceAccount")),
        ],
        "certificatesigningrequests" => {
            let conds = obj["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut status: Vec<String> = Vec::new();
            for t in ["Approved", "Denied", "Failed"] {
                if conds.iter().any(|c| c["type"] == t) {
                    status.push(t.into());
                }
            }
            if obj["status"]["certificate"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
            {
                status.push("Issued".into());
            }
            let condition = if status.is_empty() {
                "Pending".to_string()
            } else {
                status.join(",")
            };
            let dur = obj["spec"]["expirationSeconds"]
                .as_i64()
                .map(human_duration)
                .unwrap_or_else(|| "<none>".into());
            vec![
                name,
                json!(age(obj)),
                obj["spec"]["signerName"].clone(),
                obj["spec"]["username"].clone(),
                json!(dur),
                json!(condition),
            ]
        }
        _ => vec![name, json!(age(obj))],
    }
}

/// A Table of `items` (JSON objects as stored).
pub(crate) fn table(
    def: &ResourceDef,
    items: &[Value],
    rv: &str,
    cont: Option<&str>,
    remaining: Option<i64>,
) -> Value {
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), json!(rv));
    if let Some(c) = cont {
        meta.insert("continue".into(), json!(c));
    }
    if let Some(r) = remaining {
        meta.insert("remainingItemCount".into(), json!(r));
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            json!({
                "cells": cells(def, o),
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]},
            })
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": columns(def), "rows": rows})
}
