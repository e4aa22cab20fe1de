//! NickServ: accounts, nick protection and SASL PLAIN, as an unsplit services plugin.
//!
//! A deterministic state machine over [`unsplit_services`] events (see the contract in
//! `wit/services-1.0.0/services.wit`): the IRC logic feeds it messages to `NickServ`,
//! session events, ticks, SASL requests and password hashes; it answers actions.
//!
//! - An account is the nick it was registered with (case kept for display), looked up by
//!   its case-folded form. Passwords are stored only as `{algorithm, salt, hash}`; the
//!   host computes hashes off the apply path (`HashPassword` → a later
//!   `PasswordHashed`), and this plugin only compares them.
//! - A session has at most one hash request under way; requests unanswered after 60 s
//!   of entry time are dropped (the user is told to try again). Failed password
//!   attempts (IDENTIFY, GHOST, REGAIN, DROP and SASL alike) are limited to 5 per
//!   account per 5 minutes.
//! - Nick protection: a session using a registered nick without being logged in to it
//!   is warned, and renamed to `<GuestPrefix><n>` on the first tick after the grace
//!   period. A service started on a running network learns the sessions there
//!   (`Users`) and protects nicks already in use the same way.
//!
//! Snapshot format 1: `1u32` little-endian, then the postcard encoding of the state.

use unsplit_services::{Action, Context, Event, EventKind, Plugin, PluginInfo, SessionId};

mod commands;
mod hash;
mod protect;
mod sasl;
mod settings;
mod state;

#[cfg(test)]
mod tests;

use state::State;

/// The snapshot format [`NickServ::snapshot`] writes and [`NickServ::restore`] reads.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// The NickServ plugin. `Default` is a fresh network: no accounts, default settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NickServ {
    state: State,
}

impl NickServ {
    /// Handles one event; sessions whose nick protection must be checked go to `check`
    /// (done once the whole call's events are in).
    fn event(
        &mut self,
        ctx: &Context,
        event: Event,
        out: &mut Vec<Action>,
        check: &mut Vec<SessionId>,
    ) {
        let st = &mut self.state;
        match event {
            Event::Message { from, text, .. } => {
                st.see(&from);
                let mut call = commands::Call {
                    st,
                    ctx,
                    out,
                    from: &from,
                };
                commands::dispatch(&mut call, &text);
            }
            Event::Registered(user) => {
                st.sessions
                    .insert(user.session, state::Session::from_user(&user));
                check.push(user.session);
            }
            Event::NickChange { user, .. } | Event::AccountChange { user, .. } => {
                st.see(&user);
                check.push(user.session);
            }
            Event::Quit(user) => {
                st.sessions.remove(&user.session);
                st.pending.retain(|_, p| p.session != user.session);
            }
            Event::Sasl {
                session,
                authzid,
                authcid,
                password,
            } => sasl::handle(st, ctx, out, session, &authzid, &authcid, &password),
            Event::Tick => {
                hash::expire(st, ctx, out);
                protect::enforce(st, ctx, out);
                st.prune_failures(ctx.time_ms);
            }
            Event::Settings(text) => {
                // The host validated the document; a bad one keeps the previous settings.
                if let Ok(settings) = settings::Settings::parse(&text) {
                    st.settings = settings;
                }
            }
            Event::PasswordHashed { id, result } => hash::on_result(st, ctx, out, id, result),
            Event::Users(users) => {
                st.replace_sessions(&users);
                check.extend(users.iter().map(|u| u.session));
            }
            // Not subscribed to; NickServ itself is where accounts are dropped.
            Event::Join { .. } | Event::Topic { .. } | Event::AccountDropped(_) => {}
        }
    }
}

impl Plugin for NickServ {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "nickserv".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            snapshot_format: SNAPSHOT_FORMAT,
            nick: "NickServ".into(),
            description: "Nickname services".into(),
            commands: vec!["NS".into(), "NICKSERV".into()],
            subscriptions: vec![
                EventKind::Registered,
                EventKind::NickChange,
                EventKind::Quit,
                EventKind::AccountChange,
                EventKind::Tick,
            ],
            sasl: true,
        }
    }

    fn check_settings(&self, settings: &str) -> Result<(), String> {
        settings::Settings::parse(settings)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn handle(&mut self, ctx: &Context, events: Vec<Event>) -> Vec<Action> {
        let mut out = Vec::new();
        let mut check = Vec::new();
        for event in events {
            self.event(ctx, event, &mut out, &mut check);
        }
        // After all of them: a registration with `PASS nickserv=…` arrives as the
        // registration and an IDENTIFY in one call, and the IDENTIFY holds the warning
        // back. Each session once, in order.
        let mut seen = std::collections::BTreeSet::new();
        for id in check {
            if seen.insert(id) {
                protect::check(&mut self.state, ctx, &mut out, id);
            }
        }
        out
    }

    fn snapshot(&self) -> Vec<u8> {
        unsplit_services::encode_state(SNAPSHOT_FORMAT, &self.state)
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let state: State = unsplit_services::decode_state("nickserv", SNAPSHOT_FORMAT, data)?;
        self.state = state;
        Ok(())
    }
}
