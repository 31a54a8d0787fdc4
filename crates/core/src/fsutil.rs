//! Safe file writes: temp file, fsync, rename; private files created 0600; backups.
//!
//! Every function here either fully succeeds or leaves the target untouched: content is written to a
//! temporary file in the target's directory, fsynced, renamed over the target, and the directory is
//! fsynced so the rename survives a crash. Errors name the path and the operation.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Mode for files that hold key material (encryption keys, private keys, kubeconfigs with keys).
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode for new non-private files written by [`write_atomic`].
pub const PUBLIC_FILE_MODE: u32 = 0o644;

/// A filesystem operation failed; names the operation and the path.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct FsError {
    /// What was being done ("write", "rename", "create directory", ...).
    pub op: &'static str,
    /// The path it was done to.
    pub path: PathBuf,
    /// The underlying I/O error.
    #[source]
    pub source: io::Error,
}

impl FsError {
    fn new(op: &'static str, path: &Path, source: io::Error) -> Self {
        Self {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Result alias for this module.
pub type Result<T, E = FsError> = std::result::Result<T, E>;

/// The bytes of `path`.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| FsError::new("read", path, e))
}

/// Atomically replace `path` with `contents`.
///
/// An existing file keeps its permission bits; a new file gets [`PUBLIC_FILE_MODE`]. Use
/// [`write_private`] for key material.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let mode = match fs::metadata(path) {
        Ok(meta) => meta.permissions().mode() & 0o7777,
        Err(e) if e.kind() == io::ErrorKind::NotFound => PUBLIC_FILE_MODE,
        Err(e) => return Err(FsError::new("stat", path, e)),
    };
    write_with_mode(path, contents, mode)
}

/// Atomically replace `path` with `contents`, the file being 0600 from its creation on (the temp file
/// is created 0600, so the content is never readable by others, not even briefly).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    write_with_mode(path, contents, PRIVATE_FILE_MODE)
}

/// Atomically replace `path` with `contents` with exactly `mode` (umask does not apply).
///
/// The temp file is created with `mode & 0o600` and only widened to `mode` after the content is
/// written, so it is never more readable than the final file.
pub fn write_with_mode(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let dir = parent_dir(path);
    let file_name = path
        .file_name()
        .ok_or_else(|| FsError::new("write", path, io::Error::other("path has no file name")))?;
    let (tmp_path, mut file) = create_temp(&dir, file_name, mode & 0o600)?;
    let cleanup = TempGuard(Some(tmp_path.clone()));
    file.write_all(contents)
        .map_err(|e| FsError::new("write", &tmp_path, e))?;
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(|e| FsError::new("chmod", &tmp_path, e))?;
    file.sync_all()
        .map_err(|e| FsError::new("fsync", &tmp_path, e))?;
    drop(file);
    fs::rename(&tmp_path, path).map_err(|e| FsError::new("rename", path, e))?;
    cleanup.disarm();
    sync_dir(&dir)
}

/// Copy `path` into `backup_dir` as `<file name>.<UTC timestamp>` (for example
/// `enc.yaml.20260102T030405Z`; `.1`, `.2`, ... appended if that name exists), keeping the
/// original's permission bits from creation on. Creates `backup_dir` (0700) if missing. Returns the
/// backup's path.
pub fn backup(path: &Path, backup_dir: &Path) -> Result<PathBuf> {
    let contents = fs::read(path).map_err(|e| FsError::new("read", path, e))?;
    let mode = fs::metadata(path)
        .map_err(|e| FsError::new("stat", path, e))?
        .permissions()
        .mode()
        & 0o7777;
    ensure_dir_with_mode(backup_dir, 0o700)?;
    let name = path
        .file_name()
        .ok_or_else(|| FsError::new("backup", path, io::Error::other("path has no file name")))?
        .to_string_lossy()
        .into_owned();
    let stamp = utc_timestamp(SystemTime::now());
    let mut n = 0u32;
    loop {
        let candidate = if n == 0 {
            backup_dir.join(format!("{name}.{stamp}"))
        } else {
            backup_dir.join(format!("{name}.{stamp}.{n}"))
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o600)
            .open(&candidate)
        {
            Ok(mut file) => {
                let guard = TempGuard(Some(candidate.clone()));
                file.write_all(&contents)
                    .map_err(|e| FsError::new("write", &candidate, e))?;
                file.set_permissions(Permissions::from_mode(mode))
                    .map_err(|e| FsError::new("chmod", &candidate, e))?;
                file.sync_all()
                    .map_err(|e| FsError::new("fsync", &candidate, e))?;
                guard.disarm();
                sync_dir(backup_dir)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(FsError::new("create", &candidate, e)),
        }
    }
}

/// Create `dir` and its parents if missing (new directories 0755). An existing directory is left as is.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    ensure_dir_with_mode(dir, 0o755)
}

/// Create `dir` and its parents if missing, the last component with `mode` (for example 0700 for
/// key directories). An existing directory is left as is; a non-directory at `dir` is an error.
pub fn ensure_dir_with_mode(dir: &Path, mode: u32) -> Result<()> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(FsError::new(
                "create directory",
                dir,
                io::Error::other("exists and is not a directory"),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(FsError::new("stat", dir, e)),
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        ensure_dir(parent)?;
    }
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(FsError::new("create directory", dir, e)),
    }
    // DirBuilder's mode is filtered by the umask; set it exactly.
    fs::set_permissions(dir, Permissions::from_mode(mode))
        .map_err(|e| FsError::new("chmod", dir, e))
}

/// Format `t` as a compact UTC timestamp `YYYYMMDDTHHMMSSZ`.
pub fn utc_timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::time::civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn create_temp(dir: &Path, name: &std::ffi::OsStr, mode: u32) -> Result<(PathBuf, File)> {
    let pid = std::process::id();
    for attempt in 0..100u32 {
        let nanos = crate::time::since_epoch().subsec_nanos();
        let tmp = dir.join(format!(
            ".{}.tmp.{pid}.{nanos:x}.{attempt}",
            name.to_string_lossy()
        ));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(FsError::new("create temp file in", dir, e)),
        }
    }
    Err(FsError::new(
        "create temp file in",
        dir,
        io::Error::other("too many name collisions"),
    ))
}

/// fsync a directory, so renames, creations and removals in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| FsError::new("fsync directory", dir, e))
}

/// Removes a temp file on early return.
struct TempGuard(Option<PathBuf>);

impl TempGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn atomic_write_creates_and_replaces_keeping_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.yaml");
        write_atomic(&p, b"one").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(mode_of(&p), PUBLIC_FILE_MODE);
        fs::set_permissions(&p, Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(mode_of(&p), 0o640);
        // No temp files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn private_write_is_0600_even_over_a_public_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key.pem");
        fs::write(&p, b"old").unwrap();
        fs::set_permissions(&p, Permissions::from_mode(0o644)).unwrap();
        write_private(&p, b"secret").unwrap();
        assert_eq!(mode_of(&p), 0o600);
        assert_eq!(fs::read(&p).unwrap(), b"secret");
    }

    #[test]
    fn write_into_missing_dir_fails_naming_the_dir() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing/x");
        let err = write_atomic(&p, b"x").unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn backup_copies_with_timestamp_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("enc.yaml");
        write_private(&p, b"cfg").unwrap();
        let bdir = dir.path().join("backups/nested");
        let b1 = backup(&p, &bdir).unwrap();
        let b2 = backup(&p, &bdir).unwrap();
        assert_ne!(b1, b2);
        for b in [&b1, &b2] {
            assert_eq!(fs::read(b).unwrap(), b"cfg");
            assert_eq!(mode_of(b), 0o600);
            let name = b.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.starts_with("enc.yaml.20"), "{name}");
        }
        assert_eq!(mode_of(&bdir), 0o700);
    }

    #[test]
    fn ensure_dir_creates_parents_and_rejects_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("a/b/c");
        ensure_dir_with_mode(&d, 0o700).unwrap();
        assert!(d.is_dir());
        assert_eq!(mode_of(&d), 0o700);
        ensure_dir(&d).unwrap();
        let f = dir.path().join("file");
        fs::write(&f, b"").unwrap();
        assert!(ensure_dir(&f).is_err());
    }

    #[test]
    fn timestamp_format() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_767_323_045); // 2026-01-02T03:04:05Z
        assert_eq!(utc_timestamp(t), "20260102T030405Z");
        assert_eq!(utc_timestamp(UNIX_EPOCH), "19700101T000000Z");
    }
}
