//! The archives, installed the way krew installs them, then run through the real kubectl.
//!
//! The debug binaries are packaged with the same code as `cargo xtask dist` (`atrest_e2e::dist`; CI never
//! builds release binaries), the manifests rendered from the same template with those archives' SHA-256s, then
//! each archive is checked (sha256, as krew does even with `--archive`), unpacked with krew's rules (regular files
//! only, no absolute or `..` paths), placed by the manifest's `files` into `store/<name>/<version>/`, and `bin`
//! linked as `bin/kubectl-<name>`, the completion helper next to it as the caveats say. Needs
//! `cargo build --workspace --bins` first.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Output};

use atrest_e2e::{bins, dist, krew};

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The directories of the real kubectl and of `sh`: nothing else named `kubectl-*` may be on PATH.
fn system_path() -> String {
    let kubectl = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())
        .expect("kubectl on PATH");
    format!("{}:/usr/bin:/bin", kubectl.parent().unwrap().display())
}

#[test]
fn archives_install_like_krew_and_run_through_kubectl() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("dist");
    let krew_root = work.path().join("krew");
    let bin_dir = krew_root.join("bin");
    let template = std::fs::read_to_string(dist::workspace_root().join(dist::TEMPLATE)).unwrap();
    let license = dist::workspace_root().join("LICENSE");
    let (target, os, arch) = dist::TARGETS[0];

    for verb in dist::VERBS {
        let archive = dist::package(verb, target, &bins::plugin(verb), &license, &out, 1).unwrap();
        let manifest_text = dist::manifest_for(&template, verb, &archive.sha256).unwrap();
        let plugin = krew::parse(&manifest_text).unwrap();
        let errs = krew::validate(&plugin, &format!("{verb}.yaml"));
        assert!(errs.is_empty(), "{verb}: {errs:?}");

        // krew picks the first platform matching the host, then checks the archive's sha256.
        let platform = plugin
            .spec
            .platforms
            .iter()
            .find(|p| {
                p.selector
                    .as_ref()
                    .is_some_and(|s| krew::selector_matches(s, os, arch))
            })
            .expect("a platform for linux/amd64");
        let bytes = std::fs::read(&archive.path).unwrap();
        assert_eq!(
            dist::sha256_hex(&bytes),
            platform.sha256,
            "{verb}: checksum"
        );

        let staging = work.path().join(format!("staging-{verb}"));
        let files = krew::extract(&archive.path, &staging).unwrap();
        let mut names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "LICENSE".to_string(),
                format!("kubectl-{verb}"),
                format!("kubectl_complete-{verb}")
            ],
            "flat archive"
        );
        let store = krew_root
            .join("store")
            .join(&plugin.metadata.name)
            .join(&plugin.spec.version);
        let link = krew::install(&plugin, platform, &staging, &store, &bin_dir).unwrap();
        assert_eq!(link, bin_dir.join(format!("kubectl-{verb}")));
        // The caveats' step for completion.
        let helper = format!("kubectl_complete-{verb}");
        symlink(store.join(&helper), bin_dir.join(&helper)).unwrap();
        assert!(
            plugin
                .spec
                .caveats
                .as_deref()
                .unwrap_or("")
                .contains(&helper),
            "caveats tell how to link {helper}"
        );
    }

    let path = format!("{}:{}", bin_dir.display(), system_path());
    let kubectl = |args: &[&str]| -> Output {
        Command::new("kubectl")
            .args(args)
            .env("PATH", &path)
            .env("HOME", work.path())
            .env("KUBECONFIG", work.path().join("no-kubeconfig"))
            .output()
            .expect("run kubectl")
    };

    let listed = kubectl(&["plugin", "list"]);
    assert!(listed.status.success(), "{}", text(&listed));
    let stdout = String::from_utf8_lossy(&listed.stdout);
    for verb in dist::VERBS {
        assert!(
            stdout.contains(&format!("{}/kubectl-{verb}\n", bin_dir.display())),
            "{verb} not listed: {}",
            text(&listed)
        );
    }
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(
        !stderr.to_lowercase().contains("warning"),
        "{}",
        text(&listed)
    );

    // Every verb's help runs through kubectl and has examples.
    for verb in dist::VERBS {
        let help = kubectl(&[verb, "--help"]);
        assert!(help.status.success(), "{}", text(&help));
        let s = String::from_utf8_lossy(&help.stdout);
        assert!(
            s.contains("Examples:"),
            "kubectl {verb} --help has no examples:\n{s}"
        );
        assert!(s.contains(&format!("kubectl {verb}")), "{s}");
    }

    // Completion through the installed wrapper (no cluster needed for subcommands and flags).
    let done = kubectl(&["__complete", "encrypt", ""]);
    assert!(done.status.success(), "{}", text(&done));
    let s = String::from_utf8_lossy(&done.stdout);
    for sub in ["enable", "status", "rotate", "disable"] {
        assert!(
            s.lines().any(|l| l.starts_with(&format!("{sub}\t"))),
            "{sub}: {s}"
        );
    }
    assert!(s.ends_with(":4\n"), "{s}");
}

/// What krew refuses, refused: symlinks, hard links, `..` and absolute paths, non-gzip archives; and a
/// manifest whose `files` match nothing or install no license.
#[test]
fn krew_rules_refuse_unsafe_archives() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::write(dir.join("f"), "x").unwrap();
    symlink("f", dir.join("link")).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub").join("g"), "y").unwrap();

    let tar = |name: &str, args: &[&str]| {
        let archive = dir.join(name);
        let st = Command::new("tar")
            .arg("-czPf")
            .arg(&archive)
            .args(args)
            .current_dir(dir.join("sub"))
            .status()
            .unwrap();
        assert!(st.success());
        archive
    };
    let cases = [
        (
            "symlink.tar.gz",
            tar("symlink.tar.gz", &["-C", dir.to_str().unwrap(), "link"]),
            "file type",
        ),
        ("dotdot.tar.gz", tar("dotdot.tar.gz", &["../f"]), "escapes"),
        (
            "absolute.tar.gz",
            tar("absolute.tar.gz", &[dir.join("f").to_str().unwrap()]),
            "escapes",
        ),
        (
            "hardlink.tar.gz",
            tar("hardlink.tar.gz", &["g", "g"]),
            "file type",
        ),
    ];
    for (what, archive, expect) in cases {
        let err = krew::extract(&archive, &dir.join(format!("x-{what}"))).unwrap_err();
        assert!(format!("{err:#}").contains(expect), "{what}: {err:#}");
    }
    std::fs::write(dir.join("plain.tar"), b"not gzip").unwrap();
    assert!(krew::extract(&dir.join("plain.tar"), &dir.join("x-plain")).is_err());

    // files: a from that matches nothing; no license.
    let manifest = |files: &str| {
        krew::parse(&format!(
            "apiVersion: {}\nkind: Plugin\nmetadata:\n  name: demo\nspec:\n  version: v1.0.0\n  shortDescription: d\n  platforms:\n  - selector:\n      matchLabels: {{os: linux, arch: amd64}}\n    uri: u\n    sha256: {}\n    bin: kubectl-demo\n    files:\n{files}",
            krew::API_VERSION,
            "0".repeat(64)
        ))
        .unwrap()
    };
    let staging = |n: &str| {
        let s = dir.join(n);
        std::fs::create_dir(&s).unwrap();
        std::fs::write(s.join("kubectl-demo"), "#!/bin/sh\n").unwrap();
        s
    };
    let p = manifest("    - {from: kubectl-demo, to: .}\n    - {from: LICENSE, to: .}\n");
    let err = krew::install(
        &p,
        &p.spec.platforms[0],
        &staging("s1"),
        &dir.join("st1"),
        &dir.join("b1"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("matches nothing"), "{err}");
    let p = manifest("    - {from: kubectl-demo, to: .}\n");
    let err = krew::install(
        &p,
        &p.spec.platforms[0],
        &staging("s2"),
        &dir.join("st2"),
        &dir.join("b2"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("license"), "{err}");
    assert!(!Path::new(&dir.join("b2").join("kubectl-demo")).exists());
}
