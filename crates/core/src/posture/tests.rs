//! Unit tests of the posture report on node directories laid out here (no network).

use std::path::Path;

use super::*;

fn check(name: &str, status: Status) -> Check {
    Check::new(name, None, status)
}

#[test]
fn exit_code_fail_beats_error_beats_pass() {
    let mut r = Report {
        etcd_source: None,
        apiserver_manifest: None,
        checks: vec![
            check("a", Status::Pass),
            check("b", Status::Warn),
            check("c", Status::Skip),
        ],
    };
    assert_eq!(r.exit_code(), 0);
    r.checks.push(check("d", Status::Error));
    assert_eq!(r.exit_code(), 1);
    r.checks.push(check("e", Status::Fail));
    assert_eq!(r.exit_code(), 2);
    assert_eq!(r.find("d").unwrap().result, Status::Error);
}

#[test]
fn remediation_only_when_something_is_to_be_done() {
    assert_eq!(check("a", Status::Pass).fix("do x").remediation, "");
    assert_eq!(check("a", Status::Warn).fix("do x").remediation, "do x");
}

#[test]
fn no_manifest_is_an_error_saying_what_to_pass() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = PostureOptions::new(dir.path());
    o.probes = false;
    let r = run(&o);
    let c = r.find("etcd-config").unwrap();
    assert_eq!(c.result, Status::Error);
    assert!(c.remediation.contains("--etcd-unit"), "{c:?}");
    assert_eq!(r.find("apiserver-manifest").unwrap().result, Status::Error);
    assert_eq!(r.exit_code(), 1);
}

/// The real external-etcd unit (liangguohun/external_etcd): TLS everywhere but neither
/// `--client-cert-auth` nor `--peer-client-cert-auth` — the gap CIS 2.2/2.5 exist for. Its files are
/// not under this empty root, so the file checks FAIL too; there is no kube-apiserver here (SKIP).
#[test]
fn real_external_etcd_unit() {
    let dir = tempfile::tempdir().unwrap();
    let unit = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/posture/liangguohun-external_etcd-etcd.service");
    let mut o = PostureOptions::new(dir.path());
    o.etcd_unit = Some(unit.clone());
    o.probes = false;
    let r = run(&o);
    let get = |n: &str| r.find(n).unwrap_or_else(|| panic!("{n}: {r:#?}"));
    assert_eq!(
        r.etcd_source.as_deref(),
        Some(format!("systemd unit {}", unit.display()).as_str())
    );
    assert_eq!(get("etcd-client-cert-auth").result, Status::Fail);
    assert_eq!(get("etcd-client-cert-auth").cis.as_deref(), Some("2.2"));
    assert_eq!(
        get("etcd-client-cert-auth").detail,
        "--client-cert-auth not set (etcd still requires client certificates while --trusted-ca-file is set)"
    );
    assert_eq!(get("etcd-peer-client-cert-auth").result, Status::Fail);
    assert_eq!(get("etcd-auto-tls").result, Status::Pass);
    assert_eq!(get("etcd-client-urls-https").result, Status::Pass);
    assert_eq!(get("etcd-peer-urls-https").result, Status::Pass);
    assert_eq!(get("etcd-listen-addresses").result, Status::Pass);
    let cert = get("etcd-cert-file");
    assert_eq!(cert.result, Status::Fail);
    assert!(
        cert.detail
            .contains("--cert-file=/data/etcd/ssl/server.pem: ")
            && cert
                .detail
                .contains("data/etcd/ssl/server.pem does not exist"),
        "{cert:?}"
    );
    assert_eq!(get("apiserver-manifest").result, Status::Skip);
    assert_eq!(r.exit_code(), 2);
}

/// Wildcard and plain-HTTP listeners from a static pod, values from ETCD_* env.
#[test]
fn static_pod_wildcard_and_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let m = under_root(root, node::ETCD_MANIFEST);
    std::fs::create_dir_all(m.parent().unwrap()).unwrap();
    std::fs::write(
        &m,
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: etcd\n    command:\n    - etcd\n    - --listen-client-urls=https://0.0.0.0:2379\n    - --listen-metrics-urls=http://0.0.0.0:2381\n    env:\n    - name: ETCD_LISTEN_PEER_URLS\n      value: http://10.0.0.1:2380\n    - name: ETCD_PEER_AUTO_TLS\n      value: \"yes\"\n",
    )
    .unwrap();
    let mut o = PostureOptions::new(root);
    o.probes = false;
    let r = run(&o);
    let get = |n: &str| r.find(n).unwrap();
    let l = get("etcd-listen-addresses");
    assert_eq!(l.result, Status::Warn);
    assert!(
        l.detail
            .contains("https://0.0.0.0:2379 (listen-client-urls)"),
        "{l:?}"
    );
    assert!(
        l.detail
            .contains("http://0.0.0.0:2381 (listen-metrics-urls"),
        "{l:?}"
    );
    let p = get("etcd-peer-urls-https");
    assert_eq!(p.result, Status::Fail);
    assert!(
        p.detail
            .contains("http://10.0.0.1:2380 (ETCD_LISTEN_PEER_URLS=http://10.0.0.1:2380)"),
        "{p:?}"
    );
    assert!(
        p.detail
            .contains("http://localhost:2380 (--initial-advertise-peer-urls not set (default"),
        "{p:?}"
    );
    let t = get("etcd-peer-auto-tls");
    assert_eq!(t.result, Status::Fail);
    assert_eq!(t.detail, "ETCD_PEER_AUTO_TLS=yes: not a boolean");
    let d = get("etcd-data-dir-mode");
    assert_eq!(d.result, Status::Error);
}
