//! The stand-in kubelet running the real control plane (`ControlPlane::Real`): each static pod's process sees its
//! hostPath volumes at the manifest's mountPaths in a mount namespace of its own (the host untouched); the Node is
//! registered Ready with kubelet.conf's credentials and owns the mirror pods; a flag the real kube-apiserver
//! rejects leaves it crash-looping with its own message until the manifest is fixed; a container that dies is
//! restarted and its mirror pod shows the restart; nothing keeps running after shutdown. Needs Go and root.

use std::path::Path;
use std::time::Duration;

use atrest_sandbox::k8s_openapi::api::core::v1::{Node, Pod};
use atrest_sandbox::kube::api::{Api, ListParams};
use atrest_sandbox::{ApiServerState, ControlPlane, Sandbox, SandboxOptions};

use crate::support::{edit, pids, terminate, wait_for};

const READY: Duration = Duration::from_secs(240);

fn mirror_pods(sb: &Sandbox, rt: &tokio::runtime::Runtime) -> Vec<Pod> {
    rt.block_on(async {
        let c = sb.kube_client(&sb.kubeconfig()).await.unwrap();
        let api: Api<Pod> = Api::namespaced(c, "kube-system");
        api.list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
    })
}

fn pod<'a>(pods: &'a [Pod], prefix: &str) -> Option<&'a Pod> {
    pods.iter().find(|p| {
        p.metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with(prefix))
    })
}

fn restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .map_or(-1, |c| c.restart_count)
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[test]
fn the_kubelet_runs_the_real_control_plane_from_its_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = SandboxOptions::new(dir.path().join("node"));
    opts.control_plane = ControlPlane::Real;
    let sb = Sandbox::up(opts).unwrap_or_else(|e| panic!("real control plane: {e}"));
    sb.wait_ready(READY).expect("ready");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let port = sb.apiserver_url().rsplit(':').next().unwrap().to_string();
    let root = sb.root().to_path_buf();

    // The real binary runs the manifest's command line verbatim and sees the node's files at kubeadm's paths.
    let api = pids("kube-apiserver", &format!("--secure-port={port}"));
    assert_eq!(api.len(), 1, "one kube-apiserver for this node");
    let in_ns = Path::new("/proc").join(api[0].to_string()).join("root");
    assert_eq!(
        std::fs::read(in_ns.join("etc/kubernetes/pki/ca.crt")).unwrap(),
        std::fs::read(sb.ca_cert()).unwrap()
    );
    let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", api[0])).unwrap();
    let pki = mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/etc/kubernetes/pki"))
        .unwrap_or_else(|| panic!("{mountinfo}"));
    assert!(
        pki.split(' ').nth(5).unwrap().split(',').any(|o| o == "ro"),
        "readOnly mount: {pki}"
    );
    // The single-file volume of kube-controller-manager is that one file.
    let cm = pids(
        "kube-controller-manager",
        "--kubeconfig=/etc/kubernetes/controller-manager.conf",
    );
    let cm = cm.iter().find(|p| {
        std::fs::read_to_string(format!(
            "/proc/{p}/root/etc/kubernetes/controller-manager.conf"
        ))
        .ok()
            == std::fs::read_to_string(root.join("etc/kubernetes/controller-manager.conf")).ok()
    });
    let cm_pid = *cm.expect("kube-controller-manager with this node's controller-manager.conf");
    assert!(
        !std::fs::exists(format!("/proc/{cm_pid}/root/etc/kubernetes/admin.conf")).unwrap(),
        "only the mounted file is visible"
    );

    // The Node is registered Ready and owns the mirror pods, which are Running and Ready.
    let node: Node = rt.block_on(async {
        let c = sb.kube_client(&sb.kubeconfig()).await.unwrap();
        Api::<Node>::all(c).get(sb.node_name()).await.unwrap()
    });
    let node_ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    assert!(node_ready, "{node:?}");
    let uid = node.metadata.uid.clone().unwrap();
    wait_for("Ready mirror pods", Duration::from_secs(60), || {
        let pods = mirror_pods(&sb, &rt);
        ["etcd-", "kube-apiserver-", "kube-controller-manager-"]
            .iter()
            .all(|c| pod(&pods, c).is_some_and(ready))
    });
    for p in mirror_pods(&sb, &rt) {
        let owner = p.metadata.owner_references.clone().unwrap_or_default();
        assert!(
            owner.len() == 1
                && owner[0].kind == "Node"
                && owner[0].uid == uid
                && owner[0].controller == Some(true),
            "{:?}",
            p.metadata
        );
    }

    // A container that dies is restarted; its mirror pod counts the restart and shows the last termination.
    let before = restarts(pod(&mirror_pods(&sb, &rt), "kube-controller-manager-").unwrap());
    // SAFETY: kill(2) of the kube-controller-manager this test's sandbox started.
    unsafe { libc::kill(cm_pid as libc::pid_t, libc::SIGKILL) };
    wait_for(
        "the controller-manager's restart",
        Duration::from_secs(60),
        || {
            let pods = mirror_pods(&sb, &rt);
            pod(&pods, "kube-controller-manager-").is_some_and(|p| restarts(p) > before && ready(p))
        },
    );
    let p = mirror_pods(&sb, &rt);
    let cs = pod(&p, "kube-controller-manager-")
        .unwrap()
        .status
        .clone()
        .unwrap()
        .container_statuses
        .unwrap();
    let last = cs[0]
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("lastState.terminated");
    assert!(
        last.message
            .as_deref()
            .unwrap_or_default()
            .contains("kube-controller-manager exited"),
        "{last:?}"
    );
    assert!(
        cs[0]
            .state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .and_then(|r| r.started_at.as_ref())
            .is_some()
    );

    // A flag the real server rejects: crash-looping with its own message, back-off between tries, until fixed.
    edit(&sb.manifest("kube-apiserver"), |t| {
        t.replace(
            "    - --allow-privileged=true\n",
            "    - --no-such-flag=1\n",
        )
    });
    sb.nudge();
    wait_for(
        "the crash loop",
        Duration::from_secs(60),
        || matches!(sb.apiserver_state(), ApiServerState::CrashLooping { restarts, .. } if restarts >= 2),
    );
    let ApiServerState::CrashLooping { last_error, .. } = sb.apiserver_state() else {
        unreachable!()
    };
    assert!(
        last_error.contains("unknown flag: --no-such-flag"),
        "{last_error}"
    );
    let starts = sb.apiserver_starts();
    edit(&sb.manifest("kube-apiserver"), |t| {
        t.replace(
            "    - --no-such-flag=1\n",
            "    - --allow-privileged=true\n",
        )
    });
    sb.nudge();
    sb.wait_restarted(starts, READY)
        .expect("ready again after the fix");
    wait_for("the new mirror pod Ready", Duration::from_secs(60), || {
        pod(&mirror_pods(&sb, &rt), "kube-apiserver-").is_some_and(|p| {
            ready(p)
                && p.spec.as_ref().is_some_and(|s| {
                    s.containers[0]
                        .command
                        .as_ref()
                        .is_some_and(|c| c.iter().any(|a| a == "--allow-privileged=true"))
                })
        })
    });

    let etcd_flag = format!("--listen-client-urls={}", sb.etcd_endpoint());
    let cm_manifest = std::fs::read_to_string(sb.manifest("kube-controller-manager")).unwrap();
    let cm_flag = cm_manifest
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("- ")
                .filter(|f| f.starts_with("--secure-port="))
        })
        .expect("kube-controller-manager's --secure-port")
        .to_string();
    assert!(
        !pids("etcd", &etcd_flag).is_empty()
            && !pids("kube-controller-manager", &cm_flag).is_empty()
    );
    sb.shutdown();
    wait_for("every process gone", Duration::from_secs(20), || {
        pids("kube-apiserver", &format!("--secure-port={port}")).is_empty()
            && pids("kube-controller-manager", &cm_flag).is_empty()
            && pids("etcd", &etcd_flag).is_empty()
    });
}

/// `atrest-sandbox k8s` lists every binary (built, executable); `atrest-sandbox up --control-plane real` prints
/// `ready`, and sandbox.env's kubectl talks to the real release; SIGTERM stops everything.
#[test]
fn the_cli_builds_lists_and_runs_the_real_control_plane() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};

    let bin = env!("CARGO_BIN_EXE_atrest-sandbox");
    let list = Command::new(bin).arg("k8s").output().unwrap();
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let text = String::from_utf8(list.stdout).unwrap();
    let names: Vec<&str> = text.lines().map(|l| l.split('=').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "kube-apiserver",
            "kube-controller-manager",
            "etcd",
            "krew",
            "validate-krew-manifest",
            "kms-plugin"
        ]
    );
    for l in text.lines() {
        let path = Path::new(l.split_once('=').unwrap().1);
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert!(mode & 0o111 != 0, "{} is not executable", path.display());
    }
    let again = Command::new(bin).arg("k8s").output().unwrap();
    assert_eq!(
        String::from_utf8(again.stdout).unwrap(),
        text,
        "cached: the same binaries"
    );

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("node");
    let mut child = Command::new(bin)
        .args([
            "up",
            "--control-plane",
            "real",
            "--ready-timeout-seconds",
            "240",
            "--root",
        ])
        .arg(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            ". {}/sandbox.env && kubectl version -o json && kubectl get node sandbox -o jsonpath='{{.status.nodeInfo.kubeletVersion}}'",
            root.display()
        ))
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let apiserver = text.lines().next().unwrap().split_once('=').unwrap().1;
    let release = String::from_utf8(
        Command::new(apiserver)
            .arg("--version")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let release = release.trim().trim_start_matches("Kubernetes ");
    assert!(
        stdout.contains(&format!("\"gitVersion\": \"{release}\"")),
        "{stdout}"
    );
    assert!(stdout.ends_with(release), "{stdout}");

    terminate(child);
    let port = std::fs::read_to_string(root.join("etc/kubernetes/admin.conf"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("server: https://127.0.0.1:")
                .map(str::to_string)
        })
        .unwrap();
    assert!(pids("kube-apiserver", &format!("--secure-port={port}")).is_empty());
}
