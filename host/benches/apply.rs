//! Apply cost of the IRC logic, native library vs the component in wasmtime.
//!
//! `cargo bench -p unsplit-host --bench apply` prints a Markdown table (the one in
//! docs/benchmarks.md). Workloads:
//! - registration: create-session + NICK + USER (the whole welcome burst);
//! - PONG: no output, so the figure is the fixed cost of one call;
//! - PRIVMSG to a user;
//! - PRIVMSG to a channel of 50 members (49 recipients);
//! - JOIN into a channel of 1,000 members (JOIN broadcast + NAMES of 1,000 nicks);
//! - snapshot and restore of 10,000 users in 10,000 channels (3 memberships each).
//!
//! Each figure is the median of several rounds, so one noisy round does not decide it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use unsplit_host::runtime::{self, Limits, LogicInstance, LogicModule};
use unsplit_statemachine::{Entry, EntryKind, Outcome, Server};

const START_MS: u64 = 1_795_266_199_000;
const ROUNDS: usize = 7;

/// An entry in the form an implementation takes it (built before the clock starts: the
/// node builds WIT entries directly, so conversion is not part of the apply cost).
enum Prepared {
    Native(Entry),
    Wasm(runtime::Entry),
}

/// Either implementation behind one interface.
trait Logic {
    fn prepare(&self, e: &Entry) -> Prepared;
    fn run(&mut self, e: &Prepared) -> usize;
    fn apply(&mut self, e: &Entry) -> usize {
        let p = self.prepare(e);
        self.run(&p)
    }
    fn snapshot(&mut self) -> Vec<u8>;
    fn restore(&mut self, bytes: &[u8]);
}

struct Native(Server);

impl Logic for Native {
    fn prepare(&self, e: &Entry) -> Prepared {
        Prepared::Native(e.clone())
    }
    fn run(&mut self, e: &Prepared) -> usize {
        let Prepared::Native(e) = e else {
            unreachable!("prepared for another logic")
        };
        let o: Outcome = self.0.apply(e);
        o.lines.len()
    }
    fn snapshot(&mut self) -> Vec<u8> {
        self.0.snapshot()
    }
    fn restore(&mut self, bytes: &[u8]) {
        self.0 = Server::restore(bytes).expect("restore");
    }
}

struct Wasm(LogicInstance);

impl Logic for Wasm {
    fn prepare(&self, e: &Entry) -> Prepared {
        let kind = match &e.kind {
            EntryKind::CreateSession { remote_addr } => {
                runtime::EntryKind::CreateSession(remote_addr.clone())
            }
            EntryKind::DeleteSession { quit_message } => {
                runtime::EntryKind::DeleteSession(quit_message.clone())
            }
            EntryKind::IrcLine(b) => runtime::EntryKind::IrcLine(b.clone()),
            EntryKind::Tick => runtime::EntryKind::Tick,
            EntryKind::Config(t) => runtime::EntryKind::Config(t.clone()),
        };
        Prepared::Wasm(runtime::Entry {
            index: e.index,
            time_ms: e.time_ms,
            session: e.session,
            kind,
        })
    }
    fn run(&mut self, e: &Prepared) -> usize {
        let Prepared::Wasm(e) = e else {
            unreachable!("prepared for another logic")
        };
        self.0.apply(e).expect("apply").lines.len()
    }
    fn snapshot(&mut self) -> Vec<u8> {
        self.0.snapshot().expect("snapshot")
    }
    fn restore(&mut self, bytes: &[u8]) {
        self.0
            .restore(bytes)
            .expect("restore call")
            .expect("restore accepted");
    }
}

/// Builds entries with increasing indexes.
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
    fn register(&mut self, session: u64) -> [Entry; 3] {
        [
            self.entry(
                session,
                EntryKind::CreateSession {
                    remote_addr: "127.0.0.1".to_owned(),
                },
            ),
            self.line(session, &format!("NICK user{session}")),
            self.line(
                session,
                &format!("USER u{session} 0 * :Bench User {session}"),
            ),
        ]
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median over rounds of the time per entry of `entries` (applied in order).
fn per_entry(make: &mut dyn FnMut() -> (Box<dyn Logic>, Vec<Entry>)) -> Duration {
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let (mut logic, entries) = make();
        let prepared: Vec<Prepared> = entries.iter().map(|e| logic.prepare(e)).collect();
        let start = Instant::now();
        for e in &prepared {
            black_box(logic.run(e));
        }
        rounds.push(start.elapsed() / entries.len() as u32);
    }
    median(rounds)
}

fn setup(logic: &mut dyn Logic, feed: &mut Feed, users: u64, channel: Option<&str>) {
    for s in 1..=users {
        for e in feed.register(s) {
            logic.apply(&e);
        }
        if let Some(c) = channel {
            let e = feed.line(s, &format!("JOIN {c}"));
            logic.apply(&e);
        }
    }
}

type Factory = fn() -> Box<dyn Logic>;

fn workloads(new: Factory) -> Vec<(&'static str, Duration)> {
    let mut results = Vec::new();

    results.push((
        "registration (create + NICK + USER, welcome burst)",
        per_entry(&mut || {
            let logic = new();
            let mut feed = Feed { index: 0 };
            let entries = (1..=500).flat_map(|s| feed.register(s)).collect();
            (logic, entries)
        }) * 3,
    ));

    results.push((
        "PONG (no output: the cost of one call)",
        per_entry(&mut || {
            let mut logic = new();
            let mut feed = Feed { index: 0 };
            setup(logic.as_mut(), &mut feed, 1, None);
            let entries = (0..5_000)
                .map(|i| feed.line(1, &format!("PONG :{i}")))
                .collect();
            (logic, entries)
        }),
    ));

    results.push((
        "PRIVMSG to a user",
        per_entry(&mut || {
            let mut logic = new();
            let mut feed = Feed { index: 0 };
            setup(logic.as_mut(), &mut feed, 2, None);
            let entries = (0..5_000)
                .map(|i| feed.line(1, &format!("PRIVMSG user2 :hello there, message {i}")))
                .collect();
            (logic, entries)
        }),
    ));

    results.push((
        "PRIVMSG to a 50-member channel (49 recipients)",
        per_entry(&mut || {
            let mut logic = new();
            let mut feed = Feed { index: 0 };
            setup(logic.as_mut(), &mut feed, 50, Some("#bench"));
            let entries = (0..5_000)
                .map(|i| feed.line(1 + i % 50, &format!("PRIVMSG #bench :hello channel {i}")))
                .collect();
            (logic, entries)
        }),
    ));

    results.push((
        "JOIN into a 1,000-member channel",
        per_entry(&mut || {
            let mut logic = new();
            let mut feed = Feed { index: 0 };
            setup(logic.as_mut(), &mut feed, 1_000, Some("#big"));
            // Register the joiners outside the timed part; time only their JOINs.
            for s in 1_001..=1_200 {
                for e in feed.register(s) {
                    logic.apply(&e);
                }
            }
            let entries = (1_001..=1_200).map(|s| feed.line(s, "JOIN #big")).collect();
            (logic, entries)
        }),
    ));

    // 10,000 users in 10,000 channels: user i creates #c<i> and joins the next two.
    let mut logic = new();
    let mut feed = Feed { index: 0 };
    let n = 10_000u64;
    for s in 1..=n {
        for e in feed.register(s) {
            logic.apply(&e);
        }
    }
    for s in 1..=n {
        let join = format!("JOIN #c{s},#c{},#c{}", (s % n) + 1, ((s + 1) % n) + 1);
        let e = feed.line(s, &join);
        logic.apply(&e);
    }
    let bytes = logic.snapshot();
    let snapshot = median(
        (0..ROUNDS)
            .map(|_| {
                let start = Instant::now();
                black_box(logic.snapshot());
                start.elapsed()
            })
            .collect(),
    );
    let restore = median(
        (0..ROUNDS)
            .map(|_| {
                let mut fresh = new();
                let start = Instant::now();
                fresh.restore(&bytes);
                start.elapsed()
            })
            .collect(),
    );
    println!("(10k/10k snapshot: {} bytes)", bytes.len());
    results.push(("snapshot, 10,000 users in 10,000 channels", snapshot));
    results.push(("restore, 10,000 users in 10,000 channels", restore));
    results
}

fn new_native() -> Box<dyn Logic> {
    Box::new(Native(Server::new()))
}

fn new_wasm() -> Box<dyn Logic> {
    use std::sync::{Arc, OnceLock};
    static MODULE: OnceLock<Arc<LogicModule>> = OnceLock::new();
    let module = MODULE.get_or_init(|| {
        let engine = runtime::engine().expect("engine");
        LogicModule::new(&engine, unsplit_irc_component::IRC_COMPONENT).expect("compile component")
    });
    Box::new(Wasm(
        LogicInstance::new(module.clone(), Limits::default()).expect("instantiate"),
    ))
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.2} µs")
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without
    // it, and then a quick smoke run keeps the bench compiled and working.
    let quick = !std::env::args().any(|a| a == "--bench");
    if quick {
        let mut logic = new_wasm();
        let mut feed = Feed { index: 0 };
        setup(logic.as_mut(), &mut feed, 3, Some("#smoke"));
        println!("bench smoke run ok (use `cargo bench` for numbers)");
        return;
    }
    println!(
        "component: {} bytes",
        unsplit_irc_component::IRC_COMPONENT.len()
    );
    let native = workloads(new_native);
    let wasm = workloads(new_wasm);
    println!();
    println!("| workload | native | wasm | wasm / native |");
    println!("|---|---|---|---|");
    for ((name, n), (_, w)) in native.iter().zip(&wasm) {
        println!(
            "| {name} | {} | {} | {:.2}× |",
            fmt(*n),
            fmt(*w),
            w.as_secs_f64() / n.as_secs_f64()
        );
    }
}
