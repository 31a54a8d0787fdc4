//! Release packaging shared by `cargo xtask dist` (through the `atrest-dist` binary) and the archive tests:
//! one flat `.tar.gz` per plugin and target holding `kubectl-<verb>`, the completion wrapper
//! `kubectl_complete-<verb>` and `LICENSE`, its SHA-256, and the krew manifest rendered from the one template
//! `plugin.yaml.tmpl` beside this file (krew-manifests/ holds only the manifests, as krew-index expects).
//!
//! Archives are deterministic: entries in a fixed order, mtime 0, uid/gid 0, owner names empty, fixed modes, gzip
//! header without name or timestamp. Only regular files, no directories, symlinks or `..` (krew refuses links,
//! absolute and `..` paths: kubernetes-sigs/krew `internal/download/downloader.go`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The plugins, by verb (`kubectl-<verb>`; krew plugin name = verb).
pub const VERBS: [&str; 4] = ["encrypt", "reencrypt", "onboard", "etcdcheck"];

/// The targets `cargo xtask dist` builds, with krew's `os`/`arch` selector labels. Only the host toolchain's
/// target is installed on the build machine; see README "Release" for the others.
pub const TARGETS: [(&str, &str, &str); 1] = [("x86_64-unknown-linux-gnu", "linux", "amd64")];

/// The workspace version (every crate inherits it), as manifests carry it: `v0.1.0`.
pub fn version_tag() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

/// Where releases are downloaded from.
pub const HOMEPAGE: &str = "https://github.com/atrest/atrest";

/// The workspace root (two levels above `crates/devtools`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/devtools sits two levels below the workspace root")
        .to_path_buf()
}

/// The manifest template, relative to the workspace root.
pub const TEMPLATE: &str = "crates/devtools/src/plugin.yaml.tmpl";

/// Per-plugin texts of the manifests.
pub struct PluginText {
    /// The verb (plugin name).
    pub verb: &'static str,
    /// One line, a few words.
    pub short: &'static str,
    /// What it does (several lines).
    pub description: &'static str,
    /// What to know before the first run (the completion note is added by the template).
    pub caveats: &'static str,
}

/// The texts of the four manifests.
pub const TEXTS: [PluginText; 4] = [
    PluginText {
        verb: "encrypt",
        short: "Enable, rotate or disable encryption at rest of Secrets (kubeadm)",
        description: "Turns on encryption at rest for Secrets on a kubeadm control-plane node: generates a key,\n\
writes the EncryptionConfiguration (0600), points kube-apiserver at it, waits until it is back\n\
and rolls back byte for byte if it is not. Also shows the status, rotates the key the documented\n\
way (add, promote, rewrite, verify in etcd, remove) and disables encryption safely.",
        caveats: "Run it on a kubeadm control-plane node as root: it edits\n\
/etc/kubernetes/manifests/kube-apiserver.yaml and writes the key file with mode 0600.",
    },
    PluginText {
        verb: "reencrypt",
        short: "Rewrite Secrets so they are stored with the current encryption key",
        description: "Sends every Secret (or any other resource) back to the API server unchanged so that\n\
kube-apiserver stores it again with the first provider of its EncryptionConfiguration: after\n\
enabling encryption or rotating a key. Concurrent, rate limited, resumable, conflict safe;\n\
--verify reads etcd afterwards and reports what is still plaintext or on an old key.",
        caveats: "Needs list and update on the resources it rewrites in every namespace (cluster-admin in practice).",
    },
    PluginText {
        verb: "onboard",
        short: "Onboard certificate users via the CSR API with least-privilege RBAC",
        description: "Creates a user with a client certificate: private key generated locally, a\n\
CertificateSigningRequest approved and issued, a kubeconfig written 0600, a Role and\n\
RoleBinding in one namespace, the access verified. --remove offboards, --list shows the\n\
certificates issued.",
        caveats: "Needs rights to create and approve CertificateSigningRequests and to create Roles and\n\
RoleBindings. Kubernetes cannot revoke client certificates: --remove deletes the bindings and\n\
lists certificates still valid.",
    },
    PluginText {
        verb: "etcdcheck",
        short: "Report how etcd stores each Secret and whether it decrypts",
        description: "Reads etcd directly and reports, per Secret, how it is stored (identity, aescbc, aesgcm,\n\
secretbox, kms) and whether it decrypts with the EncryptionConfiguration and decodes as the\n\
object its key names. Never prints a value.",
        caveats: "Reads etcd with the API server's client certificate: run it on a control-plane node as root,\n\
or give --endpoints, --cacert, --cert and --key.",
    },
];

/// The text of a plugin.
pub fn text(verb: &str) -> Option<&'static PluginText> {
    TEXTS.iter().find(|t| t.verb == verb)
}

/// The completion wrapper kubectl runs for `kubectl <verb> <TAB>` (kubectl ≥ 1.26 looks up
/// `kubectl_complete-<verb>` on PATH): hands the words to the plugin's own `__complete`.
pub fn completion_wrapper(verb: &str) -> String {
    format!("#!/bin/sh\nexec kubectl-{verb} __complete \"$@\"\n")
}

/// `kubectl-encrypt-x86_64-unknown-linux-gnu.tar.gz`.
pub fn archive_name(verb: &str, target: &str) -> String {
    format!("kubectl-{verb}-{target}.tar.gz")
}

/// Where a release archive is downloaded from.
pub fn archive_uri(verb: &str, target: &str) -> String {
    format!(
        "{HOMEPAGE}/releases/download/{}/{}",
        version_tag(),
        archive_name(verb, target)
    )
}

/// One file of an archive.
pub struct Entry {
    /// Flat name.
    pub name: String,
    /// Unix mode bits (0o755, 0o644).
    pub mode: u32,
    /// Contents.
    pub data: Vec<u8>,
}

/// A written archive.
#[derive(Debug, Clone)]
pub struct Archive {
    /// The plugin.
    pub verb: String,
    /// The file.
    pub path: PathBuf,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The entries of a plugin archive: the binary, the completion wrapper, the license.
pub fn plugin_entries(verb: &str, binary: &Path, license: &Path) -> Result<Vec<Entry>> {
    let bin = fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let lic = fs::read(license).with_context(|| format!("reading {}", license.display()))?;
    Ok(vec![
        Entry {
            name: format!("kubectl-{verb}"),
            mode: 0o755,
            data: bin,
        },
        Entry {
            name: format!("kubectl_complete-{verb}"),
            mode: 0o755,
            data: completion_wrapper(verb).into_bytes(),
        },
        Entry {
            name: "LICENSE".into(),
            mode: 0o644,
            data: lic,
        },
    ])
}

/// Packages `binary` as `<out_dir>/<archive_name>`. `level` is the gzip level (9 for releases; tests use 1).
pub fn package(
    verb: &str,
    target: &str,
    binary: &Path,
    license: &Path,
    out_dir: &Path,
    level: u32,
) -> Result<Archive> {
    let entries = plugin_entries(verb, binary, license)?;
    let bytes = tar_gz(&entries, level)?;
    fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let path = out_dir.join(archive_name(verb, target));
    write_atomic(&path, &bytes)?;
    Ok(Archive {
        verb: verb.to_string(),
        path,
        sha256: sha256_hex(&bytes),
        size: bytes.len() as u64,
    })
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    openssl::sha::sha256(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A ustar archive of flat regular files, gzip-compressed, byte-for-byte reproducible.
pub fn tar_gz(entries: &[Entry], level: u32) -> Result<Vec<u8>> {
    let mut tar = Vec::new();
    for e in entries {
        if e.name.is_empty()
            || e.name.len() > 100
            || e.name.contains(['/', '\\'])
            || e.name == ".."
            || !e.name.is_ascii()
        {
            bail!(
                "archive entry name {:?} is not a flat ASCII file name",
                e.name
            );
        }
        let mut h = [0u8; 512];
        h[..e.name.len()].copy_from_slice(e.name.as_bytes());
        octal(&mut h[100..108], u64::from(e.mode));
        octal(&mut h[108..116], 0); // uid
        octal(&mut h[116..124], 0); // gid
        octal(&mut h[124..136], e.data.len() as u64);
        octal(&mut h[136..148], 0); // mtime
        h[156] = b'0'; // regular file
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        // The checksum is computed with its own field as spaces.
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        let cks = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(cks.as_bytes());
        tar.extend_from_slice(&h);
        tar.extend_from_slice(&e.data);
        tar.resize(tar.len().next_multiple_of(512), 0);
    }
    tar.extend_from_slice(&[0u8; 1024]);
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(3) // Unix, whatever the build host
        .write(Vec::new(), flate2::Compression::new(level));
    gz.write_all(&tar)?;
    Ok(gz.finish()?)
}

/// `value` as a NUL-terminated, zero-padded octal field.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
}

/// The values a manifest is rendered with.
pub struct ManifestValues<'a> {
    /// Plugin name (verb).
    pub verb: &'a str,
    /// `vX.Y.Z`.
    pub version: &'a str,
    /// Archive URL.
    pub uri: &'a str,
    /// Archive SHA-256 (lower-case hex).
    pub sha256: &'a str,
}

/// Renders the template for one plugin. Placeholders: `{{name}} {{version}} {{homepage}} {{short}} {{uri}}
/// {{sha256}}`, and `{{description}}` / `{{caveats}}` alone on a line (replaced by the text, each line indented
/// like the placeholder). An unknown placeholder is an error.
pub fn render_manifest(template: &str, v: &ManifestValues<'_>) -> Result<String> {
    let Some(t) = text(v.verb) else {
        bail!("no manifest texts for plugin {:?}", v.verb);
    };
    let mut out = String::new();
    for line in template.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let block = match trimmed {
            "{{description}}" => Some(t.description),
            "{{caveats}}" => Some(t.caveats),
            _ => None,
        };
        if let Some(block) = block {
            for l in block.lines() {
                out.push_str(indent);
                out.push_str(l);
                out.push('\n');
            }
            continue;
        }
        let rendered = line
            .replace("{{name}}", v.verb)
            .replace("{{version}}", v.version)
            .replace("{{homepage}}", HOMEPAGE)
            .replace("{{short}}", t.short)
            .replace("{{uri}}", v.uri)
            .replace("{{sha256}}", v.sha256);
        if let Some(start) = rendered.find("{{") {
            bail!(
                "{TEMPLATE}: unknown placeholder in line {:?} at {}",
                line,
                &rendered[start..]
            );
        }
        out.push_str(&rendered);
        out.push('\n');
    }
    Ok(out)
}

/// The `sha256:` value of a rendered manifest (the one field the template does not decide).
pub fn manifest_sha256(manifest: &str) -> Option<&str> {
    manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("sha256:"))
        .map(str::trim)
}

/// Renders the manifest of `verb` for the single target, with `sha256`.
pub fn manifest_for(template: &str, verb: &str, sha256: &str) -> Result<String> {
    let (target, _, _) = TARGETS[0];
    let uri = archive_uri(verb, target);
    render_manifest(
        template,
        &ManifestValues {
            verb,
            version: &version_tag(),
            uri: &uri,
            sha256,
        },
    )
}

/// Writes `<dir>/<verb>.yaml` atomically.
pub fn write_manifest(dir: &Path, verb: &str, manifest: &str) -> Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{verb}.yaml"));
    write_atomic(&path, manifest.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_are_reproducible_and_plain_ustar() {
        let entries = || {
            vec![
                Entry {
                    name: "a".into(),
                    mode: 0o755,
                    data: vec![1; 700],
                },
                Entry {
                    name: "LICENSE".into(),
                    mode: 0o644,
                    data: b"text".to_vec(),
                },
            ]
        };
        let one = tar_gz(&entries(), 6).unwrap();
        let two = tar_gz(&entries(), 6).unwrap();
        assert_eq!(one, two);
        // gzip header: no name flag, mtime 0, OS unix.
        assert_eq!(&one[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&one[4..8], &[0, 0, 0, 0]);
        assert_eq!(one[9], 3);
        let bad = vec![Entry {
            name: "../x".into(),
            mode: 0o644,
            data: vec![],
        }];
        assert!(tar_gz(&bad, 1).is_err());
    }

    #[test]
    fn unknown_placeholders_are_refused() {
        let err = render_manifest(
            "name: {{nmae}}\n",
            &ManifestValues {
                verb: "encrypt",
                version: "v1.0.0",
                uri: "u",
                sha256: "s",
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("{{nmae}}"), "{err}");
    }
}
