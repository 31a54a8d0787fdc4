//! Per-kind registry strategies (defaulting, PrepareForCreate/Update, validation) and admission:
//! namespaces (`pkg/registry/core/namespace/strategy.go`), secrets/configmaps (`pkg/apis/core/validation`),
//! RBAC escalation prevention (`pkg/registry/rbac/*/policybased/storage.go`), certificate signing requests
//! (`pkg/registry/certificates/certificates/strategy.go`, `plugin/pkg/admission/certificates/*`), and the
//! clusterrole-aggregation controller's effect.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::authn::MASTERS;
use super::codec::now_rfc3339;
use super::rbac::{Attributes, Decision, PolicyRule, role_rules};
use super::resources::{self, ResourceDef};
use super::rest::{label_matches, with_type};
use super::router::Ctx;
use super::status::{ApiError, FieldError};

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// RBAC names only need to be valid path segments (`ValidateRBACName` = `path.IsValidPathSegmentName`).
fn path_segment_errors(s: &str) -> Option<String> {
    if s == "." || s == ".." {
        return Some(format!("may not be '{s}'"));
    }
    for bad in ["/", "%"] {
        if s.contains(bad) {
            return Some(format!("may not contain '{bad}'"));
        }
    }
    None
}

fn name_errors(def: &ResourceDef, name: &str) -> Option<String> {
    match def.resource {
        "namespaces" => (!is_label(name)).then(|| DNS1123_LABEL_MSG.to_string()),
        "roles" | "rolebindings" | "clusterroles" | "clusterrolebindings" => {
            path_segment_errors(name)
        }
        _ => (!is_subdomain(name)).then(|| DNS1123_SUBDOMAIN_MSG.to_string()),
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

/// Defaulting and PrepareForCreate.
pub(crate) fn prepare_create(
    ctx: &Ctx<'_>,
    def: &ResourceDef,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    match def.resource {
        "namespaces" => {
            let o = obj.as_object_mut().expect("object");
            let finalizers = o.get("spec").and_then(|s| s.get("finalizers")).cloned();
            let mut spec = Map::new();
            spec.insert(
                "finalizers".into(),
                finalizers
                    .filter(|f| f.as_array().is_some_and(|a| !a.is_empty()))
                    .unwrap_or(json!(["kubernetes"])),
            );
            o.insert("spec".into(), Value::Object(spec));
            o.insert("status".into(), json!({"phase": "Active"}));
            // NamespaceDefaultLabelName (kubernetes.io/metadata.name), set by the strategy since 1.21.
            set_label(obj, "kubernetes.io/metadata.name", &name);
        }
        "secrets" => {
            normalize_secret(obj);
        }
        "pods" => {
            let o = obj.as_object_mut().expect("object");
            let status = o.entry("status").or_insert_with(|| json!({}));
            if status.get("phase").is_none() {
                status["phase"] = json!("Pending");
            }
        }
        "certificatesigningrequests" => {
            let u = &ctx.user;
            let spec = obj.get_mut("spec").and_then(|s| s.as_object_mut());
            if let Some(spec) = spec {
                spec.insert("username".into(), json!(u.name));
                if u.uid.is_empty() {
                    spec.remove("uid");
                } else {
                    spec.insert("uid".into(), json!(u.uid));
                }
                if u.groups.is_empty() {
                    spec.remove("groups");
                } else {
                    spec.insert("groups".into(), json!(u.groups));
                }
                if u.extra.is_empty() {
                    spec.remove("extra");
                } else {
                    spec.insert("extra".into(), json!(u.extra));
                }
            }
            // Status is cleared on create.
            obj["status"] = json!({});
        }
        _ => {}
    }
    Ok(())
}

fn set_label(obj: &mut Value, k: &str, v: &str) {
    let m = obj["metadata"].as_object_mut().expect("metadata");
    let labels = m.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels[k] = json!(v);
}

/// v1→internal conversion merges `stringData` into `data`; `type` defaults to Opaque.
fn normalize_secret(obj: &mut Value) {
    let o = obj.as_object_mut().expect("object");
    if let Some(sd) = o.remove("stringData").and_then(|v| v.as_object().cloned()) {
        let data = o.entry("data").or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        for (k, v) in sd {
            data[k.as_str()] = json!(b64(v.as_str().unwrap_or("")));
        }
    }
    if o.get("data")
        .is_some_and(|d| d.as_object().is_some_and(|m| m.is_empty()))
    {
        o.remove("data");
    }
    if o.get("type")
        .and_then(|t| t.as_str())
        .is_none_or(|t| t.is_empty())
    {
        o.insert("type".into(), json!("Opaque"));
    }
}

/// PrepareForUpdate: what a main-resource update or a subresource update may change.
pub(crate) fn prepare_update(
    def: &ResourceDef,
    mut new: Value,
    old: &Value,
    sub: &str,
) -> Result<Value, ApiError> {
    let copy = |new: &mut Value, field: &str| match old.get(field) {
        Some(v) => new[field] = v.clone(),
        None => {
            if let Some(o) = new.as_object_mut() {
                o.remove(field);
            }
        }
    };
    match (def.resource, sub) {
        ("namespaces", "") => {
            copy(&mut new, "status");
            if new["spec"].get("finalizers").is_none() {
                copy(&mut new, "spec");
            }
            let name = old["metadata"]["name"].as_str().unwrap_or("").to_string();
            set_label(&mut new, "kubernetes.io/metadata.name", &name);
        }
        ("namespaces", "status") | ("pods", "status") => {
            let status = new.get("status").cloned();
            new = old.clone();
            match status {
                Some(s) => new["status"] = s,
                None => {
                    new.as_object_mut().expect("object").remove("status");
                }
            }
        }
        ("namespaces", "finalize") => {
            let spec = new.get("spec").cloned();
            new = old.clone();
            if let Some(s) = spec {
                new["spec"] = s;
            }
        }
        ("pods", "") => copy(&mut new, "status"),
        ("secrets", "") => normalize_secret(&mut new),
        ("certificatesigningrequests", "") => {
            copy(&mut new, "spec");
            copy(&mut new, "status");
        }
        ("certificatesigningrequests", "approval") => {
            // Only Approved/Denied conditions come from the request (strategy.go csrApprovalStrategy).
            let mut conditions: Vec<Value> = old["status"]["conditions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|c| c["type"] != "Approved" && c["type"] != "Denied")
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let requested: Vec<Value> = new["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for mut c in requested
                .into_iter()
                .filter(|c| c["type"] == "Approved" || c["type"] == "Denied")
            {
                fill_condition_times(&mut c, old);
                conditions.push(c);
            }
            new = old.clone();
            set_conditions(&mut new, conditions);
        }
        ("certificatesigningrequests", "status") => {
            // The signer may set the certificate and non-approval conditions; Approved/Denied stay as stored.
            let mut conditions: Vec<Value> = old["status"]["conditions"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|c| c["type"] == "Approved" || c["type"] == "Denied")
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            for mut c in new["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
            {
                if c["type"] == "Approved" || c["type"] == "Denied" {
                    continue;
                }
                fill_condition_times(&mut c, old);
                conditions.push(c);
            }
            let cert = new["status"].get("certificate").cloned();
            new = old.clone();
            set_conditions(&mut new, conditions);
            if let Some(c) = cert {
                new["status"]["certificate"] = c;
            }
        }
        _ => {}
    }
    Ok(new)
}

fn set_conditions(obj: &mut Value, conditions: Vec<Value>) {
    if !obj.get("status").is_some_and(|s| s.is_object()) {
        obj["status"] = json!({});
    }
    let st = obj["status"].as_object_mut().expect("status");
    if conditions.is_empty() {
        st.remove("conditions");
    } else {
        st.insert("conditions".into(), Value::Array(conditions));
    }
}

/// Conditions get lastUpdateTime/lastTransitionTime when missing (csr strategy `populateConditionTimestamps`).
fn fill_condition_times(c: &mut Value, old: &Value) {
    let now = now_rfc3339();
    if c.get("lastUpdateTime").is_none_or(|v| v.is_null()) {
        c["lastUpdateTime"] = json!(now);
    }
    if c.get("lastTransitionTime").is_none_or(|v| v.is_null()) {
        let prev = old["status"]["conditions"].as_array().and_then(|a| {
            a.iter()
                .find(|o| o["type"] == c["type"] && o["status"] == c["status"])
                .and_then(|o| o.get("lastTransitionTime").cloned())
        });
        c["lastTransitionTime"] = prev.unwrap_or(json!(now));
    }
}

/// Validation (create when `old` is None).
/// `core.MaxSecretSize`: the most data a Secret or ConfigMap may hold.
const MAX_SECRET_SIZE: usize = 1024 * 1024;

pub(crate) fn validate(
    def: &ResourceDef,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let mut errs = Vec::new();
    if old.is_none()
        && let Some(msg) = name_errors(def, name)
    {
        errs.push(FieldError::invalid("metadata.name", json!(name), &msg));
    }
    match def.resource {
        "secrets" | "configmaps" => {
            // The data of a Secret, and data plus binaryData of a ConfigMap, at most 1 MiB in all
            // (`core.MaxSecretSize`; `ValidateSecret` / `ValidateConfigMap` in pkg/apis/core/validation): base64
            // values count decoded, a ConfigMap's `data` strings as they are.
            let mut total = 0usize;
            for field in ["data", "binaryData"] {
                if let Some(m) = obj.get(field).and_then(|d| d.as_object()) {
                    for (k, v) in m {
                        if k.is_empty()
                            || !k
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
                            || k == "."
                            || k == ".."
                        {
                            errs.push(FieldError::invalid(
                                &format!("{field}[{k}]"),
                                json!(k),
                                CONFIG_KEY_MSG,
                            ));
                        }
                        let text = v.as_str().unwrap_or("");
                        if def.resource == "configmaps" && field == "data" {
                            total += text.len();
                            continue;
                        }
                        match base64::engine::general_purpose::STANDARD.decode(text) {
                            Ok(bytes) => total += bytes.len(),
                            Err(_) if def.resource == "secrets" => {
                                return Err(ApiError::bad_request(format!(
                                    "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 0 (data[{k}])"
                                )));
                            }
                            Err(_) => {}
                        }
                    }
                }
            }
            if total > MAX_SECRET_SIZE {
                let field = if def.resource == "secrets" {
                    "data"
                } else {
                    ""
                };
                errs.push(FieldError::too_long(field, MAX_SECRET_SIZE));
            }
            if def.resource == "secrets" && obj["type"] == "kubernetes.io/tls" {
                for k in ["tls.crt", "tls.key"] {
                    if obj["data"].get(k).is_none() {
                        errs.push(FieldError::required(&format!("data[{k}]"), ""));
                    }
                }
            }
            if let Some(old) = old {
                if old["immutable"] == true {
                    if obj["data"] != old["data"] || obj.get("binaryData") != old.get("binaryData")
                    {
                        errs.push(FieldError::forbidden(
                            "data",
                            "field is immutable when `immutable` is set",
                        ));
                    }
                    if obj["immutable"] != true {
                        errs.push(FieldError::forbidden(
                            "immutable",
                            "field is immutable when `immutable` is set",
                        ));
                    }
                }
                if def.resource == "secrets" && obj["type"] != old["type"] {
                    errs.push(FieldError::invalid(
                        "type",
                        obj["type"].clone(),
                        "field is immutable",
                    ));
                }
            }
        }
        "rolebindings" | "clusterrolebindings" => {
            let rr = &obj["roleRef"];
            if rr["name"].as_str().unwrap_or("").is_empty() {
                errs.push(FieldError::required("roleRef.name", ""));
            }
            let kinds: &[&str] = if def.resource == "rolebindings" {
                &["Role", "ClusterRole"]
            } else {
                &["ClusterRole"]
            };
            let kind = rr["kind"].as_str().unwrap_or("");
            if !kinds.contains(&kind) {
                errs.push(FieldError::not_supported(
                    "roleRef.kind",
                    json!(kind),
                    kinds,
                ));
            }
            if rr["apiGroup"] != "rbac.authorization.k8s.io" {
                errs.push(FieldError::not_supported(
                    "roleRef.apiGroup",
                    rr["apiGroup"].clone(),
                    &["rbac.authorization.k8s.io"],
                ));
            }
            for (i, s) in obj["subjects"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let k = s["kind"].as_str().unwrap_or("");
                if !["User", "Group", "ServiceAccount"].contains(&k) {
                    errs.push(FieldError::not_supported(
                        &format!("subjects[{i}].kind"),
                        json!(k),
                        &["ServiceAccount", "User", "Group"],
                    ));
                }
                if s["name"].as_str().unwrap_or("").is_empty() {
                    errs.push(FieldError::required(&format!("subjects[{i}].name"), ""));
                }
            }
            if let Some(old) = old
                && old["roleRef"] != obj["roleRef"]
            {
                errs.push(FieldError::invalid(
                    "roleRef",
                    obj["roleRef"].clone(),
                    "cannot change roleRef",
                ));
            }
        }
        "roles" | "clusterroles" => {
            for (i, r) in obj["rules"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                if r["verbs"].as_array().is_none_or(|v| v.is_empty()) {
                    errs.push(FieldError::required(
                        &format!("rules[{i}].verbs"),
                        "verbs must contain at least one value",
                    ));
                }
                let has_urls = r["nonResourceURLs"]
                    .as_array()
                    .is_some_and(|v| !v.is_empty());
                if def.resource == "roles" && has_urls {
                    errs.push(FieldError::invalid(
                        &format!("rules[{i}].nonResourceURLs"),
                        r["nonResourceURLs"].clone(),
                        "namespaced rules cannot apply to non-resource URLs",
                    ));
                }
                if !has_urls && r["apiGroups"].as_array().is_none_or(|v| v.is_empty()) {
                    errs.push(FieldError::required(
                        &format!("rules[{i}].apiGroups"),
                        "resource rules must supply at least one api group",
                    ));
                }
            }
        }
        "certificatesigningrequests" => validate_csr(obj, old, &mut errs),
        _ => {}
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(def.group, def.kind, name, errs))
    }
}

const KNOWN_USAGES: &[&str] = &[
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

/// `ValidateCertificateSigningRequestCreate/Update` (pkg/apis/certificates/validation/validation.go).
fn validate_csr(obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let spec = &obj["spec"];
    if old.is_none() {
        let req = spec["request"].as_str().unwrap_or("");
        let parsed = base64::engine::general_purpose::STANDARD
            .decode(req)
            .ok()
            .and_then(|pem| openssl::x509::X509Req::from_pem(&pem).ok());
        match parsed {
            None => errs.push(FieldError::invalid(
                "spec.request",
                json!([]),
                "PEM block type must be CERTIFICATE REQUEST",
            )),
            Some(r) => {
                let ok = r
                    .public_key()
                    .ok()
                    .and_then(|k| r.verify(&k).ok())
                    .unwrap_or(false);
                if !ok {
                    errs.push(FieldError::invalid(
                        "spec.request",
                        json!([]),
                        "x509: invalid signature",
                    ));
                }
            }
        }
        let signer = spec["signerName"].as_str().unwrap_or("");
        if signer.is_empty() {
            errs.push(FieldError::required("spec.signerName", ""));
        } else if signer.split('/').count() != 2 || signer.split('/').any(|p| p.is_empty()) {
            errs.push(FieldError::invalid(
                "spec.signerName",
                json!(signer),
                "must be a fully qualified domain and path of the form 'example.com/signer-name'",
            ));
        }
        let usages: Vec<String> = spec["usages"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if usages.is_empty() {
            errs.push(FieldError::required("spec.usages", ""));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, u) in usages.iter().enumerate() {
            if !KNOWN_USAGES.contains(&u.as_str()) {
                errs.push(FieldError::not_supported(
                    &format!("spec.usages[{i}]"),
                    json!(u),
                    KNOWN_USAGES,
                ));
            } else if !seen.insert(u.clone()) {
                errs.push(FieldError::duplicate(
                    &format!("spec.usages[{i}]"),
                    json!(u),
                ));
            }
        }
        if let Some(e) = spec["expirationSeconds"].as_i64()
            && e < 600
        {
            errs.push(FieldError::invalid(
                "spec.expirationSeconds",
                json!(e),
                "may not specify a duration less than 600 seconds (10 minutes)",
            ));
        }
    }
    let conds = obj["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let approved = conds.iter().any(|c| c["type"] == "Approved");
    let denied = conds.iter().any(|c| c["type"] == "Denied");
    if approved && denied {
        errs.push(FieldError::invalid(
            "status.conditions",
            json!(conds),
            "Approved and Denied conditions are mutually exclusive",
        ));
    }
    for (i, c) in conds.iter().enumerate() {
        if (c["type"] == "Approved" || c["type"] == "Denied") && c["status"] != "True" {
            errs.push(FieldError::not_supported(
                &format!("status.conditions[{i}].status"),
                c["status"].clone(),
                &["True"],
            ));
        }
    }
    if let Some(old) = old {
        let old_conds = old["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for t in ["Approved", "Denied"] {
            let had = old_conds.iter().any(|c| c["type"] == t);
            let has = conds.iter().any(|c| c["type"] == t);
            if had && !has {
                errs.push(FieldError::forbidden(
                    "status.conditions",
                    &format!("updates may not remove a condition of type \"{t}\""),
                ));
            }
        }
        if old["status"]
            .get("certificate")
            .is_some_and(|c| !c.as_str().unwrap_or("").is_empty())
            && obj["status"]["certificate"] != old["status"]["certificate"]
        {
            errs.push(FieldError::invalid(
                "status.certificate",
                json!("<certificate data>"),
                "updates may not modify existing certificate content",
            ));
        }
    }
}

async fn allowed(ctx: &Ctx<'_>, a: &Attributes) -> Result<bool, ApiError> {
    Ok(ctx.server.authz.authorize(a).await?.0 == Decision::Allow)
}

/// `certauthorization.IsAuthorizedForSignerName` (pkg/certauthorization) as the CertificateApproval and
/// CertificateSigning admission plugins use it: `verb` on `signers` named the signer exactly, or else its domain
/// wildcard `<domain>/*`; Forbidden with the plugins' message otherwise.
async fn require_signer_permission(
    ctx: &Ctx<'_>,
    def: &ResourceDef,
    name: &str,
    verb: &str,
    signer: &str,
) -> Result<(), ApiError> {
    let domain = format!("{}/*", signer.split('/').next().unwrap_or(""));
    for signer_name in [signer, domain.as_str()] {
        let a = Attributes::resource(
            &ctx.user,
            verb,
            "certificates.k8s.io",
            "signers",
            "",
            "",
            signer_name,
        );
        if allowed(ctx, &a).await? {
            return Ok(());
        }
    }
    Err(ApiError::forbidden(
        def.group,
        def.resource,
        name,
        &format!("user not permitted to {verb} requests with signerName \"{signer}\""),
    ))
}

/// Admission and the RBAC storage's escalation checks.
pub(crate) async fn admit(
    ctx: &Ctx<'_>,
    def: &ResourceDef,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let user = &ctx.user;
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or("");
    let masters = user.groups.iter().any(|g| g == MASTERS);
    match def.resource {
        "roles" | "clusterroles" if !masters && ctx.server.opts.rbac() => {
            if old.is_some_and(|o| role_rules(o) == role_rules(obj)) {
                return Ok(());
            }
            let esc = Attributes::resource(user, "escalate", def.group, def.resource, "", ns, name);
            if allowed(ctx, &esc).await? {
                return Ok(());
            }
            let rules: Vec<PolicyRule> = role_rules(obj);
            ctx.server
                .authz
                .confirm_no_escalation(user, ns, &rules)
                .await
                .map_err(|msg| ApiError::forbidden(def.group, def.resource, name, &msg))
        }
        "rolebindings" | "clusterrolebindings" if !masters && ctx.server.opts.rbac() => {
            if old
                .is_some_and(|o| o["roleRef"] == obj["roleRef"] && o["subjects"] == obj["subjects"])
            {
                return Ok(());
            }
            let rr = &obj["roleRef"];
            let role_res = if rr["kind"] == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            let bind = Attributes::resource(
                user,
                "bind",
                "rbac.authorization.k8s.io",
                role_res,
                "",
                ns,
                rr["name"].as_str().unwrap_or(""),
            );
            if allowed(ctx, &bind).await? {
                return Ok(());
            }
            let rules = match ctx.server.authz.role_ref_rules(rr, ns).await {
                Ok(r) => r,
                Err(e) => {
                    return Err(ApiError::forbidden(
                        def.group,
                        def.resource,
                        name,
                        &e.message,
                    ));
                }
            };
            ctx.server
                .authz
                .confirm_no_escalation(user, ns, &rules)
                .await
                .map_err(|msg| ApiError::forbidden(def.group, def.resource, name, &msg))
        }
        "certificatesigningrequests" => {
            let signer = obj["spec"]["signerName"].as_str().unwrap_or("").to_string();
            if old.is_none() && signer == "kubernetes.io/kube-apiserver-client" {
                // CertificateSubjectRestriction admission.
                if let Some(req) = obj["spec"]["request"].as_str()
                    && let Ok(pem) = base64::engine::general_purpose::STANDARD.decode(req)
                    && let Ok(r) = openssl::x509::X509Req::from_pem(&pem)
                    && r.subject_name()
                        .entries_by_nid(openssl::nid::Nid::ORGANIZATIONNAME)
                        .any(|e| e.data().as_slice() == b"system:masters")
                {
                    return Err(ApiError::forbidden(
                        def.group,
                        def.resource,
                        name,
                        "use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed",
                    ));
                }
            }
            if ctx.info.subresource == "approval"
                && let Some(old) = old
            {
                // CertificateApproval admission: `approve` on signers/<signerName> or <domain>/*, old signer.
                let signer = old["spec"]["signerName"].as_str().unwrap_or("");
                require_signer_permission(ctx, def, name, "approve", signer).await?;
            }
            if ctx.info.subresource == "status"
                && let Some(old) = old
                && obj["status"]["certificate"] != old["status"]["certificate"]
            {
                // CertificateSigning admission: `sign` on signers.
                let signer = old["spec"]["signerName"].as_str().unwrap_or("");
                require_signer_permission(ctx, def, name, "sign", signer).await?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Does `labels` match a `metav1.LabelSelector` (matchLabels + matchExpressions)?
fn selector_matches(sel: &Value, labels: &Value) -> bool {
    let mut terms = Vec::new();
    if let Some(m) = sel["matchLabels"].as_object() {
        for (k, v) in m {
            terms.push(format!("{k}={}", v.as_str().unwrap_or("")));
        }
    }
    if let Some(exprs) = sel["matchExpressions"].as_array() {
        for e in exprs {
            let k = e["key"].as_str().unwrap_or("");
            let vals: Vec<&str> = e["values"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            match e["operator"].as_str().unwrap_or("") {
                "In" => terms.push(format!("{k} in ({})", vals.join(","))),
                "NotIn" => terms.push(format!("{k} notin ({})", vals.join(","))),
                "Exists" => terms.push(k.to_string()),
                "DoesNotExist" => terms.push(format!("!{k}")),
                _ => return false,
            }
        }
    }
    if terms.is_empty() {
        return false;
    }
    label_matches(&terms.join(","), labels).unwrap_or(false)
}

/// An aggregated ClusterRole's rules are the union of the rules of every ClusterRole its selectors match
/// (`pkg/controller/clusterroleaggregation`); recomputed synchronously after every ClusterRole write.
pub(crate) async fn reaggregate(store: &super::store::Store) -> Result<(), ApiError> {
    // Aggregated roles can aggregate other aggregated roles (admin ← edit ← view): repeat until stable.
    for _ in 0..8 {
        if !reaggregate_pass(store).await? {
            break;
        }
    }
    Ok(())
}

/// One pass of the aggregation controller; true when something changed.
async fn reaggregate_pass(store: &super::store::Store) -> Result<bool, ApiError> {
    let def =
        resources::lookup("rbac.authorization.k8s.io", "v1", "clusterroles").expect("clusterroles");
    let all = store.list_all(def, None).await?;
    let mut changed = false;
    for role in all
        .iter()
        .filter(|r| r["aggregationRule"]["clusterRoleSelectors"].is_array())
    {
        let sels = role["aggregationRule"]["clusterRoleSelectors"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut rules: Vec<Value> = Vec::new();
        let mut sources: Vec<&Value> = all
            .iter()
            .filter(|r| r["metadata"]["name"] != role["metadata"]["name"])
            .filter(|r| {
                sels.iter()
                    .any(|s| selector_matches(s, &r["metadata"]["labels"]))
            })
            .collect();
        sources.sort_by(|a, b| {
            a["metadata"]["name"]
                .as_str()
                .cmp(&b["metadata"]["name"].as_str())
        });
        for src in sources {
            for r in src["rules"].as_array().cloned().unwrap_or_default() {
                if !rules.contains(&r) {
                    rules.push(r);
                }
            }
        }
        let new_rules = Value::Array(rules);
        let current = role.get("rules").cloned().unwrap_or(Value::Array(vec![]));
        if current == new_rules {
            continue;
        }
        let name = role["metadata"]["name"].as_str().unwrap_or("").to_string();
        let res = store
            .guaranteed_update(def, "", &name, |cur| {
                let mut o = with_type(def, &cur.obj);
                o["rules"] = new_rules.clone();
                Ok(o)
            })
            .await;
        match res {
            Ok(_) => changed = true,
            Err(ApiError { code: 404, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(changed)
}

/// Controllers that react to a write (clusterrole aggregation).
pub(crate) async fn after_write(ctx: &Ctx<'_>, def: &ResourceDef) -> Result<(), ApiError> {
    if def.resource == "clusterroles" {
        reaggregate(&ctx.server.store).await?;
    }
    Ok(())
}

/// The serviceaccounts controller: every namespace gets a `default` ServiceAccount.
pub(crate) async fn ensure_default_service_account(
    store: &super::store::Store,
    ns: &str,
) -> Result<(), ApiError> {
    let def = resources::lookup("", "v1", "serviceaccounts").expect("serviceaccounts");
    let sa = json!({
        "kind": "ServiceAccount",
        "apiVersion": "v1",
        "metadata": {"name": "default", "namespace": ns, "uid": super::codec::new_uid(), "creationTimestamp": now_rfc3339()},
    });
    store
        .create_if_absent(def, ns, "default", &sa)
        .await
        .map(|_| ())
}
