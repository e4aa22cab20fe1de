//! Appends/s with a real fsync per group commit, for single-entry appends issued concurrently by
//! N tasks, each waiting for its own append to be durable before issuing the next (so at most N
//! appends are in flight). With group commit, throughput should grow with N while the number of
//! fsyncs per second stays roughly flat.
//!
//! Run: `cargo bench -p unsplit-logstore --bench append` (optionally `-- <seconds per case>`).
//! The store lives in a temporary directory under `$LOGSTORE_BENCH_DIR` (default: the system
//! temp dir); make sure that is a real disk, not tmpfs.

// The 0.9 macro expands its default `SnapshotData` to a bare `Cursor`: keep it in scope.
use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use openraft::storage::RaftLogStorageExt;
use openraft::{Entry, EntryPayload};
use unsplit_logstore::LogStore;

openraft::declare_raft_types!(pub Bench: D = String, R = String);

fn entry(index: u64, payload: &str) -> Entry<Bench> {
    Entry {
        log_id: openraft::testing::log_id(1, 1, index),
        payload: EntryPayload::Normal(payload.to_string()),
    }
}

/// N tasks, each: append one entry, wait until durable, repeat.
async fn run_tasks(n: usize, secs: f64, payload: &str) -> (f64, f64) {
    let dir = tempdir();
    let store = LogStore::<Bench>::open(dir.path()).expect("open");
    let next = Arc::new(AtomicU64::new(1));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let before = store.stats();
    let mut handles = Vec::new();
    for _ in 0..n {
        let mut store = store.clone();
        let (next, done, stop) = (next.clone(), done.clone(), stop.clone());
        let payload = payload.to_string();
        handles.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                store
                    .blocking_append([entry(i, &payload)])
                    .await
                    .expect("append");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.await.expect("task");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = store.stats();
    let appends = done.load(Ordering::Relaxed) as f64 / elapsed;
    let fsyncs = (after.synced_batches - before.synced_batches) as f64 / elapsed;
    (appends, fsyncs)
}

/// One issuer that never waits (like openraft's core), with at most `window` appends in flight.
async fn run_pipelined(window: u64, secs: f64, payload: &str) -> (f64, f64) {
    let dir = tempdir();
    let store = LogStore::<Bench>::open(dir.path()).expect("open");
    let durable = Arc::new(AtomicU64::new(0));
    let notify = Arc::new(tokio::sync::Notify::new());
    let start = Instant::now();
    let mut issued = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        while issued - durable.load(Ordering::Acquire) >= window {
            notify.notified().await;
        }
        issued += 1;
        let (durable, notify) = (durable.clone(), notify.clone());
        store
            .append_with_callback([entry(issued, payload)], move |r| {
                r.expect("append");
                durable.fetch_add(1, Ordering::Release);
                notify.notify_one();
            })
            .expect("append");
    }
    store.flush().await.expect("flush");
    let elapsed = start.elapsed().as_secs_f64();
    let stats = store.stats();
    (
        durable.load(Ordering::Acquire) as f64 / elapsed,
        stats.synced_batches as f64 / elapsed,
    )
}

fn tempdir() -> tempfile::TempDir {
    match std::env::var_os("LOGSTORE_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base).expect("tempdir"),
        None => tempfile::tempdir().expect("tempdir"),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; an optional number is the seconds per case.
    let secs: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3.0);
    let payload = "x".repeat(200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "single-entry appends (200 B payload), fsync (SyncAll) per group commit, {secs} s per case"
    );
    println!(
        "{:>24} {:>12} {:>10} {:>14}",
        "case", "appends/s", "fsyncs/s", "entries/fsync"
    );
    for n in [1usize, 16, 64] {
        let (appends, fsyncs) = rt.block_on(run_tasks(n, secs, &payload));
        println!(
            "{:>24} {:>12.0} {:>10.0} {:>14.1}",
            format!("{n} task(s)"),
            appends,
            fsyncs,
            appends / fsyncs.max(1.0)
        );
    }
    let (appends, fsyncs) = rt.block_on(run_pipelined(1024, secs, &payload));
    println!(
        "{:>24} {:>12.0} {:>10.0} {:>14.1}",
        "pipelined, 1024 window",
        appends,
        fsyncs,
        appends / fsyncs.max(1.0)
    );
}
