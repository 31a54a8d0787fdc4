//! Partial discovery: one unavailable aggregated API (a real APIService object whose service does not exist, so
//! the API server answers 503 for its group version, as kube-aggregator does) must not stop `kubectl reencrypt`
//! (resources by name, `--all-encrypted`) or the rewrite step of rotate/disable: warn naming the group, go on, fail
//! only for resources of that group.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use atrest_e2e::bed;
use atrest_e2e::bins;
use atrest_e2e::run::{self, kubectl, ok, text};
use atrest_sandbox::{ControlPlane, Sandbox, SandboxOptions};

const FAILED_GV: &str = "metrics.k8s.io/v1beta1";

fn reencrypt(sb: &Sandbox, args: &[&str]) -> Output {
    Command::new(bins::plugin("reencrypt"))
        .arg("--kubeconfig")
        .arg(sb.kubeconfig())
        .args(["--progress", "none", "--max-retries", "0"])
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn encryption_config(dir: &Path, name: &str, resources: &str) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [{resources}]\n  providers:\n  - identity: {{}}\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn an_unavailable_aggregated_api_is_skipped_with_a_warning() {
    unavailable_aggregated_api_is_skipped(ControlPlane::Atrest);
}

/// The same on the real kube-apiserver, whose kube-aggregator answers for the APIService.
#[test]
fn an_unavailable_aggregated_api_is_skipped_on_the_real_control_plane() {
    unavailable_aggregated_api_is_skipped(ControlPlane::Real);
}

fn unavailable_aggregated_api_is_skipped(control_plane: ControlPlane) {
    let dir = tempfile::tempdir().unwrap();
    let home = bed::home(dir.path());
    let mut opts = SandboxOptions::new(dir.path().join("node"));
    opts.control_plane = control_plane;
    let sb = bed::start(opts);
    std::fs::write(dir.path().join("apiservice.yaml"), bed::MISSING_APISERVICE).unwrap();
    let apiservice = dir.path().join("apiservice.yaml");
    ok(
        kubectl(&sb, &home, &["apply", "-f", apiservice.to_str().unwrap()]),
        "create the APIService",
    );
    run::create_configmap(&sb, &home, "c1");
    // The API server answers for the group as kube-aggregator does for an APIService without its service (the
    // real aggregator registers the handler a moment after the object is created).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let raw = kubectl(&sb, &home, &["get", "--raw", &format!("/apis/{FAILED_GV}")]);
        assert!(!raw.status.success());
        let err = text(&raw.stderr);
        if err.contains("the server is currently unable to handle the request") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no 503 for {FAILED_GV}: {err}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let groups = ok(kubectl(&sb, &home, &["get", "--raw", "/apis"]), "GET /apis");
    assert!(groups.contains(FAILED_GV), "{groups}");

    // Resources by name: the rest of discovery is used; a warning names the group.
    let o = reencrypt(&sb, &["configmaps", "-n", "default"]);
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("couldn't get resource list for {FAILED_GV}")),
        "{err}"
    );
    assert!(text(&o.stdout).contains("default"), "{}", text(&o.stdout));

    // A resource of the failed group is an error naming it; an unknown name says the group failed.
    for name in ["pods.metrics.k8s.io", "widgets"] {
        let o = reencrypt(&sb, &[name, "-n", "default"]);
        assert!(!o.status.success(), "{name}: {}", text(&o.stdout));
        let err = text(&o.stderr);
        assert!(
            err.contains(name) && err.contains(FAILED_GV),
            "{name}: {err}"
        );
    }

    // --all-encrypted: the config's resources are rewritten; `*.*` skips the failed group (listed only: a dry
    // run); a config naming it fails.
    for (file, resources, success, dry) in [
        ("named.yaml", "configmaps, secrets", true, false),
        ("all.yaml", "'*.*'", true, true),
        (
            "metrics.yaml",
            "configmaps, '*.metrics.k8s.io'",
            false,
            false,
        ),
    ] {
        let cfg = encryption_config(dir.path(), file, resources);
        let mut args = vec![
            "--all-encrypted",
            "--encryption-config",
            &cfg,
            "-n",
            "default",
        ];
        if dry {
            args.push("--dry-run");
        }
        let o = reencrypt(&sb, &args);
        assert_eq!(
            o.status.success(),
            success,
            "{file}: {}\n{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        assert!(
            text(&o.stderr).contains(FAILED_GV),
            "{file}: {}",
            text(&o.stderr)
        );
    }

    // The rewrite step of `kubectl encrypt rotate`/`disable` (every object of the config's resources).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cfg = atrest_core::config::load(Path::new(&encryption_config(
        dir.path(),
        "rotate.yaml",
        "configmaps, secrets",
    )))
    .unwrap();
    let report = rt.block_on(async {
        let flags = atrest_core::client::ConfigFlags {
            kubeconfig: Some(sb.kubeconfig()),
            ..Default::default()
        };
        let (client, _) = flags.client().await.unwrap();
        atrest_core::encrypt::rewrite_all(&client, &cfg, 4, &|_| {}).await
    });
    let report = report.unwrap_or_else(|e| panic!("rewrite step: {e}"));
    assert!(
        report.totals.rewritten + report.totals.current >= 1,
        "{report:?}"
    );
}
