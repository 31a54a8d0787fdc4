//! `kubectl etcdcheck --via-pod` and the sandbox's `pods/exec`, end to end on one sandbox (real etcd, the real
//! kubectl the dispatcher picks for the sandbox's 1.32, the built plugin):
//! - the tutorial's `kubectl exec etcd-<node> -- etcdctl … get /registry/secrets/default/demo` (and `sh -c`)
//!   works, and a non-zero exit code comes back as kubectl's `command terminated with exit code N`;
//! - `--via-pod` reports exactly the items of the direct mode on the same data (plaintext from kubectl, aescbc and
//!   aesgcm values, one that does not decrypt), over several pages, for one object, and by pod name;
//! - a user without `pods/exec` gets the API server's Forbidden, exit 1, with the permission named.

use std::process::{Output, Stdio};
use std::time::Duration;

use atrest_e2e::bed;
use atrest_e2e::run::{Kubectl, plugin_command, seal, text, wait_for};
use atrest_sandbox::{Sandbox, SandboxOptions};
use serde_json::Value;

const K_CBC: &str = "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=";
const K_GCM: &str = "YmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmJiYmI=";
const K_OTHER: &str = "Y2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2M=";

struct Env {
    sb: Sandbox,
    tmp: tempfile::TempDir,
}

impl Env {
    /// A sandbox of `opts` once the etcd mirror pod that `--via-pod` execs in is there.
    fn up(tmp: tempfile::TempDir, opts: SandboxOptions) -> Env {
        let sb = bed::start(opts);
        let env = Env { sb, tmp };
        let pod = env.etcd_pod();
        wait_for("the etcd mirror pod", Duration::from_secs(30), || {
            env.kubectl(&["get", "pod", "-n", "kube-system", &pod])
                .status
                .success()
                .then_some(())
        });
        env
    }

    fn etcd_pod(&self) -> String {
        format!("etcd-{}", self.sb.node_name())
    }

    fn kubectl_runner(&self) -> Kubectl<'_> {
        Kubectl::new(&self.sb, self.tmp.path())
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_runner().run(args)
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        self.kubectl_runner().ok(args)
    }

    /// The plugin; `--via-pod` runs get the admin kubeconfig, direct runs the etcd client files.
    fn etcdcheck(&self, via_pod: bool, args: &[&str]) -> Output {
        let mut cmd = plugin_command("etcdcheck");
        cmd.env_remove("KUBECONFIG").env("HOME", self.tmp.path());
        if via_pod {
            cmd.arg("--kubeconfig").arg(self.sb.kubeconfig());
        } else {
            cmd.arg("--endpoints")
                .arg(self.sb.etcd_endpoint())
                .arg("--cacert")
                .arg(self.sb.etcd_ca())
                .arg("--cert")
                .arg(self.sb.etcd_cert())
                .arg("--key")
                .arg(self.sb.etcd_key());
        }
        // No node root: the --via-pod admin is not on the node.
        cmd.arg("--root").arg(self.tmp.path().join("not-the-node"));
        cmd.args(args).output().expect("run kubectl-etcdcheck")
    }

    fn put(&self, key: &str, value: Vec<u8>) {
        let sb = &self.sb;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let c = sb.etcd_client().await.unwrap();
            c.put(key, value).await.unwrap();
        });
    }
}

fn json_items(out: &Output) -> Value {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    v["items"].clone()
}

fn secret_json(ns: &str, name: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"kind":"Secret","apiVersion":"v1",
        "metadata":{"name":name,"namespace":ns,"uid":"6c0e1f3e-3f0e-4c51-9a53-0f3c1f0b7d11",
        "creationTimestamp":"2025-01-01T00:00:00Z"},"data":{"k":"dg=="},"type":"Opaque"}))
    .unwrap()
}

#[test]
fn etcdcheck_via_the_etcd_pod() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = SandboxOptions::new(tmp.path().join("node"));
    let env = Env::up(tmp, opts);
    let pod = env.etcd_pod();

    // Data: plaintext protobuf secrets written by kubectl through the API server, encrypted values as the
    // apiserver writes them, and one encrypted with a key the configuration does not have.
    env.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "demo",
        "--from-literal=password=hunter2",
    ]);
    env.kubectl_ok(&["create", "ns", "marketing"]);
    for i in 0..7 {
        env.kubectl_ok(&[
            "create",
            "secret",
            "generic",
            &format!("m{i}"),
            "-n",
            "marketing",
            "--from-literal=k=v",
        ]);
    }
    let key = |ns: &str, n: &str| format!("/registry/secrets/{ns}/{n}");
    let put_enc = |ns: &str, n: &str, kind: &str, secret: &str| {
        let k = key(ns, n);
        env.put(&k, seal(kind, "key1", secret, &k, &secret_json(ns, n)));
    };
    put_enc("vault", "cbc", "aescbc", K_CBC);
    put_enc("vault", "gcm", "aesgcm", K_GCM);
    put_enc("vault", "lost-key", "aesgcm", K_OTHER);
    let enc = env.tmp.path().join("enc.yaml");
    std::fs::write(
        &enc,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aesgcm:\n      keys:\n      - name: key1\n        secret: {K_GCM}\n  - aescbc:\n      keys:\n      - name: key1\n        secret: {K_CBC}\n  - identity: {{}}\n"
        ),
    )
    .unwrap();
    let enc = enc.to_str().unwrap();

    // 1. The tutorial's read, with the real kubectl: etcdctl with the pod's own certificate paths.
    let manifest = std::fs::read_to_string(env.sb.manifest("etcd")).unwrap();
    let endpoint = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("- --listen-client-urls="))
        .expect("etcd client URL in the manifest")
        .to_string();
    let certs = [
        "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
        "--cert=/etc/kubernetes/pki/etcd/server.crt",
        "--key=/etc/kubernetes/pki/etcd/server.key",
    ];
    let ep = format!("--endpoints={endpoint}");
    let mut args = vec!["exec", "-n", "kube-system", &pod, "--", "etcdctl", &ep];
    args.extend(certs);
    args.extend(["get", "/registry/secrets/default/demo"]);
    let out = env.kubectl_ok(&args);
    assert!(
        out.starts_with("/registry/secrets/default/demo\nk8s\0"),
        "etcdctl through kubectl exec printed {out:?}"
    );
    assert!(
        out.contains("hunter2"),
        "the plaintext value is visible: {out:?}"
    );
    // `sh -c` with a pipe, as the tutorial does, and a non-zero exit code.
    let script = format!(
        "ETCDCTL_API=3 etcdctl {ep} {} get /registry/secrets/default/demo | hexdump -C | head -1; exit 3",
        certs.join(" ")
    );
    let out = env.kubectl(&["exec", "-n", "kube-system", &pod, "--", "sh", "-c", &script]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("00000000  2f 72 65 67 69 73 74 72"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("command terminated with exit code 3"),
        "{}",
        text(&out.stderr)
    );
    // stdin reaches the command, and its end (v5's close signal) ends `cat`.
    let mut child = env
        .kubectl_runner()
        .admin_command()
        .args([
            "exec",
            "-i",
            "-n",
            "kube-system",
            &pod,
            "--",
            "sh",
            "-c",
            "cat; echo end",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"from stdin\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        text(&out.stdout),
        "from stdin\nend\n",
        "{}",
        text(&out.stderr)
    );
    // Anything but etcdctl / sh -c is refused inside the sandbox's etcd container.
    let out = env.kubectl(&["exec", "-n", "kube-system", &pod, "--", "ls", "/"]);
    assert_eq!(out.status.code(), Some(126), "{}", text(&out.stderr));

    // 2. Same items via the pod and direct: all namespaces, small pages (several execs), JSON.
    let direct = env.etcdcheck(false, &["-A", "-o", "json", "--encryption-config", enc]);
    let via = env.etcdcheck(
        true,
        &[
            "-A",
            "-o",
            "json",
            "--encryption-config",
            enc,
            "--via-pod",
            "--page-size",
            "3",
            "-v",
        ],
    );
    assert_eq!(direct.status.code(), Some(2), "{}", text(&direct.stderr));
    assert_eq!(via.status.code(), Some(2), "{}", text(&via.stderr));
    let items = json_items(&direct);
    assert_eq!(json_items(&via), items);
    let n = items.as_array().unwrap().len();
    assert!(n >= 11, "{items:#}");
    assert!(
        text(&via.stderr).matches("etcd range via pod exec").count() >= n.div_ceil(3),
        "{}",
        text(&via.stderr)
    );
    let by_name = |name: &str| {
        items
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {items:#}"))
            .clone()
    };
    assert_eq!(by_name("demo")["storage"], "identity");
    assert_eq!(by_name("demo")["encoding"], "protobuf");
    assert_eq!(by_name("cbc")["storage"], "aescbc");
    assert_eq!(by_name("cbc")["verified"], true);
    assert_eq!(by_name("gcm")["storage"], "aesgcm");
    assert_eq!(by_name("gcm")["verified"], true);
    assert_eq!(by_name("lost-key")["verified"], false);
    assert!(!text(&via.stdout).contains("hunter2") && !text(&via.stderr).contains("hunter2"));

    // Table output identical; one object by name; the pod named explicitly.
    let d = env.etcdcheck(false, &["-n", "marketing", "--encryption-config", enc]);
    let v = env.etcdcheck(
        true,
        &[
            "-n",
            "marketing",
            "--encryption-config",
            enc,
            "--via-pod",
            &pod,
        ],
    );
    assert_eq!(v.status.code(), Some(0), "{}", text(&v.stderr));
    assert_eq!(text(&v.stdout), text(&d.stdout));
    let v = env.etcdcheck(
        true,
        &[
            "gcm",
            "-n",
            "vault",
            "-o",
            "json",
            "--encryption-config",
            enc,
            "--via-pod",
        ],
    );
    let d = env.etcdcheck(
        false,
        &[
            "gcm",
            "-n",
            "vault",
            "-o",
            "json",
            "--encryption-config",
            enc,
        ],
    );
    // One object: the whole report is byte-identical (its revision is the object's mod revision).
    assert_eq!(text(&v.stdout), text(&d.stdout));
    assert_eq!(json_items(&v).as_array().unwrap().len(), 1);

    // A pod that is not there: the API server's NotFound, exit 1.
    let out = env.etcdcheck(true, &["--via-pod", "etcd-nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("Error from server (NotFound): pods \"etcd-nowhere\" not found"),
        "{}",
        text(&out.stderr)
    );

    // 3. A user who may read pods but not exec into them: Forbidden, exit 1, the permission named.
    env.kubectl_ok(&[
        "create",
        "role",
        "pod-reader",
        "-n",
        "kube-system",
        "--verb=get,list",
        "--resource=pods",
    ]);
    env.kubectl_ok(&[
        "create",
        "rolebinding",
        "pod-reader",
        "-n",
        "kube-system",
        "--role=pod-reader",
        "--user=john",
    ]);
    let out = env.etcdcheck(true, &["-A", "--via-pod", "--as", "john"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "pods \"{pod}\" is forbidden: User \"john\" cannot get resource \"pods/exec\" in API group \"\" in the namespace \"kube-system\""
        )),
        "{err}"
    );
    assert!(err.contains("pods/exec") && err.contains("create"), "{err}");
    // kubectl exec is refused too.
    let out = env.kubectl(&[
        "exec",
        "-n",
        "kube-system",
        &pod,
        "--as",
        "john",
        "--",
        "etcdctl",
        "version",
    ]);
    // kubectl 1.30+ falls back to SPDY (a POST, authorized as `create`) when the WebSocket upgrade is refused.
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("cannot create resource \"pods/exec\""),
        "{}",
        text(&out.stderr)
    );
    // With get on pods/exec granted (what a 1.32 API server authorizes a WebSocket exec with) it works.
    env.kubectl_ok(&[
        "create",
        "role",
        "etcd-exec",
        "-n",
        "kube-system",
        "--verb=get,create",
        "--resource=pods/exec",
    ]);
    env.kubectl_ok(&[
        "create",
        "rolebinding",
        "etcd-exec",
        "-n",
        "kube-system",
        "--role=etcd-exec",
        "--user=john",
    ]);
    let out = env.etcdcheck(
        true,
        &[
            "-A",
            "-o",
            "json",
            "--encryption-config",
            enc,
            "--via-pod",
            "--as",
            "john",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(json_items(&out), items);

    env.sb.shutdown();
}

/// kubectl 1.27–1.29 speak SPDY/3.1 for exec, which the sandbox does not serve: a clear BadRequest naming the
/// protocols it serves. kubectl 1.29 with its alpha WebSocket client (`KUBECTL_REMOTE_COMMAND_WEBSOCKETS=true`)
/// works.
#[test]
fn spdy_clients_get_a_clear_refusal() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = SandboxOptions::new(tmp.path().join("node"));
    opts.kube_version = "1.29".into();
    let env = Env::up(tmp, opts);
    let pod = env.etcd_pod();
    let exec = [
        "exec",
        "-n",
        "kube-system",
        &pod,
        "--",
        "etcdctl",
        "version",
    ];
    let out = env.kubectl(&exec);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains(
            "Error from server (BadRequest): unable to upgrade: the sandbox serves exec over WebSocket only (v5.channel.k8s.io, v4.channel.k8s.io), not SPDY/3.1"
        ),
        "{}",
        text(&out.stderr)
    );
    let out = env
        .kubectl_runner()
        .admin_command()
        .args(exec)
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "true")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("etcdctl version: "),
        "{}",
        text(&out.stdout)
    );
    env.sb.shutdown();
}
