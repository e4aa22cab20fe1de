//! Proptest strategies for random entry sequences: raw bytes, and plausible IRC
//! commands over a small alphabet of nicks and channels so they collide and interact.

use proptest::prelude::*;

use crate::{Entry, EntryKind};

const NICKS: &[&str] = &["alice", "Bob", "carol", "d[a]n", "D{A}N", "eve", "x"];
const CHANNELS: &[&str] = &[
    "#a",
    "#B",
    "#b",
    "#c[1]",
    "#C{1}",
    "#long-channel-name",
    "bad",
];
const COMMANDS: &[&str] = &[
    "NICK", "USER", "PASS", "CAP", "PING", "PONG", "QUIT", "JOIN", "PART", "TOPIC", "NAMES",
    "LIST", "PRIVMSG", "NOTICE", "MODE", "KICK", "INVITE", "WHO", "WHOIS", "WHOWAS", "AWAY",
    "ISON", "USERHOST", "MOTD", "LUSERS", "VERSION", "TIME", "OPER", "KILL", "GLINE", "UNGLINE",
    "FOO",
];
const WORDS: &[&str] = &[
    "+o",
    "-o",
    "+v",
    "+b",
    "-b",
    "*!*@*",
    "+k",
    "key",
    "+l",
    "2",
    "-l",
    "+imnst",
    "-imnst",
    "+ov-b",
    "+i",
    "-i",
    "LS",
    "302",
    "REQ",
    "END",
    "LIST",
    "0",
    "op",
    "secret",
    "*",
    "o",
    ":",
    ":hello world",
    "",
    "a,b,c",
    "#a,#b",
    "k1,k2",
    "192.0.2.2",
    "192.0.2.*",
    "192.0.2.0/30",
    "1h",
    "1s",
];

/// One plausible IRC line.
pub fn irc_line() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        proptest::sample::select(NICKS).prop_map(str::to_owned),
        proptest::sample::select(CHANNELS).prop_map(str::to_owned),
        proptest::sample::select(WORDS).prop_map(str::to_owned),
        "[ -~]{0,12}",
    ];
    (
        proptest::sample::select(COMMANDS),
        proptest::collection::vec(word, 0..5),
        proptest::option::of("[ -~]{0,40}"),
    )
        .prop_map(|(cmd, params, trailing)| {
            let mut line = cmd.to_owned();
            for p in params {
                line.push(' ');
                line.push_str(&p);
            }
            if let Some(t) = trailing {
                line.push_str(" :");
                line.push_str(&t);
            }
            line
        })
}

/// What one step of a random session history does.
#[derive(Debug, Clone)]
pub enum Action {
    Create(u64),
    /// Create (if needed), NICK and USER in a row.
    Register(u64, String),
    Delete(u64, String),
    Line(u64, Vec<u8>),
    Tick,
    /// Moves the clock by this many milliseconds (no entry).
    Wait(u64),
    Config(String),
}

fn session() -> impl Strategy<Value = u64> {
    1u64..=3
}

/// A random action: mostly registration and commands, some raw bytes, ticks and time.
pub fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        2 => session().prop_map(Action::Create),
        4 => (session(), proptest::sample::select(NICKS)).prop_map(|(s, n)| Action::Register(s, n.to_owned())),
        4 => (session(), proptest::sample::select(CHANNELS)).prop_map(|(s, c)| Action::Line(s, format!("JOIN {c}").into_bytes())),
        3 => (session(), proptest::sample::select(CHANNELS), "[ -~]{1,30}")
            .prop_map(|(s, c, t)| Action::Line(s, format!("PRIVMSG {c} :{t}").into_bytes())),
        1 => (session(), "[ -~]{0,20}").prop_map(|(s, m)| Action::Delete(s, m)),
        3 => (session(), proptest::sample::select(NICKS)).prop_map(|(s, n)| Action::Line(s, format!("NICK {n}").into_bytes())),
        2 => session().prop_map(|s| Action::Line(s, b"USER u 0 * :Real Name".to_vec())),
        3 => (
            session(),
            proptest::sample::select(CHANNELS),
            proptest::sample::select(&["MODE {c} +o", "MODE {c} -o", "MODE {c} +v", "MODE {c} +b", "MODE {c} -b",
                "MODE {c} +k", "MODE {c} +l 1 ", "MODE {c} +imnst", "MODE {c} -imnst", "MODE {c} +ov-b",
                "KICK {c}", "INVITE {n}", "TOPIC {c} :t", "PART {c}"][..]),
            proptest::sample::select(NICKS),
        )
            .prop_map(|(s, c, form, n)| {
                let line = form.replace("{c}", c).replace("{n}", &format!("{n} {c}"));
                let line = if form.contains("{n}") { line } else { format!("{line} {n}") };
                Action::Line(s, line.into_bytes())
            }),
        12 => (session(), irc_line()).prop_map(|(s, l)| Action::Line(s, l.into_bytes())),
        2 => (session(), proptest::collection::vec(any::<u8>(), 0..600)).prop_map(|(s, b)| Action::Line(s, b)),
        1 => Just(Action::Tick),
        1 => prop_oneof![Just(1_000u64), Just(11 * 60_000), Just(31 * 60_000)].prop_map(Action::Wait),
        1 => prop_oneof![
            Just("[IRC]\n[[IRC.Operators]]\nName = \"op\"\nPassword = \"secret\"\n".to_owned()),
            Just("Motd = \"hello\\nworld\"\nMaxChannelsPerSession = 2\n".to_owned()),
            Just("SessionExpiration = \"bogus\"".to_owned()),
            Just("[Banned]\n\"192.0.2.3\" = \"no\"\n[Flood]\nUnregisteredLines = 3\nNickChanges = 1\nNickChangeInterval = \"1s\"\nJoins = 2\nJoinInterval = \"1s\"\n[IRC]\n[[IRC.Operators]]\nName = \"op\"\nPassword = \"secret\"\n".to_owned()),
            "[ -~\n]{0,40}",
        ]
        .prop_map(Action::Config),
    ]
}

/// Turns actions into entries with increasing indexes and a clock that only moves
/// forward.
pub fn entries(actions: &[Action]) -> Vec<Entry> {
    let mut time_ms = 1_795_266_199_000;
    let mut out = Vec::new();
    let push = |out: &mut Vec<Entry>, time_ms, session, kind| {
        let index = out.len() as u64 + 1;
        out.push(Entry {
            index,
            time_ms,
            session,
            kind,
        });
    };
    for a in actions {
        let (session, kind) = match a {
            Action::Create(s) => (
                *s,
                EntryKind::CreateSession {
                    remote_addr: format!("192.0.2.{s}"),
                },
            ),
            Action::Register(s, nick) => {
                push(
                    &mut out,
                    time_ms,
                    *s,
                    EntryKind::CreateSession {
                        remote_addr: format!("192.0.2.{s}"),
                    },
                );
                push(
                    &mut out,
                    time_ms,
                    *s,
                    EntryKind::IrcLine(format!("NICK {nick}").into_bytes()),
                );
                (*s, EntryKind::IrcLine(b"USER u 0 * :Real Name".to_vec()))
            }
            Action::Delete(s, m) => (
                *s,
                EntryKind::DeleteSession {
                    quit_message: m.clone(),
                },
            ),
            Action::Line(s, b) => (*s, EntryKind::IrcLine(b.clone())),
            Action::Tick => (0, EntryKind::Tick),
            Action::Wait(ms) => {
                time_ms += ms;
                continue;
            }
            Action::Config(c) => (0, EntryKind::Config(c.clone())),
        };
        push(&mut out, time_ms, session, kind);
    }
    out
}
