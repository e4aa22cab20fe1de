//! Acknowledged writes survive a process abort (no `Drop`, no final flush): the child process
//! appends, reports what was acknowledged, and calls `std::process::abort()`; the parent reopens.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Store, ent};
use openraft::storage::{RaftLogReader, RaftLogStorage};
use openraft::{RaftLogId, Vote};

const ENV: &str = "UNSPLIT_LOGSTORE_CRASH_DIR";

/// The child half: does nothing unless started by `acknowledged_writes_survive_abort`.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(ENV) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut store = Store::open(Path::new(&dir)).unwrap();
        store.save_vote(&Vote::new(7, 1)).await.unwrap();
        let acked = Arc::new(AtomicU64::new(0));
        for i in 1..=3000u64 {
            let acked = acked.clone();
            store
                .append_with_callback([ent(1, i)], move |r| {
                    r.unwrap();
                    acked.store(i, Ordering::SeqCst);
                })
                .unwrap();
        }
        while acked.load(Ordering::SeqCst) < 1000 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Callbacks run in order, so everything up to `acked` is durable.
        println!("ACKED {}", acked.load(Ordering::SeqCst));
        std::process::abort();
    });
}

#[tokio::test]
async fn acknowledged_writes_survive_abort() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(ENV, dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "child should have aborted");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let acked: u64 = stdout
        .lines()
        .find_map(|l| l.split_once("ACKED ").map(|(_, n)| n))
        .unwrap_or_else(|| panic!("no ACKED line in child output: {stdout}"))
        .trim()
        .parse()
        .unwrap();

    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(7, 1)));
    let entries = store.try_get_log_entries(..).await.unwrap();
    // A contiguous prefix that contains at least everything acknowledged.
    assert!(entries.len() as u64 >= acked, "{} < {acked}", entries.len());
    for (k, e) in entries.iter().enumerate() {
        assert_eq!(e.get_log_id().index, k as u64 + 1);
        assert_eq!(*e, ent(1, k as u64 + 1));
    }
}
