//! REST handlers for stored resources: get, list (selectors, `limit`/`continue`, Table), create, update (incl.
//! `/status`, `/approval`), patch (merge patch), delete (namespace deletion removes its contents), with
//! `dryRun=All`, `generateName`, uid/creationTimestamp and managedFields like the generic registry
//! (apiserver `pkg/registry/generic/registry/store.go`, `pkg/registry/rest/create.go`, `update.go`).

use serde_json::{Map, Value, json};

use super::codec::{new_uid, now_rfc3339};
use super::http::{Resp, json_response};
use super::resources::{self, RESOURCES, ResourceDef};
use super::router::Ctx;
use super::status::{ApiError, FieldError};
use super::store::Stored;
use super::{managed, reviews, strategy, table};

pub(crate) async fn handle(ctx: &Ctx<'_>) -> Result<Resp, ApiError> {
    let info = &ctx.info;
    let def = resources::lookup(&info.group, &info.version, &info.resource)
        .ok_or_else(ApiError::path_not_found)?;
    if !info.subresource.is_empty() && !def.subresources.iter().any(|(s, _)| *s == info.subresource)
    {
        return Err(ApiError::path_not_found());
    }
    if !def.namespaced && !info.namespace.is_empty() && def.resource != "namespaces" {
        return Err(ApiError::path_not_found());
    }
    if !def.stored {
        if info.verb != "create" {
            return Err(ApiError::method_not_supported(
                def.group,
                def.resource,
                &info.verb,
            ));
        }
        return reviews::create(ctx, def).await;
    }
    match info.verb.as_str() {
        "get" => get(ctx, def).await,
        "list" => list(ctx, def).await,
        "watch" => Err(ApiError::method_not_supported(
            def.group,
            def.resource,
            "watch",
        )),
        "create" => {
            if !info.name.is_empty() {
                return Err(ApiError::method_not_supported(
                    def.group,
                    def.resource,
                    "create",
                ));
            }
            create(ctx, def).await
        }
        "update" => update(ctx, def, None).await,
        "patch" => patch(ctx, def).await,
        "delete" => delete(ctx, def).await,
        "deletecollection" => delete_collection(ctx, def).await,
        other => Err(ApiError::method_not_supported(
            def.group,
            def.resource,
            other,
        )),
    }
}

/// Namespace of the object addressed (namespaces themselves are cluster-scoped).
fn obj_ns<'a>(ctx: &'a Ctx<'_>, def: &ResourceDef) -> &'a str {
    if def.namespaced {
        &ctx.info.namespace
    } else {
        ""
    }
}

/// The object as served: kind/apiVersion first.
pub(crate) fn with_type(def: &ResourceDef, obj: &Value) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!(def.kind));
    m.insert("apiVersion".into(), json!(def.api_version()));
    if let Some(o) = obj.as_object() {
        for (k, v) in o {
            if k != "kind" && k != "apiVersion" {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(m)
}

fn dry_run(ctx: &Ctx<'_>) -> bool {
    ctx.q("dryRun").is_some_and(|v| v == "All")
}

async fn get(ctx: &Ctx<'_>, def: &'static ResourceDef) -> Result<Resp, ApiError> {
    let ns = obj_ns(ctx, def);
    let s = ctx
        .server
        .store
        .get_existing(def, ns, &ctx.info.name)
        .await?;
    if ctx.wants_table() {
        return Ok(json_response(
            200,
            &table::table(def, &[s.obj], &s.rev.to_string(), None, None),
        ));
    }
    Ok(json_response(200, &with_type(def, &s.obj)))
}

/// Label selector terms: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`.
pub(crate) fn label_matches(selector: &str, labels: &Value) -> Result<bool, ApiError> {
    let terms = split_selector(selector);
    for t in terms {
        let t = t.trim();
        if t.is_empty() {
            continue;
        }
        let get = |k: &str| labels.get(k.trim()).and_then(|v| v.as_str());
        let ok = if let Some((k, rest)) = t.split_once(" notin ") {
            let set = paren_set(rest)?;
            get(k).is_none_or(|v| !set.contains(&v.to_string()))
        } else if let Some((k, rest)) = t.split_once(" in ") {
            let set = paren_set(rest)?;
            get(k).is_some_and(|v| set.contains(&v.to_string()))
        } else if let Some((k, v)) = t.split_once("!=") {
            get(k) != Some(v.trim())
        } else if let Some((k, v)) = t.split_once("==").or_else(|| t.split_once('=')) {
            get(k) == Some(v.trim())
        } else if let Some(k) = t.strip_prefix('!') {
            get(k).is_none()
        } else {
            get(t).is_some()
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn split_selector(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

fn paren_set(s: &str) -> Result<Vec<String>, ApiError> {
    let inner = s
        .trim()
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "unable to parse requirement: found '{s}', expected: '('"
            ))
        })?;
    Ok(inner.split(',').map(|x| x.trim().to_string()).collect())
}

/// Field selectors: `metadata.name`, `metadata.namespace` (every kind), plus `type` for secrets,
/// `status.phase`/`spec.nodeName` for pods, `spec.signerName` for CSRs.
pub(crate) fn field_matches(
    def: &ResourceDef,
    selector: &str,
    obj: &Value,
) -> Result<bool, ApiError> {
    for term in selector.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (field, want, neg) = if let Some((f, v)) = term.split_once("!=") {
            (f, v, true)
        } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            (f, v, false)
        } else {
            return Err(ApiError::bad_request(format!(
                "invalid selector: '{term}'; can't understand '{term}'"
            )));
        };
        let have = match (def.resource, field) {
            (_, "metadata.name") => obj["metadata"]["name"].as_str().unwrap_or("").to_string(),
            (_, "metadata.namespace") => obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            ("secrets", "type") => obj["type"].as_str().unwrap_or("").to_string(),
            ("pods", "status.phase") => obj["status"]["phase"].as_str().unwrap_or("").to_string(),
            ("pods", "spec.nodeName") => obj["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
            ("certificatesigningrequests", "spec.signerName") => {
                obj["spec"]["signerName"].as_str().unwrap_or("").to_string()
            }
            ("namespaces", "status.phase") => {
                obj["status"]["phase"].as_str().unwrap_or("").to_string()
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "\"{field}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                )));
            }
        };
        if (have == want) == neg {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The namespace a collection request (list, deletecollection) is scoped to; None for all namespaces or a
/// cluster-scoped resource.
fn collection_namespace<'a>(ctx: &'a Ctx<'_>, def: &ResourceDef) -> Option<&'a str> {
    (def.namespaced && !ctx.info.namespace.is_empty()).then_some(ctx.info.namespace.as_str())
}

/// Whether `obj` passes the request's `labelSelector` and `fieldSelector` (an empty or absent one passes all).
fn selected(ctx: &Ctx<'_>, def: &ResourceDef, obj: &Value) -> Result<bool, ApiError> {
    if let Some(sel) = ctx.q("labelSelector").filter(|s| !s.is_empty())
        && !label_matches(sel, &obj["metadata"]["labels"])?
    {
        return Ok(false);
    }
    match ctx.q("fieldSelector").filter(|s| !s.is_empty()) {
        Some(sel) => field_matches(def, sel, obj),
        None => Ok(true),
    }
}

async fn list(ctx: &Ctx<'_>, def: &'static ResourceDef) -> Result<Resp, ApiError> {
    let ns = collection_namespace(ctx, def);
    let filtered = ctx.q("labelSelector").is_some_and(|s| !s.is_empty())
        || ctx.q("fieldSelector").is_some_and(|s| !s.is_empty());
    let limit: i64 = ctx.q("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
    // With selectors the page is filled from the whole range (the predicate runs before paging).
    let page = ctx
        .server
        .store
        .list(def, ns, if filtered { 0 } else { limit }, ctx.q("continue"))
        .await?;
    let mut items = Vec::new();
    for s in page.items {
        if !selected(ctx, def, &s.obj)? {
            continue;
        }
        let mut o = s.obj;
        if let Some(m) = o.as_object_mut() {
            m.remove("kind");
            m.remove("apiVersion");
        }
        items.push(o);
    }
    let rv = page.rev.to_string();
    if ctx.wants_table() {
        return Ok(json_response(
            200,
            &table::table(
                def,
                &items,
                &rv,
                page.continue_token.as_deref(),
                page.remaining,
            ),
        ));
    }
    let mut meta = Map::new();
    meta.insert("resourceVersion".into(), json!(rv));
    if let Some(c) = &page.continue_token {
        meta.insert("continue".into(), json!(c));
    }
    if let Some(r) = page.remaining {
        meta.insert("remainingItemCount".into(), json!(r));
    }
    Ok(json_response(
        200,
        &json!({"kind": def.list_kind(), "apiVersion": def.api_version(), "metadata": meta, "items": items}),
    ))
}

fn body_obj(ctx: &Ctx<'_>, def: &ResourceDef) -> Result<Value, ApiError> {
    let v = super::codec::decode_body(ctx.header("content-type"), &ctx.body)?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "Object 'Kind' is missing in request body",
        ));
    }
    if let Some(av) = v.get("apiVersion").and_then(|a| a.as_str())
        && av != def.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            def.api_version()
        )));
    }
    if let Some(k) = v.get("kind").and_then(|k| k.as_str())
        && !k.is_empty()
        && k != def.kind
        && !matches!(def.resource, "certificatesigningrequests" | "pods")
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            def.kind
        )));
    }
    Ok(v)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(|m| m.is_object()) {
        obj["metadata"] = json!({});
    }
    obj["metadata"].as_object_mut().expect("metadata object")
}

async fn ensure_namespace(ctx: &Ctx<'_>, ns: &str) -> Result<(), ApiError> {
    let nsdef = resources::lookup("", "v1", "namespaces").expect("namespaces");
    match ctx.server.store.get(nsdef, "", ns).await? {
        None => Err(ApiError::not_found("", "namespaces", ns)),
        Some(n) if n.obj["status"]["phase"] == "Terminating" => Err(ApiError::forbidden(
            "",
            ctx.info.resource.as_str(),
            "",
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        )),
        Some(_) => Ok(()),
    }
}

async fn create(ctx: &Ctx<'_>, def: &'static ResourceDef) -> Result<Resp, ApiError> {
    let mut obj = body_obj(ctx, def)?;
    let url_ns = obj_ns(ctx, def).to_string();
    {
        let m = meta_mut(&mut obj);
        if def.namespaced {
            match m.get("namespace").and_then(|n| n.as_str()) {
                Some(n) if !n.is_empty() && n != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    m.insert("namespace".into(), json!(url_ns));
                }
            }
        } else {
            m.remove("namespace");
        }
        let name = m
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_string();
        if name.is_empty()
            && let Some(g) = m
                .get("generateName")
                .and_then(|g| g.as_str())
                .filter(|g| !g.is_empty())
        {
            // names.SimpleNameGenerator: 5 random lowercase alphanumerics.
            const ALNUM: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
            let mut r = [0u8; 5];
            openssl::rand::rand_bytes(&mut r).map_err(ApiError::internal)?;
            let suffix: String = r
                .iter()
                .map(|b| ALNUM[*b as usize % ALNUM.len()] as char)
                .collect();
            m.insert(
                "name".into(),
                json!(format!("{}{suffix}", &g[..g.len().min(58)])),
            );
        }
        m.remove("resourceVersion");
        m.remove("selfLink");
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.insert("uid".into(), json!(new_uid()));
        m.insert("creationTimestamp".into(), json!(now_rfc3339()));
        if m.get("generation")
            .is_none_or(|g| g.as_i64().unwrap_or(0) <= 0)
        {
            m.remove("generation");
        }
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    if name.is_empty() {
        return Err(ApiError::invalid(
            def.group,
            def.kind,
            "",
            vec![FieldError::required(
                "metadata.name",
                "name or generateName is required",
            )],
        ));
    }
    if def.namespaced {
        ensure_namespace(ctx, &url_ns).await?;
    }
    let mut obj = with_type(def, &obj);
    strategy::prepare_create(ctx, def, &mut obj)?;
    strategy::validate(def, &obj, None)?;
    strategy::admit(ctx, def, &obj, None).await?;
    managed::on_write(&mut obj, None, ctx, def);
    let obj = super::codec::normalize(&obj)?;
    if dry_run(ctx) {
        return Ok(json_response(201, &obj));
    }
    let stored = ctx.server.store.create(def, &url_ns, &name, &obj).await?;
    strategy::after_write(ctx, def).await?;
    if def.resource == "namespaces" {
        strategy::ensure_default_service_account(&ctx.server.store, &name).await?;
    }
    Ok(json_response(201, &with_type(def, &stored.obj)))
}

/// PUT (or PATCH with `patched` = the merged object).
async fn update(
    ctx: &Ctx<'_>,
    def: &'static ResourceDef,
    patched: Option<Value>,
) -> Result<Resp, ApiError> {
    let name = ctx.info.name.clone();
    let ns = obj_ns(ctx, def).to_string();
    let body = match &patched {
        Some(p) => p.clone(),
        None => body_obj(ctx, def)?,
    };
    let body_name = body["metadata"]["name"].as_str().unwrap_or("");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if def.namespaced
        && let Some(bns) = body["metadata"]["namespace"].as_str()
        && !bns.is_empty()
        && bns != ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let want_rv = body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let sub = ctx.info.subresource.clone();
    // Admission needs async work (RBAC lookups); do it on the current object first, then run the
    // synchronous update function inside GuaranteedUpdate. The object is read the way kube-apiserver's watch
    // cache would hand it over (`Store::get_cached`): when it is missing or fails the resourceVersion
    // precondition it is read again linearizably before the answer is an error.
    let store = &ctx.server.store;
    let mut is_current = false;
    let mut current = store.get_cached(def, &ns, &name).await?;
    if current.is_none() {
        current = store.get(def, &ns, &name).await?;
        is_current = true;
    }
    let mut current = current.ok_or_else(|| ApiError::not_found(def.group, def.resource, &name))?;
    let candidate = match build_update(ctx, def, &current, &body, &sub, &want_rv) {
        Err(e) if e.code == 409 && !is_current => {
            current = store.get_existing(def, &ns, &name).await?;
            is_current = true;
            build_update(ctx, def, &current, &body, &sub, &want_rv)?
        }
        r => r?,
    };
    strategy::admit(ctx, def, &candidate, Some(&current.obj)).await?;
    if dry_run(ctx) {
        return Ok(json_response(200, &candidate));
    }
    // GuaranteedUpdate starts from that object and the update already built and admitted from it: one etcd read
    // and one txn per PUT of a changed (or stale) object; a retry after a concurrent write rebuilds from the
    // fresh object.
    let current_rev = current.rev;
    let mut first = Some(candidate);
    let stored = store
        .guaranteed_update_from(
            def,
            &ns,
            &name,
            current,
            is_current,
            |cur: &Stored| match first.take() {
                Some(c) if cur.rev == current_rev => Ok(c),
                _ => build_update(ctx, def, cur, &body, &sub, &want_rv),
            },
        )
        .await?;
    if stored.rev != current_rev {
        strategy::after_write(ctx, def).await?;
    }
    Ok(json_response(200, &with_type(def, &stored.obj)))
}

fn build_update(
    ctx: &Ctx<'_>,
    def: &'static ResourceDef,
    cur: &Stored,
    body: &Value,
    sub: &str,
    want_rv: &str,
) -> Result<Value, ApiError> {
    if !want_rv.is_empty() && want_rv != cur.rev.to_string() {
        return Err(ApiError::conflict(def.group, def.resource, &ctx.info.name));
    }
    let old = &cur.obj;
    let mut new = with_type(def, body);
    {
        let m = meta_mut(&mut new);
        let om = &old["metadata"];
        for k in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
        ] {
            match om.get(k) {
                Some(v) => {
                    m.insert(k.into(), v.clone());
                }
                None => {
                    m.remove(k);
                }
            }
        }
        m.remove("resourceVersion");
        m.remove("selfLink");
        if m.get("managedFields")
            .is_none_or(|f| f.as_array().is_none_or(|a| a.is_empty()))
            && let Some(f) = om.get("managedFields")
        {
            m.insert("managedFields".into(), f.clone());
        }
    }
    let mut new = strategy::prepare_update(def, new, old, sub)?;
    strategy::validate(def, &new, Some(old))?;
    // Order the object the way the stored one is ordered so an unchanged update serializes identically.
    new = reorder_like(&new, old);
    managed::on_write(&mut new, Some(old), ctx, def);
    let mut out = super::codec::normalize(&new)?;
    if let Some(m) = out.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.remove("resourceVersion");
    }
    let mut old_cmp = old.clone();
    if let Some(m) = old_cmp.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.remove("resourceVersion");
    }
    if out == old_cmp { Ok(old_cmp) } else { Ok(out) }
}

/// Reorder object keys to follow `like`'s order (keys only in `v` go last).
fn reorder_like(v: &Value, like: &Value) -> Value {
    match (v, like) {
        (Value::Object(a), Value::Object(b)) => {
            let mut m = Map::new();
            for (k, lv) in b {
                if let Some(x) = a.get(k) {
                    m.insert(k.clone(), reorder_like(x, lv));
                }
            }
            for (k, x) in a {
                if !m.contains_key(k) {
                    m.insert(k.clone(), x.clone());
                }
            }
            Value::Object(m)
        }
        (Value::Array(a), Value::Array(b)) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| {
                    b.get(i)
                        .map(|l| reorder_like(x, l))
                        .unwrap_or_else(|| x.clone())
                })
                .collect(),
        ),
        _ => v.clone(),
    }
}

/// RFC 7386 JSON merge patch (also used for strategic merge patch of these kinds).
pub(crate) fn merge_patch(target: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(p) => {
            let mut t = target.as_object().cloned().unwrap_or_default();
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    let cur = t.get(k).cloned().unwrap_or(Value::Null);
                    t.insert(k.clone(), merge_patch(&cur, v));
                }
            }
            Value::Object(t)
        }
        other => other.clone(),
    }
}

async fn patch(ctx: &Ctx<'_>, def: &'static ResourceDef) -> Result<Resp, ApiError> {
    let ct = ctx
        .header("content-type")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if !matches!(
        ct.as_str(),
        "application/merge-patch+json" | "application/strategic-merge-patch+json"
    ) {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json (got {ct})"
            ),
        ));
    }
    let p: Value = serde_json::from_slice(&ctx.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let ns = obj_ns(ctx, def);
    let cur = ctx
        .server
        .store
        .get_existing(def, ns, &ctx.info.name)
        .await?;
    let mut merged = merge_patch(&cur.obj, &p);
    if p["metadata"]["resourceVersion"].is_null()
        && let Some(m) = merged.get_mut("metadata").and_then(|m| m.as_object_mut())
    {
        m.insert("resourceVersion".into(), json!(cur.rev.to_string()));
    }
    update(ctx, def, Some(merged)).await
}

fn delete_precondition(ctx: &Ctx<'_>) -> Result<Option<i64>, ApiError> {
    if ctx.body.is_empty() {
        return Ok(None);
    }
    let v = super::codec::decode_body(ctx.header("content-type"), &ctx.body)?;
    Ok(v["preconditions"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok()))
}

async fn delete(ctx: &Ctx<'_>, def: &'static ResourceDef) -> Result<Resp, ApiError> {
    let name = ctx.info.name.clone();
    let ns = obj_ns(ctx, def).to_string();
    let pre = delete_precondition(ctx)?;
    if def.resource == "namespaces" {
        return delete_namespace(ctx, def, &name, pre).await;
    }
    if dry_run(ctx) {
        let cur = ctx.server.store.get_existing(def, &ns, &name).await?;
        return Ok(json_response(200, &deleted_status(def, &cur.obj)));
    }
    let gone = ctx.server.store.delete(def, &ns, &name, pre).await?;
    strategy::after_write(ctx, def).await?;
    if def.resource == "pods" {
        return Ok(json_response(200, &with_type(def, &gone.obj)));
    }
    Ok(json_response(200, &deleted_status(def, &gone.obj)))
}

/// The Status a DELETE answers for kinds that do not return the deleted object.
fn deleted_status(def: &ResourceDef, obj: &Value) -> Value {
    let mut details = json!({"name": obj["metadata"]["name"], "kind": def.resource, "uid": obj["metadata"]["uid"]});
    if !def.group.is_empty() {
        details["group"] = json!(def.group);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

/// Namespaces the lifecycle admission plugin refuses to delete.
const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];

async fn delete_namespace(
    ctx: &Ctx<'_>,
    def: &'static ResourceDef,
    name: &str,
    pre: Option<i64>,
) -> Result<Resp, ApiError> {
    if IMMORTAL.contains(&name) {
        return Err(ApiError::forbidden(
            "",
            "namespaces",
            name,
            "this namespace may not be deleted",
        ));
    }
    let cur = ctx
        .server
        .store
        .get(def, "", name)
        .await?
        .ok_or_else(|| ApiError::not_found("", "namespaces", name))?;
    let mut terminating = with_type(def, &cur.obj);
    terminating["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
    terminating["status"]["phase"] = json!("Terminating");
    if dry_run(ctx) {
        return Ok(json_response(200, &terminating));
    }
    if let Some(r) = pre
        && r != cur.rev
    {
        return Err(ApiError::conflict("", "namespaces", name));
    }
    // The namespace controller's work, done at once: delete every namespaced object, then finalize.
    for d in RESOURCES.iter().filter(|d| d.namespaced && d.stored) {
        let page = ctx.server.store.list(d, Some(name), 0, None).await?;
        for s in page.items {
            let n = s.obj["metadata"]["name"].as_str().unwrap_or("").to_string();
            match ctx.server.store.delete(d, name, &n, None).await {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    ctx.server.store.delete(def, "", name, None).await?;
    strategy::after_write(ctx, def).await?;
    Ok(json_response(200, &terminating))
}

async fn delete_collection(ctx: &Ctx<'_>, def: &'static ResourceDef) -> Result<Resp, ApiError> {
    let ns = collection_namespace(ctx, def);
    let page = ctx.server.store.list(def, ns, 0, None).await?;
    let mut items = Vec::new();
    for s in page.items {
        if !selected(ctx, def, &s.obj)? {
            continue;
        }
        let n = s.obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let o_ns = s.obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if !dry_run(ctx) {
            match ctx.server.store.delete(def, &o_ns, &n, None).await {
                Ok(_) | Err(ApiError { code: 404, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        items.push(s.obj);
    }
    strategy::after_write(ctx, def).await?;
    Ok(json_response(
        200,
        &json!({"kind": def.list_kind(), "apiVersion": def.api_version(), "metadata": {"resourceVersion": page.rev.to_string()}, "items": items}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let l = json!({"app": "web", "tier": "fe"});
        assert!(label_matches("app=web", &l).unwrap());
        assert!(label_matches("app==web,tier", &l).unwrap());
        assert!(!label_matches("app!=web", &l).unwrap());
        assert!(label_matches("app in (web,db),!missing", &l).unwrap());
        assert!(!label_matches("tier notin (fe)", &l).unwrap());
        let def = resources::lookup("", "v1", "secrets").unwrap();
        let o = json!({"metadata": {"name": "a", "namespace": "ns"}, "type": "Opaque"});
        assert!(field_matches(def, "metadata.name=a,metadata.namespace==ns", &o).unwrap());
        assert!(!field_matches(def, "metadata.name!=a", &o).unwrap());
        assert!(field_matches(def, "spec.x=1", &o).is_err());
    }

    #[test]
    fn merge_patch_rfc7386() {
        let t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        let p = json!({"a": "z", "c": {"f": null}});
        assert_eq!(merge_patch(&t, &p), json!({"a": "z", "c": {"d": "e"}}));
    }
}
