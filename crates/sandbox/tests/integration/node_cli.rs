//! `atrest-sandbox up`: prints `ready` once /readyz answers, writes a sourceable `sandbox.env` that kubectl and
//! etcdctl use as is, stops everything on SIGTERM, and a second `up` on the same root keeps all state.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{etcd_pids, run_ok, terminate};

fn up(root: &Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_atrest-sandbox"))
        .args(["up", "--root"])
        .arg(root)
        .args(["--node", "n1", "--kube-version", "1.30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("a line on stdout");
    assert_eq!(line, "ready\n");
    child
}

fn sh(root: &Path, script: &str) -> String {
    run_ok(
        Command::new("sh")
            .arg("-c")
            .arg(format!(". {}/sandbox.env && {script}", root.display()))
            .env_remove("KUBECONFIG")
            .env("HOME", root),
    )
}

#[test]
fn up_ready_env_sigterm_and_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("node");
    let child = up(&root);
    let cache = tmp.path().join("cache");
    let c = cache.display();
    assert_eq!(
        sh(&root, &format!("kubectl --cache-dir {c}/1 create ns keep")),
        "namespace/keep created\n"
    );
    // The mirror pods appear in kube-system (the kubelet publishes them asynchronously).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 1;
    loop {
        n += 1;
        let pods = sh(
            &root,
            &format!("kubectl --cache-dir {c}/{n} get pods -n kube-system -o name"),
        );
        if [
            "pod/etcd-n1",
            "pod/kube-apiserver-n1",
            "pod/kube-controller-manager-n1",
        ]
        .iter()
        .all(|p| pods.contains(p))
        {
            break;
        }
        assert!(Instant::now() < deadline, "mirror pods missing: {pods}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // etcdctl works with the env file alone.
    assert_eq!(
        sh(&root, "etcdctl get /registry/namespaces/keep --keys-only"),
        "/registry/namespaces/keep\n\n"
    );
    terminate(child);
    assert!(
        etcd_pids(&root).is_empty(),
        "etcd left running after SIGTERM"
    );

    let child = up(&root);
    assert!(
        sh(
            &root,
            &format!("kubectl --cache-dir {c}/again get ns keep -o name")
        )
        .contains("namespace/keep")
    );
    terminate(child);
    assert!(etcd_pids(&root).is_empty());
}
