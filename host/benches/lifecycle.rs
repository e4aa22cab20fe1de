//! The module lifecycle's costs: trap recovery, the swap stall, the canary's replay rate.
//!
//! `cargo bench -p unsplit-host --bench lifecycle` prints the Markdown table in
//! docs/benchmarks.md.
//! - Trap recovery: a message of death (the panic fixture) at 1k and 10k users, right
//!   after a checkpoint and 999 entries after one (the worst case: the most replay). The
//!   figure is the whole `apply` of the trapping entry: trap, fresh instance, restore of
//!   the checkpoint, replay, rejection.
//! - Swap stall: `Logic::switch_to` (snapshot from the old module, restore into the new,
//!   both compiled already), which is the pause of the apply loop at the activation entry.
//! - Canary: replaying 200k recorded inputs (chat in 10-member channels, private
//!   messages, pings) through two versions; inputs/s per version and over the wall.
//!
//! Each figure is the median of several rounds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use unsplit_host::canary::{Recording, replay};
use unsplit_host::logic::{CHECKPOINT_EVERY, Logic};
use unsplit_host::raft::{Op, Request};
use unsplit_host::runtime::{self, Compiled, Limits, LogicModule};
use unsplit_irc_component::{IRC_COMPONENT, fixtures};
use unsplit_statemachine::{Entry, EntryKind};

const START_MS: u64 = 1_795_266_199_000;
const ROUNDS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

struct Feed {
    index: u64,
}

impl Feed {
    fn entry(&mut self, session: u64, kind: EntryKind) -> Entry {
        self.index += 1;
        Entry {
            index: self.index,
            time_ms: START_MS + self.index,
            session,
            kind,
        }
    }
    fn line(&mut self, session: u64, text: &str) -> Entry {
        self.entry(session, EntryKind::IrcLine(text.as_bytes().to_vec()))
    }
}

/// `users` registered users, each in 3 of `users` channels.
fn populate(logic: &mut Logic, feed: &mut Feed, users: u64) {
    for u in 1..=users {
        logic
            .apply(feed.entry(
                u,
                EntryKind::CreateSession {
                    remote_addr: "192.0.2.1".into(),
                },
            ))
            .unwrap();
        logic.apply(feed.line(u, &format!("NICK u{u}"))).unwrap();
        logic
            .apply(feed.line(u, &format!("USER u{u} 0 * :u")))
            .unwrap();
        for c in 0..3 {
            let ch = (u + c * 7) % users;
            logic.apply(feed.line(u, &format!("JOIN #c{ch}"))).unwrap();
        }
    }
}

fn recovery(module: &Arc<LogicModule>, users: u64, since: u64) -> Duration {
    let mut rounds = Vec::new();
    let mut logic = Logic::new(module.clone(), Limits::default(), Limits::default()).unwrap();
    let mut feed = Feed { index: 0 };
    populate(&mut logic, &mut feed, users);
    for _ in 0..ROUNDS {
        // A checkpoint at a multiple of CHECKPOINT_EVERY, as every node takes them; the
        // next one is CHECKPOINT_EVERY indexes later.
        feed.index = (feed.index / CHECKPOINT_EVERY + 1) * CHECKPOINT_EVERY;
        logic.checkpoint(feed.index).unwrap();
        for i in 0..since {
            let u = 1 + (i % users);
            logic
                .apply(feed.line(u, &format!("PRIVMSG #c{u} :hello {i}")))
                .unwrap();
        }
        let death = feed.line(1, "FIXTURE PANIC");
        let t = Instant::now();
        let r = logic.apply(death);
        rounds.push(t.elapsed());
        assert!(r.is_err(), "the panic fixture must trap");
    }
    median(rounds)
}

fn swap(old: &Arc<LogicModule>, new: &Arc<LogicModule>, users: u64) -> Duration {
    let mut logic = Logic::new(old.clone(), Limits::default(), Limits::default()).unwrap();
    populate(&mut logic, &mut Feed { index: 0 }, users);
    let mut rounds = Vec::new();
    for r in 0..ROUNDS {
        let target = if r % 2 == 0 { new } else { old };
        let t = Instant::now();
        logic.switch_to(target.clone()).unwrap();
        rounds.push(t.elapsed());
    }
    median(rounds)
}

/// 100 users in 10 channels of 10, then `n` inputs of chat.
fn recording(n: usize) -> Recording {
    const USERS: u64 = 100;
    let mut entries = Vec::new();
    let mut index = 0u64;
    let mut push = |op: Op| {
        index += 1;
        entries.push((
            index,
            Request {
                time_ms: START_MS + index,
                op,
            },
        ));
    };
    let offset = unsplit_bridge::protocol::MESSAGE_ID_OFFSET;
    let mut sessions = Vec::new();
    for u in 0..USERS {
        sessions.push(offset + 1 + u * 4);
        push(Op::CreateSession {
            auth: String::new(),
            remote_addr: "192.0.2.1".into(),
        });
        let s = *sessions.last().unwrap();
        for line in [
            format!("NICK u{u}"),
            format!("USER u{u} 0 * :u"),
            format!("JOIN #c{}", u % 10),
        ] {
            push(Op::Line {
                session: s,
                client_message_id: 0,
                data: line,
            });
        }
    }
    for i in 0..n {
        let u = (i as u64 * 7) % USERS;
        let data = match i % 10 {
            0 => format!("PRIVMSG u{} :private {i}", (u + 1) % USERS),
            1 => format!("PING {i}"),
            _ => format!("PRIVMSG #c{} :chat line number {i}", u % 10),
        };
        push(Op::Line {
            session: sessions[u as usize],
            client_message_id: 0,
            data,
        });
    }
    Recording::new(None, entries).unwrap()
}

fn main() {
    let engine = runtime::engine().unwrap();
    let builtin = LogicModule::new(&engine, IRC_COMPONENT).unwrap();
    let panic = LogicModule::new(&engine, fixtures::PANIC).unwrap();
    let reply = LogicModule::new(&engine, fixtures::REPLY).unwrap();

    println!("| measurement | 1k users | 10k users | goal |");
    println!("|---|---|---|---|");
    let r0 = [recovery(&panic, 1_000, 0), recovery(&panic, 10_000, 0)];
    println!(
        "| trap recovery, right after a checkpoint | {} | {} | < 50 ms at 10k |",
        ms(r0[0]),
        ms(r0[1])
    );
    let worst = CHECKPOINT_EVERY - 1;
    let r1 = [
        recovery(&panic, 1_000, worst),
        recovery(&panic, 10_000, worst),
    ];
    println!(
        "| trap recovery, {worst} entries after a checkpoint | {} | {} | < 50 ms at 10k |",
        ms(r1[0]),
        ms(r1[1])
    );
    let s = [
        swap(&builtin, &reply, 1_000),
        swap(&builtin, &reply, 10_000),
    ];
    println!(
        "| swap stall (snapshot old + restore new) | {} | {} | < 100 ms |",
        ms(s[0]),
        ms(s[1])
    );

    let compile = median(
        (0..3)
            .map(|_| {
                let t = Instant::now();
                LogicModule::new(&engine, fixtures::REPLY).unwrap();
                t.elapsed()
            })
            .collect(),
    );
    println!(
        "| compiling a {} KB component (at upload, in the background) | {} | | off the apply path |",
        fixtures::REPLY.len() / 1024,
        ms(compile)
    );

    let rec = recording(200_000);
    let mut rates = Vec::new();
    for _ in 0..3 {
        let report = replay(
            &rec,
            (Compiled::Logic(builtin.clone()), "builtin".into()),
            (Compiled::Logic(reply.clone()), "reply".into()),
            &mut |_, _| {},
        )
        .unwrap();
        // Only the 100 registrations differ (their 002/004 name the version).
        assert_eq!(report.divergent, 100, "{}", report.summary(3));
        let per_old = report.inputs as f64 / report.old_busy.as_secs_f64();
        let per_new = report.inputs as f64 / report.new_busy.as_secs_f64();
        let wall = report.inputs as f64 / report.elapsed.as_secs_f64();
        rates.push((wall, per_old, per_new, report.inputs));
    }
    rates.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (wall, per_old, per_new, inputs) = rates[rates.len() / 2];
    println!();
    println!("| canary replay ({inputs} inputs) | inputs/s | goal |");
    println!("|---|---|---|");
    println!("| old version alone (time inside the logic) | {per_old:.0} | ≥ 100,000 |");
    println!("| new version alone (time inside the logic) | {per_new:.0} | ≥ 100,000 |");
    println!("| whole replay, both versions on two threads (wall) | {wall:.0} | |");
}
