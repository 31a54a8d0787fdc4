//! End-to-end: `kubectl onboard` against the sandbox (real etcd, our API server with RBAC and the CSR signer),
//! checked with the real kubectl and the real openssl CLI. Needs `cargo build --workspace --bins` first.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use atrest_e2e::bed;
use atrest_e2e::bins;
use atrest_e2e::run::{Kubectl, describe, openssl};
use atrest_sandbox::Sandbox;
use serde_json::Value;

struct Env {
    sb: Sandbox,
    dir: tempfile::TempDir,
}

impl Env {
    fn up() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let sb = bed::node(dir.path());
        let env = Env { sb, dir };
        env.grant_csr_signer();
        env
    }

    /// The CSR signer runs as `system:kube-controller-manager`. kube-apiserver's bootstrap policy gives it the
    /// `system:controller:certificate-controller` rules (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy/
    /// controller_policy.go`); when the sandbox has not bootstrapped them yet, grant those rules here so these
    /// tests exercise onboarding rather than the sandbox's bootstrap.
    fn grant_csr_signer(&self) {
        let can = self.kubectl(
            &self.sb.kubeconfig(),
            &[
                "auth",
                "can-i",
                "update",
                "certificatesigningrequests/status",
                "--as",
                "system:kube-controller-manager",
            ],
        );
        if can.status.success() {
            return;
        }
        let rbac = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: e2e:csr-signer
rules:
- apiGroups: ["certificates.k8s.io"]
  resources: ["certificatesigningrequests"]
  verbs: ["get", "list", "watch", "delete"]
- apiGroups: ["certificates.k8s.io"]
  resources: ["certificatesigningrequests/status"]
  verbs: ["update"]
- apiGroups: ["certificates.k8s.io"]
  resources: ["signers"]
  resourceNames: ["kubernetes.io/kube-apiserver-client"]
  verbs: ["sign"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: e2e:csr-signer
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: e2e:csr-signer
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: system:kube-controller-manager
"#;
        std::fs::write(self.path("csr-signer.yaml"), rbac).unwrap();
        self.admin(&["apply", "-f", "csr-signer.yaml"]);
    }

    fn work(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work().join(name)
    }

    /// The real kubectl with `kubeconfig`, run from the work directory.
    fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        Kubectl::new(&self.sb, self.work()).run_as(kubeconfig, args, None)
    }

    /// The tutorial's namespace `marketing` with a secret `marketing-secret` holding `literal` (`k=v`).
    fn marketing(&self, literal: &str) {
        self.admin(&["create", "namespace", "marketing"]);
        let secret = atrest_sandbox::tutorial::create_marketing_secret(literal);
        self.admin(&secret.iter().map(String::as_str).collect::<Vec<_>>());
    }

    fn admin(&self, args: &[&str]) -> String {
        Kubectl::new(&self.sb, self.work()).ok(args)
    }

    /// The built plugin, as the admin (KUBECONFIG = admin.conf) unless `kubeconfig` is given.
    fn onboard_as(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        Command::new(bins::plugin("onboard"))
            .args(args)
            .current_dir(self.work())
            .env("KUBECONFIG", kubeconfig)
            .env_remove("RUST_LOG")
            .output()
            .expect("run kubectl-onboard")
    }

    fn onboard(&self, args: &[&str]) -> Output {
        self.onboard_as(&self.sb.kubeconfig(), args)
    }

    fn onboard_ok(&self, args: &[&str]) -> String {
        let out = self.onboard(args);
        assert!(
            out.status.success(),
            "kubectl onboard {args:?}: {}\napiserver {} {:?} (started {} times)",
            describe(&out),
            self.sb.apiserver_url(),
            self.sb.apiserver_state(),
            self.sb.apiserver_starts()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn openssl(&self, args: &[&str]) -> String {
        openssl(self.work(), args)
    }

    fn csr_names(&self) -> Vec<String> {
        self.admin(&["get", "csr", "-o", "name"])
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// The tutorial's flow: onboard john in marketing, use the kubeconfig with the real kubectl, verify with openssl,
/// run again (nothing changes), list, offboard (john is forbidden again; the certificate's expiry is reported).
#[test]
fn tutorial_flow_onboard_verify_rerun_list_remove() {
    let env = Env::up();
    env.marketing("password=s3cr3t");

    // --dry-run: checks and server-side dry runs only; nothing persisted, no key written.
    let dry = json(&env.onboard_ok(&[
        "john",
        "-n",
        "marketing",
        "-g",
        "marketing",
        "--dry-run",
        "-o",
        "json",
    ]));
    assert_eq!(dry["dryRun"], true, "{dry}");
    let kinds: Vec<(&str, &str)> = dry["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["kind"].as_str().unwrap(), o["change"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&("Role", "would-create")), "{dry}");
    assert!(kinds.contains(&("RoleBinding", "would-create")), "{dry}");
    assert!(env.csr_names().is_empty(), "dry run created a CSR");
    assert!(!env.path("john.kubeconfig").exists() && !env.path("john.key").exists());
    assert!(
        !env.kubectl(
            &env.sb.kubeconfig(),
            &["get", "role", "john-marketing", "-n", "marketing"]
        )
        .status
        .success()
    );

    let out = env.onboard_ok(&["john", "-n", "marketing", "-g", "marketing", "--ttl", "24h"]);
    assert!(
        out.contains("role.rbac.authorization.k8s.io/john-marketing -n marketing created"),
        "{out}"
    );
    assert!(
        out.contains("rolebinding.rbac.authorization.k8s.io/john-marketing -n marketing created"),
        "{out}"
    );
    assert!(
        out.contains("whoami with the new kubeconfig: john"),
        "{out}"
    );

    let kubeconfig = env.path("john.kubeconfig");
    let key = env.path("john.key");
    let crt = env.path("john.crt");
    assert_eq!(mode(&kubeconfig), 0o600);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&crt) & 0o077, 0o044, "the certificate is public");

    // The real kubectl with the written kubeconfig: marketing is the context's namespace.
    let own = env.kubectl(&kubeconfig, &["get", "secrets", "-o", "name"]);
    assert!(own.status.success(), "{}", describe(&own));
    assert_eq!(
        String::from_utf8_lossy(&own.stdout).trim(),
        "secret/marketing-secret"
    );
    let other = env.kubectl(&kubeconfig, &["get", "secrets", "-n", "default"]);
    assert!(!other.status.success());
    assert_eq!(
        String::from_utf8_lossy(&other.stderr).trim(),
        "Error from server (Forbidden): secrets is forbidden: User \"john\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""
    );
    let whoami = env.kubectl(&kubeconfig, &["auth", "whoami", "-o", "json"]);
    assert!(whoami.status.success(), "{}", describe(&whoami));
    let who = json(&String::from_utf8_lossy(&whoami.stdout));
    assert_eq!(who["status"]["userInfo"]["username"], "john");

    // openssl: chains to the cluster CA, subject CN=john, O=marketing.
    let ca = env.sb.ca_cert();
    let verified = env.openssl(&["verify", "-CAfile", ca.to_str().unwrap(), "john.crt"]);
    assert_eq!(verified.trim(), "john.crt: OK");
    let subject = env.openssl(&[
        "x509", "-in", "john.crt", "-noout", "-subject", "-nameopt", "RFC2253",
    ]);
    assert_eq!(subject.trim(), "subject=CN=john,O=marketing");
    let serial = env.openssl(&["x509", "-in", "john.crt", "-noout", "-serial"]);
    let serial = serial.trim().trim_start_matches("serial=").to_string();
    // The key file belongs to the certificate.
    let pub_cert = env.openssl(&["x509", "-in", "john.crt", "-noout", "-pubkey"]);
    let pub_key = env.openssl(&["pkey", "-in", key.to_str().unwrap(), "-pubout"]);
    assert_eq!(pub_cert, pub_key);

    // A second run changes nothing: same certificate, no new CSR, files and objects unchanged.
    let csrs_before = env.csr_names();
    let kubeconfig_before = std::fs::read(&kubeconfig).unwrap();
    let again = json(&env.onboard_ok(&[
        "john",
        "-n",
        "marketing",
        "-g",
        "marketing",
        "--ttl",
        "24h",
        "-o",
        "json",
    ]));
    assert_eq!(again["certificate"]["reused"], true, "{again}");
    for o in again["objects"].as_array().unwrap() {
        assert_eq!(o["change"], "unchanged", "{again}");
    }
    for f in again["files"].as_array().unwrap() {
        assert_eq!(f["change"], "unchanged", "{again}");
    }
    assert_eq!(env.csr_names(), csrs_before);
    assert_eq!(std::fs::read(&kubeconfig).unwrap(), kubeconfig_before);

    // The issuance record survives the CSR.
    let list = json(&env.onboard_ok(&["--list", "-o", "json"]));
    let records = list.as_array().unwrap();
    assert_eq!(records.len(), 1, "{list}");
    assert_eq!(records[0]["user"], "john");
    assert_eq!(
        records[0]["serial"].as_str().unwrap().to_uppercase(),
        serial.to_uppercase()
    );
    let table = env.onboard_ok(&["--list"]);
    assert!(table.contains("john") && table.contains("valid"), "{table}");

    // Offboarding: bindings gone, john forbidden again, the certificate's expiry reported.
    let removed = env.onboard(&["john", "-n", "marketing", "--remove"]);
    assert!(removed.status.success(), "{}", describe(&removed));
    let stdout = String::from_utf8_lossy(&removed.stdout);
    let stderr = String::from_utf8_lossy(&removed.stderr);
    assert!(
        stdout
            .contains("rolebinding.rbac.authorization.k8s.io/john-marketing -n marketing deleted"),
        "{stdout}"
    );
    assert!(
        stdout.contains("role.rbac.authorization.k8s.io/john-marketing -n marketing deleted"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&records[0]["notAfter"].as_str().unwrap().to_string()),
        "{stdout}"
    );
    assert!(stderr.contains("cannot revoke"), "{stderr}");
    let denied = env.kubectl(&kubeconfig, &["get", "secrets"]);
    assert!(!denied.status.success());
    assert_eq!(
        String::from_utf8_lossy(&denied.stderr).trim(),
        "Error from server (Forbidden): secrets is forbidden: User \"john\" cannot list resource \"secrets\" in API group \"\" in the namespace \"marketing\""
    );
}

/// The signer switched off: a clear diagnosis within the timeout and nothing written; then `--signer local` with
/// the cluster CA works and verifies.
#[test]
fn signer_off_is_diagnosed_and_local_signing_works() {
    let env = Env::up();
    env.admin(&["create", "namespace", "marketing"]);
    env.sb.set_csr_signer(false);
    let start = std::time::Instant::now();
    let out = env.onboard(&["bob", "-n", "marketing", "--timeout", "3s"]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(start.elapsed() < Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("was approved but no certificate was issued within 3s"),
        "{stderr}"
    );
    assert!(stderr.contains("--signer local"), "{stderr}");
    assert!(!env.path("bob.kubeconfig").exists());
    assert!(!env.path("bob.key").exists());

    let ca = env.sb.ca_cert();
    let ca_key = env.sb.ca_key();
    let out = env.onboard_ok(&[
        "bob",
        "-n",
        "marketing",
        "--signer",
        "local",
        "--ca-cert",
        ca.to_str().unwrap(),
        "--ca-key",
        ca_key.to_str().unwrap(),
        "--key-type",
        "rsa-2048",
        "--clusterrole",
        "view",
        "--resources",
        "pods,configmaps,secrets",
        "--verbs",
        "get,list",
    ]);
    assert!(out.contains("signed locally"), "{out}");
    assert!(out.contains("whoami with the new kubeconfig: bob"), "{out}");
    let verified = env.openssl(&["verify", "-CAfile", ca.to_str().unwrap(), "bob.crt"]);
    assert_eq!(verified.trim(), "bob.crt: OK");
    let kubeconfig = env.path("bob.kubeconfig");
    assert_eq!(mode(&kubeconfig), 0o600);
    // view: pods yes, secrets no (the matrix agreed with the ClusterRole's rules, or the run would have failed).
    assert!(env.kubectl(&kubeconfig, &["get", "pods"]).status.success());
    assert!(
        !env.kubectl(&kubeconfig, &["get", "secrets"])
            .status
            .success()
    );
}

/// A group binding shared by two users; `system:masters` refused; a non-admin's escalation attempt refused
/// before anything is created.
#[test]
fn group_binding_refusals_and_escalation() {
    let env = Env::up();
    env.marketing("a=b");
    for user in ["john", "jane"] {
        let out = env.onboard(&[
            user,
            "-n",
            "marketing",
            "--bind-group",
            "marketing",
            "--role",
            "marketing-team",
        ]);
        assert!(out.status.success(), "{}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("bound to group"),
            "{}",
            describe(&out)
        );
        let kc = env.path(&format!("{user}.kubeconfig"));
        let own = env.kubectl(&kc, &["get", "secrets", "-o", "name"]);
        assert!(own.status.success(), "{}", describe(&own));
    }
    let binding = json(&env.admin(&[
        "get",
        "rolebinding",
        "marketing-team",
        "-n",
        "marketing",
        "-o",
        "json",
    ]));
    assert_eq!(
        binding["subjects"],
        serde_json::json!([{"apiGroup":"rbac.authorization.k8s.io","kind":"Group","name":"marketing"}])
    );
    assert_eq!(
        binding["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "atrest"
    );
    // Offboarding one member of a group binding: warned that the group still admits the certificate.
    let out = env.onboard(&["john", "-n", "marketing", "--remove"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("binds group \"marketing\"") && stderr.contains("cannot revoke"),
        "{stderr}"
    );

    // system:masters is refused locally, before any request.
    let out = env.onboard(&["root", "-n", "marketing", "-g", "system:masters"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("refusing to issue a certificate with group \"system:masters\""),
        "{}",
        describe(&out)
    );

    // A non-admin (eve: view in marketing plus what onboarding needs, but no secrets) tries to grant secrets.
    env.onboard_ok(&["eve", "-n", "marketing", "--clusterrole", "view"]);
    let rbac = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: onboarder
rules:
- apiGroups: ["certificates.k8s.io"]
  resources: ["certificatesigningrequests"]
  verbs: ["create", "get", "list", "watch"]
- apiGroups: ["certificates.k8s.io"]
  resources: ["certificatesigningrequests/approval"]
  verbs: ["update"]
- apiGroups: ["certificates.k8s.io"]
  resources: ["signers"]
  resourceNames: ["kubernetes.io/kube-apiserver-client"]
  verbs: ["approve"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "create", "update", "delete"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "update"]
- apiGroups: ["authorization.k8s.io"]
  resources: ["subjectaccessreviews"]
  verbs: ["create"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: eve-onboarder
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: onboarder
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: eve
"#;
    std::fs::write(env.path("onboarder.yaml"), rbac).unwrap();
    env.admin(&["apply", "-f", "onboarder.yaml"]);
    let csrs_before = env.csr_names();
    let out = env.onboard_as(
        &env.path("eve.kubeconfig"),
        &["mallory", "-n", "marketing", "--out", "mallory.kubeconfig"],
    );
    assert!(!out.status.success(), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("dry run")
            && stderr.contains("attempting to grant RBAC permissions not currently held"),
        "{stderr}"
    );
    assert_eq!(env.csr_names(), csrs_before, "no CSR was created");
    let role = env.kubectl(
        &env.sb.kubeconfig(),
        &["get", "role", "mallory-marketing", "-n", "marketing"],
    );
    assert!(!role.status.success(), "no Role was created");
    assert!(!env.path("mallory.kubeconfig").exists());
    assert!(!env.path("mallory.key").exists());
}

/// RBAC propagation: a real RBAC authorizer answers from informer caches, so the SubjectAccessReviews right after
/// the Role and RoleBinding are created can still say "no", and those right after `--remove` can still say "yes".
/// The sandbox answers the next reviews as such a stale cache would; onboarding and offboarding wait it out and
/// report what RBAC really grants.
#[test]
fn verification_waits_for_rbac_to_propagate() {
    let env = Env::up();
    env.admin(&["create", "namespace", "sales"]);
    // The first 4 reviews of the matrix (in the namespace, where the grant is expected) answer "no".
    env.sb.faults().stale_access_reviews(4, false);
    let report = json(&env.onboard_ok(&["jim", "-n", "sales", "-o", "json"]));
    let checks = report["access"].as_array().unwrap();
    assert!(!checks.is_empty(), "{report}");
    for c in checks {
        assert_eq!(c["allowed"], c["expected"], "{report}");
    }
    assert!(
        env.sb.faults().access_review_pending().is_none(),
        "the stale answers were used"
    );

    // After the removal the first 3 reviews still answer "yes".
    env.sb.faults().stale_access_reviews(3, true);
    let removed = env.onboard(&["jim", "-n", "sales", "--remove", "-o", "json"]);
    assert!(removed.status.success(), "{}", describe(&removed));
    let r = json(&String::from_utf8_lossy(&removed.stdout));
    assert_eq!(r["stillAllowed"], serde_json::json!([]), "{r}");
    assert!(env.sb.faults().access_review_pending().is_none());

    // A grant that never shows up is still reported, after the wait.
    env.admin(&["create", "namespace", "ops"]);
    env.sb.faults().stale_access_reviews(10_000, false);
    let started = std::time::Instant::now();
    let out = env.onboard(&["kim", "-n", "ops"]);
    env.sb.faults().clear();
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("kim cannot"),
        "{}",
        describe(&out)
    );
    assert!(
        started.elapsed() >= Duration::from_secs(10),
        "gave up before the wait"
    );
}
