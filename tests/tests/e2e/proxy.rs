//! Proxies as kubectl (client-go) uses them, through a real CONNECT/SOCKS5 proxy on loopback
//! ([`atrest_e2e::proxy::ForwardProxy`]) in front of the sandbox's API server: `HTTPS_PROXY` with `NO_PROXY`,
//! loopback never proxied from the environment, and a kubeconfig cluster's `proxy-url` for every request.
//!
//! The server is named `apiserver.atrest.invalid` where the proxy must be used or bypassed by name: the proxy
//! "resolves" it to the sandbox, while a direct connection cannot resolve it (RFC 6761 `.invalid`), so a success
//! proves the request went through the proxy and a resolution failure proves it did not. The certificate is
//! checked against `tls-server-name: kubernetes`, one of the names kubeadm puts in the API server's certificate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use atrest_e2e::bed;
use atrest_e2e::bins;
use atrest_e2e::proxy::ForwardProxy;
use atrest_e2e::run::{ok, text};
use atrest_sandbox::Sandbox;

const INVALID_HOST: &str = "apiserver.atrest.invalid";

struct Bed {
    sb: Sandbox,
    dir: tempfile::TempDir,
    port: u16,
    proxy: ForwardProxy,
}

fn bed() -> Bed {
    let dir = tempfile::tempdir().unwrap();
    let sb = bed::node(dir.path());
    let url = sb.apiserver_url().to_string();
    let port: u16 = url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let upstream: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let proxy = ForwardProxy::start(upstream);
    Bed {
        sb,
        dir,
        port,
        proxy,
    }
}

impl Bed {
    /// A copy of the admin kubeconfig with the cluster's server replaced and extra cluster fields.
    fn kubeconfig(&self, name: &str, server: &str, extra: &[(&str, &str)]) -> PathBuf {
        let original = std::fs::read_to_string(self.sb.kubeconfig()).unwrap();
        let mut out = String::new();
        let mut replaced = false;
        for line in original.lines() {
            let trimmed = line.trim_start();
            if let Some(_old) = trimmed.strip_prefix("server: ") {
                let indent = &line[..line.len() - trimmed.len()];
                out.push_str(&format!("{indent}server: {server}\n"));
                for (k, v) in extra {
                    out.push_str(&format!("{indent}{k}: {v}\n"));
                }
                replaced = true;
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        assert!(replaced, "no server line in {original}");
        let path = self.dir.path().join(name);
        std::fs::write(&path, out).unwrap();
        path
    }

    /// `kubectl reencrypt --dry-run -n default` (discovery-free: lists the secrets, several requests) with only the
    /// given proxy variables set.
    fn reencrypt(&self, kubeconfig: &Path, env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(bins::plugin("reencrypt"));
        cmd.args([
            "--dry-run",
            "-n",
            "kube-system",
            "--progress",
            "none",
            "--max-retries",
            "0",
        ])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--request-timeout")
        .arg("60s");
        for var in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "NO_PROXY",
            "no_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(env.iter().copied());
        cmd.output().unwrap()
    }
}

#[test]
fn environment_proxy_no_proxy_loopback_and_kubeconfig_proxy_url() {
    let b = bed();
    let proxy = b.proxy.http_url();
    let by_name = format!("https://{INVALID_HOST}:{}", b.port);
    let named = b.kubeconfig("named.yaml", &by_name, &[("tls-server-name", "kubernetes")]);
    let want_target = format!("{INVALID_HOST}:{}", b.port);

    // 1. HTTPS_PROXY, NO_PROXY not covering the server: every connection is a tunnel through the proxy (a direct
    //    connection could not even resolve the name).
    let o = b.reencrypt(
        &named,
        &[
            ("HTTPS_PROXY", &proxy),
            ("NO_PROXY", "10.0.0.0/8,.example.com"),
        ],
    );
    ok(o, "reencrypt through HTTPS_PROXY");
    let t = b.proxy.targets();
    assert!(
        !t.is_empty() && t.iter().all(|x| *x == want_target),
        "{t:?}"
    );

    // Lower-case variables and a proxy without a scheme (http://, as Go reads it) work the same.
    b.proxy.reset();
    let bare = proxy.trim_start_matches("http://").to_string();
    let o = b.reencrypt(&named, &[("https_proxy", &bare)]);
    ok(o, "reencrypt through https_proxy without a scheme");
    assert!(!b.proxy.targets().is_empty());

    // 2. NO_PROXY covering the server by domain suffix: no tunnel; the direct attempt fails to resolve the name.
    for no_proxy in [
        ".invalid",
        "atrest.invalid",
        "*.atrest.invalid",
        "10.0.0.0/8, apiserver.atrest.invalid",
    ] {
        b.proxy.reset();
        let o = b.reencrypt(&named, &[("HTTPS_PROXY", &proxy), ("NO_PROXY", no_proxy)]);
        let err = text(&o.stderr);
        assert!(
            !o.status.success(),
            "NO_PROXY={no_proxy}: a direct connection cannot resolve {INVALID_HOST}"
        );
        assert!(
            err.contains(&format!("cannot connect to {by_name}/ directly")),
            "NO_PROXY={no_proxy}: {err}"
        );
        assert_eq!(
            b.proxy.targets(),
            Vec::<String>::new(),
            "NO_PROXY={no_proxy}"
        );
    }
    // `*` covers everything.
    let o = b.reencrypt(&named, &[("HTTPS_PROXY", &proxy), ("NO_PROXY", "*")]);
    assert!(!o.status.success());
    assert!(b.proxy.targets().is_empty());

    // 3. A loopback server is never proxied from the environment, NO_PROXY or not (the reproduction: a
    //    proxy nobody listens on, as on a node whose proxy is only for the outside).
    let dead = "http://127.0.0.1:9";
    for env in [
        vec![("HTTPS_PROXY", proxy.as_str())],
        vec![("HTTPS_PROXY", dead), ("NO_PROXY", "127.0.0.1,localhost")],
        vec![("HTTPS_PROXY", dead)],
    ] {
        let o = b.reencrypt(&b.sb.kubeconfig(), &env);
        ok(o, &format!("reencrypt to 127.0.0.1 with {env:?}"));
    }
    assert!(b.proxy.targets().is_empty(), "{:?}", b.proxy.targets());

    // 4. A kubeconfig proxy-url carries every request to that cluster, loopback included, whatever the
    //    environment says.
    let loopback = b.sb.apiserver_url().trim_end_matches('/').to_string();
    for (name, url) in [("http", proxy.clone()), ("socks5", b.proxy.socks5_url())] {
        b.proxy.reset();
        let kc = b.kubeconfig(
            &format!("proxy-url-{name}.yaml"),
            &loopback,
            &[("proxy-url", &url)],
        );
        let o = b.reencrypt(&kc, &[("NO_PROXY", "*")]);
        ok(o, &format!("reencrypt through proxy-url {url}"));
        let t = b.proxy.targets();
        let want = format!("127.0.0.1:{}", b.port);
        assert!(
            !t.is_empty() && t.iter().all(|x| *x == want),
            "{name}: {t:?}"
        );
        // By name: only the proxy can reach it, so every request went through it.
        b.proxy.reset();
        let kc = b.kubeconfig(
            &format!("proxy-url-{name}-named.yaml"),
            &by_name,
            &[("tls-server-name", "kubernetes"), ("proxy-url", &url)],
        );
        let o = b.reencrypt(&kc, &[]);
        ok(o, &format!("reencrypt by name through proxy-url {url}"));
        assert!(b.proxy.targets().iter().all(|x| *x == want_target));
    }

    // 5. An unreachable proxy: the error names it once, not twice.
    let o = b.reencrypt(&named, &[("HTTPS_PROXY", dead)]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!(
            "cannot connect to {by_name}/ through the proxy {dead}/ (from HTTPS_PROXY)"
        )),
        "{err}"
    );
    for line in err.lines() {
        assert!(line.matches("127.0.0.1:9").count() <= 1, "{err}");
    }
    // A proxy-url with a scheme client-go refuses is named with the cluster.
    let kc = b.kubeconfig(
        "ftp.yaml",
        &loopback,
        &[("proxy-url", "ftp://127.0.0.1:21")],
    );
    let o = b.reencrypt(&kc, &[]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("proxy-url of cluster") && err.contains("unsupported scheme \"ftp\""),
        "{err}"
    );
    assert_eq!(err.matches("ftp://").count(), 1, "{err}");
}
