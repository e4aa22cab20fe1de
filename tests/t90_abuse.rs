//! Abuse protection on one node process: the exponential throttle, measured from the
//! replicated entry times (lower bounds only); `MaxSessions` and `MaxSessionsPerAddress`
//! (429); CORS for `WhitelistedOrigins`; `POST /kill`; and a GLINE that follows a user
//! through a trusted bridge (`X-Bridge-Auth` + `X-Forwarded-For`).

mod harness;

use std::time::Duration;

use harness::{Http, Session, TestNode, tempdir};
use unsplit_bridge::protocol::{MESSAGE_ID_OFFSET, parse_session_id};
use unsplit_host::raft::Op;
use unsplit_host::throttle::Throttle;

const WAIT: Duration = Duration::from_secs(20);
const COOLOFF: u64 = unsplit_host::netconfig::DEFAULT_COOLOFF_MS;

/// What the throttle rule demanded of one line, and what the leader stamped.
#[derive(Debug)]
struct Step {
    /// Entry-time gap to the session's previous line (or its creation).
    gap: u64,
    /// The delay the rule imposed for this line.
    required: u64,
}

/// Replays the committed log through the throttle rule for one session: for every line,
/// the gap the leader stamped and the delay the rule required (from the state the
/// earlier entries left, exactly as the state machine computes it).
fn replay(entries: &[(u64, unsplit_host::raft::Request)], session: u64) -> Vec<Step> {
    let created_index = session - MESSAGE_ID_OFFSET;
    let mut now = 0;
    let mut throttle = None;
    let mut steps = Vec::new();
    for (index, req) in entries {
        now = now.max(req.time_ms);
        match &req.op {
            Op::CreateSession { .. } if *index == created_index => {
                throttle = Some(Throttle::new(now));
            }
            Op::Line { session: s, .. } if *s == session => {
                let t: Throttle = throttle.expect("the line comes after the creation");
                steps.push(Step {
                    gap: req.time_ms.saturating_sub(t.last_line_ms),
                    required: t.delay_ms(COOLOFF),
                });
                throttle = Some(t.after_line(now, COOLOFF));
            }
            _ => {}
        }
    }
    steps
}

fn session_id(s: &Session) -> u64 {
    parse_session_id(&s.id).expect("session id")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_throttle_doubles_up_to_the_cooloff_and_resets_after_a_quiet_period() {
    let _guard = harness::exclusive().await;
    let dir = tempdir();
    let node = TestNode::start_single(&dir.path().join("node"));
    let http = Http::new(&node).await;
    http.wait_ready().await;
    let s = http.create_session().await;

    // A flood: each post waits for the previous one's answer.
    const FLOOD: usize = 16;
    for i in 0..FLOOD {
        assert_eq!(http.post(&s, &format!("PING flood{i}")).await, 200);
    }
    // Quiet for longer than the ceiling plus the cooloff.
    tokio::time::sleep(Duration::from_millis(3 * COOLOFF + 100)).await;
    const AFTER: usize = 5;
    for i in 0..AFTER {
        assert_eq!(http.post(&s, &format!("PING again{i}")).await, 200);
    }
    // Parallel posts of one session cannot pass the throttle together.
    tokio::time::sleep(Duration::from_millis(3 * COOLOFF + 100)).await;
    const PARALLEL: usize = 6;
    let posts: Vec<_> = (0..PARALLEL)
        .map(|i| {
            let (http, s) = (http.clone(), s.clone());
            tokio::spawn(async move { http.post(&s, &format!("PING parallel{i}")).await })
        })
        .collect();
    for p in posts {
        assert_eq!(p.await.unwrap(), 200);
    }

    let entries = http.log_entries(1).await;
    let steps = replay(&entries, session_id(&s));
    assert_eq!(steps.len(), FLOOD + AFTER + PARALLEL, "{steps:?}");
    // The leader never proposed a line before the rule allowed it: every entry-time gap
    // is at least the delay the replicated state demanded.
    for (i, step) in steps.iter().enumerate() {
        assert!(
            step.gap >= step.required,
            "line {i}: proposed {} ms after the previous one, the throttle demanded {} ms: {steps:?}",
            step.gap,
            step.required
        );
    }
    // The flood met the doubling delays 1, 2, 4 … up to the ceiling (a stall of the test
    // machine longer than the cooloff would restart the doubling; the rule says so, and
    // the bounds above still hold, but then the ceiling must be reached later).
    let flood: Vec<u64> = steps[..FLOOD].iter().map(|s| s.required).collect();
    assert_eq!(flood[0], 1, "{steps:?}");
    assert!(
        flood.contains(&COOLOFF),
        "never reached the cooloff: {steps:?}"
    );
    for pair in flood.windows(2) {
        assert!(
            pair[1] == (pair[0] * 2).min(COOLOFF) || pair[1] == 1,
            "not a doubling: {flood:?}"
        );
    }
    // After the quiet period, the first line is free again and the doubling restarts.
    let after = &steps[FLOOD..FLOOD + AFTER];
    assert!(after[0].gap > 2 * COOLOFF, "{after:?}");
    let demanded: Vec<u64> = after[1..].iter().map(|s| s.required).collect();
    assert_eq!(demanded, [1, 2, 4, 8], "{steps:?}");
    // The parallel posts were serialised and each waited its turn.
    let parallel = &steps[FLOOD + AFTER..];
    assert!(
        parallel[1..].iter().all(|s| s.required >= 1 && s.gap >= 1),
        "{parallel:?}"
    );
    let waited: u64 = parallel.iter().map(|s| s.gap).sum::<u64>() - parallel[0].gap;
    assert!(waited >= 1 + 2 + 4 + 8 + 16, "{parallel:?}");
}

const BRIDGE_SECRET: &str = "t90-bridge-secret-0123456789abcdef";
const ORIGIN: &str = "https://web.example.net";

/// A session through the trusted bridge, for the client at `addr`.
async fn via_bridge(http: &Http, addr: &str) -> Result<Session, harness::Reply> {
    http.try_create_session(&[("X-Bridge-Auth", BRIDGE_SECRET), ("X-Forwarded-For", addr)])
        .await
}

/// Registers `nick` on `s`, reading its stream up to the end of the welcome.
async fn register(http: &Http, s: &Session, nick: &str) -> harness::Stream {
    let mut stream = http.stream(s, "0.0").await;
    assert_eq!(http.post(s, &format!("NICK {nick}")).await, 200);
    assert_eq!(http.post(s, &format!("USER {nick} 0 * :{nick}")).await, 200);
    stream.lines_until(" 422 ", WAIT).await;
    stream
}

#[tokio::test(flavor = "multi_thread")]
async fn session_limits_cors_kill_and_bans_through_a_trusted_bridge() {
    let _guard = harness::exclusive().await;
    let dir = tempdir();
    let node = TestNode::start_single(&dir.path().join("node"));
    let http = Http::new(&node).await;
    http.wait_ready().await;
    http.set_config_key("MaxSessions", "5").await;
    http.set_config_key("MaxSessionsPerAddress", "2").await;
    http.set_config_key("WhitelistedOrigins", &format!("[{ORIGIN:?}]"))
        .await;
    http.edit_config(|c| {
        format!(
            "{c}\n[TrustedBridges]\n{BRIDGE_SECRET:?} = \"t90\"\n\n\
             [IRC]\n[[IRC.Operators]]\nName = \"op\"\nPassword = \"secret\"\n"
        )
    })
    .await;

    // The operator connects directly (address 127.0.0.1).
    let oper = http.create_session().await;
    let mut oper_stream = register(&http, &oper, "oper").await;
    assert_eq!(http.post(&oper, "OPER op secret").await, 200);
    oper_stream.lines_until(" 381 ", WAIT).await;

    // Two sessions per forwarded address, the third is refused with 429.
    let victim = via_bridge(&http, "192.0.2.7").await.expect("first from .7");
    let second = via_bridge(&http, "192.0.2.7")
        .await
        .expect("second from .7");
    let r = via_bridge(&http, "192.0.2.7")
        .await
        .expect_err("third from .7");
    assert_eq!(r.status, 429, "{r:?}");
    assert!(r.body.contains("MaxSessionsPerAddress"), "{r:?}");
    // A create another node forwarded carries the address that node saw, vouched for
    // with the network password: it counts.
    let node_auth = unsplit_host::network::basic_auth(harness::PASSWORD);
    let r = http
        .try_create_session(&[
            ("X-Unsplit-Client-Address", "192.0.2.7"),
            ("X-Unsplit-Node-Auth", &node_auth),
        ])
        .await
        .expect_err("forwarded for .7");
    assert_eq!(r.status, 429, "{r:?}");
    // Without the bridge's secret, X-Forwarded-For is ignored, and so is a node's header
    // without the network password: the TCP peer counts.
    let untrusted = http
        .try_create_session(&[
            ("X-Forwarded-For", "192.0.2.7"),
            ("X-Unsplit-Client-Address", "192.0.2.7"),
            ("X-Unsplit-Node-Auth", "Basic d3Jvbmc="),
        ])
        .await
        .expect("untrusted headers do not make it 192.0.2.7");
    let other = via_bridge(&http, "192.0.2.8").await.expect("from .8");
    // Five sessions: the network is full.
    let r = via_bridge(&http, "192.0.2.9").await.expect_err("a sixth");
    assert_eq!(r.status, 429, "{r:?}");
    assert!(r.body.contains("MaxSessions"), "{r:?}");

    // CORS: a whitelisted origin gets RobustIRC's headers, others get none; preflight.
    let path = format!("/robustirc/v1/{}/message", other.id);
    let body = r#"{"Data":"PING cors","ClientMessageId":77}"#;
    let r = http
        .request(
            "POST",
            &path,
            &[("X-Session-Auth", &other.auth), ("Origin", ORIGIN)],
            body,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.headers["Access-Control-Allow-Origin"], ORIGIN);
    assert_eq!(
        r.headers["Access-Control-Allow-Headers"],
        "X-Session-Auth, Accept, Content-Type"
    );
    assert_eq!(r.headers["Access-Control-Max-Age"], "86400");
    let r = http
        .request(
            "POST",
            &path,
            &[
                ("X-Session-Auth", &other.auth),
                ("Origin", "https://evil.example"),
            ],
            body,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        !r.headers.contains_key("Access-Control-Allow-Origin"),
        "{r:?}"
    );
    let r = http
        .request(
            "OPTIONS",
            &path,
            &[
                ("Origin", ORIGIN),
                ("Access-Control-Request-Method", "DELETE"),
            ],
            "",
        )
        .await;
    assert!(r.status == 204, "{r:?}");
    assert_eq!(r.headers["Access-Control-Allow-Origin"], ORIGIN);
    assert!(
        r.headers["Access-Control-Allow-Methods"]
            .to_str()
            .unwrap()
            .contains("DELETE")
    );
    let r = http
        .request("OPTIONS", &path, &[("Origin", "https://evil.example")], "")
        .await;
    assert_eq!(r.status, 403, "{r:?}");

    // POST /kill ends sessions (RobustIRC's private endpoint); unknown ones are named.
    let mut untrusted_stream = http.stream(&untrusted, "0.0").await;
    let form = format!("session={}", untrusted.id);
    let r = http.private_post_body("/kill", form.clone()).await;
    assert_eq!(r.status, 200, "{r:?}");
    untrusted_stream.lines_until("ERROR", WAIT).await;
    let r = http.private_post_body("/kill", form).await;
    assert_eq!(r.status, 404, "{r:?}");
    assert!(r.body.contains("no such session"), "{r:?}");

    // GLINE on a nick bans the address its trusted bridge forwarded and kills every
    // session from it.
    let mut victim_stream = register(&http, &victim, "victim").await;
    let mut second_stream = http.stream(&second, "0.0").await;
    assert_eq!(http.post(&oper, "GLINE victim :flooding").await, 200);
    let lines = victim_stream.lines_until("ERROR", WAIT).await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" KILL victim :G-lined: flooding")),
        "{lines:?}"
    );
    second_stream.lines_until("ERROR", WAIT).await;
    let notice = oper_stream.lines_until("G-line on 192.0.2.7", WAIT).await;
    assert!(
        notice.last().unwrap().contains("2 sessions killed"),
        "{notice:?}"
    );
    assert_eq!(http.post(&victim, "PING gone").await, 404);

    // The same forwarded address again: the session is created (the kills made room),
    // and its first line closes it with the ban's reason, which reaches its stream.
    let again = via_bridge(&http, "192.0.2.7").await.expect("room again");
    let mut again_stream = http.stream(&again, "0.0").await;
    assert_eq!(http.post(&again, "NICK victim").await, 200);
    let lines = again_stream.lines_until("ERROR", WAIT).await;
    assert_eq!(
        lines.last().unwrap(),
        "ERROR :Closing Link: You are banned (flooding)",
        "{lines:?}"
    );
    assert_eq!(http.post(&again, "USER v 0 * :v").await, 404);
    // Another forwarded address through the same bridge is not banned.
    let fine = via_bridge(&http, "192.0.2.9").await.expect("from .9");
    register(&http, &fine, "innocent").await;
}
