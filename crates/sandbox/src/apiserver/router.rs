//! Request routing: non-resource paths (`/version`, health, discovery, OpenAPI) and the REST resources.

use std::sync::Arc;

use hyper::body::Bytes;
use hyper::http::request::Parts;

use super::authn::{PeerIdentity, UserInfo, anonymous};
use super::http::{Resp, Server, error_response, text_response, version_response};
use super::status::ApiError;

/// Route one request (body already read).
pub(crate) async fn route(
    server: &Arc<Server>,
    identity: Arc<PeerIdentity>,
    parts: Parts,
    _body: Bytes,
) -> Resp {
    let _user: UserInfo = match &*identity {
        PeerIdentity::User(u) => u.clone(),
        PeerIdentity::None if server.opts.anonymous_auth => anonymous(),
        PeerIdentity::None | PeerIdentity::Invalid(_) => {
            return error_response(&ApiError::unauthorized());
        }
    };
    let path = parts.uri.path();
    match path {
        "/version" | "/version/" => version_response(server),
        "/healthz" | "/livez" | "/readyz" => text_response(200, "text/plain; charset=utf-8", "ok"),
        _ => error_response(&ApiError::path_not_found()),
    }
}
