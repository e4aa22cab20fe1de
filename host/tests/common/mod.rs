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
    runtime::convert::entry(e)
}

pub fn from_wit(o: runtime::Outcome) -> sm::Outcome {
    runtime::convert::outcome(o)
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
    transcripts_in("../statemachine/transcripts")
}

/// Every golden transcript of the services (`plugins/transcripts`).
pub fn services_transcripts() -> Vec<(String, String)> {
    transcripts_in("../plugins/transcripts")
}

fn transcripts_in(dir: &str) -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    sm::transcript::read_dir(&dir)
        .expect("read the transcripts")
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
