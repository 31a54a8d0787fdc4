//! The kubeconfig side of the plugins checked against the real kubectl (no cluster needed):
//! `atrest_core::client` resolves KUBECONFIG lists exactly like `kubectl config view --minify`, and the
//! kubeconfig `atrest_core::kubeconfig` writes is read by kubectl as intended.

use std::path::{Path, PathBuf};
use std::process::Command;

use atrest_core::client::{ClusterInfo, ConfigFlags, KubeconfigEnv};
use atrest_core::kubeconfig::ClientCertKubeconfig;
use atrest_e2e::run::ok;
use serde_json::Value;

const A: &str = r#"apiVersion: v1
kind: Config
current-context: a
clusters:
- name: shared
  cluster:
    server: https://a.example:6443
- name: only-a
  cluster:
    server: https://only-a.example:6443
contexts:
- name: a
  context:
    cluster: shared
    user: alice
    namespace: team-a
- name: both
  context:
    cluster: only-a
    user: alice
users:
- name: alice
  user:
    token: token-a
"#;

const B: &str = r#"apiVersion: v1
kind: Config
current-context: b
clusters:
- name: shared
  cluster:
    server: https://b.example:6443
- name: only-b
  cluster:
    server: https://only-b.example:6443
contexts:
- name: b
  context:
    cluster: only-b
    user: bob
    namespace: team-b
- name: both
  context:
    cluster: shared
    user: bob
    namespace: from-b
users:
- name: bob
  user:
    token: token-b
- name: alice
  user:
    token: alice-from-b
"#;

/// What kubectl resolves: (context, cluster name, server, namespace or "", user).
fn kubectl_view(
    kubeconfig_env: &str,
    context: Option<&str>,
    cache: &Path,
) -> (String, String, String, String, String) {
    let mut cmd = Command::new("kubectl");
    cmd.args([
        "config",
        "view",
        "--minify",
        "--raw",
        "-o",
        "json",
        "--cache-dir",
    ])
    .arg(cache)
    .env("KUBECONFIG", kubeconfig_env);
    if let Some(c) = context {
        cmd.args(["--context", c]);
    }
    let out = cmd.output().expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl config view: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ctx = &v["contexts"][0];
    (
        ctx["name"].as_str().unwrap().to_string(),
        ctx["context"]["cluster"].as_str().unwrap().to_string(),
        v["clusters"][0]["cluster"]["server"]
            .as_str()
            .unwrap()
            .to_string(),
        ctx["context"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        ctx["context"]["user"].as_str().unwrap_or("").to_string(),
    )
}

#[tokio::test]
async fn kubeconfig_list_resolves_like_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(&a, A).unwrap();
    std::fs::write(&b, B).unwrap();
    let missing = dir.path().join("missing.yaml");
    let cache = dir.path().join("cache");
    let orders: Vec<Vec<&PathBuf>> = vec![vec![&a, &missing, &b], vec![&b, &a], vec![&missing, &b]];
    let mut compared = 0;
    for order in orders {
        let list = std::env::join_paths(order.iter().map(|p| p.as_path())).unwrap();
        let list_s = list.to_str().unwrap().to_string();
        // An empty entry too: kubectl ignores it.
        let list_s = format!("{list_s}:");
        for context in [None, Some("a"), Some("b"), Some("both")] {
            let defined = order.iter().any(|p| {
                p.exists()
                    && std::fs::read_to_string(p)
                        .unwrap()
                        .contains(&format!("- name: {}\n", context.unwrap_or("zzz")))
            });
            if context.is_some() && !defined {
                continue;
            }
            let want = kubectl_view(&list_s, context, &cache);
            let flags = ConfigFlags {
                context: context.map(str::to_string),
                ..Default::default()
            };
            let env = KubeconfigEnv {
                kubeconfig: Some(list_s.clone().into()),
                home: None,
                ..Default::default()
            };
            let r = flags.resolve_with(&env).await.unwrap();
            let got = (
                r.context.clone(),
                r.cluster.name.clone(),
                r.cluster.server.clone(),
                if want.3.is_empty() {
                    String::new()
                } else {
                    r.namespace.clone()
                },
                r.user.clone().unwrap_or_default(),
            );
            assert_eq!(got, want, "KUBECONFIG={list_s} --context {context:?}");
            if want.3.is_empty() {
                assert_eq!(r.namespace, "default");
            }
            // The first file's user entry wins whole (token-a, not alice-from-b).
            if r.user.as_deref() == Some("alice") {
                let first_with_alice = order
                    .iter()
                    .find(|p| {
                        p.exists()
                            && std::fs::read_to_string(p)
                                .unwrap()
                                .contains("- name: alice")
                    })
                    .unwrap();
                let token = if *first_with_alice == &a {
                    "token-a"
                } else {
                    "alice-from-b"
                };
                let info = r
                    .kubeconfig
                    .auth_infos
                    .iter()
                    .find(|u| u.name == "alice")
                    .unwrap();
                let json = serde_json::to_value(info.auth_info.as_ref().unwrap()).unwrap();
                assert_eq!(json["token"], token);
            }
            compared += 1;
        }
    }
    assert!(compared >= 8, "compared {compared} resolutions");
}

#[test]
fn written_kubeconfig_is_read_by_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("john.kubeconfig");
    let cert = b"-----BEGIN CERTIFICATE-----\nY2VydA==\n-----END CERTIFICATE-----\n".to_vec();
    let key = b"-----BEGIN PRIVATE KEY-----\na2V5\n-----END PRIVATE KEY-----\n".to_vec();
    let kc = ClientCertKubeconfig::for_cluster(
        &ClusterInfo {
            name: "kubernetes".into(),
            server: "https://10.0.0.1:6443".into(),
            certificate_authority_pem: Some(
                b"-----BEGIN CERTIFICATE-----\nY2E=\n-----END CERTIFICATE-----\n".to_vec(),
            ),
            tls_server_name: None,
            insecure_skip_tls_verify: false,
            proxy_url: None,
        },
        "john",
        Some("marketing"),
        cert.clone(),
        key.clone(),
    );
    kc.write(&path).unwrap();
    let out = Command::new("kubectl")
        .args(["config", "view", "--raw", "-o", "json", "--kubeconfig"])
        .arg(&path)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    let v: Value = serde_json::from_str(&ok(out, "kubectl config view")).unwrap();
    assert_eq!(v["current-context"], "john@kubernetes");
    assert_eq!(v["contexts"][0]["name"], "john@kubernetes");
    assert_eq!(v["contexts"][0]["context"]["namespace"], "marketing");
    assert_eq!(v["contexts"][0]["context"]["user"], "john");
    assert_eq!(v["contexts"][0]["context"]["cluster"], "kubernetes");
    assert_eq!(
        v["clusters"][0]["cluster"]["server"],
        "https://10.0.0.1:6443"
    );
    // The embedded data is what we wrote (decoding is covered by core's unit tests).
    let ours = atrest_core::client::merge_kubeconfig_files(std::slice::from_ref(&path)).unwrap();
    let ours =
        serde_json::to_value(ours.kubeconfig.auth_infos[0].auth_info.as_ref().unwrap()).unwrap();
    assert!(
        ours["client-certificate-data"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(
        v["users"][0]["user"]["client-certificate-data"],
        ours["client-certificate-data"]
    );
    assert_eq!(
        v["users"][0]["user"]["client-key-data"],
        ours["client-key-data"]
    );
    assert_eq!(v["clusters"][0]["cluster"]["certificate-authority-data"], {
        let c = atrest_core::client::merge_kubeconfig_files(std::slice::from_ref(&path)).unwrap();
        serde_json::to_value(c.kubeconfig.clusters[0].cluster.as_ref().unwrap()).unwrap()["certificate-authority-data"].clone()
    });
    // And kubectl's view of the namespace for that context.
    let ns = Command::new("kubectl")
        .args([
            "config",
            "view",
            "--minify",
            "-o",
            "jsonpath={..namespace}",
            "--kubeconfig",
        ])
        .arg(&path)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ns.stdout), "marketing");
}
