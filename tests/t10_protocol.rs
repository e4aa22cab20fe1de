//! The RobustSession API of a real node process, with a plain HTTPS client: every
//! endpoint and every error code.

use std::time::Duration;

mod harness;

use harness::{Http, TestNode, tempdir};

const WAIT: Duration = Duration::from_secs(10);

async fn node() -> (tempfile::TempDir, TestNode, Http) {
    let tmp = tempdir();
    let node = TestNode::start_single(&tmp.path().join("n1"));
    let http = Http::new(&node).await;
    http.wait_ready().await;
    (tmp, node, http)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_lifecycle_and_stream() {
    let (_tmp, _node, http) = node().await;
    let s = http.create_session().await;
    assert!(s.id.starts_with("0x"), "{s:?}");
    assert_eq!(s.auth.len(), 256, "128 random bytes, hex");

    for line in [
        "NICK alice",
        "USER alice 0 * :Alice",
        "JOIN #t",
        "PING barrier",
    ] {
        assert_eq!(http.post(&s, line).await, 200, "{line}");
    }
    let mut stream = http.stream(&s, "0.0").await;
    // The first object is a ping carrying the server list.
    let ping = stream.next(WAIT).await.expect("ping");
    assert_eq!(ping["Type"], 4, "{ping}");
    assert_eq!(
        ping["Servers"],
        serde_json::json!([http.base.trim_start_matches("https://")])
    );
    let lines = stream.lines_until("PONG", WAIT).await;
    assert!(lines[0].contains(" 001 alice "), "{lines:?}");
    assert!(lines.iter().any(|l| l.ends_with("JOIN #t")), "{lines:?}");
    assert!(lines.last().unwrap().ends_with(":barrier"), "{lines:?}");

    // DELETE ends the session: the stream gets the ERROR, then posts are 404.
    let body = r#"{"Quitmessage":"bye now"}"#;
    let r = http
        .request(
            "DELETE",
            &format!("/robustirc/v1/{}", s.id),
            &[("X-Session-Auth", &s.auth)],
            body,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let rest = stream.lines_until("ERROR", WAIT).await;
    assert!(rest.last().unwrap().contains("Quit: bye now"), "{rest:?}");
    assert_eq!(http.post(&s, "PING x").await, 404);
    let r = http
        .request(
            "GET",
            &format!("/robustirc/v1/{}/messages", s.id),
            &[("X-Session-Auth", &s.auth)],
            "",
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lastseen_resumes_strictly_after() {
    let (_tmp, _node, http) = node().await;
    let s = http.create_session().await;
    http.post(&s, "NICK bob").await;
    http.post(&s, "USER bob 0 * :Bob").await;
    http.post(&s, "PING one").await;
    let mut stream = http.stream(&s, "0.0").await;
    let mut seen = Vec::new();
    while let Some((id, line)) = stream.next_line(WAIT).await {
        let done = line.ends_with(":one");
        seen.push((id, line));
        if done {
            break;
        }
    }
    assert!(seen.len() > 5, "{seen:?}");
    // Resume after the third line: exactly the rest, in order, no duplicates.
    let mut resumed = http.stream(&s, &seen[2].0).await;
    for (id, line) in &seen[3..] {
        assert_eq!(
            resumed.next_line(WAIT).await.as_ref(),
            Some(&(id.clone(), line.clone()))
        );
    }
    // A newer stream for the same session supersedes the older one.
    http.post(&s, "PING two").await;
    let next = resumed.next_line(WAIT).await.expect("PONG two");
    assert!(next.1.ends_with(":two"), "{next:?}");
    assert_eq!(
        stream.next_line(Duration::from_secs(3)).await,
        None,
        "superseded stream still delivers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lastseen_in_the_future_is_held_back() {
    let (_tmp, _node, http) = node().await;
    let s = http.create_session().await;
    http.post(&s, "NICK carol").await;
    http.post(&s, "USER carol 0 * :Carol").await;
    let future = format!(
        "{}.0",
        unsplit_bridge::protocol::MESSAGE_ID_OFFSET + 1_000_000
    );
    let mut stream = http.stream(&s, &future).await;
    // Pings only: the node has not reached that point, so it sends no old lines.
    assert_eq!(stream.next_line(Duration::from_secs(3)).await, None);
    let r = http
        .request(
            "GET",
            &format!("/robustirc/v1/{}/messages?lastseen=12", s.id),
            &[("X-Session-Auth", &s.auth)],
            "",
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors() {
    let (_tmp, _node, http) = node().await;
    let s = http.create_session().await;
    let msg = format!("/robustirc/v1/{}/message", s.id);

    let r = http
        .request("POST", &msg, &[], r#"{"Data":"PING x"}"#)
        .await;
    assert_eq!(
        (r.status, r.body.trim()),
        (404, "no X-Session-Auth header set")
    );
    let r = http
        .request(
            "POST",
            &msg,
            &[("X-Session-Auth", "wrong")],
            r#"{"Data":"PING x"}"#,
        )
        .await;
    assert_eq!(
        (r.status, r.body.trim()),
        (404, "invalid X-Session-Auth header")
    );
    let r = http
        .request(
            "POST",
            "/robustirc/v1/0x1234/message",
            &[("X-Session-Auth", &s.auth)],
            "{}",
        )
        .await;
    assert_eq!(r.status, 404);
    let r = http
        .request(
            "POST",
            "/robustirc/v1/nonsense/message",
            &[("X-Session-Auth", &s.auth)],
            "{}",
        )
        .await;
    assert_eq!(r.status, 400);

    let auth = [("X-Session-Auth", s.auth.as_str())];
    let r = http.request("POST", &msg, &auth, "{not json").await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("invalid JSON"), "{r:?}");
    let huge = serde_json::json!({"Data": "x".repeat(3000), "ClientMessageId": 1}).to_string();
    let r = http.request("POST", &msg, &auth, huge).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("larger than 2048"), "{r:?}");
    let r = http.request("GET", "/robustirc/v1/session", &[], "").await;
    assert_eq!(r.status, 405);

    // The node still works, and a line is one line: after a newline nothing counts.
    http.post(&s, "NICK dave").await;
    http.post(&s, "USER dave 0 * :Dave").await;
    assert_eq!(http.post(&s, "PING first\r\nPING second").await, 200);
    http.post(&s, "PING end").await;
    let mut stream = http.stream(&s, "0.0").await;
    let lines = stream.lines_until(":end", WAIT).await;
    assert!(lines.iter().any(|l| l.ends_with(":first")), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("second")), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_message_id_deduplicates_retries() {
    let (_tmp, _node, http) = node().await;
    let s = http.create_session().await;
    http.post(&s, "NICK erin").await;
    http.post(&s, "USER erin 0 * :Erin").await;
    assert_eq!(http.post_with_id(&s, "PING once", 777).await.status, 200);
    assert_eq!(
        http.post_with_id(&s, "PING once", 777).await.status,
        200,
        "a retry is acknowledged"
    );
    http.post(&s, "PING end").await;
    let mut stream = http.stream(&s, "0.0").await;
    let lines = stream.lines_until(":end", WAIT).await;
    assert_eq!(
        lines.iter().filter(|l| l.ends_with(":once")).count(),
        1,
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_api_needs_the_password() {
    let (_tmp, _node, http) = node().await;
    let r = http
        .request("GET", "/", &[("Accept", "application/json")], "")
        .await;
    assert_eq!(r.status, 401);
    let wrong = unsplit_host::network::basic_auth("wrong");
    let r = http
        .request("GET", "/metrics", &[("Authorization", &wrong)], "")
        .await;
    assert_eq!(r.status, 401);

    let status = http.status().await;
    for key in [
        "State",
        "Leader",
        "Peers",
        "AppliedIndex",
        "CommitIndex",
        "LastContact",
        "ExecutableHash",
        "CurrentTime",
    ] {
        assert!(status.get(key).is_some(), "{key} missing in {status}");
    }
    assert_eq!(status["State"], "Leader");
    let html = http.private_get("/", "text/html").await;
    assert!(html.body.contains("<h1>unsplit network"), "{html:?}");
    let metrics = http.private_get("/metrics", "text/plain").await;
    assert!(
        metrics.body.contains("\nunsplit_sessions "),
        "{}",
        metrics.body
    );
    assert!(
        metrics.body.contains("unsplit_raft_is_leader 1"),
        "{}",
        metrics.body
    );
}
