//! ChanServ: registered channels, access lists, auto-op/voice and topic retention, as an
//! unsplit services plugin.
//!
//! A deterministic state machine over [`unsplit_services`] events (see the contract in
//! `wit/services-1.0.0/services.wit`). Channels are keyed by their case-folded name;
//! access entries by the case-folded account name (accounts are NickServ's: ChanServ
//! trusts the account the IRC logic says a user is logged in to).
//!
//! - Flags: `F` founder (implies all), `f` edit the access list, `o` OP/DEOP, `O`
//!   auto-op on join, `v` VOICE/DEVOICE, `V` auto-voice on join, `t` TOPIC.
//! - Auto-op/voice on `Join` and on `AccountChange` (a login), for channels where the
//!   user does not have that status yet.
//! - Topic retention: the last topic of a registered channel is set again when the
//!   channel is re-created by a join.
//! - A dropped account (`AccountDropped`) loses every access entry; a channel left
//!   without a founder is dropped, so whoever registers that name later inherits
//!   nothing.
//!
//! Snapshot format 1: `1u32` little-endian, then the postcard encoding of the state.

use unsplit_services::{Action, Context, Event, EventKind, Plugin, PluginInfo};

mod commands;
mod events;
mod flags;
mod state;

#[cfg(test)]
mod tests;

use state::State;

/// The snapshot format [`ChanServ::snapshot`] writes and [`ChanServ::restore`] reads.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// The ChanServ plugin. `Default` is a fresh network: no registered channels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChanServ {
    state: State,
}

impl ChanServ {
    fn event(&mut self, ctx: &Context, event: Event, out: &mut Vec<Action>) {
        let st = &mut self.state;
        match event {
            Event::Message {
                from,
                text,
                channels,
            } => {
                let mut call = commands::Call {
                    st,
                    ctx,
                    out,
                    from: &from,
                    channels: &channels,
                };
                commands::dispatch(&mut call, &text);
            }
            Event::Join {
                user,
                channel,
                created,
            } => events::join(st, out, &user, &channel, created),
            Event::AccountChange { user, channels } => {
                events::account_change(st, out, &user, &channels);
            }
            Event::Topic {
                channel,
                text,
                setter,
            } => events::topic(st, &channel, &text, &setter),
            Event::AccountDropped(account) => events::account_dropped(st, out, &account),
            // ChanServ keeps nothing per session: every event names its user, and the
            // logic checks the nicks of its mode changes. So `Users` teaches it nothing.
            Event::Registered(_)
            | Event::NickChange { .. }
            | Event::Quit(_)
            | Event::Sasl { .. }
            | Event::Tick
            | Event::Settings(_)
            | Event::PasswordHashed { .. }
            | Event::Users(_) => {}
        }
    }
}

impl Plugin for ChanServ {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "chanserv".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            snapshot_format: SNAPSHOT_FORMAT,
            nick: "ChanServ".into(),
            description: "Channel services".into(),
            commands: vec!["CS".into(), "CHANSERV".into()],
            subscriptions: vec![
                EventKind::Join,
                EventKind::Topic,
                EventKind::AccountChange,
                EventKind::AccountDropped,
            ],
            sasl: false,
        }
    }

    fn handle(&mut self, ctx: &Context, events: Vec<Event>) -> Vec<Action> {
        let mut out = Vec::new();
        for event in events {
            self.event(ctx, event, &mut out);
        }
        out
    }

    fn snapshot(&self) -> Vec<u8> {
        unsplit_services::encode_state(SNAPSHOT_FORMAT, &self.state)
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let state: State = unsplit_services::decode_state("chanserv", SNAPSHOT_FORMAT, data)?;
        let flags_valid = state
            .channels
            .values()
            .all(|c| c.access.values().all(|e| e.flags.valid()));
        if !flags_valid {
            return Err("chanserv snapshot: unknown access flags".into());
        }
        self.state = state;
        Ok(())
    }
}
