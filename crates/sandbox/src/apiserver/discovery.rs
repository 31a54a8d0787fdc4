//! Discovery: legacy (`APIVersions`, `APIGroupList`, `APIResourceList`) and aggregated
//! (`apidiscovery.k8s.io` v2 / v2beta1 `APIGroupDiscoveryList`, chosen by the Accept header like
//! apiserver `pkg/endpoints/discovery/aggregated/negotiation.go`).
//!
//! Group versions of non-local APIServices (`spec.service` set) are listed too, as kube-aggregator lists them. Their
//! service is never available here (the sandbox serves no Services), so, as kube-aggregator does for an
//! unavailable APIService: `GET /apis/<group>/<version>` answers 503 `service unavailable` (plain text,
//! `handler_proxy.go` `proxyError`), and aggregated discovery lists the version with `freshness: Stale` and no
//! resources (`handler_discovery.go`).

use serde_json::{Value, json};

use super::http::{Resp, json_response, json_response_ct};
use super::resources::{GROUPS, ResourceDef, in_group, lookup};
use super::router::Ctx;
use super::status::ApiError;

fn accepts_aggregated(ctx: &Ctx<'_>) -> Option<&'static str> {
    let accept = ctx.header("accept");
    let mut v2beta1 = false;
    for part in accept.split(',') {
        if part.contains("as=APIGroupDiscoveryList") && part.contains("g=apidiscovery.k8s.io") {
            if part.contains("v=v2beta1") {
                v2beta1 = true;
            } else if part.contains("v=v2") {
                return Some("v2");
            }
        }
    }
    v2beta1.then_some("v2beta1")
}

fn resource_entry(r: &ResourceDef) -> Value {
    let mut e = json!({
        "name": r.resource,
        "singularName": r.singular(),
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs,
    });
    short_names_and_categories(&mut e, r);
    e["storageVersionHash"] = json!(storage_version_hash(r));
    e
}

/// `shortNames` and `categories`, each only when it has entries (both are `omitempty` in both discovery formats).
fn short_names_and_categories(e: &mut Value, r: &ResourceDef) {
    if !r.short_names.is_empty() {
        e["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        e["categories"] = json!(r.categories);
    }
}

/// `discovery.StorageVersionHash`: base64 of the first 8 bytes of sha256("<group>/<version>/<kind>").
fn storage_version_hash(r: &ResourceDef) -> String {
    use base64::Engine;
    let d = openssl::sha::sha256(format!("{}/{}/{}", r.group, r.version, r.kind).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&d[..8])
}

fn resource_list(group: &str) -> Value {
    let gv = if group.is_empty() {
        "v1".to_string()
    } else {
        format!("{group}/v1")
    };
    let mut resources = Vec::new();
    for r in in_group(group) {
        resources.push(resource_entry(r));
        for (sub, verbs) in r.subresources {
            resources.push(json!({
                "name": format!("{}/{sub}", r.resource),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": verbs,
            }));
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

fn aggregated_group(group: &str) -> Value {
    let resources: Vec<Value> = in_group(group)
        .map(|r| {
            let mut e = json!({
                "resource": r.resource,
                "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": r.singular(),
                "verbs": r.verbs,
            });
            short_names_and_categories(&mut e, r);
            if !r.subresources.is_empty() {
                e["subresources"] = json!(r
                    .subresources
                    .iter()
                    .map(|(s, v)| json!({"subresource": s, "responseKind": {"group": r.group, "version": r.version, "kind": r.kind}, "verbs": v}))
                    .collect::<Vec<_>>());
            }
            e
        })
        .collect();
    json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": [{"version": "v1", "resources": resources, "freshness": "Current"}]})
}

fn aggregated(version: &str, groups: &[&str], remote: &[(String, String)]) -> Value {
    let mut items: Vec<Value> = groups.iter().map(|g| aggregated_group(g)).collect();
    for (g, v) in remote {
        items.push(json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": [{"version": v, "freshness": "Stale"}]}));
    }
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

/// `(group, version)` of every non-local APIService (`spec.service` set) of a group this server does not serve.
async fn remote_group_versions(ctx: &Ctx<'_>) -> Result<Vec<(String, String)>, ApiError> {
    let def = lookup("apiregistration.k8s.io", "v1", "apiservices").expect("apiservices");
    let page = ctx.server.store.list(def, None, 0, None).await?;
    let mut out: Vec<(String, String)> = Vec::new();
    for s in page.items {
        let spec = &s.obj["spec"];
        let (Some(g), Some(v)) = (spec["group"].as_str(), spec["version"].as_str()) else {
            continue;
        };
        let gv = (g.to_string(), v.to_string());
        if spec["service"].is_object()
            && !GROUPS.contains(&g)
            && !g.is_empty()
            && !out.contains(&gv)
        {
            out.push(gv);
        }
    }
    Ok(out)
}

/// kube-aggregator's answer for an APIService whose service is unavailable.
fn service_unavailable() -> Resp {
    super::http::text_response(503, "text/plain; charset=utf-8", "service unavailable\n")
}

fn aggregated_response(version: &str, body: &Value) -> Resp {
    json_response_ct(
        200,
        body,
        &format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"),
    )
}

pub(crate) async fn handle(ctx: &Ctx<'_>, path: &str) -> Result<Resp, ApiError> {
    let agg = accepts_aggregated(ctx);
    match path {
        "/api" => Ok(match agg {
            Some(v) => aggregated_response(v, &aggregated(v, &[""], &[])),
            None => {
                let addr = ctx.server.advertise.clone();
                json_response(
                    200,
                    &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}]}),
                )
            }
        }),
        "/apis" => {
            let remote = remote_group_versions(ctx).await?;
            Ok(match agg {
                Some(v) => aggregated_response(v, &aggregated(v, GROUPS, &remote)),
                None => {
                    let mut groups: Vec<Value> = GROUPS
                        .iter()
                        .map(|g| {
                            let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
                            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
                        })
                        .collect();
                    for (g, v) in &remote {
                        let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
                        groups.push(
                            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv}),
                        );
                    }
                    json_response(
                        200,
                        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
                    )
                }
            })
        }
        "/api/v1" => Ok(json_response(200, &resource_list(""))),
        _ => {
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            match parts.as_slice() {
                ["apis", g] if GROUPS.contains(g) => {
                    let gv = json!({"groupVersion": format!("{g}/v1"), "version": "v1"});
                    Ok(json_response(
                        200,
                        &json!({"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": [gv.clone()], "preferredVersion": gv}),
                    ))
                }
                ["apis", g, "v1"] if GROUPS.contains(g) => {
                    Ok(json_response(200, &resource_list(g)))
                }
                ["apis", g, rest @ ..] if rest.len() <= 1 => {
                    let remote = remote_group_versions(ctx).await?;
                    match rest {
                        [] if remote.iter().any(|(rg, _)| rg == g) => {
                            let versions: Vec<Value> = remote
                                .iter()
                                .filter(|(rg, _)| rg == g)
                                .map(|(_, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                                .collect();
                            Ok(json_response(
                                200,
                                &json!({"kind": "APIGroup", "apiVersion": "v1", "name": g, "preferredVersion": versions[0].clone(), "versions": versions}),
                            ))
                        }
                        [v] if remote.iter().any(|(rg, rv)| rg == g && rv == v) => {
                            Ok(service_unavailable())
                        }
                        _ => Err(ApiError::path_not_found()),
                    }
                }
                _ => Err(ApiError::path_not_found()),
            }
        }
    }
}
