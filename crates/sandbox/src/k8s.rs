//! The real Kubernetes control plane's binaries, built from the project's own Go module (`tests/k8s`) into a
//! cache: the one place that knows how they are built and where they live.
//!
//! - The module: `tests/k8s` of this checkout (`ATREST_K8S_MODULE` overrides it). It pins `k8s.io/kubernetes`
//!   (every staging module replaced at the same release) and etcd's server as `tool` dependencies; `krew/` is a
//!   module of its own for krew v0.4.3; `cmd/kms-plugin` is the KMS v2 test plugin.
//! - The cache: `${ATREST_K8S_CACHE:-${XDG_CACHE_HOME:-~/.cache}/atrest/k8s}/<key>/`, with the key
//!   `<kubernetes version>-<12 hex digits>`: the release from go.mod's `k8s.io/kubernetes` line and a SHA-256 over
//!   every go.mod, go.sum and .go file of the module (krew's included), so an edit to any of them builds anew.
//! - The build: `go build -trimpath` with the version stamped through `-ldflags -X` into
//!   `k8s.io/component-base/version` and `k8s.io/client-go/pkg/version` (what `hack/lib/version.sh`
//!   `kube::version::ldflags` sets upstream; without it the binaries report `v0.0.0-master`), Go's default module
//!   and build caches (so a second checkout only links). Everything is written into a temporary directory in the
//!   cache root and renamed into place when complete, under an exclusive `flock` on `<cache root>/.lock`: two test
//!   processes asking at once build once, and a killed build leaves no half-filled directory behind.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use openssl::sha::Sha256;

/// Errors finding or building the binaries.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{0}: no `k8s.io/kubernetes vX.Y.Z` requirement in it (the Go module of the real control plane pins it)"
    )]
    NoVersion(PathBuf),
    #[error(
        "`go` was not found on PATH: install Go 1.24+ (https://go.dev/doc/install, or `apt-get install golang-go` if \
         your distribution's is recent enough) to build the real control plane; {0}"
    )]
    NoGo(String),
    #[error("{what} failed after {seconds:.0} s (in {dir}):\n{output}")]
    Build {
        what: String,
        dir: PathBuf,
        seconds: f64,
        output: String,
    },
    #[error("cannot find the cache directory: set ATREST_K8S_CACHE, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> K8sError + '_ {
    move |source| K8sError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What is built: the name printed by `atrest-sandbox k8s` and the file name in the cache.
pub const BINARIES: [(&str, &str); 6] = [
    ("kube-apiserver", "kube-apiserver"),
    ("kube-controller-manager", "kube-controller-manager"),
    ("etcd", "etcd"),
    // kubectl finds `kubectl krew` as `kubectl-krew` on PATH.
    ("krew", "kubectl-krew"),
    // krew's manifest validator (krew-index's check), for the packaging tests.
    ("validate-krew-manifest", "validate-krew-manifest"),
    ("kms-plugin", "kms-plugin"),
];

/// The built binaries, in their cache directory.
#[derive(Debug, Clone)]
pub struct K8sBinaries {
    dir: PathBuf,
    /// The Kubernetes release (`v1.34.4`).
    pub kubernetes_version: String,
    /// The etcd release (`v3.6.4`).
    pub etcd_version: String,
}

impl K8sBinaries {
    /// The cache directory holding them.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The path of a binary by its name in [`BINARIES`] (`kube-apiserver`, `krew`, ...).
    pub fn path(&self, name: &str) -> PathBuf {
        let file = BINARIES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(name, |(_, f)| *f);
        self.dir.join(file)
    }
    /// `(name, path)` of every binary, in [`BINARIES`] order.
    pub fn all(&self) -> Vec<(&'static str, PathBuf)> {
        BINARIES
            .iter()
            .map(|(n, f)| (*n, self.dir.join(f)))
            .collect()
    }
}

/// The Go module directory: `ATREST_K8S_MODULE`, else `tests/k8s` of the checkout this crate was built from.
pub fn module_dir() -> PathBuf {
    match std::env::var_os("ATREST_K8S_MODULE") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/k8s"),
    }
}

/// The cache root: `ATREST_K8S_CACHE`, else `${XDG_CACHE_HOME:-$HOME/.cache}/atrest/k8s`.
pub fn cache_root() -> Result<PathBuf, K8sError> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("ATREST_K8S_CACHE") {
        return Ok(d);
    }
    let base = var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .ok_or(K8sError::NoCacheDir)?;
    Ok(base.join("atrest").join("k8s"))
}

/// The version of a required module in go.mod text (`\tk8s.io/kubernetes v1.34.4 // indirect`).
fn required_version(go_mod: &str, module: &str) -> Option<String> {
    go_mod.lines().find_map(|l| {
        let l = l.trim().trim_start_matches("require").trim();
        let mut parts = l.split_whitespace();
        (parts.next() == Some(module))
            .then(|| parts.next())
            .flatten()
            .filter(|v| v.starts_with('v'))
            .map(str::to_string)
    })
}

/// Every go.mod, go.sum and .go file under `dir`, as paths relative to it, sorted.
fn source_files(dir: &Path) -> Result<Vec<PathBuf>, K8sError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        for e in fs::read_dir(&abs).map_err(io_err(&abs))? {
            let e = e.map_err(io_err(&abs))?;
            let name = e.file_name();
            let name_s = name.to_string_lossy();
            if name_s.starts_with('.') {
                continue;
            }
            let ty = e.file_type().map_err(io_err(&e.path()))?;
            if ty.is_dir() {
                stack.push(rel.join(&name));
            } else if name_s == "go.mod" || name_s == "go.sum" || name_s.ends_with(".go") {
                out.push(rel.join(&name));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Bumped whenever [`ensure`] builds differently (flags, binaries), so caches of the old recipe are not reused.
const RECIPE: u32 = 2;

/// `<kubernetes version>-<hash>` of the module, and the etcd version, from its files.
pub fn cache_key(module: &Path) -> Result<(String, String, String), K8sError> {
    let go_mod_path = module.join("go.mod");
    let go_mod = fs::read_to_string(&go_mod_path).map_err(io_err(&go_mod_path))?;
    let kube = required_version(&go_mod, "k8s.io/kubernetes")
        .ok_or_else(|| K8sError::NoVersion(go_mod_path.clone()))?;
    let etcd =
        required_version(&go_mod, "go.etcd.io/etcd/server/v3").unwrap_or_else(|| "unknown".into());
    let mut h = Sha256::new();
    // How they are built (flags, which binaries) is part of the key too.
    h.update(&RECIPE.to_le_bytes());
    for rel in source_files(module)? {
        let p = module.join(&rel);
        let bytes = fs::read(&p).map_err(io_err(&p))?;
        h.update(rel.to_string_lossy().as_bytes());
        h.update(&[0]);
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    let digest = h.finish();
    let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    Ok((format!("{kube}-{short}"), kube, etcd))
}

/// The `-ldflags` stamping `version` the way the release build does.
fn version_ldflags(version: &str) -> String {
    let v = version.trim_start_matches('v');
    let mut parts = v.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("0");
    let mut flags = vec!["-s".to_string(), "-w".to_string()];
    for pkg in [
        "k8s.io/component-base/version",
        "k8s.io/client-go/pkg/version",
    ] {
        flags.push(format!("-X {pkg}.gitVersion={version}"));
        flags.push(format!("-X {pkg}.gitMajor={major}"));
        flags.push(format!("-X {pkg}.gitMinor={minor}"));
    }
    flags.push("-X k8s.io/component-base/version.gitTreeState=clean".into());
    flags.push("-X k8s.io/component-base/version.buildDate=2026-01-01T00:00:00Z".into());
    flags.join(" ")
}

/// Builds the binaries into the cache unless they are there, and returns them.
pub fn ensure() -> Result<K8sBinaries, K8sError> {
    ensure_in(&module_dir(), &cache_root()?)
}

/// [`ensure`] for a given module and cache root.
pub fn ensure_in(module: &Path, cache: &Path) -> Result<K8sBinaries, K8sError> {
    ensure_with(module, cache, "go")
}

/// [`ensure_in`] with the `go` command to build with.
fn ensure_with(module: &Path, cache: &Path, go: &str) -> Result<K8sBinaries, K8sError> {
    let module = module.canonicalize().map_err(io_err(module))?;
    let (key, kubernetes_version, etcd_version) = cache_key(&module)?;
    let dir = cache.join(&key);
    let found = K8sBinaries {
        dir: dir.clone(),
        kubernetes_version: kubernetes_version.clone(),
        etcd_version,
    };
    if dir.is_dir() {
        return Ok(found);
    }
    fs::create_dir_all(cache).map_err(io_err(cache))?;
    let lock_path = cache.join(".lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err(&lock_path))?;
    let waited = Instant::now();
    // SAFETY: flock(2) on a file descriptor we own; released when `lock` is closed.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        return Err(K8sError::Io {
            path: lock_path,
            source: io::Error::last_os_error(),
        });
    }
    if dir.is_dir() {
        tracing::info!(
            waited_s = waited.elapsed().as_secs_f64(),
            "another process built the real control plane"
        );
        return Ok(found);
    }
    check_go(go)?;
    let tmp = tempfile::Builder::new()
        .prefix(".build-")
        .tempdir_in(cache)
        .map_err(io_err(cache))?;
    let out = tmp.path();
    let total = Instant::now();
    let ldflags = version_ldflags(&kubernetes_version);
    go_build(
        go,
        &module,
        &format!("kube-apiserver, kube-controller-manager and etcd {kubernetes_version}"),
        &[
            "-ldflags",
            &ldflags,
            "-o",
            &format!("{}/", out.display()),
            "k8s.io/kubernetes/cmd/kube-apiserver",
            "k8s.io/kubernetes/cmd/kube-controller-manager",
            "go.etcd.io/etcd/server/v3",
        ],
    )?;
    // `go build` names etcd's main after its module path's last element before the major version suffix.
    let server = out.join("server");
    fs::rename(&server, out.join("etcd")).map_err(io_err(&server))?;
    go_build(
        go,
        &module,
        "kms-plugin",
        &[
            "-ldflags",
            "-s -w",
            "-o",
            &out.join("kms-plugin").display().to_string(),
            "./cmd/kms-plugin",
        ],
    )?;
    // krew reports its release from ldflags (`internal/version`), as its own release build sets it.
    let krew_mod = module.join("krew").join("go.mod");
    let krew_version = fs::read_to_string(&krew_mod)
        .map_err(io_err(&krew_mod))
        .map(|m| required_version(&m, "sigs.k8s.io/krew"))?
        .ok_or_else(|| K8sError::Build {
            what: "reading krew's version".into(),
            dir: module.join("krew"),
            seconds: 0.0,
            output: format!("{} requires no sigs.k8s.io/krew", krew_mod.display()),
        })?;
    go_build(
        go,
        &module.join("krew"),
        "krew",
        &[
            "-ldflags",
            &format!("-s -w -X sigs.k8s.io/krew/internal/version.gitTag={krew_version}"),
            "-o",
            &format!("{}/", out.display()),
            "sigs.k8s.io/krew/cmd/krew",
            "sigs.k8s.io/krew/cmd/validate-krew-manifest",
        ],
    )?;
    let krew = out.join("krew");
    fs::rename(&krew, out.join("kubectl-krew")).map_err(io_err(&krew))?;
    for (name, file) in BINARIES {
        let p = out.join(file);
        if !p.is_file() {
            return Err(K8sError::Build {
                what: format!("go build of {name}"),
                dir: module.clone(),
                seconds: total.elapsed().as_secs_f64(),
                output: format!("{} was not produced", p.display()),
            });
        }
    }
    let tmp_path = tmp.keep();
    fs::rename(&tmp_path, &dir).map_err(io_err(&dir))?;
    if let Ok(d) = File::open(cache) {
        let _ = d.sync_all();
    }
    tracing::info!(
        seconds = total.elapsed().as_secs_f64(),
        dir = %dir.display(),
        "built the real control plane"
    );
    drop(lock);
    Ok(found)
}

fn check_go(go: &str) -> Result<(), K8sError> {
    match Command::new(go).arg("version").output() {
        Ok(o) if o.status.success() => {
            tracing::info!(go = %String::from_utf8_lossy(&o.stdout).trim(), "building with");
            Ok(())
        }
        Ok(o) => Err(K8sError::NoGo(format!(
            "`go version` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))),
        Err(e) => Err(K8sError::NoGo(format!("running `go version`: {e}"))),
    }
}

fn go_build(go: &str, dir: &Path, what: &str, args: &[&str]) -> Result<(), K8sError> {
    let started = Instant::now();
    tracing::info!(what, dir = %dir.display(), "go build");
    let out = Command::new(go)
        .arg("build")
        .arg("-trimpath")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| K8sError::NoGo(format!("running `go build`: {e}")))?;
    let seconds = started.elapsed().as_secs_f64();
    if !out.status.success() {
        let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stdout));
        return Err(K8sError::Build {
            what: format!("go build of {what}"),
            dir: dir.to_path_buf(),
            seconds,
            output,
        });
    }
    tracing::info!(what, seconds, "go build done");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_require_lines() {
        let m = "module x\n\ngo 1.24.0\n\nrequire k8s.io/kms v0.34.4\n\nrequire (\n\tgo.etcd.io/etcd/server/v3 v3.6.4 // indirect\n\
                 \tk8s.io/kubernetes v1.34.4 // indirect\n)\n\nreplace k8s.io/api => k8s.io/api v0.34.4\n";
        assert_eq!(
            required_version(m, "k8s.io/kubernetes").as_deref(),
            Some("v1.34.4")
        );
        assert_eq!(
            required_version(m, "k8s.io/kms").as_deref(),
            Some("v0.34.4")
        );
        assert_eq!(
            required_version(m, "go.etcd.io/etcd/server/v3").as_deref(),
            Some("v3.6.4")
        );
        assert_eq!(required_version(m, "k8s.io/api"), None);
    }

    #[test]
    fn the_key_names_the_release_and_changes_with_any_source_file() {
        let d = go_module();
        fs::create_dir_all(d.path().join("cmd/p")).unwrap();
        fs::write(d.path().join("cmd/p/main.go"), "package main\n").unwrap();
        fs::write(d.path().join("README"), "not hashed").unwrap();
        let (k1, kube, _) = cache_key(d.path()).unwrap();
        assert!(
            k1.starts_with("v1.34.4-") && k1.len() == "v1.34.4-".len() + 12,
            "{k1}"
        );
        assert_eq!(kube, "v1.34.4");
        fs::write(d.path().join("README"), "still not hashed").unwrap();
        assert_eq!(cache_key(d.path()).unwrap().0, k1);
        fs::write(d.path().join("cmd/p/main.go"), "package main\n\n").unwrap();
        assert_ne!(cache_key(d.path()).unwrap().0, k1);
        fs::write(d.path().join("go.mod"), "module x\n").unwrap();
        assert!(matches!(cache_key(d.path()), Err(K8sError::NoVersion(_))));
    }

    /// A Go module requiring kubernetes v1.34.4.
    fn go_module() -> tempfile::TempDir {
        let module = tempfile::tempdir().unwrap();
        fs::write(
            module.path().join("go.mod"),
            "module x\nrequire k8s.io/kubernetes v1.34.4\n",
        )
        .unwrap();
        module
    }

    /// A Go module requiring kubernetes v1.34.4, an empty build cache, and the module's cache key.
    fn module_and_cache() -> (tempfile::TempDir, tempfile::TempDir, String) {
        let module = go_module();
        let cache = tempfile::tempdir().unwrap();
        let (key, _, _) = cache_key(module.path()).unwrap();
        (module, cache, key)
    }

    #[test]
    fn a_cached_build_is_found_without_go() {
        let (module, cache, key) = module_and_cache();
        fs::create_dir_all(cache.path().join(&key)).unwrap();
        let b = ensure_in(module.path(), cache.path()).unwrap();
        assert_eq!(b.dir(), cache.path().join(&key));
        assert_eq!(b.path("krew"), cache.path().join(&key).join("kubectl-krew"));
        assert_eq!(b.all().len(), BINARIES.len());
    }

    #[test]
    fn a_process_waiting_for_the_lock_takes_the_build_it_waited_for() {
        let (module, cache, key) = module_and_cache();
        // Another process is building: it holds the lock.
        let lock = File::create(cache.path().join(".lock")).unwrap();
        // SAFETY: flock(2) on a descriptor this test owns.
        assert_eq!(
            unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) },
            0
        );
        let (m, c) = (module.path().to_path_buf(), cache.path().to_path_buf());
        let waiter = std::thread::spawn(move || ensure_in(&m, &c));
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(!waiter.is_finished(), "ensure must wait for the lock");
        // The builder renames its finished directory into place and lets go: the waiter uses it, builds nothing
        // (this module has no packages: a build would fail).
        fs::create_dir(cache.path().join(&key)).unwrap();
        drop(lock);
        let b = waiter.join().unwrap().unwrap();
        assert_eq!(b.dir(), cache.path().join(&key));
    }

    #[test]
    fn without_go_the_error_says_what_to_install_and_nothing_is_left_behind() {
        let (module, cache, _) = module_and_cache();
        let e = ensure_with(module.path(), cache.path(), "/nonexistent/go").unwrap_err();
        assert!(matches!(e, K8sError::NoGo(_)), "{e:?}");
        assert!(e.to_string().contains("install Go 1.24+"), "{e}");
        let left: Vec<_> = fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from(".lock")]);
    }

    #[test]
    fn ldflags_stamp_both_version_packages() {
        let f = version_ldflags("v1.34.4");
        for want in [
            "-X k8s.io/component-base/version.gitVersion=v1.34.4",
            "-X k8s.io/component-base/version.gitMinor=34",
            "-X k8s.io/client-go/pkg/version.gitMajor=1",
        ] {
            assert!(f.contains(want), "{f}");
        }
    }
}
