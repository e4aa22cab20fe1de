//! Two plain IRC clients through a bridge process to a node process: they register,
//! join, talk, change nick, part and quit; the node is SIGKILLed and restarted in the
//! middle of the conversation and both clients stay connected, every line arriving
//! exactly once and in order.

mod harness;

use std::time::Duration;

use harness::{Http, IrcClient, TestBridge, TestNode, tempdir};

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_survives_a_node_crash() {
    let tmp = tempdir();
    let mut node = TestNode::start_single(&tmp.path().join("n1"));
    let http = Http::new(&node).await;
    http.wait_ready().await;
    let bridge = TestBridge::start(&[&node], &node.ca(), &tmp.path().join("bridge.log"));

    let mut alice = IrcClient::connect(&bridge.irc).await;
    let mut bob = IrcClient::connect(&bridge.irc).await;
    alice.register("alice").await;
    bob.register("bob").await;
    alice.send("JOIN #chat").await;
    alice.sync(WAIT).await;
    bob.send("JOIN #chat").await;
    let joined = bob.sync(WAIT).await;
    let names = joined
        .iter()
        .find(|l| l.contains(" 353 bob = #chat :"))
        .expect("NAMES");
    let mut members: Vec<&str> = names
        .rsplit_once(" :")
        .map(|(_, m)| m.split(' ').collect())
        .unwrap_or_default();
    members.sort_unstable();
    assert_eq!(members, ["@alice", "bob"], "{joined:#?}");
    alice.sync(WAIT).await;

    // Talk before, during and after a crash of the (only) node.
    for i in 1..=5 {
        alice.send(&format!("PRIVMSG #chat :message {i}")).await;
    }
    alice.sync(WAIT).await;
    node.kill();
    for i in 6..=10 {
        alice.send(&format!("PRIVMSG #chat :message {i}")).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    node.restart();
    http.wait_ready().await;
    for i in 11..=15 {
        alice.send(&format!("PRIVMSG #chat :message {i}")).await;
    }
    alice.sync(Duration::from_secs(60)).await;
    let heard = bob.sync(Duration::from_secs(60)).await;
    let messages: Vec<&str> = heard
        .iter()
        .filter(|l| l.contains(" PRIVMSG #chat :message "))
        .map(|l| l.rsplit_once(" :").map(|(_, m)| m).unwrap_or(""))
        .collect();
    let expected: Vec<String> = (1..=15).map(|i| format!("message {i}")).collect();
    assert_eq!(
        messages,
        expected,
        "bob heard {heard:#?}\nbridge log:\n{}",
        bridge.log()
    );
    // The bridge told the clients about the outage, as NOTICEs, without disconnecting.
    assert!(
        heard
            .iter()
            .any(|l| l.contains("NOTICE") && l.to_lowercase().contains("unreachable")),
        "{heard:#?}"
    );

    // Nick change: both see it once.
    bob.send("NICK robert").await;
    let seen_by_bob = bob.sync(WAIT).await;
    let seen_by_alice = alice.sync(WAIT).await;
    let nick_line = ":bob!bob@";
    assert_eq!(
        seen_by_bob
            .iter()
            .filter(|l| l.starts_with(nick_line) && l.ends_with("NICK :robert"))
            .count(),
        1
    );
    assert_eq!(
        seen_by_alice
            .iter()
            .filter(|l| l.starts_with(nick_line) && l.ends_with("NICK :robert"))
            .count(),
        1
    );

    // Part, then quit: alice sees both, robert's connection closes after ERROR.
    bob.send("PART #chat :later").await;
    bob.sync(WAIT).await;
    bob.send("QUIT :bye").await;
    let last = bob.until("ERROR", WAIT).await;
    assert!(last.last().unwrap().contains("Quit: bye"), "{last:#?}");
    assert_eq!(
        bob.line(Duration::from_secs(10)).await,
        None,
        "the bridge closes after QUIT"
    );
    let seen = alice.sync(WAIT).await;
    assert!(
        seen.iter().any(|l| l.ends_with("PART #chat :later")),
        "{seen:#?}"
    );
    assert!(!node.log().contains("panicked"), "{}", node.log());
}
