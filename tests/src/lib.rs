//! The end-to-end harness, the one support module of the end-to-end tests (`tests/tests/e2e/`), also used by the
//! demo and benchmarks of atrest-devtools: a test's sandbox and the operator's manifest edits (`bed`), locating the
//! built plugins (`bins`), a TLS etcd (`etcd`), the KMS v2 test plugin (`kms`), a forward proxy (`proxy`), running
//! the plugins, the real kubectl, etcdctl and openssl (`run`), the seed tutorial's steps (`tutorial`).

pub mod bed;
pub mod bins;
pub mod etcd;
pub mod kms;
pub mod proxy;
pub mod run;
pub mod tutorial;
