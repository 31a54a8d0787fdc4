//! Helpers shared by the end-to-end tests: locating the built plugins, a TLS etcd.

pub mod bins;
pub mod etcd;
