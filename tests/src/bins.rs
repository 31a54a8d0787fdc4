//! Locating the plugin binaries built by `cargo build --workspace --bins`, and building the Go test binaries of
//! `tests/k8s`.

use std::path::PathBuf;

/// The target profile directory the running test binary lives in (`target/debug`, `target/release`,
/// or `$CARGO_TARGET_DIR/<profile>`).
pub fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable path");
    // Test binaries live in `<target>/<profile>/deps/`.
    let deps = exe.parent().expect("test binary has a parent directory");
    let from_exe = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().unwrap_or(deps).to_path_buf()
    } else {
        deps.to_path_buf()
    };
    match std::env::var_os("CARGO_TARGET_DIR") {
        // Keep the profile the test was built with, under the configured target directory.
        Some(dir) if !from_exe.starts_with(&dir) => {
            let profile = from_exe
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| "debug".into());
            PathBuf::from(dir).join(profile)
        }
        _ => from_exe,
    }
}

/// Path of a built binary (`kubectl-etcdcheck`, `atrest-sandbox`, ...). Panics with how to build it
/// when it is missing.
pub fn binary(name: &str) -> PathBuf {
    let path = target_profile_dir().join(name);
    if !path.is_file() {
        panic!(
            "{} not found: run `cargo build --workspace --bins` first (`cargo xtask test` does)",
            path.display()
        );
    }
    path
}

/// Path of a built kubectl plugin, e.g. `plugin("etcdcheck")` → `.../kubectl-etcdcheck`.
pub fn plugin(verb: &str) -> PathBuf {
    binary(&format!("kubectl-{verb}"))
}
