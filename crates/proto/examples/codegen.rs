//! `cargo xtask codegen` runs this: regenerates `src/generated/*.rs` from `proto/` (see `codegen/generate.rs`).
//! An argument writes to that directory instead.

#[path = "../codegen/generate.rs"]
mod generate;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| generate::crate_dir().join("src/generated"));
    std::fs::create_dir_all(&out)?;
    generate::generate(&out)?;
    println!("generated {}", out.display());
    Ok(())
}
