//! The seed tutorial's kubectl commands, verbatim (the tutorial this project turns into verbs: a secret, a
//! namespace, john's Role and RoleBinding there), and what john sees outside it: one home for the tests and the demo.

/// `kubectl create secret generic demo ...`.
pub const CREATE_SECRET: &[&str] = &[
    "create",
    "secret",
    "generic",
    "demo",
    "--from-literal=username=myapp",
    "--from-literal=password=123456",
];
/// `kubectl create ns marketing`.
pub const CREATE_NAMESPACE: &[&str] = &["create", "ns", "marketing"];
/// `kubectl create secret generic marketing-secret -n marketing --from-literal=LITERAL`: the marketing team's
/// secret (`literal` is `key=value`).
pub fn create_marketing_secret(literal: &str) -> Vec<String> {
    [
        "create",
        "secret",
        "generic",
        "marketing-secret",
        "-n",
        "marketing",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--from-literal={literal}")])
    .collect()
}
/// `kubectl create role john-marketing ...`.
pub const CREATE_ROLE: &[&str] = &[
    "create",
    "role",
    "john-marketing",
    "--verb=get,list,watch",
    "--resource=pods,secrets",
    "--namespace",
    "marketing",
];
/// `kubectl create rolebinding john-marketing ...`.
pub const CREATE_ROLEBINDING: &[&str] = &[
    "create",
    "rolebinding",
    "john-marketing",
    "--role=john-marketing",
    "--user=john",
    "--namespace",
    "marketing",
];
/// What john sees listing secrets in default.
pub const JOHN_FORBIDDEN_IN_DEFAULT: &str = "Error from server (Forbidden): secrets is forbidden: User \"john\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\"";
