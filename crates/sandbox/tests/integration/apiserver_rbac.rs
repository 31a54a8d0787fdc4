//! RBAC through the real kubectl: escalation prevention on roles and bindings (`escalate`/`bind`),
//! impersonation checks, CSR admission and approval, rules reviews, whoami, anonymous access.

use crate::support::{Cluster, Pki, kubectl, kubectl_ok};

/// alice binds the `admin` ClusterRole to bob in team.
const BIND_ADMIN_TO_BOB: &[&str] = &[
    "create",
    "rolebinding",
    "b1",
    "-n",
    "team",
    "--clusterrole=admin",
    "--user=bob",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_impersonation_and_reviews() {
    let c = Cluster::start("1.32", &[]).await;
    let admin = c.admin();
    kubectl_ok(&admin, &["create", "ns", "team"]).await;
    kubectl_ok(
        &admin,
        &[
            "create",
            "role",
            "role-admin",
            "-n",
            "team",
            "--verb=create,get,list",
            "--resource=roles,rolebindings,secrets",
        ],
    )
    .await;
    kubectl_ok(
        &admin,
        &[
            "create",
            "rolebinding",
            "alice",
            "-n",
            "team",
            "--role=role-admin",
            "--user=alice",
        ],
    )
    .await;
    let alice = c.kubeconfig("alice", &[]);

    // A role within alice's own rights is fine; one granting more is refused.
    kubectl_ok(
        &alice,
        &[
            "create",
            "role",
            "reader",
            "-n",
            "team",
            "--verb=get",
            "--resource=secrets",
        ],
    )
    .await;
    let out = kubectl(
        &alice,
        &[
            "create",
            "role",
            "lister",
            "-n",
            "team",
            "--verb=get,watch,delete",
            "--resource=secrets",
        ],
        None,
    )
    .await;
    out.fails_with("roles.rbac.authorization.k8s.io \"lister\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"watch\" \"delete\"]}");
    // Binding a role she does not hold: refused; with `bind` on it: allowed.
    let out = kubectl(&alice, BIND_ADMIN_TO_BOB, None).await;
    out.fails_with("rolebindings.rbac.authorization.k8s.io \"b1\" is forbidden: user \"alice\"");
    kubectl_ok(
        &admin,
        &[
            "create",
            "role",
            "binder",
            "-n",
            "team",
            "--verb=bind",
            "--resource=clusterroles",
            "--resource-name=admin",
        ],
    )
    .await;
    kubectl_ok(
        &admin,
        &[
            "create",
            "rolebinding",
            "alice-binder",
            "-n",
            "team",
            "--role=binder",
            "--user=alice",
        ],
    )
    .await;
    let out = kubectl(&alice, BIND_ADMIN_TO_BOB, None).await;
    assert_eq!(
        out.ok().trim(),
        "rolebinding.rbac.authorization.k8s.io/b1 created"
    );
    // bob now has the aggregated admin role in team (edit + view rules are aggregated in).
    assert_eq!(
        kubectl_ok(
            &admin,
            &[
                "auth", "can-i", "delete", "secrets", "-n", "team", "--as", "bob"
            ]
        )
        .await
        .trim(),
        "yes"
    );
    let out = kubectl(
        &admin,
        &["auth", "can-i", "list", "namespaces", "--as", "bob"],
        None,
    )
    .await;
    assert_eq!(out.stdout.trim(), "no");

    // Impersonation needs the impersonate verb.
    // (--raw: kubectl's aggregated-discovery client reports any 403 body as "unknown".)
    let out = kubectl(
        &alice,
        &[
            "get",
            "--raw",
            "/api/v1/namespaces/team/secrets",
            "--as",
            "bob",
        ],
        None,
    )
    .await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr.lines().last().unwrap_or(""),
        "Error from server (Forbidden): users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );

    // Rules review and whoami.
    let out = kubectl(
        &admin,
        &["auth", "can-i", "--list", "-n", "team", "--as", "alice"],
        None,
    )
    .await;
    let t = out.ok();
    assert!(
        t.lines()
            .any(|l| l.split_whitespace().next() == Some("secrets")
                && l.contains("[create get list]")),
        "{t}"
    );
    let john = c.kubeconfig("john", &["marketing", "dev"]);
    let out = kubectl(&john, &["auth", "whoami", "-o", "json"], None).await;
    let v = out.json();
    assert_eq!(v["status"]["userInfo"]["username"], "john");
    assert_eq!(
        v["status"]["userInfo"]["groups"],
        serde_json::json!(["marketing", "dev", "system:authenticated"])
    );

    // No client certificate: anonymous may read /version and health, nothing else.
    let curl = |path: &str| {
        let out = std::process::Command::new("curl")
            .args(["-s", "--cacert"])
            .arg(c.pki.path("ca.crt"))
            .arg(format!("https://127.0.0.1:{}{path}", c.port))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl("/readyz"), "ok");
    let v: serde_json::Value = serde_json::from_str(&curl("/api/v1/namespaces")).unwrap();
    assert_eq!(v["code"], 403);
    assert_eq!(
        v["message"],
        "namespaces is forbidden: User \"system:anonymous\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_signing_requests() {
    let c = Cluster::start("1.32", &[]).await;
    let admin = c.admin();
    let out = kubectl(
        &admin,
        &["create", "-f", "-"],
        Some(&Pki::csr_json("john", "john", &["marketing"], Some(86400))),
    )
    .await;
    assert_eq!(
        out.ok().trim(),
        "certificatesigningrequest.certificates.k8s.io/john created"
    );
    let v = kubectl(&admin, &["get", "csr", "john", "-o", "json"], None)
        .await
        .json();
    assert_eq!(v["spec"]["username"], "admin", "requester filled in");
    assert_eq!(
        v["spec"]["groups"],
        serde_json::json!(["system:masters", "system:authenticated"])
    );
    let out = kubectl(&admin, &["get", "csr"], None).await;
    assert!(
        out.ok().lines().any(|l| l.split_whitespace().eq([
            "john",
            "0s",
            "kubernetes.io/kube-apiserver-client",
            "admin",
            "24h",
            "Pending"
        ]) || l.split_whitespace().next() == Some("john")
            && l.ends_with("Pending")),
        "{}",
        out.stdout
    );

    // An approver with update on approval but no `approve` on the signer is refused by admission.
    kubectl_ok(
        &admin,
        &[
            "create",
            "clusterrole",
            "csr-updater",
            "--verb=get,list,update",
            "--resource=certificatesigningrequests,certificatesigningrequests/approval",
        ],
    )
    .await;
    kubectl_ok(
        &admin,
        &[
            "create",
            "clusterrolebinding",
            "approver",
            "--clusterrole=csr-updater",
            "--user=approver",
        ],
    )
    .await;
    let approver = c.kubeconfig("approver", &[]);
    let out = kubectl(&approver, &["certificate", "approve", "john"], None).await;
    out.fails_with("certificatesigningrequests.certificates.k8s.io \"john\" is forbidden: user not permitted to approve requests with signerName \"kubernetes.io/kube-apiserver-client\"");
    assert_eq!(
        kubectl_ok(&admin, &["certificate", "approve", "john"])
            .await
            .trim(),
        "certificatesigningrequest.certificates.k8s.io/john approved"
    );
    let v = kubectl(&admin, &["get", "csr", "john", "-o", "json"], None)
        .await
        .json();
    let cond = &v["status"]["conditions"][0];
    assert_eq!(cond["type"], "Approved");
    assert_eq!(cond["reason"], "KubectlApprove");
    assert!(cond["lastTransitionTime"].is_string());
    // Stored under the real key.
    assert!(
        c.etcd
            .get_raw("/registry/certificatesigningrequests/john")
            .starts_with(b"k8s\0")
    );

    // Admission and validation failures.
    let out = kubectl(
        &admin,
        &["create", "-f", "-"],
        Some(&Pki::csr_json("root", "root", &["system:masters"], None)),
    )
    .await;
    assert!(out.stderr.contains("use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"), "{}", out.stderr);
    let out = kubectl(
        &admin,
        &["create", "-f", "-"],
        Some(&Pki::csr_json("short", "short", &[], Some(300))),
    )
    .await;
    assert!(
        out.stderr.contains("spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 600 seconds (10 minutes)"),
        "{}",
        out.stderr
    );
}
