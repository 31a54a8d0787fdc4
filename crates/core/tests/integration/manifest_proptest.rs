//! Property: random comment and whitespace variations of a kubeadm manifest (comment lines, blank
//! lines, end-of-line comments, trailing spaces, CRLF, a missing final newline) never make the
//! editor change more than the intended lines, and disabling restores the exact original bytes.

use atrest_core::manifest::Manifest;
use proptest::prelude::*;

const BASE: &str = include_str!("../fixtures/manifests/kubeadm-1.29.yaml");

#[derive(Clone, Debug)]
enum Variation {
    CommentLineBefore { line: usize, indent: usize },
    BlankLineBefore { line: usize, spaces: usize },
    EndOfLineComment { line: usize, gap: usize },
    TrailingSpaces { line: usize, n: usize },
}

fn variation(n_lines: usize) -> impl Strategy<Value = Variation> {
    prop_oneof![
        (0..n_lines, 0usize..8)
            .prop_map(|(line, indent)| Variation::CommentLineBefore { line, indent }),
        (0..n_lines, 0usize..4)
            .prop_map(|(line, spaces)| Variation::BlankLineBefore { line, spaces }),
        (0..n_lines, 1usize..40).prop_map(|(line, gap)| Variation::EndOfLineComment { line, gap }),
        (0..n_lines, 1usize..4).prop_map(|(line, n)| Variation::TrailingSpaces { line, n }),
    ]
}

/// Applies variations to the base manifest's lines; returns the varied text.
fn vary(vars: &[Variation], crlf: bool, final_newline: bool) -> String {
    let mut lines: Vec<String> = BASE.lines().map(str::to_string).collect();
    let mut before: Vec<Vec<String>> = vec![Vec::new(); lines.len()];
    for v in vars {
        match v {
            Variation::CommentLineBefore { line, indent } => {
                before[*line].push(format!("{}# note {line}", " ".repeat(*indent)))
            }
            Variation::BlankLineBefore { line, spaces } => before[*line].push(" ".repeat(*spaces)),
            Variation::EndOfLineComment { line, gap } => {
                if !lines[*line].contains(" #") {
                    lines[*line] = format!("{}{}# eol {line}", lines[*line], " ".repeat(*gap));
                }
            }
            Variation::TrailingSpaces { line, n } => lines[*line].push_str(&" ".repeat(*n)),
        }
    }
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        for b in &before[i] {
            out.push_str(b);
            out.push_str(eol);
        }
        out.push_str(l);
        out.push_str(eol);
    }
    if !final_newline {
        out.truncate(out.len() - eol.len());
    }
    out
}

/// Lines present in `b` but not in `a`, and the reverse, by multiset difference (the edits only
/// insert whole lines, so this is exact for them).
fn added_and_removed(a: &str, b: &str) -> (Vec<String>, Vec<String>) {
    let mut rest: Vec<&str> = a.lines().collect();
    let mut added = Vec::new();
    for l in b.lines() {
        match rest.iter().position(|x| *x == l) {
            Some(i) => {
                rest.remove(i);
            }
            None => added.push(l.to_string()),
        }
    }
    (added, rest.into_iter().map(str::to_string).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn variations_only_ever_gain_the_intended_lines(
        vars in proptest::collection::vec(variation(BASE.lines().count()), 0..25),
        crlf in any::<bool>(),
        final_newline in any::<bool>(),
        reload in any::<bool>(),
        needs_volume in any::<bool>(),
    ) {
        let text = vary(&vars, crlf, final_newline);
        let m = Manifest::parse(&text, "varied.yaml").unwrap();
        let config = if needs_volume { "/etc/kubernetes/enc/enc.yaml" } else { "/etc/kubernetes/pki/enc.yaml" };
        let edit = m.enable_encryption(config, reload.then_some(true)).unwrap();
        let out = edit.manifest.text();
        // Order is kept: the original is a subsequence of the output.
        let mut it = out.lines();
        for l in text.lines() {
            prop_assert!(it.any(|o| o == l), "original line {l:?} lost or moved");
        }
        let (added, removed) = added_and_removed(&text, &out);
        prop_assert!(removed.is_empty(), "removed {removed:?}");
        let mut expected_added = 1 + usize::from(reload);
        if needs_volume {
            expected_added += 3 + 4;
        }
        prop_assert_eq!(added.len(), expected_added, "added {:?}", added);
        for l in &added {
            let t = l.trim().trim_start_matches("- ");
            prop_assert!(
                t.starts_with("--encryption-provider-config")
                    || ["mountPath: /etc/kubernetes/enc", "name: encryption-config", "readOnly: true", "hostPath:",
                        "path: /etc/kubernetes/enc", "type: DirectoryOrCreate"].contains(&t),
                "unexpected line {l:?}"
            );
        }
        prop_assert_eq!(out.contains("\r\n"), crlf);
        prop_assert_eq!(out.ends_with('\n'), final_newline);
        // Idempotent, and reversible to the exact bytes.
        prop_assert!(!edit.manifest.enable_encryption(config, reload.then_some(true)).unwrap().changed());
        prop_assert_eq!(edit.manifest.disable_encryption().unwrap().manifest.text(), text);
    }
}
