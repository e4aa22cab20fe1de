//! The RobustSession client against the in-process test network: failover, backoff,
//! Content-Location, 404, lastseen resume, watchdog, connectivity events.

mod support;

use std::time::Duration;

use support::{Mode, TestNetwork, within};
use unsplit_bridge::client::{
    CloseReason, Error, Event, Messages, Network, NetworkConfig, Session,
};
use unsplit_bridge::protocol::{MessageId, PostMessage};

fn network(net: &TestNetwork, f: impl FnOnce(&mut NetworkConfig)) -> Network {
    let mut c = net.client_config();
    c.timeouts.reconnect_min = Duration::from_millis(10);
    c.timeouts.reconnect_max = Duration::from_millis(20);
    f(&mut c);
    Network::new(c).unwrap()
}

/// The next line, skipping connectivity events.
async fn next_line(m: &mut Messages) -> String {
    loop {
        match within(10, "next line", m.next()).await {
            Some(Event::Line(l)) => return l,
            Some(Event::Unreachable | Event::Restored) => {}
            other => panic!("expected a line, got {other:?}"),
        }
    }
}

async fn next_event(m: &mut Messages, secs: u64) -> Option<Event> {
    within(secs, "next event", m.next()).await
}

#[tokio::test]
async fn create_post_receive_and_headers() {
    let net = TestNetwork::start(1).await;
    let n = network(&net, |c| {
        c.bridge_auth = Some("s3cret".into());
    })
    .with_forwarded_for("192.0.2.7");
    let s = within(10, "create", Session::create(&n)).await.unwrap();
    assert!(s.id().starts_with("0x"));
    assert_eq!(s.prefix(), support::SERVER_NAME);
    let mut m = s.messages().unwrap();
    assert!(matches!(s.messages(), Err(Error::MessagesTaken)));
    within(10, "post", s.post("NICK alice")).await.unwrap();
    within(10, "post", s.post("PRIVMSG #c :hi")).await.unwrap();
    within(10, "post", s.post("PING barrier")).await.unwrap();
    assert_eq!(
        next_line(&mut m).await,
        ":test.net 001 alice :Welcome alice"
    );
    assert_eq!(
        next_line(&mut m).await,
        ":test.net NOTICE * :echo PRIVMSG #c :hi"
    );
    assert_eq!(next_line(&mut m).await, ":test.net PONG test.net :barrier");

    let records = net.records();
    assert!(records.len() >= 5, "{records:?}");
    for r in &records {
        let h = |name: &str| {
            r.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        assert!(h("user-agent").starts_with("unsplit-bridge/"), "{r:?}");
        assert_eq!(h("x-bridge-auth"), "s3cret");
        assert_eq!(h("x-forwarded-for"), "192.0.2.7");
        if r.path.ends_with("/session") {
            assert_eq!(h("x-session-auth"), "");
        } else {
            assert_eq!(h("x-session-auth").len(), 64);
        }
    }
    let post: PostMessage = serde_json::from_slice(
        &records
            .iter()
            .find(|r| r.path.ends_with("/message"))
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(post.data, "NICK alice");
    assert_eq!(
        post.client_message_id >> 32,
        u64::from(unsplit_bridge::client::fnv1a32(b"NICK alice"))
    );

    assert!(matches!(s.prepare("a\r\nb"), Err(Error::InvalidLine)));
    assert!(matches!(
        s.post(&"x".repeat(3000)).await,
        Err(Error::LineTooLong(_))
    ));
}

#[tokio::test]
async fn transport_errors_and_5xx_fail_over_and_back_off() {
    let net = TestNetwork::start(3).await;
    net.set_mode(0, Mode::Down);
    net.set_mode(1, Mode::Status(503));
    let n = network(&net, |_| {});
    let s = within(10, "create", Session::create(&n)).await.unwrap();
    for i in 0..10 {
        within(10, "post", s.post(&format!("SILENT {i}")))
            .await
            .unwrap();
    }
    let records = net.records();
    let on = |i: usize| records.iter().filter(|r| r.server == i).count();
    // The 503 server was asked once; its backoff (250–500 ms, longer than the ten
    // posts take) keeps it out of the rest.
    assert_eq!(on(1), 1, "{records:?}");
    assert_eq!(on(2), 11);
    assert_eq!(net.committed(s.id()).len(), 10);
    // Writes stick to the server that answered.
    assert_eq!(n.servers()[0], net.addr(2));
}

#[tokio::test]
async fn content_location_moves_the_leader_to_the_front() {
    let net = TestNetwork::start(3).await;
    net.set_leader(0, Some(net.addr(2)));
    let n = network(&net, |_| {});
    let s = within(10, "create", Session::create(&n)).await.unwrap();
    assert_eq!(n.servers()[0], net.addr(2));
    for i in 0..5 {
        within(10, "post", s.post(&format!("SILENT {i}")))
            .await
            .unwrap();
    }
    let records = net.records();
    assert_eq!(records[0].server, 0);
    assert!(records[1..].iter().all(|r| r.server == 2), "{records:?}");
}

#[tokio::test]
async fn lost_response_is_retried_with_the_same_id_and_committed_once() {
    let net = TestNetwork::start(2).await;
    let n = network(&net, |_| {});
    let s = within(10, "create", Session::create(&n)).await.unwrap();
    // Create went to server 0, so writes go there first.
    net.fail_after_commit(0, 1);
    within(10, "post", s.post("SILENT once")).await.unwrap();
    let posts: Vec<_> = net
        .records()
        .into_iter()
        .filter(|r| r.path.ends_with("/message"))
        .collect();
    assert_eq!(posts.len(), 2);
    assert_ne!(posts[0].server, posts[1].server);
    assert_eq!(posts[0].body, posts[1].body);
    assert_eq!(net.committed(s.id()), ["SILENT once"]);
}

#[tokio::test]
async fn concurrent_posts_are_serialised() {
    let net = TestNetwork::start(1).await;
    let n = network(&net, |_| {});
    let s = within(10, "create", Session::create(&n)).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.post(&format!("SILENT {i}")).await })
        })
        .collect();
    for t in tasks {
        within(10, "post", t).await.unwrap().unwrap();
    }
    assert_eq!(net.committed(s.id()).len(), 20);
}

#[tokio::test]
async fn backoff_bounds_the_retry_rate_and_the_overall_timeout_holds() {
    let net = TestNetwork::start(1).await;
    let n = network(&net, |c| c.timeouts.request = Duration::from_secs(3));
    let s = within(10, "create", Session::create(&n)).await.unwrap();
    net.set_mode(0, Mode::Status(500));
    let started = std::time::Instant::now();
    let r = within(10, "post", s.post("SILENT x")).await;
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    assert!(started.elapsed() >= Duration::from_secs(3));
    let attempts = net
        .records()
        .iter()
        .filter(|r| r.path.ends_with("/message"))
        .count();
    // Immediately, then after each backoff (doubling from 250–500 ms, plus spread):
    // a few attempts in 3 s, never a busy loop.
    assert!((1..=3).contains(&attempts), "{attempts}");
}

#[tokio::test]
async fn permanent_status_is_returned() {
    let net = TestNetwork::start(2).await;
    let n = network(&net, |_| {});
    let s = within(10, "create", Session::create(&n)).await.unwrap();
    net.set_mode(0, Mode::Status(403));
    net.set_mode(1, Mode::Status(403));
    match within(10, "post", s.post("SILENT x")).await {
        Err(Error::Status { status, .. }) => assert_eq!(status, 403),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn killed_session_is_404_after_its_last_lines() {
    let net = TestNetwork::start(2).await;
    let n = network(&net, |_| {});
    let s = within(10, "create", Session::create(&n)).await.unwrap();
    let mut m = s.messages().unwrap();
    within(10, "post", s.post("NICK bob")).await.unwrap();
    assert_eq!(next_line(&mut m).await, ":test.net 001 bob :Welcome bob");
    net.kill(s.id(), "ERROR :Closing Link: killed by oper");
    assert_eq!(
        next_line(&mut m).await,
        "ERROR :Closing Link: killed by oper"
    );
    assert_eq!(
        next_event(&mut m, 10).await,
        Some(Event::Closed(CloseReason::NoSuchSession))
    );
    assert_eq!(next_event(&mut m, 10).await, None);
    assert!(matches!(
        within(10, "post", s.post("SILENT x")).await,
        Err(Error::NoSuchSession)
    ));
}

#[tokio::test]
async fn delete_delivers_the_last_lines_then_closes() {
    let net = TestNetwork::start(1).await;
    let n = network(&net, |_| {});
    let s = within(10, "create", Session::create(&n)).await.unwrap();
    let mut m = s.messages().unwrap();
    within(10, "post", s.post("PING a")).await.unwrap();
    assert_eq!(next_line(&mut m).await, ":test.net PONG test.net :a");
    within(10, "delete", s.delete("bye now")).await.unwrap();
    assert_eq!(next_line(&mut m).await, "ERROR :Closing Link: (bye now)");
    assert_eq!(
        next_event(&mut m, 10).await,
        Some(Event::Closed(CloseReason::Deleted))
    );
    assert_eq!(net.committed(s.id()), ["PING a", "QUIT :bye now"]);
    assert_eq!(net.session_count(), 0);
}

/// The GetMessages requests seen so far: (server, lastseen).
fn gets(net: &TestNetwork) -> Vec<(usize, String)> {
    net.records()
        .into_iter()
        .filter(|r| r.method == http::Method::GET)
        .map(|r| (r.server, r.query))
        .collect()
}

#[tokio::test]
async fn stream_resumes_after_lastseen_on_another_server() {
    let net = TestNetwork::start(2).await;
    let n = network(&net, |_| {});
    let s = within(10, "create", Session::create(&n)).await.unwrap();
    let mut m = s.messages().unwrap();
    within(10, "post", s.post("SILENT x")).await.unwrap();
    net.inject(s.id(), "line 1");
    assert_eq!(next_line(&mut m).await, "line 1");
    let first = gets(&net);
    assert_eq!(first.len(), 1);
    let serving = first[0].0;
    net.set_mode(serving, Mode::Down);
    net.inject(s.id(), "line 2");
    net.inject(s.id(), "line 3");
    assert_eq!(next_line(&mut m).await, "line 2");
    assert_eq!(next_line(&mut m).await, "line 3");
    let all = gets(&net);
    assert_eq!(all.last().unwrap().0, 1 - serving);
    // The reconnect asked for everything after line 1 (and got no duplicates).
    let resumed =
        MessageId::parse_lastseen(all.last().unwrap().1.trim_start_matches("lastseen=")).unwrap();
    assert!(resumed.id > 0, "{all:?}");
    net.inject(s.id(), "line 4");
    assert_eq!(next_line(&mut m).await, "line 4");
}

#[tokio::test]
async fn lastseen_is_sent_on_reconnect() {
    let net = TestNetwork::start(1).await;
    let n = network(&net, |_| {});
    let s = within(10, "create", Session::create(&n)).await.unwrap();
    let mut m = s.messages().unwrap();
    net.inject(s.id(), "hello");
    assert_eq!(next_line(&mut m).await, "hello");
    // Cut the connection; the server comes back at once.
    net.set_mode(0, Mode::Down);
    net.set_mode(0, Mode::Up);
    net.inject(s.id(), "again");
    assert_eq!(within(15, "resume", next_line(&mut m)).await, "again");
    let queries = net.query_log();
    assert!(queries.len() >= 2, "{queries:?}");
    assert_eq!(queries[0], "lastseen=0.0");
    let resumed =
        MessageId::parse_lastseen(queries.last().unwrap().trim_start_matches("lastseen=")).unwrap();
    assert!(resumed.id > 0 && resumed.reply == 1, "{queries:?}");
}

#[tokio::test]
async fn watchdog_moves_a_silent_stream_elsewhere() {
    let net = TestNetwork::start(2).await;
    let n = network(&net, |c| c.timeouts.watchdog = Duration::from_millis(800));
    let s = within(10, "create", Session::create(&n)).await.unwrap();
    let mut m = s.messages().unwrap();
    net.inject(s.id(), "one");
    assert_eq!(next_line(&mut m).await, "one");
    let serving = gets(&net)[0].0;
    net.set_mode(serving, Mode::Hang);
    net.inject(s.id(), "two");
    assert_eq!(
        within(10, "watchdog failover", next_line(&mut m)).await,
        "two"
    );
    assert_eq!(gets(&net).last().unwrap().0, 1 - serving);
}

#[tokio::test]
async fn pings_keep_a_quiet_stream_alive_and_update_the_server_list() {
    let net = TestNetwork::start(2).await;
    net.set_ping_interval(Duration::from_millis(200));
    net.set_ping_servers(Some(vec![net.addr(1)]));
    let n = network(&net, |c| c.timeouts.watchdog = Duration::from_millis(1500));
    let s = within(10, "create", Session::create(&n)).await.unwrap();
    let mut m = s.messages().unwrap();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    // No reconnect happened: pings count as objects for the watchdog.
    assert_eq!(gets(&net).len(), 1);
    assert_eq!(n.servers(), [net.addr(1)]);
    net.inject(s.id(), "still here");
    assert_eq!(next_line(&mut m).await, "still here");
}

#[tokio::test]
async fn unreachable_then_restored() {
    let net = TestNetwork::start(1).await;
    let n = network(&net, |c| {
        c.timeouts.unreachable_after = Duration::from_millis(300)
    });
    let s = within(10, "create", Session::create(&n)).await.unwrap();
    let mut m = s.messages().unwrap();
    net.inject(s.id(), "before");
    assert_eq!(next_line(&mut m).await, "before");
    net.set_mode(0, Mode::Down);
    assert_eq!(next_event(&mut m, 5).await, Some(Event::Unreachable));
    net.inject(s.id(), "during");
    net.set_mode(0, Mode::Up);
    // Backoff: 1–2 s, then 2–4 s.
    assert_eq!(next_event(&mut m, 10).await, Some(Event::Restored));
    assert_eq!(next_line(&mut m).await, "during");
}

#[tokio::test]
async fn dropping_the_session_stops_the_stream() {
    let net = TestNetwork::start(1).await;
    let n = network(&net, |_| {});
    let s = within(10, "create", Session::create(&n)).await.unwrap();
    let mut m = s.messages().unwrap();
    net.inject(s.id(), "x");
    assert_eq!(next_line(&mut m).await, "x");
    drop(s);
    assert_eq!(next_event(&mut m, 5).await, None);
}

#[tokio::test]
async fn bad_certificate_is_a_transport_error() {
    let net = TestNetwork::start(1).await;
    let other = support::TestPki::new();
    let n = network(&net, |c| {
        c.tls = unsplit_bridge::client::TlsRoots::CaPem(other.ca_pem.clone().into_bytes());
        c.timeouts.create = Duration::from_secs(2);
    });
    assert!(matches!(
        within(10, "create", Session::create(&n)).await,
        Err(Error::Timeout { .. })
    ));
    assert!(net.records().is_empty());
}
