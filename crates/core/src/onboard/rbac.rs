//! The Role and RoleBinding: planned from the current objects, applied idempotently, dry-run first.
//!
//! Only objects labelled `app.kubernetes.io/managed-by=atrest` are ever changed or deleted; a same-named object
//! someone else made is an error. `roleRef` is immutable (`pkg/apis/rbac/validation/validation.go`), so a binding
//! whose roleRef must change is deleted and recreated. Subjects are merged, so several users (or runs) can share a
//! binding.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams};

use super::{
    Access, Change, MANAGED_BY, MANAGED_BY_LABEL, ObjectChange, OnboardError, OnboardOptions,
    Result, USER_ANNOTATION,
};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// What to write, next to what is there.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Namespace.
    pub namespace: String,
    /// Desired Role (`None` when binding a ClusterRole).
    pub role: Option<Role>,
    /// Existing Role of that name.
    pub existing_role: Option<Role>,
    /// Desired RoleBinding.
    pub binding: RoleBinding,
    /// Existing RoleBinding of that name.
    pub existing_binding: Option<RoleBinding>,
    /// The bound ClusterRole's rules (ClusterRole mode), for the expected verification results.
    pub cluster_role_rules: Option<Vec<PolicyRule>>,
}

impl Plan {
    /// `namespace/name` of the binding.
    pub fn binding_names(&self) -> Vec<String> {
        vec![format!(
            "{}/{}",
            self.namespace,
            self.binding.metadata.name.clone().unwrap_or_default()
        )]
    }
}

fn managed(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY_LABEL))
        .map(String::as_str)
        == Some(MANAGED_BY)
}

fn meta(name: &str, namespace: &str, user: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        labels: Some(BTreeMap::from([(
            MANAGED_BY_LABEL.to_string(),
            MANAGED_BY.to_string(),
        )])),
        annotations: Some(BTreeMap::from([(
            USER_ANNOTATION.to_string(),
            user.to_string(),
        )])),
        ..Default::default()
    }
}

/// Rules for `verbs` × `resources`, one rule per API group (like `kubectl create role`).
pub fn rules_for(verbs: &[String], resources: &[super::ResourceRef]) -> Vec<PolicyRule> {
    let mut by_group: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in resources {
        let v = by_group.entry(r.group.as_str()).or_default();
        if !v.contains(&r.resource) {
            v.push(r.resource.clone());
        }
    }
    by_group
        .into_iter()
        .map(|(g, res)| PolicyRule {
            api_groups: Some(vec![g.to_string()]),
            resources: Some(res),
            verbs: verbs.to_vec(),
            ..Default::default()
        })
        .collect()
}

/// The binding's subject: the user, or `--bind-group`.
pub fn subject(opts: &OnboardOptions) -> Subject {
    match &opts.bind_group {
        Some(g) => Subject {
            kind: "Group".into(),
            api_group: Some(RBAC_GROUP.into()),
            name: g.clone(),
            namespace: None,
        },
        None => Subject {
            kind: "User".into(),
            api_group: Some(RBAC_GROUP.into()),
            name: opts.user.clone(),
            namespace: None,
        },
    }
}

fn same_subject(a: &Subject, b: &Subject) -> bool {
    a.kind == b.kind && a.name == b.name && a.namespace == b.namespace
}

/// Reads the current objects and computes the desired ones. Errors if a same-named object is not ours or the
/// ClusterRole does not exist.
pub async fn plan(client: &kube::Client, opts: &OnboardOptions) -> Result<Plan> {
    let ns = &opts.namespace;
    let roles: Api<Role> = Api::namespaced(client.clone(), ns);
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
    let (role, role_ref, binding_name, cluster_role_rules) = match &opts.access {
        Access::Rules {
            role,
            verbs,
            resources,
        } => {
            let desired = Role {
                metadata: meta(role, ns, &opts.user),
                rules: Some(rules_for(verbs, resources)),
            };
            let rr = RoleRef {
                api_group: RBAC_GROUP.into(),
                kind: "Role".into(),
                name: role.clone(),
            };
            (Some(desired), rr, role.clone(), None)
        }
        Access::ClusterRole { name, .. } => {
            let cr: Api<ClusterRole> = Api::all(client.clone());
            let found = cr
                .get_opt(name)
                .await
                .map_err(|e| OnboardError::api(format!("get clusterrole {name}"), e))?
                .ok_or_else(|| {
                    OnboardError::Refused(format!(
                        "clusterrole {name:?} does not exist (see `kubectl get clusterroles`; view, edit and admin are built in)"
                    ))
                })?;
            let rr = RoleRef {
                api_group: RBAC_GROUP.into(),
                kind: "ClusterRole".into(),
                name: name.clone(),
            };
            let who = opts.bind_group.clone().unwrap_or_else(|| opts.user.clone());
            (
                None,
                rr,
                format!("{who}-{name}"),
                Some(found.rules.unwrap_or_default()),
            )
        }
    };
    let existing_role = match &role {
        Some(r) => {
            let name = r.metadata.name.clone().unwrap_or_default();
            let e = roles
                .get_opt(&name)
                .await
                .map_err(|e| OnboardError::api(format!("get role {ns}/{name}"), e))?;
            if let Some(e) = &e
                && !managed(&e.metadata)
            {
                return Err(OnboardError::Refused(format!(
                    "role {ns}/{name} already exists and is not managed by atrest (no label {MANAGED_BY_LABEL}={MANAGED_BY}); \
                     pick another name with --role, or bind it with --clusterrole if it is a ClusterRole"
                )));
            }
            e
        }
        None => None,
    };
    let existing_binding = bindings
        .get_opt(&binding_name)
        .await
        .map_err(|e| OnboardError::api(format!("get rolebinding {ns}/{binding_name}"), e))?;
    if let Some(e) = &existing_binding
        && !managed(&e.metadata)
    {
        return Err(OnboardError::Refused(format!(
            "rolebinding {ns}/{binding_name} already exists and is not managed by atrest (no label \
             {MANAGED_BY_LABEL}={MANAGED_BY}); pick another name with --role"
        )));
    }
    let want = subject(opts);
    let mut subjects = existing_binding
        .as_ref()
        .filter(|e| e.role_ref == role_ref)
        .and_then(|e| e.subjects.clone())
        .unwrap_or_default();
    if !subjects.iter().any(|s| same_subject(s, &want)) {
        subjects.push(want);
    }
    let mut bmeta = meta(&binding_name, ns, &opts.user);
    if let Some(e) = &existing_binding {
        // Keep the first user's annotation on a shared binding.
        bmeta.annotations = e.metadata.annotations.clone().or(bmeta.annotations);
    }
    let binding = RoleBinding {
        metadata: bmeta,
        role_ref,
        subjects: Some(subjects),
    };
    Ok(Plan {
        namespace: ns.clone(),
        role,
        existing_role,
        binding,
        existing_binding,
        cluster_role_rules,
    })
}

fn role_change(plan: &Plan) -> Option<Change> {
    let role = plan.role.as_ref()?;
    Some(match &plan.existing_role {
        None => Change::Created,
        Some(e) if e.rules == role.rules && managed(&e.metadata) => Change::Unchanged,
        Some(_) => Change::Updated,
    })
}

fn binding_change(plan: &Plan) -> Change {
    match &plan.existing_binding {
        None => Change::Created,
        Some(e) if e.role_ref == plan.binding.role_ref && e.subjects == plan.binding.subjects => {
            Change::Unchanged
        }
        Some(_) => Change::Updated,
    }
}

/// The changes `apply` makes (dry-run spelling when `dry_run`), without calling the server.
pub fn changes(plan: &Plan, dry_run: bool) -> Vec<ObjectChange> {
    let mut out = Vec::new();
    let fix = |c: Change| if dry_run { c.dry() } else { c };
    if let (Some(r), Some(c)) = (&plan.role, role_change(plan)) {
        out.push(ObjectChange {
            kind: "Role".into(),
            namespace: Some(plan.namespace.clone()),
            name: r.metadata.name.clone().unwrap_or_default(),
            change: fix(c),
        });
    }
    out.push(ObjectChange {
        kind: "RoleBinding".into(),
        namespace: Some(plan.namespace.clone()),
        name: plan.binding.metadata.name.clone().unwrap_or_default(),
        change: fix(binding_change(plan)),
    });
    out
}

/// Creates/updates the Role and RoleBinding (`?dryRun=All` when `dry_run`; errors then become
/// [`OnboardError::DryRunRefused`], e.g. RBAC escalation prevention).
pub async fn apply(client: &kube::Client, plan: &Plan, dry_run: bool) -> Result<Vec<ObjectChange>> {
    let ns = &plan.namespace;
    let pp = super::post_params(dry_run);
    let fail = |what: String| move |e| OnboardError::write(what.clone(), what, dry_run, e);
    if let (Some(role), Some(change)) = (&plan.role, role_change(plan)) {
        let api: Api<Role> = Api::namespaced(client.clone(), ns);
        let name = role.metadata.name.clone().unwrap_or_default();
        match change {
            Change::Created => {
                api.create(&pp, role)
                    .await
                    .map_err(fail(format!("Role {ns}/{name}")))?;
            }
            Change::Updated => {
                let mut r = role.clone();
                r.metadata.resource_version = plan
                    .existing_role
                    .as_ref()
                    .and_then(|e| e.metadata.resource_version.clone());
                api.replace(&name, &pp, &r)
                    .await
                    .map_err(fail(format!("Role {ns}/{name}")))?;
            }
            _ => {}
        }
    }
    let api: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
    let name = plan.binding.metadata.name.clone().unwrap_or_default();
    match (binding_change(plan), &plan.existing_binding) {
        (Change::Created, _) => {
            api.create(&pp, &plan.binding)
                .await
                .map_err(fail(format!("RoleBinding {ns}/{name}")))?;
        }
        (Change::Updated, Some(e)) if e.role_ref != plan.binding.role_ref => {
            let dp = DeleteParams {
                dry_run,
                ..Default::default()
            };
            api.delete(&name, &dp).await.map_err(fail(format!(
                "RoleBinding {ns}/{name} (delete to change roleRef)"
            )))?;
            if !dry_run {
                api.create(&pp, &plan.binding)
                    .await
                    .map_err(fail(format!("RoleBinding {ns}/{name}")))?;
            }
        }
        (Change::Updated, Some(e)) => {
            let mut b = plan.binding.clone();
            b.metadata.resource_version = e.metadata.resource_version.clone();
            api.replace(&name, &pp, &b)
                .await
                .map_err(fail(format!("RoleBinding {ns}/{name}")))?;
        }
        _ => {}
    }
    Ok(changes(plan, dry_run))
}

/// One (namespace, group, resource, verb) access to re-check after offboarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Namespace.
    pub namespace: String,
    /// API group.
    pub group: String,
    /// Resource (maybe `res/sub`).
    pub resource: String,
    /// Verb.
    pub verb: String,
}

/// What `--remove` did to RBAC.
#[derive(Debug, Default)]
pub struct Offboarded {
    /// Objects deleted/edited.
    pub objects: Vec<ObjectChange>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Accesses the removed bindings granted (to verify they are gone).
    pub checked: Vec<Checked>,
}

fn names_user(b: &[Subject], user: &str) -> bool {
    b.iter().any(|s| s.kind == "User" && s.name == user)
}

fn concrete(rules: &[PolicyRule], ns: &str, out: &mut Vec<Checked>) {
    for r in rules {
        for g in r.api_groups.iter().flatten() {
            for res in r.resources.iter().flatten() {
                for v in &r.verbs {
                    if g != "*" && res != "*" && v != "*" && out.len() < 60 {
                        out.push(Checked {
                            namespace: ns.to_string(),
                            group: g.clone(),
                            resource: res.clone(),
                            verb: v.clone(),
                        });
                    }
                }
            }
        }
    }
}

/// Deletes the atrest-managed RoleBindings naming `user` (removes the user from shared ones), then the
/// atrest-managed Roles no binding references any more; warns about other bindings that still admit the user or
/// the certificate's groups.
pub async fn offboard(
    client: &kube::Client,
    user: &str,
    cert_groups: &[String],
    namespace: Option<&str>,
    dry_run: bool,
) -> Result<Offboarded> {
    let mut out = Offboarded::default();
    let all_bindings: Api<RoleBinding> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let scope = namespace
        .map(|n| format!("namespace {n}"))
        .unwrap_or_else(|| "all namespaces".into());
    let list = all_bindings
        .list(&ListParams::default())
        .await
        .map_err(|e| OnboardError::api(format!("list rolebindings in {scope}"), e))?;
    let pp = super::post_params(dry_run);
    let dp = DeleteParams {
        dry_run,
        ..Default::default()
    };
    let change = |c: Change| if dry_run { c.dry() } else { c };
    let mut role_candidates: Vec<(String, String)> = Vec::new();
    let mut removed: Vec<(String, String)> = Vec::new();
    for b in &list.items {
        let ns = b.metadata.namespace.clone().unwrap_or_default();
        let name = b.metadata.name.clone().unwrap_or_default();
        let subjects = b.subjects.clone().unwrap_or_default();
        if !names_user(&subjects, user) {
            continue;
        }
        if !managed(&b.metadata) {
            out.warnings.push(format!(
                "rolebinding {ns}/{name} (role {} {}) is not managed by atrest and still grants access to user {user:?}: \
                 remove the user from it yourself (kubectl edit rolebinding {name} -n {ns})",
                b.role_ref.kind, b.role_ref.name
            ));
            continue;
        }
        let api: Api<RoleBinding> = Api::namespaced(client.clone(), &ns);
        let rest: Vec<Subject> = subjects
            .iter()
            .filter(|s| !(s.kind == "User" && s.name == user))
            .cloned()
            .collect();
        if rest.is_empty() {
            api.delete(&name, &dp)
                .await
                .map_err(|e| OnboardError::api(format!("delete rolebinding {ns}/{name}"), e))?;
            out.objects.push(ObjectChange {
                kind: "RoleBinding".into(),
                namespace: Some(ns.clone()),
                name: name.clone(),
                change: change(Change::Deleted),
            });
            removed.push((ns.clone(), name.clone()));
        } else {
            let mut nb = b.clone();
            nb.subjects = Some(rest);
            api.replace(&name, &pp, &nb)
                .await
                .map_err(|e| OnboardError::api(format!("update rolebinding {ns}/{name}"), e))?;
            out.objects.push(ObjectChange {
                kind: "RoleBinding".into(),
                namespace: Some(ns.clone()),
                name: name.clone(),
                change: change(Change::Updated),
            });
        }
        // What the binding granted, to check afterwards.
        match b.role_ref.kind.as_str() {
            "Role" => {
                let roles: Api<Role> = Api::namespaced(client.clone(), &ns);
                if let Ok(Some(r)) = roles.get_opt(&b.role_ref.name).await {
                    concrete(
                        r.rules.as_deref().unwrap_or_default(),
                        &ns,
                        &mut out.checked,
                    );
                }
                role_candidates.push((ns.clone(), b.role_ref.name.clone()));
            }
            "ClusterRole" => {
                let crs: Api<ClusterRole> = Api::all(client.clone());
                if let Ok(Some(r)) = crs.get_opt(&b.role_ref.name).await {
                    concrete(
                        r.rules.as_deref().unwrap_or_default(),
                        &ns,
                        &mut out.checked,
                    );
                }
            }
            _ => {}
        }
    }
    // Roles no remaining binding references.
    role_candidates.sort();
    role_candidates.dedup();
    for (ns, role) in role_candidates {
        let still_used = list.items.iter().any(|b| {
            b.metadata.namespace.as_deref() == Some(ns.as_str())
                && b.role_ref.kind == "Role"
                && b.role_ref.name == role
                && !removed.contains(&(ns.clone(), b.metadata.name.clone().unwrap_or_default()))
        });
        if still_used {
            continue;
        }
        let roles: Api<Role> = Api::namespaced(client.clone(), &ns);
        match roles.get_opt(&role).await {
            Ok(Some(r)) if managed(&r.metadata) => {
                roles
                    .delete(&role, &dp)
                    .await
                    .map_err(|e| OnboardError::api(format!("delete role {ns}/{role}"), e))?;
                out.objects.push(ObjectChange {
                    kind: "Role".into(),
                    namespace: Some(ns.clone()),
                    name: role.clone(),
                    change: change(Change::Deleted),
                });
            }
            Ok(_) => {}
            Err(e) => return Err(OnboardError::api(format!("get role {ns}/{role}"), e)),
        }
    }
    // Cluster-wide bindings of the user, and bindings of the certificate's groups.
    let crbs: Api<ClusterRoleBinding> = Api::all(client.clone());
    let crb_list = crbs
        .list(&ListParams::default())
        .await
        .map_err(|e| OnboardError::api("list clusterrolebindings", e))?;
    for b in &crb_list.items {
        let subjects = b.subjects.clone().unwrap_or_default();
        let name = b.metadata.name.clone().unwrap_or_default();
        if names_user(&subjects, user) {
            out.warnings.push(format!(
                "clusterrolebinding {name} (clusterrole {}) still grants cluster-wide access to user {user:?}",
                b.role_ref.name
            ));
        }
        for g in cert_groups {
            if subjects.iter().any(|s| s.kind == "Group" && &s.name == g) {
                out.warnings.push(format!(
                    "clusterrolebinding {name} (clusterrole {}) binds group {g:?}, which the user's certificate carries: \
                     the user keeps that access until the certificate expires",
                    b.role_ref.name
                ));
            }
        }
    }
    for b in &list.items {
        let subjects = b.subjects.clone().unwrap_or_default();
        let ns = b.metadata.namespace.clone().unwrap_or_default();
        let name = b.metadata.name.clone().unwrap_or_default();
        for g in cert_groups {
            if subjects.iter().any(|s| s.kind == "Group" && &s.name == g) {
                out.warnings.push(format!(
                    "rolebinding {ns}/{name} ({} {}) binds group {g:?}, which the user's certificate carries: the user \
                     keeps that access until the certificate expires, unless the whole group loses it",
                    b.role_ref.kind, b.role_ref.name
                ));
            }
        }
    }
    Ok(out)
}

/// Best effort (needs `list clusterrolebindings`; silently nothing without it): ClusterRoleBindings that already
/// grant the user or one of the certificate's groups something cluster-wide, as warnings.
pub async fn existing_cluster_grants(
    client: &kube::Client,
    user: &str,
    groups: &[String],
) -> Vec<String> {
    let crbs: Api<ClusterRoleBinding> = Api::all(client.clone());
    let Ok(list) = crbs.list(&ListParams::default()).await else {
        return vec![];
    };
    let mut out = Vec::new();
    for b in &list.items {
        let name = b.metadata.name.clone().unwrap_or_default();
        for s in b.subjects.iter().flatten() {
            let hit = match s.kind.as_str() {
                "User" => s.name == user,
                "Group" => groups.contains(&s.name),
                _ => false,
            };
            if hit {
                out.push(format!(
                    "{} {:?} is already bound cluster-wide by clusterrolebinding {name} (clusterrole {}): the new \
                     certificate gets that access too",
                    s.kind.to_lowercase(),
                    s.name,
                    b.role_ref.name
                ));
            }
        }
    }
    out
}
