//! The tests of what atrest-devtools ships, in one binary: the checked-in krew manifests, the release archives
//! installed by the real krew, shell completion through the wrapper the archives carry, and the demo. They drive
//! the built plugins (`cargo build --workspace --bins` first; `cargo xtask test` does).

mod completion;
mod demo;
mod krew_archive;
mod krew_manifests;
