//! Shell completion for the plugins: the cobra `__complete` protocol that kubectl speaks, answered from the
//! plugin's clap [`Command`], so new subcommands and flags complete without touching this module.
//!
//! kubectl ≥ 1.26 completes `kubectl encrypt ...` by running `kubectl_complete-encrypt ARGS... TOCOMPLETE` from
//! PATH, where the last argument is the word being completed (`""` for a new word), and hands its stdout to the
//! shell unchanged: one candidate per line, optionally `candidate<TAB>description`, then a last line
//! `:<directive>` (kubernetes/kubectl `pkg/cmd/plugin/plugin_completion.go`; directive bits from cobra
//! `completions.go` `ShellCompDirective`). kubectl drops its own global flags for plugins, so the plugin lists its
//! kubectl flags (`--context`, `-n`, ...) itself; here they come from the flattened
//! [`crate::client::ConfigFlags`].
//!
//! A plugin answers when started as `kubectl_complete-<verb>` (argv\[0\], a symlink or copy of the binary) or as
//! `kubectl-<verb> __complete ARGS...` (what the one-line wrapper shipped in the krew archive runs). Plugins call
//! [`dispatch`] first thing in `main`.
//!
//! What completes: subcommands (with their `about`), flags when the word starts with `-` (with their help; flags
//! already given are left out unless repeatable), enumerated values (clap possible values), file and directory
//! values (left to the shell through the directive), and live values looked up with the kubeconfig the command
//! line names ([`Source`]): namespaces, contexts, clusters and users of the kubeconfig, object names, API
//! resources, onboarded users. A failed lookup prints no candidates and `:4`, never an error text: stdout is
//! parsed by the shell. If `BASH_COMP_DEBUG_FILE` is set, the reason is appended there (cobra's convention).

mod live;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Arg, ArgAction, Command, ValueHint};

pub use live::Source;

/// cobra `ShellCompDirective` bits (spf13/cobra `completions.go`).
pub mod directive {
    /// Use the shell's default behaviour (file completion) after the candidates.
    pub const DEFAULT: u32 = 0;
    /// An error occurred: ignore the candidates.
    pub const ERROR: u32 = 1;
    /// Do not add a space after the completion.
    pub const NO_SPACE: u32 = 2;
    /// Do not fall back to file completion when there is no candidate.
    pub const NO_FILE_COMP: u32 = 4;
    /// The candidates are file extensions to filter by.
    pub const FILTER_FILE_EXT: u32 = 8;
    /// Complete directory names only.
    pub const FILTER_DIRS: u32 = 16;
    /// Keep the candidates in the given order.
    pub const KEEP_ORDER: u32 = 32;
}

/// The argument kubectl's wrapper passes first: `kubectl-<verb> __complete ARGS... TOCOMPLETE`.
pub const COMPLETE_ARG: &str = "__complete";
/// cobra's variant without descriptions.
pub const COMPLETE_NO_DESC_ARG: &str = "__completeNoDesc";
/// The executable name prefix kubectl looks up for plugin completion.
pub const COMPLETE_EXE_PREFIX: &str = "kubectl_complete-";

/// One completion candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The word the shell inserts.
    pub value: String,
    /// Shown next to it (one line).
    pub description: Option<String>,
}

impl Candidate {
    fn plain(value: impl Into<String>) -> Self {
        Candidate {
            value: value.into(),
            description: None,
        }
    }

    fn described(value: impl Into<String>, description: Option<String>) -> Self {
        Candidate {
            value: value.into(),
            description: description.filter(|d| !d.is_empty()),
        }
    }
}

/// The answer to one completion request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completions {
    /// In the order they are printed.
    pub candidates: Vec<Candidate>,
    /// [`directive`] bits.
    pub directive: u32,
}

impl Completions {
    /// The protocol text: `value[\tdescription]` lines, then `:<directive>`.
    pub fn render(&self, with_descriptions: bool) -> String {
        let mut out = String::new();
        for c in &self.candidates {
            // A candidate with a newline or tab would corrupt the protocol; such values are never offered.
            out.push_str(&c.value);
            if with_descriptions && let Some(d) = &c.description {
                out.push('\t');
                out.push_str(d);
            }
            out.push('\n');
        }
        out.push(':');
        out.push_str(&self.directive.to_string());
        out.push('\n');
        out
    }
}

/// How a completion request is started, from the process arguments (argv\[0\] included).
///
/// `Some((args, descriptions))` when this process should answer a completion request: `args` are the words after
/// the plugin name, the last one being the word to complete.
pub fn request_from_args(argv: &[OsString]) -> Option<(Vec<String>, bool)> {
    let exe = argv.first()?;
    let base = std::path::Path::new(exe)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let words = |rest: &[OsString]| -> Vec<String> {
        rest.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    };
    if base.starts_with(COMPLETE_EXE_PREFIX) {
        return Some((words(&argv[1..]), true));
    }
    match argv.get(1).and_then(|a| a.to_str()) {
        Some(COMPLETE_ARG) => Some((words(&argv[2..]), true)),
        Some(COMPLETE_NO_DESC_ARG) => Some((words(&argv[2..]), false)),
        _ => None,
    }
}

/// Answers a completion request if this process was started for one (see [`request_from_args`]), printing the
/// protocol text on stdout; `None` otherwise, and the plugin goes on as usual. Call it first in `main`:
///
/// ```ignore
/// if let Some(code) = atrest_core::complete::dispatch(Cli::command, &[("name", Source::secrets())]) {
///     return code;
/// }
/// ```
///
/// `sources` maps clap argument ids to live value sources, on top of the built-in ones (`namespace`,
/// `context`, `cluster`, `user`: see [`Source`]).
pub fn dispatch(command: impl FnOnce() -> Command, sources: &[(&str, Source)]) -> Option<ExitCode> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let (args, descriptions) = request_from_args(&argv)?;
    let completer = Completer::new(command()).sources(sources);
    let answer = completer.complete(&args);
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (the shell gave up) is not worth an error text.
    let _ = stdout.write_all(answer.render(descriptions).as_bytes());
    let _ = stdout.flush();
    Some(ExitCode::SUCCESS)
}

/// Answers completion requests for one plugin's clap [`Command`].
pub struct Completer {
    command: Command,
    sources: Vec<(String, Source)>,
}

/// Where the words before the one being completed left us.
struct Position<'a> {
    /// The (sub)command being completed.
    command: &'a Command,
    /// A flag waiting for its value (`--context <TAB>`).
    pending: Option<&'a Arg>,
    /// Positional values given so far in `command`.
    positionals: usize,
    /// Args given so far (ids), for leaving them out of flag candidates.
    seen: Vec<String>,
    /// Values given so far: (arg id, value), all commands along the path.
    values: Vec<(String, String)>,
    /// After `--`: everything is positional.
    after_double_dash: bool,
}

/// What the command line says so far, for live lookups: the values of every flag given, by clap arg id.
#[derive(Debug, Clone, Default)]
pub struct Given {
    values: Vec<(String, String)>,
}

impl Given {
    /// The last value given for the arg `id`.
    pub fn value(&self, id: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| k == id)
            .map(|(_, v)| v.as_str())
    }

    /// Every value given for the arg `id`, in order.
    pub fn values(&self, id: &str) -> Vec<&str> {
        self.values
            .iter()
            .filter(|(k, _)| k == id)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

impl Completer {
    /// A completer for `command` (built here: global args propagated, `help` subcommand added).
    pub fn new(mut command: Command) -> Self {
        command.build();
        Completer {
            command,
            sources: Vec::new(),
        }
    }

    /// Adds live value sources by clap arg id (they take precedence over the built-in ones).
    pub fn sources(mut self, sources: &[(&str, Source)]) -> Self {
        self.sources
            .extend(sources.iter().map(|(id, s)| (id.to_string(), s.clone())));
        self
    }

    /// Completes the last word of `args` (the words after the plugin name; no words means an empty one).
    pub fn complete(&self, args: &[String]) -> Completions {
        let (to_complete, before) = match args.split_last() {
            Some((last, before)) => (last.as_str(), before),
            None => ("", &[][..]),
        };
        let pos = self.walk(before);
        let given = Given {
            values: pos.values.clone(),
        };

        if let Some(arg) = pos.pending {
            return self.values_of(arg, to_complete, "", &given);
        }
        if !pos.after_double_dash {
            if let Some(rest) = to_complete.strip_prefix("--")
                && let Some((name, value)) = rest.split_once('=')
            {
                return match find_long(pos.command, name) {
                    Some(arg) if takes_value(arg) => {
                        self.values_of(arg, value, &format!("--{name}="), &given)
                    }
                    _ => none(),
                };
            }
            if to_complete.starts_with('-') {
                return flags(&pos, to_complete);
            }
        }

        // A new word that is not a flag: subcommands, then the next positional's values.
        let mut out = Completions {
            candidates: Vec::new(),
            directive: directive::NO_FILE_COMP,
        };
        if pos.positionals == 0 && !pos.after_double_dash {
            for sub in pos.command.get_subcommands().filter(|s| !s.is_hide_set()) {
                if sub.get_name().starts_with(to_complete) {
                    out.candidates.push(Candidate::described(
                        sub.get_name(),
                        sub.get_about().map(|a| first_line(&a.to_string())),
                    ));
                }
            }
        }
        if let Some(arg) = next_positional(pos.command, pos.positionals) {
            let values = self.values_of(arg, to_complete, "", &given);
            out.candidates.extend(values.candidates);
            if out.candidates.is_empty() {
                out.directive = values.directive;
            }
        }
        out
    }

    /// Reads the words before the one being completed.
    fn walk<'a>(&'a self, words: &[String]) -> Position<'a> {
        let mut pos = Position {
            command: &self.command,
            pending: None,
            positionals: 0,
            seen: Vec::new(),
            values: Vec::new(),
            after_double_dash: false,
        };
        for word in words {
            if let Some(arg) = pos.pending.take() {
                pos.values.push((arg.get_id().to_string(), word.clone()));
                continue;
            }
            if !pos.after_double_dash && word == "--" {
                pos.after_double_dash = true;
                continue;
            }
            if !pos.after_double_dash
                && let Some(rest) = word.strip_prefix("--")
            {
                let (name, value) = match rest.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (rest, None),
                };
                if let Some(arg) = find_long(pos.command, name) {
                    pos.seen.push(arg.get_id().to_string());
                    match value {
                        Some(v) => pos.values.push((arg.get_id().to_string(), v.to_string())),
                        None if needs_value(arg) => pos.pending = Some(arg),
                        None => {}
                    }
                }
                continue;
            }
            if !pos.after_double_dash && word.len() > 1 && word.starts_with('-') {
                let shorts: Vec<char> = word[1..].chars().collect();
                for (i, c) in shorts.iter().enumerate() {
                    let Some(arg) = find_short(pos.command, *c) else {
                        break;
                    };
                    pos.seen.push(arg.get_id().to_string());
                    if takes_value(arg) {
                        let attached: String = shorts[i + 1..].iter().collect();
                        let attached = attached.strip_prefix('=').unwrap_or(&attached);
                        if !attached.is_empty() {
                            pos.values
                                .push((arg.get_id().to_string(), attached.to_string()));
                        } else if needs_value(arg) {
                            pos.pending = Some(arg);
                        }
                        break;
                    }
                }
                continue;
            }
            if pos.positionals == 0
                && !pos.after_double_dash
                && let Some(sub) = find_subcommand(pos.command, word)
            {
                pos.command = sub;
                continue;
            }
            if let Some(arg) = next_positional(pos.command, pos.positionals) {
                pos.values.push((arg.get_id().to_string(), word.clone()));
            }
            pos.positionals += 1;
        }
        pos
    }

    /// Candidates for a value of `arg` starting with `prefix`, each printed as `emit_prefix` + value.
    fn values_of(&self, arg: &Arg, prefix: &str, emit_prefix: &str, given: &Given) -> Completions {
        let id = arg.get_id().as_str();
        let source = self
            .sources
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, s)| s.clone())
            .or_else(|| Source::builtin(id));
        let mut candidates: Vec<Candidate> = Vec::new();
        if let Some(source) = source {
            match live::lookup(&source, given) {
                Ok(found) => candidates.extend(found),
                Err(reason) => debug_log(&format!("completing {id}: {reason}")),
            }
        } else {
            for pv in arg.get_possible_values() {
                if !pv.is_hide_set() {
                    candidates.push(Candidate::described(
                        pv.get_name(),
                        pv.get_help().map(|h| first_line(&h.to_string())),
                    ));
                }
            }
        }
        candidates.retain(|c| c.value.starts_with(prefix) && is_printable(&c.value));
        candidates.dedup_by(|a, b| a.value == b.value);
        for c in &mut candidates {
            c.value = format!("{emit_prefix}{}", c.value);
        }
        let directive = if !candidates.is_empty() {
            directive::NO_FILE_COMP
        } else {
            match arg.get_value_hint() {
                ValueHint::DirPath => directive::FILTER_DIRS,
                ValueHint::AnyPath | ValueHint::FilePath | ValueHint::ExecutablePath => {
                    directive::DEFAULT
                }
                _ => directive::NO_FILE_COMP,
            }
        };
        Completions {
            candidates,
            directive,
        }
    }
}

fn none() -> Completions {
    Completions {
        candidates: Vec::new(),
        directive: directive::NO_FILE_COMP,
    }
}

/// Flag names of the current command starting with `word` (`--x` forms; `-x` too unless `word` starts with `--`).
fn flags(pos: &Position<'_>, word: &str) -> Completions {
    let mut candidates = Vec::new();
    let with_shorts = !word.starts_with("--");
    for arg in pos.command.get_arguments() {
        if arg.is_positional() || arg.is_hide_set() {
            continue;
        }
        let repeatable = matches!(arg.get_action(), ArgAction::Append | ArgAction::Count);
        if !repeatable && pos.seen.iter().any(|s| s == arg.get_id().as_str()) {
            continue;
        }
        let help = arg.get_help().map(|h| first_line(&h.to_string()));
        if let Some(long) = arg.get_long() {
            let name = format!("--{long}");
            if name.starts_with(word) {
                candidates.push(Candidate::described(name, help.clone()));
            }
        }
        if with_shorts && let Some(short) = arg.get_short() {
            let name = format!("-{short}");
            if name.starts_with(word) {
                candidates.push(Candidate::described(name, help));
            }
        }
    }
    Completions {
        candidates,
        directive: directive::NO_FILE_COMP,
    }
}

fn find_long<'a>(cmd: &'a Command, name: &str) -> Option<&'a Arg> {
    cmd.get_arguments().find(|a| {
        a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|al| al.contains(&name))
    })
}

fn find_short(cmd: &Command, c: char) -> Option<&Arg> {
    cmd.get_arguments().find(|a| {
        a.get_short() == Some(c) || a.get_all_short_aliases().is_some_and(|al| al.contains(&c))
    })
}

fn find_subcommand<'a>(cmd: &'a Command, word: &str) -> Option<&'a Command> {
    cmd.get_subcommands()
        .find(|s| s.get_name() == word || s.get_all_aliases().any(|a| a == word))
}

/// The positional taking the `index`-th positional word (the last one when it takes many).
fn next_positional(cmd: &Command, index: usize) -> Option<&Arg> {
    let positionals: Vec<&Arg> = cmd.get_positionals().collect();
    match positionals.get(index) {
        Some(arg) => Some(arg),
        None => positionals
            .last()
            .copied()
            .filter(|a| matches!(a.get_action(), ArgAction::Append)),
    }
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

/// Takes a value that must follow as the next word (not an optional one like `--dry-run[=client]`).
fn needs_value(arg: &Arg) -> bool {
    takes_value(arg) && arg.get_num_args().is_none_or(|n| n.min_values() > 0)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

fn is_printable(value: &str) -> bool {
    !value.is_empty() && !value.contains(['\n', '\r', '\t'])
}

/// Appends to `$BASH_COMP_DEBUG_FILE` when set (cobra's debug convention); completion never writes to stderr.
fn debug_log(message: &str) {
    if let Some(path) = std::env::var_os("BASH_COMP_DEBUG_FILE")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(f, "atrest completion: {message}");
    }
}
