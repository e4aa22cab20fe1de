//! The raft log of an unsplit node: openraft 0.9 storage-v2 ([`RaftLogStorage`] +
//! [`RaftLogReader`]) on fjall 3.
//!
//! # Layout
//!
//! One fjall [`Database`] per node directory, with two keyspaces:
//!
//! * `log`: key = the entry's index as 8-byte big-endian (so byte order is index order),
//!   value = the entry (`C::Entry`, i.e. `openraft::Entry<C>` by default) serialized with
//!   **postcard**. postcard is not self-describing: changing the entry types (`C::D`, `C::Node`,
//!   ...) changes the on-disk format.
//! * `meta`: `vote` (postcard `Vote`), `committed` (postcard `LogId`, absent = `None`),
//!   `last_purged` (postcard `LogId`, absent = nothing purged yet) and `format` (one byte, the
//!   layout version, currently [`FORMAT_VERSION`]).
//!
//! Purges write point tombstones into `log` and record `last_purged` in `meta` in the same atomic
//! batch. The head of the log is never probed (`first_key_value` scans tombstones until
//! compaction); every read is bounded below by `last_purged + 1`.
//!
//! # Durability
//!
//! * [`save_vote`](RaftLogStorage::save_vote) returns only after the vote is fsynced
//!   (`PersistMode::SyncAll`).
//! * [`append`](RaftLogStorage::append) returns at once (the entries are readable from then on,
//!   served from an in-memory "pending" map); the `LogFlushed` callback is called only after the
//!   entries are fsynced.
//! * [`truncate`](RaftLogStorage::truncate) returns after the deletion is fsynced.
//! * [`purge`](RaftLogStorage::purge) and [`save_committed`](RaftLogStorage::save_committed) are
//!   queued and return at once (openraft allows both to be lazy); their effect is visible to
//!   readers immediately, and becomes durable with the next fsynced write (or
//!   [`LogStore::flush`], or drop). `purge` deletes and records `last_purged` atomically.
//! * All writes are applied in the order they were issued (one FIFO queue), as openraft requires.
//!
//! # Threading
//!
//! fjall I/O is blocking, so writes never run on the async caller's thread: they are sent over a
//! channel to one dedicated I/O thread (`unsplit-logstore-io`). It takes whatever is queued,
//! merges consecutive appends/meta writes into **one** `WriteBatch` committed with **one**
//! `SyncAll` (group commit), then calls the callbacks in queue order. Truncates and purges are
//! executed alone, in order, between groups.
//!
//! Reads (`try_get_log_entries`, `get_log_state`, `read_vote`) run directly on the caller's
//! thread: they never fsync, the hot tail of the log is in fjall's memtable or block cache, and
//! openraft bounds each read (replication batches of `max_payload_entries`). A `spawn_blocking`
//! hop would cost more than the read itself in the common case.
//!
//! [`LogStore`] is a cheap `Clone` (an `Arc`); openraft's log reader is such a clone. When the
//! last clone is dropped, the queue is drained, the database is fsynced, the I/O thread is joined
//! and the directory lock is released, so the directory can be reopened at once. Opening a
//! directory that is already open (in this or another process) fails with
//! [`LogStoreError::Locked`].

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Slice};
use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{
    AnyError, LogId, OptionalSend, RaftLogId, RaftTypeConfig, StorageError, StorageIOError, Vote,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

/// On-disk layout version stored under `meta/format`.
pub const FORMAT_VERSION: u8 = 1;

const KS_LOG: &str = "log";
const KS_META: &str = "meta";
const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";
const KEY_FORMAT: &[u8] = b"format";

/// A group commit is cut once it holds this many log entries...
const MAX_GROUP_ENTRIES: usize = 4096;
/// ...or this many bytes of serialized entries.
const MAX_GROUP_BYTES: usize = 16 << 20;

/// Errors of the log store itself. Inside the openraft traits they are wrapped into
/// [`StorageError`] / [`StorageIOError`].
#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    /// Another `LogStore` (in this or another process) holds the directory's fjall lock.
    #[error("log store directory {} is already open (fjall lock is held)", path.display())]
    Locked { path: PathBuf },
    /// fjall failed on open or on a read.
    #[error("fjall: {0}")]
    Fjall(#[from] fjall::Error),
    /// A write failed on the I/O thread. fjall poisons the database after a failed fsync, so
    /// later writes fail too: the node must restart.
    #[error("fjall write failed: {0}")]
    Write(Arc<fjall::Error>),
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: postcard::Error,
    },
    #[error("cannot decode {what}: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: postcard::Error,
    },
    #[error("corrupt log key: {len} bytes, expected 8")]
    CorruptKey { len: usize },
    #[error("unsupported on-disk format {found:?}, this build reads version {FORMAT_VERSION}")]
    Format { found: Vec<u8> },
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    /// The I/O thread is gone (it only stops when the store is dropped, or if it panicked).
    #[error("the log store I/O thread has stopped")]
    IoThreadStopped,
}

type IoResult = Result<(), Arc<fjall::Error>>;

/// Called once the entries of an append are durable (or failed).
type DoneFn = Box<dyn FnOnce(io::Result<()>) + Send + 'static>;

enum Completion<C: RaftTypeConfig> {
    Raft(LogFlushed<C>),
    Fn(DoneFn),
}

impl<C: RaftTypeConfig> Completion<C> {
    fn complete(self, res: &IoResult) {
        let res = res
            .as_ref()
            .map_err(|e| io::Error::other(LogStoreError::Write(Arc::clone(e))))
            .copied();
        match self {
            Completion::Raft(cb) => cb.log_io_completed(res),
            Completion::Fn(f) => f(res),
        }
    }
}

enum Op<C: RaftTypeConfig> {
    Append {
        seq: u64,
        entries: Vec<(u64, Slice)>,
        done: Completion<C>,
    },
    /// Put (`Some`) or delete (`None`) a meta key; `durable` forces the group to `SyncAll`.
    Meta {
        key: &'static [u8],
        value: Option<Slice>,
        durable: bool,
        done: Option<oneshot::Sender<IoResult>>,
    },
    /// Delete every entry with index `>= from`.
    Truncate {
        from: u64,
        done: oneshot::Sender<IoResult>,
    },
    /// Delete entries in `lo..=hi` and set `meta/last_purged`.
    Purge {
        lo: u64,
        hi: u64,
        last_purged: Slice,
    },
    /// Commit everything queued before, fsync, then answer.
    Flush { done: oneshot::Sender<IoResult> },
}

/// Appended entries not yet committed to fjall, so that they are readable as soon as `append`
/// returns. `seq` identifies the append that wrote an index, so that the I/O thread only removes
/// what it committed.
#[derive(Default)]
struct Pending {
    next_seq: u64,
    entries: BTreeMap<u64, (u64, Slice)>,
}

/// State shared between the store handles and the I/O thread.
struct Shared<NID: openraft::NodeId> {
    pending: Mutex<Pending>,
    /// Updated when `purge` is called (the deletion itself is queued).
    last_purged: Mutex<Option<LogId<NID>>>,
    /// Updated when `save_committed` is called (the write itself is queued).
    committed: Mutex<Option<LogId<NID>>>,
    /// First failure of a queued write that nobody waited for (purge, committed).
    background_error: Mutex<Option<Arc<fjall::Error>>>,
    batches: AtomicU64,
    synced_batches: AtomicU64,
    appended_entries: AtomicU64,
}

/// Counters since [`LogStore::open`], e.g. to see group commit at work
/// (`appended_entries / synced_batches` = entries per fsync).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStoreStats {
    /// Write batches committed by the I/O thread (group commits, truncates, purges).
    pub batches: u64,
    /// Of those, the ones committed with `SyncAll` (one fsync each).
    pub synced_batches: u64,
    /// Log entries written by group commits.
    pub appended_entries: u64,
}

/// `Mutex::lock` that ignores poisoning: no critical section in this crate can panic midway
/// through an update, so the data is consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Inner<C: RaftTypeConfig> {
    dir: PathBuf,
    log: Keyspace,
    meta: Keyspace,
    shared: Arc<Shared<C::NodeId>>,
    tx: Option<mpsc::Sender<Op<C>>>,
    io_thread: Option<JoinHandle<()>>,
    _db: Database,
}

impl<C: RaftTypeConfig> Drop for Inner<C> {
    fn drop(&mut self) {
        // Closing the channel makes the I/O thread drain what is queued, fsync and exit.
        drop(self.tx.take());
        if let Some(handle) = self.io_thread.take() {
            let _ = handle.join();
        }
    }
}

/// The raft log store. See the crate documentation for layout, durability and threading.
pub struct LogStore<C: RaftTypeConfig> {
    inner: Arc<Inner<C>>,
}

impl<C: RaftTypeConfig> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: RaftTypeConfig> Debug for LogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

fn encode<T: Serialize>(what: &'static str, v: &T) -> Result<Slice, LogStoreError> {
    postcard::to_allocvec(v)
        .map(Slice::from)
        .map_err(|source| LogStoreError::Encode { what, source })
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, LogStoreError> {
    postcard::from_bytes(bytes).map_err(|source| LogStoreError::Decode { what, source })
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn key_index(key: &[u8]) -> Result<u64, LogStoreError> {
    <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| LogStoreError::CorruptKey { len: key.len() })
}

/// Converts any `RangeBounds<u64>` to an inclusive `(lo, hi)`, or `None` if it is empty.
fn inclusive_bounds(range: &impl RangeBounds<u64>) -> Option<(u64, u64)> {
    let lo = match range.start_bound() {
        Bound::Included(&x) => x,
        Bound::Excluded(&x) => x.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let hi = match range.end_bound() {
        Bound::Included(&x) => x,
        Bound::Excluded(&x) => x.checked_sub(1)?,
        Bound::Unbounded => u64::MAX,
    };
    (lo <= hi).then_some((lo, hi))
}

/// The first index that may still be present, given the last purged log id.
fn first_live_index<NID: openraft::NodeId>(last_purged: &Option<LogId<NID>>) -> Option<u64> {
    match last_purged {
        None => Some(0),
        Some(l) => l.index.checked_add(1),
    }
}

fn read_err<NID: openraft::NodeId>(e: LogStoreError) -> StorageError<NID> {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

fn write_err<NID: openraft::NodeId>(e: LogStoreError) -> StorageError<NID> {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

fn vote_write_err<NID: openraft::NodeId>(e: LogStoreError) -> StorageError<NID> {
    StorageIOError::write_vote(AnyError::new(&e)).into()
}

impl<C: RaftTypeConfig> LogStore<C> {
    /// Opens (or creates) the log store in `dir` and starts its I/O thread.
    ///
    /// Blocking (fjall recovery replays the journal): call it at startup or from
    /// `spawn_blocking`. Fails with [`LogStoreError::Locked`] if `dir` is already open.
    pub fn open(dir: &Path) -> Result<Self, LogStoreError> {
        std::fs::create_dir_all(dir)?;
        let db = Database::builder(dir).open().map_err(|e| match e {
            fjall::Error::Locked => LogStoreError::Locked {
                path: dir.to_path_buf(),
            },
            e => LogStoreError::Fjall(e),
        })?;
        let log = db.keyspace(KS_LOG, KeyspaceCreateOptions::default)?;
        let meta = db.keyspace(KS_META, KeyspaceCreateOptions::default)?;

        match meta.get(KEY_FORMAT)? {
            Some(v) if v.as_ref() == [FORMAT_VERSION] => {}
            Some(v) => return Err(LogStoreError::Format { found: v.to_vec() }),
            None => {
                let mut batch = db.batch().durability(Some(PersistMode::SyncAll));
                batch.insert(&meta, KEY_FORMAT, [FORMAT_VERSION]);
                batch.commit()?;
            }
        }

        let last_purged: Option<LogId<C::NodeId>> = match meta.get(KEY_LAST_PURGED)? {
            Some(v) => Some(decode("last_purged", &v)?),
            None => None,
        };
        let committed: Option<LogId<C::NodeId>> = match meta.get(KEY_COMMITTED)? {
            Some(v) => Some(decode("committed", &v)?),
            None => None,
        };

        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            last_purged: Mutex::new(last_purged),
            committed: Mutex::new(committed),
            background_error: Mutex::new(None),
            batches: AtomicU64::new(0),
            synced_batches: AtomicU64::new(0),
            appended_entries: AtomicU64::new(0),
        });

        let (tx, rx) = mpsc::channel();
        let worker = IoWorker::<C> {
            db: db.clone(),
            log: log.clone(),
            meta: meta.clone(),
            shared: Arc::clone(&shared),
            rx,
        };
        let io_thread = std::thread::Builder::new()
            .name("unsplit-logstore-io".into())
            .spawn(move || worker.run())?;

        Ok(Self {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                log,
                meta,
                shared,
                tx: Some(tx),
                io_thread: Some(io_thread),
                _db: db,
            }),
        })
    }

    /// The directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Counters since open.
    pub fn stats(&self) -> LogStoreStats {
        let s = &self.inner.shared;
        LogStoreStats {
            batches: s.batches.load(Ordering::Relaxed),
            synced_batches: s.synced_batches.load(Ordering::Relaxed),
            appended_entries: s.appended_entries.load(Ordering::Relaxed),
        }
    }

    /// Waits until every write issued before this call (including queued purges and
    /// `save_committed`) is fsynced.
    pub async fn flush(&self) -> Result<(), LogStoreError> {
        let (done, rx) = oneshot::channel();
        self.send(Op::Flush { done })?;
        Self::wait(rx).await
    }

    /// Like [`RaftLogStorage::append`], with a plain callback instead of openraft's
    /// `LogFlushed` (which only openraft can construct): `on_durable` is called on the I/O
    /// thread once the entries are fsynced, or with the error. Callbacks are called in the order
    /// the appends were issued. Keep `on_durable` short: it runs on the I/O thread.
    pub fn append_with_callback<I>(
        &self,
        entries: I,
        on_durable: impl FnOnce(io::Result<()>) + Send + 'static,
    ) -> Result<(), LogStoreError>
    where
        I: IntoIterator<Item = C::Entry>,
    {
        self.enqueue_append(entries, Completion::Fn(Box::new(on_durable)))
    }

    fn send(&self, op: Op<C>) -> Result<(), LogStoreError> {
        self.inner
            .tx
            .as_ref()
            .ok_or(LogStoreError::IoThreadStopped)?
            .send(op)
            .map_err(|_| LogStoreError::IoThreadStopped)
    }

    async fn wait(rx: oneshot::Receiver<IoResult>) -> Result<(), LogStoreError> {
        rx.await
            .map_err(|_| LogStoreError::IoThreadStopped)?
            .map_err(LogStoreError::Write)
    }

    fn check_background_error(&self) -> Result<(), LogStoreError> {
        match &*lock(&self.inner.shared.background_error) {
            Some(e) => Err(LogStoreError::Write(Arc::clone(e))),
            None => Ok(()),
        }
    }

    fn enqueue_append<I>(&self, entries: I, done: Completion<C>) -> Result<(), LogStoreError>
    where
        I: IntoIterator<Item = C::Entry>,
    {
        self.check_background_error()?;
        let entries = entries
            .into_iter()
            .map(|e| Ok((e.get_log_id().index, encode("log entry", &e)?)))
            .collect::<Result<Vec<_>, LogStoreError>>()?;

        let mut pending = lock(&self.inner.shared.pending);
        let seq = pending.next_seq;
        pending.next_seq = seq.wrapping_add(1);
        for (index, bytes) in &entries {
            pending.entries.insert(*index, (seq, bytes.clone()));
        }
        let indices: Vec<u64> = entries.iter().map(|(i, _)| *i).collect();
        // Sent under the pending lock, so queue order equals `seq` order.
        if let Err(e) = self.send(Op::Append { seq, entries, done }) {
            for index in indices {
                if pending.entries.get(&index).is_some_and(|(s, _)| *s == seq) {
                    pending.entries.remove(&index);
                }
            }
            return Err(e);
        }
        Ok(())
    }

    fn last_purged(&self) -> Option<LogId<C::NodeId>> {
        lock(&self.inner.shared.last_purged).clone()
    }

    /// Entries with index in `lo..=hi`, pending ones taking precedence over fjall.
    fn read_range(&self, lo: u64, hi: u64) -> Result<Vec<C::Entry>, LogStoreError> {
        let lo = match first_live_index(&self.last_purged()) {
            Some(first) => lo.max(first),
            None => return Ok(Vec::new()),
        };
        if lo > hi {
            return Ok(Vec::new());
        }
        // Pending first, fjall second: the I/O thread removes an entry from `pending` only
        // after it is in fjall, so an entry moving between the two is seen at least once.
        let pending: Vec<(u64, Slice)> = lock(&self.inner.shared.pending)
            .entries
            .range(lo..=hi)
            .map(|(i, (_, b))| (*i, b.clone()))
            .collect();

        let mut out = Vec::new();
        let mut pending = pending.into_iter().peekable();
        for kv in self.inner.log.range(index_key(lo)..=index_key(hi)) {
            let (k, v) = kv.into_inner()?;
            let index = key_index(&k)?;
            while let Some((_, pb)) = pending.next_if(|(pi, _)| *pi < index) {
                out.push(decode("log entry", &pb)?);
            }
            match pending.next_if(|(pi, _)| *pi == index) {
                Some((_, pb)) => out.push(decode("log entry", &pb)?),
                None => out.push(decode("log entry", &v)?),
            }
        }
        for (_, pb) in pending {
            out.push(decode("log entry", &pb)?);
        }
        Ok(out)
    }

    fn log_state(&self) -> Result<LogState<C>, LogStoreError> {
        let last_purged = self.last_purged();
        let Some(first) = first_live_index(&last_purged) else {
            return Ok(LogState {
                last_purged_log_id: last_purged.clone(),
                last_log_id: last_purged,
            });
        };
        let pending_last = lock(&self.inner.shared.pending)
            .entries
            .range(first..)
            .next_back()
            .map(|(i, (_, b))| (*i, b.clone()));
        // Bounded below by `first`, so the tombstones of purged entries are never scanned.
        let stored_last = match self.inner.log.range(index_key(first)..).next_back() {
            Some(kv) => {
                let (k, v) = kv.into_inner()?;
                Some((key_index(&k)?, v))
            }
            None => None,
        };
        let last = match (pending_last, stored_last) {
            (Some(p), Some(s)) => Some(if s.0 > p.0 { s } else { p }),
            (p, s) => p.or(s),
        };
        let last_log_id = match last {
            Some((_, bytes)) => {
                let entry: C::Entry = decode("log entry", &bytes)?;
                Some(entry.get_log_id().clone())
            }
            None => last_purged.clone(),
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id,
        })
    }

    fn read_vote_sync(&self) -> Result<Option<Vote<C::NodeId>>, LogStoreError> {
        match self.inner.meta.get(KEY_VOTE)? {
            Some(v) => Ok(Some(decode("vote", &v)?)),
            None => Ok(None),
        }
    }
}

impl<C: RaftTypeConfig> RaftLogReader<C> for LogStore<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        match inclusive_bounds(&range) {
            Some((lo, hi)) => self.read_range(lo, hi).map_err(read_err),
            None => Ok(Vec::new()),
        }
    }
}

impl<C: RaftTypeConfig> RaftLogStorage<C> for LogStore<C> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        self.log_state().map_err(read_err)
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let value = encode("vote", vote).map_err(vote_write_err)?;
        let (done, rx) = oneshot::channel();
        self.send(Op::Meta {
            key: KEY_VOTE,
            value: Some(value),
            durable: true,
            done: Some(done),
        })
        .map_err(vote_write_err)?;
        Self::wait(rx).await.map_err(vote_write_err)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        self.read_vote_sync()
            .map_err(|e| StorageIOError::read_vote(AnyError::new(&e)).into())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        self.check_background_error().map_err(write_err)?;
        let value = match &committed {
            Some(c) => Some(encode("committed", c).map_err(write_err)?),
            None => None,
        };
        // Not awaited: the committed index may lag on disk (openraft re-derives it), and the
        // FIFO queue keeps it ordered with the log writes.
        let mut cached = lock(&self.inner.shared.committed);
        self.send(Op::Meta {
            key: KEY_COMMITTED,
            value,
            durable: false,
            done: None,
        })
        .map_err(write_err)?;
        *cached = committed;
        Ok(())
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(lock(&self.inner.shared.committed).clone())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.enqueue_append(entries, Completion::Raft(callback))
            .map_err(write_err)
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.check_background_error().map_err(write_err)?;
        let (done, rx) = oneshot::channel();
        self.send(Op::Truncate {
            from: log_id.index,
            done,
        })
        .map_err(write_err)?;
        Self::wait(rx).await.map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.check_background_error().map_err(write_err)?;
        let encoded = encode("last_purged", &log_id).map_err(write_err)?;
        let mut last_purged = lock(&self.inner.shared.last_purged);
        if last_purged
            .as_ref()
            .is_some_and(|l| l.index >= log_id.index)
        {
            return Ok(()); // Never move `last_purged` backwards.
        }
        let lo = first_live_index(&last_purged).unwrap_or(u64::MAX);
        // Queued, not awaited: readers skip `<= last_purged` from now on, and the deletion
        // plus the new `last_purged` are one atomic batch on the I/O thread.
        self.send(Op::Purge {
            lo,
            hi: log_id.index,
            last_purged: encoded,
        })
        .map_err(write_err)?;
        *last_purged = Some(log_id);
        Ok(())
    }
}

/// One group commit being assembled on the I/O thread.
struct Group<C: RaftTypeConfig> {
    log: BTreeMap<u64, Slice>,
    meta: BTreeMap<&'static [u8], Option<Slice>>,
    durable: bool,
    bytes: usize,
    appends: Vec<(u64, Vec<u64>, Completion<C>)>,
    acks: Vec<oneshot::Sender<IoResult>>,
}

impl<C: RaftTypeConfig> Default for Group<C> {
    fn default() -> Self {
        Self {
            log: BTreeMap::new(),
            meta: BTreeMap::new(),
            durable: false,
            bytes: 0,
            appends: Vec::new(),
            acks: Vec::new(),
        }
    }
}

struct IoWorker<C: RaftTypeConfig> {
    db: Database,
    log: Keyspace,
    meta: Keyspace,
    shared: Arc<Shared<C::NodeId>>,
    rx: mpsc::Receiver<Op<C>>,
}

impl<C: RaftTypeConfig> IoWorker<C> {
    fn run(self) {
        let mut group = Group::default();
        // `recv` fails only when every sender is gone and the queue is empty.
        while let Ok(first) = self.rx.recv() {
            let mut next = Some(first);
            while let Some(op) = next {
                self.handle(op, &mut group);
                if group.log.len() >= MAX_GROUP_ENTRIES || group.bytes >= MAX_GROUP_BYTES {
                    self.commit(&mut group);
                }
                next = self.rx.try_recv().ok();
            }
            self.commit(&mut group);
        }
        if let Err(e) = self.db.persist(PersistMode::SyncAll) {
            self.record_background_error(Arc::new(e));
        }
    }

    fn handle(&self, op: Op<C>, group: &mut Group<C>) {
        match op {
            Op::Append { seq, entries, done } => {
                let mut indices = Vec::with_capacity(entries.len());
                for (index, bytes) in entries {
                    group.bytes += bytes.len();
                    indices.push(index);
                    group.log.insert(index, bytes);
                }
                group.durable = true;
                group.appends.push((seq, indices, done));
            }
            Op::Meta {
                key,
                value,
                durable,
                done,
            } => {
                group.meta.insert(key, value);
                group.durable |= durable;
                group.acks.extend(done);
            }
            Op::Truncate { from, done } => {
                self.commit(group);
                let _ = done.send(self.truncate(from));
            }
            Op::Purge {
                lo,
                hi,
                last_purged,
            } => {
                self.commit(group);
                if let Err(e) = self.purge(lo, hi, last_purged) {
                    self.record_background_error(e);
                }
            }
            Op::Flush { done } => {
                self.commit(group);
                let res = self.db.persist(PersistMode::SyncAll).map_err(Arc::new);
                let _ = done.send(res);
            }
        }
    }

    fn count(&self, synced: bool) {
        self.shared.batches.fetch_add(1, Ordering::Relaxed);
        if synced {
            self.shared.synced_batches.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn record_background_error(&self, e: Arc<fjall::Error>) {
        lock(&self.shared.background_error).get_or_insert(e);
    }

    /// Commits the group as one batch (one fsync if anything in it must be durable), then
    /// completes its callbacks in queue order.
    fn commit(&self, group: &mut Group<C>) {
        let group = std::mem::take(group);
        if group.log.is_empty()
            && group.meta.is_empty()
            && group.appends.is_empty()
            && group.acks.is_empty()
        {
            return;
        }
        let mode = if group.durable {
            PersistMode::SyncAll
        } else {
            PersistMode::Buffer
        };
        let mut batch = self.db.batch().durability(Some(mode));
        let entries = group.log.len() as u64;
        for (index, bytes) in group.log {
            batch.insert(&self.log, index_key(index), bytes);
        }
        for (key, value) in group.meta {
            match value {
                Some(v) => batch.insert(&self.meta, key, v),
                None => batch.remove(&self.meta, key),
            }
        }
        let written = !batch.is_empty();
        let res = batch.commit().map_err(Arc::new);
        if res.is_ok() && written {
            self.count(group.durable);
            self.shared
                .appended_entries
                .fetch_add(entries, Ordering::Relaxed);
        }
        if group.appends.is_empty()
            && group.acks.is_empty()
            && let Err(e) = &res
        {
            self.record_background_error(Arc::clone(e));
        }

        {
            let mut pending = lock(&self.shared.pending);
            for (seq, indices, _) in &group.appends {
                for index in indices {
                    if pending.entries.get(index).is_some_and(|(s, _)| s == seq) {
                        pending.entries.remove(index);
                    }
                }
            }
        }
        for (_, _, done) in group.appends {
            done.complete(&res);
        }
        for ack in group.acks {
            let _ = ack.send(res.clone());
        }
    }

    fn truncate(&self, from: u64) -> IoResult {
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
        for kv in self.log.range(index_key(from)..) {
            batch.remove(&self.log, kv.key().map_err(Arc::new)?);
        }
        batch.commit().map_err(Arc::new)?;
        self.count(true);
        Ok(())
    }

    fn purge(&self, lo: u64, hi: u64, last_purged: Slice) -> IoResult {
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
        if lo <= hi {
            // Starts at the previous `last_purged + 1`: older tombstones are not scanned.
            for kv in self.log.range(index_key(lo)..=index_key(hi)) {
                batch.remove(&self.log, kv.key().map_err(Arc::new)?);
            }
        }
        batch.insert(&self.meta, KEY_LAST_PURGED, last_purged);
        batch.commit().map_err(Arc::new)?;
        self.count(true);
        Ok(())
    }
}
