//! Authorization: the privileged-group authorizer (`system:masters`) and RBAC, evaluated like
//! kubernetes `plugin/pkg/auth/authorizer/rbac/rbac.go` with rule resolution from
//! `pkg/registry/rbac/validation/rule.go` (`VisitRulesFor`), matching from `pkg/apis/rbac/v1/evaluation_helpers.go`
//! and coverage for escalation prevention from `component-helpers/auth/rbac/validation/policy_comparator.go`.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use super::authn::{MASTERS, UserInfo};
use super::resources;
use super::status::ApiError;
use super::store::Store;

/// `authorizer.Attributes`.
#[derive(Debug, Clone)]
pub(crate) struct Attributes {
    pub user: UserInfo,
    pub verb: String,
    pub resource_request: bool,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub path: String,
}

impl Attributes {
    pub fn resource(
        user: &UserInfo,
        verb: &str,
        group: &str,
        resource: &str,
        sub: &str,
        ns: &str,
        name: &str,
    ) -> Self {
        Attributes {
            user: user.clone(),
            verb: verb.into(),
            resource_request: true,
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
            path: String::new(),
        }
    }
    pub fn non_resource(user: &UserInfo, verb: &str, path: &str) -> Self {
        Attributes {
            user: user.clone(),
            verb: verb.into(),
            resource_request: false,
            group: String::new(),
            resource: String::new(),
            subresource: String::new(),
            namespace: String::new(),
            name: String::new(),
            path: path.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Allow,
    NoOpinion,
}

/// `rbacv1.PolicyRule`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

/// The strings of a JSON array (anything else: none).
pub(crate) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl PolicyRule {
    pub fn from_json(v: &Value) -> Self {
        PolicyRule {
            verbs: strings(&v["verbs"]),
            api_groups: strings(&v["apiGroups"]),
            resources: strings(&v["resources"]),
            resource_names: strings(&v["resourceNames"]),
            non_resource_urls: strings(&v["nonResourceURLs"]),
        }
    }

    /// `rbacv1helpers.CompactString`.
    pub fn compact_string(&self) -> String {
        let q = |v: &[String]| {
            format!(
                "[{}]",
                v.iter().map(|s| go_quote(s)).collect::<Vec<_>>().join(" ")
            )
        };
        let mut parts = Vec::new();
        if !self.api_groups.is_empty() {
            parts.push(format!("APIGroups:{}", q(&self.api_groups)));
        }
        if !self.resources.is_empty() {
            parts.push(format!("Resources:{}", q(&self.resources)));
        }
        if !self.non_resource_urls.is_empty() {
            parts.push(format!("NonResourceURLs:{}", q(&self.non_resource_urls)));
        }
        if !self.resource_names.is_empty() {
            parts.push(format!("ResourceNames:{}", q(&self.resource_names)));
        }
        if !self.verbs.is_empty() {
            parts.push(format!("Verbs:{}", q(&self.verbs)));
        }
        format!("{{{}}}", parts.join(", "))
    }
}

/// Go's `%q` for simple strings.
pub(crate) fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn verb_matches(r: &PolicyRule, verb: &str) -> bool {
    r.verbs.iter().any(|v| v == "*" || v == verb)
}
fn group_matches(r: &PolicyRule, group: &str) -> bool {
    r.api_groups.iter().any(|g| g == "*" || g == group)
}
fn resource_matches(r: &PolicyRule, resource: &str, sub: &str) -> bool {
    let combined = if sub.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}/{sub}")
    };
    r.resources.iter().any(|x| {
        x == "*"
            || *x == combined
            || (!sub.is_empty()
                && x.len() == sub.len() + 2
                && x.starts_with("*/")
                && &x[2..] == sub)
    })
}
fn name_matches(r: &PolicyRule, name: &str) -> bool {
    r.resource_names.is_empty() || r.resource_names.iter().any(|n| n == name)
}
fn url_matches(r: &PolicyRule, path: &str) -> bool {
    r.non_resource_urls
        .iter()
        .any(|u| u == "*" || u == path || (u.ends_with('*') && path.starts_with(&u[..u.len() - 1])))
}

/// `RuleAllows`.
pub(crate) fn rule_allows(a: &Attributes, r: &PolicyRule) -> bool {
    if a.resource_request {
        verb_matches(r, &a.verb)
            && group_matches(r, &a.group)
            && resource_matches(r, &a.resource, &a.subresource)
            && name_matches(r, &a.name)
    } else {
        verb_matches(r, &a.verb) && url_matches(r, &a.path)
    }
}

/// `forbiddenMessage` (apiserver `pkg/endpoints/handlers/responsewriters/errors.go`).
pub(crate) fn forbidden_reason(a: &Attributes) -> String {
    let u = &a.user.name;
    if !a.resource_request {
        return format!(
            "User {} cannot {} path {}",
            go_quote(u),
            a.verb,
            go_quote(&a.path)
        );
    }
    let res = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    if !a.namespace.is_empty() {
        format!(
            "User {} cannot {} resource {} in API group {} in the namespace {}",
            go_quote(u),
            a.verb,
            go_quote(&res),
            go_quote(&a.group),
            go_quote(&a.namespace)
        )
    } else {
        format!(
            "User {} cannot {} resource {} in API group {} at the cluster scope",
            go_quote(u),
            a.verb,
            go_quote(&res),
            go_quote(&a.group)
        )
    }
}

/// A binding that applies to the user, with the rules of its role.
struct Applied {
    describe: String,
    rules: Vec<PolicyRule>,
}

/// A cached list and the RBAC generation it was read at.
pub(crate) type CachedList = (u64, Arc<Vec<Value>>);

/// The authorizer chain: privileged groups, then RBAC (when enabled), else AlwaysAllow.
pub(crate) struct Authorizer {
    pub store: Arc<Store>,
    /// RBAC objects by `resource/namespace`, valid while the store's RBAC generation is unchanged.
    pub cache: std::sync::Mutex<std::collections::HashMap<String, CachedList>>,
    pub rbac: bool,
    /// `--authorization-mode` contains `Node`.
    pub node: bool,
}

/// A kubelet identity: `system:node:<name>` in group `system:nodes`.
fn is_node(u: &UserInfo) -> bool {
    u.name.starts_with("system:node:") && u.groups.iter().any(|g| g == "system:nodes")
}

/// What the Node authorizer grants a kubelet (`bootstrappolicy.NodeRules()`, used by
/// `plugin/pkg/auth/authorizer/node`). The per-object graph limits (only pods bound to the node, only
/// their secrets/configmaps) are not modelled: a node may read any of those.
fn node_rules() -> Vec<PolicyRule> {
    let r = |groups: &[&str], res: &[&str], verbs: &[&str]| PolicyRule {
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        api_groups: groups.iter().map(|s| s.to_string()).collect(),
        resources: res.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    vec![
        r(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
        r(
            &["authorization.k8s.io"],
            &["subjectaccessreviews", "localsubjectaccessreviews"],
            &["create"],
        ),
        r(&[""], &["services"], &["get", "list", "watch"]),
        r(&[""], &["nodes"], &["create", "get", "list", "watch"]),
        r(&[""], &["nodes/status"], &["patch", "update"]),
        r(&[""], &["nodes"], &["patch", "update"]),
        r(
            &["", "events.k8s.io"],
            &["events"],
            &["create", "patch", "update"],
        ),
        r(&[""], &["pods"], &["get", "list", "watch"]),
        r(&[""], &["pods"], &["create", "delete"]),
        r(&[""], &["pods/status"], &["patch", "update"]),
        r(&[""], &["pods/eviction"], &["create"]),
        r(
            &[""],
            &[
                "secrets",
                "configmaps",
                "persistentvolumeclaims",
                "persistentvolumes",
            ],
            &["get"],
        ),
        r(&[""], &["endpoints"], &["get"]),
        r(
            &["certificates.k8s.io"],
            &["certificatesigningrequests"],
            &["create", "get", "list", "watch"],
        ),
        r(
            &["coordination.k8s.io"],
            &["leases"],
            &["get", "create", "update", "patch", "delete"],
        ),
        r(
            &["storage.k8s.io"],
            &["volumeattachments", "csidrivers"],
            &["get", "list", "watch"],
        ),
        r(
            &["node.k8s.io"],
            &["runtimeclasses"],
            &["get", "list", "watch"],
        ),
    ]
}

/// Subject match (`appliesToUser`).
fn applies_to(subject: &Value, user: &UserInfo, binding_ns: &str) -> Option<String> {
    let kind = subject["kind"].as_str().unwrap_or("");
    let name = subject["name"].as_str().unwrap_or("");
    match kind {
        "User" if user.name == name => Some(format!("User {}", go_quote(name))),
        "Group" if user.groups.iter().any(|g| g == name) => {
            Some(format!("Group {}", go_quote(name)))
        }
        "ServiceAccount" => {
            let ns = subject["namespace"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or(binding_ns);
            if ns.is_empty() {
                return None;
            }
            (user.name == format!("system:serviceaccount:{ns}:{name}"))
                .then(|| format!("ServiceAccount {}", go_quote(&format!("{name}/{ns}"))))
        }
        _ => None,
    }
}

impl Authorizer {
    /// Decide; the string is the allow reason (SubjectAccessReview `reason`) or the resolution errors.
    pub async fn authorize(&self, a: &Attributes) -> Result<(Decision, String), ApiError> {
        if a.user.groups.iter().any(|g| g == MASTERS) {
            return Ok((Decision::Allow, String::new()));
        }
        if !self.rbac {
            return Ok((Decision::Allow, String::new()));
        }
        if self.node && is_node(&a.user) && node_rules().iter().any(|r| rule_allows(a, r)) {
            return Ok((Decision::Allow, String::new()));
        }
        let (applied, errors) = self.applied(&a.user, &a.namespace).await?;
        for ap in &applied {
            if ap.rules.iter().any(|r| rule_allows(a, r)) {
                return Ok((Decision::Allow, format!("RBAC: allowed by {}", ap.describe)));
            }
        }
        let reason = match errors.len() {
            0 => String::new(),
            1 => format!("RBAC: {}", errors[0]),
            _ => format!("RBAC: [{}]", errors.join(", ")),
        };
        Ok((Decision::NoOpinion, reason))
    }

    /// `RulesFor(user, namespace)`: every rule granted (cluster-wide plus the namespace's), and resolution errors.
    pub async fn rules_for(
        &self,
        user: &UserInfo,
        ns: &str,
    ) -> Result<(Vec<PolicyRule>, Vec<String>), ApiError> {
        let mut rules = Vec::new();
        if user.groups.iter().any(|g| g == MASTERS) {
            rules.push(PolicyRule {
                verbs: vec!["*".into()],
                api_groups: vec!["*".into()],
                resources: vec!["*".into()],
                ..Default::default()
            });
            rules.push(PolicyRule {
                verbs: vec!["*".into()],
                non_resource_urls: vec!["*".into()],
                ..Default::default()
            });
        }
        if !self.rbac {
            return Ok((rules, vec![]));
        }
        let (applied, errors) = self.applied(user, ns).await?;
        for ap in applied {
            rules.extend(ap.rules);
        }
        Ok((rules, errors))
    }

    async fn list_all(
        &self,
        resource: &str,
        ns: Option<&str>,
    ) -> Result<Arc<Vec<Value>>, ApiError> {
        let key = format!("{resource}/{}", ns.unwrap_or(""));
        let generation = self
            .store
            .rbac_generation
            .load(std::sync::atomic::Ordering::SeqCst);
        if let Some((g, v)) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            && *g == generation
        {
            return Ok(v.clone());
        }
        let def = resources::lookup("rbac.authorization.k8s.io", "v1", resource)
            .ok_or_else(|| ApiError::internal("rbac"))?;
        let items = self.store.list_all(def, ns).await?;
        let items = Arc::new(items);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (generation, items.clone()));
        Ok(items)
    }

    async fn applied(
        &self,
        user: &UserInfo,
        ns: &str,
    ) -> Result<(Vec<Applied>, Vec<String>), ApiError> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let crbs = self.list_all("clusterrolebindings", None).await?;
        let clusterroles = self.list_all("clusterroles", None).await?;
        let find_cr = |name: &str| clusterroles.iter().find(|r| r["metadata"]["name"] == name);
        for b in crbs.iter() {
            let Some(subjects) = b["subjects"].as_array() else {
                continue;
            };
            let Some(subj) = subjects.iter().find_map(|s| applies_to(s, user, "")) else {
                continue;
            };
            let role_name = b["roleRef"]["name"].as_str().unwrap_or("");
            if b["roleRef"]["kind"] != "ClusterRole" {
                continue;
            }
            match find_cr(role_name) {
                Some(r) => out.push(Applied {
                    describe: format!(
                        "ClusterRoleBinding {} of ClusterRole {} to {subj}",
                        go_quote(b["metadata"]["name"].as_str().unwrap_or("")),
                        go_quote(role_name)
                    ),
                    rules: role_rules(r),
                }),
                None => errors.push(format!(
                    "clusterrole.rbac.authorization.k8s.io {} not found",
                    go_quote(role_name)
                )),
            }
        }
        if !ns.is_empty() {
            let rbs = self.list_all("rolebindings", Some(ns)).await?;
            let roles = if rbs.is_empty() {
                Arc::new(vec![])
            } else {
                self.list_all("roles", Some(ns)).await?
            };
            for b in rbs.iter() {
                let Some(subjects) = b["subjects"].as_array() else {
                    continue;
                };
                let Some(subj) = subjects.iter().find_map(|s| applies_to(s, user, ns)) else {
                    continue;
                };
                let role_name = b["roleRef"]["name"].as_str().unwrap_or("");
                let kind = b["roleRef"]["kind"].as_str().unwrap_or("");
                let role = match kind {
                    "ClusterRole" => find_cr(role_name),
                    "Role" => roles.iter().find(|r| r["metadata"]["name"] == role_name),
                    _ => None,
                };
                match role {
                    Some(r) => out.push(Applied {
                        describe: format!(
                            "RoleBinding {} of {kind} {} to {subj}",
                            go_quote(&format!(
                                "{}/{ns}",
                                b["metadata"]["name"].as_str().unwrap_or("")
                            )),
                            go_quote(role_name)
                        ),
                        rules: role_rules(r),
                    }),
                    None => errors.push(format!(
                        "{}.rbac.authorization.k8s.io {} not found",
                        kind.to_ascii_lowercase(),
                        go_quote(role_name)
                    )),
                }
            }
        }
        Ok((out, errors))
    }

    /// The rules of a binding's roleRef in `ns` (`GetRoleReferenceRules`).
    pub async fn role_ref_rules(
        &self,
        role_ref: &Value,
        ns: &str,
    ) -> Result<Vec<PolicyRule>, ApiError> {
        let name = role_ref["name"].as_str().unwrap_or("");
        let (resource, kind_res) = match role_ref["kind"].as_str() {
            Some("Role") => ("roles", "role"),
            _ => ("clusterroles", "clusterrole"),
        };
        let def = resources::lookup("rbac.authorization.k8s.io", "v1", resource)
            .ok_or_else(|| ApiError::internal("rbac"))?;
        let ns = if resource == "roles" { ns } else { "" };
        match self.store.get(def, ns, name).await? {
            Some(s) => Ok(role_rules(&s.obj)),
            None => Err(ApiError::not_found(
                "rbac.authorization.k8s.io",
                kind_res,
                name,
            )),
        }
    }

    /// `ConfirmNoEscalation`: the user must already hold every requested rule (in `ns`, or cluster-wide).
    pub async fn confirm_no_escalation(
        &self,
        user: &UserInfo,
        ns: &str,
        requested: &[PolicyRule],
    ) -> Result<(), String> {
        let (owner, errors) = self.rules_for(user, ns).await.map_err(|e| e.message)?;
        let missing = uncovered(&owner, requested);
        if missing.is_empty() {
            return Ok(());
        }
        let descs: BTreeSet<String> = compact_rules(missing)
            .iter()
            .map(|r| r.compact_string())
            .collect();
        let groups = format!(
            "[{}]",
            user.groups
                .iter()
                .map(|g| go_quote(g))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut msg = format!(
            "user {} (groups={groups}) is attempting to grant RBAC permissions not currently held:\n{}",
            go_quote(&user.name),
            descs.into_iter().collect::<Vec<_>>().join("\n")
        );
        if !errors.is_empty() {
            msg.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
        }
        Err(msg)
    }
}

/// A role's rules (aggregated roles carry the controller-computed union in `rules`).
pub(crate) fn role_rules(role: &Value) -> Vec<PolicyRule> {
    role["rules"]
        .as_array()
        .map(|a| a.iter().map(PolicyRule::from_json).collect())
        .unwrap_or_default()
}

/// `BreakdownRule`: one rule per (group, resource, verb[, name]) or (url, verb).
fn breakdown(r: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    for g in &r.api_groups {
        for res in &r.resources {
            for v in &r.verbs {
                if r.resource_names.is_empty() {
                    out.push(PolicyRule {
                        api_groups: vec![g.clone()],
                        resources: vec![res.clone()],
                        verbs: vec![v.clone()],
                        ..Default::default()
                    });
                } else {
                    for n in &r.resource_names {
                        out.push(PolicyRule {
                            api_groups: vec![g.clone()],
                            resources: vec![res.clone()],
                            verbs: vec![v.clone()],
                            resource_names: vec![n.clone()],
                            ..Default::default()
                        });
                    }
                }
            }
        }
    }
    for u in &r.non_resource_urls {
        for v in &r.verbs {
            out.push(PolicyRule {
                non_resource_urls: vec![u.clone()],
                verbs: vec![v.clone()],
                ..Default::default()
            });
        }
    }
    out
}

fn has_all(owner: &[String], requested: &[String]) -> bool {
    requested.iter().all(|r| owner.iter().any(|o| o == r))
}

/// `ruleCovers` for a broken-down requested rule.
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = owner.verbs.iter().any(|v| v == "*") || has_all(&owner.verbs, &sub.verbs);
    let groups =
        owner.api_groups.iter().any(|g| g == "*") || has_all(&owner.api_groups, &sub.api_groups);
    let resources = sub.resources.iter().all(|req| {
        owner.resources.iter().any(|o| {
            o == "*"
                || o == req
                || (o.starts_with("*/") && req.split_once('/').is_some_and(|(_, s)| s == &o[2..]))
        })
    });
    let urls = sub.non_resource_urls.iter().all(|req| {
        owner.non_resource_urls.iter().any(|o| {
            o == "*" || o == req || (o.ends_with('*') && req.starts_with(&o[..o.len() - 1]))
        })
    });
    // An unrestricted request is only covered by an unrestricted owner rule.
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names)
    };
    verbs && groups && resources && urls && names
}

/// `Covers`: the broken-down requested rules no owner rule covers.
pub(crate) fn uncovered(owner: &[PolicyRule], requested: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut missing = Vec::new();
    for r in requested {
        for sub in breakdown(r) {
            if !owner.iter().any(|o| rule_covers(o, &sub)) {
                missing.push(sub);
            }
        }
    }
    missing
}

/// `CompactRules`: merge simple resource rules differing only in verbs.
fn compact_rules(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut out: Vec<PolicyRule> = Vec::new();
    for r in rules {
        let simple = r.resource_names.is_empty()
            && r.non_resource_urls.is_empty()
            && r.api_groups.len() == 1
            && r.resources.len() == 1;
        if simple
            && let Some(existing) = out.iter_mut().find(|e| {
                e.resource_names.is_empty()
                    && e.non_resource_urls.is_empty()
                    && e.api_groups == r.api_groups
                    && e.resources == r.resources
            })
        {
            for v in r.verbs {
                if !existing.verbs.contains(&v) {
                    existing.verbs.push(v);
                }
            }
            continue;
        }
        out.push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(v: &[&str], g: &[&str], r: &[&str], n: &[&str]) -> PolicyRule {
        let s = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        PolicyRule {
            verbs: s(v),
            api_groups: s(g),
            resources: s(r),
            resource_names: s(n),
            non_resource_urls: vec![],
        }
    }
    fn user(name: &str) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: vec!["system:authenticated".into()],
            ..Default::default()
        }
    }

    #[test]
    fn rule_allows_like_upstream() {
        let u = user("john");
        let a = Attributes::resource(&u, "get", "", "pods", "log", "ns", "p");
        assert!(
            !rule_allows(&a, &rule(&["get"], &[""], &["pods"], &[])),
            "pods does not cover pods/log"
        );
        assert!(rule_allows(&a, &rule(&["get"], &[""], &["pods/log"], &[])));
        assert!(rule_allows(&a, &rule(&["get"], &[""], &["*/log"], &[])));
        assert!(rule_allows(&a, &rule(&["*"], &["*"], &["*"], &[])));
        let c = Attributes::resource(&u, "create", "", "secrets", "", "ns", "");
        assert!(
            !rule_allows(&c, &rule(&["create"], &[""], &["secrets"], &["x"])),
            "resourceNames never allow create"
        );
        let n = Attributes::non_resource(&u, "get", "/healthz/etcd");
        let nr = PolicyRule {
            verbs: vec!["get".into()],
            non_resource_urls: vec!["/healthz/*".into()],
            ..Default::default()
        };
        assert!(rule_allows(&n, &nr));
    }

    #[test]
    fn forbidden_text() {
        let u = user("john");
        assert_eq!(
            forbidden_reason(&Attributes::resource(
                &u, "list", "", "secrets", "", "default", ""
            )),
            "User \"john\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""
        );
        assert_eq!(
            forbidden_reason(&Attributes::resource(&u, "list", "", "secrets", "", "", "")),
            "User \"john\" cannot list resource \"secrets\" in API group \"\" at the cluster scope"
        );
        assert_eq!(
            forbidden_reason(&Attributes::non_resource(&u, "get", "/readyz")),
            "User \"john\" cannot get path \"/readyz\""
        );
    }

    #[test]
    fn coverage_and_compact_string() {
        let owner = vec![rule(&["get", "list"], &[""], &["secrets"], &[])];
        let req = vec![rule(
            &["get", "list", "watch", "delete"],
            &[""],
            &["secrets"],
            &[],
        )];
        let missing = compact_rules(uncovered(&owner, &req));
        assert_eq!(missing.len(), 1);
        assert_eq!(
            missing[0].compact_string(),
            "{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"watch\" \"delete\"]}"
        );
        assert!(uncovered(&[rule(&["*"], &["*"], &["*"], &[])], &req).is_empty());
        let named = vec![rule(&["get"], &[""], &["secrets"], &["a"])];
        assert!(uncovered(&named, &[rule(&["get"], &[""], &["secrets"], &["a"])]).is_empty());
        assert!(!uncovered(&named, &[rule(&["get"], &[""], &["secrets"], &[])]).is_empty());
    }
}
