//! What every plugin's start-up (`atrest_core::cli::main`) must do, checked on the built binary: each plugin's
//! `tests/start_up.rs` includes this file and calls it with its binary.

use std::process::Command;

/// A usage error exits 1 as kubectl's do, not clap's 2 (which the verbs keep for findings), and says what is wrong
/// on stderr; `--help` exits 0 with the usage on stdout.
pub fn usage_error_exits_1(bin: &str) {
    let out = Command::new(bin)
        .arg("--no-such-flag")
        .output()
        .expect("run the plugin");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
    assert!(out.stdout.is_empty(), "usage errors go to stderr");
    let out = Command::new(bin)
        .arg("--help")
        .output()
        .expect("run the plugin");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: "));
}
