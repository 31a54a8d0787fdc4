//! The tests of what atrest-devtools ships, in one binary: the checked-in krew manifests, the release archives
//! installed by the real krew, shell completion through the wrapper the archives carry, and the demo. They drive
//! the built plugins (`cargo build --workspace --bins` first; `cargo xtask test` does).

mod completion;
mod demo;
mod krew_archive;
mod krew_manifests;

use std::path::Path;

/// The directories of the real kubectl and of `sh`: nothing else named `kubectl-*` may be on PATH.
fn system_path() -> String {
    let kubectl = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
        .expect("kubectl on PATH");
    format!("{}:/usr/bin:/bin", kubectl.parent().unwrap().display())
}

/// The names of the entries of `dir`, sorted.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
