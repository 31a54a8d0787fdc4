//! The KMS v2 test plugin (`tests/k8s/cmd/kms-plugin`, a real `k8s.io/kms/pkg/service` gRPC server on a unix
//! socket, built by `atrest_sandbox::k8s`) run for a test.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::run::wait_for;

/// The running plugin, stopped on drop.
pub struct KmsPlugin(Child);

impl KmsPlugin {
    /// Starts the plugin on `socket` with a fresh random 32-byte key in a 0600 file `key` beside it; returns once
    /// it listens.
    pub fn start(socket: &Path) -> KmsPlugin {
        let bin = atrest_sandbox::k8s::ensure()
            .expect("the KMS v2 test plugin (tests/k8s, needs Go)")
            .path("kms-plugin");
        let dir = socket.parent().expect("the socket has a directory");
        std::fs::create_dir_all(dir).unwrap();
        let key_file = dir.join("key");
        let mut key = [0u8; 32];
        openssl::rand::rand_bytes(&mut key).unwrap();
        atrest_core::fsutil::write_private(&key_file, &key).unwrap();
        let child = Command::new(bin)
            .arg("--listen")
            .arg(socket)
            .arg("--key-file")
            .arg(&key_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kms-plugin");
        let plugin = KmsPlugin(child);
        wait_for("kms-plugin to listen", Duration::from_secs(60), || {
            socket.exists().then_some(())
        });
        plugin
    }
}

impl Drop for KmsPlugin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
