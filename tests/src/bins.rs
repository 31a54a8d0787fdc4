//! Locating the plugin binaries built by `cargo build --workspace --bins`, and building the Go test binaries of
//! `tests/k8s`.

use std::path::{Path, PathBuf};

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

/// A Go test binary of the `tests/k8s` module (`tests/k8s/cmd/<name>`), built with `go build` into
/// `<target>/<profile>/go/<name>` (Go's build cache makes a rebuild quick). Several test processes may ask at once:
/// each builds to a temporary name and renames it into place.
pub fn go_binary(name: &str) -> PathBuf {
    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("k8s");
    let dir = target_profile_dir().join("go");
    std::fs::create_dir_all(&dir).expect("create the go binary directory");
    let out = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let built = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&tmp)
        .arg(format!("./cmd/{name}"))
        .current_dir(&module)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `go build` for {name} (is Go installed?): {e}"));
    assert!(
        built.status.success(),
        "go build ./cmd/{name} in {} failed:\n{}",
        module.display(),
        String::from_utf8_lossy(&built.stderr)
    );
    std::fs::rename(&tmp, &out).expect("move the go binary into place");
    out
}
