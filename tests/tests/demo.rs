//! `cargo xtask demo` end to end: the built `atrest-demo` walks the whole tutorial on a fresh sandbox and checks
//! every step itself; it must finish with exit 0.

use std::process::Command;

#[test]
fn the_demo_walks_the_whole_tutorial() {
    let demo = atrest_e2e::bins::binary("atrest-demo");
    let out = Command::new(&demo).output().expect("run atrest-demo");
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
}
