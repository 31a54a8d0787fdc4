//! The create-only review kinds: SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview,
//! SelfSubjectRulesReview (`pkg/registry/authorization/*`) and SelfSubjectReview (`pkg/registry/authentication`).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::authn::UserInfo;
use super::codec::decode_body;
use super::http::{Resp, json_response};
use super::rbac::{Attributes, Decision, strings};
use super::resources::ResourceDef;
use super::rest::with_type;
use super::router::Ctx;
use super::status::{ApiError, FieldError};

fn attributes_from_spec(
    def: &ResourceDef,
    spec: &Value,
    user: &UserInfo,
) -> Result<Attributes, ApiError> {
    let ra = &spec["resourceAttributes"];
    let nra = &spec["nonResourceAttributes"];
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    match (ra.is_object(), nra.is_object()) {
        (true, false) => Ok(Attributes::resource(
            user,
            &s(ra, "verb"),
            &s(ra, "group"),
            &s(ra, "resource"),
            &s(ra, "subresource"),
            &s(ra, "namespace"),
            &s(ra, "name"),
        )),
        (false, true) => Ok(Attributes::non_resource(
            user,
            &s(nra, "verb"),
            &s(nra, "path"),
        )),
        (true, true) => Err(ApiError::invalid(
            def.group,
            def.kind,
            "",
            vec![FieldError::invalid(
                "spec.nonResourceAttributes",
                json!(nra),
                "cannot be specified in combination with resourceAttributes",
            )],
        )),
        (false, false) => Err(ApiError::invalid(
            def.group,
            def.kind,
            "",
            vec![FieldError::invalid(
                "spec.resourceAttributes",
                json!(null),
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )],
        )),
    }
}

pub(crate) async fn create(ctx: &Ctx<'_>, def: &'static ResourceDef) -> Result<Resp, ApiError> {
    let body = decode_body(ctx.header("content-type"), &ctx.body)?;
    let mut obj = with_type(def, &body);
    if !obj.get("metadata").is_some_and(|m| m.is_object()) {
        obj["metadata"] = json!({});
    }
    match def.resource {
        "selfsubjectaccessreviews" => {
            let a = attributes_from_spec(def, &obj["spec"], &ctx.user)?;
            obj["status"] = access_status(ctx, &a).await?;
        }
        "subjectaccessreviews" | "localsubjectaccessreviews" => {
            let spec = &obj["spec"];
            let user = spec["user"].as_str().unwrap_or("").to_string();
            let groups = strings(&spec["groups"]);
            if user.is_empty() && groups.is_empty() {
                return Err(ApiError::invalid(
                    def.group,
                    def.kind,
                    "",
                    vec![FieldError::invalid(
                        "spec.user",
                        json!(""),
                        "at least one of user or group must be specified",
                    )],
                ));
            }
            let mut extra = BTreeMap::new();
            if let Some(m) = spec["extra"].as_object() {
                for (k, v) in m {
                    extra.insert(k.clone(), strings(v));
                }
            }
            let subject = UserInfo {
                name: user,
                uid: spec["uid"].as_str().unwrap_or("").to_string(),
                groups,
                extra,
            };
            let a = attributes_from_spec(def, spec, &subject)?;
            if def.resource == "localsubjectaccessreviews" {
                let ns = ctx.info.namespace.clone();
                if !a.resource_request || a.namespace != ns {
                    return Err(ApiError::invalid(
                        def.group,
                        def.kind,
                        "",
                        vec![FieldError::invalid(
                            "spec.resourceAttributes.namespace",
                            json!(a.namespace),
                            "must match metadata.namespace",
                        )],
                    ));
                }
                obj["metadata"]["namespace"] = json!(ns);
            }
            obj["status"] = match ctx.server.faults.access_review_fault() {
                Some(allowed) => {
                    json!({"allowed": allowed, "reason": "sandbox fault: the authorizer's cache has not caught up"})
                }
                None => access_status(ctx, &a).await?,
            };
        }
        "selfsubjectrulesreviews" => {
            let ns = obj["spec"]["namespace"].as_str().unwrap_or("").to_string();
            let (rules, errors) = ctx.server.authz.rules_for(&ctx.user, &ns).await?;
            let mut resource_rules = Vec::new();
            let mut non_resource_rules = Vec::new();
            for r in rules {
                if !r.non_resource_urls.is_empty() {
                    non_resource_rules
                        .push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
                } else {
                    let mut m = Map::new();
                    m.insert("verbs".into(), json!(r.verbs));
                    m.insert("apiGroups".into(), json!(r.api_groups));
                    m.insert("resources".into(), json!(r.resources));
                    if !r.resource_names.is_empty() {
                        m.insert("resourceNames".into(), json!(r.resource_names));
                    }
                    resource_rules.push(Value::Object(m));
                }
            }
            let mut st = json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": !errors.is_empty()});
            if !errors.is_empty() {
                st["evaluationError"] = json!(errors.join(", "));
            }
            obj["status"] = st;
        }
        "selfsubjectreviews" => {
            let u = &ctx.user;
            let mut ui = Map::new();
            ui.insert("username".into(), json!(u.name));
            if !u.uid.is_empty() {
                ui.insert("uid".into(), json!(u.uid));
            }
            ui.insert("groups".into(), json!(u.groups));
            if !u.extra.is_empty() {
                ui.insert("extra".into(), json!(u.extra));
            }
            obj["status"] = json!({"userInfo": ui});
        }
        _ => return Err(ApiError::path_not_found()),
    }
    obj["metadata"]["creationTimestamp"] = Value::Null;
    Ok(json_response(201, &obj))
}

async fn access_status(ctx: &Ctx<'_>, a: &Attributes) -> Result<Value, ApiError> {
    let (d, reason) = ctx.server.authz.authorize(a).await?;
    let mut st = Map::new();
    st.insert("allowed".into(), json!(d == Decision::Allow));
    if !reason.is_empty() {
        st.insert("reason".into(), json!(reason));
    }
    Ok(Value::Object(st))
}
