//! The seed tutorial's kubectl commands, verbatim, with the real kubectl against the sandbox API server on a
//! real etcd, plus the storage bytes in etcd and the exact Forbidden text.

#[path = "apiserver_support.rs"]
mod support;

use support::{Cluster, kubectl};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tutorial_commands() {
    let c = Cluster::start("1.32", &[]).await;
    let admin = c.admin();
    let k = |args: &'static [&'static str]| {
        let admin = admin.clone();
        async move { kubectl(&admin, args, None).await }
    };

    let out = k(&[
        "create",
        "secret",
        "generic",
        "demo",
        "--from-literal=username=myapp",
        "--from-literal=password=123456",
    ])
    .await;
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
        k(&["create", "ns", "marketing"]).await.ok().trim(),
        "namespace/marketing created"
    );
    let out = k(&[
        "create",
        "role",
        "john-marketing",
        "--verb=get,list,watch",
        "--resource=pods,secrets",
        "--namespace",
        "marketing",
    ])
    .await;
    assert_eq!(
        out.ok().trim(),
        "role.rbac.authorization.k8s.io/john-marketing created"
    );
    let out = k(&[
        "create",
        "rolebinding",
        "john-marketing",
        "--role=john-marketing",
        "--user=john",
        "--namespace",
        "marketing",
    ])
    .await;
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
    let out = k(&[
        "auth",
        "can-i",
        "list",
        "secrets",
        "--namespace",
        "marketing",
        "--as",
        "john",
    ])
    .await;
    assert_eq!(out.ok().trim(), "yes");
    let out = k(&[
        "auth",
        "can-i",
        "list",
        "secrets",
        "--namespace",
        "default",
        "--as",
        "john",
    ])
    .await;
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout.trim(), "no");

    // john's own certificate.
    let john = c.kubeconfig("john", &["marketing"]);
    let out = kubectl(&john, &["get", "secrets", "-n", "marketing"], None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = kubectl(&john, &["get", "secrets", "-n", "default"], None).await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.trim(),
        "Error from server (Forbidden): secrets is forbidden: User \"john\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""
    );

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
