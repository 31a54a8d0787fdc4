//! Helpers shared by the end-to-end tests: locating the built plugins, a TLS etcd, release packaging and krew's
//! rules (also used by `cargo xtask dist` through the `atrest-dist` binary).

pub mod bins;
pub mod dist;
pub mod etcd;
pub mod krew;
pub mod proxy;
pub mod run;
pub mod tutorial;
