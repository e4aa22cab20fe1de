//! Runs every golden transcript in `plugins/transcripts/` against the native IRC logic
//! with the real services plugins (NickServ, ChanServ), through the same pipeline a node
//! runs (`pipeline::run`).
//!
//! The services start with `Start::SetServices` before the first entry (its output is
//! not checked). Every entry then goes through the pipeline; the password hashes it asks
//! for are computed right away, like the leader's host does in the background, and each
//! answer runs as the next entry (same time), its output part of the same step. Entries
//! are numbered by the runner, hash answers included, so indexes keep increasing.
//!
//! `UNSPLIT_BLESS=1 cargo test -p unsplit-statemachine --test services_golden` rewrites
//! the expected output from the actual output (review the diff!).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use unsplit_chanserv::ChanServ;
use unsplit_nickserv::NickServ;
use unsplit_services::{Context, Event, Hashed, Plugin};
use unsplit_statemachine::pipeline::{self, Done, NativeServices, Start};
use unsplit_statemachine::transcript::{self, START_MS, Transcript};
use unsplit_statemachine::{Entry, Server, ServiceEvent};

/// Hash jobs one run may hand out: more than any transcript asks for at once.
const HASH_ROOM: usize = 64;

fn transcripts() -> Vec<(PathBuf, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/transcripts");
    transcript::read_dir(&dir).expect("read plugins/transcripts")
}

type HashKey = (String, Vec<u8>, Option<String>);

/// The host's argon2id hash, memoised: each costs tens of milliseconds and the snapshot
/// test asks for the same ones many times.
fn hash(password: &str, salt: &[u8], algorithm: Option<&str>) -> Result<Hashed, String> {
    static MEMO: OnceLock<Mutex<BTreeMap<HashKey, Result<Hashed, String>>>> = OnceLock::new();
    let key = (
        password.to_owned(),
        salt.to_vec(),
        algorithm.map(str::to_owned),
    );
    let memo = MEMO.get_or_init(Mutex::default);
    if let Some(known) = memo.lock().unwrap().get(&key) {
        return known.clone();
    }
    let result = unsplit_services::hasher::hash_password(password, salt, algorithm)
        .map_err(|e| e.to_string());
    memo.lock().unwrap().insert(key, result.clone());
    result
}

fn plugins() -> Vec<Box<dyn Plugin>> {
    vec![Box::new(NickServ::default()), Box::new(ChanServ::default())]
}

/// The logic and the plugins of one network, and the next entry index.
struct Network {
    core: Server,
    services: NativeServices,
    next_index: u64,
}

impl Network {
    /// A fresh network whose services just started.
    fn new() -> Network {
        let mut services = NativeServices::default();
        for plugin in plugins() {
            services.add(plugin);
        }
        let mut net = Network {
            core: Server::new(),
            services,
            next_index: 1,
        };
        let ctx = net.context(START_MS);
        let infos = net.services.infos();
        net.run(Start::SetServices(ctx, infos));
        net
    }

    fn context(&mut self, time_ms: u64) -> Context {
        let ctx = Context {
            index: self.next_index,
            time_ms,
        };
        self.next_index += 1;
        ctx
    }

    /// One run of the pipeline; the logic's invariants hold after it.
    fn run(&mut self, start: Start) -> Done {
        let what = format!("{start:?}");
        let done = pipeline::run(&mut self.core, &mut self.services, start, HASH_ROOM)
            .unwrap_or_else(|e| match e {});
        if let Err(problem) = self.core.check_invariants() {
            panic!("after {what}: {problem}");
        }
        assert!(
            done.failures.is_empty(),
            "after {what}: {:?}",
            done.failures
        );
        assert_eq!(done.dropped_events, 0, "after {what}");
        done
    }

    /// An entry, renumbered; then the answer to each hash it asked for, each the next
    /// entry. Every start run, with what it did.
    fn entry(&mut self, entry: &Entry) -> Vec<(Start, Done)> {
        let mut entry = entry.clone();
        entry.index = self.context(entry.time_ms).index;
        let start = Start::Entry(entry.clone());
        let done = self.run(start.clone());
        let jobs = done.hash_jobs.clone();
        let mut runs = vec![(start, done)];
        for job in jobs {
            let result = hash(&job.password, &job.salt, job.algorithm.as_deref());
            let ctx = self.context(entry.time_ms);
            let start = Start::Event(
                ctx,
                ServiceEvent {
                    service: job.service,
                    event: Event::PasswordHashed { id: job.id, result },
                },
            );
            let done = self.run(start.clone());
            assert!(
                done.hash_jobs.is_empty(),
                "a hash answer asked for another hash"
            );
            runs.push((start, done));
        }
        runs
    }

    /// The logic's snapshot and each plugin's, by name.
    fn snapshot(&self) -> (Vec<u8>, BTreeMap<String, Vec<u8>>) {
        let plugins = self
            .services
            .plugins
            .iter()
            .map(|(name, p)| (name.clone(), p.snapshot()))
            .collect();
        (self.core.snapshot(), plugins)
    }

    /// A network continuing from a snapshot.
    fn restore(core: &[u8], plugins: &BTreeMap<String, Vec<u8>>, next_index: u64) -> Network {
        let mut services = NativeServices::default();
        for mut plugin in self::plugins() {
            let name = plugin.info().name;
            plugin.restore(&plugins[&name]).unwrap();
            services.add(plugin);
        }
        Network {
            core: Server::restore(core).unwrap(),
            services,
            next_index,
        }
    }
}

#[test]
fn services_golden_transcripts() {
    let bless = std::env::var_os("UNSPLIT_BLESS").is_some();
    let mut failures = Vec::new();
    let all = transcripts();
    let count = all.len();
    for (path, text) in all {
        let t = Transcript::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut net = Network::new();
        let run = t.run_with(|e| {
            net.entry(e)
                .into_iter()
                .map(|(_, done)| done.outcome)
                .collect()
        });
        if bless {
            std::fs::write(&path, t.bless(&run)).expect("write blessed transcript");
        } else if let Err(report) = t.check(&run) {
            failures.push(format!("== {}\n{report}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} transcript(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        count >= 29,
        "expected at least 29 transcripts, found {count}"
    );
}

/// Snapshot → restore of the logic and every plugin, before any start of every
/// transcript (between an entry and its hash answers too), continues identically.
#[test]
fn snapshot_restore_at_every_point_continues_identically() {
    for (path, text) in transcripts() {
        let t = Transcript::parse(&text).unwrap();
        let mut reference = Network::new();
        let runs: Vec<(Start, Done)> = t
            .entries()
            .iter()
            .flat_map(|e| reference.entry(e))
            .collect();
        let mut prefix = Network::new();
        for cut in 0..=runs.len() {
            let (core, plugins) = prefix.snapshot();
            let mut restored = Network::restore(&core, &plugins, prefix.next_index);
            assert_eq!(
                restored.snapshot(),
                (core, plugins),
                "{}: the snapshot of a restored network differs",
                path.display()
            );
            for (i, (start, done)) in runs.iter().enumerate().skip(cut) {
                assert_eq!(
                    &restored.run(start.clone()),
                    done,
                    "{}: start {} after restoring at {cut} differs",
                    path.display(),
                    i + 1
                );
            }
            if let Some((start, _)) = runs.get(cut) {
                prefix.run(start.clone());
            }
        }
    }
}
