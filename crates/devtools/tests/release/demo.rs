//! `cargo xtask demo` end to end: the built `atrest-demo` walks the whole tutorial on a fresh sandbox and checks
//! every step itself; it must finish with exit 0.

use std::process::Command;

#[test]
fn the_demo_walks_the_whole_tutorial() {
    demo_passes(&[]);
}

/// `cargo xtask demo --real`: the same walk-through on the real kube-apiserver, kube-controller-manager and etcd
/// 3.6 (built by `cargo xtask k8s`, which `cargo xtask test` runs first).
#[test]
fn the_demo_walks_the_whole_tutorial_on_the_real_control_plane() {
    let stdout = demo_passes(&["--real"]);
    assert!(
        stdout.contains("the real kube-apiserver, kube-controller-manager and etcd 3.6"),
        "{stdout}"
    );
}

/// Runs `atrest-demo ARGS`, checks every step's report, and returns its stdout.
fn demo_passes(args: &[&str]) -> String {
    let demo = atrest_e2e::bins::binary("atrest-demo");
    let out = Command::new(&demo)
        .args(args)
        .output()
        .expect("run atrest-demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "atrest-demo failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    for step in [
        "stored as identity",
        "secretbox-encrypted and verified",
        "john reads marketing",
        "john is forbidden again",
    ] {
        assert!(
            stdout.contains(step),
            "the demo did not report {step:?}:\n{stdout}"
        );
    }
    assert!(stdout.contains("Demo complete"), "{stdout}");
    enable_step_reads_in_order(&stdout);
    stdout.into_owned()
}

/// Step 3 (`kubectl encrypt`) shows its output in the order it happened, each fact once: the manifest edit and
/// its backup, then the wait for the restart, then the result; the backup path appears exactly once.
fn enable_step_reads_in_order(stdout: &str) {
    let start = stdout
        .find("\n== 3. ")
        .unwrap_or_else(|| panic!("no step 3:\n{stdout}"));
    let end = stdout[start + 1..]
        .find("\n== 4. ")
        .map_or(stdout.len(), |i| start + 1 + i);
    let step = &stdout[start..end];
    let at = |what: &str| {
        step.find(what)
            .unwrap_or_else(|| panic!("step 3 does not say {what:?}:\n{step}"))
    };
    let edited = at("kube-apiserver.yaml: ");
    let backup = at("backed up ");
    let waiting = at("waiting up to ");
    let enabled = at("encryption at rest is enabled");
    assert!(
        edited < backup && backup < waiting && waiting < enabled,
        "step 3 is out of order (edit {edited}, backup {backup}, wait {waiting}, enabled {enabled}):\n{step}"
    );
    let backup_path = step[backup..]
        .lines()
        .next()
        .and_then(|l| l.rsplit(" to ").next())
        .unwrap_or_else(|| panic!("no backup path in step 3:\n{step}"))
        .trim();
    assert!(backup_path.contains("atrest-backups"), "{backup_path}");
    assert_eq!(
        step.matches(backup_path).count(),
        1,
        "step 3 prints the backup path {backup_path} more than once:\n{step}"
    );
}
