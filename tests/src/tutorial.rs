//! The seed tutorial's kubectl commands, verbatim, with the real kubectl against a running sandbox, each command
//! with its own `--cache-dir`: a Secret created and read back, a namespace, a Role and RoleBinding for john,
//! `kubectl get secrets -A -o json | kubectl replace -f -`, `auth can-i`, john's certificate through the CSR API
//! (openssl key and CSR, approve, the issued certificate verifies against the cluster CA with CN=john,O=marketing),
//! a kubeconfig written with `kubectl config` that lists marketing's secrets and gets the exact Forbidden message in
//! default, the static pods' mirror pods Running, and etcdctl showing the plaintext protobuf value. Shared by
//! `sandbox_tutorial.rs` (atrest's API server) and `real_tutorial.rs` (the real control plane).

use atrest_sandbox::tutorial;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;

use crate::run::{Kubectl, etcdctl, openssl, wait_for};

/// The tutorial's steps after `kubectl version` (which each caller checks for its control plane).
pub fn tutorial_steps(k: &Kubectl<'_>) {
    assert_eq!(k.ok(tutorial::CREATE_SECRET), "secret/demo created\n");
    let yaml = k.ok(&["get", "secret", "demo", "-o", "yaml"]);
    assert!(
        yaml.contains("  password: MTIzNDU2\n") && yaml.contains("  username: bXlhcHA=\n"),
        "{yaml}"
    );
    assert!(
        yaml.contains("kind: Secret\n") && yaml.contains("type: Opaque\n"),
        "{yaml}"
    );
    assert_eq!(
        k.ok(tutorial::CREATE_NAMESPACE),
        "namespace/marketing created\n"
    );
    assert_eq!(
        k.ok(tutorial::CREATE_ROLE),
        "role.rbac.authorization.k8s.io/john-marketing created\n"
    );
    assert_eq!(
        k.ok(tutorial::CREATE_ROLEBINDING),
        "rolebinding.rbac.authorization.k8s.io/john-marketing created\n"
    );
    let roles = k.ok(&["get", "role", "-n", "marketing"]);
    assert!(
        roles.starts_with("NAME") && roles.contains("\njohn-marketing "),
        "{roles}"
    );

    // `kubectl get secrets -A -o json | kubectl replace -f -` with default (strict) validation.
    let all = k.ok(&["get", "secrets", "-A", "-o", "json"]);
    let replaced = k.ok_with(&["replace", "-f", "-"], Some(all.as_bytes()));
    assert!(replaced.contains("secret/demo replaced\n"), "{replaced}");

    assert_eq!(
        k.ok(&[
            "auth",
            "can-i",
            "list",
            "secrets",
            "-n",
            "marketing",
            "--as",
            "john"
        ]),
        "yes\n"
    );
    let no = k.run_as(
        &k.sb.kubeconfig(),
        &[
            "auth", "can-i", "list", "secrets", "-n", "default", "--as", "john",
        ],
        None,
    );
    assert_eq!(
        (
            no.status.code(),
            String::from_utf8_lossy(&no.stdout).as_ref()
        ),
        (Some(1), "no\n")
    );

    // john's certificate through the CSR API, as the tutorial does it.
    let dir = k.home;
    openssl(dir, &["genrsa", "-out", "john.key", "2048"]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "john.key",
            "-out",
            "john.csr",
            "-subj",
            "/CN=john/O=marketing",
        ],
    );
    let csr = std::fs::read(dir.join("john.csr")).unwrap();
    let csr_yaml = format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: john\nspec:\n  request: {}\n  signerName: kubernetes.io/kube-apiserver-client\n  expirationSeconds: 86400\n  usages:\n  - client auth\n",
        base64::engine::general_purpose::STANDARD.encode(&csr)
    );
    std::fs::write(dir.join("csr.yaml"), &csr_yaml).unwrap();
    let f = dir.join("csr.yaml");
    assert_eq!(
        k.ok(&["create", "-f", f.to_str().unwrap()]),
        "certificatesigningrequest.certificates.k8s.io/john created\n"
    );
    assert_eq!(
        k.ok(&["certificate", "approve", "john"]),
        "certificatesigningrequest.certificates.k8s.io/john approved\n"
    );
    let cert_b64 = wait_for("john's certificate", Duration::from_secs(30), || {
        let c = k.ok(&["get", "csr", "john", "-o", "jsonpath={.status.certificate}"]);
        (!c.is_empty()).then_some(c)
    });
    let cert_pem = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(cert_b64.as_bytes())?;
            c.wait_with_output()
        });
    std::fs::write(dir.join("john.crt"), cert_pem.unwrap().stdout).unwrap();
    let ca = k.sb.ca_cert();
    assert_eq!(
        openssl(
            dir,
            &["verify", "-CAfile", ca.to_str().unwrap(), "john.crt"]
        ),
        "john.crt: OK\n"
    );
    let subject = openssl(
        dir,
        &[
            "x509", "-in", "john.crt", "-noout", "-subject", "-nameopt", "RFC2253",
        ],
    );
    assert_eq!(subject, "subject=CN=john,O=marketing\n");

    // A kubeconfig for john, written with kubectl config as the tutorial does.
    let john = dir.join("john.conf");
    let jc = john.to_str().unwrap();
    let cfg = |args: &[&str]| {
        let out = k
            .command()
            .arg("--kubeconfig")
            .arg(jc)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    cfg(&[
        "config",
        "set-cluster",
        "kubernetes",
        "--server",
        k.sb.apiserver_url(),
        "--certificate-authority",
        ca.to_str().unwrap(),
        "--embed-certs=true",
    ]);
    cfg(&[
        "config",
        "set-credentials",
        "john",
        "--client-certificate",
        dir.join("john.crt").to_str().unwrap(),
        "--client-key",
        dir.join("john.key").to_str().unwrap(),
        "--embed-certs=true",
    ]);
    cfg(&[
        "config",
        "set-context",
        "john@kubernetes",
        "--cluster",
        "kubernetes",
        "--user",
        "john",
    ]);
    cfg(&["config", "use-context", "john@kubernetes"]);
    let out = k.run_as(&john, &["get", "secrets", "-n", "marketing"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "No resources found in marketing namespace.\n"
    );
    let out = k.run_as(&john, &["get", "secrets"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error from server (Forbidden): secrets is forbidden: User \"john\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\"\n"
    );

    // The static pods' mirror pods, Running.
    let node = k.sb.node_name().to_string();
    wait_for("mirror pods", Duration::from_secs(30), || {
        let pods = k.ok(&["get", "pods", "-n", "kube-system"]);
        let all = ["etcd", "kube-apiserver", "kube-controller-manager"]
            .iter()
            .all(|c| {
                pods.lines().any(|l| {
                    l.starts_with(&format!("{c}-{node} "))
                        && l.contains(" 1/1 ")
                        && l.contains(" Running ")
                })
            });
        all.then_some(())
    });

    // etcdctl shows the plaintext protobuf value.
    let v = etcdctl(k.sb, &["get", "/registry/secrets/default/demo"]);
    let value_start = v.iter().position(|&b| b == b'\n').unwrap() + 1;
    assert!(
        v[value_start..].starts_with(b"k8s\x00\n\x0c\n\x02v1\x12\x06Secret"),
        "{:?}",
        String::from_utf8_lossy(&v)
    );
    for needle in [&b"myapp"[..], b"123456", b"Opaque"] {
        assert!(
            v.windows(needle.len()).any(|w| w == needle),
            "{:?}",
            String::from_utf8_lossy(&v)
        );
    }
}
