//! The checked-in krew manifests (`krew-manifests/<verb>.yaml`): valid by krew's rules, and exactly what the
//! template renders with the version in Cargo.toml. Only the `sha256` comes from the file itself: it is the
//! archive `cargo xtask dist` built for the release. After editing the template or the texts run
//! `cargo run -p atrest-devtools --bin atrest-dist -- manifests`; for a release, `cargo xtask dist`.

use crate::file_names;
use atrest_devtools::{dist, krew};

fn read(rel: &str) -> String {
    let path = dist::workspace_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn errors(manifest: &str, file: &str) -> Vec<String> {
    match krew::parse(manifest) {
        Ok(p) => krew::validate(&p, file),
        Err(e) => vec![format!("parse: {e}")],
    }
}

#[test]
fn checked_in_manifests_are_valid_and_up_to_date() {
    let template = read(dist::TEMPLATE);
    for verb in dist::VERBS {
        let file = format!("{verb}.yaml");
        let text = read(&format!("krew-manifests/{file}"));
        let errs = errors(&text, &file);
        assert!(errs.is_empty(), "{file}:\n  {}", errs.join("\n  "));

        let p = krew::parse(&text).unwrap();
        assert_eq!(p.metadata.name, verb);
        assert_eq!(
            p.spec.version,
            dist::version_tag(),
            "{file}: version differs from Cargo.toml"
        );
        assert!(
            p.spec
                .caveats
                .as_deref()
                .unwrap_or("")
                .contains("control-plane")
                || verb == "reencrypt"
                || verb == "onboard"
        );
        let pl = &p.spec.platforms[0];
        assert_eq!(pl.bin, format!("kubectl-{verb}"));
        let files = pl.files.as_ref().expect("files: lists what krew installs");
        for wanted in [
            format!("kubectl-{verb}"),
            format!("kubectl_complete-{verb}"),
            "LICENSE".to_string(),
        ] {
            assert!(
                files.iter().any(|f| f.from == wanted && f.to == "."),
                "{file}: installs {wanted}"
            );
        }
        assert!(
            pl.uri
                .ends_with(&dist::archive_name(verb, dist::TARGETS[0].0)),
            "{}",
            pl.uri
        );

        let sha = dist::manifest_sha256(&text).expect("sha256 line");
        let rendered = dist::manifest_for(&template, verb, sha).unwrap();
        assert!(
            rendered == text,
            "krew-manifests/{file} is stale: run `cargo run -p atrest-devtools --bin atrest-dist -- manifests` \
             (or `cargo xtask dist` for a release)\n{}",
            first_difference(&rendered, &text)
        );
    }
    // Nothing else: krew-index expects only manifests there (the template lives beside the code that renders it).
    let files = file_names(&dist::workspace_root().join("krew-manifests"));
    assert_eq!(
        files,
        [
            "encrypt.yaml",
            "etcdcheck.yaml",
            "onboard.yaml",
            "reencrypt.yaml"
        ]
    );
}

fn first_difference(want: &str, have: &str) -> String {
    for (i, (w, h)) in want.lines().zip(have.lines()).enumerate() {
        if w != h {
            return format!("line {}: want {w:?}\n         have {h:?}", i + 1);
        }
    }
    format!(
        "want {} lines, have {}",
        want.lines().count(),
        have.lines().count()
    )
}

/// Every rule the checker claims, shown to fail on a manifest that breaks it.
#[test]
fn the_checker_catches_what_krew_refuses() {
    let good = read("krew-manifests/encrypt.yaml");
    assert!(errors(&good, "encrypt.yaml").is_empty());
    let sha = dist::manifest_sha256(&good).unwrap().to_string();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "upper-case sha256",
            good.replace(&sha, &sha.to_uppercase()),
            "sha256",
        ),
        ("short sha256", good.replace(&sha, &sha[..63]), "sha256"),
        (
            "version without v",
            good.replace("version: v", "version: "),
            "spec.version",
        ),
        (
            "version not MAJOR.MINOR.PATCH",
            good.replace(&dist::version_tag(), "v0.1"),
            "spec.version",
        ),
        (
            "wrong apiVersion",
            good.replace("/v1alpha2", "/v1alpha1"),
            "apiVersion",
        ),
        (
            "wrong kind",
            good.replace("kind: Plugin", "kind: Plugins"),
            "kind",
        ),
        (
            "unknown key",
            good.replace("shortDescription:", "shortDesc:"),
            "unknown field",
        ),
        (
            "unknown key in a platform",
            good.replace("    bin: ", "    binary: "),
            "unknown field",
        ),
        ("empty files", cut_files(&good), "files"),
        (
            "unclean files.to",
            good.replacen("to: .", "to: ./", 1),
            "not clean",
        ),
        (
            "selector key",
            good.replace("os: linux", "platform: linux"),
            "only os and arch",
        ),
        (
            "unsupported platform",
            good.replace("arch: amd64", "arch: riscv64"),
            "no supported",
        ),
        ("no selector", drop_selector(&good), "selector is missing"),
        (
            "overlapping platforms",
            duplicate_platform(&good),
            "overlap",
        ),
        ("long shortDescription", long_short(&good), "characters"),
        (
            "two-line shortDescription",
            good.replacen("shortDescription: ", "shortDescription: \"a\\nb\" #", 1),
            "one line",
        ),
        ("empty uri", blank_value(&good, "uri"), "uri"),
        ("empty bin", blank_value(&good, "bin"), "bin"),
    ];
    for (what, manifest, expect) in cases {
        let errs = errors(&manifest, "encrypt.yaml");
        assert!(
            errs.iter().any(|e| e.contains(expect)),
            "{what}: want an error mentioning {expect:?}, got {errs:?}"
        );
    }
    // The file name must be the plugin name.
    let errs = errors(&good, "encrypt-secrets.yaml");
    assert!(errs.iter().any(|e| e.contains("file name")), "{errs:?}");
    let errs = errors(&good, "encrypt.yml");
    assert!(errs.iter().any(|e| e.contains(".yaml")), "{errs:?}");
}

fn cut_files(m: &str) -> String {
    let start = m.find("    files:\n").unwrap();
    format!("{}    files: []\n", &m[..start])
}

fn drop_selector(m: &str) -> String {
    m.replace(
        "  - selector:\n      matchLabels:\n        os: linux\n        arch: amd64\n    uri:",
        "  - uri:",
    )
}

fn duplicate_platform(m: &str) -> String {
    let start = m.find("  - selector:").unwrap();
    let block = &m[start..];
    format!("{m}{block}")
}

fn long_short(m: &str) -> String {
    let line = m.lines().find(|l| l.contains("shortDescription:")).unwrap();
    m.replace(
        line,
        &format!(
            "  shortDescription: {}",
            "x".repeat(krew::MAX_SHORT_DESCRIPTION + 1)
        ),
    )
}

fn blank_value(m: &str, key: &str) -> String {
    let prefix = format!("    {key}: ");
    let line = m.lines().find(|l| l.starts_with(&prefix)).unwrap();
    m.replace(line, &format!("    {key}: \"\""))
}
