//! The kubelet's part of the sandbox on a real etcd: static pods start from kubeadm's manifests, a manifest edit
//! restarts the API server with the new flags, a broken manifest or a flag the server rejects leaves it
//! crash-looping until fixed, stop/start hold it down, state survives a restart on the same root, and nothing
//! keeps running after shutdown.

use std::time::Duration;

use atrest_sandbox::{ApiServerState, Sandbox, SandboxOptions};

use crate::support::{edit, etcd_pids, run_ok, wait_for};

fn running(sb: &Sandbox) -> Option<u16> {
    match sb.apiserver_state() {
        ApiServerState::Running { port } => Some(port),
        _ => None,
    }
}

/// Wait until the API server crash-loops with `needle` in its last error.
fn crash_looping_with(sb: &Sandbox, what: &str, needle: &str) {
    wait_for(
        what,
        Duration::from_secs(30),
        || matches!(sb.apiserver_state(), ApiServerState::CrashLooping { last_error, .. } if last_error.contains(needle)),
    );
}

#[test]
fn static_pods_follow_their_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("node");
    let sb = Sandbox::up(SandboxOptions::new(&root)).unwrap();
    wait_for("the API server", Duration::from_secs(60), || {
        running(&sb).is_some()
    });
    let port = running(&sb).unwrap();
    assert_eq!(sb.apiserver_url(), format!("https://127.0.0.1:{port}"));
    assert_eq!(
        etcd_pids(sb.root()).len(),
        1,
        "exactly one etcd for this node"
    );

    // etcd is real, TLS with client certificates, reachable with the env file's credentials.
    let env = std::fs::read_to_string(sb.env_file()).unwrap();
    for k in [
        "KUBECONFIG",
        "ETCDCTL_API",
        "ETCDCTL_ENDPOINTS",
        "ETCDCTL_CACERT",
        "ETCDCTL_CERT",
        "ETCDCTL_KEY",
    ] {
        assert!(
            env.contains(&format!("export {k}=")),
            "{k} missing from {env}"
        );
    }
    run_ok(std::process::Command::new("etcdctl").envs(sb.env()).args([
        "put",
        "/sandbox-test/k",
        "v",
    ]));
    let out = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            sb.etcd_endpoint(),
            "get",
            "/sandbox-test/k",
            "--dial-timeout=2s",
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "etcd must refuse clients without a certificate"
    );

    // A manifest edit restarts the server with the new flags.
    let starts = sb.apiserver_starts();
    let new_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    edit(&sb.manifest("kube-apiserver"), |t| {
        t.replace(
            &format!("--secure-port={port}"),
            &format!("--secure-port={new_port}"),
        )
    });
    sb.nudge();
    wait_for("the restart", Duration::from_secs(30), || {
        sb.apiserver_starts() > starts && running(&sb).is_some()
    });
    assert_eq!(running(&sb), Some(new_port));

    // A flag the server rejects: down and crash-looping, with the server's message, until fixed.
    edit(&sb.manifest("kube-apiserver"), |t| {
        t.replace(
            "    - --allow-privileged=true\n",
            "    - --no-such-flag=1\n",
        )
    });
    sb.nudge();
    wait_for("the crash loop", Duration::from_secs(30), || {
        matches!(sb.apiserver_state(), ApiServerState::CrashLooping { .. })
    });
    let ApiServerState::CrashLooping { last_error, .. } = sb.apiserver_state() else {
        unreachable!()
    };
    assert!(last_error.contains("no-such-flag"), "{last_error}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", new_port)).is_err(),
        "the old server must be down"
    );
    // A manifest that does not parse is a crash loop too.
    edit(&sb.manifest("kube-apiserver"), |t| {
        t.replace("spec:\n", "spec: [\n")
    });
    sb.nudge();
    crash_looping_with(&sb, "the parse error", "invalid pod manifest");
    edit(&sb.manifest("kube-apiserver"), |t| {
        t.replace("spec: [\n", "spec:\n").replace(
            "    - --no-such-flag=1\n",
            "    - --allow-privileged=true\n",
        )
    });
    sb.nudge();
    wait_for("recovery", Duration::from_secs(30), || {
        running(&sb) == Some(new_port)
    });

    // A file outside every mount is invisible to the server: the serving certificate moved to
    // /etc/kubernetes/tls exists on the node, but the container does not see it until that directory is mounted.
    let tls = sb.root().join("etc/kubernetes/tls");
    std::fs::create_dir_all(&tls).unwrap();
    for f in ["apiserver.crt", "apiserver.key"] {
        std::fs::copy(sb.root().join("etc/kubernetes/pki").join(f), tls.join(f)).unwrap();
    }
    edit(&sb.manifest("kube-apiserver"), |t| {
        t.replace(
            "=/etc/kubernetes/pki/apiserver.",
            "=/etc/kubernetes/tls/apiserver.",
        )
    });
    sb.nudge();
    crash_looping_with(&sb, "the invisible file", "/etc/kubernetes/tls/apiserver.");
    // ... and visible once mounted, the way the encrypt-data docs add a volume.
    edit(&sb.manifest("kube-apiserver"), |t| {
        t.replace("    volumeMounts:\n", "    volumeMounts:\n    - mountPath: /etc/kubernetes/tls\n      name: tls\n      readOnly: true\n")
            .replace("  volumes:\n", "  volumes:\n  - hostPath:\n      path: /etc/kubernetes/tls\n      type: DirectoryOrCreate\n    name: tls\n")
    });
    sb.nudge();
    wait_for("the mounted certificate", Duration::from_secs(30), || {
        running(&sb).is_some()
    });

    // stop/start hold the server down and bring it back.
    sb.stop_apiserver();
    assert_eq!(sb.apiserver_state(), ApiServerState::Stopped);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        sb.apiserver_state(),
        ApiServerState::Stopped,
        "held down across kubelet polls"
    );
    sb.start_apiserver();
    wait_for("start", Duration::from_secs(30), || running(&sb).is_some());

    let root = sb.root().to_path_buf();
    sb.shutdown();
    assert!(
        etcd_pids(&root).is_empty(),
        "etcd left running after shutdown"
    );

    // Restart on the same root: same ports, same data.
    let sb = Sandbox::up(SandboxOptions::new(&root)).unwrap();
    wait_for("the API server again", Duration::from_secs(60), || {
        running(&sb).is_some()
    });
    assert_eq!(running(&sb), Some(new_port));
    let out = std::process::Command::new("etcdctl")
        .envs(sb.env())
        .args(["get", "/sandbox-test/k", "--print-value-only"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v");
    drop(sb);
    assert!(etcd_pids(&root).is_empty(), "etcd left running after drop");
}
