//! The canary: replay recorded inputs through two module versions and report every input
//! whose output lines, recipients, closed sessions or error differ.
//!
//! The two versions are two IRC logic modules, or two versions of one services plugin;
//! everything else runs as it did on the network. A recording is a snapshot (host state,
//! the logic's and the plugins' state) and the committed entries after it, read from a
//! node's data directory or downloaded through the private API. The replay runs the
//! host's own checks ([`crate::sm::decide`], [`crate::sm::absorb`]) so every entry
//! reaches the logic exactly as it did on the network; the host state follows the old
//! version (it is what happened). Recorded activations of the other modules (a plugin
//! upgrade while the logic is compared, say) happen on both sides at their index;
//! activations of the compared kind do not (each side keeps its version). The two
//! versions run on two threads in a pipeline. Nothing is ever written anywhere but the
//! report.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use openraft::EntryPayload;
use openraft::storage::{RaftLogReader, RaftLogStorage};
use serde::Serialize;

use unsplit_services::Context;
use unsplit_statemachine::pipeline::Start;
use unsplit_statemachine::{self as irc};

use crate::logic::{Logic, LogicError, LogicState, Ran};
use crate::modules::{ModuleBytes, ModuleCache, ModuleKind, Modules};
use crate::raft::{Op, Request, TypeConfig};
use crate::runtime::{Compiled, Limits, LogicModule, PluginModule};
use crate::sm::{Decision, Replicated, SnapshotData, absorb, absorb_rejected, decide, hash_room};

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
    pub fn from_outcome(o: &irc::Outcome) -> Applied {
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

    /// A run of the logic and its plugins; a plugin trap shows as a line of its own.
    pub fn from_result(r: &Result<Ran, LogicError>) -> Applied {
        match r {
            Ok(ran) => {
                let mut applied = Applied::from_outcome(&ran.done.outcome);
                if let Applied::Outcome { lines, .. } = &mut applied {
                    for t in &ran.plugin_traps {
                        lines.push((
                            format!("(plugin {} trapped: {:?})", t.plugin, t.kind),
                            Vec::new(),
                        ));
                    }
                }
                applied
            }
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
pub fn describe(entry: &irc::Entry) -> String {
    match &entry.kind {
        irc::EntryKind::IrcLine(b) => redact(&String::from_utf8_lossy(b)),
        irc::EntryKind::CreateSession { remote_addr } => {
            format!("(create session from {remote_addr})")
        }
        irc::EntryKind::DeleteSession { quit_message } => {
            format!("(delete session: {quit_message})")
        }
        irc::EntryKind::Tick => "(tick)".into(),
        irc::EntryKind::Config(_) => "(configuration)".into(),
    }
}

/// An IRC line as operators may see it (reports, the status page, `/rejected`):
/// whatever may carry a password is replaced by `<redacted>`. Tags and a client prefix
/// are dropped as the logic drops them; then an allow-list: channel messages and the
/// standard commands are shown whole; `PASS`, `OPER` and an `AUTHENTICATE` payload lose
/// their arguments; a private message (to a service or anyone) and any other command (a
/// service's own, such as `NS`) show only their first word, and a lone word only when it
/// looks like a command (letters, at most 12).
pub fn redact(line: &str) -> String {
    let mut rest = line.trim_start();
    for marker in ['@', ':'] {
        if rest.starts_with(marker) {
            rest = rest
                .split_once(' ')
                .map(|(_, r)| r.trim_start())
                .unwrap_or("");
        }
    }
    let (cmd, args) = rest.split_once(' ').unwrap_or((rest, ""));
    let upper = cmd.to_ascii_uppercase();
    let first_word = |text: &str| {
        let text = text.trim_start_matches(':').trim();
        match text.split_once(' ') {
            Some((word, _)) => format!("{word} <redacted>"),
            None if !text.is_empty()
                && text.len() <= 12
                && text.bytes().all(|b| b.is_ascii_alphabetic()) =>
            {
                text.to_owned()
            }
            None if text.is_empty() => String::new(),
            None => "<redacted>".to_owned(),
        }
    };
    match upper.as_str() {
        "PASS" | "OPER" => format!("{cmd} <redacted>"),
        "AUTHENTICATE" if !matches!(args.trim(), "PLAIN" | "*" | "+" | "") => {
            format!("{cmd} <redacted>")
        }
        "PRIVMSG" | "NOTICE" => match args.split_once(' ') {
            Some((target, text)) if !target.starts_with('#') => {
                format!("{cmd} {target} :{}", first_word(text))
            }
            _ => rest.to_owned(),
        },
        "AUTHENTICATE" | "AWAY" | "CAP" | "GLINE" | "INVITE" | "ISON" | "JOIN" | "KICK"
        | "KILL" | "LIST" | "LUSERS" | "MODE" | "MOTD" | "NAMES" | "NICK" | "PART" | "PING"
        | "PONG" | "QUIT" | "TIME" | "TOPIC" | "UNGLINE" | "USER" | "USERHOST" | "VERSION"
        | "WHO" | "WHOIS" | "WHOWAS" => rest.to_owned(),
        _ if args.is_empty() => rest.to_owned(),
        _ => format!("{cmd} {}", first_word(args)),
    }
}

/// A run's index and input as operators read it.
pub fn describe_start(start: &Start) -> (u64, String) {
    match start {
        Start::Entry(e) => (e.index, describe(e)),
        Start::SetServices(ctx, infos) => (
            ctx.index,
            format!(
                "(services: {})",
                infos
                    .iter()
                    .map(|i| format!("{} {}", i.name, i.version))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Start::Event(ctx, e) => (
            ctx.index,
            format!("(event for {}: {:?})", e.service, kind_of(&e.event)),
        ),
    }
}

/// An event's kind without its data (a password hash result carries secrets).
fn kind_of(event: &unsplit_services::Event) -> &'static str {
    use unsplit_services::Event as E;
    match event {
        E::PasswordHashed { .. } => "password hash",
        E::Sasl { .. } => "SASL",
        E::Message { .. } => "message",
        E::Settings(_) => "settings",
        _ => "event",
    }
}

/// Recorded inputs: where they start, and the entries after it.
pub struct Recording {
    /// Host state at the start (default: an empty network).
    pub replicated: Replicated,
    /// The logic's and the plugins' state at the start (`None`: the logic's empty state,
    /// no plugins).
    pub logic_state: Option<LogicState>,
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
                Op::ModuleChunk { .. } | Op::ModuleUpload { .. } => {
                    crate::sm::record_upload(&mut modules, *index, req.time_ms, req.op.clone());
                }
                Op::ModuleActivate { hash } => modules.activate(hash, *index, req.time_ms),
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
    if let Some(builtin) = unsplit_irc_component::builtin(what) {
        return Ok((ModuleBytes::new(builtin), what.to_owned()));
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

/// What the old version's thread hands the new version's thread (most are runs: the
/// size of a switch does not matter).
#[allow(clippy::large_enum_variant)]
enum Step {
    /// A run to compare.
    Run {
        start: Start,
        room: usize,
        limits: (Limits, Limits, u64),
        old: Applied,
    },
    /// A recorded activation of a logic module (another kind than the compared one):
    /// both sides switch.
    SwitchLogic(Arc<LogicModule>),
    /// A recorded activation of a plugin that is not the compared one: both sides
    /// activate it, and what the logic answers the new services is compared.
    ActivatePlugin {
        module: Arc<PluginModule>,
        name: String,
        ctx: Context,
        room: usize,
        old: Applied,
    },
}

/// What is compared: the IRC logic, or one plugin.
fn subject(module: &Compiled, which: &'static str) -> Result<ModuleKind, CanaryError> {
    match module {
        Compiled::Logic(_) => Ok(ModuleKind::Logic),
        Compiled::Plugin(p) => {
            let info = p.info().map_err(|e| CanaryError::Start {
                which,
                why: format!("its info() failed: {e}"),
            })?;
            Ok(ModuleKind::Plugin(info.name))
        }
    }
}

/// A logic for one side: the recording's start with `module` in place of its kind's.
fn start_side(
    recording: &Recording,
    cache: &ModuleCache,
    logic: Arc<LogicModule>,
    (limits, plugin_limits): (Limits, Limits),
    module: &Compiled,
    which: &'static str,
) -> Result<Logic, CanaryError> {
    let fail = |e: LogicError| CanaryError::Start {
        which,
        why: e.to_string(),
    };
    let modules = recording.modules();
    let base = match &recording.logic_state {
        Some(state) => Logic::from_state(logic, limits, plugin_limits, state, |hash| {
            let record = modules
                .known
                .get(hash)
                .ok_or_else(|| format!("the recording lacks plugin module {hash}"))?;
            cache.get_plugin(&record.bytes)
        })
        .map_err(fail)?,
        None => Logic::new(logic, limits, plugin_limits).map_err(fail)?,
    };
    let ctx = Context {
        index: recording.start_index,
        time_ms: recording.replicated.now_ms,
    };
    crate::sm::fork_with(&base, module, ctx).map_err(|why| CanaryError::Start { which, why })
}

/// Replays `recording` through `old` and `new` (two logic modules, or two versions of
/// one plugin). `progress(done, total)` is called now and then from the calling thread.
pub fn replay(
    recording: &Recording,
    (old, old_label): (Compiled, String),
    (new, new_label): (Compiled, String),
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Report, CanaryError> {
    let started = Instant::now();
    let kind = subject(&old, "old")?;
    if subject(&new, "new")? != kind {
        return Err(CanaryError::Module {
            which: new_label,
            why: format!("it is not {kind}, like the old module"),
        });
    }
    let mut st = recording.replicated.clone();
    let config = st.config().clone();
    let limits = (config.limits(), config.plugin_limits());
    // The recording's modules, compiled once each; the two compared are known already.
    let cache = ModuleCache::new(old.engine().clone());
    cache.insert(old.clone());
    cache.insert(new.clone());
    // The logic the network ran at the start (the builtin before any activation).
    let base_logic = match st.modules.active() {
        Some(a) => st
            .modules
            .known
            .get(&a.hash)
            .map(|r| r.bytes.clone())
            .ok_or_else(|| {
                CanaryError::Recording(format!("the recording lacks module {}", a.hash))
            })?,
        None => ModuleBytes::new(unsplit_irc_component::IRC_COMPONENT),
    };
    let base_logic = cache.get(&base_logic).map_err(|why| CanaryError::Start {
        which: "old",
        why: format!("the recording's logic: {why}"),
    })?;
    let mut old_logic = start_side(recording, &cache, base_logic.clone(), limits, &old, "old")?;
    let new_logic = start_side(recording, &cache, base_logic, limits, &new, "new")?;
    let total = recording.entries.len() as u64;
    let (tx, rx) = sync_channel::<(u64, u64, u64, String, Step)>(4096);

    // The new version runs on its own thread, comparing as it goes.
    let comparer = std::thread::spawn(move || {
        let mut logic = new_logic;
        let mut busy = Duration::ZERO;
        let mut divergent = 0u64;
        let mut divergences = Vec::new();
        let mut rejections = Vec::new();
        for (index, time_ms, session, input, step) in rx {
            let t = Instant::now();
            let (result, old) = match step {
                Step::SwitchLogic(m) => {
                    if let Err(e) = logic.switch_to(m) {
                        return Err(CanaryError::Runtime {
                            which: "new",
                            why: format!("the recorded activation at {index}: {e}"),
                        });
                    }
                    continue;
                }
                Step::ActivatePlugin {
                    module,
                    name,
                    ctx,
                    room,
                    old,
                } => (logic.activate_plugin(module, Some(&name), ctx, room), old),
                Step::Run {
                    start,
                    room,
                    limits: (l, p, at),
                    old,
                } => {
                    if (l, p) != (logic.limits(), logic.plugin_limits())
                        && let Err(e) = logic.set_limits(l, p, at)
                    {
                        return Err(CanaryError::Runtime {
                            which: "new",
                            why: e.to_string(),
                        });
                    }
                    (logic.run(start, room), old)
                }
            };
            busy += t.elapsed();
            if let Err(LogicError::Fatal(why)) = &result {
                return Err(CanaryError::Runtime {
                    which: "new",
                    why: why.clone(),
                });
            }
            let new = Applied::from_result(&result);
            if (new.is_rejected() || old.is_rejected()) && rejections.len() < MAX_DETAILS {
                rejections.push(Rejection {
                    index,
                    input: input.clone(),
                    old: old.clone(),
                    new: new.clone(),
                });
            }
            if new != old {
                divergent += 1;
                if divergences.len() < MAX_DETAILS {
                    divergences.push(Divergence {
                        index,
                        time_ms,
                        session,
                        input,
                        old,
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
        let index = *index;
        last_index = index;
        st.now_ms = st.now_ms.max(req.time_ms);
        let now = st.now_ms;
        let room = hash_room(&st);
        if last_progress.elapsed() > Duration::from_millis(200) {
            last_progress = Instant::now();
            progress(n as u64 + 1, total);
        }
        let start = match decide(&st, index, now, &req.op) {
            Decision::Done(_) => {
                skipped += 1;
                continue;
            }
            Decision::Host => {
                skipped += 1;
                let step = match module_op(&mut st, &cache, &kind, index, now, &req.op) {
                    Recorded::Nothing => continue,
                    Recorded::Services => {
                        let ctx = Context {
                            index,
                            time_ms: now,
                        };
                        Start::SetServices(ctx, old_logic.plugin_infos())
                    }
                    Recorded::Logic(m) => {
                        // As the node: a refusal leaves everything as it was.
                        if old_logic.switch_to(m.clone()).is_ok() {
                            push_activation(&mut st, &req.op, index, now);
                            if tx
                                .send((index, now, 0, String::new(), Step::SwitchLogic(m)))
                                .is_err()
                            {
                                break;
                            }
                        }
                        continue;
                    }
                    Recorded::Plugin(module, name) => {
                        let ctx = Context {
                            index,
                            time_ms: now,
                        };
                        let t = Instant::now();
                        let result =
                            old_logic.activate_plugin(module.clone(), Some(&name), ctx, room);
                        old_busy += t.elapsed();
                        let ran = match result {
                            Ok(ran) => ran,
                            Err(LogicError::Refused(_)) => continue,
                            Err(e) => {
                                failure = Some(CanaryError::Runtime {
                                    which: "old",
                                    why: e.to_string(),
                                });
                                break;
                            }
                        };
                        push_activation(&mut st, &req.op, index, now);
                        absorb(&mut st, index, now, req.op.clone(), &ran.done);
                        let old = Applied::from_result(&Ok(ran));
                        let input = format!("(activation of plugin {name})");
                        inputs += 1;
                        let step = Step::ActivatePlugin {
                            module,
                            name,
                            ctx,
                            room,
                            old,
                        };
                        if tx.send((index, now, 0, input, step)).is_err() {
                            break;
                        }
                        continue;
                    }
                };
                push_activation(&mut st, &req.op, index, now);
                step
            }
            Decision::Run(start) => {
                // A configuration a plugin refuses is answered before any run, as on a node.
                if let Op::Config { toml, .. } = &req.op {
                    match old_logic.check_settings(toml) {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => {
                            skipped += 1;
                            continue;
                        }
                        Err(e) => {
                            failure = Some(CanaryError::Runtime {
                                which: "old",
                                why: e.to_string(),
                            });
                            break;
                        }
                    }
                }
                start
            }
        };
        inputs += 1;
        let (_, input) = describe_start(&start);
        let session = match &start {
            Start::Entry(e) => e.session,
            _ => 0,
        };
        let limits = (old_logic.limits(), old_logic.plugin_limits(), index);
        let t = Instant::now();
        let result = old_logic.run(start.clone(), room);
        old_busy += t.elapsed();
        let old = Applied::from_result(&result);
        match result {
            Ok(ran) => {
                absorb(&mut st, index, now, req.op.clone(), &ran.done);
                let next = (st.config().limits(), st.config().plugin_limits());
                if next != (limits.0, limits.1)
                    && let Err(e) = old_logic.set_limits(next.0, next.1, index)
                {
                    failure = Some(CanaryError::Runtime {
                        which: "old",
                        why: e.to_string(),
                    });
                    break;
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
        let step = Step::Run {
            start,
            room,
            limits,
            old,
        };
        if tx.send((index, now, session, input, step)).is_err() {
            break; // the new version failed; its error is reported below
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
        old_hash: old.hash().to_owned(),
        new_hash: new.hash().to_owned(),
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

/// What a recorded module operation means for the replay.
enum Recorded {
    /// Nothing to run (an upload, an activation a node refused or that changes nothing).
    Nothing,
    /// An activation of the compared kind: each side keeps its version; for a plugin
    /// the logic is told the services, as it was.
    Services,
    /// Both sides switch to this logic.
    Logic(Arc<LogicModule>),
    /// Both sides activate this plugin.
    Plugin(Arc<PluginModule>, String),
}

/// A recorded module operation against the replayed host state, as a node applies it:
/// uploads are recorded (`sm::record_upload`), activations resolved against the modules
/// known at that point.
fn module_op(
    st: &mut Replicated,
    cache: &ModuleCache,
    subject: &ModuleKind,
    index: u64,
    now: u64,
    op: &Op,
) -> Recorded {
    let Op::ModuleActivate { hash } = op else {
        crate::sm::record_upload(&mut st.modules, index, now, op.clone());
        return Recorded::Nothing;
    };
    let Some(record) = st.modules.known.get(hash).cloned() else {
        return Recorded::Nothing;
    };
    let already = st
        .modules
        .active_of(&record.kind)
        .is_some_and(|a| a.hash == *hash);
    if record.kind == *subject {
        return match (&record.kind, already) {
            (ModuleKind::Plugin(_), false) => Recorded::Services,
            _ => Recorded::Nothing,
        };
    }
    if already {
        return Recorded::Nothing;
    }
    match (cache.compiled(&record.bytes), &record.kind) {
        (Ok(Compiled::Logic(m)), ModuleKind::Logic) => Recorded::Logic(m),
        (Ok(Compiled::Plugin(p)), ModuleKind::Plugin(name)) => Recorded::Plugin(p, name.clone()),
        // It does not compile, or is not what it was uploaded as: the node refused it.
        _ => Recorded::Nothing,
    }
}

/// Records an activation in the replayed host state.
fn push_activation(st: &mut Replicated, op: &Op, index: u64, now: u64) {
    if let Op::ModuleActivate { hash } = op {
        st.modules.activate(hash, index, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_a_report() {
        for (line, shown) in [
            (
                "PRIVMSG NickServ :IDENTIFY alice s3cret",
                "PRIVMSG NickServ :IDENTIFY <redacted>",
            ),
            (
                "privmsg nickserv :register pw mail",
                "privmsg nickserv :register <redacted>",
            ),
            ("NS IDENTIFY s3cret", "NS IDENTIFY <redacted>"),
            ("NICKSERV ghost alice pw", "NICKSERV ghost <redacted>"),
            ("PASS nickserv=s3cret", "PASS <redacted>"),
            ("OPER admin s3cret", "OPER <redacted>"),
            (
                "AUTHENTICATE AGFsaWNlAHNlY3JldA==",
                "AUTHENTICATE <redacted>",
            ),
            ("AUTHENTICATE PLAIN", "AUTHENTICATE PLAIN"),
            ("PRIVMSG NickServ :HELP", "PRIVMSG NickServ :HELP"),
            ("PRIVMSG #c :hello there", "PRIVMSG #c :hello there"),
        ] {
            assert_eq!(redact(line), shown, "{line}");
        }
    }

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
