//! Safe file writes: temp file, fsync, rename; private files created 0600; backups.
