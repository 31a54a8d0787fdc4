//! The controller-manager's `kubernetes.io/kube-apiserver-client` signer, through the API like the real one:
//! approved CSRs get a certificate from the cluster CA honouring `expirationSeconds` (short TTL: window TTL + 5m
//! backdate), capped at `--cluster-signing-duration` read from the controller-manager manifest; bad usages are
//! marked Failed with upstream's reason and message; switched off, approved CSRs are never issued.

use std::time::{Duration, Instant};

use atrest_sandbox::k8s_openapi::ByteString;
use atrest_sandbox::k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestSpec,
    CertificateSigningRequestStatus,
};
use atrest_sandbox::k8s_openapi::api::core::v1::{ConfigMap, Pod};
use atrest_sandbox::kube::api::{Api, ObjectMeta, PostParams};
use atrest_sandbox::{Sandbox, SandboxOptions};
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::{X509, X509NameBuilder, X509ReqBuilder};

use crate::support::edit;

fn csr_pem(cn: &str, org: &str) -> Vec<u8> {
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, org)
        .unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let mut req = X509ReqBuilder::new().unwrap();
    req.set_subject_name(&name.build()).unwrap();
    req.set_pubkey(&key).unwrap();
    req.sign(&key, MessageDigest::sha256()).unwrap();
    req.build().to_pem().unwrap()
}

async fn create_and_approve(
    api: &Api<CertificateSigningRequest>,
    name: &str,
    usages: &[&str],
    expiration: Option<i32>,
) {
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(csr_pem(name, "marketing")),
            signer_name: "kubernetes.io/kube-apiserver-client".into(),
            usages: Some(usages.iter().map(|u| u.to_string()).collect()),
            expiration_seconds: expiration,
            ..Default::default()
        },
        status: None,
    };
    let mut csr = api.create(&PostParams::default(), &csr).await.unwrap();
    csr.status = Some(CertificateSigningRequestStatus {
        conditions: Some(vec![CertificateSigningRequestCondition {
            type_: "Approved".into(),
            status: "True".into(),
            reason: Some("Test".into()),
            message: Some("approved by the test".into()),
            ..Default::default()
        }]),
        certificate: None,
    });
    api.replace_subresource("approval", name, &PostParams::default(), &csr)
        .await
        .unwrap();
}

async fn wait_csr(
    api: &Api<CertificateSigningRequest>,
    name: &str,
    timeout: Duration,
    done: impl Fn(&CertificateSigningRequest) -> bool,
) -> Option<CertificateSigningRequest> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        // A poll: transport errors are retried, like any watcher would.
        match api.get(name).await {
            Ok(c) if done(&c) => return Some(c),
            Ok(_) => {}
            Err(atrest_sandbox::kube::Error::Api(e)) => panic!("GET csr {name}: {e}"),
            Err(e) => eprintln!("GET csr {name}: {e}; retrying"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

fn issued(c: &CertificateSigningRequest) -> bool {
    c.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|b| !b.0.is_empty())
}

fn window(cert: &X509) -> (i64, i64) {
    let epoch = Asn1Time::from_unix(0).unwrap();
    let secs = |t: &openssl::asn1::Asn1TimeRef| {
        let d = epoch.diff(t).unwrap();
        d.days as i64 * 86400 + d.secs as i64
    };
    (secs(cert.not_before()), secs(cert.not_after()))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csr_signer_like_kube_controller_manager() {
    let tmp = tempfile::tempdir().unwrap();
    let sb = Sandbox::up(SandboxOptions::new(tmp.path().join("node"))).unwrap();
    sb.wait_ready(Duration::from_secs(90)).unwrap();
    let client = sb.kube_client(&sb.kubeconfig()).await.unwrap();
    let api: Api<CertificateSigningRequest> = Api::all(client);
    let ca = X509::from_pem(&std::fs::read(sb.ca_cert()).unwrap()).unwrap();

    // kubeadm's ClusterConfiguration was uploaded once the server came up.
    let cms: Api<ConfigMap> = Api::namespaced(
        sb.kube_client(&sb.kubeconfig()).await.unwrap(),
        "kube-system",
    );
    let cc = cms
        .get("kubeadm-config")
        .await
        .unwrap()
        .data
        .unwrap()
        .remove("ClusterConfiguration")
        .unwrap();
    assert!(
        cc.contains("kind: ClusterConfiguration\nkubernetesVersion: v1.32.4\n"),
        "{cc}"
    );
    assert!(
        cc.contains("apiVersion: kubeadm.k8s.io/v1beta4\n")
            && cc.contains("\n  local:\n    dataDir: /var/lib/etcd\n"),
        "{cc}"
    );

    // expirationSeconds 600: notBefore backdated 5 minutes, notAfter = now + 10m.
    let t0 = now();
    create_and_approve(
        &api,
        "short",
        &["digital signature", "client auth"],
        Some(600),
    )
    .await;
    let c = wait_csr(&api, "short", Duration::from_secs(20), issued)
        .await
        .expect("issued");
    let cert = X509::from_pem(&c.status.unwrap().certificate.unwrap().0).unwrap();
    assert!(
        cert.verify(&ca.public_key().unwrap()).unwrap(),
        "signed by the cluster CA"
    );
    let (nb, na) = window(&cert);
    assert_eq!(na - nb, 900, "10m TTL + 5m backdate");
    assert!(
        (t0 - 300 - 2..=now() - 300).contains(&nb),
        "backdated notBefore {nb} (t0 {t0})"
    );
    let subject: Vec<String> = cert
        .subject_name()
        .entries()
        .map(|e| e.data().to_string().unwrap())
        .collect();
    assert_eq!(subject, ["marketing", "short"]);

    // A request longer than the signing duration is capped at it (kubeadm's default 8760h).
    create_and_approve(&api, "long", &["client auth"], Some(20 * 365 * 86400)).await;
    let c = wait_csr(&api, "long", Duration::from_secs(20), issued)
        .await
        .expect("issued");
    let (nb, na) = window(&X509::from_pem(&c.status.unwrap().certificate.unwrap().0).unwrap());
    assert_eq!(na - nb, 8760 * 3600);

    // Bad usages: Failed with the upstream signer's reason and message, no certificate.
    create_and_approve(&api, "no-client-auth", &["digital signature"], None).await;
    let failed = |c: &CertificateSigningRequest| {
        c.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Failed"))
    };
    let c = wait_csr(&api, "no-client-auth", Duration::from_secs(20), failed)
        .await
        .expect("failed");
    let status = c.status.unwrap();
    let cond = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Failed")
        .unwrap();
    assert_eq!(cond.status, "True");
    assert_eq!(cond.reason.as_deref(), Some("SignerValidationFailure"));
    assert_eq!(
        cond.message.as_deref(),
        Some("missing required usage for client certificate: client auth")
    );
    assert!(status.certificate.is_none());

    // Signer off: approved but never issued; on again: issued.
    sb.set_csr_signer(false);
    create_and_approve(&api, "waiting", &["client auth"], None).await;
    assert!(
        wait_csr(&api, "waiting", Duration::from_secs(2), issued)
            .await
            .is_none(),
        "issued while switched off"
    );
    sb.set_csr_signer(true);
    assert!(
        wait_csr(&api, "waiting", Duration::from_secs(20), issued)
            .await
            .is_some()
    );

    // --cluster-signing-duration comes from the controller-manager's manifest (the kubelet restarts it).
    let m = sb.manifest("kube-controller-manager");
    edit(&m, |t| {
        t.replace(
        "    - --cluster-signing-key-file=/etc/kubernetes/pki/ca.key\n",
        "    - --cluster-signing-duration=1h\n    - --cluster-signing-key-file=/etc/kubernetes/pki/ca.key\n",
    )
    });
    sb.nudge();
    tokio::time::sleep(Duration::from_millis(500)).await;
    create_and_approve(&api, "capped", &["client auth"], Some(86400)).await;
    let c = wait_csr(&api, "capped", Duration::from_secs(20), issued)
        .await
        .expect("issued");
    let (nb, na) = window(&X509::from_pem(&c.status.unwrap().certificate.unwrap().0).unwrap());
    assert_eq!(na - nb, 3600 + 300, "1h (< 8h) TTL + 5m backdate");

    // Without the signing flags the signer does not run: approved forever, never issued.
    edit(&m, |t| {
        t.replace(
            "    - --cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt\n",
            "",
        )
        .replace(
            "    - --cluster-signing-key-file=/etc/kubernetes/pki/ca.key\n",
            "",
        )
    });
    sb.nudge();
    tokio::time::sleep(Duration::from_millis(500)).await;
    create_and_approve(&api, "orphan", &["client auth"], None).await;
    assert!(
        wait_csr(&api, "orphan", Duration::from_secs(2), issued)
            .await
            .is_none()
    );

    // A controller-manager that cannot start (its kubeconfig is not mounted) crash-loops, and its mirror pod
    // says so: CrashLoopBackOff, restartCount, the last termination message, not Ready.
    edit(&m, |t| {
        t.replace(
            "--kubeconfig=/etc/kubernetes/controller-manager.conf",
            "--kubeconfig=/etc/kubernetes/nowhere.conf",
        )
    });
    sb.nudge();
    let pods: Api<Pod> = Api::namespaced(
        sb.kube_client(&sb.kubeconfig()).await.unwrap(),
        "kube-system",
    );
    let name = format!("kube-controller-manager-{}", sb.node_name());
    let deadline = Instant::now() + Duration::from_secs(30);
    let cs = loop {
        let p = match pods.get_opt(&name).await {
            Ok(p) => p,
            Err(atrest_sandbox::kube::Error::Api(e)) => panic!("GET pod {name}: {e}"),
            Err(e) => {
                eprintln!("GET pod {name}: {e}; retrying");
                None
            }
        };
        let cs = p
            .and_then(|p| p.status)
            .and_then(|s| s.container_statuses)
            .and_then(|mut c| c.pop());
        if let Some(cs) = cs.filter(|c| c.restart_count >= 2) {
            break cs;
        }
        assert!(
            Instant::now() < deadline,
            "no crash loop in the mirror pod status"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!cs.ready);
    let waiting = cs.state.unwrap().waiting.unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("CrashLoopBackOff"));
    let last = cs.last_state.unwrap().terminated.unwrap();
    assert!(
        last.message
            .unwrap()
            .contains("/etc/kubernetes/nowhere.conf")
    );
    sb.shutdown();
}
