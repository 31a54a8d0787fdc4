//! Request routing: authentication result → impersonation → request info (apiserver
//! `pkg/endpoints/request/requestinfo.go`) → faults → authorization → non-resource handlers or REST.

use std::collections::HashMap;
use std::sync::Arc;

use hyper::body::Bytes;
use hyper::http::request::Parts;

use super::authn::{PeerIdentity, UserInfo, anonymous};
use super::faults::WriteFault;
use super::http::{Resp, Server, error_response, text_response, version_response};
use super::rbac::{Attributes, Decision, forbidden_reason};
use super::status::ApiError;
use super::{discovery, exec, impersonation, rest};

/// `RequestInfo`.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestInfo {
    pub resource_request: bool,
    pub path: String,
    pub verb: String,
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

/// Everything a handler needs about the request.
pub(crate) struct Ctx<'a> {
    pub server: &'a Arc<Server>,
    pub user: UserInfo,
    pub info: RequestInfo,
    pub query: HashMap<String, String>,
    pub parts: &'a Parts,
    pub body: Bytes,
}

impl Ctx<'_> {
    pub fn header(&self, name: &str) -> &str {
        self.parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(|s| s.as_str())
    }
    /// The Accept header asks for a `meta.k8s.io` Table.
    pub fn wants_table(&self) -> bool {
        self.header("accept")
            .split(',')
            .any(|a| a.contains("as=Table") && a.contains("g=meta.k8s.io"))
    }
}

pub(crate) fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        m.insert(percent_decode(k), percent_decode(v));
    }
    m
}

pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `RequestInfoFactory.NewRequestInfo`.
pub(crate) fn request_info(
    method: &str,
    path: &str,
    query: &HashMap<String, String>,
) -> RequestInfo {
    let mut info = RequestInfo {
        path: path.to_string(),
        verb: method.to_ascii_lowercase(),
        ..Default::default()
    };
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return info,
    };
    if rest.is_empty() {
        return info;
    }
    info.resource_request = true;
    info.group = group.into();
    info.version = version.into();
    let mut cur: Vec<&str> = rest.to_vec();
    if cur[0] == "namespaces" && cur.len() > 1 {
        info.namespace = cur[1].into();
        if cur.len() > 2 && !["status", "finalize"].contains(&cur[2]) {
            cur = cur[2..].to_vec();
        }
    }
    info.resource = cur[0].into();
    if cur.len() >= 2 {
        info.name = cur[1].into();
    }
    if cur.len() >= 3 {
        info.subresource = cur[2].into();
    }
    info.verb = match method {
        "POST" => "create",
        "GET" | "HEAD" => {
            if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
                "watch"
            } else if info.name.is_empty() {
                "list"
            } else {
                "get"
            }
        }
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => {
            if info.name.is_empty() {
                "deletecollection"
            } else {
                "delete"
            }
        }
        _ => "",
    }
    .to_string();
    // A list with a metadata.name field selector is authorized as that name (requestinfo.go).
    if (info.verb == "list" || info.verb == "watch")
        && let Some(fs) = query.get("fieldSelector")
    {
        for term in fs.split(',') {
            if let Some(n) = term
                .strip_prefix("metadata.name=")
                .or_else(|| term.strip_prefix("metadata.name=="))
            {
                info.name = n.to_string();
            }
        }
    }
    info
}

/// Route one request (body already read).
pub(crate) async fn route(
    server: &Arc<Server>,
    identity: Arc<PeerIdentity>,
    parts: Parts,
    body: Bytes,
) -> Resp {
    match route_inner(server, identity, &parts, body).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

async fn route_inner(
    server: &Arc<Server>,
    identity: Arc<PeerIdentity>,
    parts: &Parts,
    body: Bytes,
) -> Result<Resp, ApiError> {
    let caller: UserInfo = match &*identity {
        PeerIdentity::User(u) => u.clone(),
        PeerIdentity::None if server.opts.anonymous_auth => anonymous(),
        PeerIdentity::Invalid(why) => {
            tracing::debug!("x509 client certificate rejected: {why}");
            return Err(ApiError::unauthorized());
        }
        PeerIdentity::None => return Err(ApiError::unauthorized()),
    };
    let user = impersonation::impersonate(caller, &parts.headers, &server.authz).await?;
    let query = parse_query(parts.uri.query());
    let path = parts.uri.path().to_string();
    let method = parts.method.as_str().to_string();
    let info = request_info(&method, &path, &query);

    let mutating = matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE");
    if mutating && let Some(f) = server.faults.write_fault() {
        return Err(match f {
            WriteFault::TooManyRequests {
                retry_after_seconds,
            } => ApiError::too_many_requests(retry_after_seconds),
            WriteFault::InternalError => ApiError::internal("injected fault"),
        });
    }
    if method == "GET"
        && info.resource_request
        && info.name.is_empty()
        && query.get("continue").is_some_and(|c| !c.is_empty())
        && server.faults.continue_expired()
    {
        return Err(ApiError::expired(super::store::EXPIRED_CONTINUE));
    }

    let attrs = if info.resource_request {
        Attributes::resource(
            &user,
            &info.verb,
            &info.group,
            &info.resource,
            &info.subresource,
            &info.namespace,
            &info.name,
        )
    } else {
        let verb = match method.as_str() {
            "GET" | "HEAD" => "get",
            "POST" => "post",
            "PUT" => "put",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "get",
        };
        Attributes::non_resource(&user, verb, &path)
    };
    let (decision, reason) = server.authz.authorize(&attrs).await?;
    if decision != Decision::Allow {
        let mut msg = forbidden_reason(&attrs);
        if !reason.is_empty() {
            msg = format!("{msg}: {reason}");
        }
        return Err(ApiError::forbidden(
            &attrs.group,
            &attrs.resource,
            &attrs.name,
            &msg,
        ));
    }

    let ctx = Ctx {
        server,
        user,
        info,
        query,
        parts,
        body,
    };
    if ctx.info.resource_request {
        if exec::is_exec(&ctx.info) {
            return exec::handle(&ctx).await;
        }
        return rest::handle(&ctx).await;
    }
    non_resource(&ctx).await
}

async fn non_resource(ctx: &Ctx<'_>) -> Result<Resp, ApiError> {
    let path = ctx.info.path.trim_end_matches('/');
    if ctx.parts.method != "GET" && ctx.parts.method != "HEAD" {
        return Err(ApiError::path_not_found());
    }
    match path {
        "/version" => Ok(version_response(ctx.server)),
        "/healthz" | "/livez" | "/readyz" => Ok(health(ctx, path)),
        "/metrics" => Ok(metrics(ctx)),
        "/openapi/v2" => {
            // An empty openapi_v2.Document is valid protobuf; kubectl then skips client-side validation for
            // kinds it does not find (research apiserver-emulation.md §2).
            Ok(text_response(
                200,
                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                Bytes::new(),
            ))
        }
        _ => {
            if let Some(check) = ["/healthz/", "/livez/", "/readyz/"]
                .iter()
                .find_map(|p| path.strip_prefix(p))
            {
                if !path.starts_with("/livez/")
                    && let Some((_, r)) =
                        encryption_checks(ctx).into_iter().find(|(n, _)| n == check)
                {
                    // healthz `adaptCheckToHandler`.
                    return Ok(match r {
                        Ok(()) => text_response(200, "text/plain; charset=utf-8", "ok"),
                        Err(e) => text_response(
                            500,
                            "text/plain; charset=utf-8",
                            format!("internal server error: {e}\n"),
                        ),
                    });
                }
                return if HEALTH_CHECKS.contains(&check) {
                    Ok(text_response(200, "text/plain; charset=utf-8", "ok"))
                } else {
                    Ok(text_response(
                        404,
                        "text/plain; charset=utf-8",
                        "404 page not found\n",
                    ))
                };
            }
            discovery::handle(ctx, path).await
        }
    }
}

const HEALTH_CHECKS: &[&str] = &[
    "ping",
    "log",
    "etcd",
    "poststarthook/start-apiserver-admission-initializer",
    "poststarthook/generic-apiserver-start-informers",
    "poststarthook/rbac/bootstrap-roles",
    "poststarthook/scheduling/bootstrap-system-priority-classes",
    "poststarthook/bootstrap-controller",
];

/// The EncryptionConfiguration's KMS checks (`kms-providers` / `kms-provider-<i>`), with their results.
fn encryption_checks(ctx: &Ctx<'_>) -> Vec<(String, Result<(), String>)> {
    ctx.server
        .store
        .transformer()
        .encryption()
        .map(|e| e.health_checks())
        .unwrap_or_default()
}

/// apiserver `pkg/server/healthz/healthz.go` `handleRootHealth`: every check in order (`?exclude=` skips one);
/// on a failure the list is printed with `[-]<name> failed: reason withheld` and a 500, else `ok` (or the list
/// with `?verbose`). The KMS checks are not part of `/livez`.
fn health(ctx: &Ctx<'_>, path: &str) -> Resp {
    let excluded: Vec<&str> = ctx
        .parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.strip_prefix("exclude="))
        .collect();
    let mut checks: Vec<(String, Result<(), String>)> = Vec::new();
    for c in HEALTH_CHECKS {
        checks.push((c.to_string(), Ok(())));
        if *c == "etcd" && path != "/livez" {
            checks.extend(encryption_checks(ctx));
        }
    }
    if path == "/readyz" {
        checks.push(("shutdown".into(), Ok(())));
    }
    let name = path.trim_start_matches('/');
    let mut s = String::new();
    let mut failed = false;
    for (c, r) in &checks {
        if excluded.contains(&c.as_str()) {
            s.push_str(&format!("[+]{c} excluded: ok\n"));
            continue;
        }
        match r {
            Ok(()) => s.push_str(&format!("[+]{c} ok\n")),
            Err(e) => {
                tracing::info!(check = %c, error = %e, "{name} check failed");
                failed = true;
                s.push_str(&format!("[-]{c} failed: reason withheld\n"));
            }
        }
    }
    if failed {
        s.push_str(&format!("{name} check failed\n"));
        return text_response(500, "text/plain; charset=utf-8", s);
    }
    if !ctx.query.contains_key("verbose") {
        return text_response(200, "text/plain; charset=utf-8", "ok");
    }
    s.push_str(&format!("{name} check passed\n"));
    text_response(200, "text/plain; charset=utf-8", s)
}

/// `/metrics`: the encryption-config reload metrics (the only ones the sandbox keeps).
fn metrics(ctx: &Ctx<'_>) -> Resp {
    let minor: u32 = ctx
        .server
        .version
        .minor
        .trim_end_matches('+')
        .parse()
        .unwrap_or(0);
    // kube-apiserver's identity from its host's name, hashed as its metrics label it (atrest_core::encrypt).
    let hostname = match &ctx.server.kubelet {
        Some(k) => k.hostname(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default(),
    };
    let id_hash = atrest_core::encrypt::apiserver_id_hash(&hostname);
    let body = ctx
        .server
        .store
        .transformer()
        .encryption()
        .and_then(|e| e.metrics().map(|m| m.render(minor, &id_hash)))
        .unwrap_or_default();
    text_response(200, "text/plain; version=0.0.4; charset=utf-8", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_info_like_upstream() {
        let q = HashMap::new();
        let i = request_info("GET", "/api/v1/namespaces/default/secrets/demo", &q);
        assert_eq!(
            (
                i.namespace.as_str(),
                i.resource.as_str(),
                i.name.as_str(),
                i.verb.as_str()
            ),
            ("default", "secrets", "demo", "get")
        );
        let i = request_info("GET", "/api/v1/namespaces/marketing", &q);
        assert_eq!(
            (i.namespace.as_str(), i.resource.as_str(), i.name.as_str()),
            ("marketing", "namespaces", "marketing")
        );
        let i = request_info("PUT", "/api/v1/namespaces/x/finalize", &q);
        assert_eq!(
            (
                i.resource.as_str(),
                i.name.as_str(),
                i.subresource.as_str(),
                i.verb.as_str()
            ),
            ("namespaces", "x", "finalize", "update")
        );
        let i = request_info(
            "PUT",
            "/apis/certificates.k8s.io/v1/certificatesigningrequests/c/approval",
            &q,
        );
        assert_eq!(
            (i.group.as_str(), i.subresource.as_str()),
            ("certificates.k8s.io", "approval")
        );
        let i = request_info("GET", "/api/v1/secrets", &q);
        assert_eq!((i.namespace.as_str(), i.verb.as_str()), ("", "list"));
        let i = request_info("GET", "/apis", &q);
        assert!(!i.resource_request);
        assert_eq!(percent_decode("metadata.name%3Dx%2Cy"), "metadata.name=x,y");
    }
}
