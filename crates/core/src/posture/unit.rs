//! The parts of a systemd service unit that decide how etcd is started: `ExecStart=`,
//! `Environment=` and `EnvironmentFile=` of the `[Service]` section.
//!
//! Follows systemd.syntax(7), systemd.service(5) and systemd.exec(5): `#`/`;` comment lines; a line
//! ending in `\` continues on the next one (the backslash becomes a space; comment lines inside a
//! continuation are skipped); an empty `ExecStart=` resets the list and the last command is the one
//! run (a `Type=oneshot` unit may list several; etcd units have one); the `@-:+!` prefixes; double and
//! single quotes with C escapes; `${VAR}` expands inside a word and a lone `$VAR` word splits into
//! words at whitespace; `%%` is `%`. Variables set by `EnvironmentFile=` override `Environment=`
//! ones; a later file overrides an earlier one; a `-` prefix means a missing file is ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `[Service]` settings read from a unit file, before variable expansion.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceSection {
    /// The `ExecStart=` command (the last one after any reset), split into words, prefixes removed.
    pub exec_start: Option<Vec<String>>,
    /// 1-based line of that `ExecStart=`.
    pub exec_start_line: usize,
    /// `Environment=` assignments in order.
    pub environment: Vec<(String, String)>,
    /// `EnvironmentFile=` paths in order, with whether a missing file is allowed (`-` prefix).
    pub environment_files: Vec<(PathBuf, bool)>,
}

/// A logical line (continuations joined) with its first physical line number.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        if cur.is_some() && (trimmed.starts_with('#') || trimmed.starts_with(';')) {
            continue;
        }
        let (cont, body) = match trimmed.strip_suffix('\\') {
            Some(b) => (true, b),
            None => (false, trimmed),
        };
        match cur.as_mut() {
            Some((_, acc)) => {
                acc.push(' ');
                acc.push_str(body);
            }
            None => cur = Some((i + 1, body.to_string())),
        }
        if !cont && let Some(done) = cur.take() {
            out.push(done);
        }
    }
    if let Some(done) = cur {
        out.push(done);
    }
    out
}

/// Split a value into words the way systemd does for `ExecStart=` and `Environment=`: whitespace
/// separates; `"..."` and `'...'` quote (and may start mid-word); C escapes (`\n`, `\t`, `\\`, `\"`,
/// `\'`, `\x41`, ...) are decoded; a backslash before any other character keeps that character.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (_, '\\') => {
                in_word = true;
                let Some(e) = chars.next() else {
                    break;
                };
                match e {
                    'n' => cur.push('\n'),
                    't' => cur.push('\t'),
                    'r' => cur.push('\r'),
                    'a' => cur.push('\x07'),
                    'b' => cur.push('\x08'),
                    'f' => cur.push('\x0c'),
                    'v' => cur.push('\x0b'),
                    's' => cur.push(' '),
                    'x' => {
                        let hex: String = (0..2).filter_map(|_| chars.next()).collect();
                        let v = u8::from_str_radix(&hex, 16)
                            .map_err(|_| format!("invalid escape \\x{hex}"))?;
                        cur.push(v as char);
                    }
                    other => cur.push(other),
                }
            }
            (_, c) => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} quote"));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Parse a unit file's text. `origin` names it in errors (`file:line: ...`).
pub fn parse_service(text: &str, origin: &str) -> Result<ServiceSection, String> {
    let mut out = ServiceSection::default();
    let mut section = String::new();
    for (line_no, line) in logical_lines(text) {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if l.starts_with('[') {
            let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
                return Err(format!(
                    "{origin}:{line_no}: invalid section header {l:?}: write it as [Name]"
                ));
            };
            section = name.trim().to_string();
            continue;
        }
        let Some((key, value)) = l.split_once('=') else {
            return Err(format!(
                "{origin}:{line_no}: expected Key=Value, found {l:?}"
            ));
        };
        if section != "Service" {
            continue;
        }
        let (key, value) = (key.trim(), value.trim());
        let bad = |e: String| format!("{origin}:{line_no}: {key}=: {e}");
        match key {
            "ExecStart" => {
                if value.is_empty() {
                    out.exec_start = None;
                    continue;
                }
                let (value, argv0_given) = strip_exec_prefixes(value);
                let mut words = split_words(value).map_err(bad)?;
                if argv0_given && words.len() > 1 {
                    // `@/path argv0 args...`: the second word is only argv[0]; keep the path.
                    words.remove(1);
                }
                if words.is_empty() {
                    return Err(bad("no command".into()));
                }
                out.exec_start = Some(words);
                out.exec_start_line = line_no;
            }
            "Environment" => {
                if value.is_empty() {
                    out.environment.clear();
                    continue;
                }
                for w in split_words(value).map_err(bad)? {
                    match w.split_once('=') {
                        Some((k, v)) if !k.is_empty() => {
                            out.environment.push((k.to_string(), v.to_string()))
                        }
                        _ => {
                            return Err(bad(format!(
                                "{w:?} is not an assignment: write NAME=value"
                            )));
                        }
                    }
                }
            }
            "EnvironmentFile" => {
                if value.is_empty() {
                    out.environment_files.clear();
                    continue;
                }
                let (path, optional) = match value.strip_prefix('-') {
                    Some(p) => (p.trim(), true),
                    None => (value, false),
                };
                out.environment_files.push((PathBuf::from(path), optional));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Remove systemd's `@`, `-`, `:`, `+`, `!` (and `!!`) command prefixes; report whether `@` was there.
fn strip_exec_prefixes(v: &str) -> (&str, bool) {
    let rest = v.trim_start_matches(['@', '-', ':', '+', '!']);
    let prefix = &v[..v.len() - rest.len()];
    (rest, prefix.contains('@'))
}

/// Parse an environment file (`KEY=VALUE` lines; `#`/`;` comments; values may be quoted; a trailing
/// `\` continues the line; an `export ` prefix is tolerated).
pub fn parse_env_file(text: &str, origin: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (line_no, line) in logical_lines(text) {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        let l = l.strip_prefix("export ").map(str::trim_start).unwrap_or(l);
        let Some((k, v)) = l.split_once('=') else {
            return Err(format!(
                "{origin}:{line_no}: expected NAME=value, found {l:?}"
            ));
        };
        let v = v.trim();
        let value = if v.starts_with('"') || v.starts_with('\'') {
            split_words(v)
                .map_err(|e| format!("{origin}:{line_no}: {e}"))?
                .join(" ")
        } else {
            v.to_string()
        };
        out.push((k.trim().to_string(), value));
    }
    Ok(out)
}

/// Expand `$VAR`, `${VAR}` and `$$` in ExecStart words (systemd.service(5) "Command lines"): a word
/// that is exactly `$VAR` becomes the variable's whitespace-separated words (none when unset or
/// empty); `${VAR}` is replaced in place. `%%` becomes `%`.
pub fn expand(words: &[String], env: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for w in words {
        if let Some(name) = w.strip_prefix('$')
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            if let Some(v) = env.get(name) {
                out.extend(v.split_whitespace().map(str::to_string));
            }
            continue;
        }
        let mut s = String::new();
        let mut rest = w.as_str();
        while let Some(i) = rest.find(['$', '%']) {
            s.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(t) = tail.strip_prefix("$$") {
                s.push('$');
                rest = t;
            } else if let Some(t) = tail.strip_prefix("%%") {
                s.push('%');
                rest = t;
            } else if let Some(t) = tail.strip_prefix("${")
                && let Some(end) = t.find('}')
            {
                if let Some(v) = env.get(&t[..end]) {
                    s.push_str(v);
                }
                rest = &t[end + 1..];
            } else {
                s.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
        s.push_str(rest);
        out.push(s);
    }
    out
}

/// How a unit starts etcd: the arguments after the etcd binary and the environment it sees.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnitCommand {
    /// The etcd binary as written.
    pub binary: String,
    /// The arguments after it.
    pub args: Vec<String>,
    /// The process environment from the unit (Environment=, EnvironmentFile=, `VAR=x` words before
    /// the binary in an `env`/shell wrapper).
    pub env: BTreeMap<String, String>,
    /// 1-based line of the ExecStart=.
    pub line: usize,
}

/// Read a unit file and its EnvironmentFile=s (node paths resolved under `root`) and find the etcd
/// command: the first word whose file name is `etcd` in ExecStart, or inside `sh -c '...'`.
pub fn load_etcd_command(unit: &Path, root: &Path) -> Result<UnitCommand, String> {
    let origin = unit.display().to_string();
    let text = std::fs::read_to_string(unit).map_err(|e| format!("{origin}: cannot read: {e}"))?;
    let svc = parse_service(&text, &origin)?;
    let mut env: BTreeMap<String, String> = svc.environment.iter().cloned().collect();
    for (file, optional) in &svc.environment_files {
        let host = super::under_root(root, file);
        match std::fs::read_to_string(&host) {
            Ok(t) => env.extend(parse_env_file(&t, &host.display().to_string())?),
            Err(e) if *optional && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "{origin}: EnvironmentFile={}: cannot read {}: {e}",
                    file.display(),
                    host.display()
                ));
            }
        }
    }
    let Some(words) = &svc.exec_start else {
        return Err(format!(
            "{origin}: no ExecStart= in the [Service] section; pass the etcd service unit"
        ));
    };
    let words = expand(words, &env);
    find_etcd(&words, env, svc.exec_start_line).ok_or_else(|| {
        format!(
            "{origin}:{}: ExecStart= does not run etcd ({}); pass the unit that starts etcd",
            svc.exec_start_line,
            words.first().map(String::as_str).unwrap_or_default()
        )
    })
}

fn find_etcd(
    words: &[String],
    mut env: BTreeMap<String, String>,
    line: usize,
) -> Option<UnitCommand> {
    let pos = words
        .iter()
        .position(|w| crate::kubeadm::node::is_program(w, "etcd"));
    if let Some(i) = pos {
        for w in &words[..i] {
            if let Some((k, v)) = w.split_once('=')
                && !k.is_empty()
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                env.insert(k.to_string(), v.to_string());
            }
        }
        return Some(UnitCommand {
            binary: words[i].clone(),
            args: words[i + 1..].to_vec(),
            env,
            line,
        });
    }
    // `/bin/sh -c "GOMAXPROCS=$(nproc) /usr/bin/etcd --flags..."`
    let c = words.iter().position(|w| w == "-c")?;
    let script = words.get(c + 1)?;
    let inner = split_words(script).ok()?;
    let inner = expand(&inner, &env);
    find_etcd(&inner, env, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn continuation_lines_and_comments() {
        let text = "[Unit]\nDescription=etcd\n\n[Service]\n# comment\nExecStart=/usr/bin/etcd \\\n  --name=a \\\n# inside\n  --client-cert-auth=true \\\n  --data-dir=/var/lib/etcd\nRestart=always\n";
        let s = parse_service(text, "etcd.service").unwrap();
        assert_eq!(
            s.exec_start.unwrap(),
            [
                "/usr/bin/etcd",
                "--name=a",
                "--client-cert-auth=true",
                "--data-dir=/var/lib/etcd"
            ]
        );
        assert_eq!(s.exec_start_line, 6);
    }

    #[test]
    fn exec_start_reset_prefixes_and_quotes() {
        let text = "[Service]\nExecStart=/bin/false\nExecStart=\nExecStart=-@/usr/local/bin/etcd etcd-argv0 \"--name=my node\" '--data-dir=/x y' --a=\\x41\n";
        let s = parse_service(text, "u").unwrap();
        assert_eq!(
            s.exec_start.unwrap(),
            [
                "/usr/local/bin/etcd",
                "--name=my node",
                "--data-dir=/x y",
                "--a=A"
            ]
        );
    }

    #[test]
    fn sections_other_than_service_are_ignored() {
        let text = "[Unit]\nExecStart=/nope\n[Install]\nWantedBy=multi-user.target\n";
        assert_eq!(parse_service(text, "u").unwrap().exec_start, None);
        let err =
            parse_service("[Service]\nExecStart=/usr/bin/etcd \"--x\n", "u.service").unwrap_err();
        assert!(
            err.starts_with("u.service:2: ExecStart=: unterminated"),
            "{err}"
        );
        let err = parse_service("[Service\n", "u.service").unwrap_err();
        assert!(err.contains("u.service:1: invalid section header"), "{err}");
        let err = parse_service("[Service]\nEnvironment=JUSTAWORD\n", "u.service").unwrap_err();
        assert!(
            err.contains("u.service:2: Environment=: \"JUSTAWORD\" is not an assignment"),
            "{err}"
        );
    }

    #[test]
    fn environment_assignments_quoted_and_reset() {
        let text = "[Service]\nEnvironment=A=1 \"B=two words\" 'C=3'\nEnvironment=D=4\nEnvironmentFile=-/etc/default/etcd\nEnvironmentFile=/etc/etcd/etcd.conf\nExecStart=/usr/bin/etcd\n";
        let s = parse_service(text, "u").unwrap();
        assert_eq!(
            s.environment,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "3".into()),
                ("D".into(), "4".into())
            ]
        );
        assert_eq!(
            s.environment_files,
            vec![
                (PathBuf::from("/etc/default/etcd"), true),
                (PathBuf::from("/etc/etcd/etcd.conf"), false)
            ]
        );
        let s = parse_service(
            "[Service]\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2\n",
            "u",
        )
        .unwrap();
        assert_eq!(s.environment, vec![("B".into(), "2".into())]);
    }

    #[test]
    fn env_file_format() {
        let text = "# etcd settings\nETCD_NAME=default\nexport ETCD_DATA_DIR=\"/var/lib/etcd/default.etcd\"\n; other comment\nETCD_LISTEN_CLIENT_URLS='https://10.0.0.1:2379'\nETCD_LONG=a \\\n b\n";
        let v = parse_env_file(text, "etcd.conf").unwrap();
        assert_eq!(
            v,
            vec![
                ("ETCD_NAME".into(), "default".into()),
                ("ETCD_DATA_DIR".into(), "/var/lib/etcd/default.etcd".into()),
                (
                    "ETCD_LISTEN_CLIENT_URLS".into(),
                    "https://10.0.0.1:2379".into()
                ),
                ("ETCD_LONG".into(), "a  b".into()),
            ]
        );
        let err = parse_env_file("OK=1\nnot an assignment\n", "f").unwrap_err();
        assert_eq!(err, "f:2: expected NAME=value, found \"not an assignment\"");
    }

    #[test]
    fn variable_expansion() {
        let e = env(&[
            ("OPTS", "--a=1  --b=2"),
            ("DIR", "/var/lib/etcd"),
            ("EMPTY", ""),
        ]);
        let words: Vec<String> = [
            "/usr/bin/etcd",
            "$OPTS",
            "--data-dir=${DIR}",
            "$EMPTY",
            "$UNSET",
            "--x=$$HOME",
            "--p=100%%",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            expand(&words, &e),
            [
                "/usr/bin/etcd",
                "--a=1",
                "--b=2",
                "--data-dir=/var/lib/etcd",
                "--x=$HOME",
                "--p=100%"
            ]
        );
    }

    #[test]
    fn finds_etcd_behind_env_and_shell_wrappers() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let c = find_etcd(
            &w(&[
                "/usr/bin/env",
                "GOMAXPROCS=2",
                "ETCD_AUTO_TLS=true",
                "/usr/bin/etcd",
                "--name=a",
            ]),
            BTreeMap::new(),
            3,
        )
        .unwrap();
        assert_eq!(c.binary, "/usr/bin/etcd");
        assert_eq!(c.args, ["--name=a"]);
        assert_eq!(c.env.get("ETCD_AUTO_TLS").map(String::as_str), Some("true"));
        let c = find_etcd(
            &w(&[
                "/bin/bash",
                "-c",
                "GOMAXPROCS=$(nproc) /usr/bin/etcd --name=\"b\" --client-cert-auth=${CCA}",
            ]),
            env(&[("CCA", "false")]),
            1,
        )
        .unwrap();
        assert_eq!(c.args, ["--name=b", "--client-cert-auth=false"]);
        assert!(find_etcd(&w(&["/usr/bin/kube-apiserver", "--x"]), BTreeMap::new(), 1).is_none());
    }

    /// The real external-etcd unit from liangguohun/external_etcd (fixture copied from
    /// /work/shared/fixtures; see tests/fixtures/posture/SOURCES.md): `\`-continued ExecStart, no final newline.
    #[test]
    fn real_unit_file() {
        let text = include_str!(
            "../../../../tests/fixtures/posture/liangguohun-external_etcd-etcd.service"
        );
        let s = parse_service(text, "etcd.service").unwrap();
        let words = s.exec_start.unwrap();
        assert_eq!(words[0], "/data/etcd/bin/etcd");
        assert!(words.contains(&"--trusted-ca-file=/data/etcd/ssl/ca.pem".to_string()));
        assert_eq!(words.last().unwrap(), "--quota-backend-bytes=8589934592");
        assert_eq!(words.len(), 20);
    }

    #[test]
    fn load_resolves_environment_files_under_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc/etcd")).unwrap();
        std::fs::write(
            root.join("etc/etcd/etcd.env"),
            "ETCD_CLIENT_CERT_AUTH=true\nETCD_OPTS=--peer-auto-tls=true\n",
        )
        .unwrap();
        let unit = root.join("etcd.service");
        std::fs::write(
            &unit,
            "[Service]\nEnvironment=ETCD_CLIENT_CERT_AUTH=false\nEnvironmentFile=/etc/etcd/etcd.env\nEnvironmentFile=-/etc/etcd/missing.env\nExecStart=/usr/bin/etcd $ETCD_OPTS\n",
        )
        .unwrap();
        let c = load_etcd_command(&unit, root).unwrap();
        assert_eq!(c.args, ["--peer-auto-tls=true"]);
        assert_eq!(
            c.env["ETCD_CLIENT_CERT_AUTH"], "true",
            "EnvironmentFile= wins"
        );
        assert_eq!(c.line, 5);
        std::fs::write(
            &unit,
            "[Service]\nEnvironmentFile=/etc/etcd/missing.env\nExecStart=/usr/bin/etcd\n",
        )
        .unwrap();
        let err = load_etcd_command(&unit, root).unwrap_err();
        assert!(
            err.contains("EnvironmentFile=/etc/etcd/missing.env: cannot read"),
            "{err}"
        );
        std::fs::write(&unit, "[Service]\nExecStart=/usr/bin/dockerd\n").unwrap();
        let err = load_etcd_command(&unit, root).unwrap_err();
        assert!(err.contains(":2: ExecStart= does not run etcd"), "{err}");
    }
}
