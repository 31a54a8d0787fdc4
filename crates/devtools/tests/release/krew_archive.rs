//! The release archives installed offline by the real krew, then run through the real kubectl.
//!
//! The debug binaries are packaged with the same code as `cargo xtask dist` (`atrest_devtools::dist`; CI never
//! builds release binaries) and the manifests rendered from the same template with those archives' SHA-256s.
//! krew itself (v0.4.3, built from its Go module by `atrest_sandbox::k8s`, on PATH as `kubectl-krew`) installs
//! each one with `kubectl krew install --manifest=… --archive=…` into a `KREW_ROOT` of the test's own: it checks
//! the archive's sha256 against the manifest, unpacks it by its rules and links `bin/kubectl-<verb>`. Then the
//! verbs run through kubectl from krew's bin dir (help, plugin list, completion through the linked
//! `kubectl_complete-<verb>` the caveats ask for), and `kubectl krew uninstall` removes them again. The
//! manifests are also checked by krew's own `validate-krew-manifest`. Needs `cargo build --workspace --bins`.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{file_names, system_path};
use atrest_devtools::dist;
use atrest_e2e::bins;
use atrest_e2e::run::describe;

/// krew's binaries from the real-control-plane cache (built on first use).
fn krew_binaries() -> atrest_sandbox::k8s::K8sBinaries {
    atrest_sandbox::k8s::ensure().expect("build krew from tests/k8s/krew (needs Go)")
}

/// Runs kubectl with krew's bin dir and a directory holding only `kubectl-krew` on PATH, in a home and
/// KREW_ROOT of the test's own, without a cluster.
struct Kubectl {
    path: String,
    home: PathBuf,
    krew_root: PathBuf,
}

impl Kubectl {
    fn new(work: &Path, krew: &Path) -> Kubectl {
        let krew_root = work.join("krew-root");
        let krew_dir = work.join("krew-tool");
        std::fs::create_dir_all(&krew_dir).unwrap();
        symlink(krew, krew_dir.join("kubectl-krew")).unwrap();
        Kubectl {
            path: format!(
                "{}:{}:{}",
                krew_root.join("bin").display(),
                krew_dir.display(),
                system_path()
            ),
            home: work.to_path_buf(),
            krew_root,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .args(args)
            .env("PATH", &self.path)
            .env("HOME", &self.home)
            .env("KREW_ROOT", &self.krew_root)
            .env("KREW_NO_UPGRADE_CHECK", "1")
            .env("KUBECONFIG", self.home.join("no-kubeconfig"))
            .output()
            .expect("run kubectl")
    }

    /// krew's default index, offline: a clone of a local git repository holding our manifests under
    /// `plugins/` (the layout of krew-index), as an air-gapped mirror of the index would be. `krew list` and
    /// `krew search` need an initialized index; `krew install --manifest` does not read it.
    fn local_index(&self, packaged: &[(&str, PathBuf, PathBuf)]) {
        let repo = self.home.join("index-repo");
        std::fs::create_dir_all(repo.join("plugins")).unwrap();
        for (verb, manifest, _) in packaged {
            std::fs::copy(manifest, repo.join("plugins").join(format!("{verb}.yaml"))).unwrap();
        }
        let git = |dir: &Path, args: &[&str]| {
            let out = Command::new("git")
                .args([
                    "-c",
                    "user.name=atrest",
                    "-c",
                    "user.email=atrest@localhost",
                ])
                .args(args)
                .current_dir(dir)
                .env("HOME", &self.home)
                .output()
                .expect("run git");
            assert!(out.status.success(), "git {args:?}: {}", describe(&out));
        };
        git(&repo, &["init", "-q"]);
        git(&repo, &["add", "plugins"]);
        git(&repo, &["commit", "-q", "-m", "atrest plugins"]);
        let index = self.krew_root.join("index");
        std::fs::create_dir_all(&index).unwrap();
        git(&index, &["clone", "-q", repo.to_str().unwrap(), "default"]);
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "kubectl {args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Packages every verb's debug binary and writes its manifest; `(verb, manifest, archive)`.
fn package_all(out: &Path) -> Vec<(&'static str, PathBuf, PathBuf)> {
    let template = std::fs::read_to_string(dist::workspace_root().join(dist::TEMPLATE)).unwrap();
    let license = dist::workspace_root().join("LICENSE");
    let (target, _, _) = dist::TARGETS[0];
    dist::VERBS
        .iter()
        .map(|&verb| {
            let archive =
                dist::package(verb, target, &bins::plugin(verb), &license, out, 1).unwrap();
            let manifest = dist::manifest_for(&template, verb, &archive.sha256).unwrap();
            let path = dist::write_manifest(&out.join("manifests"), verb, &manifest).unwrap();
            (verb, path, archive.path)
        })
        .collect()
}

#[test]
fn real_krew_installs_the_archives_and_kubectl_runs_them() {
    let bins = krew_binaries();
    let work = tempfile::tempdir().unwrap();
    let kubectl = Kubectl::new(work.path(), &bins.path("krew"));
    let version = kubectl.ok(&["krew", "version"]);
    assert!(version.contains("v0.4.3"), "{version}");

    let packaged = package_all(&work.path().join("dist"));
    kubectl.local_index(&packaged);
    for (verb, manifest, archive) in packaged {
        let out = kubectl.run(&[
            "krew",
            "install",
            &format!("--manifest={}", manifest.display()),
            &format!("--archive={}", archive.display()),
        ]);
        assert!(
            out.status.success(),
            "krew install {verb}: {}",
            describe(&out)
        );
        let said = String::from_utf8_lossy(&out.stderr);
        // krew prints the manifest's caveats after installing: they tell how to link the completion helper.
        let helper = format!("kubectl_complete-{verb}");
        assert!(said.contains(&helper), "caveats name {helper}: {said}");
        let store = kubectl.krew_root.join("store").join(verb);
        let installed: Vec<PathBuf> = std::fs::read_dir(&store)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(installed.len(), 1, "{installed:?}");
        let files = file_names(&installed[0]);
        assert_eq!(
            files,
            [
                "LICENSE".to_string(),
                format!("kubectl-{verb}"),
                helper.clone()
            ],
            "flat archive, installed as the manifest's files say"
        );
        // The caveats' step for completion.
        symlink(
            installed[0].join(&helper),
            kubectl.krew_root.join("bin").join(&helper),
        )
        .unwrap();
    }

    // Installed from a manifest file, krew records them as from the `detached` index.
    let listed = kubectl.ok(&["krew", "list"]);
    for verb in dist::VERBS {
        assert!(
            listed
                .lines()
                .any(|l| l.trim() == format!("detached/{verb}")),
            "krew list lacks {verb}: {listed}"
        );
    }
    // The index knows them by the manifests' short descriptions (krew search cuts them to a column).
    let found = kubectl.ok(&["krew", "search", "encrypt"]);
    let about: String = dist::text("encrypt")
        .unwrap()
        .short
        .chars()
        .take(40)
        .collect();
    assert!(
        found
            .lines()
            .any(|l| l.starts_with("encrypt ") && l.contains(&about)),
        "krew search: {found}"
    );
    let plugins = kubectl.run(&["plugin", "list"]);
    assert!(plugins.status.success(), "{}", describe(&plugins));
    let stdout = String::from_utf8_lossy(&plugins.stdout);
    let bin_dir = kubectl.krew_root.join("bin");
    for verb in dist::VERBS {
        assert!(
            stdout.contains(&format!("{}/kubectl-{verb}\n", bin_dir.display())),
            "{verb} not listed: {}",
            describe(&plugins)
        );
    }
    assert!(
        !String::from_utf8_lossy(&plugins.stderr)
            .to_lowercase()
            .contains("warning"),
        "{}",
        describe(&plugins)
    );

    // Every verb's help runs through kubectl and has examples.
    for verb in dist::VERBS {
        let s = kubectl.ok(&[verb, "--help"]);
        assert!(
            s.contains("Examples:"),
            "kubectl {verb} --help has no examples:\n{s}"
        );
        assert!(s.contains(&format!("kubectl {verb}")), "{s}");
    }

    // Completion through the linked helper (no cluster needed for subcommands and flags).
    let s = kubectl.ok(&["__complete", "encrypt", ""]);
    for sub in ["enable", "status", "rotate", "disable"] {
        assert!(
            s.lines().any(|l| l.starts_with(&format!("{sub}\t"))),
            "{sub}: {s}"
        );
    }
    assert!(s.ends_with(":4\n"), "{s}");
    let s = kubectl.ok(&["__complete", "reencrypt", "--"]);
    assert!(s.lines().any(|l| l.starts_with("--concurrency")), "{s}");

    // Uninstall: krew removes its link and store; the helper link the caveats asked for is the user's to
    // remove, as they say (krew refuses to work with links in its bin dir and no plugin installed).
    for verb in dist::VERBS {
        std::fs::remove_file(bin_dir.join(format!("kubectl_complete-{verb}"))).unwrap();
        kubectl.ok(&["krew", "uninstall", verb]);
        assert!(
            !bin_dir.join(format!("kubectl-{verb}")).exists(),
            "krew uninstall {verb} left its link"
        );
        assert!(!kubectl.krew_root.join("store").join(verb).exists());
    }
    let listed = kubectl.ok(&["krew", "list"]);
    for verb in dist::VERBS {
        assert!(!listed.contains(verb), "{listed}");
    }
}

/// krew refuses an archive whose sha256 is not the manifest's, and installs nothing.
#[test]
fn real_krew_refuses_an_archive_that_does_not_match_its_manifest() {
    let bins = krew_binaries();
    let work = tempfile::tempdir().unwrap();
    let kubectl = Kubectl::new(work.path(), &bins.path("krew"));
    let packaged = package_all(&work.path().join("dist"));
    let (verb, manifest, _) = &packaged[0];
    let (_, _, other_archive) = &packaged[1];
    let out = kubectl.run(&[
        "krew",
        "install",
        &format!("--manifest={}", manifest.display()),
        &format!("--archive={}", other_archive.display()),
    ]);
    assert!(!out.status.success(), "{}", describe(&out));
    let said = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        said.contains("checksum") || said.contains("sha256"),
        "{}",
        describe(&out)
    );
    assert!(
        !kubectl
            .krew_root
            .join("bin")
            .join(format!("kubectl-{verb}"))
            .exists()
    );
}

/// The checked-in manifests pass krew's own validator (`validate-krew-manifest`, from krew's module).
#[test]
fn real_krew_validates_the_checked_in_manifests() {
    let bins = krew_binaries();
    let validator = bins.path("validate-krew-manifest");
    for verb in dist::VERBS {
        let manifest = dist::workspace_root()
            .join("krew-manifests")
            .join(format!("{verb}.yaml"));
        let out = Command::new(&validator)
            .arg(format!("--manifest={}", manifest.display()))
            .arg("--skip-install")
            .output()
            .expect("run validate-krew-manifest");
        assert!(out.status.success(), "{verb}: {}", describe(&out));
    }
}
