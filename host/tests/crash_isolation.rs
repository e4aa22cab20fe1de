//! Messages of death: a line that makes the logic panic, loop forever or allocate
//! without bound is rejected (the same way on every node: the trap kind and the state
//! after it are deterministic), the state is as if it had never come, and the sender's
//! next line works. Uses the misbehaving fixture modules (statemachine/src/fixtures.rs).

mod common;

use std::sync::Arc;

use unsplit_host::logic::{Logic, LogicError};
use unsplit_host::runtime::{self, Limits, LogicModule, TrapKind};
use unsplit_irc_component::fixtures;
use unsplit_statemachine::transcript::Transcript;
use unsplit_statemachine::{Entry, EntryKind};

fn module(bytes: &[u8]) -> Arc<LogicModule> {
    LogicModule::new(&runtime::engine().expect("engine"), bytes).expect("fixture compiles")
}

fn entry(index: u64, session: u64, kind: EntryKind) -> Entry {
    Entry {
        index,
        time_ms: 1_795_266_199_000 + index,
        session,
        kind,
    }
}

fn line(index: u64, text: &str) -> Entry {
    entry(index, 1, EntryKind::IrcLine(text.as_bytes().to_vec()))
}

/// Registers a session, sends the fixture's magic line, then a PING.
fn run(bytes: &[u8], limits: Limits, magic: &str) -> (LogicError, Vec<u8>, Vec<u8>, String) {
    let mut logic = Logic::new(module(bytes), limits, Limits::default()).expect("logic");
    logic
        .apply(entry(
            1,
            1,
            EntryKind::CreateSession {
                remote_addr: "192.0.2.1".into(),
            },
        ))
        .expect("create");
    logic.apply(line(2, "NICK victim")).expect("nick");
    logic.apply(line(3, "USER v 0 * :v")).expect("user");
    logic.apply(line(4, "JOIN #c")).expect("join");
    let before = logic.snapshot().expect("snapshot");
    let err = logic
        .apply(line(5, magic))
        .expect_err("the magic line must trap");
    let after = logic.snapshot().expect("snapshot after recovery");
    let pong = logic
        .apply(line(6, "PING still-alive"))
        .expect("the next line works");
    let text = pong
        .lines
        .iter()
        .map(|l| l.line.clone())
        .collect::<Vec<_>>()
        .join("\n");
    (err, before, after, text)
}

fn check(bytes: &[u8], limits: Limits, magic: &str, expected: TrapKind) {
    let (err, before, after, pong) = run(bytes, limits, magic);
    assert!(
        matches!(&err, LogicError::Rejected { kind, .. } if *kind == expected),
        "{err}"
    );
    assert_eq!(before, after, "the rejected line changed the state");
    assert!(pong.ends_with(":still-alive"), "{pong}");
    // Every node traps the same way: a second run gives the same rejection and state.
    let (err2, _, after2, _) = run(bytes, limits, magic);
    assert_eq!(err.to_string(), err2.to_string());
    assert_eq!(after, after2);
}

#[test]
fn a_panicking_line_is_rejected_and_the_session_goes_on() {
    check(
        fixtures::PANIC,
        Limits::default(),
        "FIXTURE PANIC",
        TrapKind::Panic,
    );
}

#[test]
fn an_endless_loop_runs_out_of_fuel_and_is_rejected() {
    let limits = Limits {
        fuel_per_call: 50_000_000,
        ..Limits::default()
    };
    check(fixtures::LOOP, limits, "FIXTURE LOOP", TrapKind::OutOfFuel);
}

#[test]
fn an_unbounded_allocation_hits_the_memory_limit_and_is_rejected() {
    let limits = Limits {
        memory_bytes: 64 << 20,
        ..Limits::default()
    };
    check(
        fixtures::ALLOC,
        limits,
        "FIXTURE ALLOC",
        TrapKind::OutOfMemory,
    );
}

#[test]
fn the_magic_lines_are_plain_unknown_commands_in_the_real_module() {
    let mut logic =
        Logic::new(common::module(), Limits::default(), Limits::default()).expect("logic");
    logic
        .apply(entry(
            1,
            1,
            EntryKind::CreateSession {
                remote_addr: "192.0.2.1".into(),
            },
        ))
        .unwrap();
    logic.apply(line(2, "NICK n")).unwrap();
    logic.apply(line(3, "USER n 0 * :n")).unwrap();
    for (i, magic) in ["FIXTURE PANIC", "FIXTURE LOOP", "FIXTURE ALLOC"]
        .iter()
        .enumerate()
    {
        let out = logic.apply(line(4 + i as u64, magic)).expect("no trap");
        assert!(
            out.lines[0]
                .line
                .contains(" 421 n FIXTURE :Unknown command"),
            "{:?}",
            out.lines
        );
    }
}

/// The reply-changing fixture differs from the real module in the VERSION reply and the
/// module version it reports, and nowhere else (what the canary must find).
#[test]
fn the_reply_fixture_differs_only_in_version_replies() {
    let fixture = module(fixtures::REPLY);
    let mut differing = 0;
    for (name, text) in common::transcripts() {
        let t = Transcript::parse(&text).unwrap();
        let real = t.run(&mut common::Wasm::new());
        let mut changed =
            common::Wasm(runtime::LogicInstance::new(fixture.clone(), Limits::default()).unwrap());
        let other = t.run(&mut changed);
        for (a, b) in real
            .outcomes
            .iter()
            .flatten()
            .zip(other.outcomes.iter().flatten())
        {
            for (la, lb) in a.lines.iter().zip(&b.lines) {
                if la != lb {
                    differing += 1;
                    let version_line = la.line.contains(" 351 ")
                        || la.line.contains(" 002 ")
                        || la.line.contains(" 004 ");
                    assert!(
                        version_line,
                        "{name}: unexpected difference:\n  {}\n  {}",
                        la.line, lb.line
                    );
                }
            }
            assert_eq!(a.lines.len(), b.lines.len(), "{name}");
        }
    }
    assert!(differing > 0, "the fixture changed nothing");
}

/// Whether a call traps on fuel or memory can depend on an instance's history, so every
/// node's instances must have the same one: a node that restores a snapshot (another's
/// `state()`, taken at any moment) must then burn exactly the same fuel, call for call,
/// as the node that never stopped, also across a checkpoint and a trap.
#[test]
fn a_restored_logic_burns_the_same_fuel_call_for_call() {
    let module = module(fixtures::PANIC);
    let mut running = Logic::new(module.clone(), Limits::default(), Limits::default()).unwrap();
    let line = |index: u64, session: u64, text: &str| Entry {
        index,
        time_ms: 1_795_266_199_000 + index,
        session,
        kind: EntryKind::IrcLine(text.as_bytes().to_vec()),
    };
    let mut index = 0;
    let mut entries = Vec::new();
    for s in 1..=30u64 {
        index += 1;
        entries.push(Entry {
            index,
            time_ms: 1_795_266_199_000 + index,
            session: s,
            kind: EntryKind::CreateSession {
                remote_addr: "192.0.2.1".into(),
            },
        });
        for text in [
            format!("NICK n{s}"),
            format!("USER n{s} 0 * :n"),
            format!("JOIN #c{}", s % 3),
        ] {
            index += 1;
            entries.push(line(index, s, &text));
        }
    }
    // Chat across a checkpoint index (1000) with a message of death in the middle.
    while index < 1_300 {
        index += 1;
        let s = 1 + index % 30;
        let text = if index == 1_100 {
            "FIXTURE PANIC".to_owned()
        } else {
            format!(
                "PRIVMSG #c{} :message {index} {}",
                s % 3,
                "x".repeat((index % 50) as usize)
            )
        };
        entries.push(line(index, s, &text));
    }
    // Restored after the checkpoint at 1000: from it and the calls since.
    let split = entries.iter().position(|e| e.index == 1_050).unwrap();
    let (before, after) = entries.split_at(split);
    for e in before {
        let _ = running.apply(e.clone());
    }
    let mut restored = Logic::from_state(
        module,
        Limits::default(),
        Limits::default(),
        &running.state(),
        |_| Err("no plugins".into()),
    )
    .unwrap();
    for e in after {
        let a = running.apply(e.clone()).map_err(|e| e.to_string());
        let fa = running.last_fuel();
        let b = restored.apply(e.clone()).map_err(|e| e.to_string());
        let fb = restored.last_fuel();
        assert_eq!(a, b, "entry {}", e.index);
        assert_eq!(fa, fb, "fuel of entry {}", e.index);
    }
    assert_eq!(running.state(), restored.state());
}
