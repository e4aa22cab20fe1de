//! Behaviour of `LogStore` beyond the openraft suite: persistence across reopen, truncate/purge
//! edge cases, ordering of append completions, concurrency, and large logs.

mod common;

use std::ops::Bound;
use std::sync::{Arc, Mutex};

use common::{Store, TypeConfig, ent, log_id};
use openraft::storage::{LogState, RaftLogReader, RaftLogStorage, RaftLogStorageExt};
use openraft::{Entry, RaftLogId, Vote};
use unsplit_logstore::LogStoreError;

fn indices(entries: &[Entry<TypeConfig>]) -> Vec<u64> {
    entries.iter().map(|e| e.get_log_id().index).collect()
}

async fn append_range(store: &mut Store, term: u64, range: std::ops::RangeInclusive<u64>) {
    let entries: Vec<_> = range.map(|i| ent(term, i)).collect();
    store.blocking_append(entries).await.unwrap();
}

fn state(purged: Option<(u64, u64)>, last: Option<(u64, u64)>) -> LogState<TypeConfig> {
    LogState {
        last_purged_log_id: purged.map(|(t, i)| log_id(t, i)),
        last_log_id: last.map(|(t, i)| log_id(t, i)),
    }
}

#[tokio::test]
async fn state_survives_drop_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let vote = Vote::new_committed(3, 1);
    {
        let mut store = Store::open(dir.path()).unwrap();
        append_range(&mut store, 1, 1..=100).await;
        store.save_vote(&vote).await.unwrap();
        store.save_committed(Some(log_id(1, 50))).await.unwrap();
        store.purge(log_id(1, 10)).await.unwrap();
        // No flush: drop must drain the queue (purge, committed are queued) and fsync.
    }
    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(store.read_vote().await.unwrap(), Some(vote));
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(1, 50)));
    assert_eq!(
        store.get_log_state().await.unwrap(),
        state(Some((1, 10)), Some((1, 100)))
    );
    let all = store.try_get_log_entries(..).await.unwrap();
    assert_eq!(indices(&all), (11..=100).collect::<Vec<_>>());
    assert_eq!(all[0], ent(1, 11));
    assert!(store.try_get_log_entries(0..=10).await.unwrap().is_empty());

    // A later vote overwrites, `committed = None` deletes.
    let vote2 = Vote::new(4, 2);
    store.save_vote(&vote2).await.unwrap();
    store.save_committed(None).await.unwrap();
    drop(store);
    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(store.read_vote().await.unwrap(), Some(vote2));
    assert_eq!(store.read_committed().await.unwrap(), None);
}

#[tokio::test]
async fn fresh_store_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(store.get_log_state().await.unwrap(), state(None, None));
    assert_eq!(store.read_vote().await.unwrap(), None);
    assert_eq!(store.read_committed().await.unwrap(), None);
    assert!(store.try_get_log_entries(..).await.unwrap().is_empty());
    store.flush().await.unwrap();
}

#[tokio::test]
async fn opening_twice_fails_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reader = store.clone();
    match Store::open(dir.path()) {
        Err(LogStoreError::Locked { path }) => assert_eq!(path, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(store);
    // A clone still holds the store open.
    assert!(matches!(
        Store::open(dir.path()),
        Err(LogStoreError::Locked { .. })
    ));
    drop(reader);
    Store::open(dir.path()).unwrap();
}

#[tokio::test]
async fn read_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    append_range(&mut store, 1, 0..=9).await;
    let r = |v: Vec<Entry<TypeConfig>>| indices(&v);
    assert_eq!(
        r(store.try_get_log_entries(2..5).await.unwrap()),
        vec![2, 3, 4]
    );
    assert_eq!(
        r(store.try_get_log_entries(2..=5).await.unwrap()),
        vec![2, 3, 4, 5]
    );
    assert_eq!(r(store.try_get_log_entries(8..).await.unwrap()), vec![8, 9]);
    assert_eq!(r(store.try_get_log_entries(..2).await.unwrap()), vec![0, 1]);
    assert_eq!(
        r(store
            .try_get_log_entries((Bound::Excluded(7), Bound::Unbounded))
            .await
            .unwrap()),
        vec![8, 9]
    );
    // Empty and inverted ranges are empty, never a panic.
    assert!(store.try_get_log_entries(5..5).await.unwrap().is_empty());
    #[allow(clippy::reversed_empty_ranges)]
    let inverted = 7..3;
    assert!(
        store
            .try_get_log_entries(inverted)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .try_get_log_entries((Bound::Excluded(u64::MAX), Bound::Unbounded))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.try_get_log_entries(..0).await.unwrap().is_empty());
    assert!(
        store
            .try_get_log_entries(100..200)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        r(store.limited_get_log_entries(3, 6).await.unwrap()),
        vec![3, 4, 5]
    );
}

#[tokio::test]
async fn truncate_edge_cases() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    append_range(&mut store, 1, 1..=10).await;

    // Beyond the end: nothing changes.
    store.truncate(log_id(1, 11)).await.unwrap();
    assert_eq!(
        store.get_log_state().await.unwrap(),
        state(None, Some((1, 10)))
    );

    // In the middle, then overwrite with a newer term.
    store.truncate(log_id(1, 6)).await.unwrap();
    assert_eq!(
        store.get_log_state().await.unwrap(),
        state(None, Some((1, 5)))
    );
    assert_eq!(
        indices(&store.try_get_log_entries(..).await.unwrap()),
        vec![1, 2, 3, 4, 5]
    );
    append_range(&mut store, 2, 6..=8).await;
    let all = store.try_get_log_entries(..).await.unwrap();
    assert_eq!(indices(&all), (1..=8).collect::<Vec<_>>());
    assert_eq!(all[5], ent(2, 6));
    assert_eq!(all[4], ent(1, 5));

    // Truncating the whole (unpurged) log empties it.
    store.truncate(log_id(1, 1)).await.unwrap();
    assert_eq!(store.get_log_state().await.unwrap(), state(None, None));

    // With a purged prefix, truncating everything left falls back to last_purged.
    append_range(&mut store, 3, 1..=10).await;
    store.purge(log_id(3, 4)).await.unwrap();
    store.truncate(log_id(3, 5)).await.unwrap();
    assert_eq!(
        store.get_log_state().await.unwrap(),
        state(Some((3, 4)), Some((3, 4)))
    );
    assert!(store.try_get_log_entries(..).await.unwrap().is_empty());
    append_range(&mut store, 4, 5..=6).await;
    drop(store);

    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.get_log_state().await.unwrap(),
        state(Some((3, 4)), Some((4, 6)))
    );
    assert_eq!(
        store.try_get_log_entries(..).await.unwrap(),
        vec![ent(4, 5), ent(4, 6)]
    );
}

#[tokio::test]
async fn truncate_right_after_unflushed_append() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let done = Arc::new(Mutex::new(Vec::new()));
    let d = done.clone();
    store
        .append_with_callback((1..=10).map(|i| ent(1, i)), move |r| {
            d.lock().unwrap().push(r.is_ok())
        })
        .unwrap();
    // Readable before it is durable.
    assert_eq!(store.try_get_log_entries(..).await.unwrap().len(), 10);
    store.truncate(log_id(1, 4)).await.unwrap();
    // The append completed (in order, before the truncate) and the truncate applied after it.
    assert_eq!(*done.lock().unwrap(), vec![true]);
    assert_eq!(
        indices(&store.try_get_log_entries(..).await.unwrap()),
        vec![1, 2, 3]
    );
    assert_eq!(
        store.get_log_state().await.unwrap(),
        state(None, Some((1, 3)))
    );
}

#[tokio::test]
async fn purge_edge_cases() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    append_range(&mut store, 1, 0..=10).await;

    store.purge(log_id(1, 0)).await.unwrap();
    assert_eq!(
        store.get_log_state().await.unwrap(),
        state(Some((1, 0)), Some((1, 10)))
    );
    store.purge(log_id(1, 5)).await.unwrap();
    // Purging backwards is a no-op.
    store.purge(log_id(1, 3)).await.unwrap();
    assert_eq!(
        store.get_log_state().await.unwrap(),
        state(Some((1, 5)), Some((1, 10)))
    );
    assert_eq!(
        indices(&store.try_get_log_entries(..).await.unwrap()),
        vec![6, 7, 8, 9, 10]
    );

    // Purging exactly the last entry, then past the end (snapshot installed ahead of the log).
    store.purge(log_id(1, 10)).await.unwrap();
    assert_eq!(
        store.get_log_state().await.unwrap(),
        state(Some((1, 10)), Some((1, 10)))
    );
    store.purge(log_id(2, 50)).await.unwrap();
    assert_eq!(
        store.get_log_state().await.unwrap(),
        state(Some((2, 50)), Some((2, 50)))
    );
    assert!(store.try_get_log_entries(..).await.unwrap().is_empty());

    // The log continues after the purge point.
    append_range(&mut store, 2, 51..=53).await;
    assert_eq!(
        store.get_log_state().await.unwrap(),
        state(Some((2, 50)), Some((2, 53)))
    );
    drop(store);

    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.get_log_state().await.unwrap(),
        state(Some((2, 50)), Some((2, 53)))
    );
    assert_eq!(
        indices(&store.try_get_log_entries(..).await.unwrap()),
        vec![51, 52, 53]
    );
}

#[tokio::test]
async fn purge_of_unflushed_entries_and_extreme_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store
        .append_with_callback((1..=10).map(|i| ent(1, i)), |_| {})
        .unwrap();
    store.purge(log_id(1, 7)).await.unwrap();
    // Visible at once even though the deletion is queued.
    assert_eq!(
        indices(&store.try_get_log_entries(..).await.unwrap()),
        vec![8, 9, 10]
    );
    store.flush().await.unwrap();
    assert_eq!(
        indices(&store.try_get_log_entries(..).await.unwrap()),
        vec![8, 9, 10]
    );

    // The largest possible index must not overflow anywhere.
    store.purge(log_id(1, u64::MAX)).await.unwrap();
    assert_eq!(
        store.get_log_state().await.unwrap(),
        state(Some((1, u64::MAX)), Some((1, u64::MAX)))
    );
    assert!(store.try_get_log_entries(..).await.unwrap().is_empty());
    drop(store);
    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.get_log_state().await.unwrap(),
        state(Some((1, u64::MAX)), Some((1, u64::MAX)))
    );
}

#[tokio::test]
async fn appends_complete_in_issue_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    const N: u64 = 2000;
    for i in 0..N {
        let order = order.clone();
        // Issued without waiting, like openraft does: group commit batches them.
        store
            .append_with_callback([ent(1, i)], move |r| {
                r.unwrap();
                order.lock().unwrap().push(i)
            })
            .unwrap();
        if i % 500 == 0 {
            store.save_committed(Some(log_id(1, i))).await.unwrap();
        }
    }
    // Everything is readable before anything was awaited.
    assert_eq!(
        store.try_get_log_entries(..).await.unwrap().len(),
        N as usize
    );
    store.flush().await.unwrap();
    assert_eq!(*order.lock().unwrap(), (0..N).collect::<Vec<_>>());
    assert_eq!(
        store.get_log_state().await.unwrap(),
        state(None, Some((1, N - 1)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    const TASKS: u64 = 16;
    const PER_TASK: u64 = 50;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let mut store = store.clone();
        handles.push(tokio::spawn(async move {
            for k in 0..PER_TASK {
                let i = t * PER_TASK + k;
                store.blocking_append([ent(1, i)]).await.unwrap();
                // Once acknowledged, it is readable.
                let got = store.try_get_log_entries(i..=i).await.unwrap();
                assert_eq!(got, vec![ent(1, i)]);
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let mut store = store;
    let all = store.try_get_log_entries(..).await.unwrap();
    assert_eq!(indices(&all), (0..TASKS * PER_TASK).collect::<Vec<_>>());
}

#[tokio::test]
async fn reopen_after_many_appends() {
    let dir = tempfile::tempdir().unwrap();
    const N: u64 = 30_000;
    {
        let mut store = Store::open(dir.path()).unwrap();
        let mut next = 1;
        while next <= N {
            let end = (next + 249).min(N);
            store
                .append_with_callback((next..=end).map(|i| ent(1, i)), |r| r.unwrap())
                .unwrap();
            next = end + 1;
        }
        store.purge(log_id(1, 20_000)).await.unwrap();
        store.flush().await.unwrap();
    }
    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.get_log_state().await.unwrap(),
        state(Some((1, 20_000)), Some((1, N)))
    );
    let tail = store.try_get_log_entries(N - 2..).await.unwrap();
    assert_eq!(tail, vec![ent(1, N - 2), ent(1, N - 1), ent(1, N)]);
    let all = store.try_get_log_entries(..).await.unwrap();
    assert_eq!(indices(&all), (20_001..=N).collect::<Vec<_>>());
    // And it keeps going.
    append_range(&mut store, 2, N + 1..=N + 5).await;
    assert_eq!(
        store.get_log_state().await.unwrap(),
        state(Some((1, 20_000)), Some((2, N + 5)))
    );
}

#[tokio::test]
async fn unknown_format_version_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    {
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        let meta = db
            .keyspace("meta", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        meta.insert("format", [99u8]).unwrap();
        db.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    match Store::open(dir.path()) {
        Err(LogStoreError::Format { found }) => assert_eq!(found, vec![99]),
        other => panic!("expected Format error, got {other:?}"),
    }
}
