//! A node killed with SIGKILL comes back from its data directory (snapshot + the log
//! after it) with the same state and the same output window.

mod harness;

use std::time::Duration;

use harness::{Http, TestNode, tempdir};

const WAIT: Duration = Duration::from_secs(10);

/// Every (id, line) the session can read from the start of its window.
async fn window(http: &Http, s: &harness::Session, until: &str) -> Vec<(String, String)> {
    let mut stream = http.stream(s, "0.0").await;
    let mut seen = Vec::new();
    while let Some((id, line)) = stream.next_line(WAIT).await {
        let done = line.ends_with(until);
        seen.push((id, line));
        if done {
            return seen;
        }
    }
    panic!("no {until:?} in {seen:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_snapshot_and_purge_restores_the_same_state() {
    let tmp = tempdir();
    let mut node = TestNode::start_single(&tmp.path().join("n1"));
    let http = Http::new(&node).await;
    http.wait_ready().await;

    let alice = http.create_session().await;
    let bob = http.create_session().await;
    for (s, nick) in [(&alice, "alice"), (&bob, "bob")] {
        http.post(s, &format!("NICK {nick}")).await;
        http.post(s, &format!("USER {nick} 0 * :{nick}")).await;
        http.post(s, "JOIN #keep").await;
    }
    http.post(&alice, "TOPIC #keep :kept across restarts").await;
    http.post(&alice, "MODE #keep +k sesame").await;

    // Snapshot and purge the log it covers, then write more after it.
    let r = http.private_post("/snapshot").await;
    assert_eq!(r.status, 200, "{r:?}");
    let status = http.status().await;
    let snapshot_index = status["SnapshotIndex"].as_u64().unwrap();
    assert!(
        snapshot_index > 0 && status["PurgedIndex"].as_u64().unwrap() > 0,
        "{status}"
    );
    http.post(&bob, "PRIVMSG #keep :after the snapshot").await;
    http.post(&alice, "PING before").await;
    let before = window(&http, &alice, ":before").await;

    node.kill();
    node.restart();
    http.wait_ready().await;
    let status = http.status().await;
    assert!(
        status["AppliedIndex"].as_u64().unwrap() > snapshot_index,
        "{status}"
    );

    // The same window, line for line, ids included.
    let after = window(&http, &alice, ":before").await;
    assert_eq!(before, after);

    // The same IRC state: sessions still authenticate, channel, topic and key survive.
    http.post(&alice, "TOPIC #keep").await;
    http.post(&alice, "MODE #keep").await;
    http.post(&alice, "NAMES #keep").await;
    http.post(&alice, "PING after").await;
    let lines = window(&http, &alice, ":after").await;
    let tail: Vec<&str> = lines
        .iter()
        .skip(before.len())
        .map(|(_, l)| l.as_str())
        .collect();
    assert!(
        tail.iter()
            .any(|l| l.ends_with("332 alice #keep :kept across restarts")),
        "{tail:#?}"
    );
    assert!(
        tail.iter()
            .any(|l| l.contains("324 alice #keep +knt sesame")),
        "{tail:#?}"
    );
    assert!(
        tail.iter()
            .any(|l| l.ends_with("353 alice = #keep :@alice bob")),
        "{tail:#?}"
    );
    assert!(!node.log().contains("panicked"), "{}", node.log());
}
