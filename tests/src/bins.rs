//! Locating the plugin binaries built by `cargo build --workspace --bins`.
