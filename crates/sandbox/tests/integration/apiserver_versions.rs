//! The tutorial's commands with the oldest and newest kubectl the dispatcher offers (picked through
//! `/version`), and fault injection (500, 429 + Retry-After, delays).

use std::time::{Duration, Instant};

use atrest_sandbox::tutorial;

use crate::support::{Cluster, Pki, kubectl, kubectl_ok};

async fn tutorial(version: &str) {
    let c = Cluster::start(version, &[]).await;
    let admin = c.admin();
    let out = kubectl(&admin, &["version", "-o", "json"], None).await;
    let v = out.json();
    let minor = version.split('.').nth(1).unwrap();
    assert!(
        v["clientVersion"]["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with(&format!("v1.{minor}.")),
        "{v}"
    );

    let run = |args: &'static [&'static str]| {
        let admin = admin.clone();
        async move { kubectl(&admin, args, None).await }
    };
    assert_eq!(
        run(tutorial::CREATE_SECRET).await.ok().trim(),
        "secret/demo created"
    );
    assert!(
        run(&["get", "secret", "demo", "-o", "yaml"])
            .await
            .ok()
            .contains("password: MTIzNDU2")
    );
    assert_eq!(
        run(tutorial::CREATE_NAMESPACE).await.ok().trim(),
        "namespace/marketing created"
    );
    run(tutorial::CREATE_ROLE).await.ok();
    run(tutorial::CREATE_ROLEBINDING).await.ok();
    let out = run(&["get", "role,rolebinding", "-n", "marketing"]).await;
    let t = out.ok();
    assert!(
        t.contains("role.rbac.authorization.k8s.io/john-marketing"),
        "{t}"
    );
    assert!(
        t.contains("rolebinding.rbac.authorization.k8s.io/john-marketing   Role/john-marketing"),
        "{t}"
    );
    assert_eq!(
        run(&[
            "auth",
            "can-i",
            "get",
            "secrets",
            "-n",
            "marketing",
            "--as",
            "john"
        ])
        .await
        .ok()
        .trim(),
        "yes"
    );
    let json = run(&["get", "secrets", "-A", "-o", "json"]).await;
    let out = kubectl(&admin, &["replace", "-f", "-"], Some(json.ok())).await;
    assert!(out.ok().contains("secret/demo replaced"));

    kubectl(
        &admin,
        &["create", "-f", "-"],
        Some(&Pki::csr_json("john", "john", &["marketing"], None)),
    )
    .await
    .ok();
    assert_eq!(
        run(&["certificate", "approve", "john"]).await.ok().trim(),
        "certificatesigningrequest.certificates.k8s.io/john approved"
    );
    let out = run(&["get", "pods", "-n", "kube-system"]).await;
    assert!(
        out.stderr
            .contains("No resources found in kube-system namespace."),
        "{}",
        out.stderr
    );

    let john = c.kubeconfig("john", &["marketing"]);
    let out = kubectl(&john, &["get", "secrets"], None).await;
    assert_eq!(out.stderr.trim(), tutorial::JOHN_FORBIDDEN_IN_DEFAULT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_27() {
    tutorial("1.27").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_33() {
    tutorial("1.33").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults() {
    let c = Cluster::start("1.32", &[]).await;
    let admin = c.admin();
    c.faults.fail_writes_internal_error(1.0);
    let out = kubectl(&admin, &["create", "ns", "x"], None).await;
    assert_eq!(
        out.stderr.trim(),
        "Error from server (InternalError): Internal error occurred: injected fault"
    );
    // Reads are unaffected.
    kubectl_ok(&admin, &["get", "ns"]).await;
    // Half of the writes get 429 + Retry-After: client-go retries them and succeeds.
    c.faults.fail_writes_too_many_requests(0.5, 1);
    for n in ["a", "b"] {
        assert_eq!(
            kubectl_ok(&admin, &["create", "ns", n]).await.trim(),
            format!("namespace/{n} created")
        );
    }
    c.faults.clear_write_faults();
    c.faults.set_delay(Duration::from_millis(400));
    let t = Instant::now();
    assert_eq!(kubectl_ok(&admin, &["get", "--raw", "/readyz"]).await, "ok");
    assert!(
        t.elapsed() >= Duration::from_millis(800),
        "dispatcher /version + /readyz both delayed"
    );
    c.faults.clear();
}
