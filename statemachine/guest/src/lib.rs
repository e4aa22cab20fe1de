//! The IRC logic as a WebAssembly component: a thin wit-bindgen export of
//! `unsplit-statemachine` for the world `unsplit:services/irc-logic-with-services@1.0.0`
//! (everything of `unsplit:irc/irc-logic@1.0.0` plus the services hooks).
//!
//! Built for `wasm32-unknown-unknown` and wrapped with wit-component by
//! `statemachine/component/build.rs`, so the component imports nothing but our own
//! `unsplit:irc` interfaces: no WASI, hence no clock, randomness, files or network.

// The canonical-ABI glue that wit-bindgen generates is unsafe by nature; this crate
// writes no unsafe code of its own.
#![allow(unsafe_code)]

use std::cell::RefCell;

use unsplit_services::guest::wit;
use unsplit_statemachine as sm;

wit_bindgen::generate!({
    path: ["../../wit/irc-1.0.0", "../../wit/services-1.0.0"],
    world: "unsplit:services/irc-logic-with-services",
    with: {
        "unsplit:irc/types@1.0.0": unsplit_services::guest::irc,
        "unsplit:services/types@1.0.0": unsplit_services::guest::wit,
        "unsplit:irc/host@1.0.0": generate,
    },
});

use exports::unsplit::irc::logic::Guest as Logic;
use exports::unsplit::services::core::{Guest as Core, ServiceEvent, Step};
use unsplit::irc::host::{LogLevel, log};
use unsplit_services::guest::irc::{Entry, EntryKind, ModuleInfo, Outcome, OutputLine};

thread_local! {
    // wasm32-unknown-unknown has no threads: this is one plain global.
    static SERVER: RefCell<sm::Server> = RefCell::new(sm::Server::new());
}

struct Component;

fn entry(entry: Entry) -> sm::Entry {
    let kind = match entry.kind {
        EntryKind::CreateSession(remote_addr) => sm::EntryKind::CreateSession { remote_addr },
        EntryKind::DeleteSession(quit_message) => sm::EntryKind::DeleteSession { quit_message },
        EntryKind::IrcLine(bytes) => sm::EntryKind::IrcLine(bytes),
        EntryKind::Tick => sm::EntryKind::Tick,
        EntryKind::Config(text) => sm::EntryKind::Config(text),
    };
    sm::Entry {
        index: entry.index,
        time_ms: entry.time_ms,
        session: entry.session,
        kind,
    }
}

fn outcome(outcome: sm::Outcome) -> Outcome {
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

fn step(step: sm::Step) -> Step {
    Step {
        outcome: outcome(step.outcome),
        events: step
            .events
            .into_iter()
            .map(|e| ServiceEvent {
                service: e.service,
                event: e.event.into(),
            })
            .collect(),
    }
}

impl Logic for Component {
    fn info() -> ModuleInfo {
        ModuleInfo {
            name: sm::MODULE_NAME.to_owned(),
            version: sm::MODULE_VERSION.to_owned(),
            snapshot_format: sm::SNAPSHOT_FORMAT,
        }
    }

    fn apply(e: Entry) -> Outcome {
        let e = entry(e);
        outcome(SERVER.with(|s| s.borrow_mut().apply(&e)))
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

impl Core for Component {
    fn set_services(ctx: wit::Context, services: Vec<wit::PluginInfo>) -> Step {
        let services = services.into_iter().map(Into::into).collect();
        step(SERVER.with(|s| s.borrow_mut().set_services(&ctx.into(), services)))
    }

    fn apply(e: Entry) -> Step {
        let e = entry(e);
        step(SERVER.with(|s| s.borrow_mut().apply_step(&e)))
    }

    fn apply_actions(ctx: wit::Context, service: String, actions: Vec<wit::Action>) -> Step {
        let actions = actions.into_iter().map(Into::into).collect();
        step(SERVER.with(|s| s.borrow_mut().apply_actions(&ctx.into(), &service, actions)))
    }

    fn service_failed(
        ctx: wit::Context,
        service: String,
        events: Vec<wit::Event>,
        reason: String,
    ) -> Step {
        let events = events.into_iter().map(Into::into).collect();
        step(SERVER.with(|s| {
            s.borrow_mut()
                .service_failed(&ctx.into(), &service, events, &reason)
        }))
    }
}

export!(Component);
