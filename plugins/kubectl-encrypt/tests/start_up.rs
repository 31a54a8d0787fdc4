#[path = "../../start_up_tests.rs"]
mod start_up_tests;

#[test]
fn usage_error_exits_1() {
    start_up_tests::usage_error_exits_1(env!("CARGO_BIN_EXE_kubectl-encrypt"));
}

/// The error names the manifest and says why once (the manifest error carries the I/O error as its source and in
/// its text; the printer must not repeat it).
#[test]
fn a_missing_manifest_says_its_cause_once() {
    let root = std::env::temp_dir().join(format!("atrest-no-such-node-{}", std::process::id()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-encrypt"))
        .args(["--dry-run", "--root"])
        .arg(&root)
        .output()
        .expect("run the plugin");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let line = stderr.lines().last().unwrap_or_default();
    let cause = "No such file or directory";
    assert!(
        line.starts_with("error: ")
            && line.contains("/etc/kubernetes/manifests/kube-apiserver.yaml")
            && line.contains("cannot read the manifest"),
        "{stderr}"
    );
    assert_eq!(line.matches(cause).count(), 1, "{stderr}");
}
