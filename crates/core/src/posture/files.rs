//! File modes and owners (CIS 1.1.x): manifests, the etcd data directory, the PKI directory, private
//! keys, the EncryptionConfiguration.
//!
//! Modes follow kube-bench's `bitmask` test: a file passes when it has no permission bit outside the
//! allowed mode. Owners are numeric: root is uid 0 / gid 0; the etcd data directory may also belong
//! to the `etcd` user of the node (`<root>/etc/passwd`), as CIS 1.1.12 asks for non-kubeadm installs.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Check, EtcdServer, EtcdSource, Status, node, under_root};
use crate::manifest::Manifest;

/// A check of a file's metadata: `judge` says PASS with a detail, or FAIL with a detail and a fix; a file that
/// cannot be read is an ERROR.
fn metadata_check(
    name: &str,
    cis: Option<&str>,
    path: &Path,
    judge: impl FnOnce(&std::fs::Metadata) -> Result<String, (String, String)>,
) -> Check {
    match std::fs::metadata(path).map(|m| judge(&m)) {
        Ok(Ok(detail)) => Check::new(name, cis, Status::Pass).detail(detail),
        Ok(Err((detail, fix))) => Check::new(name, cis, Status::Fail).detail(detail).fix(fix),
        Err(e) => unreadable(name, cis, path, &e),
    }
}

fn mode_check(name: &str, cis: Option<&str>, path: &Path, allowed: u32) -> Check {
    metadata_check(name, cis, path, |m| {
        let mode = m.mode() & 0o7777;
        if mode & 0o777 & !allowed == 0 {
            Ok(format!("{} is {mode:04o}", path.display()))
        } else {
            Err((
                format!(
                    "{} is {mode:04o}, more open than {allowed:04o}",
                    path.display()
                ),
                format!("chmod {allowed:o} {}", path.display()),
            ))
        }
    })
}

fn owner_check(
    name: &str,
    cis: Option<&str>,
    path: &Path,
    extra_uid: Option<(u32, &str)>,
) -> Check {
    metadata_check(name, cis, path, |m| {
        let (uid, gid) = (m.uid(), m.gid());
        let ok = (uid == 0 && gid == 0) || extra_uid.is_some_and(|(u, _)| uid == u);
        let want = match extra_uid {
            Some((_, n)) => format!("root:root or {n}"),
            None => "root:root".to_string(),
        };
        if ok {
            Ok(format!("{} is owned by {uid}:{gid}", path.display()))
        } else {
            Err((
                format!("{} is owned by {uid}:{gid}, not {want}", path.display()),
                format!("chown root:root {}", path.display()),
            ))
        }
    })
}

fn unreadable(name: &str, cis: Option<&str>, path: &Path, e: &std::io::Error) -> Check {
    let fix = match e.kind() {
        std::io::ErrorKind::PermissionDenied => "run as root on the node",
        std::io::ErrorKind::NotFound => {
            "check the path in the configuration, or pass --root DIR for a node directory"
        }
        _ => "check the file",
    };
    Check::new(name, cis, Status::Error)
        .detail(format!("{}: {e}", path.display()))
        .fix(fix)
}

/// uid of `user` in the node's `/etc/passwd` (under `root`).
fn node_uid(root: &Path, user: &str) -> Option<u32> {
    let text = std::fs::read_to_string(root.join("etc/passwd")).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == user).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

/// Every path under `dir` (itself included), without following symlinks.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let p = out[i].clone();
        if p.symlink_metadata().is_ok_and(|m| m.is_dir())
            && let Ok(rd) = std::fs::read_dir(&p)
        {
            let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            entries.sort();
            out.extend(entries);
        }
        i += 1;
    }
    out
}

fn summarize(mut bad: Vec<String>) -> String {
    let n = bad.len();
    bad.truncate(4);
    let mut s = bad.join(", ");
    if n > 4 {
        s.push_str(&format!(" and {} more", n - 4));
    }
    s
}

/// All file checks.
pub(super) fn check_files(
    root: &Path,
    etcd: Option<&EtcdServer>,
    apiserver: Option<&Manifest>,
    apiserver_path: &Path,
    out: &mut Vec<Check>,
) {
    if apiserver.is_some() {
        out.push(mode_check(
            "apiserver-manifest-mode",
            Some("1.1.1"),
            apiserver_path,
            0o600,
        ));
        out.push(owner_check(
            "apiserver-manifest-owner",
            Some("1.1.2"),
            apiserver_path,
            None,
        ));
    }
    if let Some(e) = etcd {
        if let EtcdSource::StaticPod(p) = &e.source {
            out.push(mode_check("etcd-manifest-mode", Some("1.1.7"), p, 0o600));
            out.push(owner_check("etcd-manifest-owner", Some("1.1.8"), p, None));
        }
        data_dir(root, e, out);
    }
    pki(root, etcd, apiserver, out);
    if let Some(m) = apiserver
        && let Some(cfg) = m.encryption_provider_config()
        && let Some(host) = m.host_path_for(&cfg)
    {
        let host = under_root(root, &host);
        if host.exists() {
            out.push(mode_check("encryption-config-mode", None, &host, 0o600));
            out.push(owner_check("encryption-config-owner", None, &host, None));
        }
    }
}

fn data_dir(root: &Path, e: &EtcdServer, out: &mut Vec<Check>) {
    let Some(dir) = e.get("data-dir").filter(|d| !d.is_empty()) else {
        out.push(
            Check::new("etcd-data-dir-mode", Some("1.1.11"), Status::Error)
                .detail("--data-dir not set (etcd would use <name>.etcd in its working directory)")
                .fix("set --data-dir explicitly (kubeadm: /var/lib/etcd)"),
        );
        return;
    };
    let Some(host) = e.host_path(root, dir) else {
        out.push(
            Check::new("etcd-data-dir-mode", Some("1.1.11"), Status::Fail)
                .detail(format!("{} is outside every hostPath volumeMount: the data lives in the container and is lost on restart", e.describe("data-dir")))
                .fix("mount the data directory from the host (kubeadm: hostPath /var/lib/etcd)"),
        );
        return;
    };
    out.push(mode_check(
        "etcd-data-dir-mode",
        Some("1.1.11"),
        &host,
        0o700,
    ));
    let etcd_uid = node_uid(root, "etcd").map(|u| (u, "etcd"));
    out.push(owner_check(
        "etcd-data-dir-owner",
        Some("1.1.12"),
        &host,
        etcd_uid,
    ));
}

fn pki(root: &Path, etcd: Option<&EtcdServer>, apiserver: Option<&Manifest>, out: &mut Vec<Check>) {
    let dir = under_root(root, node::PKI_DIR);
    let files = if dir.is_dir() { walk(&dir) } else { Vec::new() };
    if !files.is_empty() {
        let bad: Vec<String> = files
            .iter()
            .filter_map(|p| {
                let m = p.symlink_metadata().ok()?;
                (m.uid() != 0 || m.gid() != 0)
                    .then(|| format!("{} ({}:{})", p.display(), m.uid(), m.gid()))
            })
            .collect();
        out.push(if bad.is_empty() {
            Check::new("pki-owner", Some("1.1.19"), Status::Pass).detail(format!(
                "{} and its {} entries are root:root",
                dir.display(),
                files.len() - 1
            ))
        } else {
            Check::new("pki-owner", Some("1.1.19"), Status::Fail)
                .detail(format!("not root:root: {}", summarize(bad)))
                .fix(format!("chown -R root:root {}", dir.display()))
        });
        let certs: Vec<&PathBuf> = files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "crt") && p.is_file())
            .collect();
        let bad: Vec<String> = certs
            .iter()
            .filter_map(|p| {
                let mode = std::fs::metadata(p).ok()?.mode() & 0o777;
                (mode & !0o644 != 0).then(|| format!("{} ({mode:04o})", p.display()))
            })
            .collect();
        out.push(if bad.is_empty() {
            Check::new("pki-cert-mode", Some("1.1.20"), Status::Pass).detail(format!(
                "{} certificates, all 0644 or stricter",
                certs.len()
            ))
        } else {
            Check::new("pki-cert-mode", Some("1.1.20"), Status::Fail)
                .detail(format!("more open than 0644: {}", summarize(bad)))
                .fix(format!(
                    "chmod 644 {}/*.crt {}/etcd/*.crt",
                    dir.display(),
                    dir.display()
                ))
        });
    }
    // Private keys: *.key under the PKI directory, plus every key file etcd and the kube-apiserver's
    // etcd client are configured with, wherever it is (external etcd keeps them elsewhere).
    let mut keys: Vec<PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "key") && p.is_file())
        .cloned()
        .collect();
    if let Some(e) = etcd {
        for f in ["key-file", "peer-key-file"] {
            if let Some(h) = e.get(f).and_then(|v| e.host_path(root, v))
                && h.is_file()
            {
                keys.push(h);
            }
        }
    }
    if let Some(m) = apiserver
        && let Some(v) = m.flag("etcd-keyfile")
        && let Some(h) = m.host_path_for(&v)
    {
        let h = under_root(root, &h);
        if h.is_file() {
            keys.push(h);
        }
    }
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return;
    }
    let bad: Vec<String> = keys
        .iter()
        .filter_map(|p| {
            let mode = std::fs::metadata(p).ok()?.mode() & 0o777;
            (mode & !0o600 != 0).then(|| format!("{} ({mode:04o})", p.display()))
        })
        .collect();
    out.push(if bad.is_empty() {
        Check::new("pki-key-mode", Some("1.1.21"), Status::Pass)
            .detail(format!("{} private keys, all 0600 or stricter", keys.len()))
    } else {
        Check::new("pki-key-mode", Some("1.1.21"), Status::Fail)
            .detail(format!(
                "private keys more open than 0600: {}",
                summarize(bad)
            ))
            .fix("chmod 600 on each key listed")
    });
}
