//! A services plugin as a WebAssembly component: a thin wit-bindgen export of one
//! `unsplit_services::Plugin` (NickServ, or ChanServ with feature `chanserv`) for the world
//! `unsplit:services/service-plugin@1.0.0`.
//!
//! Built for `wasm32-unknown-unknown` and wrapped with wit-component by
//! `statemachine/component/build.rs`; the component imports nothing but `unsplit:irc/host`.
//!
//! Test fixtures (features, never in a released plugin) wrap the plugin:
//! - `fixture-panic`: a message `FIXTURE PANIC` to the service panics (a wasm trap);
//! - `fixture-v2`: an upgrade: the version gains `+fixture-v2` and it answers the
//!   message `FIXTURE VERSION` (which the real plugin does not know); the state carries
//!   over unchanged.

// The canonical-ABI glue that wit-bindgen generates is unsafe by nature; this crate
// writes no unsafe code of its own.
#![allow(unsafe_code)]

use std::cell::RefCell;

use unsplit_services::guest::wit;
use unsplit_services::{Action, Context, Event, Plugin, PluginInfo};

wit_bindgen::generate!({
    path: ["../../wit/irc-1.0.0", "../../wit/services-1.0.0"],
    world: "unsplit:services/service-plugin",
    with: {
        "unsplit:irc/types@1.0.0": unsplit_services::guest::irc,
        "unsplit:services/types@1.0.0": unsplit_services::guest::wit,
        "unsplit:irc/host@1.0.0": generate,
    },
});

use exports::unsplit::services::plugin::Guest;
use unsplit::irc::host::{LogLevel, log};

#[cfg(not(feature = "chanserv"))]
type Inner = unsplit_nickserv::NickServ;
#[cfg(feature = "chanserv")]
type Inner = unsplit_chanserv::ChanServ;

/// The exported plugin: the inner one, with the fixture's misbehaviour when built as one.
#[derive(Default)]
struct Exported(Inner);

impl Plugin for Exported {
    fn info(&self) -> PluginInfo {
        let mut info = self.0.info();
        if cfg!(feature = "fixture-v2") {
            info.version.push_str("+fixture-v2");
        }
        if cfg!(feature = "fixture-panic") {
            info.version.push_str("+fixture-panic");
        }
        info
    }

    fn check_settings(&self, settings: &str) -> Result<(), String> {
        self.0.check_settings(settings)
    }

    fn handle(&mut self, ctx: &Context, events: Vec<Event>) -> Vec<Action> {
        if cfg!(feature = "fixture-panic")
            && events
                .iter()
                .any(|e| matches!(e, Event::Message { text, .. } if text == "FIXTURE PANIC"))
        {
            panic!("fixture-panic: the magic message");
        }
        if cfg!(feature = "fixture-v2")
            && let [Event::Message { from, text, .. }] = events.as_slice()
            && text == "FIXTURE VERSION"
        {
            return vec![Action::Notice {
                to: from.session,
                text: format!("fixture-v2 {}", self.info().version),
            }];
        }
        self.0.handle(ctx, events)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.snapshot()
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        self.0.restore(data)
    }
}

thread_local! {
    // wasm32-unknown-unknown has no threads: this is one plain global.
    static PLUGIN: RefCell<Exported> = RefCell::new(Exported::default());
}

struct Component;

impl Guest for Component {
    fn info() -> wit::PluginInfo {
        PLUGIN.with(|p| p.borrow().info()).into()
    }

    fn check_settings(settings: String) -> Result<(), String> {
        PLUGIN.with(|p| p.borrow().check_settings(&settings))
    }

    fn handle(ctx: wit::Context, events: Vec<wit::Event>) -> Vec<wit::Action> {
        let events = events.into_iter().map(Into::into).collect();
        PLUGIN
            .with(|p| p.borrow_mut().handle(&ctx.into(), events))
            .into_iter()
            .map(Into::into)
            .collect()
    }

    fn snapshot() -> Vec<u8> {
        PLUGIN.with(|p| p.borrow().snapshot())
    }

    fn restore(data: Vec<u8>) -> Result<(), String> {
        PLUGIN
            .with(|p| p.borrow_mut().restore(&data))
            .inspect_err(|e| {
                log(LogLevel::Warn, &format!("restore refused: {e}"));
            })
    }
}

export!(Component);
