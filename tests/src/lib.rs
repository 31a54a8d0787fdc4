//! The end-to-end harness: locating the built plugins, a TLS etcd, a forward proxy, running the plugins and the
//! real kubectl, the seed tutorial's steps. Shared by the end-to-end tests (`tests/tests/e2e/`) and by the demo and
//! benchmarks of atrest-devtools.

pub mod bed;
pub mod bins;
pub mod etcd;
pub mod kms;
pub mod proxy;
pub mod run;
pub mod tutorial;
