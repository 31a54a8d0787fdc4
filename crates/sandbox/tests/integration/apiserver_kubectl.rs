//! The seed tutorial's kubectl commands, verbatim, with the real kubectl against the sandbox API server on a
//! real etcd, plus the storage bytes in etcd and the exact Forbidden text.

use atrest_sandbox::tutorial;

use crate::support::{Cluster, kubectl, kubectl_ok};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tutorial_commands() {
    let c = Cluster::start("1.32", &[]).await;
    let admin = c.admin();
    let k = |args: &'static [&'static str]| {
        let admin = admin.clone();
        async move { kubectl(&admin, args, None).await }
    };

    let out = k(tutorial::CREATE_SECRET).await;
    assert_eq!(out.ok().trim(), "secret/demo created");
    let y = k(&["get", "secret", "demo", "-o", "yaml"]).await;
    let y = y.ok();
    assert!(y.contains("  password: MTIzNDU2"), "{y}");
    assert!(y.contains("  username: bXlhcHA="), "{y}");
    assert!(y.contains("type: Opaque"), "{y}");
    assert!(y.contains("kind: Secret"), "{y}");

    // etcd holds the object under the real key, in the clear.
    let raw = c.etcd.get_raw("/registry/secrets/default/demo");
    assert!(
        raw.windows(6).any(|w| w == b"123456"),
        "plaintext value visible in etcd"
    );

    assert_eq!(
        k(tutorial::CREATE_NAMESPACE).await.ok().trim(),
        "namespace/marketing created"
    );
    let out = k(tutorial::CREATE_ROLE).await;
    assert_eq!(
        out.ok().trim(),
        "role.rbac.authorization.k8s.io/john-marketing created"
    );
    let out = k(tutorial::CREATE_ROLEBINDING).await;
    assert_eq!(
        out.ok().trim(),
        "rolebinding.rbac.authorization.k8s.io/john-marketing created"
    );
    let out = k(&["get", "role", "-n", "marketing"]).await;
    let t = out.ok();
    assert!(t.starts_with("NAME"), "{t}");
    assert!(
        t.contains("CREATED AT") && t.contains("john-marketing"),
        "{t}"
    );
    let out = k(&["get", "ns"]).await;
    assert!(
        out.ok()
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["marketing", "Active"])),
        "{}",
        out.stdout
    );
    let out = k(&["get", "secrets", "-A"]).await;
    assert!(
        out.ok().lines().any(|l| l
            .split_whitespace()
            .take(4)
            .eq(["default", "demo", "Opaque", "2"])),
        "{}",
        out.stdout
    );

    // can-i via impersonation.
    for (ns, code, answer) in [("marketing", 0, "yes"), ("default", 1, "no")] {
        let args = [
            "auth",
            "can-i",
            "list",
            "secrets",
            "--namespace",
            ns,
            "--as",
            "john",
        ];
        let out = kubectl(&admin, &args, None).await;
        assert_eq!(
            (out.code, out.stdout.trim()),
            (code, answer),
            "{}",
            out.stderr
        );
    }

    // john's own certificate.
    let john = c.kubeconfig("john", &["marketing"]);
    let out = kubectl(&john, &["get", "secrets", "-n", "marketing"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = kubectl(&john, &["get", "secrets", "-n", "default"], None).await;
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr.trim(), tutorial::JOHN_FORBIDDEN_IN_DEFAULT);

    // replace pipeline: unchanged objects keep their resourceVersion.
    let before = c
        .etcd
        .mod_revision("/registry/secrets/default/demo")
        .unwrap();
    let json = k(&["get", "secrets", "-A", "-o", "json"]).await;
    let out = kubectl(&admin, &["replace", "-f", "-"], Some(json.ok())).await;
    assert!(out.ok().contains("secret/demo replaced"), "{}", out.stdout);
    assert_eq!(
        c.etcd
            .mod_revision("/registry/secrets/default/demo")
            .unwrap(),
        before
    );

    let out = k(&["get", "pods", "-n", "kube-system"]).await;
    assert_eq!(out.code, 0);
    assert!(
        out.stderr
            .contains("No resources found in kube-system namespace."),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_name_immutable_dry_run_and_managed_fields() {
    let c = Cluster::start("1.32", &[]).await;
    let admin = c.admin();
    let gen_ = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"generateName":"tok-"},"stringData":{"a":"b"}}"#;
    let out = kubectl(&admin, &["create", "-f", "-", "-o", "name"], Some(gen_)).await;
    let name = out.ok().trim().to_string();
    assert!(
        name.starts_with("secret/tok-") && name.len() == "secret/tok-".len() + 5,
        "{name}"
    );
    // stringData was merged into data and never stored.
    let v = kubectl(&admin, &["get", &name, "-o", "json"], None)
        .await
        .json();
    assert_eq!(v["data"]["a"], "Yg==");
    assert!(v.get("stringData").is_none());
    assert_eq!(v["type"], "Opaque");
    assert!(v["metadata"]["uid"].as_str().unwrap().len() == 36);

    // managedFields as kubectl create leaves them (shown with --show-managed-fields).
    kubectl_ok(
        &admin,
        &["create", "secret", "generic", "mf", "--from-literal=k=v"],
    )
    .await;
    let y = kubectl(
        &admin,
        &["get", "secret", "mf", "-o", "yaml", "--show-managed-fields"],
        None,
    )
    .await;
    let y = y.ok();
    assert!(y.contains("manager: kubectl-create"), "{y}");
    assert!(y.contains("operation: Update"), "{y}");
    assert!(
        y.contains("f:data:\n        .: {}\n        f:k: {}\n      f:type: {}"),
        "{y}"
    );

    // Immutable secrets refuse data changes with the apiserver's validation message.
    let imm = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"imm"},"immutable":true,"data":{"k":"dg=="}}"#;
    kubectl(&admin, &["create", "-f", "-"], Some(imm))
        .await
        .ok();
    let changed = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"imm"},"immutable":true,"data":{"k":"dzI="}}"#;
    let out = kubectl(&admin, &["replace", "-f", "-"], Some(changed)).await;
    out.fails_with("The Secret \"imm\" is invalid: data: Forbidden: field is immutable when `immutable` is set");

    // At most 1 MiB of data in a Secret (core.MaxSecretSize), as kube-apiserver validates it.
    let sized = |name: &str, len: usize| {
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(vec![b'x'; len]);
        format!(
            r#"{{"apiVersion":"v1","kind":"Secret","metadata":{{"name":"{name}"}},"data":{{"k":"{data}"}}}}"#
        )
    };
    kubectl(
        &admin,
        &["create", "-f", "-"],
        Some(&sized("mib", 1024 * 1024)),
    )
    .await
    .ok();
    let out = kubectl(
        &admin,
        &["create", "-f", "-"],
        Some(&sized("over", 1024 * 1024 + 1)),
    )
    .await;
    out.fails_with(
        "The Secret \"over\" is invalid: data: Too long: may not be more than 1048576 bytes",
    );

    // dryRun=All writes nothing.
    assert_eq!(
        kubectl_ok(
            &admin,
            &[
                "create",
                "secret",
                "generic",
                "dry",
                "--from-literal=a=b",
                "--dry-run=server"
            ]
        )
        .await
        .trim(),
        "secret/dry created (server dry run)"
    );
    assert!(c.etcd.keys("/registry/secrets/default/dry").is_empty());
    // Invalid names.
    let out = kubectl(&admin, &["create", "ns", "Bad_NS"], None).await;
    assert!(out.stderr.contains("The Namespace \"Bad_NS\" is invalid: metadata.name: Invalid value: \"Bad_NS\": a lowercase RFC 1123 label must consist of"), "{}", out.stderr);
}
