//! Snapshots: lossless at any point, garbage refused without changing anything; and
//! random event sequences never panic.

use proptest::prelude::*;
use unsplit_services::Event;

use super::*;

fn assert_round_trip(cs: &ChanServ) {
    let bytes = cs.snapshot();
    assert_eq!(bytes[..4], crate::SNAPSHOT_FORMAT.to_le_bytes());
    let mut copy = ChanServ::default();
    copy.restore(&bytes).unwrap();
    assert_eq!(copy.snapshot(), bytes);
    assert_eq!(&copy, cs);
}

#[test]
fn round_trip_at_several_points() {
    let mut h = H::new();
    assert_round_trip(&h.cs);
    let (mut h2, alice) = H::with_channel();
    assert_round_trip(&h2.cs);
    h2.msg(&alice, "ACCESS #chan ADD bob +oV", &[]);
    assert_round_trip(&h2.cs);
    h2.one(Event::Topic {
        channel: "#chan".into(),
        text: "hello".into(),
        setter: "alice".into(),
    });
    assert_round_trip(&h2.cs);
    // A restored copy continues exactly like the original.
    let mut copy = ChanServ::default();
    copy.restore(&h2.cs.snapshot()).unwrap();
    h.cs = copy;
    h.index = h2.index;
    let bob = user(2, "bob", Some("bob"));
    assert_eq!(h.join(&bob, "#chan", true), h2.join(&bob, "#chan", true));
}

#[test]
fn garbage_is_refused_and_changes_nothing() {
    let (mut h, alice) = H::with_channel();
    h.msg(&alice, "ACCESS #chan ADD bob o", &[]);
    let before = h.cs.snapshot();
    let mut wrong_format = before.clone();
    wrong_format[0] = 9;
    let mut trailing = before.clone();
    trailing.push(0);
    // The founder's flags byte (0x7f) with an undefined bit.
    let mut bad_flags = before.clone();
    let at = bad_flags
        .windows(6)
        .position(|w| w == b"Alice\x7f")
        .unwrap();
    bad_flags[at + 5] = 0xff;
    for bad in [
        vec![],
        vec![1],
        wrong_format,
        trailing,
        bad_flags,
        before[..before.len() - 1].to_vec(),
        b"\x01\x00\x00\x00\x05#chan".to_vec(),
    ] {
        assert!(h.cs.restore(&bad).is_err(), "{bad:?}");
        assert_eq!(h.cs.snapshot(), before);
    }
}

const NICKS: &[&str] = &["alice", "Alice", "bob", "carol"];
const CHANNELS: &[&str] = &["#chan", "#CHAN", "#two", "nochan"];
const TEMPLATES: &[&str] = &[
    "REGISTER {c}",
    "DROP {c}",
    "INFO {c}",
    "OP {c}",
    "OP {c} {n}",
    "DEOP {c} {n}",
    "VOICE {c}",
    "DEVOICE {c} {n}",
    "ACCESS {c} LIST",
    "ACCESS {c} ADD {n} {f}",
    "ACCESS {c} DEL {n}",
    "ACCESS {c} FROB",
    "TOPIC {c} some topic",
    "TOPIC {c}",
    "HELP",
    "HELP {n}",
    "",
    "\u{1}PING x\u{1}",
];
const FLAGS: &[&str] = &["+F", "-F", "o", "+O-v", "FfoOvVt", "+x", "-", "+V", "t"];

#[derive(Debug, Clone)]
enum Op {
    Msg {
        session: u64,
        account: Option<usize>,
        oper: bool,
        template: usize,
        channel: usize,
        nick: usize,
        flags: usize,
        status: Vec<(usize, bool, bool)>,
    },
    Join(u64, Option<usize>, usize, bool),
    Login(u64, Option<usize>, Vec<(usize, bool, bool)>),
    Topic(usize, bool),
    Time(u64),
    Dropped(usize),
}

fn statuses() -> impl Strategy<Value = Vec<(usize, bool, bool)>> {
    proptest::collection::vec((0..CHANNELS.len(), any::<bool>(), any::<bool>()), 0..3)
}

fn op() -> impl Strategy<Value = Op> {
    let account = proptest::option::of(0..NICKS.len());
    prop_oneof![
        4 => (
            (1u64..4, account.clone(), any::<bool>()),
            (0..TEMPLATES.len(), 0..CHANNELS.len(), 0..NICKS.len(), 0..FLAGS.len()),
            statuses(),
        )
            .prop_map(|((session, account, oper), (template, channel, nick, flags), status)| {
                Op::Msg { session, account, oper, template, channel, nick, flags, status }
            }),
        1 => (1u64..4, account.clone(), 0..CHANNELS.len(), any::<bool>())
            .prop_map(|(s, a, c, created)| Op::Join(s, a, c, created)),
        1 => (1u64..4, account, statuses()).prop_map(|(s, a, st)| Op::Login(s, a, st)),
        1 => (0..CHANNELS.len(), any::<bool>()).prop_map(|(c, empty)| Op::Topic(c, empty)),
        1 => (0u64..100_000).prop_map(Op::Time),
        1 => (0..NICKS.len()).prop_map(Op::Dropped),
    ]
}

fn status_list(list: &[(usize, bool, bool)]) -> Vec<ChannelStatus> {
    list.iter()
        .map(|&(c, op, voice)| on(CHANNELS[c], op, voice))
        .collect()
}

fn run(ops: Vec<Op>) {
    let mut h = H::new();
    for op in ops {
        let actions = match op {
            Op::Msg {
                session,
                account,
                oper,
                template,
                channel,
                nick,
                flags,
                status,
            } => {
                let mut u = user(session, NICKS[nick], account.map(|a| NICKS[a]));
                u.oper = oper;
                let text = TEMPLATES[template]
                    .replace("{c}", CHANNELS[channel])
                    .replace("{n}", NICKS[nick])
                    .replace("{f}", FLAGS[flags]);
                h.msg(&u, &text, &status_list(&status))
            }
            Op::Join(s, a, c, created) => {
                let u = user(s, NICKS[0], a.map(|a| NICKS[a]));
                h.join(&u, CHANNELS[c], created)
            }
            Op::Login(s, a, list) => h.one(Event::AccountChange {
                user: user(s, NICKS[1], a.map(|a| NICKS[a])),
                channels: status_list(&list),
            }),
            Op::Topic(c, empty) => h.one(Event::Topic {
                channel: CHANNELS[c].into(),
                text: if empty {
                    String::new()
                } else {
                    "a topic".into()
                },
                setter: "x".into(),
            }),
            Op::Time(ms) => {
                h.now += ms;
                continue;
            }
            Op::Dropped(a) => h.one(Event::AccountDropped(NICKS[a].into())),
        };
        for action in &actions {
            if let Action::Notice { text, .. } = action {
                assert!(!text.contains(['\n', '\r']), "{text:?}");
            }
        }
        let bytes = h.cs.snapshot();
        let mut copy = ChanServ::default();
        copy.restore(&bytes).unwrap();
        assert_eq!(copy.snapshot(), bytes);
        // Every registered channel keeps at least one founder.
        for channel in h.cs.state.channels.values() {
            assert!(!channel.founders().is_empty(), "{channel:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_events_never_panic_and_snapshots_restore(ops in proptest::collection::vec(op(), 0..80)) {
        run(ops);
    }

    #[test]
    fn arbitrary_bytes_never_panic_restore(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut cs = ChanServ::default();
        let before = cs.snapshot();
        let mut data = crate::SNAPSHOT_FORMAT.to_le_bytes().to_vec();
        data.extend_from_slice(&bytes);
        if cs.restore(&data).is_ok() {
            prop_assert_eq!(cs.snapshot(), data);
        } else {
            prop_assert_eq!(cs.snapshot(), before);
        }
    }
}
