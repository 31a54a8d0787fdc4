//! Running the built plugins, the real kubectl (one runner, [`Kubectl`]), etcdctl and openssl from tests: output as
//! text, success checks with the whole output in the failure message, secrets through a sandbox's API server and straight from its etcd, and
//! sealing values the way a configured kube-apiserver would.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use atrest_sandbox::Sandbox;

use crate::bins;

/// Process output as text (lossy UTF-8).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A process's exit status, stdout and stderr, for a failure message.
pub fn describe(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// Asserts that `o` succeeded (printing status, stdout and stderr otherwise) and returns its stdout.
pub fn ok(o: Output, what: &str) -> String {
    assert!(o.status.success(), "{what} failed: {}", describe(&o));
    text(&o.stdout)
}

/// `kubectl encrypt ARGS` on `sb`'s node ([`encrypt_on_node`]).
pub fn encrypt(sb: &Sandbox, home: &Path, args: &[&str]) -> Output {
    encrypt_on_node(sb.root(), home, args)
}

/// `kubectl encrypt` with its EncryptionConfiguration in `/etc/kubernetes/enc/` (a directory kubeadm does not
/// mount, so enable adds the volume), `extra` flags and a 90 s timeout; its stdout.
pub fn enable_in_enc_dir(sb: &Sandbox, home: &Path, extra: &[&str]) -> String {
    let args = [
        &["--config", "/etc/kubernetes/enc/enc.yaml"][..],
        extra,
        &["--timeout", "90s"],
    ]
    .concat();
    ok(encrypt(sb, home, &args), "enable")
}

/// Runs `kubectl-encrypt --root ROOT ARGS` with no KUBECONFIG and `home` as HOME: the plugin must find
/// `<root>/etc/kubernetes/admin.conf` by itself.
pub fn encrypt_on_node(root: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(bins::plugin("encrypt"))
        .arg("--root")
        .arg(root)
        .env_remove("KUBECONFIG")
        .env("HOME", home)
        .args(args)
        .output()
        .unwrap()
}

/// A command for the built `kubectl-<verb>` without the `ETCDCTL_*` variables that say where etcd is and with
/// which certificates (only the test's flags do) and without `RUST_LOG` (no logs among what the test reads).
pub fn plugin_command(verb: &str) -> Command {
    let mut cmd = Command::new(bins::plugin(verb));
    for var in [
        "ETCDCTL_ENDPOINTS",
        "ETCDCTL_CACERT",
        "ETCDCTL_CERT",
        "ETCDCTL_KEY",
        "RUST_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `kubectl-<verb> ARGS` from `dir` (its HOME too) with sandbox.env's variables: the kubeadm admin's
/// KUBECONFIG and the `ETCDCTL_*` endpoint and certificates, as an admin on the node who sourced it.
pub fn sandbox_plugin(sb: &Sandbox, dir: &Path, verb: &str, args: &[&str]) -> Output {
    Command::new(bins::plugin(verb))
        .args(args)
        .current_dir(dir)
        .envs(sb.env())
        .env("HOME", dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// The real `openssl ARGS` run in `dir`; panics with its output unless it succeeds; returns stdout.
pub fn openssl(dir: &Path, args: &[&str]) -> String {
    ok(
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl on PATH"),
        &format!("openssl {args:?}"),
    )
}

/// `plain` sealed for etcd key `key` by a one-provider EncryptionConfiguration for secrets (`kind`: aescbc,
/// aesgcm, secretbox) with one key named `key_name`.
pub fn seal(kind: &str, key_name: &str, secret: &str, key: &str, plain: &[u8]) -> Vec<u8> {
    let text = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - {kind}:\n      keys:\n      - name: {key_name}\n        secret: {secret}\n"
    );
    let cfg = atrest_core::config::EncryptionConfiguration::from_text(&text, "test").unwrap();
    let t = atrest_core::transform::EncryptionTransformers::from_config(&cfg).unwrap();
    t.for_resource(&atrest_core::config::GroupResource::core("secrets"))
        .write(plain, key.as_bytes())
        .unwrap()
}

/// The machine's `kubectl` may be a dispatcher (Google Cloud SDK's) that runs `kubectl.1.<minor>` from its own
/// directory for the server's minor and falls back to its built-in client otherwise (1.32 there, outside the
/// supported skew of the real control plane's 1.34); kubectl supports a server one minor away. The newest
/// versioned client beside the `kubectl` on PATH within that skew of `server_minor`, if there is one.
pub fn kubectl_within_skew(server_minor: u32) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let kubectl = std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())?
        .canonicalize()
        .ok()?;
    let sdk_bin = kubectl.parent()?;
    [server_minor, server_minor.saturating_sub(1)]
        .iter()
        .map(|m| sdk_bin.join(format!("kubectl.1.{m}")))
        .find(|p| p.is_file())
}

/// The kubectl program for talking to `sb`: a versioned client within the skew of its server's release
/// ([`kubectl_within_skew`]), else `kubectl` from PATH. Every test that runs kubectl against a sandbox starts it
/// with this, so the real control plane (`ATREST_CONTROL_PLANE=real`) gets a supported client.
pub fn kubectl_program(sb: &Sandbox) -> PathBuf {
    kubectl_within_skew(sb.kube_version().minor).unwrap_or_else(|| PathBuf::from("kubectl"))
}

/// A `kubectl` command ([`kubectl_program`]) for `sb`, with nothing set yet.
pub fn kubectl_command(sb: &Sandbox) -> Command {
    Command::new(kubectl_program(sb))
}

/// The real kubectl ([`kubectl_program`]) against a sandbox, as its kubeadm admin unless told otherwise: `home` is
/// its HOME and working directory (relative `-f` files), KUBECONFIG is unset (the kubeconfig goes in
/// `--kubeconfig`), and every command gets a fresh `--cache-dir` under `home/<node>/`, so no command sees another's
/// discovery (nor another server's: HA tests talk to several). Cheap to make: one per call is fine.
pub struct Kubectl<'a> {
    pub sb: &'a Sandbox,
    pub home: &'a Path,
}

impl<'a> Kubectl<'a> {
    pub fn new(sb: &'a Sandbox, home: &'a Path) -> Self {
        Kubectl { sb, home }
    }

    /// A `kubectl` command with this HOME and working directory (created when missing) and no KUBECONFIG, nothing
    /// else set yet.
    pub fn command(&self) -> Command {
        std::fs::create_dir_all(self.home).unwrap();
        let mut cmd = kubectl_command(self.sb);
        cmd.env_remove("KUBECONFIG")
            .env("HOME", self.home)
            .current_dir(self.home);
        cmd
    }

    fn cache_dir(&self) -> PathBuf {
        static CALLS: AtomicU64 = AtomicU64::new(0);
        let n = CALLS.fetch_add(1, Ordering::Relaxed);
        self.home
            .join(self.sb.node_name())
            .join(format!("cache-{n}"))
    }

    /// `kubectl --kubeconfig KUBECONFIG --cache-dir <fresh>` ([`command`](Self::command)), arguments to add.
    pub fn command_as(&self, kubeconfig: &Path) -> Command {
        let mut cmd = self.command();
        cmd.arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache_dir());
        cmd
    }

    /// [`command_as`](Self::command_as) the kubeadm admin.
    pub fn admin_command(&self) -> Command {
        self.command_as(&self.sb.kubeconfig())
    }

    /// Runs `kubectl --kubeconfig KUBECONFIG --cache-dir <fresh> ARGS` with `stdin` (none: closed).
    pub fn run_as(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = self.command_as(kubeconfig);
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl on PATH");
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs `kubectl ARGS` as the kubeadm admin.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_as(&self.sb.kubeconfig(), args, None)
    }

    /// Runs as the kubeadm admin; panics with the output unless it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, None)
    }

    /// [`ok`](Self::ok) with `stdin`.
    pub fn ok_with(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        ok(
            self.run_as(&self.sb.kubeconfig(), args, stdin),
            &format!("kubectl {args:?}"),
        )
    }
}

/// Runs the real `kubectl ARGS` against `sb`'s API server as its admin ([`Kubectl`]).
pub fn kubectl(sb: &Sandbox, home: &Path, args: &[&str]) -> Output {
    Kubectl::new(sb, home).run(args)
}

/// Polls `f` every 100 ms until it gives a value; panics naming `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `kubectl create secret generic NAME --from-literal=k=VALUE` in `default`.
pub fn create_secret(sb: &Sandbox, home: &Path, name: &str, value: &str) {
    create_secret_in(sb, home, "default", name, value);
}

/// `kubectl create configmap NAME --from-literal=k=v` in the default namespace.
pub fn create_configmap(sb: &Sandbox, home: &Path, name: &str) {
    ok(
        kubectl(
            sb,
            home,
            &["create", "configmap", name, "--from-literal=k=v"],
        ),
        &format!("create configmap {name}"),
    );
}

/// `kubectl create secret generic NAME -n NAMESPACE --from-literal=k=VALUE`.
pub fn create_secret_in(sb: &Sandbox, home: &Path, namespace: &str, name: &str, value: &str) {
    ok(
        kubectl(
            sb,
            home,
            &[
                "create",
                "secret",
                "generic",
                name,
                "-n",
                namespace,
                &format!("--from-literal=k={value}"),
            ],
        ),
        &format!("create secret {namespace}/{name}"),
    );
}

/// The secret's `k` in `default` as `sb`'s API server reads it back (decrypted by it).
pub fn read_secret(sb: &Sandbox, home: &Path, name: &str) -> String {
    ok(
        kubectl(
            sb,
            home,
            &[
                "get",
                "secret",
                name,
                "-o",
                "go-template={{.data.k | base64decode}}",
            ],
        ),
        &format!("get {name} through {}", sb.node_name()),
    )
}

/// The real `etcdctl ARGS` (API v3) against `sb`'s etcd with sandbox.env's endpoint and certificates; panics with
/// its stderr unless it succeeds; returns stdout.
pub fn etcdctl(sb: &Sandbox, args: &[&str]) -> Vec<u8> {
    let out = Command::new("etcdctl")
        .envs(sb.env())
        .env("ETCDCTL_API", "3")
        .args(args)
        .output()
        .expect("etcdctl on PATH");
    assert!(
        out.status.success(),
        "etcdctl {args:?} failed ({}): {}",
        out.status,
        text(&out.stderr)
    );
    out.stdout
}

/// The bytes etcd holds for secret `name` in `default`, read with the real `etcdctl`.
pub fn etcd_value(sb: &Sandbox, name: &str) -> Vec<u8> {
    etcdctl(
        sb,
        &[
            "get",
            &format!("/registry/secrets/default/{name}"),
            "--print-value-only",
        ],
    )
}
