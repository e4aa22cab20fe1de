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

    /// A snapshot the format-1 module itself wrote (commit 44363a2, before the abuse
    /// protection): a configuration with an operator and a MOTD; alice (operator, away,
    /// invisible) and bob in `#Chan` (topic, +imklnst, a ban, bob voiced, erin invited),
    /// bob alone in `#two`; an unregistered session holding `carol`; dave, renamed to
    /// dave2 and gone (two WHOWAS entries). Unlike `v1_snapshot`, it cannot drift with
    /// the types this module shares with the current state.
    const REAL_V1: &[u8] = include_bytes!("testdata/format1-state.bin");

    #[test]
    fn a_snapshot_of_the_format_1_module_restores_as_it_was() {
        let t = |index: u64| 1_795_266_199_000 + index * 1000;
        let (format, body) = REAL_V1.split_first_chunk::<4>().unwrap();
        assert_eq!(u32::from_le_bytes(*format), 1);
        let state = from_v1(body).unwrap();

        let c = &state.config;
        assert_eq!(
            (c.network.as_str(), c.server_name.as_str(), c.motd.as_str()),
            ("oldnet", "irc.old", "hello\nworld")
        );
        assert_eq!(
            (c.session_expiration, c.registration_timeout),
            (3_600_000, 300_000)
        );
        assert_eq!((c.max_channels_per_session, c.max_channels), (20, 50));
        let op = crate::config::Operator {
            name: "root".into(),
            password: "pw".into(),
        };
        assert_eq!(c.irc.operators, [op]);
        let defaults = Config::default();
        assert_eq!(c.flood, defaults.flood);
        assert!(c.banned.is_empty() && c.plugins.is_empty());
        assert_eq!(
            (
                state.created_ms,
                state.last_index,
                state.now_ms,
                state.max_users
            ),
            (t(1), 30, t(30), 4)
        );

        let nicks: Vec<(&str, SessionId)> = state
            .nicks
            .iter()
            .map(|(n, &id)| (n.as_str(), id))
            .collect();
        assert_eq!(nicks, [("alice", 1), ("bob", 2), ("carol", 4), ("erin", 5)]);
        let ids: Vec<SessionId> = state.sessions.keys().copied().collect();
        assert_eq!(ids, [1, 2, 4, 5]);
        let alice = &state.sessions[&1];
        assert_eq!(
            (
                alice.id,
                alice.created_ms,
                alice.last_active_ms,
                alice.last_message_ms
            ),
            (1, t(2), t(28), t(2))
        );
        assert_eq!(alice.remote_addr, "192.0.2.1");
        assert_eq!(
            (
                alice.nick.as_deref(),
                alice.username.as_deref(),
                alice.realname.as_str()
            ),
            (Some("alice"), Some("alice"), "Alice A")
        );
        assert!(alice.registered && alice.invisible && !alice.cap_negotiating);
        assert_eq!(
            (
                alice.oper.as_deref(),
                alice.away.as_deref(),
                alice.password.as_deref()
            ),
            (Some("root"), Some("lunch"), None)
        );
        assert_eq!(alice.channels, BTreeSet::from(["#chan".to_owned()]));
        assert_eq!(alice.unregistered_lines, 0);
        let bob = &state.sessions[&2];
        assert_eq!(
            bob.channels,
            BTreeSet::from(["#chan".to_owned(), "#two".to_owned()])
        );
        assert!(bob.registered && !bob.invisible && bob.oper.is_none() && bob.away.is_none());
        let carol = &state.sessions[&4];
        assert_eq!(
            (carol.nick.as_deref(), carol.username.as_deref()),
            (Some("carol"), None)
        );
        assert!(!carol.registered);
        assert_eq!(carol.remote_addr, "192.0.2.4");
        // Its first line (and the ban check with it) is behind it.
        assert_eq!(carol.unregistered_lines, 1);
        let erin = &state.sessions[&5];
        assert_eq!(erin.invited_to, BTreeSet::from(["#chan".to_owned()]));
        assert_eq!(erin.last_active_ms, t(30));
        for s in state.sessions.values() {
            assert!(s.account.is_none() && s.caps.is_empty() && s.sasl.is_none());
            assert_eq!((s.nick_tat_ms, s.join_tat_ms), (0, 0));
        }

        let keys: Vec<&str> = state.channels.keys().map(String::as_str).collect();
        assert_eq!(keys, ["#chan", "#two"]);
        let ch = &state.channels["#chan"];
        assert_eq!((ch.name.as_str(), ch.created_ms), ("#Chan", t(21)));
        let topic = ch.topic.as_ref().unwrap();
        assert_eq!(
            (topic.text.as_str(), topic.set_by.as_str(), topic.set_ms),
            ("Old topic", "alice", t(23))
        );
        let op = Membership {
            op: true,
            voice: false,
        };
        let voice = Membership {
            op: false,
            voice: true,
        };
        assert_eq!(ch.members, BTreeMap::from([(1, op), (2, voice)]));
        assert_eq!(
            ch.modes,
            ChannelModes {
                invite_only: true,
                moderated: true,
                no_external: true,
                secret: true,
                topic_ops: true,
                key: Some("sesame".into()),
                limit: Some(10),
            }
        );
        let ban = Ban {
            mask: "*!*@bad.example".into(),
            set_by: "alice".into(),
            set_ms: t(25),
        };
        assert_eq!(ch.bans, [ban]);
        assert_eq!(ch.invites, BTreeSet::from([5]));
        assert!(!ch.registered);
        assert_eq!(state.channels["#two"].members, BTreeMap::from([(2, op)]));

        let whowas: Vec<_> = state
            .whowas
            .iter()
            .map(|w| {
                let fields = (w.nick.as_str(), w.username.as_str(), w.host.as_str());
                (fields, w.realname.as_str(), w.left_ms)
            })
            .collect();
        assert_eq!(
            whowas,
            [
                (("dave", "dave", "unsplit/0x3"), "Dave D", t(16)),
                (("dave2", "dave", "unsplit/0x3"), "Dave D", t(17)),
            ]
        );
        assert!(state.glines.is_empty() && state.services.is_empty());

        // The restored server works on it and writes it in the current format.
        let mut server = Server::restore(REAL_V1).unwrap();
        server.check_invariants().unwrap();
        let mut apply = |index, session, text: &str| {
            let entry = Entry {
                index,
                time_ms: t(index),
                session,
                kind: EntryKind::IrcLine(text.as_bytes().to_vec()),
            };
            let out = server.apply(&entry);
            out.lines.into_iter().map(|l| l.line).collect::<Vec<_>>()
        };
        assert_eq!(
            apply(31, 2, "NAMES #chan"),
            [
                ":irc.old 353 bob @ #Chan :@alice +bob",
                ":irc.old 366 bob #Chan :End of /NAMES list",
            ]
        );
        assert_eq!(
            apply(32, 2, "TOPIC #chan")[1],
            format!(":irc.old 333 bob #Chan alice {}", t(23) / 1000)
        );
        assert_eq!(
            apply(33, 2, "WHOWAS dave2")[0],
            ":irc.old 314 bob dave2 dave unsplit/0x3 * :Dave D"
        );
        assert_eq!(
            apply(34, 5, "JOIN #chan sesame")[0],
            ":erin!erin@unsplit/0x5 JOIN #Chan"
        );
        let again = Server::restore(&server.snapshot()).unwrap();
        assert_eq!(again.snapshot(), server.snapshot());
    }
}
