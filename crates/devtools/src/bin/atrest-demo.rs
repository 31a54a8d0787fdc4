//! `atrest-demo [--keep] [--real]` (run by `cargo xtask demo`): the seed tutorial, step by step, with atrest's
//! verbs on a throwaway sandbox — real etcd, our API server (or, with `--real`, the real kube-apiserver,
//! kube-controller-manager and etcd 3.6 that `cargo xtask k8s` builds), the real kubectl finding the plugins on
//! PATH.
//!
//! Every step says what it runs, shows the output, and checks that it did what it says; the demo exits 0 only
//! when every check held.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use atrest_sandbox::{ControlPlane, Sandbox, SandboxOptions};
use serde_json::Value;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(bad) = args
        .iter()
        .find(|a| !["--keep", "--real"].contains(&a.as_str()))
    {
        eprintln!("atrest-demo: unknown argument {bad:?}; usage: atrest-demo [--keep] [--real]");
        return ExitCode::from(2);
    }
    let keep = args.iter().any(|a| a == "--keep");
    let control_plane = if args.iter().any(|a| a == "--real") {
        ControlPlane::Real
    } else {
        SandboxOptions::new("").control_plane
    };
    match run(keep, control_plane) {
        Ok(()) => {
            println!("\nDemo complete: every step did what it says.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\ndemo FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct Demo {
    /// The demo's working directory (kubeconfigs written here).
    root: PathBuf,
    /// The sandbox node directory (`--root` of the node-local verbs).
    node: PathBuf,
    env: Vec<(String, OsString)>,
    step: usize,
}

impl Demo {
    fn step(&mut self, title: &str) {
        self.step += 1;
        println!("\n== {}. {title}", self.step);
    }

    /// Runs `kubectl ARGS` (plugins go through kubectl's own plugin lookup), echoing the command and then its
    /// output as it happened: stdout and stderr share one pipe, so progress on stderr and results on stdout
    /// keep their order (two separate captures would print all of stdout before all of stderr).
    fn kubectl(&self, args: &[&str]) -> Result<Output> {
        println!("$ kubectl {}", args.join(" "));
        let mut cmd = Command::new("kubectl");
        cmd.args(args).current_dir(&self.root);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let (mut reader, writer) = std::io::pipe().context("creating a pipe")?;
        cmd.stdout(writer.try_clone().context("duplicating the pipe")?)
            .stderr(writer);
        let mut child = cmd.spawn().context("running kubectl (is it on PATH?)")?;
        // The parent's copies of the write end went with `cmd`'s spawn; drop `cmd` so EOF comes when kubectl exits.
        drop(cmd);
        let mut output = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut output).context("reading kubectl's output")?;
        let status = child.wait().context("waiting for kubectl")?;
        print!("{}", String::from_utf8_lossy(&output));
        std::io::Write::flush(&mut std::io::stdout())?;
        Ok(Output {
            status,
            stdout: output,
            stderr: Vec::new(),
        })
    }

    /// [`kubectl`](Self::kubectl) that must succeed; returns its output (stdout and stderr, in order).
    fn kubectl_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.kubectl(args)?;
        ensure!(
            out.status.success(),
            "`kubectl {}` failed ({})",
            args.join(" "),
            out.status
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `kubectl etcdcheck ... -o json`, parsed (quietly: the table form is what the user sees).
    fn etcdcheck_json(&self, scope: &[&str]) -> Result<Vec<Value>> {
        let root = self.node.display().to_string();
        let mut args = vec!["etcdcheck", "--root", &root, "-o", "json"];
        args.extend_from_slice(scope);
        let mut cmd = Command::new("kubectl");
        cmd.args(&args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().context("running kubectl etcdcheck")?;
        let doc: Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!("kubectl etcdcheck -o json printed no JSON ({})", out.status)
        })?;
        Ok(doc["items"].as_array().cloned().unwrap_or_default())
    }
}

fn run(keep: bool, control_plane: ControlPlane) -> Result<()> {
    let plugins = atrest_e2e::bins::target_profile_dir();
    for verb in ["etcdcheck", "encrypt", "reencrypt", "onboard"] {
        let p = plugins.join(format!("kubectl-{verb}"));
        ensure!(
            p.is_file(),
            "{} is missing: run `cargo build --workspace --bins` (cargo xtask demo does)",
            p.display()
        );
    }
    let tmp = tempfile::Builder::new().prefix("atrest-demo-").tempdir()?;
    let root = if keep {
        tmp.keep()
    } else {
        tmp.path().to_path_buf()
    };
    let node = root.join("node");

    let what = match control_plane {
        ControlPlane::Real => "the real kube-apiserver, kube-controller-manager and etcd 3.6",
        ControlPlane::Atrest => "real etcd, atrest's API server",
    };
    println!(
        "Starting a sandbox control plane under {} ({what}) ...",
        node.display()
    );
    let mut opts = SandboxOptions::new(&node);
    opts.control_plane = control_plane;
    let sandbox = Sandbox::up(opts).context("starting the sandbox")?;
    sandbox
        .wait_ready(Duration::from_secs(240))
        .context("waiting for the sandbox")?;

    let path = std::env::join_paths(std::iter::once(plugins.clone()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))?;
    let mut env: Vec<(String, OsString)> = sandbox
        .env()
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    env.push(("PATH".into(), path));
    env.push(("KUBECACHEDIR".into(), root.join("kube-cache").into()));
    env.push(("HOME".into(), root.clone().into()));
    let mut demo = Demo {
        root: root.clone(),
        node: node.clone(),
        env,
        step: 0,
    };

    let result = tutorial(&mut demo, &node);
    if keep && result.is_ok() {
        println!(
            "\nThe sandbox keeps running (--keep). In another shell:\n\n    source {}\n    kubectl get pods -n kube-system\n\nPress Ctrl-C to stop it.",
            sandbox.env_file().display()
        );
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(tokio::signal::ctrl_c())?;
    }
    sandbox.shutdown();
    result
}

fn tutorial(d: &mut Demo, node: &Path) -> Result<()> {
    let root = node.display().to_string();

    d.step("Create a secret (tutorial: kubectl create secret generic demo ...)");
    d.kubectl_ok(atrest_sandbox::tutorial::CREATE_SECRET)?;

    d.step("Look at it in etcd: stored in plaintext (tutorial: etcdctl get /registry/secrets/default/demo)");
    d.kubectl_ok(&["etcdcheck", "--root", &root, "-n", "default"])?;
    let items = d.etcdcheck_json(&["-n", "default"])?;
    let demo = items
        .iter()
        .find(|i| i["name"] == "demo")
        .context("etcdcheck does not list secret demo")?;
    ensure!(
        demo["storage"] == "identity",
        "expected demo stored as identity, etcdcheck says {}",
        demo["storage"]
    );
    println!("check: default/demo is stored as identity (plaintext)");

    d.step("Enable encryption at rest (tutorial: write enc.yaml, edit the kube-apiserver manifest, wait)");
    d.kubectl_ok(&["encrypt", "--root", &root])?;

    d.step("New secrets are encrypted; old ones are not yet");
    d.kubectl_ok(&["create", "secret", "generic", "after", "--from-literal=k=v"])?;
    let items = d.etcdcheck_json(&["-n", "default"])?;
    let after = items
        .iter()
        .find(|i| i["name"] == "after")
        .context("etcdcheck does not list secret after")?;
    ensure!(
        after["storage"] == "secretbox",
        "expected `after` stored with secretbox, got {}",
        after["storage"]
    );
    println!("check: default/after is secretbox-encrypted");

    d.step("Rewrite every secret with the new key (tutorial: kubectl get secrets -A -o json | kubectl replace -f -)");
    d.kubectl_ok(&["reencrypt"])?;

    d.step("Every secret in etcd is encrypted and decrypts");
    d.kubectl_ok(&["etcdcheck", "--root", &root, "-A"])?;
    let items = d.etcdcheck_json(&["-A"])?;
    ensure!(!items.is_empty(), "etcdcheck found no secrets");
    for i in &items {
        ensure!(
            i["storage"] == "secretbox" && i["verified"] == true,
            "{}/{} is {} (verified {})",
            i["namespace"],
            i["name"],
            i["storage"],
            i["verified"]
        );
    }
    println!(
        "check: all {} secrets are secretbox-encrypted and verified",
        items.len()
    );

    d.step("A namespace and a secret for the marketing team");
    d.kubectl_ok(&["create", "ns", "marketing"])?;
    let secret = atrest_sandbox::tutorial::create_marketing_secret("campaign=spring");
    d.kubectl_ok(&secret.iter().map(String::as_str).collect::<Vec<_>>())?;

    d.step("Onboard john with read access to marketing (tutorial: openssl, CSR, approve, Role, RoleBinding, kubeconfig)");
    let john = d.root.join("john.kubeconfig");
    let john_s = john.display().to_string();
    d.kubectl_ok(&["onboard", "john", "-n", "marketing", "--out", &john_s])?;

    d.step("john lists the secrets of marketing and is forbidden in default");
    let out = d.kubectl_ok(&["--kubeconfig", &john_s, "get", "secrets"])?;
    ensure!(
        out.contains("marketing-secret"),
        "john's `get secrets` does not list marketing-secret"
    );
    let denied = d.kubectl(&["--kubeconfig", &john_s, "get", "secrets", "-n", "default"])?;
    let err = String::from_utf8_lossy(&denied.stdout);
    ensure!(
        !denied.status.success() && err.contains("Forbidden"),
        "john was not forbidden in default"
    );
    println!("check: john reads marketing, is forbidden in default");

    d.step("Offboard john");
    d.kubectl_ok(&["onboard", "john", "-n", "marketing", "--remove"])?;
    let denied = d.kubectl(&["--kubeconfig", &john_s, "get", "secrets"])?;
    if denied.status.success() {
        bail!("john can still list secrets in marketing after --remove");
    }
    println!(
        "check: john is forbidden again (his certificate stays valid until it expires: Kubernetes cannot revoke it)"
    );
    Ok(())
}
