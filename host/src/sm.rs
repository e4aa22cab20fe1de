//! The raft state machine: applies committed entries through the IRC logic component and
//! its services plugins, and keeps the host's replicated state (sessions and their
//! secrets, the configuration, the output window, pending password hashes).
//!
//! Data flow for one entry: decode → host checks (session exists, ClientMessageId dedup)
//! → `Logic::run` (the logic and the plugins, in wasm) → number the output lines, append
//! them to the output window → drop closed sessions → wake the streams of the
//! recipients. Host state changes only after the logic accepted the entry, so a rejected
//! (trapping) entry changes nothing.

// openraft's StorageError (224 bytes) is imposed by its traits; boxing it here would only
// move the conversion around.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use unsplit_bridge::protocol::MESSAGE_ID_OFFSET;

use unsplit_services::{Context, Event, Hashed};
use unsplit_statemachine::pipeline::{Done, HashJob, Start};
use unsplit_statemachine::{self as irc, ServiceEvent};

use crate::logic::{Logic, LogicError, LogicState, PluginTrap, Ran};
use crate::modules::{ModuleCache, ModuleKind, ModuleRecord, Modules};
use crate::netconfig::NetConfig;
use crate::output::{Batch, OutLine, OutputWindow};
use crate::raft::{
    LogId, Op, Request, Response, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use crate::runtime::{Compiled, LogicModule, TrapKind};
use crate::snapshot::SnapshotStore;
use crate::throttle::Throttle;

/// Password hashes pending at most (the leader computes them one after another); a
/// plugin asking for more is answered "busy" at once.
pub const MAX_PENDING_HASHES: usize = 64;
/// A pending hash nobody answered for this long (entry time) is forgotten.
pub const PENDING_HASH_TTL_MS: u64 = 5 * 60 * 1000;

/// A password hash a plugin asked for, until the leader commits the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingHash {
    pub service: String,
    pub id: u64,
    /// Never written to a snapshot: a node that restores one has the request without
    /// the password, and answers it (as leader) with "please try again".
    #[serde(skip)]
    pub password: String,
    pub salt: Vec<u8>,
    pub algorithm: Option<String>,
    /// When it was asked for (entry time).
    pub time_ms: u64,
}

/// Extra output retention beyond SessionExpiration (RobustIRC keeps 10 s more).
const RETENTION_SLACK_MS: u64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The secret the client presents in `X-Session-Auth`.
    pub auth: String,
    pub remote_addr: String,
    pub created_ms: u64,
    /// The ClientMessageId of the last line applied (one-deep dedup, as RobustIRC).
    pub last_client_message_id: u64,
    /// When the leader may propose the session's next line (`PostMessageCooloff`).
    pub throttle: Throttle,
}

/// The host's replicated state. Identical on every node after the same entries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Replicated {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    pub sessions: BTreeMap<u64, SessionInfo>,
    /// Sessions per client address (`MaxSessionsPerAddress`), kept with `sessions` so a
    /// reconnect storm does not count all sessions for every create.
    pub sessions_per_address: BTreeMap<String, u32>,
    pub config_toml: String,
    pub config_revision: u64,
    /// `config_toml` as the host reads it (parsed once per config change).
    pub net: NetConfig,
    pub now_ms: u64,
    pub output: OutputWindow,
    /// Entries rejected because the logic trapped on them.
    pub rejected: u64,
    /// The newest of them, for operators (and the canary).
    pub rejected_log: VecDeque<RejectedEntry>,
    /// Traps of services plugins survived (the entries went on).
    pub plugin_failures: u64,
    /// Uploaded modules (logic and plugins) and the activation history.
    pub modules: Modules,
    /// Password hashes plugins asked for, oldest first; the leader answers them.
    pub hash_jobs: VecDeque<PendingHash>,
}

impl Replicated {
    pub fn config(&self) -> &NetConfig {
        &self.net
    }

    pub fn applied_index(&self) -> u64 {
        self.last_applied.map(|l| l.index).unwrap_or(0)
    }
}

/// What a snapshot carries: the host's state, and the logic's and the plugins' (their
/// checkpoints and the calls since, see `logic`).
#[derive(Serialize, Deserialize)]
pub struct SnapshotData {
    pub replicated: Replicated,
    pub logic: LogicState,
    /// The module whose `snapshot()` wrote the logic's checkpoint.
    pub module_hash: String,
}

impl SnapshotData {
    pub fn decode(bytes: &[u8]) -> Result<SnapshotData, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

/// Wake-ups for GetMessages streams: one `Notify` per session with an open stream.
#[derive(Debug, Default)]
pub struct Wakeups {
    sessions: Mutex<HashMap<u64, Arc<Notify>>>,
}

impl Wakeups {
    /// The notifier of a session (created on first use).
    pub fn subscribe(&self, session: u64) -> Arc<Notify> {
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(session).or_default().clone()
    }

    fn wake(&self, session: u64) {
        let map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get(&session) {
            // notify_one stores a permit when nobody waits, so no wake-up is lost.
            n.notify_one();
        }
    }

    fn forget(&self, session: u64) {
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.remove(&session) {
            n.notify_one();
        }
    }

    fn wake_all(&self) {
        let map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        for n in map.values() {
            n.notify_one();
        }
    }
}

/// Counters for /metrics.
#[derive(Debug, Default)]
pub struct Counters {
    pub applied_entries: AtomicU64,
    pub output_lines: AtomicU64,
    pub rejected_entries: AtomicU64,
    pub apply_nanos: AtomicU64,
    pub fuel_used: AtomicU64,
    /// Entries that went through the logic (the denominator of fuel per entry).
    pub logic_calls: AtomicU64,
    /// Apply latency histogram: counts per bucket of [`APPLY_BUCKETS_US`] (+Inf last).
    pub apply_buckets: [AtomicU64; APPLY_BUCKETS_US.len() + 1],
    /// Rejections by trap kind: panic, out of fuel, out of memory.
    pub rejected_by_kind: [AtomicU64; 3],
    /// Module switches, and how long the last one stalled the apply loop.
    pub swaps: AtomicU64,
    pub last_swap_micros: AtomicU64,
    /// Traps of services plugins (the entries went on).
    pub plugin_traps: AtomicU64,
    /// Password hashes computed by this node (as leader), and the time they took.
    pub hashes: AtomicU64,
    pub hash_nanos: AtomicU64,
}

/// Upper bounds (µs) of the apply latency histogram buckets.
pub const APPLY_BUCKETS_US: [u64; 8] = [10, 25, 50, 100, 250, 1_000, 10_000, 100_000];

impl Counters {
    fn count_rejection(&self, kind: TrapKind) {
        self.rejected_entries.fetch_add(1, Ordering::Relaxed);
        let i = match kind {
            TrapKind::Panic => 0,
            TrapKind::OutOfFuel => 1,
            TrapKind::OutOfMemory => 2,
        };
        self.rejected_by_kind[i].fetch_add(1, Ordering::Relaxed);
    }

    fn observe_apply(&self, elapsed: std::time::Duration, fuel: u64) {
        let micros = elapsed.as_micros() as u64;
        let bucket = APPLY_BUCKETS_US
            .iter()
            .position(|&b| micros <= b)
            .unwrap_or(APPLY_BUCKETS_US.len());
        self.apply_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.apply_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        self.fuel_used.fetch_add(fuel, Ordering::Relaxed);
        self.logic_calls.fetch_add(1, Ordering::Relaxed);
    }
}

/// State shared between the state machine (writer) and the API (readers).
#[derive(Debug, Default)]
pub struct Shared {
    pub state: RwLock<Replicated>,
    pub wakeups: Wakeups,
    pub counters: Counters,
    /// Bumped whenever the whole state is replaced (snapshot install): streams re-read.
    pub generation: AtomicU64,
    /// A shadow start/stop the state machine picks up before its next entry.
    pub shadow_command: Mutex<Option<ShadowCommand>>,
    /// Woken when a plugin asked for a password hash (the leader's hasher waits on it).
    pub hash_wakeup: Notify,
    shadow: Mutex<ShadowStatus>,
}

impl Shared {
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Replicated> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Replicated> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn shadow_status(&self) -> std::sync::MutexGuard<'_, ShadowStatus> {
        self.shadow.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct StateMachine {
    shared: Arc<Shared>,
    logic: Logic,
    /// The logic the binary was built with: runs until the first activation.
    builtin: Arc<LogicModule>,
    cache: Arc<ModuleCache>,
    shadow: Option<Shadow>,
    store: SnapshotStore,
    snapshot_counter: u64,
}

fn io_err(e: impl std::fmt::Display) -> StorageError {
    StorageError::from(StorageIOError::write_state_machine(&std::io::Error::other(
        e.to_string(),
    )))
}

impl StateMachine {
    /// Opens the state machine: from the last snapshot on disk if there is one. `builtin`
    /// runs until the network activates a module (it is in `cache` too).
    pub fn open(
        store: SnapshotStore,
        builtin: Arc<LogicModule>,
        cache: Arc<ModuleCache>,
    ) -> Result<(StateMachine, Arc<Shared>), StorageError> {
        cache.insert(Compiled::Logic(builtin.clone()));
        let shared = Arc::new(Shared::default());
        let logic = match store.load().map_err(io_err)? {
            Some((_meta, data)) => {
                let snap: SnapshotData = postcard::from_bytes(&data).map_err(io_err)?;
                let logic = logic_for(&snap, &builtin, &cache)?;
                *shared.write() = snap.replicated;
                logic
            }
            None => {
                let d = NetConfig::default();
                Logic::new(builtin.clone(), d.limits(), d.plugin_limits()).map_err(io_err)?
            }
        };
        let sm = StateMachine {
            shared: shared.clone(),
            logic,
            builtin,
            cache,
            shadow: None,
            store,
            snapshot_counter: 0,
        };
        Ok((sm, shared))
    }

    fn apply_request(&mut self, log_id: LogId, req: Request) -> Result<Response, StorageError> {
        let index = log_id.index;
        let now = {
            let mut st = self.shared.write();
            st.now_ms = st.now_ms.max(req.time_ms);
            st.now_ms
        };
        let (start, room) = {
            let st = self.shared.read();
            let start = match decide(&st, index, now, &req.op) {
                Decision::Run(start) => start,
                Decision::Done(response) => return Ok(response),
                Decision::Host => {
                    drop(st);
                    return self.apply_module_op(index, now, req.op);
                }
            };
            (start, hash_room(&st))
        };
        if let Op::Config { toml, .. } = &req.op
            && let Err(e) = self.logic.check_settings(toml).map_err(io_err)?
        {
            return Ok(Response::ConfigRefused(format!(
                "invalid network configuration: {e}"
            )));
        }
        let session = match &start {
            Start::Entry(e) => e.session,
            _ => 0,
        };
        let shadow_start = self.shadow.as_ref().map(|_| start.clone());
        let started = std::time::Instant::now();
        let result = self.logic.run(start, room);
        let counters = &self.shared.counters;
        counters.observe_apply(started.elapsed(), self.logic.last_fuel());
        if let (Some(shadow), Some(start)) = (&mut self.shadow, shadow_start)
            && let Err(e) = shadow.compare(start, room, &result, &self.shared)
        {
            // The shadow's own runtime failed: it stops, the network never notices.
            self.shared.shadow_status().error = Some(e.to_string());
            self.shadow = None;
        }
        let ran = match result {
            Ok(ran) => ran,
            Err(LogicError::Rejected { kind, message }) => {
                let mut st = self.shared.write();
                let reason = format!("{kind:?}: {message}");
                let module = st
                    .modules
                    .active()
                    .map(|a| a.hash.clone())
                    .unwrap_or_else(|| "builtin".into());
                let rejected =
                    RejectedEntry::new(index, now, session, kind, &reason, &req.op, module, None);
                record_rejection(&mut st, rejected);
                st.rejected += 1;
                absorb_rejected(&mut st, now, &req.op);
                counters.count_rejection(kind);
                if session != 0 && st.sessions.contains_key(&session) {
                    let server = st.config().server_name.clone();
                    let text = format!(
                        ":{server} NOTICE * :Your last line was rejected: it made the IRC logic fail ({reason}). Nothing changed."
                    );
                    st.output.push(Batch {
                        id: MESSAGE_ID_OFFSET + index,
                        time_ms: now,
                        lines: vec![OutLine {
                            reply: 1,
                            text,
                            recipients: vec![session],
                        }],
                    });
                    drop(st);
                    self.shared.wakeups.wake(session);
                }
                return Ok(Response::Rejected(reason));
            }
            Err(e) => return Err(io_err(e)),
        };
        // Limits change only with the configuration.
        let is_config = matches!(req.op, Op::Config { .. });
        let mut st = self.shared.write();
        self.note_plugin_traps(&mut st, index, now, &req.op, &ran.plugin_traps);
        let response = absorb(&mut st, index, now, req.op, &ran.done);
        let limits = is_config.then(|| (st.config().limits(), st.config().plugin_limits()));
        drop(st);
        if !ran.done.hash_jobs.is_empty() {
            self.shared.hash_wakeup.notify_one();
        }
        if let Some((limits, plugin_limits)) = limits
            && (limits, plugin_limits) != (self.logic.limits(), self.logic.plugin_limits())
        {
            self.logic
                .set_limits(limits, plugin_limits, index)
                .map_err(io_err)?;
            if let Some(shadow) = &mut self.shadow
                && let Err(e) = shadow.logic.set_limits(limits, plugin_limits, index)
            {
                self.shared.shadow_status().error = Some(e.to_string());
                self.shadow = None;
            }
        }
        self.deliver(index, now, ran.done.outcome);
        Ok(response)
    }

    /// Records plugin traps (every node survives the same ones).
    fn note_plugin_traps(
        &self,
        st: &mut Replicated,
        index: u64,
        now: u64,
        op: &Op,
        traps: &[PluginTrap],
    ) {
        for t in traps {
            let module = st
                .modules
                .active_of(&ModuleKind::Plugin(t.plugin.clone()))
                .map(|a| a.hash.clone())
                .unwrap_or_default();
            let reason = format!("{:?}: {}", t.kind, t.message);
            let session = match op {
                Op::Line { session, .. } => *session,
                _ => 0,
            };
            let entry = RejectedEntry::new(
                index,
                now,
                session,
                t.kind,
                &reason,
                op,
                module,
                Some(t.plugin.clone()),
            );
            record_rejection(st, entry);
            st.plugin_failures += 1;
            self.shared
                .counters
                .plugin_traps
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "plugin {} trapped at index {index} and was reset: {reason}",
                t.plugin
            );
        }
    }

    /// Numbers the lines, appends them to the output window, prunes it, wakes the
    /// recipients' streams and forgets closed sessions.
    fn deliver(&self, index: u64, now: u64, outcome: irc::Outcome) {
        let mut woken: Vec<u64> = Vec::new();
        let lines: Vec<OutLine> = outcome
            .lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                woken.extend_from_slice(&l.recipients);
                OutLine {
                    reply: i as u64 + 1,
                    text: l.line,
                    recipients: l.recipients,
                }
            })
            .collect();
        self.shared
            .counters
            .output_lines
            .fetch_add(lines.len() as u64, Ordering::Relaxed);
        {
            let mut st = self.shared.write();
            st.output.push(Batch {
                id: MESSAGE_ID_OFFSET + index,
                time_ms: now,
                lines,
            });
            let retention = st.config().session_expiration_ms + RETENTION_SLACK_MS;
            st.output.prune(now.saturating_sub(retention));
        }
        woken.sort_unstable();
        woken.dedup();
        for s in woken {
            self.shared.wakeups.wake(s);
        }
        for s in outcome.closed {
            self.shared.wakeups.forget(s);
        }
    }

    /// Module uploads and activations: host state, plus the switch of the logic or of a
    /// plugin.
    fn apply_module_op(&mut self, index: u64, now: u64, op: Op) -> Result<Response, StorageError> {
        match op {
            Op::ModuleChunk { .. } | Op::ModuleUpload { .. } => {
                let mut st = self.shared.write();
                let response = record_upload(&mut st.modules, index, now, op);
                drop(st);
                if let Response::ModuleUploaded(hash) = &response
                    && let Some(r) = self.shared.read().modules.known.get(hash)
                {
                    // Compile in the background now, so an activation does not wait.
                    self.cache.prepare(r.bytes.clone());
                    tracing::info!("module {hash} uploaded at index {index}");
                }
                Ok(response)
            }
            Op::ModuleActivate { hash } => {
                let Some(record) = self.shared.read().modules.known.get(&hash).cloned() else {
                    return Ok(Response::ModuleRefused(format!(
                        "no module {hash} has been uploaded"
                    )));
                };
                // What runs now: for the logic, the module itself (the built-in one has no
                // activation); for a plugin, its last activation.
                let running = match &record.kind {
                    ModuleKind::Logic => Some(self.logic.module().hash.clone()),
                    kind => self
                        .shared
                        .read()
                        .modules
                        .active_of(kind)
                        .map(|a| a.hash.clone()),
                };
                if running.as_deref() != Some(hash.as_str()) {
                    let started = std::time::Instant::now();
                    if let Err(why) = self.switch(&record, index, now)? {
                        tracing::warn!("activating module {hash} at {index} refused: {why}");
                        return Ok(Response::ModuleRefused(why));
                    }
                    let stall = started.elapsed();
                    let c = &self.shared.counters;
                    c.swaps.fetch_add(1, Ordering::Relaxed);
                    c.last_swap_micros
                        .store(stall.as_micros() as u64, Ordering::Relaxed);
                    tracing::info!(
                        "module {hash} ({} {}) active from index {index}; the switch took {stall:?}",
                        record.kind,
                        record.version
                    );
                    if let Some(shadow) = &mut self.shadow {
                        shadow.reseed(&self.logic, &self.shared);
                    }
                }
                self.shared.write().modules.activate(&hash, index, now);
                Ok(Response::ModuleActivated(hash))
            }
            other => Err(io_err(format!("not a module operation: {other:?}"))),
        }
    }

    /// Runs `record` from this index on: the logic, or the plugin of its name (then the
    /// logic is told the new list of services). `Ok(Err(why))`: refused, nothing
    /// changed (deterministic: every node refuses alike).
    fn switch(
        &mut self,
        record: &ModuleRecord,
        index: u64,
        now: u64,
    ) -> Result<Result<(), String>, StorageError> {
        let hash = &record.hash;
        let refused = |e: String| {
            Ok(Err(format!(
                "module {hash} ({}) refused the current state: {e}; the active module stays",
                record.version
            )))
        };
        match &record.kind {
            ModuleKind::Logic => {
                let module = match self.cache.get(&record.bytes) {
                    Ok(m) => m,
                    // Deterministic: the same bytes fail to compile on every node.
                    Err(e) => return Ok(Err(format!("module {hash} does not compile: {e}"))),
                };
                match self.logic.switch_to(module) {
                    Ok(()) => Ok(Ok(())),
                    Err(LogicError::Refused(e)) => refused(e),
                    Err(e) => Err(io_err(e)),
                }
            }
            ModuleKind::Plugin(name) => {
                let module = match self.cache.get_plugin(&record.bytes) {
                    Ok(m) => m,
                    Err(e) => return Ok(Err(format!("module {hash} does not compile: {e}"))),
                };
                let ctx = Context {
                    index,
                    time_ms: now,
                };
                let room = hash_room(&self.shared.read());
                match self.logic.activate_plugin(module, Some(name), ctx, room) {
                    Ok(ran) => {
                        let mut st = self.shared.write();
                        let op = Op::ModuleActivate { hash: hash.clone() };
                        self.note_plugin_traps(&mut st, index, now, &op, &ran.plugin_traps);
                        absorb(&mut st, index, now, op, &ran.done);
                        drop(st);
                        self.deliver(index, now, ran.done.outcome);
                        Ok(Ok(()))
                    }
                    Err(LogicError::Refused(e)) => refused(e),
                    Err(e) => Err(io_err(e)),
                }
            }
        }
    }

    /// Starts or stops the shadow module when the API asked for it.
    fn steer_shadow(&mut self) {
        let command = self
            .shared
            .shadow_command
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match command {
            None => {}
            Some(ShadowCommand::Stop) => {
                self.shadow = None;
                *self.shared.shadow_status() = ShadowStatus::default();
            }
            Some(ShadowCommand::Start(hash)) => {
                let record = self.shared.read().modules.known.get(&hash).cloned();
                let started = record
                    .ok_or_else(|| format!("no module {hash} has been uploaded"))
                    .and_then(|r| {
                        let module = self.cache.compiled(&r.bytes)?;
                        let logic = fork_with(&self.logic, &module, here(&self.shared))?;
                        Ok((r, module, logic))
                    });
                let since = self.shared.read().applied_index();
                match started {
                    Ok((r, module, logic)) => {
                        *self.shared.shadow_status() = ShadowStatus {
                            hash: Some(r.hash.clone()),
                            version: r.version.clone(),
                            since_index: since,
                            ..ShadowStatus::default()
                        };
                        self.shadow = Some(Shadow { logic, module });
                    }
                    Err(e) => {
                        self.shadow = None;
                        *self.shared.shadow_status() = ShadowStatus {
                            error: Some(e),
                            ..ShadowStatus::default()
                        };
                    }
                }
            }
        }
    }
}

/// Module chunks and finished uploads in the replicated module state. Pure: the canary
/// replays uploads through it too.
pub fn record_upload(modules: &mut Modules, index: u64, now: u64, op: Op) -> Response {
    match op {
        Op::ModuleChunk { hash, offset, data } => {
            match modules.add_chunk(&hash, offset, &data.0, now) {
                Ok(()) => Response::Applied,
                Err(e) => Response::ModuleRefused(e),
            }
        }
        Op::ModuleUpload {
            hash,
            kind,
            name,
            version,
            snapshot_format,
        } => match modules.finish_upload(&hash) {
            Ok(bytes) => {
                modules.add(ModuleRecord {
                    hash: hash.clone(),
                    kind,
                    name,
                    version,
                    snapshot_format,
                    size: bytes.0.len(),
                    uploaded_index: index,
                    uploaded_ms: now,
                    bytes,
                });
                Response::ModuleUploaded(hash)
            }
            Err(e) => Response::ModuleRefused(e),
        },
        _ => Response::Applied,
    }
}

/// An upload that did not finish within this long (entry time) is forgotten.
pub const UPLOAD_TTL_MS: u64 = 10 * 60 * 1000;

/// Room for new password hash jobs.
pub fn hash_room(st: &Replicated) -> usize {
    MAX_PENDING_HASHES.saturating_sub(st.hash_jobs.len())
}

/// A copy of `logic` running `module` (the logic or a plugin) instead of the active one;
/// `ctx` is where it starts.
pub fn fork_with(logic: &Logic, module: &Compiled, ctx: Context) -> Result<Logic, String> {
    let forked = match module {
        Compiled::Logic(m) => logic.fork(Some(m.clone()), None, ctx),
        Compiled::Plugin(p) => logic.fork(None, Some(p.clone()), ctx),
    };
    forked.map_err(|e| e.to_string())
}

/// Where the state is now (the entry last applied), for a fork.
fn here(shared: &Shared) -> Context {
    let st = shared.read();
    Context {
        index: st.applied_index(),
        time_ms: st.now_ms,
    }
}

/// What the host does with a request before (or instead of) the logic.
pub enum Decision {
    /// The logic and its plugins run this.
    Run(Start),
    /// Answered by the host alone (no such session, duplicate, invalid config).
    Done(Response),
    /// A module operation (upload, activation).
    Host,
}

/// The host's checks before the logic: the session must exist, a repeated
/// ClientMessageId is dropped, the host's configuration keys must be valid, a password
/// hash must answer a pending request. Pure: the canary replays recorded entries
/// through it exactly as the node applied them.
pub fn decide(st: &Replicated, index: u64, now: u64, op: &Op) -> Decision {
    let (session, kind) = match op {
        Op::CreateSession { remote_addr, .. } => {
            if let Some(why) = session_limit(st, remote_addr) {
                return Decision::Done(Response::SessionLimit(why));
            }
            (
                MESSAGE_ID_OFFSET + index,
                irc::EntryKind::CreateSession {
                    remote_addr: remote_addr.clone(),
                },
            )
        }
        Op::Line {
            session,
            client_message_id,
            data,
        } => match st.sessions.get(session) {
            None => return Decision::Done(Response::NoSuchSession),
            Some(s)
                if *client_message_id != 0 && s.last_client_message_id == *client_message_id =>
            {
                return Decision::Done(Response::Duplicate);
            }
            Some(_) => (*session, irc::EntryKind::IrcLine(data.as_bytes().to_vec())),
        },
        Op::DeleteSession {
            session,
            quit_message,
        } => {
            if !st.sessions.contains_key(session) {
                return Decision::Done(Response::NoSuchSession);
            }
            (
                *session,
                irc::EntryKind::DeleteSession {
                    quit_message: quit_message.clone(),
                },
            )
        }
        Op::Tick => (0, irc::EntryKind::Tick),
        Op::Config { toml, revision } => {
            // Optimistic concurrency, as RobustIRC: an edit of revision N commits as N+1
            // only if nobody committed N+1 first.
            if *revision != st.config_revision + 1 {
                return Decision::Done(Response::ConfigRefused(format!(
                    "Revision mismatch: the configuration is at revision {}; fetch it again and redo the edit",
                    st.config_revision
                )));
            }
            if let Err(e) = NetConfig::check(toml) {
                return Decision::Done(Response::ConfigRefused(format!(
                    "invalid network configuration: {e}"
                )));
            }
            (0, irc::EntryKind::Config(toml.clone()))
        }
        Op::PasswordHashed {
            service,
            id,
            result,
        } => {
            // Only an answer to a pending request counts (a new leader may compute one
            // the old leader already committed).
            if !st
                .hash_jobs
                .iter()
                .any(|j| j.service == *service && j.id == *id)
            {
                return Decision::Done(Response::Applied);
            }
            let event = Event::PasswordHashed {
                id: *id,
                result: result.clone().map(|h| Hashed {
                    algorithm: h.algorithm,
                    hash: h.hash,
                }),
            };
            let ctx = Context {
                index,
                time_ms: now,
            };
            return Decision::Run(Start::Event(
                ctx,
                ServiceEvent {
                    service: service.clone(),
                    event,
                },
            ));
        }
        Op::ModuleChunk { .. } | Op::ModuleUpload { .. } | Op::ModuleActivate { .. } => {
            return Decision::Host;
        }
    };
    Decision::Run(Start::Entry(irc::Entry {
        index,
        time_ms: now,
        session,
        kind,
    }))
}

/// Why a session from `addr` may not be created now (`MaxSessions`,
/// `MaxSessionsPerAddress`), if it may not.
fn session_limit(st: &Replicated, addr: &str) -> Option<String> {
    let net = st.config();
    if net.max_sessions > 0 && st.sessions.len() as u64 >= net.max_sessions {
        return Some(format!(
            "Too many sessions: the network holds at most {} (MaxSessions). Try again later.",
            net.max_sessions
        ));
    }
    let from_addr = st.sessions_per_address.get(addr).copied().unwrap_or(0);
    if net.max_sessions_per_address > 0 && u64::from(from_addr) >= net.max_sessions_per_address {
        return Some(format!(
            "Too many sessions from {addr}: at most {} per address (MaxSessionsPerAddress).",
            net.max_sessions_per_address
        ));
    }
    None
}

/// The host's state after the logic rejected an entry (it trapped): a line still
/// counts for the session's throttle, so a flood of messages of death is slowed like any
/// other; a hash answer that made the logic fail is not asked for again (the plugin's
/// request times out instead of the leader retrying a message of death forever).
/// Nothing else changes. Pure, like [`absorb`].
pub fn absorb_rejected(st: &mut Replicated, now: u64, op: &Op) {
    let cooloff = st.config().post_message_cooloff_ms;
    match op {
        Op::Line { session, .. } => {
            if let Some(s) = st.sessions.get_mut(session) {
                s.throttle = s.throttle.after_line(now, cooloff);
            }
        }
        Op::PasswordHashed { service, id, .. } => {
            st.hash_jobs
                .retain(|j| !(j.service == *service && j.id == *id));
        }
        _ => {}
    }
}

/// The host's state after the logic accepted an entry: sessions created and closed, the
/// ClientMessageId, the throttle, the configuration, password hash requests. Pure, like
/// [`decide`].
pub fn absorb(st: &mut Replicated, index: u64, now: u64, op: Op, done: &Done) -> Response {
    let outcome = &done.outcome;
    let mut response = Response::Applied;
    match op {
        Op::CreateSession { auth, remote_addr } => {
            let id = MESSAGE_ID_OFFSET + index;
            *st.sessions_per_address
                .entry(remote_addr.clone())
                .or_default() += 1;
            st.sessions.insert(
                id,
                SessionInfo {
                    auth,
                    remote_addr,
                    created_ms: now,
                    last_client_message_id: 0,
                    throttle: Throttle::new(now),
                },
            );
            response = Response::SessionCreated(id);
        }
        Op::Line {
            session,
            client_message_id,
            ..
        } => {
            let cooloff = st.config().post_message_cooloff_ms;
            if let Some(s) = st.sessions.get_mut(&session) {
                s.last_client_message_id = client_message_id;
                s.throttle = s.throttle.after_line(now, cooloff);
            }
        }
        Op::Config { toml, revision } => match &outcome.error {
            Some(e) => response = Response::ConfigRefused(e.clone()),
            None => {
                st.net = NetConfig::from_toml(&toml);
                st.config_toml = toml;
                st.config_revision = revision;
            }
        },
        Op::PasswordHashed { service, id, .. } => {
            st.hash_jobs
                .retain(|j| !(j.service == service && j.id == id));
        }
        Op::Tick => {
            st.hash_jobs
                .retain(|j| j.time_ms.saturating_add(PENDING_HASH_TTL_MS) > now);
            st.modules.expire_uploads(now, UPLOAD_TTL_MS);
        }
        Op::DeleteSession { .. }
        | Op::ModuleChunk { .. }
        | Op::ModuleUpload { .. }
        | Op::ModuleActivate { .. } => {}
    }
    for HashJob {
        service,
        id,
        password,
        salt,
        algorithm,
    } in done.hash_jobs.iter().cloned()
    {
        st.hash_jobs.push_back(PendingHash {
            service,
            id,
            password,
            salt,
            algorithm,
            time_ms: now,
        });
    }
    for closed in &outcome.closed {
        if let Some(gone) = st.sessions.remove(closed)
            && let Some(n) = st.sessions_per_address.get_mut(&gone.remote_addr)
        {
            *n -= 1;
            if *n == 0 {
                st.sessions_per_address.remove(&gone.remote_addr);
            }
        }
    }
    response
}

/// Rejected entries kept for operators (the newest).
pub const REJECTED_KEPT: usize = 100;

/// An entry the logic trapped on (rejected), or a plugin trapped on (the entry went on),
/// as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedEntry {
    pub index: u64,
    pub time_ms: u64,
    pub session: u64,
    /// `Panic`, `OutOfFuel` or `OutOfMemory`.
    pub kind: String,
    pub reason: String,
    /// The input, as text (at most 1 KiB).
    pub input: String,
    /// The hash of the module that trapped.
    pub module: String,
    /// The plugin that trapped (`None`: the IRC logic, and the entry was rejected).
    pub plugin: Option<String>,
}

impl RejectedEntry {
    #[allow(clippy::too_many_arguments)]
    fn new(
        index: u64,
        time_ms: u64,
        session: u64,
        kind: TrapKind,
        reason: &str,
        op: &Op,
        module: String,
        plugin: Option<String>,
    ) -> RejectedEntry {
        RejectedEntry {
            index,
            time_ms,
            session,
            kind: format!("{kind:?}"),
            reason: reason.to_owned(),
            input: describe_input(op),
            module,
            plugin,
        }
    }
}

fn describe_input(op: &Op) -> String {
    let mut text = match op {
        Op::CreateSession { remote_addr, .. } => format!("create session from {remote_addr}"),
        Op::Line { data, .. } => crate::canary::redact(data),
        Op::DeleteSession { quit_message, .. } => format!("delete session: {quit_message}"),
        Op::Tick => "tick".into(),
        Op::Config { revision, .. } => format!("configuration revision {revision}"),
        Op::ModuleChunk { hash, offset, .. } => format!("chunk of module {hash} at {offset}"),
        Op::ModuleUpload { version, .. } => format!("upload of module {version}"),
        Op::ModuleActivate { hash } => format!("activation of module {hash}"),
        Op::PasswordHashed { service, id, .. } => format!("password hash {id} for {service}"),
    };
    if text.len() > 1024 {
        let mut cut = 1024;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn record_rejection(st: &mut Replicated, entry: RejectedEntry) {
    st.rejected_log.push_back(entry);
    while st.rejected_log.len() > REJECTED_KEPT {
        st.rejected_log.pop_front();
    }
}

/// A candidate module (the logic or a plugin) running beside the active ones on every
/// committed entry; its outcomes are compared, never used (node-local, not replicated).
struct Shadow {
    logic: Logic,
    module: Compiled,
}

impl Shadow {
    fn compare(
        &mut self,
        start: Start,
        room: usize,
        active: &Result<Ran, LogicError>,
        shared: &Shared,
    ) -> Result<(), LogicError> {
        let (index, input) = crate::canary::describe_start(&start);
        let shadow = self.logic.run(start, room);
        if let Err(e @ LogicError::Fatal(_)) = shadow {
            return Err(e);
        }
        let a = crate::canary::Applied::from_result(active);
        let b = crate::canary::Applied::from_result(&shadow);
        let mut status = shared.shadow_status();
        status.compared += 1;
        if matches!(shadow, Err(LogicError::Rejected { .. }))
            || shadow.as_ref().is_ok_and(|r| !r.plugin_traps.is_empty())
        {
            status.traps += 1;
        }
        if a != b {
            status.divergences += 1;
            status.recent.push_back(ShadowDivergence {
                index,
                input,
                active: a.render(),
                shadow: b.render(),
            });
            while status.recent.len() > 20 {
                status.recent.pop_front();
            }
        }
        Ok(())
    }

    /// After a switch of an active module: start again from the active state.
    fn reseed(&mut self, active: &Logic, shared: &Shared) {
        match fork_with(active, &self.module, here(shared)) {
            Ok(l) => self.logic = l,
            Err(e) => shared.shadow_status().error = Some(e),
        }
    }
}

/// What the API asks of the shadow.
#[derive(Debug, Clone)]
pub enum ShadowCommand {
    Start(String),
    Stop,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ShadowDivergence {
    pub index: u64,
    pub input: String,
    pub active: String,
    pub shadow: String,
}

/// The shadow's counters, for the status page and /metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShadowStatus {
    pub hash: Option<String>,
    pub version: String,
    pub since_index: u64,
    pub compared: u64,
    pub divergences: u64,
    pub traps: u64,
    pub recent: VecDeque<ShadowDivergence>,
    pub error: Option<String>,
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let st = self.shared.read();
        Ok((st.last_applied, st.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = openraft::Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        self.steer_shadow();
        let mut responses = Vec::new();
        for entry in entries {
            let log_id = entry.log_id;
            let response = match entry.payload {
                EntryPayload::Blank => Response::Applied,
                EntryPayload::Membership(m) => {
                    self.shared.write().membership = StoredMembership::new(Some(log_id), m);
                    Response::Applied
                }
                EntryPayload::Normal(req) => self.apply_request(log_id, req)?,
            };
            self.shared.write().last_applied = Some(log_id);
            self.shared
                .counters
                .applied_entries
                .fetch_add(1, Ordering::Relaxed);
            responses.push(response);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        self.snapshot_counter += 1;
        let logic = self.logic.state();
        SnapshotBuilder {
            replicated: self.shared.read().clone(),
            logic,
            module_hash: self.logic.module().hash.clone(),
            store: self.store.clone(),
            counter: self.snapshot_counter,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let snap: SnapshotData = postcard::from_bytes(&data).map_err(io_err)?;
        // Build the new logic first; swap only when it restored.
        let logic = logic_for(&snap, &self.builtin, &self.cache)?;
        self.store.save(meta, &data).map_err(io_err)?;
        self.logic = logic;
        *self.shared.write() = snap.replicated;
        if let Some(shadow) = &mut self.shadow {
            shadow.reseed(&self.logic, &self.shared);
        }
        self.shared.generation.fetch_add(1, Ordering::Relaxed);
        self.shared.wakeups.wake_all();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self
            .store
            .load()
            .map_err(io_err)?
            .map(|(meta, data)| Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data)),
            }))
    }
}

/// The logic a snapshot continues with: its active modules (compiled here if need be),
/// its limits, its state and its plugins'.
fn logic_for(
    snap: &SnapshotData,
    builtin: &Arc<LogicModule>,
    cache: &ModuleCache,
) -> Result<Logic, StorageError> {
    let modules = &snap.replicated.modules;
    let bytes_of = |hash: &str| {
        modules
            .known
            .get(hash)
            .map(|r| r.bytes.clone())
            .ok_or_else(|| format!("the snapshot lacks its active module {hash}"))
    };
    let module = match modules.active() {
        None => builtin.clone(),
        Some(a) => bytes_of(&a.hash)
            .and_then(|b| cache.get(&b))
            .map_err(|e| io_err(format!("the snapshot's logic {}: {e}", a.hash)))?,
    };
    let config = snap.replicated.config();
    Logic::from_state(
        module,
        config.limits(),
        config.plugin_limits(),
        &snap.logic,
        |hash| bytes_of(hash).and_then(|b| cache.get_plugin(&b)),
    )
    .map_err(io_err)
}

pub struct SnapshotBuilder {
    replicated: Replicated,
    logic: LogicState,
    module_hash: String,
    store: SnapshotStore,
    counter: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let state = self.logic.clone();
        let replicated = self.replicated.clone();
        let last = replicated.last_applied;
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: replicated.membership.clone(),
            snapshot_id: format!("{}-{}", last.map(|l| l.index).unwrap_or(0), self.counter),
        };
        let data = postcard::to_allocvec(&SnapshotData {
            replicated,
            logic: state,
            module_hash: self.module_hash.clone(),
        })
        .map_err(io_err)?;
        let store = self.store.clone();
        let (meta2, data2) = (meta.clone(), data.clone());
        tokio::task::spawn_blocking(move || store.save(&meta2, &data2))
            .await
            .map_err(io_err)?
            .map_err(io_err)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing() -> Done {
        Done::default()
    }

    fn create(st: &mut Replicated, index: u64, addr: &str) -> Response {
        let op = Op::CreateSession {
            auth: "a".into(),
            remote_addr: addr.into(),
        };
        match decide(st, index, 1000, &op) {
            Decision::Run(_) => absorb(st, index, 1000, op, &nothing()),
            Decision::Done(r) => r,
            Decision::Host => unreachable!(),
        }
    }

    fn close(st: &mut Replicated, id: u64) {
        let outcome = Done {
            outcome: irc::Outcome {
                closed: vec![id],
                ..irc::Outcome::default()
            },
            ..Done::default()
        };
        let op = Op::DeleteSession {
            session: id,
            quit_message: String::new(),
        };
        absorb(st, 99, 1000, op, &outcome);
    }

    #[test]
    fn session_limits_are_decided_at_apply_and_counted_per_address() {
        let mut st = Replicated::default();
        st.net.max_sessions = 3;
        st.net.max_sessions_per_address = 2;
        let a1 = create(&mut st, 1, "192.0.2.1");
        assert!(matches!(a1, Response::SessionCreated(_)));
        assert!(matches!(
            create(&mut st, 2, "192.0.2.1"),
            Response::SessionCreated(_)
        ));
        let Response::SessionLimit(why) = create(&mut st, 3, "192.0.2.1") else {
            panic!("a third session from one address");
        };
        assert!(why.contains("MaxSessionsPerAddress"), "{why}");
        assert!(matches!(
            create(&mut st, 4, "192.0.2.2"),
            Response::SessionCreated(_)
        ));
        let Response::SessionLimit(why) = create(&mut st, 5, "192.0.2.3") else {
            panic!("a fourth session");
        };
        assert!(why.contains("MaxSessions)"), "{why}");
        let Response::SessionCreated(first) = a1 else {
            unreachable!()
        };
        close(&mut st, first);
        assert_eq!(st.sessions_per_address["192.0.2.1"], 1);
        assert!(matches!(
            create(&mut st, 6, "192.0.2.1"),
            Response::SessionCreated(_)
        ));
        for id in st.sessions.keys().copied().collect::<Vec<_>>() {
            close(&mut st, id);
        }
        assert!(st.sessions_per_address.is_empty());
    }

    #[test]
    fn lines_advance_the_throttle_from_entry_times() {
        let mut st = Replicated::default();
        let Response::SessionCreated(id) = create(&mut st, 1, "192.0.2.1") else {
            panic!()
        };
        let line = |n| Op::Line {
            session: id,
            client_message_id: n,
            data: "PING x".into(),
        };
        let mut now = 1000;
        for n in 1..=4 {
            now = st.sessions[&id].throttle.ready_at(500);
            absorb(&mut st, 1 + n, now, line(n), &nothing());
        }
        assert_eq!(st.sessions[&id].throttle.delay_ms(500), 16);
        // A rejected line counts too.
        absorb_rejected(&mut st, now + 16, &line(9));
        assert_eq!(st.sessions[&id].throttle.delay_ms(500), 32);
    }
}
