//! Snapshots: lossless at any point, garbage refused without changing anything; and
//! random event sequences never panic.

use std::collections::BTreeMap;

use proptest::prelude::*;
use unsplit_services::{Action, Context, Event, Plugin};

use super::*;

/// Snapshot → restore into a fresh plugin → the same snapshot.
fn assert_round_trip(ns: &NickServ) {
    let bytes = ns.snapshot();
    assert_eq!(bytes[..4], crate::SNAPSHOT_FORMAT.to_le_bytes());
    let mut copy = NickServ::default();
    copy.restore(&bytes).unwrap();
    assert_eq!(copy.snapshot(), bytes);
    assert_eq!(&copy, ns);
}

#[test]
fn round_trip_at_every_step_and_continue_alike() {
    let mut h = H::new();
    assert_round_trip(&h.ns);
    h.one(Event::Settings("GracePeriod = \"30s\"".into()));
    assert_round_trip(&h.ns);
    let (a, _) = h.connect(1, "alice");
    let asked = h.msg(&a, "REGISTER secret1 a@b.example");
    // Restored while a hash is under way: the answer is handled alike.
    assert_round_trip(&h.ns);
    let mut restored = NickServ::default();
    restored.restore(&h.ns.snapshot()).unwrap();
    let done = h.answer(&asked);
    let (id, password, salt, _) = hash_requests(&asked)[0].clone();
    let ctx = Context {
        index: h.index,
        time_ms: h.now,
    };
    let again = restored.handle(
        &ctx,
        vec![Event::PasswordHashed {
            id,
            result: Ok(fake_hash(&password, &salt, None)),
        }],
    );
    assert_eq!(done, again);
    assert_eq!(restored, h.ns);
    let (_, _) = h.connect(2, "Alice");
    assert_round_trip(&h.ns);
    h.advance(30_000);
    assert_eq!(h.tick().len(), 2);
    assert_round_trip(&h.ns);
    let (b, _) = h.connect(3, "bob");
    h.msg_hashed(&b, "IDENTIFY alice nope1");
    assert_round_trip(&h.ns);
}

#[test]
fn garbage_is_refused_and_changes_nothing() {
    let mut h = H::new();
    h.registered(1, "alice", "secret1");
    let before = h.ns.snapshot();
    let mut wrong_format = before.clone();
    wrong_format[0] = 2;
    let mut trailing = before.clone();
    trailing.push(0);
    let mut truncated = before.clone();
    truncated.truncate(before.len() - 3);
    let mut flipped = before.clone();
    if let Some(last) = flipped.last_mut() {
        *last ^= 0xff;
    }
    for bad in [
        vec![],
        vec![1, 0, 0],
        wrong_format,
        trailing,
        truncated,
        vec![1, 0, 0, 0, 0xff, 0xff, 0xff],
        b"\x01\x00\x00\x00garbage garbage garbage".to_vec(),
    ] {
        assert!(h.ns.restore(&bad).is_err(), "{bad:?}");
        assert_eq!(h.ns.snapshot(), before);
    }
    // A flipped last byte may still decode (it is a counter); if it does, it is kept
    // exactly, otherwise refused.
    match h.ns.restore(&flipped) {
        Ok(()) => assert_eq!(h.ns.snapshot(), flipped),
        Err(_) => assert_eq!(h.ns.snapshot(), before),
    }
}

const NICKS: &[&str] = &["alice", "Alice", "bob", "Guest1", "carol", "x[y]"];
const PASSWORDS: &[&str] = &["sekrit1", "sekrit2", "sek"];
const TEMPLATES: &[&str] = &[
    "REGISTER {p}",
    "REGISTER {p} me@example.org",
    "IDENTIFY {p}",
    "IDENTIFY {n} {p}",
    "LOGIN {n} {p}",
    "LOGOUT",
    "GHOST {n}",
    "GHOST {n} {p}",
    "REGAIN {n}",
    "RECOVER {n} {p}",
    "DROP",
    "DROP {n}",
    "DROP {n} {p}",
    "INFO",
    "INFO {n}",
    "SET PASSWORD {p}",
    "SET EMAIL",
    "SET EMAIL me@example.org",
    "SET",
    "HELP",
    "HELP {n}",
    "frob",
    "",
    "\u{1}PING 1\u{1}",
];

#[derive(Debug, Clone)]
enum Op {
    Connect(u64, usize),
    Nick(u64, usize),
    Quit(u64),
    Account(u64, Option<usize>),
    Oper(u64),
    Msg(u64, usize, usize, usize),
    Sasl(u64, usize, usize, usize),
    Tick(u64),
    Answer(bool),
    Stray(u64),
    Settings(usize),
    Users,
}

fn op() -> impl Strategy<Value = Op> {
    let s = 1u64..6;
    let n = 0..NICKS.len();
    let p = 0..PASSWORDS.len();
    prop_oneof![
        (s.clone(), n.clone()).prop_map(|(s, n)| Op::Connect(s, n)),
        (s.clone(), n.clone()).prop_map(|(s, n)| Op::Nick(s, n)),
        s.clone().prop_map(Op::Quit),
        (s.clone(), proptest::option::of(n.clone())).prop_map(|(s, n)| Op::Account(s, n)),
        s.clone().prop_map(Op::Oper),
        (s.clone(), 0..TEMPLATES.len(), n.clone(), p.clone())
            .prop_map(|(s, t, n, p)| Op::Msg(s, t, n, p)),
        (s, 0..NICKS.len() + 1, n, p).prop_map(|(s, z, n, p)| Op::Sasl(s, z, n, p)),
        (0u64..200_000).prop_map(Op::Tick),
        any::<bool>().prop_map(Op::Answer),
        (0u64..40).prop_map(Op::Stray),
        (0usize..4).prop_map(Op::Settings),
        Just(Op::Users),
    ]
}

const SETTINGS: &[&str] = &[
    "",
    "GracePeriod = \"1s\"\nEnforce = true",
    "Enforce = false\nMinPasswordLength = 3",
    "GuestPrefix = \"9bad\"",
];

/// Runs the operations; after each, the snapshot restores to itself, and no notice is
/// multi-line or shows a password.
fn run(ops: Vec<Op>) {
    let mut ns = NickServ::default();
    let mut users: BTreeMap<u64, User> = BTreeMap::new();
    let mut outstanding: Vec<(u64, String, Vec<u8>, Option<String>)> = Vec::new();
    let (mut index, mut now) = (1u64, T0);
    for op in ops {
        index += 1;
        let event = match op {
            Op::Connect(s, n) => {
                let u = user(s, NICKS[n]);
                users.insert(s, u.clone());
                Event::Registered(u)
            }
            Op::Nick(s, n) => {
                let Some(u) = users.get_mut(&s) else { continue };
                let old_nick = std::mem::replace(&mut u.nick, NICKS[n].into());
                Event::NickChange {
                    user: u.clone(),
                    old_nick,
                }
            }
            Op::Quit(s) => {
                let Some(u) = users.remove(&s) else { continue };
                Event::Quit(u)
            }
            Op::Account(s, n) => {
                let Some(u) = users.get_mut(&s) else { continue };
                u.account = n.map(|n| NICKS[n].to_owned());
                Event::AccountChange {
                    user: u.clone(),
                    channels: vec![],
                }
            }
            Op::Oper(s) => {
                let Some(u) = users.get_mut(&s) else { continue };
                u.oper = !u.oper;
                continue;
            }
            Op::Msg(s, t, n, p) => {
                let Some(u) = users.get(&s) else { continue };
                let text = TEMPLATES[t]
                    .replace("{n}", NICKS[n])
                    .replace("{p}", PASSWORDS[p]);
                Event::Message {
                    from: u.clone(),
                    text,
                    channels: vec![],
                }
            }
            Op::Sasl(s, z, n, p) => Event::Sasl {
                session: s + 100,
                authzid: NICKS.get(z).copied().unwrap_or_default().into(),
                authcid: NICKS[n].into(),
                password: PASSWORDS[p].into(),
            },
            Op::Tick(ms) => {
                now += ms;
                Event::Tick
            }
            Op::Answer(ok) => {
                if outstanding.is_empty() {
                    continue;
                }
                let (id, password, salt, algorithm) = outstanding.remove(0);
                let result = if ok {
                    Ok(fake_hash(&password, &salt, algorithm.as_deref()))
                } else {
                    Err("host error".into())
                };
                Event::PasswordHashed { id, result }
            }
            Op::Stray(id) => Event::PasswordHashed {
                id,
                result: Ok(fake_hash("sekrit1", b"0123456789abcdef", None)),
            },
            Op::Settings(i) => Event::Settings(SETTINGS[i].into()),
            Op::Users => Event::Users(users.values().cloned().collect()),
        };
        let actions = ns.handle(
            &Context {
                index,
                time_ms: now,
            },
            vec![event],
        );
        outstanding.extend(hash_requests(&actions));
        for action in &actions {
            if let Action::Notice { text, .. } = action {
                assert!(!text.contains(['\n', '\r']), "{text:?}");
                assert!(!text.contains("sekrit"), "{text:?}");
            }
        }
        let bytes = ns.snapshot();
        let mut copy = NickServ::default();
        copy.restore(&bytes).unwrap();
        assert_eq!(copy.snapshot(), bytes);
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
        let mut ns = NickServ::default();
        let before = ns.snapshot();
        let mut data = crate::SNAPSHOT_FORMAT.to_le_bytes().to_vec();
        data.extend_from_slice(&bytes);
        if ns.restore(&data).is_ok() {
            prop_assert_eq!(ns.snapshot(), data);
        } else {
            prop_assert_eq!(ns.snapshot(), before);
        }
    }
}
