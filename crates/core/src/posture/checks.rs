//! Static checks of the etcd and kube-apiserver command lines and the EncryptionConfiguration.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::{Check, EtcdServer, Status, under_root};
use crate::config::{GroupResource, ProviderConfiguration};
use crate::manifest::Manifest;
use crate::pki::Certificate;

/// Load the kube-apiserver manifest; report why not when it cannot be used. On an external etcd
/// host (`unit_mode`) a missing manifest is a SKIP.
pub(super) fn load_apiserver(
    path: &Path,
    unit_mode: bool,
    out: &mut Vec<Check>,
) -> Option<Manifest> {
    if !path.exists() {
        let status = if unit_mode {
            Status::Skip
        } else {
            Status::Error
        };
        out.push(
            Check::new("apiserver-manifest", None, status)
                .detail(format!("no kube-apiserver manifest at {}", path.display()))
                .fix("pass --root DIR (the control-plane node's root directory) to check the kube-apiserver too"),
        );
        return None;
    }
    match Manifest::load(path) {
        Ok(m) => Some(m),
        Err(e) => {
            out.push(
                Check::new("apiserver-manifest", None, Status::Error)
                    .detail(e.to_string())
                    .fix("fix the kube-apiserver manifest"),
            );
            None
        }
    }
}

/// Where a file named by a flag is on the host, or why it cannot be checked.
enum FileRef {
    Found(PathBuf),
    Missing(String),
}

fn etcd_file(e: &EtcdServer, root: &Path, flag: &str) -> Option<FileRef> {
    let v = e.get(flag).filter(|v| !v.is_empty())?;
    Some(match e.host_path(root, v) {
        None => FileRef::Missing(format!(
            "{} is outside every hostPath volumeMount of the etcd pod (etcd cannot read it)",
            e.describe(flag)
        )),
        Some(h) if h.is_file() => FileRef::Found(h),
        Some(h) => FileRef::Missing(format!(
            "{}: {} does not exist",
            e.describe(flag),
            h.display()
        )),
    })
}

fn apiserver_file(m: &Manifest, root: &Path, flag: &str) -> Option<FileRef> {
    let v = m.flag(flag).filter(|v| !v.is_empty())?;
    Some(match m.host_path_for(&v) {
        None => FileRef::Missing(format!(
            "--{flag}={v} is outside every hostPath volumeMount of the kube-apiserver pod"
        )),
        Some(h) => {
            let h = under_root(root, &h);
            if h.is_file() {
                FileRef::Found(h)
            } else {
                FileRef::Missing(format!("--{flag}={v}: {} does not exist", h.display()))
            }
        }
    })
}

/// A pair of file flags that must both be set and exist.
fn file_pair(
    name: &str,
    cis: &str,
    files: [(&str, Option<FileRef>); 2],
    describe: impl Fn(&str) -> String,
    fix: &str,
) -> Check {
    let mut problems = Vec::new();
    let mut found = Vec::new();
    for (flag, f) in files {
        match f {
            None => problems.push(format!("--{flag} not set")),
            Some(FileRef::Missing(m)) => problems.push(m),
            Some(FileRef::Found(_)) => found.push(describe(flag)),
        }
    }
    if problems.is_empty() {
        Check::new(name, Some(cis), Status::Pass).detail(found.join(" "))
    } else {
        Check::new(name, Some(cis), Status::Fail)
            .detail(problems.join("; "))
            .fix(fix)
    }
}

/// A boolean etcd flag that must be `want` (unset is false).
fn flag_is(e: &EtcdServer, want: bool, name: &str, cis: &str, flag: &str, fix: &str) -> Check {
    match e.bool(flag) {
        Ok(v) if v.unwrap_or(false) == want => {
            Check::new(name, Some(cis), Status::Pass).detail(e.describe(flag))
        }
        Ok(_) => Check::new(name, Some(cis), Status::Fail)
            .detail(e.describe(flag))
            .fix(fix),
        Err(m) => Check::new(name, Some(cis), Status::Fail).detail(m).fix(fix),
    }
}

/// One side of etcd's TLS (clients or peers): its certificate, client-certificate auth, no auto-TLS.
struct TlsSide {
    /// Flag prefix: `""` or `"peer-"`.
    flag: &'static str,
    /// CIS numbers of the three checks.
    cis: [&'static str; 3],
    cert_fix: &'static str,
    auto_tls_fix: &'static str,
}

const TLS_SIDES: [TlsSide; 2] = [
    TlsSide {
        flag: "",
        cis: ["2.1", "2.2", "2.3"],
        cert_fix: "set --cert-file and --key-file to etcd's serving certificate and key (kubeadm: /etc/kubernetes/pki/etcd/server.{crt,key})",
        auto_tls_fix: "remove --auto-tls (or set --auto-tls=false); use certificates from etcd's own CA",
    },
    TlsSide {
        flag: "peer-",
        cis: ["2.4", "2.5", "2.6"],
        cert_fix: "set --peer-cert-file and --peer-key-file (kubeadm: /etc/kubernetes/pki/etcd/peer.{crt,key})",
        auto_tls_fix: "remove --peer-auto-tls (or set --peer-auto-tls=false)",
    },
];

/// `scheme`, `host`, `port` of a URL such as `https://[::1]:2379`.
pub(super) fn split_url(u: &str) -> Option<(String, String, Option<u16>)> {
    let (scheme, rest) = u.split_once("://")?;
    let hostport = rest.split(['/', '?']).next().unwrap_or("");
    let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
        let (h, tail) = r.split_once(']')?;
        (
            h.to_string(),
            tail.strip_prefix(':').and_then(|p| p.parse().ok()),
        )
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()),
            None => (hostport.to_string(), None),
        }
    };
    Some((scheme.to_ascii_lowercase(), host, port))
}

/// Whether a listen host accepts connections on every interface.
pub(super) fn is_wildcard(host: &str) -> bool {
    host.is_empty() || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified())
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn urls_https(e: &EtcdServer, name: &str, cis: &str, flags: &[&str], fix: &str) -> Check {
    let mut plain = Vec::new();
    let mut all = Vec::new();
    for f in flags {
        if !e.is_set(f) && *f == "listen-client-http-urls" {
            continue;
        }
        for u in e.urls(f) {
            all.push(format!("{f}={u}"));
            if split_url(&u).map(|(s, _, _)| s) != Some("https".into()) {
                plain.push(format!("{} ({})", u, e.describe(f)));
            }
        }
    }
    if plain.is_empty() {
        Check::new(name, Some(cis), Status::Pass).detail(all.join(" "))
    } else {
        Check::new(name, Some(cis), Status::Fail)
            .detail(format!("not TLS: {}", plain.join(", ")))
            .fix(fix)
    }
}

/// etcd's flags: CIS 2.1–2.7, https URLs, listen addresses.
pub(super) fn etcd_flags(
    e: &EtcdServer,
    apiserver: Option<&Manifest>,
    root: &Path,
    out: &mut Vec<Check>,
) {
    for side in &TLS_SIDES {
        let p = side.flag;
        let (cert, key) = (format!("{p}cert-file"), format!("{p}key-file"));
        out.push(file_pair(
            &format!("etcd-{p}cert-file"),
            side.cis[0],
            [
                (&cert, etcd_file(e, root, &cert)),
                (&key, etcd_file(e, root, &key)),
            ],
            |f: &str| e.describe(f),
            side.cert_fix,
        ));
        let cca_flag = format!("{p}client-cert-auth");
        let mut cca = flag_is(
            e,
            true,
            &format!("etcd-{cca_flag}"),
            side.cis[1],
            &cca_flag,
            &format!("set --{cca_flag}=true in etcd's flags"),
        );
        if p.is_empty()
            && cca.result == Status::Fail
            && e.get("trusted-ca-file").is_some_and(|v| !v.is_empty())
        {
            // etcd `pkg/transport/listener.go` `TLSInfo.ServerConfig`: a TrustedCAFile alone already means
            // tls.RequireAndVerifyClientCert; the flag is what CIS checks and what keeps it so.
            cca.detail.push_str(
                " (etcd still requires client certificates while --trusted-ca-file is set)",
            );
        }
        out.push(cca);
        let auto_tls = format!("{p}auto-tls");
        out.push(flag_is(
            e,
            false,
            &format!("etcd-{auto_tls}"),
            side.cis[2],
            &auto_tls,
            side.auto_tls_fix,
        ));
    }
    out.push(trusted_ca(e, apiserver, root));
    out.push(urls_https(
        e,
        "etcd-client-urls-https",
        "2.1",
        &[
            "listen-client-urls",
            "advertise-client-urls",
            "listen-client-http-urls",
        ],
        "use https:// in --listen-client-urls and --advertise-client-urls",
    ));
    out.push(urls_https(
        e,
        "etcd-peer-urls-https",
        "2.4",
        &["listen-peer-urls", "initial-advertise-peer-urls"],
        "use https:// in --listen-peer-urls and --initial-advertise-peer-urls",
    ));
    out.push(listen_addresses(e));
}

/// CIS 2.7: `--trusted-ca-file` set and readable, and not the Kubernetes cluster CA (then every
/// certificate that CA signs — kubelets, users — would be an etcd client).
fn trusted_ca(e: &EtcdServer, apiserver: Option<&Manifest>, root: &Path) -> Check {
    let name = "etcd-trusted-ca-file";
    let fix = "set --trusted-ca-file to a CA used only for etcd (kubeadm: /etc/kubernetes/pki/etcd/ca.crt)";
    let path = match etcd_file(e, root, "trusted-ca-file") {
        None => {
            return Check::new(name, Some("2.7"), Status::Fail)
                .detail(e.describe("trusted-ca-file"))
                .fix(fix);
        }
        Some(FileRef::Missing(m)) => {
            return Check::new(name, Some("2.7"), Status::Fail)
                .detail(m)
                .fix(fix);
        }
        Some(FileRef::Found(p)) => p,
    };
    let etcd_ca = match Certificate::load_bundle(&path) {
        Ok(c) => c,
        Err(err) => {
            return Check::new(name, Some("2.7"), Status::Fail)
                .detail(format!("{}: {err}", e.describe("trusted-ca-file")))
                .fix(fix);
        }
    };
    let cluster_ca = apiserver
        .and_then(|m| match apiserver_file(m, root, "client-ca-file") {
            Some(FileRef::Found(p)) => Certificate::load_bundle(&p).ok(),
            _ => None,
        })
        .unwrap_or_default();
    let fp = |c: &Certificate| c.fingerprint_sha256().unwrap_or_default();
    let shared: Vec<String> = etcd_ca
        .iter()
        .filter(|c| cluster_ca.iter().any(|k| fp(k) == fp(c)))
        .map(|c| c.subject())
        .collect();
    if !shared.is_empty() {
        return Check::new(name, Some("2.7"), Status::Fail)
            .detail(format!(
                "{} trusts the kube-apiserver's --client-ca-file CA ({})",
                e.describe("trusted-ca-file"),
                shared.join(", ")
            ))
            .fix(fix);
    }
    Check::new(name, Some("2.7"), Status::Pass).detail(format!(
        "{} ({})",
        e.describe("trusted-ca-file"),
        etcd_ca
            .iter()
            .map(Certificate::subject)
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// etcd listeners: clients listening on every interface is a WARN. kubeadm listens on loopback and
/// the node's advertise address only (`cmd/kubeadm/app/phases/etcd/local.go` `getEtcdCommand`:
/// `listen-client-urls` = `https://127.0.0.1:2379,https://<advertise address>:2379`), so only the
/// API servers and the other members can reach it. No CIS id covers this.
fn listen_addresses(e: &EtcdServer) -> Check {
    let mut wide = Vec::new();
    let mut all = Vec::new();
    for f in ["listen-client-urls", "listen-client-http-urls"] {
        if !e.is_set(f) && f == "listen-client-http-urls" {
            continue;
        }
        for u in e.urls(f) {
            all.push(u.clone());
            if let Some((_, host, _)) = split_url(&u)
                && is_wildcard(&host)
            {
                wide.push(format!("{u} ({f})"));
            }
        }
    }
    if e.is_set("listen-metrics-urls") {
        for u in e.urls("listen-metrics-urls") {
            if let Some((scheme, host, _)) = split_url(&u)
                && scheme == "http"
                && !is_loopback(&host)
            {
                wide.push(format!(
                    "{u} (listen-metrics-urls, plain HTTP off loopback)"
                ));
            }
        }
    }
    if wide.is_empty() {
        Check::new("etcd-listen-addresses", None, Status::Pass).detail(all.join(" "))
    } else {
        Check::new("etcd-listen-addresses", None, Status::Warn)
            .detail(format!("listening on every interface: {}", wide.join(", ")))
            .fix("listen on 127.0.0.1 and the node's own address only (as kubeadm does); firewall 2379/2380 to the control-plane nodes")
    }
}

/// kube-apiserver's etcd client flags and its EncryptionConfiguration (CIS 1.2.23, 1.2.26–1.2.28).
pub(super) fn apiserver_flags(m: &Manifest, root: &Path, out: &mut Vec<Check>) {
    let d = |f: &str| match m.flag(f) {
        Some(v) => format!("--{f}={v}"),
        None => format!("--{f} not set"),
    };
    out.push(file_pair(
        "apiserver-etcd-certfile",
        "1.2.23",
        [
            ("etcd-certfile", apiserver_file(m, root, "etcd-certfile")),
            ("etcd-keyfile", apiserver_file(m, root, "etcd-keyfile")),
        ],
        d,
        "set --etcd-certfile and --etcd-keyfile (kubeadm: /etc/kubernetes/pki/apiserver-etcd-client.{crt,key})",
    ));
    let ca = match apiserver_file(m, root, "etcd-cafile") {
        Some(FileRef::Found(_)) => {
            Check::new("apiserver-etcd-cafile", Some("1.2.26"), Status::Pass)
                .detail(d("etcd-cafile"))
        }
        Some(FileRef::Missing(msg)) => {
            Check::new("apiserver-etcd-cafile", Some("1.2.26"), Status::Fail).detail(msg)
        }
        None => Check::new("apiserver-etcd-cafile", Some("1.2.26"), Status::Fail)
            .detail(d("etcd-cafile")),
    };
    out.push(ca.fix("set --etcd-cafile to etcd's CA (kubeadm: /etc/kubernetes/pki/etcd/ca.crt)"));
    let servers = m.etcd_flags().servers;
    let plain: Vec<&String> = servers
        .iter()
        .filter(|s| split_url(s).map(|(sc, _, _)| sc) != Some("https".into()))
        .collect();
    out.push(if servers.is_empty() {
        Check::new("apiserver-etcd-servers-https", None, Status::Fail)
            .detail("--etcd-servers not set")
            .fix("set --etcd-servers=https://127.0.0.1:2379")
    } else if plain.is_empty() {
        Check::new("apiserver-etcd-servers-https", None, Status::Pass).detail(d("etcd-servers"))
    } else {
        Check::new("apiserver-etcd-servers-https", None, Status::Fail)
            .detail(format!(
                "not TLS: {}",
                plain
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .fix("use https:// URLs in --etcd-servers")
    });
    let Some(cfg) = m.encryption_provider_config() else {
        out.push(
            Check::new("apiserver-encryption-provider-config", Some("1.2.27"), Status::Fail)
                .detail("--encryption-provider-config not set: Secrets are stored in plaintext")
                .fix("kubectl encrypt enable (or set --encryption-provider-config to an EncryptionConfiguration)"),
        );
        return;
    };
    out.push(
        Check::new(
            "apiserver-encryption-provider-config",
            Some("1.2.27"),
            Status::Pass,
        )
        .detail(format!("--encryption-provider-config={cfg}")),
    );
    out.push(providers(m, root, &cfg));
}

/// CIS 1.2.28: the configuration is valid and Secrets are written by a non-identity provider.
/// aescbc is a WARN: upstream recommends against it (`kubernetes/website`
/// `content/en/docs/tasks/administer-cluster/encrypt-data.md`, provider table; discussed in
/// kubernetes/website#44169); kms v1 is a WARN: deprecated since 1.28 and off by default since 1.29
/// (`KMSv1` feature gate, `kubernetes/kubernetes` `pkg/features/kube_features.go`).
fn providers(m: &Manifest, root: &Path, cfg: &str) -> Check {
    let name = "apiserver-encryption-providers";
    let fail = |detail: String, fix: &str| {
        Check::new(name, Some("1.2.28"), Status::Fail)
            .detail(detail)
            .fix(fix)
    };
    let Some(host) = m.host_path_for(cfg) else {
        return fail(
            format!(
                "--encryption-provider-config={cfg} is outside every hostPath volumeMount of the kube-apiserver pod"
            ),
            "mount the configuration's directory into the kube-apiserver pod (kubectl encrypt enable does)",
        );
    };
    let host = under_root(root, &host);
    let config = match crate::config::load(&host) {
        Ok(c) => c,
        Err(e) => {
            return fail(
                e.to_string(),
                "fix the EncryptionConfiguration (kubectl encrypt status shows the problems)",
            );
        }
    };
    if let Err(e) = config.validate_with_reload(m.automatic_reload()) {
        return fail(e.to_string(), "fix the EncryptionConfiguration");
    }
    let secrets = GroupResource::core("secrets");
    let fix_plain =
        "put aesgcm, secretbox or kms (v2) first for secrets: kubectl encrypt enable / rotate";
    match config.write_provider_for(&secrets) {
        None => fail(
            format!(
                "{}: no rule covers secrets, so they are stored in plaintext (identity)",
                host.display()
            ),
            fix_plain,
        ),
        Some(ProviderConfiguration::Identity) => fail(
            format!(
                "{}: the first provider for secrets is identity: new Secrets are stored in plaintext",
                host.display()
            ),
            fix_plain,
        ),
        Some(ProviderConfiguration::Aescbc(_)) => Check::new(name, Some("1.2.28"), Status::Warn)
            .detail(format!(
                "{}: secrets are written with aescbc, which upstream no longer recommends",
                host.display()
            ))
            .fix("switch to aesgcm, secretbox or kms v2 (kubectl encrypt rotate --provider ...)"),
        Some(ProviderConfiguration::Kms(k)) if !k.is_v2() => {
            Check::new(name, Some("1.2.28"), Status::Warn)
                .detail(format!(
                    "{}: secrets are written with kms v1 ({}), deprecated since Kubernetes 1.28",
                    host.display(),
                    k.name
                ))
                .fix("move to a kms apiVersion: v2 provider")
        }
        Some(p) => Check::new(name, Some("1.2.28"), Status::Pass).detail(format!(
            "{}: secrets are written with {}",
            host.display(),
            p.kind()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_url("https://[::1]:2379"),
            Some(("https".into(), "::1".into(), Some(2379)))
        );
        assert_eq!(
            split_url("HTTP://0.0.0.0:2379/x"),
            Some(("http".into(), "0.0.0.0".into(), Some(2379)))
        );
        assert_eq!(
            split_url("https://etcd.local"),
            Some(("https".into(), "etcd.local".into(), None))
        );
        assert!(is_wildcard("0.0.0.0") && is_wildcard("::") && is_wildcard(""));
        assert!(!is_wildcard("10.0.0.1") && !is_wildcard("localhost"));
    }
}
