//! The raft state machine: applies committed entries through the IRC logic component and
//! keeps the host's replicated state (sessions and their secrets, the configuration, the
//! output window).
//!
//! Data flow for one entry: decode → host checks (session exists, ClientMessageId dedup)
//! → `Logic::apply` (wasm) → number the output lines, append them to the output window →
//! drop closed sessions → wake the streams of the recipients. Host state changes only
//! after the logic accepted the entry, so a rejected (trapping) entry changes nothing.

// openraft's StorageError (224 bytes) is imposed by its traits; boxing it here would only
// move the conversion around.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use unsplit_bridge::protocol::MESSAGE_ID_OFFSET;

use crate::logic::{Logic, LogicError};
use crate::netconfig::NetConfig;
use crate::output::{Batch, OutLine, OutputWindow};
use crate::raft::{
    LogId, Op, Request, Response, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use crate::runtime::{self, Limits, LogicModule};
use crate::snapshot::SnapshotStore;

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
}

/// The host's replicated state. Identical on every node after the same entries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Replicated {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    pub sessions: BTreeMap<u64, SessionInfo>,
    pub config_toml: String,
    pub config_revision: u64,
    /// `config_toml` as the host reads it (parsed once per config change).
    pub net: NetConfig,
    pub now_ms: u64,
    pub output: OutputWindow,
    /// Entries rejected because the logic trapped on them.
    pub rejected: u64,
}

impl Replicated {
    pub fn config(&self) -> &NetConfig {
        &self.net
    }

    pub fn applied_index(&self) -> u64 {
        self.last_applied.map(|l| l.index).unwrap_or(0)
    }
}

/// What a snapshot carries: the host's state and the logic's state.
#[derive(Serialize, Deserialize)]
struct SnapshotData {
    replicated: Replicated,
    logic: Vec<u8>,
    module_hash: String,
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
}

/// Upper bounds (µs) of the apply latency histogram buckets.
pub const APPLY_BUCKETS_US: [u64; 8] = [10, 25, 50, 100, 250, 1_000, 10_000, 100_000];

impl Counters {
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
}

impl Shared {
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Replicated> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Replicated> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct StateMachine {
    shared: Arc<Shared>,
    logic: Logic,
    store: SnapshotStore,
    limits: Limits,
    snapshot_counter: u64,
}

fn io_err(e: impl std::fmt::Display) -> StorageError {
    StorageError::from(StorageIOError::write_state_machine(&std::io::Error::other(
        e.to_string(),
    )))
}

impl StateMachine {
    /// Opens the state machine: from the last snapshot on disk if there is one.
    pub fn open(
        store: SnapshotStore,
        module: Arc<LogicModule>,
        limits: Limits,
    ) -> Result<(StateMachine, Arc<Shared>), StorageError> {
        let shared = Arc::new(Shared::default());
        let logic = match store.load().map_err(io_err)? {
            Some((_meta, data)) => {
                let snap: SnapshotData = postcard::from_bytes(&data).map_err(io_err)?;
                let logic = Logic::from_snapshot(module, limits, &snap.logic).map_err(io_err)?;
                *shared.write() = snap.replicated;
                logic
            }
            None => Logic::new(module, limits).map_err(io_err)?,
        };
        let sm = StateMachine {
            shared: shared.clone(),
            logic,
            store,
            limits,
            snapshot_counter: 0,
        };
        Ok((sm, shared))
    }

    fn apply_request(&mut self, log_id: LogId, req: Request) -> Result<Response, StorageError> {
        let id = MESSAGE_ID_OFFSET + log_id.index;
        let now = {
            let mut st = self.shared.write();
            st.now_ms = st.now_ms.max(req.time_ms);
            st.now_ms
        };
        let (session, kind) = {
            let st = self.shared.read();
            match &req.op {
                Op::CreateSession { remote_addr, .. } => {
                    (id, runtime::EntryKind::CreateSession(remote_addr.clone()))
                }
                Op::Line {
                    session,
                    client_message_id,
                    data,
                } => match st.sessions.get(session) {
                    None => return Ok(Response::NoSuchSession),
                    Some(s)
                        if *client_message_id != 0
                            && s.last_client_message_id == *client_message_id =>
                    {
                        return Ok(Response::Duplicate);
                    }
                    Some(_) => (
                        *session,
                        runtime::EntryKind::IrcLine(data.as_bytes().to_vec()),
                    ),
                },
                Op::DeleteSession {
                    session,
                    quit_message,
                } => {
                    if !st.sessions.contains_key(session) {
                        return Ok(Response::NoSuchSession);
                    }
                    (
                        *session,
                        runtime::EntryKind::DeleteSession(quit_message.clone()),
                    )
                }
                Op::Tick => (0, runtime::EntryKind::Tick),
                Op::Config { toml, .. } => (0, runtime::EntryKind::Config(toml.clone())),
            }
        };
        let entry = runtime::Entry {
            index: log_id.index,
            time_ms: now,
            session,
            kind,
        };
        let started = std::time::Instant::now();
        let result = self.logic.apply(entry);
        let counters = &self.shared.counters;
        counters.observe_apply(started.elapsed(), self.logic.last_fuel());
        let mut st = self.shared.write();
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(LogicError::Rejected { kind, message }) => {
                st.rejected += 1;
                counters.rejected_entries.fetch_add(1, Ordering::Relaxed);
                let reason = format!("{kind:?}: {message}");
                if session != 0 && st.sessions.contains_key(&session) {
                    let server = st.config().server_name.clone();
                    let text = format!(
                        ":{server} NOTICE * :Your last line was rejected: it made the IRC logic fail ({reason}). Nothing changed."
                    );
                    st.output.push(Batch {
                        id,
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
            Err(LogicError::Fatal(e)) => return Err(io_err(e)),
        };
        let mut response = Response::Applied;
        match req.op {
            Op::CreateSession { auth, remote_addr } => {
                st.sessions.insert(
                    id,
                    SessionInfo {
                        auth,
                        remote_addr,
                        created_ms: now,
                        last_client_message_id: 0,
                    },
                );
                response = Response::SessionCreated(id);
            }
            Op::Line {
                session,
                client_message_id,
                ..
            } => {
                if let Some(s) = st.sessions.get_mut(&session) {
                    s.last_client_message_id = client_message_id;
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
            Op::DeleteSession { .. } | Op::Tick => {}
        }
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
        counters
            .output_lines
            .fetch_add(lines.len() as u64, Ordering::Relaxed);
        st.output.push(Batch {
            id,
            time_ms: now,
            lines,
        });
        let retention = st.config().session_expiration_ms + RETENTION_SLACK_MS;
        st.output.prune(now.saturating_sub(retention));
        for closed in &outcome.closed {
            st.sessions.remove(closed);
        }
        drop(st);
        woken.sort_unstable();
        woken.dedup();
        for s in woken {
            self.shared.wakeups.wake(s);
        }
        for s in outcome.closed {
            self.shared.wakeups.forget(s);
        }
        Ok(response)
    }
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
        let logic = self.logic.snapshot();
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
        let logic = Logic::from_snapshot(self.logic.module().clone(), self.limits, &snap.logic)
            .map_err(io_err)?;
        self.store.save(meta, &data).map_err(io_err)?;
        self.logic = logic;
        *self.shared.write() = snap.replicated;
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

pub struct SnapshotBuilder {
    replicated: Replicated,
    logic: Result<Vec<u8>, LogicError>,
    module_hash: String,
    store: SnapshotStore,
    counter: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let logic = match &self.logic {
            Ok(bytes) => bytes.clone(),
            Err(e) => return Err(io_err(e)),
        };
        let replicated = self.replicated.clone();
        let last = replicated.last_applied;
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: replicated.membership.clone(),
            snapshot_id: format!("{}-{}", last.map(|l| l.index).unwrap_or(0), self.counter),
        };
        let data = postcard::to_allocvec(&SnapshotData {
            replicated,
            logic,
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
