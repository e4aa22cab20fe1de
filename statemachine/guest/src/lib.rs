//! The IRC logic as a WebAssembly component: a thin wit-bindgen export of
//! `unsplit-statemachine` for the `unsplit:irc@1.0.0` world `irc-logic`.
//!
//! Built for `wasm32-unknown-unknown` and wrapped with wit-component by
//! `statemachine/component/build.rs`, so the component imports nothing but our own
//! `unsplit:irc` interfaces: no WASI, hence no clock, randomness, files or network.

// The canonical-ABI glue that wit-bindgen generates is unsafe by nature; this crate
// writes no unsafe code of its own.
#![allow(unsafe_code)]

use std::cell::RefCell;

use unsplit_statemachine as sm;

wit_bindgen::generate!({
    path: "../../wit/irc-1.0.0",
    world: "irc-logic",
});

use exports::unsplit::irc::logic::Guest;
use unsplit::irc::host::{LogLevel, log};
use unsplit::irc::types::{Entry, EntryKind, ModuleInfo, Outcome, OutputLine};

thread_local! {
    // wasm32-unknown-unknown has no threads: this is one plain global.
    static SERVER: RefCell<sm::Server> = RefCell::new(sm::Server::new());
}

struct Component;

impl Guest for Component {
    fn info() -> ModuleInfo {
        ModuleInfo {
            name: sm::MODULE_NAME.to_owned(),
            version: sm::MODULE_VERSION.to_owned(),
            snapshot_format: sm::SNAPSHOT_FORMAT,
        }
    }

    fn apply(entry: Entry) -> Outcome {
        let kind = match entry.kind {
            EntryKind::CreateSession(remote_addr) => sm::EntryKind::CreateSession { remote_addr },
            EntryKind::DeleteSession(quit_message) => sm::EntryKind::DeleteSession { quit_message },
            EntryKind::IrcLine(bytes) => sm::EntryKind::IrcLine(bytes),
            EntryKind::Tick => sm::EntryKind::Tick,
            EntryKind::Config(text) => sm::EntryKind::Config(text),
        };
        let entry = sm::Entry {
            index: entry.index,
            time_ms: entry.time_ms,
            session: entry.session,
            kind,
        };
        let outcome = SERVER.with(|s| s.borrow_mut().apply(&entry));
        Outcome {
            lines: outcome
                .lines
                .into_iter()
                .map(|l| OutputLine {
                    line: l.line,
                    recipients: l.recipients,
                })
                .collect(),
            closed: outcome.closed,
            error: outcome.error,
        }
    }

    fn snapshot() -> Vec<u8> {
        SERVER.with(|s| s.borrow().snapshot())
    }

    fn restore(data: Vec<u8>) -> Result<(), String> {
        match sm::Server::restore(&data) {
            Ok(server) => {
                SERVER.with(|s| *s.borrow_mut() = server);
                Ok(())
            }
            Err(e) => {
                log(LogLevel::Warn, &format!("restore refused: {e}"));
                Err(e.to_string())
            }
        }
    }
}

export!(Component);
