//! The code generator behind `cargo xtask codegen` (examples/codegen.rs) and the staleness test
//! (tests/codegen_fresh.rs): parses `proto/` with `protox` (a protobuf compiler in Rust) into a
//! FileDescriptorSet and hands it to `tonic-prost-build` (prost messages, tonic clients, no servers),
//! so no `protoc` is ever run.

use std::path::{Path, PathBuf};

/// The .proto files compiled, relative to `proto/`.
pub const PROTOS: &[&str] = &[
    "etcd/api/mvccpb/kv.proto",
    "etcd/api/etcdserverpb/rpc.proto",
    "k8s.io/kms/apis/v2/api.proto",
];

/// The crate's directory (holds `proto/` and `src/generated/`).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Generate every file into `out` (one `<package>.rs` per protobuf package).
pub fn generate(out: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let include = crate_dir().join("proto");
    let fds = protox::compile(PROTOS, [&include])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        // No `connect` helpers: callers build their own channel (core's etcd transport, a unix socket).
        .build_transport(false)
        .emit_rerun_if_changed(false)
        .out_dir(out)
        .compile_fds(fds)?;
    Ok(())
}
