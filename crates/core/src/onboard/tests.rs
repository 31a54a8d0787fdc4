//! Unit tests: option validation, rule evaluation, and request shapes against a mock API server (tower-test).

use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

use super::*;

type Log = Arc<Mutex<Vec<(String, String, Value)>>>;

/// A kube::Client whose requests go to `handler(method, path?query, body) -> (status, body)`.
fn mock<F>(mut handler: F) -> (kube::Client, Log, tokio::task::JoinHandle<()>)
where
    F: FnMut(&str, &str, &Value) -> (u16, Value) + Send + 'static,
{
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let log: Log = Arc::default();
    let log2 = log.clone();
    let task = tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let method = req.method().to_string();
            let uri = req.uri().to_string();
            let bytes = req.into_body().collect_bytes().await.unwrap();
            let body: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap()
            };
            let (status, reply) = handler(&method, &uri, &body);
            log2.lock().unwrap().push((method, uri, body));
            let resp = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                .unwrap();
            send.send_response(resp);
        }
    });
    (kube::Client::new(svc, "default"), log, task)
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":message,"reason":reason,"code":code})
}

fn csr_object(name: &str, conditions: Value, certificate: Option<&[u8]>) -> Value {
    use base64::Engine as _;
    let mut status = json!({ "conditions": conditions });
    if let Some(c) = certificate {
        status["certificate"] = json!(base64::engine::general_purpose::STANDARD.encode(c));
    }
    json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name, "resourceVersion": "7"},
        "spec": {"request": "", "signerName": SIGNER_NAME, "usages": ["client auth"]},
        "status": status
    })
}

#[test]
fn subjects_are_checked() {
    assert!(check_subjects("john", &["marketing".into()], false).is_ok());
    let e = check_subjects("john", &["system:masters".into()], false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("system:masters") && e.contains("--allow-system-subjects"),
        "{e}"
    );
    let e = check_subjects("john", &["kubeadm:cluster-admins".into()], false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("kubeadm:cluster-admins"), "{e}");
    let e = check_subjects("system:node:x", &[], false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("system:node:x"), "{e}");
    assert!(check_subjects("system:node:x", &["system:nodes".into()], true).is_ok());
    assert!(check_subjects("", &[], true).is_err());
}

#[test]
fn resources_parse_like_kubectl_create_role() {
    let r = |s| ResourceRef::parse(s).unwrap();
    assert_eq!(
        r("pods"),
        ResourceRef {
            group: "".into(),
            resource: "pods".into()
        }
    );
    assert_eq!(r("pods/log").resource, "pods/log");
    assert_eq!(r("deployments").group, "apps");
    assert_eq!(r("deployments.apps").display(), "deployments.apps");
    assert_eq!(
        r("widgets.example.com/status").display(),
        "widgets.example.com/status"
    );
    assert!(ResourceRef::parse("").is_err());
    assert!(ResourceRef::parse("a b").is_err());
}

#[test]
fn rules_and_rule_allows() {
    let rules = rbac::rules_for(
        &["get".into(), "list".into()],
        &[
            ResourceRef::parse("pods").unwrap(),
            ResourceRef::parse("secrets").unwrap(),
            ResourceRef::parse("deployments").unwrap(),
        ],
    );
    assert_eq!(rules.len(), 2, "one rule per API group: {rules:?}");
    assert!(verify::rule_allows(&rules, "", "pods", "list"));
    assert!(verify::rule_allows(&rules, "apps", "deployments", "get"));
    assert!(!verify::rule_allows(&rules, "", "pods", "delete"));
    assert!(
        !verify::rule_allows(&rules, "", "pods/log", "get"),
        "pods does not cover pods/log"
    );
    assert!(!verify::rule_allows(&rules, "", "configmaps", "get"));
    let wild = vec![k8s_openapi::api::rbac::v1::PolicyRule {
        api_groups: Some(vec!["*".into()]),
        resources: Some(vec!["*/log".into()]),
        verbs: vec!["*".into()],
        ..Default::default()
    }];
    assert!(verify::rule_allows(&wild, "", "pods/log", "get"));
    assert!(!verify::rule_allows(&wild, "", "pods", "get"));
    let named = vec![k8s_openapi::api::rbac::v1::PolicyRule {
        api_groups: Some(vec!["".into()]),
        resources: Some(vec!["pods".into()]),
        resource_names: Some(vec!["one".into()]),
        verbs: vec!["get".into()],
        ..Default::default()
    }];
    assert!(!verify::rule_allows(&named, "", "pods", "get"));
}

#[test]
fn durations_read_well() {
    assert_eq!(human_duration(30 * 86400), "30d 0h");
    assert_eq!(human_duration(3 * 3600 + 120), "3h 2m");
    assert_eq!(human_duration(30), "1m");
    assert_eq!(human_duration(-5), "expired");
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
}

#[tokio::test]
async fn csr_create_has_the_documented_shape() {
    let (client, log, task) = mock(|_, _, body| {
        let mut obj = body.clone();
        obj["metadata"]["name"] = json!("atrest-onboard-john-x1");
        (201, obj)
    });
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let req = CertificateRequest::build(&key, "john", &["marketing".into()]).unwrap();
    let name = csr::create(
        &client,
        "john",
        &req,
        Duration::from_secs(3600),
        &usages_for(KeyAlgorithm::EcdsaP256),
        false,
    )
    .await
    .unwrap();
    assert_eq!(name, "atrest-onboard-john-x1");
    drop(client);
    task.await.unwrap();
    let log = log.lock().unwrap();
    let (method, uri, body) = &log[0];
    assert_eq!(method, "POST");
    assert!(
        uri.starts_with("/apis/certificates.k8s.io/v1/certificatesigningrequests?"),
        "{uri}"
    );
    assert!(!uri.contains("dryRun"), "{uri}");
    assert_eq!(
        body["spec"]["signerName"],
        "kubernetes.io/kube-apiserver-client"
    );
    assert_eq!(
        body["spec"]["usages"],
        json!(["digital signature", "client auth"])
    );
    assert_eq!(body["spec"]["expirationSeconds"], 3600);
    assert_eq!(body["metadata"]["generateName"], "atrest-onboard-john-");
    assert_eq!(
        body["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "atrest"
    );
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(body["spec"]["request"].as_str().unwrap())
        .unwrap();
    let parsed = CertificateRequest::from_pem(&pem, "request").unwrap();
    assert_eq!(parsed.common_name().as_deref(), Some("john"));
    assert_eq!(parsed.organizations(), vec!["marketing"]);
    assert!(parsed.matches_key(&key));
    // RSA keys also ask for key encipherment.
    assert!(usages_for(KeyAlgorithm::Rsa2048).contains(&Usage::KeyEncipherment));
}

#[tokio::test]
async fn csr_dry_run_refusal_is_reported_as_such() {
    let (client, log, _task) = mock(|_, _, _| {
        (
            403,
            status(
                403,
                "Forbidden",
                "use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed",
            ),
        )
    });
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let req = CertificateRequest::build(&key, "john", &["system:masters".into()]).unwrap();
    let e = csr::create(&client, "john", &req, MIN_TTL, &[Usage::ClientAuth], true)
        .await
        .unwrap_err();
    assert!(matches!(e, OnboardError::DryRunRefused { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("system:masters group is not allowed"),
        "{e}"
    );
    assert!(log.lock().unwrap()[0].1.contains("dryRun=All"));
}

#[tokio::test]
async fn approval_is_a_put_on_the_subresource_and_retries_conflicts() {
    let mut puts = 0;
    let (client, log, task) = mock(move |method, _, body| match method {
        "GET" => (200, csr_object("c1", json!([]), None)),
        "PUT" => {
            puts += 1;
            if puts == 1 {
                (409, status(409, "Conflict", "the object has been modified"))
            } else {
                (200, body.clone())
            }
        }
        _ => (500, status(500, "InternalError", "unexpected")),
    });
    csr::approve(&client, "c1").await.unwrap();
    drop(client);
    task.await.unwrap();
    let log = log.lock().unwrap();
    let methods: Vec<&str> = log.iter().map(|(m, _, _)| m.as_str()).collect();
    assert_eq!(methods, vec!["GET", "PUT", "GET", "PUT"]);
    let (_, uri, body) = &log[3];
    assert!(
        uri.starts_with("/apis/certificates.k8s.io/v1/certificatesigningrequests/c1/approval"),
        "{uri}"
    );
    let cond = &body["status"]["conditions"][0];
    assert_eq!(cond["type"], "Approved");
    assert_eq!(cond["status"], "True");
    assert_eq!(cond["reason"], csr::APPROVE_REASON);
    assert!(cond["lastUpdateTime"].is_string());
}

#[tokio::test]
async fn approval_refuses_a_denied_csr() {
    let (client, _log, _task) = mock(|_, _, _| {
        (
            200,
            csr_object(
                "c1",
                json!([{"type":"Denied","status":"True","reason":"Nope","message":"denied by policy"}]),
                None,
            ),
        )
    });
    let e = csr::approve(&client, "c1").await.unwrap_err();
    assert!(
        e.to_string().contains("Denied") && e.to_string().contains("denied by policy"),
        "{e}"
    );
}

#[tokio::test]
async fn waiting_diagnoses_approved_but_not_issued() {
    let (client, log, _task) = mock(|_, _, _| {
        (
            200,
            csr_object(
                "c1",
                json!([{"type":"Approved","status":"True","reason":"AtrestOnboardApprove"}]),
                None,
            ),
        )
    });
    let start = std::time::Instant::now();
    let e = csr::wait_for_certificate(&client, "c1", Duration::from_millis(400))
        .await
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(3));
    let msg = e.to_string();
    assert!(matches!(e, OnboardError::NotIssued { .. }));
    assert!(
        msg.contains("approved but no certificate was issued"),
        "{msg}"
    );
    assert!(msg.contains("--signer local"), "{msg}");
    assert!(msg.contains("EKS"), "{msg}");
    assert!(log.lock().unwrap().len() >= 2, "polled more than once");
}

#[tokio::test]
async fn waiting_reports_signer_failures_and_returns_the_certificate() {
    let (client, _log, _task) = mock(|_, _, _| {
        (
            200,
            csr_object(
                "c1",
                json!([{"type":"Approved","status":"True"},{"type":"Failed","status":"True","reason":"SignerValidationFailure","message":"invalid usage for client certificate: server auth"}]),
                None,
            ),
        )
    });
    let e = csr::wait_for_certificate(&client, "c1", Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("SignerValidationFailure") && e.to_string().contains("server auth"),
        "{e}"
    );

    let pem = b"-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n".to_vec();
    let pem2 = pem.clone();
    let mut calls = 0;
    let (client, _log, _task) = mock(move |_, _, _| {
        calls += 1;
        let cert = if calls >= 3 {
            Some(pem2.as_slice())
        } else {
            None
        };
        (
            200,
            csr_object("c1", json!([{"type":"Approved","status":"True"}]), cert),
        )
    });
    let got = csr::wait_for_certificate(&client, "c1", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(got, pem);
}

fn options() -> OnboardOptions {
    OnboardOptions {
        user: "john".into(),
        namespace: "marketing".into(),
        groups: vec!["marketing".into()],
        access: Access::Rules {
            role: "john-marketing".into(),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            resources: vec![
                ResourceRef::parse("pods").unwrap(),
                ResourceRef::parse("secrets").unwrap(),
            ],
        },
        bind_group: None,
        ttl: DEFAULT_TTL,
        key_type: KeyAlgorithm::EcdsaP256,
        signer: SignerChoice::Csr {
            timeout: Duration::from_secs(5),
        },
        out: "john.kubeconfig".into(),
        create_namespace: false,
        dry_run: false,
        allow_system_subjects: false,
        renew: false,
        rbac_wait: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn preflight_asks_one_review_per_permission_and_lists_the_denied() {
    let (client, log, task) = mock(|_, _, body| {
        let attrs = &body["spec"]["resourceAttributes"];
        let allowed = attrs["resource"] != "signers";
        let mut reply = body.clone();
        reply["status"] = json!({"allowed": allowed});
        (201, reply)
    });
    let needed = preflight::needed_for_onboard(&options(), false);
    let missing = preflight::missing(&client, &needed).await.unwrap();
    drop(client);
    task.await.unwrap();
    assert_eq!(
        missing,
        vec![
            "approve signers.certificates.k8s.io named kubernetes.io/kube-apiserver-client or kubernetes.io/* (cluster-wide)"
        ]
    );
    let log = log.lock().unwrap();
    assert!(log.iter().all(|(m, u, b)| m == "POST"
        && u.starts_with("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
        && b["kind"] == "SelfSubjectAccessReview"));
    // Both signer names were tried, as the CertificateApproval admission plugin does.
    let signer_names: Vec<&Value> = log
        .iter()
        .filter(|(_, _, b)| b["spec"]["resourceAttributes"]["resource"] == "signers")
        .map(|(_, _, b)| &b["spec"]["resourceAttributes"]["name"])
        .collect();
    assert_eq!(
        signer_names,
        vec![
            &json!("kubernetes.io/kube-apiserver-client"),
            &json!("kubernetes.io/*")
        ]
    );
    // The approval subresource and the namespaced RBAC objects are part of the list.
    assert!(
        log.iter().any(
            |(_, _, b)| b["spec"]["resourceAttributes"]["subresource"] == "approval"
                && b["spec"]["resourceAttributes"]["verb"] == "update"
        )
    );
    assert!(log.iter().any(
        |(_, _, b)| b["spec"]["resourceAttributes"]["resource"] == "roles"
            && b["spec"]["resourceAttributes"]["namespace"] == "marketing"
    ));
}

#[tokio::test]
async fn rbac_dry_run_surfaces_escalation_and_apply_is_idempotent() {
    // Nothing exists: plan = create both; the dry run is refused with the escalation message.
    let (client, log, _task) = mock(|method, uri, _| match method {
        "GET" => (404, status(404, "NotFound", "not found")),
        "POST" if uri.contains("dryRun=All") && uri.contains("/roles") => (
            403,
            status(
                403,
                "Forbidden",
                "roles.rbac.authorization.k8s.io \"john-marketing\" is forbidden: user \"eve\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held",
            ),
        ),
        _ => (500, status(500, "InternalError", "unexpected")),
    });
    let opts = options();
    let plan = rbac::plan(&client, &opts).await.unwrap();
    let e = rbac::apply(&client, &plan, true).await.unwrap_err();
    assert!(matches!(e, OnboardError::DryRunRefused { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("attempting to grant RBAC permissions not currently held"),
        "{e}"
    );
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .all(|(m, u, _)| m == "GET" || u.contains("dryRun=All"))
    );

    // Both exist as desired: everything unchanged, no write at all.
    let role = json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role",
        "metadata":{"name":"john-marketing","namespace":"marketing","resourceVersion":"3","labels":{"app.kubernetes.io/managed-by":"atrest"}},
        "rules":[{"apiGroups":[""],"resources":["pods","secrets"],"verbs":["get","list","watch"]}]});
    let binding = json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding",
        "metadata":{"name":"john-marketing","namespace":"marketing","resourceVersion":"4","labels":{"app.kubernetes.io/managed-by":"atrest"}},
        "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"john-marketing"},
        "subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"john"}]});
    let (r2, b2) = (role.clone(), binding.clone());
    let (client, log, _task) = mock(move |method, uri, _| match method {
        "GET" if uri.contains("/roles/") => (200, r2.clone()),
        "GET" if uri.contains("/rolebindings/") => (200, b2.clone()),
        _ => (500, status(500, "InternalError", "unexpected write")),
    });
    let plan = rbac::plan(&client, &opts).await.unwrap();
    let changes = rbac::apply(&client, &plan, false).await.unwrap();
    assert!(
        changes.iter().all(|c| c.change == Change::Unchanged),
        "{changes:?}"
    );
    assert_eq!(log.lock().unwrap().len(), 2, "only the two GETs");

    // A second user on the same (shared) binding: the subject is added, the first one kept.
    let mut jane = options();
    jane.user = "jane".into();
    jane.access = opts.access.clone();
    let (client, log, _task) = mock(move |method, uri, body| match method {
        "GET" if uri.contains("/roles/") => (200, role.clone()),
        "GET" if uri.contains("/rolebindings/") => (200, binding.clone()),
        "PUT" => (200, body.clone()),
        _ => (500, status(500, "InternalError", "unexpected")),
    });
    let plan = rbac::plan(&client, &jane).await.unwrap();
    rbac::apply(&client, &plan, false).await.unwrap();
    let log = log.lock().unwrap();
    let put = log
        .iter()
        .find(|(m, _, _)| m == "PUT")
        .expect("binding updated");
    let names: Vec<&str> = put.2["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["john", "jane"]);
    assert_eq!(put.2["metadata"]["resourceVersion"], "4");
}

#[tokio::test]
async fn a_role_not_managed_by_atrest_is_left_alone() {
    let (client, _log, _task) = mock(|_, uri, _| {
        if uri.contains("/roles/") {
            (
                200,
                json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"john-marketing","namespace":"marketing"},"rules":[]}),
            )
        } else {
            (404, status(404, "NotFound", "not found"))
        }
    });
    let e = rbac::plan(&client, &options())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not managed by atrest") && e.contains("--role"),
        "{e}"
    );
}

#[test]
fn record_names_are_valid_and_distinct() {
    let a = record::configmap_name("john@example.com");
    let b = record::configmap_name("john.example.com");
    assert_ne!(a, b);
    for n in [&a, &b, &record::configmap_name("___")] {
        assert!(
            n.len() <= 63
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{n}"
        );
    }
}

#[tokio::test]
async fn broad_existing_grants_are_reported() {
    let (client, _log, _task) = mock(|_, uri, _| {
        assert!(
            uri.starts_with("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"),
            "{uri}"
        );
        (
            200,
            json!({"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBindingList","metadata":{},"items":[
                {"metadata":{"name":"marketing-admins"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},
                 "subjects":[{"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"marketing"}]},
                {"metadata":{"name":"others"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},
                 "subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"someone-else"}]}
            ]}),
        )
    });
    let w = rbac::existing_cluster_grants(&client, "john", &["marketing".into()]).await;
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("marketing-admins") && w[0].contains("cluster-admin"),
        "{w:?}"
    );
}

fn record(user: &str, not_after_unix: i64, offboarded: bool) -> record::IssuanceRecord {
    record::IssuanceRecord {
        user: user.into(),
        groups: vec!["dev".into(), "ops".into()],
        namespace: "marketing".into(),
        serial: "0A".into(),
        fingerprint_sha256: "AB:CD".into(),
        subject: format!("CN={user}"),
        not_before: "2026-01-01T00:00:00Z".into(),
        not_after: "2026-02-01T00:00:00Z".into(),
        not_after_unix,
        signer: SIGNER_NAME.into(),
        csr: None,
        issued_by: "admin".into(),
        issued_at: "2026-01-01T00:00:00Z".into(),
        bindings: vec![],
        offboarded_at: offboarded.then(|| "2026-01-02T00:00:00Z".to_string()),
    }
}

#[test]
fn the_record_list_tells_valid_offboarded_and_expired_apart() {
    assert_eq!(output::render_list(&[], 0), "No issuance records found.\n");
    let now = 1_000_000;
    let t = output::render_list(
        &[
            record("john", now + 2 * 86_400, false),
            record("jane", now + 3600, true),
            record("old", now, false),
        ],
        now,
    );
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 4, "{t}");
    let cols: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "USER",
            "GROUPS",
            "NAMESPACE",
            "SERIAL",
            "NOT",
            "AFTER",
            "STATUS",
            "SHA256"
        ]
    );
    assert!(
        lines[1].contains("john") && lines[1].contains("dev,ops"),
        "{t}"
    );
    assert!(
        lines[1].contains(&format!("valid {}", human_duration(2 * 86_400))),
        "{t}"
    );
    assert!(
        lines[2].contains(&format!("offboarded, valid {}", human_duration(3600))),
        "{t}"
    );
    assert!(lines[3].contains("expired"), "{t}");
}

#[test]
fn the_access_matrix_has_a_column_per_namespace_and_marks_surprises() {
    let check = |ns: &str, verb: &str, allowed: bool, expected: bool| verify::AccessCheck {
        namespace: ns.into(),
        verb: verb.into(),
        resource: "secrets".into(),
        expected,
        allowed,
        reason: String::new(),
    };
    let report = OnboardReport {
        user: "john".into(),
        groups: vec!["dev".into()],
        namespace: "marketing".into(),
        dry_run: false,
        certificate: None,
        files: vec![],
        objects: vec![ObjectChange {
            kind: "Role".into(),
            namespace: Some("marketing".into()),
            name: "john-marketing".into(),
            change: Change::Created,
        }],
        access: vec![
            check("marketing", "get", true, true),
            check("default", "get", true, false),
            check("marketing", "delete", false, false),
        ],
        whoami: Some(verify::WhoAmI {
            username: "john".into(),
            groups: vec!["dev".into(), "system:authenticated".into()],
        }),
        warnings: vec!["careful".into()],
    };
    let t = output::render_onboard(&report);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines[0], report.objects[0].line());
    assert_eq!(
        lines[1],
        "access of john (groups dev), by SubjectAccessReview:"
    );
    let header: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(header, ["RESOURCE", "VERB", "MARKETING", "DEFAULT"]);
    let get: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(get, ["secrets", "get", "yes", "yes", "(!)"]);
    let delete: Vec<&str> = lines[4].split_whitespace().collect();
    assert_eq!(delete, ["secrets", "delete", "no"]);
    assert_eq!(
        lines.last().copied(),
        Some("whoami with the new kubeconfig: john (groups dev,system:authenticated)")
    );
    assert_eq!(
        output::warning_lines(&report.warnings),
        "Warning: careful\n"
    );
}
