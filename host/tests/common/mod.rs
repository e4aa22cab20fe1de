//! Shared by the host's tests: the embedded component as a transcript `Logic`, and
//! conversions between the native library's types and the WIT types.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use unsplit_host::runtime::{self, Limits, LogicInstance, LogicModule};
use unsplit_statemachine as sm;

/// The embedded component, compiled once per test binary.
pub fn module() -> Arc<LogicModule> {
    static MODULE: OnceLock<Arc<LogicModule>> = OnceLock::new();
    MODULE
        .get_or_init(|| {
            let engine = runtime::engine().expect("engine");
            LogicModule::new(&engine, unsplit_irc_component::IRC_COMPONENT)
                .expect("compile component")
        })
        .clone()
}

pub fn to_wit(e: &sm::Entry) -> runtime::Entry {
    let kind = match &e.kind {
        sm::EntryKind::CreateSession { remote_addr } => {
            runtime::EntryKind::CreateSession(remote_addr.clone())
        }
        sm::EntryKind::DeleteSession { quit_message } => {
            runtime::EntryKind::DeleteSession(quit_message.clone())
        }
        sm::EntryKind::IrcLine(b) => runtime::EntryKind::IrcLine(b.clone()),
        sm::EntryKind::Tick => runtime::EntryKind::Tick,
        sm::EntryKind::Config(t) => runtime::EntryKind::Config(t.clone()),
    };
    runtime::Entry {
        index: e.index,
        time_ms: e.time_ms,
        session: e.session,
        kind,
    }
}

pub fn from_wit(o: runtime::Outcome) -> sm::Outcome {
    sm::Outcome {
        lines: o
            .lines
            .into_iter()
            .map(|l| sm::OutputLine {
                line: l.line,
                recipients: l.recipients,
            })
            .collect(),
        closed: o.closed,
        error: o.error,
    }
}

/// The component in wasmtime, seen as a transcript `Logic`. Panics on a trap: in these
/// tests a trap is a bug.
pub struct Wasm(pub LogicInstance);

impl Wasm {
    pub fn new() -> Wasm {
        Wasm(LogicInstance::new(module(), Limits::default()).expect("instantiate"))
    }
}

impl sm::transcript::Logic for Wasm {
    fn apply(&mut self, entry: &sm::Entry) -> sm::Outcome {
        let outcome = self
            .0
            .apply(&to_wit(entry))
            .unwrap_or_else(|e| panic!("entry {entry:?}: {e}"));
        from_wit(outcome)
    }
}

/// Every golden transcript: (file name, text).
pub fn transcripts() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../statemachine/transcripts");
    sm::transcript::read_dir(&dir)
        .expect("read statemachine/transcripts")
        .into_iter()
        .map(|(p, text)| {
            (
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                text,
            )
        })
        .collect()
}
