//! The canary: replay recorded inputs through two module versions and report every input
//! whose output lines, recipients, closed sessions or error differ.
//!
//! A recording is a snapshot (host state + logic state) and the committed entries after
//! it, read from a node's data directory or downloaded through the private API. The
//! replay runs the host's own checks ([`crate::sm::decide`], [`crate::sm::absorb`]) so
//! every entry reaches the logic exactly as it did on the network; the host state follows
//! the old version (it is what happened). The two versions run on two threads in a
//! pipeline. Nothing is ever written anywhere but the report.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use openraft::EntryPayload;
use openraft::storage::{RaftLogReader, RaftLogStorage};
use serde::Serialize;

use crate::logic::{Logic, LogicError};
use crate::modules::{Activation, ModuleBytes, ModuleRecord, Modules};
use crate::raft::{Op, Request, TypeConfig};
use crate::runtime::{self, Limits, LogicModule, Outcome};
use crate::sm::{Decision, Replicated, SnapshotData, absorb, absorb_rejected, decide};

#[derive(Debug, thiserror::Error)]
pub enum CanaryError {
    #[error("{0}")]
    Recording(String),
    #[error("module {which}: {why}")]
    Module { which: String, why: String },
    #[error("the {which} module cannot start from the recorded state: {why}")]
    Start { which: &'static str, why: String },
    #[error("the {which} module failed (not a trap of an entry): {why}")]
    Runtime { which: &'static str, why: String },
}

/// What one module did with one entry, in comparable form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Applied {
    Outcome {
        /// Each line with its recipients, in order.
        lines: Vec<(String, Vec<u64>)>,
        closed: Vec<u64>,
        error: Option<String>,
    },
    /// The entry trapped (kind) and was rejected.
    Rejected(String),
}

impl Applied {
    pub fn from_outcome(o: &Outcome) -> Applied {
        Applied::Outcome {
            lines: o
                .lines
                .iter()
                .map(|l| (l.line.clone(), l.recipients.clone()))
                .collect(),
            closed: o.closed.clone(),
            error: o.error.clone(),
        }
    }

    pub fn from_result(r: &Result<Outcome, LogicError>) -> Applied {
        match r {
            Ok(o) => Applied::from_outcome(o),
            Err(LogicError::Rejected { kind, .. }) => Applied::Rejected(format!("{kind:?}")),
            Err(e) => Applied::Rejected(e.to_string()),
        }
    }

    pub fn is_rejected(&self) -> bool {
        matches!(self, Applied::Rejected(_))
    }

    /// One line per output line (`→ recipients  line`), then closed sessions and error.
    pub fn render(&self) -> String {
        match self {
            Applied::Rejected(kind) => format!("rejected ({kind})"),
            Applied::Outcome {
                lines,
                closed,
                error,
            } => {
                let mut out: Vec<String> = lines
                    .iter()
                    .map(|(line, to)| format!("→ {}  {line}", recipients(to)))
                    .collect();
                if !closed.is_empty() {
                    out.push(format!("closed {}", recipients(closed)));
                }
                if let Some(e) = error {
                    out.push(format!("error {e}"));
                }
                if out.is_empty() {
                    out.push("(no output)".into());
                }
                out.join("\n")
            }
        }
    }

    fn lines(&self) -> Vec<String> {
        self.render().lines().map(str::to_owned).collect()
    }
}

fn recipients(ids: &[u64]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// An entry's input as operators read it: the IRC line, or its kind in parentheses.
pub fn describe(entry: &runtime::Entry) -> String {
    match &entry.kind {
        runtime::EntryKind::IrcLine(b) => String::from_utf8_lossy(b).into_owned(),
        runtime::EntryKind::CreateSession(addr) => format!("(create session from {addr})"),
        runtime::EntryKind::DeleteSession(q) => format!("(delete session: {q})"),
        runtime::EntryKind::Tick => "(tick)".into(),
        runtime::EntryKind::Config(_) => "(configuration)".into(),
    }
}

/// Recorded inputs: where they start, and the entries after it.
pub struct Recording {
    /// Host state at the start (default: an empty network).
    pub replicated: Replicated,
    /// Logic state at the start (`None`: the logic's empty state).
    pub logic_state: Option<Vec<u8>>,
    /// Index the recording starts after.
    pub start_index: u64,
    /// Committed requests after `start_index`, with their indexes.
    pub entries: Vec<(u64, Request)>,
}

impl Recording {
    /// From a snapshot (`SnapshotData` bytes, or none) and the log entries; entries at or
    /// before the snapshot's index are dropped.
    pub fn new(
        snapshot: Option<&[u8]>,
        mut entries: Vec<(u64, Request)>,
    ) -> Result<Recording, CanaryError> {
        let (replicated, logic_state) = match snapshot {
            Some(bytes) => {
                let snap = SnapshotData::decode(bytes).map_err(|e| {
                    CanaryError::Recording(format!("the snapshot does not decode: {e}"))
                })?;
                (snap.replicated, Some(snap.logic))
            }
            None => (Replicated::default(), None),
        };
        let start_index = replicated.applied_index();
        entries.retain(|(i, _)| *i > start_index);
        entries.sort_by_key(|(i, _)| *i);
        Ok(Recording {
            replicated,
            logic_state,
            start_index,
            entries,
        })
    }

    /// Reads a node's data directory: `snapshots/current.snapshot` and the raft log. The
    /// node must not be running (the log is locked while it is): stop it or copy the
    /// directory.
    pub async fn from_data_dir(dir: &Path) -> Result<Recording, CanaryError> {
        let snapshots = crate::snapshot::SnapshotStore::open(&dir.join("snapshots"))
            .map_err(|e| CanaryError::Recording(format!("{}: {e}", dir.display())))?;
        let snapshot = snapshots
            .load()
            .map_err(|e| CanaryError::Recording(format!("reading the snapshot: {e}")))?
            .map(|(_, data)| data);
        let raft_dir = dir.join("raft");
        if !raft_dir.is_dir() {
            return Err(CanaryError::Recording(format!(
                "{} is not a node's data directory (no raft/)",
                dir.display()
            )));
        }
        let mut log = unsplit_logstore::LogStore::<TypeConfig>::open(&raft_dir).map_err(|e| {
            CanaryError::Recording(format!(
                "opening the raft log: {e} (a running node holds it: stop the node or copy its directory)"
            ))
        })?;
        let state = log
            .get_log_state()
            .await
            .map_err(|e| CanaryError::Recording(e.to_string()))?;
        let first = state.last_purged_log_id.map(|l| l.index + 1).unwrap_or(0);
        let last = state.last_log_id.map(|l| l.index).unwrap_or(0);
        let mut entries = Vec::new();
        let mut from = first;
        while from <= last && state.last_log_id.is_some() {
            let to = (from + 10_000).min(last + 1);
            let chunk = log
                .try_get_log_entries(from..to)
                .await
                .map_err(|e| CanaryError::Recording(e.to_string()))?;
            entries.extend(normal_entries(chunk));
            from = to;
        }
        Recording::new(snapshot.as_deref(), entries)
    }

    /// The modules the recording knows: the snapshot's, plus uploads and activations in
    /// the recorded entries (so `active` means the active one at the end).
    pub fn modules(&self) -> Modules {
        let mut modules = self.replicated.modules.clone();
        for (index, req) in &self.entries {
            match &req.op {
                Op::ModuleUpload {
                    bytes,
                    name,
                    version,
                    snapshot_format,
                } => modules.add(ModuleRecord {
                    hash: bytes.hash(),
                    name: name.clone(),
                    version: version.clone(),
                    snapshot_format: *snapshot_format,
                    size: bytes.0.len(),
                    uploaded_index: *index,
                    uploaded_ms: req.time_ms,
                    bytes: bytes.clone(),
                }),
                Op::ModuleActivate { hash } => {
                    if let Some(r) = modules.known.get(hash) {
                        let version = r.version.clone();
                        modules.history.push(Activation {
                            hash: hash.clone(),
                            version,
                            index: *index,
                            time_ms: req.time_ms,
                        });
                    }
                }
                _ => {}
            }
        }
        modules
    }
}

/// The normal (request) entries of a log chunk.
pub fn normal_entries(chunk: Vec<openraft::Entry<TypeConfig>>) -> Vec<(u64, Request)> {
    chunk
        .into_iter()
        .filter_map(|e| match e.payload {
            EntryPayload::Normal(req) => Some((e.log_id.index, req)),
            _ => None,
        })
        .collect()
}

/// Finds a module for `--old`/`--new`: a component file, `builtin` (this binary's), or a
/// module the recording knows (hash, hash prefix, version, `active`, `previous`).
pub fn resolve_module(
    what: &str,
    recording: &Recording,
) -> Result<(ModuleBytes, String), CanaryError> {
    let err = |why: String| CanaryError::Module {
        which: what.to_owned(),
        why,
    };
    if what == "builtin" {
        return Ok((
            ModuleBytes::new(unsplit_irc_component::IRC_COMPONENT),
            "builtin".into(),
        ));
    }
    let path = Path::new(what);
    if path.is_file() {
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        return Ok((ModuleBytes::new(&bytes), what.to_owned()));
    }
    let modules = recording.modules();
    let record = modules.resolve(what).map_err(|e| {
        err(format!(
            "{e} (not a file either; known: {})",
            modules
                .known
                .values()
                .map(|m| format!("{} {}", m.version, &m.hash[..12]))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    Ok((record.bytes.clone(), what.to_owned()))
}

/// One input where the two versions disagree.
#[derive(Debug, Clone, Serialize)]
pub struct Divergence {
    pub index: u64,
    pub time_ms: u64,
    pub session: u64,
    pub input: String,
    pub old: Applied,
    pub new: Applied,
}

/// An input at least one version rejected (a "message of death").
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub index: u64,
    pub input: String,
    pub old: Applied,
    pub new: Applied,
}

/// Details kept at most; beyond it only counted.
pub const MAX_DETAILS: usize = 1000;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub old: String,
    pub new: String,
    pub old_hash: String,
    pub new_hash: String,
    pub start_index: u64,
    pub last_index: u64,
    /// Entries that reached the logic (and so were compared).
    pub inputs: u64,
    /// Entries the host answered alone (no such session, duplicates, module operations).
    pub skipped: u64,
    pub divergent: u64,
    pub divergences: Vec<Divergence>,
    pub rejections: Vec<Rejection>,
    /// Time each version spent inside the logic.
    pub old_busy: Duration,
    pub new_busy: Duration,
    pub elapsed: Duration,
}

impl Report {
    pub fn rate(inputs: u64, busy: Duration) -> f64 {
        inputs as f64 / busy.as_secs_f64().max(1e-9)
    }

    /// The text summary (and the first `show` divergences).
    pub fn summary(&self, show: usize) -> String {
        let mut out = format!(
            "canary: {} inputs (entries {}..={}), {} answered by the host alone\n\
             old {} ({}): {:.0} inputs/s\n\
             new {} ({}): {:.0} inputs/s\n\
             replay took {:.2?}\n",
            self.inputs,
            self.start_index + 1,
            self.last_index,
            self.skipped,
            self.old,
            &self.old_hash[..12],
            Report::rate(self.inputs, self.old_busy),
            self.new,
            &self.new_hash[..12],
            Report::rate(self.inputs, self.new_busy),
            self.elapsed,
        );
        if !self.rejections.is_empty() {
            out.push_str(&format!(
                "{} recorded input(s) trapped a version:\n",
                self.rejections.len()
            ));
            for r in self.rejections.iter().take(show) {
                out.push_str(&format!(
                    "  #{} {:?}: old {}, new {}\n",
                    r.index,
                    r.input,
                    short(&r.old),
                    short(&r.new)
                ));
            }
        }
        if self.divergent == 0 {
            out.push_str("no divergence: both versions produced the same output for every input\n");
            return out;
        }
        out.push_str(&format!(
            "DIVERGENCE: {} of {} inputs differ\n",
            self.divergent, self.inputs
        ));
        for d in self.divergences.iter().take(show) {
            out.push_str(&format!(
                "\n#{} session {} input {:?}\n",
                d.index, d.session, d.input
            ));
            let (old, new) = (d.old.lines(), d.new.lines());
            for l in &old {
                if !new.contains(l) {
                    out.push_str(&format!("  - {l}\n"));
                }
            }
            for l in &new {
                if !old.contains(l) {
                    out.push_str(&format!("  + {l}\n"));
                }
            }
        }
        if self.divergences.len() > show {
            out.push_str(&format!(
                "\n… and {} more (see the HTML report)\n",
                self.divergent as usize - show
            ));
        }
        out
    }

    /// A self-contained HTML page: summary, messages of death, every divergence with
    /// the two outputs side by side.
    pub fn html(&self) -> String {
        let e = crate::api::html_escape;
        let mut rows = String::new();
        for d in &self.divergences {
            let (old, new) = (d.old.lines(), d.new.lines());
            let side = |mine: &[String], other: &[String]| {
                mine.iter()
                    .map(|l| {
                        if other.contains(l) {
                            format!("<div>{}</div>", e(l))
                        } else {
                            format!("<div class=ch>{}</div>", e(l))
                        }
                    })
                    .collect::<String>()
            };
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td class=o>{}</td><td class=n>{}</td></tr>\n",
                d.index,
                d.session,
                e(&d.input),
                side(&old, &new),
                side(&new, &old)
            ));
        }
        let mut deaths = String::new();
        for r in &self.rejections {
            deaths.push_str(&format!(
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                r.index,
                e(&r.input),
                e(&short(&r.old)),
                e(&short(&r.new))
            ));
        }
        let verdict = if self.divergent == 0 {
            "<p class=ok>No divergence: both versions produced the same output for every input.</p>"
                .to_owned()
        } else {
            format!(
                "<p class=bad>{} of {} inputs differ{}.</p>",
                self.divergent,
                self.inputs,
                if self.divergences.len() < self.divergent as usize {
                    format!(" (the first {} are shown)", self.divergences.len())
                } else {
                    String::new()
                }
            )
        };
        format!(
            "<!DOCTYPE html><html><head><meta charset=utf-8><title>unsplit canary: {old} → {new}</title>\
             <style>body{{font:14px sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}\
             td,th{{border:1px solid #ccc;padding:4px;vertical-align:top;text-align:left}}\
             td.o div,td.n div{{font:12px monospace;white-space:pre-wrap}}\
             td.o .ch{{background:#fdd}}td.n .ch{{background:#dfd}}.ok{{color:#070}}.bad{{color:#b00;font-weight:bold}}</style></head><body>\
             <h1>Canary report</h1>\
             <table><tr><th>old</th><td>{old} <code>{oh}</code></td><td>{orate:.0} inputs/s</td></tr>\
             <tr><th>new</th><td>{new} <code>{nh}</code></td><td>{nrate:.0} inputs/s</td></tr>\
             <tr><th>inputs</th><td>{inputs} (entries {from}..={to})</td><td>{skipped} answered by the host alone</td></tr></table>\
             {verdict}\
             <h2>Inputs that trapped a version ({nd})</h2><table><tr><th>index</th><th>input</th><th>old</th><th>new</th></tr>{deaths}</table>\
             <h2>Divergences</h2><table><tr><th>index</th><th>session</th><th>input</th><th>old output</th><th>new output</th></tr>{rows}</table>\
             </body></html>\n",
            old = e(&self.old),
            new = e(&self.new),
            oh = &self.old_hash,
            nh = &self.new_hash,
            orate = Report::rate(self.inputs, self.old_busy),
            nrate = Report::rate(self.inputs, self.new_busy),
            inputs = self.inputs,
            from = self.start_index + 1,
            to = self.last_index,
            skipped = self.skipped,
            nd = self.rejections.len(),
        )
    }
}

fn short(a: &Applied) -> String {
    match a {
        Applied::Rejected(kind) => format!("rejected ({kind})"),
        Applied::Outcome { lines, .. } => format!("{} line(s)", lines.len()),
    }
}

/// What the old version's thread hands the new version's thread.
struct Step {
    entry: runtime::Entry,
    limits: Limits,
    old: Applied,
}

/// Replays `recording` through `old` and `new`. `progress(done, total)` is called now and
/// then from the calling thread.
pub fn replay(
    recording: &Recording,
    (old, old_label): (Arc<LogicModule>, String),
    (new, new_label): (Arc<LogicModule>, String),
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Report, CanaryError> {
    let started = Instant::now();
    let mut st = recording.replicated.clone();
    let limits = st.config().limits();
    let start = |module: Arc<LogicModule>, which: &'static str| {
        match &recording.logic_state {
            Some(state) => Logic::from_snapshot(module, limits, state),
            None => Logic::new(module, limits),
        }
        .map_err(|e| CanaryError::Start {
            which,
            why: e.to_string(),
        })
    };
    let mut old_logic = start(old.clone(), "old")?;
    let new_logic = start(new.clone(), "new")?;
    let total = recording.entries.len() as u64;
    let (tx, rx) = sync_channel::<Step>(4096);

    // The new version runs on its own thread, comparing as it goes.
    let comparer = std::thread::spawn(move || {
        let mut logic = new_logic;
        let mut busy = Duration::ZERO;
        let mut divergent = 0u64;
        let mut divergences = Vec::new();
        let mut rejections = Vec::new();
        for step in rx {
            if step.limits != logic.limits() {
                logic.set_limits(step.limits);
            }
            let (index, time_ms, session) =
                (step.entry.index, step.entry.time_ms, step.entry.session);
            let input = describe(&step.entry);
            let t = Instant::now();
            let result = logic.apply(step.entry);
            busy += t.elapsed();
            if let Err(LogicError::Fatal(why)) = &result {
                return Err(CanaryError::Runtime {
                    which: "new",
                    why: why.clone(),
                });
            }
            let new = Applied::from_result(&result);
            if (new.is_rejected() || step.old.is_rejected()) && rejections.len() < MAX_DETAILS {
                rejections.push(Rejection {
                    index,
                    input: input.clone(),
                    old: step.old.clone(),
                    new: new.clone(),
                });
            }
            if new != step.old {
                divergent += 1;
                if divergences.len() < MAX_DETAILS {
                    divergences.push(Divergence {
                        index,
                        time_ms,
                        session,
                        input,
                        old: step.old,
                        new,
                    });
                }
            }
        }
        Ok((busy, divergent, divergences, rejections))
    });

    let mut old_busy = Duration::ZERO;
    let (mut inputs, mut skipped) = (0u64, 0u64);
    let mut last_index = recording.start_index;
    let mut last_progress = Instant::now();
    let mut failure = None;
    for (n, (index, req)) in recording.entries.iter().enumerate() {
        last_index = *index;
        st.now_ms = st.now_ms.max(req.time_ms);
        let now = st.now_ms;
        let entry = match decide(&st, *index, now, &req.op) {
            Decision::Logic(entry) => entry,
            Decision::Done(_) | Decision::Host => {
                skipped += 1;
                continue;
            }
        };
        inputs += 1;
        let limits = old_logic.limits();
        let t = Instant::now();
        let result = old_logic.apply(entry.clone());
        old_busy += t.elapsed();
        let old = Applied::from_result(&result);
        match result {
            Ok(outcome) => {
                absorb(&mut st, *index, now, req.op.clone(), &outcome);
                let next = st.config().limits();
                if next != old_logic.limits() {
                    old_logic.set_limits(next);
                }
            }
            Err(LogicError::Rejected { .. }) => absorb_rejected(&mut st, now, &req.op),
            Err(e) => {
                failure = Some(CanaryError::Runtime {
                    which: "old",
                    why: e.to_string(),
                });
                break;
            }
        }
        if tx.send(Step { entry, limits, old }).is_err() {
            break; // the new version failed; its error is reported below
        }
        if last_progress.elapsed() > Duration::from_millis(200) {
            last_progress = Instant::now();
            progress(n as u64 + 1, total);
        }
    }
    drop(tx);
    let (new_busy, divergent, divergences, rejections) =
        comparer.join().map_err(|_| CanaryError::Runtime {
            which: "new",
            why: "the comparing thread panicked".into(),
        })??;
    if let Some(e) = failure {
        return Err(e);
    }
    progress(total, total);
    Ok(Report {
        old: old_label,
        new: new_label,
        old_hash: old.hash.clone(),
        new_hash: new.hash.clone(),
        start_index: recording.start_index,
        last_index,
        inputs,
        skipped,
        divergent,
        divergences,
        rejections,
        old_busy,
        new_busy,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_renders_lines_recipients_and_rejections() {
        let a = Applied::Outcome {
            lines: vec![(":s 001 n :hi".into(), vec![1, 2])],
            closed: vec![3],
            error: None,
        };
        assert_eq!(a.render(), "→ 1,2  :s 001 n :hi\nclosed 3");
        assert_eq!(
            Applied::Rejected("Panic".into()).render(),
            "rejected (Panic)"
        );
        assert_ne!(a, Applied::Rejected("Panic".into()));
    }
}
