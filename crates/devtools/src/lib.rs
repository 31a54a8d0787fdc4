//! Developer tools that `cargo xtask` runs: release packaging (`dist`, krew's rules in `krew`, the `atrest-dist`
//! binary behind `cargo xtask dist`), the demo (`atrest-demo`, `cargo xtask demo`) and the benchmarks
//! (`atrest-bench`, `cargo xtask bench`). Not a dependency of any plugin.

pub mod dist;
pub mod krew;
