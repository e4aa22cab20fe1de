//! Golden transcripts: input lines per session and the exact output with recipients.
//!
//! A transcript is a text file. Each input directive is followed by the output it must
//! produce, indented by two spaces:
//!
//! ```text
//! # JOIN creates the channel; the creator becomes its operator.
//! register alice                 # connect + NICK alice + USER; output not checked
//! alice> JOIN #c                 # one IRC line from alice
//!   alice: :alice!alice@unsplit/0x1 JOIN #c
//!   alice: :irc.unsplit 353 alice = #c :@alice
//!   alice: :irc.unsplit 366 alice #c :End of /NAMES list
//! ```
//!
//! Directives:
//! - `connect NAME [ADDR]`: a create-session entry; sessions get ids 1, 2, 3 … in order.
//! - `register NAME`: connect (if needed), `NICK NAME`, `USER NAME 0 * :NAME`; its output
//!   is not checked.
//! - `NAME> LINE`: the line, byte for byte. `NAME>> LINE`: the same with `\xNN` and `\\`
//!   escapes, for bytes a text file cannot hold.
//! - `disconnect NAME [QUIT MESSAGE]`: a delete-session entry.
//! - `tick`: a tick entry. `wait DURATION`: the clock moves (Go syntax: `90s`, `30m`).
//! - `config`, then the TOML document on lines starting with `| `: a config entry.
//!
//! Expected output: `  NAMES: LINE` (recipients comma-separated), `  closed: NAMES`,
//! `  error: TEXT`. Lines starting with `#` and blank lines are comments.
//!
//! The runner works with anything that applies entries ([`Logic`]), so the same files
//! check the native library and the wasm component. Setting `UNSPLIT_BLESS=1` when
//! running the golden tests rewrites the expected output from the actual one (read the
//! diff before committing it).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::config::parse_duration_ms;
use crate::{Entry, EntryKind, Outcome, Server, SessionId};

/// The `*.txt` files of a directory, sorted by name, with their contents.
pub fn read_dir(dir: &std::path::Path) -> std::io::Result<Vec<(std::path::PathBuf, String)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "txt") {
            files.push(path);
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read_to_string(&p).map(|text| (p, text)))
        .collect()
}

/// The clock every transcript starts at: 2026-11-21 13:03:19 UTC.
pub const START_MS: u64 = 1_795_266_199_000;

/// Anything that applies entries: the native [`Server`], or the component in wasmtime.
pub trait Logic {
    fn apply(&mut self, entry: &Entry) -> Outcome;
}

impl Logic for Server {
    fn apply(&mut self, entry: &Entry) -> Outcome {
        Server::apply(self, entry)
    }
}

/// A transcript file that does not follow the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct TranscriptError {
    pub line: usize,
    pub message: String,
}

/// One input directive: its source text, the entries it makes, and what it must output.
#[derive(Debug, Clone)]
struct Step {
    source: Vec<String>,
    entries: Vec<Entry>,
    checked: bool,
    expected: Vec<String>,
}

/// A parsed transcript.
#[derive(Debug, Clone)]
pub struct Transcript {
    /// Comment and blank lines before each step, kept for blessing.
    steps: Vec<(Vec<String>, Step)>,
    trailing: Vec<String>,
    names: BTreeMap<SessionId, String>,
}

/// The outcomes of running a transcript, one list per step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub outcomes: Vec<Vec<Outcome>>,
}

struct Builder {
    index: u64,
    time_ms: u64,
    ids: BTreeMap<String, SessionId>,
}

impl Builder {
    fn entry(&mut self, session: SessionId, kind: EntryKind) -> Entry {
        self.index += 1;
        Entry {
            index: self.index,
            time_ms: self.time_ms,
            session,
            kind,
        }
    }

    fn id(&self, name: &str, line: usize) -> Result<SessionId, TranscriptError> {
        self.ids.get(name).copied().ok_or_else(|| TranscriptError {
            line,
            message: format!(
                "session {name:?} is not connected (use `connect {name}` or `register {name}`)"
            ),
        })
    }

    fn connect(&mut self, name: &str, addr: &str, line: usize) -> Result<Entry, TranscriptError> {
        if self.ids.contains_key(name) {
            return Err(TranscriptError {
                line,
                message: format!("session {name:?} is already connected"),
            });
        }
        let id = self.ids.len() as u64 + 1;
        self.ids.insert(name.to_owned(), id);
        Ok(self.entry(
            id,
            EntryKind::CreateSession {
                remote_addr: addr.to_owned(),
            },
        ))
    }
}

fn unescape(s: &str, line: usize) -> Result<Vec<u8>, TranscriptError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            match bytes.get(i + 1) {
                Some(b'\\') => {
                    out.push(b'\\');
                    i += 2;
                }
                Some(b'x') => {
                    let hex = s.get(i + 2..i + 4).ok_or_else(|| TranscriptError {
                        line,
                        message: "\\x needs two hex digits".to_owned(),
                    })?;
                    let b = u8::from_str_radix(hex, 16).map_err(|_| TranscriptError {
                        line,
                        message: format!("bad escape \\x{hex}"),
                    })?;
                    out.push(b);
                    i += 4;
                }
                _ => {
                    return Err(TranscriptError {
                        line,
                        message: "unknown escape (use \\\\ or \\xNN)".to_owned(),
                    });
                }
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

impl Transcript {
    /// Parses a transcript.
    pub fn parse(text: &str) -> Result<Transcript, TranscriptError> {
        let mut b = Builder {
            index: 0,
            time_ms: START_MS,
            ids: BTreeMap::new(),
        };
        let mut steps: Vec<(Vec<String>, Step)> = Vec::new();
        let mut pending_comments: Vec<String> = Vec::new();
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let raw = lines[i];
            let lineno = i + 1;
            i += 1;
            let err = |message: String| TranscriptError {
                line: lineno,
                message,
            };
            if raw.trim().is_empty() || raw.starts_with('#') {
                pending_comments.push(raw.to_owned());
                continue;
            }
            if let Some(expected) = raw.strip_prefix("  ") {
                let Some((_, step)) = steps.last_mut() else {
                    return Err(err("expected output before any input".to_owned()));
                };
                if !pending_comments.is_empty() {
                    return Err(err(
                        "expected output must directly follow its input".to_owned()
                    ));
                }
                step.expected.push(expected.to_owned());
                continue;
            }
            let mut source = vec![raw.to_owned()];
            let mut checked = true;
            let (word, rest) = raw.split_once(' ').unwrap_or((raw, ""));
            let entries = match word {
                "connect" => {
                    let (name, addr) = rest.split_once(' ').unwrap_or((rest, "127.0.0.1"));
                    vec![b.connect(name, addr, lineno)?]
                }
                "register" => {
                    checked = false;
                    let name = rest.trim();
                    let mut es = Vec::new();
                    if !b.ids.contains_key(name) {
                        es.push(b.connect(name, "127.0.0.1", lineno)?);
                    }
                    let id = b.id(name, lineno)?;
                    es.push(b.entry(id, EntryKind::IrcLine(format!("NICK {name}").into_bytes())));
                    es.push(b.entry(
                        id,
                        EntryKind::IrcLine(format!("USER {name} 0 * :{name}").into_bytes()),
                    ));
                    es
                }
                "disconnect" => {
                    let (name, message) = rest.split_once(' ').unwrap_or((rest, ""));
                    let id = b.id(name, lineno)?;
                    vec![b.entry(
                        id,
                        EntryKind::DeleteSession {
                            quit_message: message.to_owned(),
                        },
                    )]
                }
                "tick" => vec![b.entry(0, EntryKind::Tick)],
                "wait" => {
                    let ms = parse_duration_ms(rest.trim()).map_err(err)?;
                    b.time_ms += ms;
                    pending_comments.push(raw.to_owned());
                    continue;
                }
                "config" => {
                    let mut toml = String::new();
                    while i < lines.len() && (lines[i].starts_with("| ") || lines[i] == "|") {
                        source.push(lines[i].to_owned());
                        toml.push_str(lines[i].get(2..).unwrap_or(""));
                        toml.push('\n');
                        i += 1;
                    }
                    vec![b.entry(0, EntryKind::Config(toml))]
                }
                _ => {
                    let Some((name, line)) = raw.split_once('>') else {
                        return Err(err(format!("unknown directive {word:?}")));
                    };
                    let id = b.id(name, lineno)?;
                    let bytes = match line.strip_prefix("> ") {
                        Some(escaped) => unescape(escaped, lineno)?,
                        None => line.strip_prefix(' ').unwrap_or(line).as_bytes().to_vec(),
                    };
                    vec![b.entry(id, EntryKind::IrcLine(bytes))]
                }
            };
            let step = Step {
                source,
                entries,
                checked,
                expected: Vec::new(),
            };
            steps.push((std::mem::take(&mut pending_comments), step));
        }
        let names = b.ids.into_iter().map(|(name, id)| (id, name)).collect();
        Ok(Transcript {
            steps,
            trailing: pending_comments,
            names,
        })
    }

    /// Every entry of the transcript, in order.
    pub fn entries(&self) -> Vec<Entry> {
        self.steps
            .iter()
            .flat_map(|(_, s)| s.entries.iter().cloned())
            .collect()
    }

    /// Applies every entry to `logic`.
    pub fn run(&self, logic: &mut dyn Logic) -> Run {
        let outcomes = self
            .steps
            .iter()
            .map(|(_, s)| s.entries.iter().map(|e| logic.apply(e)).collect())
            .collect();
        Run { outcomes }
    }

    /// Applies every entry with `apply`, which may answer one entry with several
    /// outcomes, all of the entry's step (services: the entry, then the password hashes
    /// it asked for, each a later entry of its own).
    pub fn run_with(&self, mut apply: impl FnMut(&Entry) -> Vec<Outcome>) -> Run {
        let outcomes = self
            .steps
            .iter()
            .map(|(_, s)| s.entries.iter().flat_map(&mut apply).collect())
            .collect();
        Run { outcomes }
    }

    /// Splits a flat list of outcomes (one per entry) back into steps.
    pub fn group(&self, flat: Vec<Outcome>) -> Run {
        let mut flat = flat.into_iter();
        let outcomes = self
            .steps
            .iter()
            .map(|(_, s)| flat.by_ref().take(s.entries.len()).collect())
            .collect();
        Run { outcomes }
    }

    fn render(&self, outcomes: &[Outcome]) -> Vec<String> {
        let name = |id: &SessionId| {
            self.names
                .get(id)
                .cloned()
                .unwrap_or_else(|| format!("#{id}"))
        };
        let names = |ids: &[SessionId]| ids.iter().map(name).collect::<Vec<_>>().join(",");
        let mut out = Vec::new();
        for o in outcomes {
            for l in &o.lines {
                out.push(format!("{}: {}", names(&l.recipients), l.line));
            }
            if !o.closed.is_empty() {
                out.push(format!("closed: {}", names(&o.closed)));
            }
            if let Some(e) = &o.error {
                out.push(format!("error: {e}"));
            }
        }
        out
    }

    /// `Ok` when every checked step produced exactly its expected output; otherwise a
    /// report of each differing step.
    pub fn check(&self, run: &Run) -> Result<(), String> {
        let mut report = String::new();
        for ((_, step), outcomes) in self.steps.iter().zip(&run.outcomes) {
            if !step.checked {
                continue;
            }
            let actual = self.render(outcomes);
            if actual != step.expected {
                let _ = writeln!(report, "after `{}`:", step.source[0]);
                for l in &step.expected {
                    if !actual.contains(l) {
                        let _ = writeln!(report, "  - {l}");
                    }
                }
                for l in &actual {
                    if !step.expected.contains(l) {
                        let _ = writeln!(report, "  + {l}");
                    }
                }
                let _ = writeln!(report, "  expected:\n    {}", step.expected.join("\n    "));
                let _ = writeln!(report, "  actual:\n    {}", actual.join("\n    "));
            }
        }
        if report.is_empty() {
            Ok(())
        } else {
            Err(report)
        }
    }

    /// The transcript text with every checked step's expected output replaced by `run`'s.
    pub fn bless(&self, run: &Run) -> String {
        let mut text = String::new();
        for ((comments, step), outcomes) in self.steps.iter().zip(&run.outcomes) {
            for c in comments {
                let _ = writeln!(text, "{c}");
            }
            for s in &step.source {
                let _ = writeln!(text, "{s}");
            }
            if step.checked {
                for l in self.render(outcomes) {
                    let _ = writeln!(text, "  {l}");
                }
            }
        }
        for c in &self.trailing {
            let _ = writeln!(text, "{c}");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_a_transcript() {
        let text = "# ping\nconnect a\na> PING x\n  a: :irc.unsplit PONG irc.unsplit :x\n";
        let t = Transcript::parse(text).unwrap();
        let run = t.run(&mut Server::new());
        t.check(&run).unwrap();
        assert_eq!(t.bless(&run), text);
    }

    #[test]
    fn reports_differences() {
        let t = Transcript::parse("connect a\na> PING x\n  a: wrong\n").unwrap();
        let err = t.check(&t.run(&mut Server::new())).unwrap_err();
        assert!(
            err.contains("- a: wrong") && err.contains("+ a: :irc.unsplit PONG"),
            "{err}"
        );
    }

    #[test]
    fn format_errors_name_the_line() {
        assert_eq!(Transcript::parse("a> PING").unwrap_err().line, 1);
        assert_eq!(Transcript::parse("  a: x").unwrap_err().line, 1);
        assert_eq!(
            Transcript::parse("connect a\nfrobnicate").unwrap_err().line,
            2
        );
        assert_eq!(Transcript::parse("connect a\na>> \\q").unwrap_err().line, 2);
    }

    #[test]
    fn escapes() {
        assert_eq!(unescape("a\\xffb\\\\", 1).unwrap(), b"a\xffb\\");
    }
}
