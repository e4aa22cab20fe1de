//! Services on real networks: NickServ and ChanServ on three nodes, a NickServ upgrade
//! while accounts exist and clients talk, a panicking NickServ that does not disturb the
//! IRC logic, a plugin rollback; and SASL PLAIN through the bridge, as a client that logs
//! in on connect does it.

mod harness;

use std::time::Duration;

use harness::{
    IrcClient, TestBridge, TestCluster, TestNode, WAIT, cli_ok, same_output_everywhere, tempdir,
    user,
};
use unsplit_irc_component::fixtures;

/// The plugin that answers `FIXTURE VERSION` (only the v2 fixture knows it).
async fn nickserv_version(
    http: &harness::Http,
    s: &harness::Session,
    stream: &mut harness::Stream,
) -> String {
    assert_eq!(http.post(s, "PRIVMSG NickServ :FIXTURE VERSION").await, 200);
    stream
        .lines_until("NickServ", WAIT)
        .await
        .pop()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_survive_a_plugin_upgrade_and_a_panicking_plugin_disturbs_nothing() {
    let _guard = harness::exclusive().await;
    let dir = tempdir();
    let cluster = TestCluster::start(dir.path(), 3).await;
    let nodes: Vec<&TestNode> = cluster.nodes.iter().collect();
    let ca = cluster.cert.clone();
    let http = cluster.http(1).await;
    let (alice, mut alice_stream) = user(&http, "alice").await;
    let (bob, mut bob_stream) = user(&http, "bob").await;

    // An account: the leader hashes the password off the apply path and commits it.
    assert_eq!(
        http.post(&alice, "PRIVMSG NickServ :REGISTER hunter22")
            .await,
        200
    );
    let lines = alice_stream.lines_until(" 900 alice ", WAIT).await;
    assert!(
        lines
            .last()
            .unwrap()
            .contains("You are now logged in as alice"),
        "{lines:?}"
    );
    // ChanServ: alice created #c, so she is op and may register it.
    assert_eq!(http.post(&alice, "CS REGISTER #c").await, 200);
    let reply = alice_stream
        .lines_until("ChanServ", WAIT)
        .await
        .pop()
        .unwrap();
    assert!(
        reply.contains("#c") && reply.contains("registered"),
        "{reply}"
    );
    let before = nickserv_version(&http, &alice, &mut alice_stream).await;
    assert!(before.contains("Unknown command"), "{before}");

    // Upgrade NickServ with the CLI while bob talks.
    let file = dir.path().join("nickserv-v2.wasm");
    std::fs::write(&file, fixtures::NICKSERV_V2).unwrap();
    let talk = {
        let http = cluster.http(2).await;
        let bob = bob.clone();
        tokio::spawn(async move {
            for i in 0..60 {
                assert_eq!(http.post(&bob, &format!("PRIVMSG #c :line {i}")).await, 200);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let out = cli_ok(&["module", "upload", file.to_str().unwrap()], &nodes, &ca);
    let hash = out
        .lines()
        .find_map(|l| l.strip_prefix("hash "))
        .expect("the upload prints the hash")
        .to_owned();
    let out = cli_ok(&["module", "activate", &hash], &nodes, &ca);
    assert!(out.contains("active from log index"), "{out}");
    talk.await.unwrap();
    // Every line of bob's arrived once, in order, across the upgrade.
    let heard = alice_stream.lines_until("PRIVMSG #c :line 59", WAIT).await;
    let said: Vec<usize> = heard
        .iter()
        .filter_map(|l| {
            l.rsplit_once("PRIVMSG #c :line ")
                .and_then(|(_, n)| n.parse().ok())
        })
        .collect();
    assert_eq!(said, (0..60).collect::<Vec<_>>());
    // The new version runs, and the account is intact: bob can log in to it.
    let after = nickserv_version(&http, &alice, &mut alice_stream).await;
    assert!(after.contains("fixture-v2"), "{after}");
    assert_eq!(http.post(&bob, "NS IDENTIFY alice hunter22").await, 200);
    let lines = bob_stream.lines_until(" 900 bob ", WAIT).await;
    assert!(
        lines.last().unwrap().contains("logged in as alice"),
        "{lines:?}"
    );
    let listed = cli_ok(&["module", "list"], &nodes, &ca);
    assert!(
        listed.contains("plugin nickserv: 0.1.0+fixture-v2"),
        "{listed}"
    );

    // A NickServ that panics: the sender is told, the plugin is reset, nobody else notices.
    let file = dir.path().join("nickserv-panic.wasm");
    std::fs::write(&file, fixtures::NICKSERV_PANIC).unwrap();
    let out = cli_ok(&["module", "upload", file.to_str().unwrap()], &nodes, &ca);
    let panicky = out
        .lines()
        .find_map(|l| l.strip_prefix("hash "))
        .unwrap()
        .to_owned();
    cli_ok(&["module", "activate", &panicky], &nodes, &ca);
    assert_eq!(
        http.post(&alice, "PRIVMSG NickServ :FIXTURE PANIC").await,
        200
    );
    let notice = alice_stream
        .lines_until("failed on your request", WAIT)
        .await
        .pop()
        .unwrap();
    assert!(
        notice.contains("NickServ") && notice.contains("Panic"),
        "{notice}"
    );
    assert_eq!(http.post(&alice, "PRIVMSG #c :the core goes on").await, 200);
    bob_stream.lines_until("the core goes on", WAIT).await;
    assert_eq!(http.post(&alice, "NS INFO alice").await, 200);
    let info = alice_stream
        .lines_until("End of information on alice", WAIT)
        .await;
    assert!(info.iter().any(|l| l.contains("Registered:")), "{info:?}");
    // Every node recorded the same plugin trap and rejected no entry.
    let v = harness::rejected_everywhere(&cluster).await;
    assert_eq!(
        (v["Total"].as_u64(), v["PluginFailures"].as_u64()),
        (Some(0), Some(1)),
        "{v}"
    );
    assert_eq!(v["Entries"][0]["plugin"], "nickserv", "{v}");
    let metrics = cluster
        .http(0)
        .await
        .private_get("/metrics", "text/plain")
        .await;
    assert!(
        metrics.body.contains("unsplit_plugin_traps_total 1"),
        "{}",
        metrics.body
    );

    // Roll NickServ back (to v2), by name.
    let out = cli_ok(&["module", "rollback", "nickserv"], &nodes, &ca);
    assert!(out.contains("fixture-v2"), "{out}");
    let back = nickserv_version(&http, &alice, &mut alice_stream).await;
    assert!(back.contains("fixture-v2"), "{back}");
    same_output_everywhere(&cluster).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sasl_plain_through_the_bridge() {
    let _guard = harness::exclusive().await;
    let dir = tempdir();
    let node = TestNode::start_single(&dir.path().join("n1"));
    let http = harness::Http::new(&node).await;
    http.wait_ready().await;
    let bridge = TestBridge::start(&[&node], &node.ca(), &dir.path().join("bridge.log"));

    // Register an account the ordinary way.
    let mut carol = IrcClient::connect(&bridge.irc).await;
    carol.register("carol").await;
    carol.send("PRIVMSG NickServ :REGISTER s3cret-pw").await;
    carol.until(" 900 carol ", WAIT).await;
    carol.send("QUIT :bye").await;

    // Log in on connect with SASL PLAIN, as irssi or WeeChat do.
    let mut again = IrcClient::connect(&bridge.irc).await;
    again.send("CAP LS 302").await;
    let ls = again.until(" CAP * LS ", WAIT).await.pop().unwrap();
    assert!(ls.contains("sasl=PLAIN"), "{ls}");
    again.send("NICK carol2").await;
    again.send("USER carol 0 * :Carol").await;
    again.send("CAP REQ :sasl").await;
    again.until(" ACK :sasl", WAIT).await;
    again.send("AUTHENTICATE PLAIN").await;
    again.until("AUTHENTICATE +", WAIT).await;
    // base64("\0carol\0s3cret-pw")
    again.send("AUTHENTICATE AGNhcm9sAHMzY3JldC1wdw==").await;
    let lines = again.until(" 903 ", WAIT).await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" 900 ") && l.contains("carol")),
        "{lines:?}"
    );
    again.send("CAP END").await;
    again.until(" 001 carol2 ", WAIT).await;
    again.sync(WAIT).await;
    again.send("WHOIS carol2").await;
    let whois = again.until(" 318 ", WAIT).await;
    assert!(
        whois
            .iter()
            .any(|l| l.contains(" 330 carol2 carol2 carol :is logged in as")),
        "{whois:?}"
    );

    // A wrong password fails cleanly, and the client can still register without SASL.
    let mut wrong = IrcClient::connect(&bridge.irc).await;
    wrong.send("CAP REQ :sasl").await;
    wrong.until(" ACK :sasl", WAIT).await;
    wrong.send("AUTHENTICATE PLAIN").await;
    wrong.until("AUTHENTICATE +", WAIT).await;
    // base64("\0carol\0wrong")
    wrong.send("AUTHENTICATE AGNhcm9sAHdyb25n").await;
    wrong.until(" 904 ", WAIT).await;
    wrong.send("CAP END").await;
    wrong.register("dave").await;
}
