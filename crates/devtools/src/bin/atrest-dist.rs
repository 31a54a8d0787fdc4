//! `atrest-dist`: the packaging half of `cargo xtask dist` (xtask builds, this packages; the archive tests call the
//! same code in `atrest_devtools::dist`).
//!
//! ```text
//! atrest-dist package --bin-dir target/release --out target/dist [--level 9] [--update-manifests]
//! atrest-dist manifests        re-render krew-manifests/*.yaml from the template, keeping each sha256
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use atrest_devtools::{dist, krew};

const USAGE: &str = "\
usage: atrest-dist package --bin-dir DIR --out DIR [--level 0-9] [--update-manifests]
       atrest-dist manifests

package            archive kubectl-<verb> from --bin-dir with its completion wrapper and LICENSE into
                   <out>/kubectl-<verb>-<target>.tar.gz, print the SHA-256s, write <out>/krew/<verb>.yaml;
                   --update-manifests also writes krew-manifests/<verb>.yaml (a release)
manifests          re-render krew-manifests/<verb>.yaml from crates/devtools/src/plugin.yaml.tmpl and the version in
                   Cargo.toml, keeping the sha256 each file carries (after editing the template or the texts)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("atrest-dist: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("package") => package(&args[1..]),
        Some("manifests") => rerender(),
        Some("-h" | "--help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => bail!("unknown command\n{USAGE}"),
    }
}

fn template() -> Result<String> {
    let path = dist::workspace_root().join(dist::TEMPLATE);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

fn package(args: &[String]) -> Result<()> {
    let mut bin_dir = None;
    let mut out = None;
    let mut level = 9;
    let mut update = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bin-dir" => bin_dir = it.next().map(PathBuf::from),
            "--out" => out = it.next().map(PathBuf::from),
            "--level" => {
                level = it
                    .next()
                    .and_then(|l| l.parse().ok())
                    .filter(|l| *l <= 9)
                    .context("--level takes 0..9")?
            }
            "--update-manifests" => update = true,
            other => bail!("unknown flag {other:?}\n{USAGE}"),
        }
    }
    let (Some(bin_dir), Some(out)) = (bin_dir, out) else {
        bail!("--bin-dir and --out are required\n{USAGE}");
    };
    let root = dist::workspace_root();
    let license = root.join("LICENSE");
    let template = template()?;
    let (target, _, _) = dist::TARGETS[0];
    println!(
        "{:<12} {:>12} {:>12}  {:<64}  archive",
        "plugin", "binary", "archive", "sha256"
    );
    for verb in dist::VERBS {
        let binary = bin_dir.join(format!("kubectl-{verb}"));
        let bin_size = std::fs::metadata(&binary)
            .with_context(|| format!("{}: build the plugins first", binary.display()))?
            .len();
        let archive = dist::package(verb, target, &binary, &license, &out, level)?;
        let manifest = dist::manifest_for(&template, verb, &archive.sha256)?;
        let errors = krew::validate(&krew::parse(&manifest)?, &format!("{verb}.yaml"));
        if !errors.is_empty() {
            bail!(
                "the rendered {verb}.yaml breaks krew's rules:\n  {}",
                errors.join("\n  ")
            );
        }
        dist::write_manifest(&out.join("krew"), verb, &manifest)?;
        if update {
            dist::write_manifest(&root.join("krew-manifests"), verb, &manifest)?;
        }
        println!(
            "{verb:<12} {bin_size:>12} {:>12}  {}  {}",
            archive.size,
            archive.sha256,
            archive.path.display()
        );
    }
    println!("manifests: {}", out.join("krew").display());
    if update {
        println!("updated: {}", root.join("krew-manifests").display());
    }
    Ok(())
}

fn rerender() -> Result<()> {
    let root = dist::workspace_root();
    let template = template()?;
    for verb in dist::VERBS {
        let path = root.join("krew-manifests").join(format!("{verb}.yaml"));
        let old = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let sha = dist::manifest_sha256(&old).with_context(|| {
            format!("{}: no sha256 line; run `cargo xtask dist`", path.display())
        })?;
        let manifest = dist::manifest_for(&template, verb, sha)?;
        dist::write_manifest(&root.join("krew-manifests"), verb, &manifest)?;
        println!("{}", path.display());
    }
    Ok(())
}
