//! What services cost: the pipeline per entry with and without plugins, the password
//! hash, and whether hashing stalls the apply path.
//!
//! `cargo bench -p unsplit-host --bench services` prints the Markdown tables in
//! docs/benchmarks.md.
//! - Per entry (wasm logic + wasm plugins, through `Logic::run` as a node runs it):
//!   a channel message (no service event), a JOIN + PART (events to ChanServ), a message
//!   to NickServ answered with notices; the same channel message with no plugins at all.
//! - The host's argon2id hash (m=19 MiB, t=2, p=1), as the leader computes it.
//! - Apply latency of channel messages while a background thread hashes passwords
//!   without pause (the leader during a login storm), against the same without hashing.
//!
//! Entry times are medians of single entries over five rounds, beside the mean with the
//! checkpoints included (a node takes one every 1,000 indexes; timed on their own too).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use unsplit_host::logic::Logic;
use unsplit_host::runtime::{self, Limits, LogicModule, PluginModule};
use unsplit_irc_component::{BUILTIN_PLUGINS, IRC_COMPONENT};
use unsplit_services::Context;
use unsplit_statemachine::pipeline::Start;
use unsplit_statemachine::{Entry, EntryKind};

const START_MS: u64 = 1_795_266_199_000;
const USERS: u64 = 1000;

struct Net {
    logic: Logic,
    index: u64,
}

impl Net {
    fn new(with_plugins: bool) -> Net {
        let engine = runtime::engine().unwrap();
        let module = LogicModule::new(&engine, IRC_COMPONENT).unwrap();
        let logic = Logic::new(module, Limits::default(), Limits::default()).unwrap();
        let mut net = Net { logic, index: 0 };
        if with_plugins {
            for (_, bytes) in BUILTIN_PLUGINS {
                let ctx = net.ctx();
                let plugin = PluginModule::new(&engine, bytes).unwrap();
                net.logic.activate_plugin(plugin, None, ctx, 64).unwrap();
            }
        }
        for u in 1..=USERS {
            net.entry(
                u,
                EntryKind::CreateSession {
                    remote_addr: "192.0.2.1".into(),
                },
            );
            net.line(u, &format!("NICK u{u}"));
            net.line(u, &format!("USER u{u} 0 * :u"));
            net.line(u, &format!("JOIN #c{}", u % 100));
        }
        net
    }

    fn ctx(&mut self) -> Context {
        self.index += 1;
        Context {
            index: self.index,
            time_ms: START_MS + self.index,
        }
    }

    fn entry(&mut self, session: u64, kind: EntryKind) -> Duration {
        let ctx = self.ctx();
        let entry = Entry {
            index: ctx.index,
            time_ms: ctx.time_ms,
            session,
            kind,
        };
        let t = Instant::now();
        self.logic.run(Start::Entry(entry), 64).unwrap();
        t.elapsed()
    }

    fn line(&mut self, session: u64, text: &str) -> Duration {
        self.entry(session, EntryKind::IrcLine(text.as_bytes().to_vec()))
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p) as usize]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// Entry times of `make(i)` over `n` calls, five rounds: the median entry, and the mean
/// per entry with the checkpoints (every 1,000 indexes) the rounds crossed included.
fn per_entry(
    net: &mut Net,
    n: u64,
    mut make: impl FnMut(&mut Net, u64, &mut Vec<Duration>),
) -> (Duration, Duration) {
    let mut times = Vec::new();
    for _ in 0..5 {
        for i in 0..n {
            make(net, i, &mut times);
        }
    }
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    (percentile(&mut times, 0.5), mean)
}

/// Median time of a checkpoint of the logic and its plugins (a node takes one every
/// 1,000 indexes).
fn checkpoint(net: &mut Net) -> Duration {
    median(
        (0..5)
            .map(|_| {
                let t = Instant::now();
                net.logic.checkpoint(net.index).unwrap();
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let mut plain = Net::new(false);
    let mut net = Net::new(true);
    let chat = |net: &mut Net, i: u64| {
        let u = 1 + i % USERS;
        net.line(u, &format!("PRIVMSG #c{} :hello {i}", u % 100))
    };
    let without = per_entry(&mut plain, 2000, |net, i, t| t.push(chat(net, i)));
    let with = per_entry(&mut net, 2000, |net, i, t| t.push(chat(net, i)));
    let join_part = per_entry(&mut net, 1000, |net, i, t| {
        let u = 1 + i % USERS;
        t.push(net.line(u, "JOIN #bench"));
        t.push(net.line(u, "PART #bench"));
    });
    let to_nickserv = per_entry(&mut net, 500, |net, i, t| {
        t.push(net.line(1 + i % USERS, "PRIVMSG NickServ :INFO u1"));
    });
    println!("| entry ({USERS} users) | median | mean, checkpoints included |");
    println!("|---|---|---|");
    for (what, (p50, mean)) in [
        ("channel message, no plugins at all", without),
        (
            "channel message, NickServ and ChanServ active (no event for them)",
            with,
        ),
        (
            "JOIN or PART (an event to ChanServ, one plugin call)",
            join_part,
        ),
        (
            "message to NickServ (INFO of an unregistered nick: a notice back)",
            to_nickserv,
        ),
    ] {
        println!("| {what} | {} | {} |", us(p50), us(mean));
    }
    println!();
    println!("| checkpoint ({USERS} users, every 1,000 indexes) | time |");
    println!("|---|---|");
    println!(
        "| the logic alone | {:.2} ms |",
        checkpoint(&mut plain).as_secs_f64() * 1e3
    );
    println!(
        "| the logic, NickServ and ChanServ | {:.2} ms |",
        checkpoint(&mut net).as_secs_f64() * 1e3
    );

    // The leader's hash.
    let hash = median(
        (0..7)
            .map(|i| {
                let t = Instant::now();
                unsplit_services::hasher::hash_password(&format!("pw{i}"), b"saltsaltsalt", None)
                    .unwrap();
                t.elapsed()
            })
            .collect(),
    );
    println!();
    println!("| password hashing | |");
    println!("|---|---|");
    println!(
        "| argon2id (m=19 MiB, t=2, p=1), one password, on the leader | {:.1} ms |",
        hash.as_secs_f64() * 1e3
    );

    // Apply latency with and without a hasher busy on the other core.
    let sample = |net: &mut Net| {
        let mut times: Vec<Duration> = (0..5000).map(|i| chat(net, i)).collect();
        let p50 = percentile(&mut times, 0.5);
        let p99 = percentile(&mut times, 0.99);
        let max = *times.last().unwrap();
        (p50, p99, max)
    };
    let quiet = sample(&mut net);
    let stop = Arc::new(AtomicBool::new(false));
    let hashed = Arc::new(AtomicU64::new(0));
    let hasher = {
        let (stop, hashed) = (stop.clone(), hashed.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                unsplit_services::hasher::hash_password(&format!("p{i}"), b"saltsaltsalt", None)
                    .unwrap();
                hashed.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let started = Instant::now();
    let busy = sample(&mut net);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    hasher.join().unwrap();
    let rate = hashed.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64();
    println!();
    println!("| channel message apply time | p50 | p99 | max |");
    println!("|---|---|---|---|");
    println!(
        "| no hashing | {} | {} | {} |",
        us(quiet.0),
        us(quiet.1),
        us(quiet.2)
    );
    println!(
        "| a hasher thread busy the whole time ({rate:.0} hashes/s) | {} | {} | {} |",
        us(busy.0),
        us(busy.1),
        us(busy.2)
    );
    println!(
        "| for comparison: a hash inside the apply loop would stall every entry behind it by | {:.1} ms | | |",
        hash.as_secs_f64() * 1e3
    );
}
