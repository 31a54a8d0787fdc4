//! End-to-end: shell completion of the plugins through the real kubectl (`kubectl __complete <verb> ...`, which
//! runs `kubectl_complete-<verb>` from PATH) against the sandbox (real etcd, our API server).
//!
//! encrypt, reencrypt and etcdcheck complete through the one-line wrapper shipped in the krew archives; onboard
//! through a `kubectl_complete-onboard` symlink to the binary itself (argv\[0\] dispatch). Needs
//! `cargo build --workspace --bins` first.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::{Command, Output};

use crate::system_path;
use atrest_devtools::dist;
use atrest_e2e::bed;
use atrest_e2e::bins;
use atrest_e2e::run::{Kubectl, describe, ok};
use atrest_sandbox::Sandbox;

struct Env {
    sb: Sandbox,
    dir: tempfile::TempDir,
    path: String,
}

impl Env {
    fn up() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let sb = bed::node(dir.path());
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        for verb in dist::VERBS {
            symlink(bins::plugin(verb), bin.join(format!("kubectl-{verb}"))).unwrap();
            let helper = bin.join(format!("kubectl_complete-{verb}"));
            if verb == "onboard" {
                symlink(bins::plugin(verb), &helper).unwrap();
            } else {
                std::fs::write(&helper, dist::completion_wrapper(verb)).unwrap();
                std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        let path = format!("{}:{}", bin.display(), system_path());
        Env { sb, dir, path }
    }

    /// The real kubectl for the sandbox ([`Kubectl`]) with the plugins' PATH and `kubeconfig` in KUBECONFIG (which
    /// the plugins read too when they complete live values).
    fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        Kubectl::new(&self.sb, self.dir.path())
            .command()
            .args(args)
            .env("PATH", &self.path)
            .env("KUBECONFIG", kubeconfig)
            .output()
            .expect("run kubectl")
    }

    fn admin(&self, args: &[&str]) -> String {
        ok(
            self.kubectl(&self.sb.kubeconfig(), args),
            &format!("kubectl {args:?}"),
        )
    }

    /// `kubectl __complete ARGS...` as the admin: (candidates, directive line).
    fn complete(&self, args: &[&str]) -> (Vec<String>, String) {
        self.complete_with(&self.sb.kubeconfig(), args)
    }

    fn complete_with(&self, kubeconfig: &Path, args: &[&str]) -> (Vec<String>, String) {
        let mut full = vec!["__complete"];
        full.extend_from_slice(args);
        let out = self.kubectl(kubeconfig, &full);
        assert!(out.status.success(), "kubectl {full:?}: {}", describe(&out));
        parse(&String::from_utf8(out.stdout).unwrap())
    }
}

/// Candidates (without descriptions) and the last line.
fn parse(stdout: &str) -> (Vec<String>, String) {
    let mut lines: Vec<&str> = stdout.lines().filter(|l| !l.is_empty()).collect();
    let directive = lines.pop().unwrap_or("").to_string();
    let values = lines
        .iter()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    (values, directive)
}

fn has(values: &[String], want: &[&str]) {
    for w in want {
        assert!(values.iter().any(|v| v == w), "{w} missing from {values:?}");
    }
}

#[test]
fn plugins_complete_through_the_real_kubectl() {
    let env = Env::up();
    env.admin(&["create", "namespace", "marketing"]);
    env.admin(&["create", "namespace", "sales"]);
    for (namespace, name) in [
        ("marketing", "db-pass"),
        ("marketing", "api-token"),
        ("sales", "other"),
    ] {
        atrest_e2e::run::create_secret_in(&env.sb, env.dir.path(), namespace, name, "v");
    }

    // The plugin names themselves complete at kubectl's top level.
    let (top, _) = env.complete(&["e"]);
    has(&top, &["encrypt", "etcdcheck"]);

    // Subcommands, derived from the clap command.
    let (subs, directive) = env.complete(&["encrypt", ""]);
    has(&subs, &["enable", "status", "rotate", "disable"]);
    assert_eq!(directive, ":4");
    assert!(!subs.iter().any(|s| s.starts_with('-')), "{subs:?}");
    let (subs, _) = env.complete(&["encrypt", "ro"]);
    assert_eq!(subs, ["rotate"]);

    // Flags, including kubectl's flag set (kubectl clears its own for plugins).
    let (flags, directive) = env.complete(&["encrypt", "--"]);
    has(
        &flags,
        &[
            "--provider",
            "--kubeconfig",
            "--context",
            "--cluster",
            "--user",
            "--namespace",
            "--as",
            "--as-group",
            "--request-timeout",
        ],
    );
    assert_eq!(directive, ":4");
    let (flags, _) = env.complete(&["reencrypt", "--conc"]);
    assert_eq!(flags, ["--concurrency"]);
    let (flags, _) = env.complete(&["encrypt", "rotate", "--ph"]);
    assert_eq!(flags, ["--phase"]);

    // Enumerated values.
    let (providers, _) = env.complete(&["encrypt", "--provider", ""]);
    has(&providers, &["secretbox", "aesgcm", "aescbc", "kms"]);

    // Namespaces from the cluster, for every plugin, both flag spellings.
    let (nss, directive) = env.complete(&["encrypt", "-n", ""]);
    has(&nss, &["default", "kube-system", "marketing", "sales"]);
    assert_eq!(directive, ":4");
    let (nss, _) = env.complete(&["reencrypt", "--namespace", "ma"]);
    assert_eq!(nss, ["marketing"]);
    let (nss, _) = env.complete(&["onboard", "--namespace=s"]);
    assert_eq!(nss, ["--namespace=sales"]);
    let (nss, _) = env.complete(&["etcdcheck", "-n", "mark"]);
    assert_eq!(nss, ["marketing"]);

    // Object names: etcdcheck NAME in the namespace given.
    let (names, _) = env.complete(&["etcdcheck", "-n", "marketing", ""]);
    has(&names, &["db-pass", "api-token"]);
    assert!(!names.iter().any(|n| n == "other"), "{names:?}");
    let (names, _) = env.complete(&["etcdcheck", "-n", "marketing", "db"]);
    assert_eq!(names, ["db-pass"]);

    // Resources for reencrypt, from discovery.
    let (resources, _) = env.complete(&["reencrypt", ""]);
    has(&resources, &["secrets", "configmaps"]);
    let (resources, _) = env.complete(&["reencrypt", "secrets", "config"]);
    assert_eq!(resources, ["configmaps"]);

    // Kubeconfig names.
    let kc = std::fs::read_to_string(env.sb.kubeconfig()).unwrap();
    let context = kc
        .lines()
        .find_map(|l| l.trim().strip_prefix("current-context:"))
        .map(|c| c.trim().trim_matches('"').to_string())
        .expect("sandbox kubeconfig has a current-context");
    let (contexts, _) = env.complete(&["onboard", "--context", ""]);
    has(&contexts, &[&context]);
    let (users, _) = env.complete(&["encrypt", "--user", ""]);
    assert!(!users.is_empty(), "kubeconfig users");
    let (clusters, _) = env.complete(&["reencrypt", "--cluster", ""]);
    assert!(!clusters.is_empty(), "kubeconfig clusters");

    // Users `onboard --list` knows, for `onboard --remove <TAB>`.
    let (before, directive) = env.complete(&["onboard", "--remove", ""]);
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(directive, ":4");
    let out = Command::new(bins::plugin("onboard"))
        .args(["john", "-n", "marketing", "--signer", "local", "--ca-cert"])
        .arg(env.sb.ca_cert())
        .arg("--ca-key")
        .arg(env.sb.ca_key())
        .arg("--out")
        .arg(env.dir.path().join("john.kubeconfig"))
        .env("KUBECONFIG", env.sb.kubeconfig())
        .env("HOME", env.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "onboard john: {}", describe(&out));
    let (users, _) = env.complete(&["onboard", "--remove", ""]);
    assert_eq!(users, ["john"]);
    let (users, _) = env.complete(&["onboard", "-n", "marketing", "--remove", "j"]);
    assert_eq!(users, ["john"]);

    // Failures print no text, only the directive: an unreachable cluster, and a kubeconfig that does not parse.
    let dead = env.dir.path().join("dead.kubeconfig");
    std::fs::write(
        &dead,
        "apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters:\n- name: x\n  cluster: {server: 'https://127.0.0.1:1'}\nusers:\n- name: x\n  user: {}\ncontexts:\n- name: x\n  context: {cluster: x, user: x}\n",
    )
    .unwrap();
    let out = env.kubectl(&dead, &["__complete", "encrypt", "-n", ""]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        ":4\n",
        "{}",
        describe(&out)
    );
    let broken = env.dir.path().join("broken.kubeconfig");
    std::fs::write(&broken, "clusters: [").unwrap();
    let out = env.kubectl(&broken, &["__complete", "onboard", "--context", ""]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        ":4\n",
        "{}",
        describe(&out)
    );
    // The plugin itself, without kubectl: same protocol, nothing on stderr.
    let out = Command::new(bins::plugin("reencrypt"))
        .args(["__complete", "-n", ""])
        .env("KUBECONFIG", &dead)
        .env("HOME", env.dir.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), ":4\n");
    assert!(out.stderr.is_empty(), "{}", describe(&out));
}
