//! Tests that drive ChanServ only through the `Plugin` trait with synthetic events and
//! assert the exact actions.

use unsplit_services::{Action, ChannelStatus, Context, Event, Plugin, SessionId, User};

use crate::ChanServ;

mod access;
mod commands;
mod events;
mod snapshots;

/// 2026-11-21 13:03:19 UTC.
pub(crate) const T0: u64 = 1_795_266_199_000;

pub(crate) struct H {
    pub cs: ChanServ,
    pub now: u64,
    pub index: u64,
}

pub(crate) fn user(session: SessionId, nick: &str, account: Option<&str>) -> User {
    User {
        session,
        nick: nick.into(),
        username: "u".into(),
        account: account.map(Into::into),
        oper: false,
    }
}

pub(crate) fn on(channel: &str, op: bool, voice: bool) -> ChannelStatus {
    ChannelStatus {
        channel: channel.into(),
        op,
        voice,
    }
}

pub(crate) fn notice(to: SessionId, text: &str) -> Action {
    Action::Notice {
        to,
        text: text.into(),
    }
}

pub(crate) fn mode(channel: &str, modes: &str, nick: &str) -> Action {
    Action::ChannelMode {
        channel: channel.into(),
        modes: modes.into(),
        args: vec![nick.into()],
    }
}

impl H {
    pub(crate) fn new() -> H {
        H {
            cs: ChanServ::default(),
            now: T0,
            index: 100,
        }
    }

    pub(crate) fn one(&mut self, event: Event) -> Vec<Action> {
        self.index += 1;
        let ctx = Context {
            index: self.index,
            time_ms: self.now,
        };
        self.cs.handle(&ctx, vec![event])
    }

    pub(crate) fn msg(
        &mut self,
        from: &User,
        text: &str,
        channels: &[ChannelStatus],
    ) -> Vec<Action> {
        self.one(Event::Message {
            from: from.clone(),
            text: text.into(),
            channels: channels.to_vec(),
        })
    }

    pub(crate) fn join(&mut self, u: &User, channel: &str, created: bool) -> Vec<Action> {
        self.one(Event::Join {
            user: u.clone(),
            channel: channel.into(),
            created,
        })
    }

    /// alice (session 1, account Alice) registers #Chan, where she is an operator.
    pub(crate) fn with_channel() -> (H, User) {
        let mut h = H::new();
        let alice = user(1, "alice", Some("Alice"));
        assert_eq!(
            h.msg(&alice, "REGISTER #chan", &[on("#Chan", true, false)]),
            vec![
                Action::RegisterChannel {
                    channel: "#Chan".into(),
                    registered: true
                },
                notice(1, "#Chan is now registered to Alice."),
            ]
        );
        (h, alice)
    }
}
