//! Impersonation headers (apiserver `pkg/endpoints/filters/impersonation.go`).

use std::collections::BTreeMap;

use super::authn::{ANONYMOUS, AUTHENTICATED, UNAUTHENTICATED, UserInfo};
use super::rbac::{Attributes, Authorizer, Decision};
use super::status::ApiError;

/// Apply `Impersonate-*` headers: each requested value is authorized for the caller with verb `impersonate`
/// (users, groups, serviceaccounts, uids, userextras), then the request runs as the impersonated user.
pub(crate) async fn impersonate(
    caller: UserInfo,
    headers: &hyper::HeaderMap,
    authz: &Authorizer,
) -> Result<UserInfo, ApiError> {
    let get_all = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(|s| s.to_string()))
            .collect()
    };
    let users = get_all("impersonate-user");
    let groups = get_all("impersonate-group");
    let uids = get_all("impersonate-uid");
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in headers.iter() {
        if let Some(key) = k.as_str().strip_prefix("impersonate-extra-") {
            let key = percent_decode(key);
            if let Ok(v) = v.to_str() {
                extra.entry(key).or_default().push(v.to_string());
            }
        }
    }
    if users.is_empty() {
        if !groups.is_empty() || !uids.is_empty() || !extra.is_empty() {
            // impersonation.go: requested extra/groups/uid without a user.
            let what = if !groups.is_empty() {
                format!("groups={groups:?}")
            } else if !uids.is_empty() {
                format!("uid={}", uids[0])
            } else {
                format!("extra={extra:?}")
            };
            return Err(ApiError::internal(format!(
                "requested {what} without impersonating a user"
            )));
        }
        return Ok(caller);
    }
    let user = users[0].clone();
    // `impersonate` on one requested attribute (impersonation.go: one check per user, group, uid and extra value).
    let check = |group: &str, resource: &str, sub: &str, ns: &str, name: &str| {
        Attributes::resource(&caller, "impersonate", group, resource, sub, ns, name)
    };
    let mut checks: Vec<Attributes> = Vec::new();
    let mut new_groups = groups.clone();
    if let Some(rest) = user.strip_prefix("system:serviceaccount:") {
        let (ns, name) = rest.split_once(':').unwrap_or(("", rest));
        checks.push(check("", "serviceaccounts", "", ns, name));
        if groups.is_empty() {
            new_groups = vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
            ];
        }
    } else {
        checks.push(check("", "users", "", "", &user));
    }
    for g in &groups {
        checks.push(check("", "groups", "", "", g));
    }
    for u in &uids {
        checks.push(check("authentication.k8s.io", "uids", "", "", u));
    }
    for (k, vs) in &extra {
        for v in vs {
            checks.push(check("authentication.k8s.io", "userextras", k, "", v));
        }
    }
    for a in &checks {
        if authz.authorize(a).await?.0 != Decision::Allow {
            // impersonation.go: responsewriters.Forbidden with the attributes of the failed check.
            let reason = super::rbac::forbidden_reason(a);
            return Err(ApiError::forbidden(&a.group, &a.resource, &a.name, &reason));
        }
    }
    // impersonation.go: add system:authenticated unless anonymous or already present.
    if user == ANONYMOUS {
        if !new_groups.iter().any(|g| g == UNAUTHENTICATED) {
            new_groups.push(UNAUTHENTICATED.into());
        }
    } else if !new_groups
        .iter()
        .any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED)
    {
        new_groups.push(AUTHENTICATED.into());
    }
    Ok(UserInfo {
        name: user,
        uid: uids.first().cloned().unwrap_or_default(),
        groups: new_groups,
        extra,
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
