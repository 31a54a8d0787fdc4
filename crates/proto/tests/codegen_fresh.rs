//! The committed generated code is what `cargo xtask codegen` produces from `proto/` today: regenerate into a
//! temporary directory and compare file by file.

#[path = "../codegen/generate.rs"]
mod generate;

use std::collections::BTreeMap;
use std::path::Path;

fn files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[test]
fn committed_generated_code_is_fresh() {
    let tmp = tempfile::tempdir().unwrap();
    generate::generate(tmp.path()).expect("code generation");
    let fresh = files(tmp.path());
    let committed = files(&generate::crate_dir().join("src/generated"));
    assert!(!fresh.is_empty(), "the generator wrote nothing");
    assert_eq!(
        committed.keys().collect::<Vec<_>>(),
        fresh.keys().collect::<Vec<_>>(),
        "src/generated holds other files than the generator writes: run `cargo xtask codegen`"
    );
    for (name, text) in &fresh {
        assert!(
            committed[name] == *text,
            "src/generated/{name} is stale (proto/ or the generator changed): run `cargo xtask codegen` and commit"
        );
    }
}
