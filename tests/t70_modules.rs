//! The module lifecycle on real networks: a hot swap and a rollback on three nodes under
//! traffic, messages of death on three nodes, and the canary on a recorded network.

mod harness;

use std::time::{Duration, Instant};

use bytes::Bytes;
use harness::{
    Http, Session, Stream, TestCluster, TestNode, WAIT, cli, cli_ok, same_output_everywhere,
    tempdir, user,
};
use unsplit_irc_component::fixtures;

async fn version(http: &Http, s: &Session, stream: &mut Stream) -> String {
    assert_eq!(http.post(s, "VERSION").await, 200);
    stream
        .lines_until(" 351 ", WAIT)
        .await
        .pop()
        .unwrap_or_default()
}

/// Every node's `GET /modules`, once all agree (bounded).
async fn modules_everywhere(cluster: &TestCluster) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut views = Vec::new();
        for i in 0..cluster.nodes.len() {
            let r = cluster
                .http(i)
                .await
                .private_get("/modules", "application/json")
                .await;
            views.push(serde_json::from_str::<serde_json::Value>(&r.body).unwrap_or_default());
        }
        if views.iter().all(|v| v["Active"] == views[0]["Active"]) {
            return views.swap_remove(0);
        }
        assert!(
            Instant::now() < deadline,
            "nodes disagree on the module: {views:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hot_swap_and_rollback_on_three_nodes_under_traffic() {
    let _guard = harness::exclusive().await;
    let dir = tempdir();
    let cluster = TestCluster::start(dir.path(), 3).await;
    let nodes: Vec<&TestNode> = cluster.nodes.iter().collect();
    let ca = cluster.cert.clone();
    let http = cluster.http(1).await;
    // The talker below sends 150 lines in a row.
    http.no_throttle().await;
    let (alice, mut alice_stream) = user(&http, "alice").await;
    let (_bob, mut bob_stream) = user(&http, "bob").await;
    let before = version(&http, &alice, &mut alice_stream).await;
    assert!(!before.contains("fixture-reply"), "{before}");

    let file = dir.path().join("reply.wasm");
    std::fs::write(&file, fixtures::REPLY).unwrap();
    let out = cli_ok(&["module", "upload", file.to_str().unwrap()], &nodes, &ca);
    let hash = out
        .lines()
        .find_map(|l| l.strip_prefix("hash "))
        .expect("hash line")
        .to_owned();

    // Traffic while the network switches.
    const N: usize = 150;
    let talker = {
        let (http, alice) = (http.clone(), alice.clone());
        tokio::spawn(async move {
            for n in 1..=N {
                assert_eq!(http.post(&alice, &format!("PRIVMSG #c :m{n}")).await, 200);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let out = cli_ok(&["module", "activate", &hash[..12]], &nodes, &ca);
    let index: u64 = out
        .split("log index ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no index in {out:?}"));
    talker.await.unwrap();

    // Bob heard every line once, in order: nothing lost or duplicated across the swap.
    let mut heard = Vec::new();
    while heard.len() < N {
        let (_, line) = bob_stream
            .next_line(WAIT)
            .await
            .unwrap_or_else(|| panic!("bob heard only {} lines", heard.len()));
        if let Some(m) = line.split(" PRIVMSG #c :").nth(1) {
            heard.push(m.to_owned());
        }
    }
    let expected: Vec<String> = (1..=N).map(|n| format!("m{n}")).collect();
    assert_eq!(heard, expected);

    // Every node switched at the same index; later replies come from the new version.
    let v = modules_everywhere(&cluster).await;
    assert_eq!(v["Active"]["hash"], hash.as_str());
    assert_eq!(v["Active"]["index"], index);
    let after = version(&http, &alice, &mut alice_stream).await;
    assert!(after.contains("fixture-reply"), "{after}");
    let list = cli_ok(&["module", "list"], &nodes, &ca);
    assert!(list.contains(&format!("since index {index}")), "{list}");

    // Rollback.
    let out = cli_ok(&["module", "rollback"], &nodes, &ca);
    assert!(out.contains("is active from log index"), "{out}");
    let v = modules_everywhere(&cluster).await;
    assert_ne!(v["Active"]["hash"], hash.as_str());
    let rolled = version(&http, &alice, &mut alice_stream).await;
    assert_eq!(rolled, before, "the same reply as before the swap");
    // Activating the active module again is refused, and says so.
    let (code, _, err) = cli(&["module", "activate", "active"], &nodes, &ca);
    assert_ne!(code, 0);
    assert!(err.contains("already active"), "{err}");
    same_output_everywhere(&cluster).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_of_death_are_rejected_on_every_node_alike() {
    let _guard = harness::exclusive().await;
    let dir = tempdir();
    let cluster = TestCluster::start(dir.path(), 3).await;
    let http = cluster.http(0).await;
    let (alice, mut alice_stream) = user(&http, "alice").await;
    let (_bob, mut bob_stream) = user(&http, "bob").await;
    // Something that is not a logic component is refused at the door, with the reason.
    let r = http
        .private_post_body("/module", Bytes::from_static(b"\0asm not really"))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("not a usable unsplit component"), "{r:?}");
    // Limits that stop the loop and the allocation quickly, even on a busy machine; no
    // throttle between the messages of death.
    http.edit_config(|c| {
        c.replace("FuelPerEntry = 2000000000", "FuelPerEntry = 200000000")
            .replace("MemoryMiB = 512", "MemoryMiB = 64")
            .replace(
                "PostMessageCooloff = \"500ms\"",
                "PostMessageCooloff = \"0\"",
            )
    })
    .await;
    let mut index = 0;
    for (bytes, magic, kind) in [
        (fixtures::PANIC, "FIXTURE PANIC", "Panic"),
        (fixtures::LOOP, "FIXTURE LOOP", "OutOfFuel"),
        (fixtures::ALLOC, "FIXTURE ALLOC", "OutOfMemory"),
    ] {
        // Upload and activate through the private API of a follower or the leader.
        http.upload_and_activate(bytes).await;

        assert_eq!(http.post(&alice, magic).await, 200);
        let notice = alice_stream
            .lines_until("rejected", WAIT)
            .await
            .pop()
            .unwrap();
        assert!(notice.contains(kind), "{magic}: {notice}");
        // The same session goes on, and the others never noticed.
        assert_eq!(http.post(&alice, "PRIVMSG #c :still here").await, 200);
        let line = bob_stream
            .lines_until("still here", WAIT)
            .await
            .pop()
            .unwrap();
        assert!(line.contains("alice"), "{line}");
        index += 1;
    }
    // Every node is up, kept the same rejected entries, and has the same state.
    let v = harness::rejected_everywhere(&cluster).await;
    assert_eq!(v["Total"], index, "{v}");
    let status = cluster.http(2).await.private_get("/", "text/html").await;
    assert!(
        status.body.contains("FIXTURE ALLOC"),
        "the status page lists it"
    );
    let metrics = cluster
        .http(2)
        .await
        .private_get("/metrics", "text/plain")
        .await;
    assert!(
        metrics
            .body
            .contains("unsplit_rejected_entries_by_kind_total{kind=\"out_of_fuel\"} 1"),
        "{}",
        metrics.body
    );
    same_output_everywhere(&cluster).await;
}

/// Lines of the canary's text summary that name a divergent input: `#index session s
/// input "…"`.
fn divergent_inputs(summary: &str) -> Vec<String> {
    summary
        .lines()
        .filter(|l| l.starts_with('#') && l.contains(" input "))
        .map(|l| {
            l.split(" input ")
                .nth(1)
                .unwrap()
                .trim_matches('"')
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_canary_reports_exactly_the_changed_outputs() {
    let _guard = harness::exclusive().await;
    let dir = tempdir();
    let mut node = TestNode::start_single(&dir.path().join("node"));
    let http = Http::new(&node).await;
    http.wait_ready().await;
    let ca = node.ca();
    let (alice, mut alice_stream) = user(&http, "alice").await;
    // The recording starts from a snapshot: alice's registration is inside it.
    let r = http.private_post("/snapshot").await;
    assert_eq!(r.status, 200, "{r:?}");
    let (bob, mut bob_stream) = user(&http, "bob").await;
    for n in 0..10 {
        assert_eq!(http.post(&alice, &format!("PRIVMSG #c :n{n}")).await, 200);
    }
    version(&http, &alice, &mut alice_stream).await;
    version(&http, &alice, &mut alice_stream).await;
    assert_eq!(http.post(&bob, "VERSION").await, 200);
    assert_eq!(http.post(&bob, "PING done").await, 200);
    bob_stream.lines_until("PONG", WAIT).await;

    let file = dir.path().join("reply.wasm");
    std::fs::write(&file, fixtures::REPLY).unwrap();
    let html = dir.path().join("report.html");
    let nodes = [&node];
    let expected = vec![
        "USER bob 0 * :bob".to_owned(),
        "VERSION".into(),
        "VERSION".into(),
        "VERSION".into(),
    ];
    let (code, out, err) = cli(
        &[
            "canary",
            "--old",
            "active",
            "--new",
            file.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
        &nodes,
        &ca,
    );
    assert_eq!(code, 1, "divergence exits 1:\n{out}\n{err}");
    assert!(out.contains("DIVERGENCE: 4 of"), "{out}");
    assert_eq!(divergent_inputs(&out), expected, "{out}");
    let report = std::fs::read_to_string(&html).unwrap();
    assert!(report.contains("Canary report") && report.contains("+fixture-reply"));
    assert_eq!(
        report.matches("<tr><td>").count(),
        4,
        "four divergence rows"
    );

    let (code, out, _) = cli(
        &["canary", "--old", "builtin", "--new", "active"],
        &nodes,
        &ca,
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no divergence"), "{out}");

    // From the stopped node's data directory: the same answer, nothing written.
    node.kill();
    let nodes: [&TestNode; 0] = [];
    let data = dir.path().join("node");
    let (code, out, err) = cli(
        &[
            "canary",
            "--data-dir",
            data.to_str().unwrap(),
            "--old",
            "builtin",
            "--new",
            file.to_str().unwrap(),
        ],
        &nodes,
        &ca,
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(divergent_inputs(&out), expected, "{out}");
    let (code, _, err) = cli(
        &[
            "canary",
            "--data-dir",
            "/nonexistent",
            "--old",
            "builtin",
            "--new",
            "builtin",
        ],
        &nodes,
        &ca,
    );
    assert_eq!(code, 2, "errors exit 2: {err}");
    assert!(err.contains("not a node's data directory"), "{err}");
}
