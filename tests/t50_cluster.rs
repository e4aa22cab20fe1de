//! Three node processes: joining, follower forwarding, failover under IRC clients,
//! catching up after a restart, removing a peer (and refusing when it would cost the
//! quorum), and a rolling restart while clients keep talking.

mod harness;

use std::time::{Duration, Instant};

use harness::{IrcClient, TestBridge, TestCluster, tempdir};
use unsplit_host::ops::{Ops, Target};

const WAIT: Duration = Duration::from_secs(30);

fn ops(cluster: &TestCluster) -> Ops {
    let servers = cluster.nodes.iter().map(|n| n.addr.clone()).collect();
    Ops::new(Target {
        servers,
        password: harness::PASSWORD.into(),
        ca: cluster.cert.clone(),
    })
    .expect("ops")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_a_follower_are_forwarded_to_the_leader() {
    let _serial = harness::exclusive().await;
    let tmp = tempdir();
    let cluster = TestCluster::start(tmp.path(), 3).await;
    let leader = cluster.wait_converged(WAIT).await;
    let follower = cluster.nodes.iter().position(|n| n.addr != leader).unwrap();
    let http = cluster.http(follower).await;
    let s = http.create_session().await;
    let reply = http.post_with_id(&s, "NICK viaf", 1000).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let location = reply
        .headers
        .get("content-location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert_eq!(
        location,
        format!("//{leader}/robustirc/v1/{}/message", s.id)
    );
    http.post(&s, "USER viaf 0 * :v").await;
    // The follower serves the session's stream itself.
    let mut stream = http.stream(&s, "0.0").await;
    stream.lines_until(" 001 viaf ", WAIT).await;

    // A configuration edit through the follower keeps its revision header both ways.
    const SECRET: &str = "t50-trusted-bridge-secret-0123456789";
    http.set_config_key("MaxSessionsPerAddress", "1").await;
    // Read your writes: the follower answered the edit only once it had applied it.
    let r = http.private_get("/config", "application/toml").await;
    assert!(r.body.contains("MaxSessionsPerAddress = 1"), "{r:?}");
    http.edit_config(|c| format!("{c}\n[TrustedBridges]\n{SECRET:?} = \"t50\"\n"))
        .await;
    // A create forwarded by the follower counts the client's address, not the follower's:
    // two clients of a trusted bridge get a session each, the same client no second one.
    let via = |addr: &'static str| {
        let http = http.clone();
        async move {
            http.try_create_session(&[("X-Bridge-Auth", SECRET), ("X-Forwarded-For", addr)])
                .await
        }
    };
    via("192.0.2.1").await.expect("first client");
    via("192.0.2.2").await.expect("second client");
    let r = via("192.0.2.1").await.expect_err("the first client again");
    assert_eq!(r.status, 429, "{r:?}");
    assert!(r.body.contains("192.0.2.1"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_survive_the_leader_being_killed() {
    let _serial = harness::exclusive().await;
    let tmp = tempdir();
    let mut cluster = TestCluster::start(tmp.path(), 3).await;
    let nodes: Vec<&harness::TestNode> = cluster.nodes.iter().collect();
    let bridge = TestBridge::start(&nodes, &cluster.cert, &tmp.path().join("bridge.log"));
    let mut alice = IrcClient::connect(&bridge.irc).await;
    let mut bob = IrcClient::connect(&bridge.irc).await;
    alice.register("alice").await;
    bob.register("bob").await;
    alice.send("JOIN #ha").await;
    alice.sync(WAIT).await;
    bob.send("JOIN #ha").await;
    bob.sync(WAIT).await;

    for i in 1..=5 {
        alice.send(&format!("PRIVMSG #ha :line {i}")).await;
    }
    alice.sync(WAIT).await;
    let leader = cluster.wait_converged(WAIT).await;
    let victim = cluster.index_of(&leader);
    let killed = Instant::now();
    cluster.nodes[victim].kill();
    for i in 6..=10 {
        alice.send(&format!("PRIVMSG #ha :line {i}")).await;
    }
    alice.sync(Duration::from_secs(60)).await;
    let resumed = killed.elapsed();
    let heard = bob.sync(Duration::from_secs(60)).await;
    let lines: Vec<&str> = heard
        .iter()
        .filter(|l| l.contains("PRIVMSG #ha :line "))
        .map(|l| l.rsplit(':').next().unwrap_or(""))
        .collect();
    let expected: Vec<String> = (1..=10).map(|i| format!("line {i}")).collect();
    assert_eq!(lines, expected, "{heard:#?}\n{}", bridge.log());
    eprintln!("writes resumed {resumed:?} after the leader was killed");

    // The killed node comes back and catches up with the others.
    cluster.nodes[victim].restart();
    let new_leader = cluster.wait_converged(Duration::from_secs(60)).await;
    assert_ne!(new_leader, leader, "a new leader was elected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removepeer_refuses_to_break_the_quorum() {
    let _serial = harness::exclusive().await;
    let tmp = tempdir();
    let mut cluster = TestCluster::start(tmp.path(), 3).await;
    // A line every 200 ms for the whole restart: more than the throttle lets through.
    cluster.http(0).await.no_throttle().await;
    let ops = ops(&cluster);
    let leader = cluster.wait_converged(WAIT).await;
    let followers: Vec<usize> = (0..3)
        .filter(|&i| cluster.nodes[i].addr != leader)
        .collect();

    // With one follower down, removing the other would leave 1 of 2 voters: refused.
    cluster.nodes[followers[0]].kill();
    let refused = ops.removepeer(&cluster.nodes[followers[1]].addr).await;
    let message = refused.expect_err("removal must be refused").to_string();
    assert!(message.contains("no quorum"), "{message}");

    // Removing the dead one is fine: the leader and the live follower are a quorum.
    let removed = ops
        .removepeer(&cluster.nodes[followers[0]].addr)
        .await
        .expect("remove the dead node");
    assert!(removed.contains("removed"), "{removed}");
    let dead = cluster.nodes.remove(followers[0]);
    drop(dead);
    cluster.wait_converged(WAIT).await;
    let statuses = ops.statuses().await;
    assert!(
        unsplit_host::ops::healthy(&statuses).is_ok(),
        "{}",
        unsplit_host::ops::render(&statuses)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_keeps_serving() {
    let _serial = harness::exclusive().await;
    let tmp = tempdir();
    let mut cluster = TestCluster::start(tmp.path(), 3).await;
    // A line every 200 ms for the whole restart: more than the throttle lets through.
    cluster.http(0).await.no_throttle().await;
    let ops = ops(&cluster);
    let nodes: Vec<&harness::TestNode> = cluster.nodes.iter().collect();
    let bridge = TestBridge::start(&nodes, &cluster.cert, &tmp.path().join("bridge.log"));
    let mut alice = IrcClient::connect(&bridge.irc).await;
    alice.register("roller").await;
    alice.send("JOIN #rr").await;
    alice.sync(WAIT).await;

    // A supervisor: start nodes again when they quit; meanwhile the restart runs.
    let restart = tokio::spawn(async move {
        ops.rolling_restart(Duration::from_secs(90), |line| eprintln!("{line}"))
            .await
            .map_err(|e| e.to_string())
    });
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut sent = 0;
    while !restart.is_finished() {
        for node in &mut cluster.nodes {
            if node.exited() {
                node.restart();
            }
        }
        sent += 1;
        alice.send(&format!("TOPIC #rr :topic {sent}")).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(Instant::now() < deadline, "rolling restart did not finish");
    }
    restart.await.expect("join").expect("rolling restart");
    let lines = alice.sync(Duration::from_secs(60)).await;
    let topics: Vec<&str> = lines
        .iter()
        .filter(|l| l.contains(" TOPIC #rr :"))
        .map(|l| l.rsplit(':').next().unwrap_or(""))
        .collect();
    let expected: Vec<String> = (1..=sent).map(|i| format!("topic {i}")).collect();
    assert_eq!(
        topics, expected,
        "every line arrived once, in order, across the restarts"
    );
}
