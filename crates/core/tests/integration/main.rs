//! atrest-core's integration tests, in one binary: EncryptionConfiguration fixtures and properties, the manifest
//! editor, the storage codec (hand-checked vectors, kubeadm pods, `protoc`, round trips) and the transformers
//! (upstream vectors, OpenSSL cross-checks, properties). Shared helpers live in `support`.

mod support;

mod config_fixtures;
mod config_proptest;
mod manifest_edit;
mod manifest_proptest;
mod storage_kinds;
mod storage_pod;
mod storage_protoc;
mod storage_roundtrip;
mod storage_secret;
mod transform_proptest;
mod transform_providers;
mod transform_vectors;
