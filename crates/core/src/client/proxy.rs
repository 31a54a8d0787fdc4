//! Which proxy the requests to an API server go through, decided as kubectl (client-go) decides it.
//!
//! - A kubeconfig cluster's `proxy-url` (`http`, `https` or `socks5`) carries every request to that cluster, loopback
//!   included (client-go `tools/clientcmd/client_config.go`: `clientConfig.Proxy = http.ProxyURL(u)`, scheme checked
//!   by `helpers.go` `parseProxyURL`).
//! - Otherwise the environment: `HTTPS_PROXY` for an `https://` server, `HTTP_PROXY` for `http://` (upper case
//!   first, then lower case; empty counts as unset), unless `NO_PROXY` covers the server or the server is
//!   `localhost` or a loopback address, which are never proxied from the environment
//!   (`golang.org/x/net/http/httpproxy` `config.useProxy`, wrapped by apimachinery `util/net/http.go`
//!   `NewProxierWithNoProxyCIDR`). `NO_PROXY` is comma separated: `*` (everything), CIDRs (`10.0.0.0/8`), IP
//!   addresses with an optional port, and domain names with an optional port, where `example.com` matches the name
//!   and its subdomains and `.example.com` or `*.example.com` only the subdomains. A proxy value without a scheme is
//!   `http://` (httpproxy `parseProxy`).
//!
//! The HTTP connection itself (CONNECT tunnel, TLS to an `https` proxy, SOCKS5 with the proxy resolving names) is
//! kube-rs's (`kube/http-proxy`, `kube/socks5`); this module only picks the URL.

use std::net::IpAddr;

use super::ClientError;

/// The proxy variables of the environment (`HTTPS_PROXY`/`https_proxy`, `HTTP_PROXY`/`http_proxy`,
/// `NO_PROXY`/`no_proxy`), upper case first; empty values count as unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    /// `HTTPS_PROXY`, else `https_proxy`.
    pub https_proxy: Option<String>,
    /// `HTTP_PROXY`, else `http_proxy`.
    pub http_proxy: Option<String>,
    /// `NO_PROXY`, else `no_proxy`.
    pub no_proxy: Option<String>,
}

impl ProxyEnv {
    /// Reads the variables of this process (httpproxy `FromEnvironment`).
    pub fn from_process() -> Self {
        let any = |names: [&str; 2]| {
            names
                .iter()
                .filter_map(|n| std::env::var(n).ok())
                .find(|v| !v.is_empty())
        };
        Self {
            https_proxy: any(["HTTPS_PROXY", "https_proxy"]),
            http_proxy: any(["HTTP_PROXY", "http_proxy"]),
            no_proxy: any(["NO_PROXY", "no_proxy"]),
        }
    }
}

/// The proxy chosen for a server, and where it came from (for logs and errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyChoice {
    /// The proxy URL as kube-rs takes it (`socks5h` is spelled `socks5`: kube-rs's SOCKS5 lets the proxy
    /// resolve names, which is what `socks5h` asks for).
    pub url: http::Uri,
    /// `proxy-url of cluster "NAME"`, `HTTPS_PROXY` or `HTTP_PROXY`.
    pub origin: String,
}

/// The proxy for requests to `server`: the cluster's `proxy-url` if set, else the environment's (see the module
/// doc). `Ok(None)`: connect directly.
pub fn select(
    server: &http::Uri,
    cluster_name: &str,
    cluster_proxy_url: Option<&str>,
    env: &ProxyEnv,
) -> Result<Option<ProxyChoice>, ClientError> {
    if let Some(raw) = cluster_proxy_url.filter(|s| !s.is_empty()) {
        let origin = format!("proxy-url of cluster {cluster_name:?}");
        let url = parse_url(raw, &origin, &["http", "https", "socks5"], false)?;
        return Ok(Some(ProxyChoice { url, origin }));
    }
    let (var, value) = match server.scheme_str() {
        Some("https") => ("HTTPS_PROXY", env.https_proxy.as_deref()),
        Some("http") => ("HTTP_PROXY", env.http_proxy.as_deref()),
        _ => return Ok(None),
    };
    let Some(value) = value else { return Ok(None) };
    let Some(host) = server.host() else {
        return Ok(None);
    };
    let port = server
        .port_u16()
        .unwrap_or(if server.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    if !use_proxy(host, port, env.no_proxy.as_deref().unwrap_or("")) {
        tracing::debug!(%server, "{var} is set but not used: the server is loopback or covered by NO_PROXY");
        return Ok(None);
    }
    let url = parse_url(value, var, &["http", "https", "socks5", "socks5h"], true)?;
    Ok(Some(ProxyChoice {
        url,
        origin: var.to_string(),
    }))
}

/// `raw` with userinfo hidden, for messages (a proxy URL may carry a password).
pub fn redacted(raw: &str) -> String {
    let (scheme, rest) = match raw.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), raw),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((_, host)) => format!("{scheme}***@{host}{}", &rest[authority_end..]),
        None => raw.to_string(),
    }
}

fn parse_url(
    raw: &str,
    origin: &str,
    schemes: &[&str],
    default_http: bool,
) -> Result<http::Uri, ClientError> {
    let err = |message: String| ClientError::Proxy {
        origin: origin.to_string(),
        value: redacted(raw),
        message,
    };
    let raw = raw.trim();
    let with_scheme = if default_http && !raw.contains("://") {
        format!("http://{raw}")
    } else {
        raw.to_string()
    };
    let url: http::Uri = with_scheme
        .parse()
        .map_err(|e| err(format!("not a URL: {e}")))?;
    let scheme = url.scheme_str().unwrap_or("");
    if !schemes.contains(&scheme) {
        return Err(err(format!(
            "unsupported scheme {scheme:?}, must be {}",
            schemes.join(", ")
        )));
    }
    if url.host().is_none_or(str::is_empty) {
        return Err(err("no host".to_string()));
    }
    if scheme == "socks5h" {
        let rest = &with_scheme[with_scheme.find("://").map_or(0, |i| i + 3)..];
        return format!("socks5://{rest}")
            .parse()
            .map_err(|e| err(format!("not a URL: {e}")));
    }
    Ok(url)
}

/// httpproxy `config.useProxy`: false for `localhost`, loopback addresses and hosts `no_proxy` covers.
pub fn use_proxy(host: &str, port: u16, no_proxy: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.trim().to_ascii_lowercase();
    if host == "localhost" {
        return false;
    }
    let ip: Option<IpAddr> = host.parse().ok();
    if ip.is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    !no_proxy
        .split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .any(|rule| rule_matches(&rule, &host, ip, port))
}

/// One `NO_PROXY` entry (already trimmed and lower case) against a host (lower case, no brackets).
fn rule_matches(rule: &str, host: &str, ip: Option<IpAddr>, port: u16) -> bool {
    if rule == "*" {
        return true;
    }
    if let Some((net, len)) = rule.split_once('/') {
        // net.ParseCIDR; a rule that is not a CIDR with a '/' matches nothing (Go treats it as a domain, which
        // no host name contains).
        return match (net.parse::<IpAddr>(), len.parse::<u8>(), ip) {
            (Ok(net), Ok(len), Some(ip)) => cidr_contains(net, len, ip),
            _ => false,
        };
    }
    let (rule_host, rule_port) = split_host_port(rule);
    let port_ok = rule_port.is_none_or(|p| p == port.to_string());
    if let Ok(rule_ip) = rule_host.parse::<IpAddr>() {
        return ip == Some(rule_ip) && port_ok;
    }
    if rule_host.is_empty() || ip.is_some() {
        return false;
    }
    let rule_host = rule_host.strip_prefix('*').unwrap_or(rule_host);
    let (suffix, exact) = match rule_host.strip_prefix('.') {
        Some(_) => (rule_host.to_string(), None),
        None => (format!(".{rule_host}"), Some(rule_host)),
    };
    (host.ends_with(&suffix) || exact == Some(host)) && port_ok
}

/// Go `net.SplitHostPort` for a rule: `host:port`, `[v6]:port`; anything else is a bare host.
fn split_host_port(rule: &str) -> (&str, Option<&str>) {
    if let Some(rest) = rule.strip_prefix('[')
        && let Some((h, p)) = rest.split_once("]:")
    {
        return (h, Some(p));
    }
    match rule.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && !p.is_empty() => (h, Some(p)),
        _ => (rule.trim_start_matches('[').trim_end_matches(']'), None),
    }
}

fn cidr_contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    fn bits(a: IpAddr) -> (u128, u8) {
        match a {
            IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
            IpAddr::V6(v) => (u128::from(v), 128),
        }
    }
    let ip = match (net, ip) {
        (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => return false,
        },
        _ => ip,
    };
    let ((n, width), (a, a_width)) = (bits(net), bits(ip));
    if width != a_width || len > width {
        return false;
    }
    if len == 0 {
        return true;
    }
    let shift = u32::from(width - len);
    (n >> shift) == (a >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(https: Option<&str>, http: Option<&str>, no: Option<&str>) -> ProxyEnv {
        ProxyEnv {
            https_proxy: https.map(str::to_string),
            http_proxy: http.map(str::to_string),
            no_proxy: no.map(str::to_string),
        }
    }

    fn pick(server: &str, cluster: Option<&str>, e: &ProxyEnv) -> Option<String> {
        select(&server.parse().unwrap(), "c", cluster, e)
            .unwrap()
            .map(|c| c.url.to_string())
    }

    /// golang.org/x/net/http/httpproxy proxy_test.go `UseProxyTests` (every host on port 80), `TestInvalidNoProxy`
    /// and `TestAllNoProxy`.
    #[test]
    fn no_proxy_matches_like_go() {
        let no = "foobar.com, .barbaz.net, *.wildcard.io, 192.168.1.1, 192.168.1.2:81, 192.168.1.3:80, 10.0.0.0/30, 2001:db8::52:0:1, [2001:db8::52:0:2]:443, [2001:db8::52:0:3]:80, 2002:db8:a::45/64";
        let cases = [
            ("localhost", false),
            ("127.0.0.1", false),
            ("127.0.0.2", false),
            ("[::1]", false),
            ("[::2]", true),
            ("192.168.1.1", false),
            ("192.168.1.2", true),
            ("192.168.1.3", false),
            ("192.168.1.4", true),
            ("10.0.0.2", false),
            ("[2001:db8::52:0:1]", false),
            ("[2001:db8::52:0:2]", true),
            ("[2001:db8::52:0:3]", false),
            ("[2002:db8:a::123]", false),
            ("[fe80::424b:c8be:1643:a1b6]", true),
            ("barbaz.net", true),
            ("www.barbaz.net", false),
            ("foobar.com", false),
            ("www.foobar.com", false),
            ("foofoobar.com", true),
            ("baz.com", true),
            ("localhost.net", true),
            ("local.localhost", true),
            ("barbarbaz.net", true),
            ("wildcard.io", true),
            ("nested.wildcard.io", false),
            ("awildcard.io", true),
        ];
        for (host, proxied) in cases {
            assert_eq!(use_proxy(host, 80, no), proxied, "{host}");
            assert!(!use_proxy(host, 80, "*"), "{host} with *");
        }
        assert!(use_proxy("example.com", 80, ":1"));
        assert!(!use_proxy("192.168.1.2", 81, no));
        assert!(!use_proxy("10.1.2.3", 6443, " , 10.0.0.0/8,,"));
        assert!(use_proxy("11.1.2.3", 6443, " , 10.0.0.0/8,,"));
        assert!(!use_proxy("API.Example.COM", 6443, "example.com"));
        assert!(!use_proxy("api.example.com", 6443, "example.com:6443"));
        assert!(use_proxy("api.example.com", 443, "example.com:6443"));
    }

    #[test]
    fn kubeconfig_proxy_url_wins_and_covers_loopback() {
        let e = env(Some("http://env:3128"), None, Some("*"));
        assert_eq!(
            pick("https://127.0.0.1:6443", Some("socks5://proxy:1080"), &e).as_deref(),
            Some("socks5://proxy:1080/")
        );
        assert_eq!(
            pick("https://127.0.0.1:6443", Some("https://p:8443"), &e).as_deref(),
            Some("https://p:8443/")
        );
        let err = select(
            &"https://a:6443".parse().unwrap(),
            "prod",
            Some("ftp://user:pw@p:21"),
            &e,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("proxy-url of cluster \"prod\"")
                && err.contains("unsupported scheme \"ftp\"")
                && !err.contains("pw"),
            "{err}"
        );
    }

    #[test]
    fn environment_by_scheme_with_no_proxy_and_loopback() {
        let e = env(
            Some("proxy:3128"),
            Some("http://plain:80"),
            Some("10.0.0.0/8,.corp"),
        );
        assert_eq!(
            pick("https://api.example:6443", None, &e).as_deref(),
            Some("http://proxy:3128/")
        );
        assert_eq!(
            pick("http://api.example:8080", None, &e).as_deref(),
            Some("http://plain:80/")
        );
        assert_eq!(pick("https://10.1.1.1:6443", None, &e), None);
        assert_eq!(pick("https://api.corp:6443", None, &e), None);
        assert_eq!(pick("https://127.0.0.1:6443", None, &e), None);
        assert_eq!(pick("https://localhost:6443", None, &e), None);
        assert_eq!(pick("https://[::1]:6443", None, &e), None);
        assert_eq!(
            pick("https://api.example:6443", None, &ProxyEnv::default()),
            None
        );
        let e = env(Some("socks5h://s:1080"), None, None);
        assert_eq!(
            pick("https://api.example:6443", None, &e).as_deref(),
            Some("socks5://s:1080/")
        );
        let e = env(Some("gopher://user:secret@g:70"), None, None);
        let err = select(&"https://api.example:6443".parse().unwrap(), "c", None, &e)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("HTTPS_PROXY") && !err.contains("secret"),
            "{err}"
        );
    }

    #[test]
    fn redacts_userinfo() {
        assert_eq!(redacted("http://u:p@h:1"), "http://***@h:1");
        assert_eq!(redacted("http://h:1/a@b"), "http://h:1/a@b");
        assert_eq!(redacted("h:1"), "h:1");
        assert_eq!(redacted("u:p@h:1"), "***@h:1");
    }
}
