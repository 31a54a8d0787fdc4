//! A kubeadm control-plane node as atrest reads it: the node root, kubeadm's well-known paths, and the command
//! lines of its static pods.
//!
//! **Node root.** Every path here is a node path (absolute, as written in manifests and in kubeadm's constants);
//! `--root DIR` makes the node's `/` a directory of this machine ([`under_root`]).
//!
//! **Paths.** kubeadm `cmd/kubeadm/app/constants/constants.go`: `KubernetesDir`, `ManifestsSubDirName`,
//! `DefaultCertificateDir`, `TempDir`, `AdminKubeConfigFileName`, `EtcdCACertName`,
//! `APIServerEtcdClientCertName`/`KeyName`, and `GetStaticPodFilepath` (`<manifests>/<component>.yaml`).
//!
//! **Flags.** [`CommandLine`] reads a container's `command` + `args` the way its program does:
//! - Kubernetes components (kube-apiserver, kube-controller-manager, ...) parse with spf13/pflag
//!   (`flag.go` `parseArgs`/`parseLongArg`) through component-base's `cli.Run`, which sets
//!   `WordSepNormalizeFunc` (`--etcd_servers` is `--etcd-servers`): `--name=value`; `--name value`; a bare
//!   boolean `--name` is `true`; words that are not flags are skipped and parsing goes on (interspersed); `--`
//!   ends the flags; the last occurrence of a flag wins, except for list flags (`StringSlice`, e.g.
//!   `--etcd-servers`) where every occurrence adds to the list ([`CommandLine::list`]). Which flags are booleans
//!   is known only to the program; a bare flag takes the next word as its value unless that word starts with `-`,
//!   which is pflag's rule for flags it does not know (`stripUnknownFlagValue`) and exact for every command line
//!   these components accept: they refuse positional arguments (`cmd/kube-apiserver/app/server.go` `Args`), so
//!   a word after a boolean flag cannot be there. Single-dash words are shorthands (`-v 2`).
//! - etcd parses with Go's `flag` package (`src/flag/flag.go` `parseOne`): `-name` and `--name` alike,
//!   `--name=value`, `--name value` (the next word whatever it is), a bare boolean flag ([`ETCD_BOOL_FLAGS`]) is
//!   true; parsing stops at the first word that is not a flag and at `--`; the last occurrence wins.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

/// The directory kubeadm owns (`KubernetesDir`).
pub const KUBERNETES_DIR: &str = "/etc/kubernetes";
/// The static pod manifests (`GetStaticPodDirectory`).
pub const MANIFESTS_DIR: &str = "/etc/kubernetes/manifests";
/// kube-apiserver's static pod manifest.
pub const KUBE_APISERVER_MANIFEST: &str = "/etc/kubernetes/manifests/kube-apiserver.yaml";
/// etcd's static pod manifest.
pub const ETCD_MANIFEST: &str = "/etc/kubernetes/manifests/etcd.yaml";
/// The certificates directory (`DefaultCertificateDir`).
pub const PKI_DIR: &str = "/etc/kubernetes/pki";
/// etcd's CA certificate (`EtcdCACertName`).
pub const ETCD_CA: &str = "/etc/kubernetes/pki/etcd/ca.crt";
/// kube-apiserver's etcd client certificate (`APIServerEtcdClientCertName`).
pub const APISERVER_ETCD_CLIENT_CERT: &str = "/etc/kubernetes/pki/apiserver-etcd-client.crt";
/// Its key (`APIServerEtcdClientKeyName`).
pub const APISERVER_ETCD_CLIENT_KEY: &str = "/etc/kubernetes/pki/apiserver-etcd-client.key";
/// The cluster administrator's kubeconfig (`AdminKubeConfigFileName`).
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
/// kubeadm's temporary directory (`TempDir`), where it keeps its own backups.
pub const TMP_DIR: &str = "/etc/kubernetes/tmp";

/// The file behind a node path when the node's `/` is `root` (`/etc/x` → `ROOT/etc/x`; a relative path is taken
/// from the root too).
pub fn under_root(root: &Path, node_path: impl AsRef<Path>) -> PathBuf {
    let p = node_path.as_ref();
    root.join(p.strip_prefix("/").unwrap_or(p))
}

/// Lexically cleaned path, as Go's `filepath.Clean` (`.` dropped, `..` resolved, trailing `/` dropped; `..` does
/// not climb above `/`). Leading and trailing white space is trimmed, as YAML authors leave it. `None` for an
/// empty path.
pub fn clean_path(p: impl AsRef<Path>) -> Option<PathBuf> {
    let s = p.as_ref().to_str().map(str::trim);
    let p = match s {
        Some("") => return None,
        Some(t) => Path::new(t),
        None => p.as_ref(),
    };
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

/// A container's `command` followed by its `args` (the strings; anything else is skipped), from the pod as JSON.
pub fn container_argv(container: &Value) -> Vec<String> {
    ["command", "args"]
        .iter()
        .filter_map(|k| container.get(*k).and_then(Value::as_array))
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// The same for a typed container.
pub fn typed_container_argv(container: &k8s_openapi::api::core::v1::Container) -> Vec<String> {
    let mut argv = container.command.clone().unwrap_or_default();
    argv.extend(container.args.iter().flatten().cloned());
    argv
}

/// Whether a command word names `program` (its base name: `/usr/local/bin/etcd` is `etcd`).
pub fn is_program(word: &str, program: &str) -> bool {
    word.rsplit('/').next() == Some(program)
}

/// Whether a command line runs `program` ([`is_program`] of its first word).
pub fn runs(argv: &[String], program: &str) -> bool {
    argv.first().is_some_and(|w| is_program(w, program))
}

/// The mount a container sees `path` through, as the container runtime's bind mounts do: of the
/// `(mountPath, mount)` pairs (cleaned paths) the longest mountPath that contains `path`; with the rest of
/// `path` below it. `None` when no mount covers it (the file is invisible in the container).
pub fn covering_mount<P: AsRef<Path>, T>(
    mounts: impl IntoIterator<Item = (P, T)>,
    path: &Path,
) -> Option<(T, &Path)> {
    mounts
        .into_iter()
        .filter(|(m, _)| path.starts_with(m))
        .max_by_key(|(m, _)| m.as_ref().components().count())
        .map(|(m, t)| (t, path.strip_prefix(m).unwrap_or(Path::new(""))))
}

/// etcd's boolean flags (a bare `--flag` is true and does not take the next word): etcd 3.5/3.6
/// `server/etcdmain/config.go` `BoolVar`s.
pub const ETCD_BOOL_FLAGS: &[&str] = &[
    "auto-tls",
    "client-cert-auth",
    "debug",
    "enable-grpc-gateway",
    "enable-log-rotation",
    "enable-pprof",
    "enable-v2",
    "experimental-compact-hash-check-enabled",
    "experimental-enable-distributed-tracing",
    "experimental-enable-lease-checkpoint",
    "experimental-enable-lease-checkpoint-persist",
    "experimental-initial-corrupt-check",
    "experimental-memory-mlock",
    "experimental-stop-grpc-service-on-defrag",
    "force-new-cluster",
    "help",
    "peer-auto-tls",
    "peer-client-cert-auth",
    "pre-vote",
    "socket-reuse-address",
    "socket-reuse-port",
    "strict-reconfig-check",
    "version",
];

/// Which flag parser a program uses (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// spf13/pflag with `WordSepNormalizeFunc`, no positional arguments: the Kubernetes components.
    Kubernetes,
    /// Go's `flag` package with etcd's boolean flags.
    Etcd,
}

impl Dialect {
    /// The dialect of the program a command line runs: etcd's for `etcd`, else pflag's.
    pub fn of(argv: &[String]) -> Dialect {
        if runs(argv, "etcd") {
            Dialect::Etcd
        } else {
            Dialect::Kubernetes
        }
    }
}

/// The flags of one command line, in the order given (see the module docs for the rules).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandLine {
    dialect: Option<Dialect>,
    flags: Vec<(String, String)>,
}

impl CommandLine {
    /// Parses a container's `command` + `args`: the first word is the program unless it starts with `-` (a
    /// container that leaves the program to its image's entrypoint); the program picks the [`Dialect`].
    pub fn parse(argv: &[String]) -> CommandLine {
        match argv.first() {
            Some(w) if !w.starts_with('-') => Self::parse_args(&argv[1..], Dialect::of(argv)),
            _ => Self::parse_args(argv, Dialect::Kubernetes),
        }
    }

    /// Parses the arguments after the program name with the given dialect's rules.
    pub fn parse_args(args: &[String], dialect: Dialect) -> CommandLine {
        let flags = match dialect {
            Dialect::Kubernetes => parse_pflag(args),
            Dialect::Etcd => parse_go_flag(args, ETCD_BOOL_FLAGS),
        };
        CommandLine {
            dialect: Some(dialect),
            flags,
        }
    }

    /// The value of `--name` (without dashes): its last occurrence; a bare boolean flag is `"true"`.
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = self.normalize(name);
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value given to `--name`, in order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        let name = self.normalize(name);
        self.flags
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A comma-separated list flag: the items of every occurrence for Kubernetes components (pflag's
    /// `stringSlice.Set` appends after the first), of the last one for etcd (its URL lists replace); items are
    /// trimmed, empty ones dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        let values = match self.dialect {
            Some(Dialect::Etcd) => self.get(name).into_iter().collect(),
            _ => self.get_all(name),
        };
        values
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// A boolean flag as Go's `strconv.ParseBool` reads it: `Ok(None)` when absent, `Err` with the value when
    /// it is not a boolean.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => parse_go_bool(v).map(Some).ok_or_else(|| v.to_string()),
        }
    }

    /// Every `(name, value)` in order (names as the program reads them).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.flags.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    fn normalize(&self, name: &str) -> String {
        match self.dialect {
            Some(Dialect::Etcd) => name.to_string(),
            _ => name.replace('_', "-"),
        }
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// pflag `parseArgs`, interspersed, every flag unknown (see the module docs).
fn parse_pflag(args: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    // The next word as a value, when it does not start with `-` (pflag `stripUnknownFlagValue`).
    let take_value = |i: &mut usize| -> Option<String> {
        let next = args.get(*i + 1).filter(|n| !n.starts_with('-'))?;
        *i += 1;
        Some(next.clone())
    };
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            if !body.is_empty() && !body.starts_with(['-', '=']) {
                let (name, value) = match body.split_once('=') {
                    Some((n, v)) => (n, v.to_string()),
                    None => (
                        body,
                        take_value(&mut i).unwrap_or_else(|| "true".to_string()),
                    ),
                };
                out.push((name.replace('_', "-"), value));
            }
        } else if a.len() == 2 && a.starts_with('-') {
            // `-v 2`: a shorthand without its value attached.
            take_value(&mut i);
        }
        i += 1;
    }
    out
}

/// Go `flag.Parse`: stops at the first non-flag word or `--`.
fn parse_go_flag(args: &[String], bools: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a.len() < 2 || !a.starts_with('-') || a == "--" {
            break;
        }
        let body = a.strip_prefix("--").unwrap_or(&a[1..]);
        if body.is_empty() || body.starts_with(['-', '=']) {
            break; // "bad flag syntax": etcd would not start
        }
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None if bools.contains(&body) => (body.to_string(), "true".to_string()),
            None => match args.get(i + 1) {
                Some(next) => {
                    i += 1;
                    (body.to_string(), next.clone())
                }
                None => (body.to_string(), String::new()),
            },
        };
        out.push((name, value));
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pflag_forms_equals_and_separate_value() {
        let c = CommandLine::parse(&argv(&[
            "kube-apiserver",
            "--etcd-prefix=/a",
            "--secure-port",
            "6443",
            "--empty=",
        ]));
        assert_eq!(c.get("etcd-prefix"), Some("/a"));
        assert_eq!(c.get("secure-port"), Some("6443"));
        assert_eq!(c.get("empty"), Some(""));
        assert_eq!(c.get("etcd"), None, "a prefix of a flag is not the flag");
        assert_eq!(c.get("missing"), None);
    }

    #[test]
    fn pflag_last_wins_and_lists_accumulate() {
        let c = CommandLine::parse(&argv(&[
            "/usr/local/bin/kube-apiserver",
            "--etcd-prefix",
            "/a",
            "--etcd-prefix=/b",
            "--etcd-prefixes=/c",
            "--etcd-servers=https://a:2379,https://b:2379",
            "--etcd-servers",
            "https://c:2379",
        ]));
        assert_eq!(c.get("etcd-prefix"), Some("/b"));
        assert_eq!(c.get_all("etcd-prefix"), ["/a", "/b"]);
        assert_eq!(
            c.list("etcd-servers"),
            ["https://a:2379", "https://b:2379", "https://c:2379"],
            "pflag's stringSlice appends on every repeat"
        );
        assert_eq!(c.list("missing"), Vec::<String>::new());
    }

    #[test]
    fn pflag_booleans_and_what_is_not_a_flag() {
        let c = CommandLine::parse(&argv(&[
            "kube-apiserver",
            "--allow-privileged",
            "--encryption-provider-config-automatic-reload",
            "-v",
            "2",
            "--anonymous-auth=false",
            "--profiling=junk",
            "---bad",
            "--=x",
            "--etcd_prefix=/underscore",
            "--last",
        ]));
        assert_eq!(c.get("allow-privileged"), Some("true"));
        assert_eq!(
            c.bool("encryption-provider-config-automatic-reload"),
            Ok(Some(true))
        );
        assert_eq!(c.bool("anonymous-auth"), Ok(Some(false)));
        assert_eq!(c.bool("profiling"), Err("junk".to_string()));
        assert_eq!(c.bool("missing"), Ok(None));
        assert_eq!(c.get("v"), None, "a shorthand is not the long flag");
        assert_eq!(c.get("2"), None);
        assert_eq!(c.get("-bad"), None);
        assert_eq!(c.get("etcd-prefix"), Some("/underscore"), "_ is -");
        assert_eq!(c.get("etcd_prefix"), Some("/underscore"));
        assert_eq!(c.get("last"), Some("true"));
    }

    #[test]
    fn pflag_skips_words_and_stops_at_double_dash() {
        let c = CommandLine::parse(&argv(&["kube-apiserver", "word", "--a=1", "--", "--b=2"]));
        assert_eq!(c.get("a"), Some("1"), "interspersed: parsing goes on");
        assert_eq!(c.get("b"), None, "-- ends the flags");
        // A command left to the image's entrypoint: the first word is already a flag.
        let c = CommandLine::parse(&argv(&["--a=1", "--b", "2"]));
        assert_eq!((c.get("a"), c.get("b")), (Some("1"), Some("2")));
    }

    #[test]
    fn etcd_reads_go_flag_syntax() {
        let c = CommandLine::parse(&argv(&[
            "etcd",
            "-name",
            "n1",
            "--client-cert-auth",
            "--data-dir=/d",
            "--auto-tls=false",
            "--data-dir=/e",
            "--cert-file",
            "-odd-but-a-value",
            "--listen-client-urls=https://a:2379",
            "--listen-client-urls=https://b:2379,https://c:2379",
            "positional",
            "--ignored=1",
        ]));
        assert_eq!(c.get("name"), Some("n1"), "one dash as well as two");
        assert_eq!(c.bool("client-cert-auth"), Ok(Some(true)));
        assert_eq!(c.bool("auto-tls"), Ok(Some(false)));
        assert_eq!(c.get("data-dir"), Some("/e"), "last wins");
        assert_eq!(c.get("cert-file"), Some("-odd-but-a-value"));
        assert_eq!(
            c.list("listen-client-urls"),
            ["https://b:2379", "https://c:2379"],
            "etcd's URL lists replace"
        );
        assert_eq!(
            c.get("ignored"),
            None,
            "parsing stops at the first non-flag"
        );
        let underscores = CommandLine::parse(&argv(&["etcd", "--data_dir=/x"]));
        assert_eq!(
            underscores.get("data-dir"),
            None,
            "Go's flag does not normalize"
        );
    }

    #[test]
    fn node_paths_resolve_under_the_root() {
        let root = Path::new("/tmp/node");
        assert_eq!(
            under_root(root, KUBE_APISERVER_MANIFEST),
            Path::new("/tmp/node/etc/kubernetes/manifests/kube-apiserver.yaml")
        );
        assert_eq!(under_root(root, "x/y"), Path::new("/tmp/node/x/y"));
        assert_eq!(
            under_root(Path::new("/"), ADMIN_CONF),
            Path::new(ADMIN_CONF)
        );
        assert_eq!(
            clean_path(" /etc/kubernetes/../x/./y/ "),
            Some(PathBuf::from("/etc/x/y"))
        );
        assert_eq!(clean_path("/.."), Some(PathBuf::from("/")));
        assert_eq!(clean_path(" "), None);
        let mounts = [
            ("/etc/kubernetes", 1),
            ("/etc/kubernetes/pki", 2),
            ("/etc/kubernetes/pkix", 3),
        ];
        let m =
            |p: &str| covering_mount(mounts, Path::new(p)).map(|(t, rest)| (t, rest.to_path_buf()));
        assert_eq!(
            m("/etc/kubernetes/pki/ca.crt"),
            Some((2, PathBuf::from("ca.crt")))
        );
        assert_eq!(m("/etc/kubernetes/pki"), Some((2, PathBuf::new())));
        assert_eq!(
            m("/etc/kubernetes/pk"),
            Some((1, PathBuf::from("pk"))),
            "whole components"
        );
        assert_eq!(m("/etc/other"), None);
    }

    #[test]
    fn argv_and_program() {
        let c = serde_json::json!({"command": ["/bin/etcd", "--a=1"], "args": ["--b=2", 3]});
        let v = container_argv(&c);
        assert_eq!(v, ["/bin/etcd", "--a=1", "--b=2"]);
        assert!(runs(&v, "etcd") && !runs(&v, "etc"));
        assert_eq!(Dialect::of(&v), Dialect::Etcd);
        assert_eq!(Dialect::of(&argv(&["kube-apiserver"])), Dialect::Kubernetes);
    }
}
