//! Reading older snapshot formats. Format 1 is the state before the abuse protection and
//! the services (no G-lines, no `[Banned]`/`[Flood]`/`[Plugins]` configuration, no
//! per-session flood counters, accounts or capabilities, no registered channels, no
//! services); it restores with those empty or at their defaults. Postcard encodes structs as their
//! fields in order, so each older format keeps its own copy of the types that changed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::SessionId;
use crate::config::{Config, IrcConfig};
use crate::state::{Ban, Channel, ChannelModes, Membership, Session, State, Topic, WhowasEntry};

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct StateV1 {
    config: ConfigV1,
    created_ms: u64,
    last_index: u64,
    now_ms: u64,
    sessions: BTreeMap<SessionId, SessionV1>,
    nicks: BTreeMap<String, SessionId>,
    channels: BTreeMap<String, ChannelV1>,
    whowas: VecDeque<WhowasEntry>,
    max_users: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ChannelV1 {
    name: String,
    created_ms: u64,
    topic: Option<Topic>,
    members: BTreeMap<SessionId, Membership>,
    modes: ChannelModes,
    bans: Vec<Ban>,
    invites: BTreeSet<SessionId>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ConfigV1 {
    network: String,
    server_name: String,
    motd: String,
    session_expiration: u64,
    registration_timeout: u64,
    max_channels_per_session: u32,
    max_channels: u32,
    irc: IrcConfig,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SessionV1 {
    id: SessionId,
    created_ms: u64,
    last_active_ms: u64,
    last_message_ms: u64,
    remote_addr: String,
    nick: Option<String>,
    username: Option<String>,
    realname: String,
    password: Option<String>,
    registered: bool,
    cap_negotiating: bool,
    invisible: bool,
    oper: Option<String>,
    away: Option<String>,
    channels: BTreeSet<String>,
    invited_to: BTreeSet<String>,
}

impl From<StateV1> for State {
    fn from(v: StateV1) -> State {
        let c = v.config;
        State {
            config: Config {
                network: c.network,
                server_name: c.server_name,
                motd: c.motd,
                session_expiration: c.session_expiration,
                registration_timeout: c.registration_timeout,
                max_channels_per_session: c.max_channels_per_session,
                max_channels: c.max_channels,
                irc: c.irc,
                ..Config::default()
            },
            created_ms: v.created_ms,
            last_index: v.last_index,
            now_ms: v.now_ms,
            sessions: v
                .sessions
                .into_iter()
                .map(|(id, s)| {
                    let session = Session {
                        id: s.id,
                        created_ms: s.created_ms,
                        last_active_ms: s.last_active_ms,
                        last_message_ms: s.last_message_ms,
                        remote_addr: s.remote_addr,
                        nick: s.nick,
                        username: s.username,
                        realname: s.realname,
                        password: s.password,
                        registered: s.registered,
                        cap_negotiating: s.cap_negotiating,
                        invisible: s.invisible,
                        oper: s.oper,
                        away: s.away,
                        channels: s.channels,
                        invited_to: s.invited_to,
                        // A session of format 1 already saw lines; its address was checked
                        // when it was new (it is not a first line any more).
                        unregistered_lines: u32::from(!s.registered),
                        ..Session::default()
                    };
                    (id, session)
                })
                .collect(),
            nicks: v.nicks,
            channels: v
                .channels
                .into_iter()
                .map(|(key, c)| {
                    let channel = Channel {
                        name: c.name,
                        created_ms: c.created_ms,
                        topic: c.topic,
                        members: c.members,
                        modes: c.modes,
                        bans: c.bans,
                        invites: c.invites,
                        registered: false,
                    };
                    (key, channel)
                })
                .collect(),
            whowas: v.whowas,
            max_users: v.max_users,
            ..State::default()
        }
    }
}

/// Decodes a format-1 state body.
pub(crate) fn from_v1(body: &[u8]) -> Result<State, postcard::Error> {
    postcard::from_bytes::<StateV1>(body).map(State::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entry, EntryKind, Server};

    /// A format-1 snapshot as the previous module wrote it: an operator config, a
    /// registered user in a channel and an unregistered session.
    fn v1_snapshot() -> Vec<u8> {
        let now = 1_795_266_199_000;
        let mut state = StateV1 {
            config: ConfigV1 {
                network: "old".into(),
                server_name: "irc.old".into(),
                session_expiration: 1_800_000,
                registration_timeout: 600_000,
                max_channels_per_session: 100,
                ..ConfigV1::default()
            },
            created_ms: now,
            last_index: 4,
            now_ms: now,
            max_users: 1,
            ..StateV1::default()
        };
        state.sessions.insert(
            1,
            SessionV1 {
                id: 1,
                created_ms: now,
                last_active_ms: now,
                last_message_ms: now,
                remote_addr: "192.0.2.1".into(),
                nick: Some("alice".into()),
                username: Some("alice".into()),
                registered: true,
                channels: BTreeSet::from(["#c".to_owned()]),
                ..SessionV1::default()
            },
        );
        state.sessions.insert(
            2,
            SessionV1 {
                id: 2,
                created_ms: now,
                last_active_ms: now,
                last_message_ms: now,
                remote_addr: "192.0.2.2".into(),
                ..SessionV1::default()
            },
        );
        state.nicks.insert("alice".into(), 1);
        state.channels.insert(
            "#c".into(),
            ChannelV1 {
                name: "#c".into(),
                created_ms: now,
                members: BTreeMap::from([(1, Membership::default())]),
                ..ChannelV1::default()
            },
        );
        let mut bytes = 1u32.to_le_bytes().to_vec();
        bytes.extend(postcard::to_allocvec(&state).unwrap());
        bytes
    }

    #[test]
    fn format_1_restores_with_the_new_fields_at_their_defaults() {
        let mut server = Server::restore(&v1_snapshot()).unwrap();
        server.check_invariants().unwrap();
        assert_eq!(server.config().network, "old");
        assert_eq!(server.config().flood, crate::config::FloodConfig::default());
        assert_eq!(server.session_count(), 2);
        let line = |index, session, text: &str| Entry {
            index,
            time_ms: 1_795_266_200_000,
            session,
            kind: EntryKind::IrcLine(text.as_bytes().to_vec()),
        };
        let out = server.apply(&line(5, 1, "NAMES #c"));
        assert_eq!(out.lines[0].line, ":irc.old 353 alice = #c :alice");
        // The old module's snapshot is rewritten in the current format.
        let again = Server::restore(&server.snapshot()).unwrap();
        assert_eq!(again.snapshot(), server.snapshot());
        let out = server.apply(&line(6, 2, "PING x"));
        assert_eq!(out.lines[0].line, ":irc.old PONG irc.old :x");
    }
}
