use std::ffi::OsString;

use clap::{Arg, ArgAction, Args, Command};

use super::*;
use crate::client::ConfigFlags;

/// A plugin-shaped command: subcommands, kubectl flags, an enum flag, a path flag, a repeatable flag.
fn cmd() -> Command {
    let root = Command::new("kubectl-demo")
        .arg(
            Arg::new("provider")
                .long("provider")
                .value_parser(["secretbox", "aesgcm"])
                .help("Provider for new writes.\nMore text."),
        )
        .arg(
            Arg::new("config")
                .long("config")
                .value_parser(clap::value_parser!(std::path::PathBuf))
                .global(true),
        )
        .arg(Arg::new("root").long("root").value_hint(ValueHint::DirPath))
        .arg(Arg::new("label").long("label").action(ArgAction::Append))
        .arg(
            Arg::new("dry_run")
                .long("dry-run")
                .num_args(0..=1)
                .value_parser(["client", "none"]),
        )
        .arg(Arg::new("name").help("Object name"))
        .subcommand(Command::new("status").about("Show the state"))
        .subcommand(Command::new("rotate").about("Rotate the key").alias("rot"))
        .subcommand(Command::new("internal").hide(true));
    ConfigFlags::augment_args(root)
}

fn complete(words: &[&str]) -> Completions {
    let args: Vec<String> = words.iter().map(|s| s.to_string()).collect();
    Completer::new(cmd()).complete(&args)
}

fn values(c: &Completions) -> Vec<String> {
    c.candidates.iter().map(|c| c.value.clone()).collect()
}

fn has(v: &[String], s: &str) -> bool {
    v.iter().any(|x| x == s)
}

#[test]
fn empty_word_offers_subcommands_with_descriptions_and_no_files() {
    let c = complete(&[""]);
    let v = values(&c);
    assert!(
        has(&v, "status") && has(&v, "rotate") && has(&v, "help"),
        "{v:?}"
    );
    assert!(!has(&v, "internal"), "hidden subcommands are not offered");
    assert!(
        !v.iter().any(|s| s.starts_with('-')),
        "flags only after a dash: {v:?}"
    );
    assert_eq!(c.directive, directive::NO_FILE_COMP);
    let text = c.render(true);
    assert!(text.contains("rotate\tRotate the key\n"), "{text}");
    assert!(text.ends_with("\n:4\n"), "{text}");
    assert!(!c.render(false).contains('\t'));
}

#[test]
fn no_words_at_all_is_an_empty_word() {
    assert_eq!(Completer::new(cmd()).complete(&[]), complete(&[""]));
}

#[test]
fn prefix_filters_subcommands() {
    assert_eq!(values(&complete(&["ro"])), ["rotate"]);
}

#[test]
fn dash_lists_long_and_short_flags_including_the_kubectl_set() {
    let c = complete(&["-"]);
    let v = values(&c);
    for f in [
        "--provider",
        "--context",
        "--namespace",
        "-n",
        "--kubeconfig",
        "--as",
        "--as-group",
        "--help",
    ] {
        assert!(has(&v, f), "{f} missing from {v:?}");
    }
    let text = c.render(true);
    assert!(
        text.contains("--provider\tProvider for new writes.\n"),
        "only the first help line: {text}"
    );
    let long_only = values(&complete(&["--"]));
    assert!(
        long_only.iter().all(|f| f.starts_with("--")),
        "{long_only:?}"
    );
    assert_eq!(values(&complete(&["--prov"])), ["--provider"]);
}

#[test]
fn flags_given_are_left_out_unless_repeatable() {
    let v = values(&complete(&["--provider", "aesgcm", "--label", "a", "--"]));
    assert!(!has(&v, "--provider"), "{v:?}");
    assert!(has(&v, "--label"), "{v:?}");
}

#[test]
fn enum_values_after_a_flag_and_with_equals() {
    assert_eq!(
        values(&complete(&["--provider", ""])),
        ["secretbox", "aesgcm"]
    );
    assert_eq!(values(&complete(&["--provider", "a"])), ["aesgcm"]);
    assert_eq!(
        values(&complete(&["--provider=s"])),
        ["--provider=secretbox"]
    );
}

#[test]
fn optional_value_flags_do_not_swallow_the_next_word() {
    // `--dry-run status`: status is a subcommand, not the flag's value.
    let c = complete(&["--dry-run", ""]);
    assert!(has(&values(&c), "status"), "{:?}", values(&c));
    assert_eq!(values(&complete(&["--dry-run=c"])), ["--dry-run=client"]);
}

#[test]
fn path_values_are_left_to_the_shell() {
    let c = complete(&["--config", ""]);
    assert!(c.candidates.is_empty());
    assert_eq!(c.directive, directive::DEFAULT);
    // A global flag after a subcommand.
    assert_eq!(
        complete(&["status", "--config", ""]).directive,
        directive::DEFAULT
    );
    assert_eq!(complete(&["--root", ""]).directive, directive::FILTER_DIRS);
}

#[test]
fn subcommands_and_aliases_are_entered() {
    let v = values(&complete(&["rot", "-"]));
    // rotate has no own flags but the globals propagate.
    assert!(has(&v, "--config") && has(&v, "--context"), "{v:?}");
    assert!(
        !has(&v, "--provider"),
        "root-only flag inside a subcommand: {v:?}"
    );
    // Inside a subcommand no subcommand is offered again.
    assert!(!has(&values(&complete(&["status", ""])), "status"));
}

#[test]
fn after_a_positional_no_subcommands() {
    let c = complete(&["myname", ""]);
    assert!(c.candidates.is_empty(), "{:?}", values(&c));
    assert_eq!(c.directive, directive::NO_FILE_COMP);
}

#[test]
fn after_double_dash_words_are_positional() {
    let c = complete(&["--", "-"]);
    assert!(c.candidates.is_empty(), "{:?}", values(&c));
}

#[test]
fn kubeconfig_names_for_context_cluster_user() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\ncurrent-context: one\nclusters:\n- name: c1\n  cluster: {server: 'https://127.0.0.1:1'}\n- name: c2\n  cluster: {server: 'https://127.0.0.1:2'}\nusers:\n- name: alice\n  user: {}\ncontexts:\n- name: one\n  context: {cluster: c1, user: alice}\n- name: two\n  context: {cluster: c2, user: alice}\n",
    )
    .unwrap();
    let kc = format!("--kubeconfig={}", path.display());
    assert_eq!(values(&complete(&[&kc, "--context", ""])), ["one", "two"]);
    assert_eq!(values(&complete(&[&kc, "--context", "t"])), ["two"]);
    assert_eq!(
        values(&complete(&[&kc, "--cluster="])),
        ["--cluster=c1", "--cluster=c2"]
    );
    assert_eq!(values(&complete(&[&kc, "--user", ""])), ["alice"]);
    // A missing kubeconfig: no candidates, no error text, no file completion.
    let c = complete(&["--kubeconfig", "/nonexistent/atrest", "--context", ""]);
    assert!(c.candidates.is_empty());
    assert_eq!(c.render(true), ":4\n");
}

#[test]
fn unreachable_cluster_gives_no_candidates_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    // Port 1 on loopback refuses connections.
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\ncurrent-context: one\nclusters:\n- name: c1\n  cluster: {server: 'http://127.0.0.1:1'}\nusers:\n- name: alice\n  user: {}\ncontexts:\n- name: one\n  context: {cluster: c1, user: alice}\n",
    )
    .unwrap();
    let kc = format!("--kubeconfig={}", path.display());
    let started = std::time::Instant::now();
    let c = complete(&[&kc, "-n", ""]);
    assert_eq!(c.render(true), ":4\n");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn request_detection_from_argv() {
    let os = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
    assert_eq!(
        request_from_args(&os(&["/x/kubectl_complete-encrypt", "status", ""])),
        Some((vec!["status".to_string(), String::new()], true))
    );
    assert_eq!(
        request_from_args(&os(&["kubectl-encrypt", "__complete", "-"])),
        Some((vec!["-".to_string()], true))
    );
    assert_eq!(
        request_from_args(&os(&["kubectl-encrypt", "__completeNoDesc", ""])),
        Some((vec![String::new()], false))
    );
    assert_eq!(request_from_args(&os(&["kubectl-encrypt", "status"])), None);
    assert_eq!(request_from_args(&os(&["kubectl-encrypt"])), None);
}
