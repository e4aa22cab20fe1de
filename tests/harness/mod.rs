//! The harness of the end-to-end tests: starts real `unsplit` (and `unsplit-bridge`)
//! processes on 127.0.0.1 ports in temporary directories, talks to them over HTTPS like a
//! client would, and kills them when dropped. Every wait is bounded.
//!
//! The binary is the `unsplit` that cargo builds for these tests (they are targets of the
//! host package, so it is always fresh); it runs nodes and the bridge alike.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use unsplit_host::network::{HttpsClient, basic_auth, https_client};

pub const PASSWORD: &str = "test-network-password";

/// How long the multi-node tests wait for anything.
pub const WAIT: Duration = Duration::from_secs(20);

/// The `unsplit` binary under test.
pub fn unsplit() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_unsplit"))
}

/// A free port on 127.0.0.1 (bound and released; the node binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One node process.
pub struct TestNode {
    pub addr: String,
    pub dir: PathBuf,
    child: Option<Child>,
    log: PathBuf,
    /// Certificate and key shared by a cluster (None: the node generates its own).
    tls: Option<(PathBuf, PathBuf)>,
    join: Option<String>,
}

impl TestNode {
    /// Starts a new single-node network in `dir`.
    pub fn start_single(dir: &Path) -> TestNode {
        let port = free_port();
        let mut node = TestNode {
            addr: format!("127.0.0.1:{port}"),
            dir: dir.to_owned(),
            child: None,
            log: dir.with_extension("log"),
            tls: None,
            join: None,
        };
        node.spawn(true);
        node
    }

    /// Starts a node of a cluster: the first bootstraps (`join` None), the others join.
    pub fn start_member(dir: &Path, cert: &Path, key: &Path, join: Option<&str>) -> TestNode {
        let mut node = TestNode {
            addr: format!("127.0.0.1:{}", free_port()),
            dir: dir.to_owned(),
            child: None,
            log: dir.with_extension("log"),
            tls: Some((cert.to_owned(), key.to_owned())),
            join: join.map(str::to_owned),
        };
        node.spawn(join.is_none());
        node
    }

    /// Whether the process has exited (e.g. after `POST /quit`).
    pub fn exited(&mut self) -> bool {
        match &mut self.child {
            Some(c) => c.try_wait().ok().flatten().is_some(),
            None => true,
        }
    }

    fn spawn(&mut self, singlenode: bool) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = Command::new(unsplit());
        cmd.arg("node")
            .arg("--data-dir")
            .arg(&self.dir)
            .arg("--listen")
            .arg(&self.addr)
            .env("UNSPLIT_NETWORK_PASSWORD", PASSWORD)
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        if let Some((cert, key)) = &self.tls {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        let fresh = !self.dir.join("node.json").exists();
        match (&self.join, singlenode && fresh) {
            (Some(target), _) if fresh => {
                cmd.arg("--join").arg(target);
            }
            (None, true) => {
                cmd.arg("--singlenode");
            }
            _ => {}
        }
        self.child = Some(cmd.spawn().expect("spawn unsplit node"));
    }

    /// The certificate clients must trust.
    pub fn ca(&self) -> PathBuf {
        match &self.tls {
            Some((cert, _)) => cert.clone(),
            None => self.dir.join("tls/cert.pem"),
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same address and data directory (no flags).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn(false);
    }

    /// The node's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A network of several node processes sharing one certificate.
pub struct TestCluster {
    pub nodes: Vec<TestNode>,
    pub cert: PathBuf,
}

impl TestCluster {
    /// Starts `n` nodes in `dir` and waits (bounded) until all see `n` members and agree on
    /// a leader.
    pub async fn start(dir: &Path, n: usize) -> TestCluster {
        let (cert, key) = (dir.join("tls/cert.pem"), dir.join("tls/key.pem"));
        unsplit_host::tls::ensure_self_signed(
            &cert,
            &key,
            &["localhost".into(), "127.0.0.1".into()],
        )
        .expect("certificate");
        let first = TestNode::start_member(&dir.join("node1"), &cert, &key, None);
        let join = first.addr.clone();
        let mut nodes = vec![first];
        for i in 2..=n {
            nodes.push(TestNode::start_member(
                &dir.join(format!("node{i}")),
                &cert,
                &key,
                Some(&join),
            ));
        }
        let cluster = TestCluster { nodes, cert };
        cluster.wait_converged(Duration::from_secs(60)).await;
        cluster
    }

    pub async fn http(&self, i: usize) -> Http {
        Http::new(&self.nodes[i]).await
    }

    /// Waits until every running node sees all members as voters, the same leader, and
    /// the same applied index. Returns the leader's address.
    pub async fn wait_converged(&self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let mut views = Vec::new();
            for node in &self.nodes {
                let http = Http::new(node).await;
                views.push(http.try_status().await);
            }
            let members = self.nodes.len();
            if let Some(Some(first)) = views.first()
                && views.iter().all(|v| {
                    v.as_ref().is_some_and(|v| {
                        v["Leader"] == first["Leader"]
                            && !first["Leader"].as_str().unwrap_or("").is_empty()
                            && v["Peers"].as_array().is_some_and(|p| p.len() == members)
                            && v["Voters"].as_array().is_some_and(|p| p.len() == members)
                            && v["AppliedIndex"] == first["AppliedIndex"]
                    })
                })
            {
                return first["Leader"].as_str().unwrap_or("").to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "cluster did not converge: {views:#?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The index of the node with this address.
    pub fn index_of(&self, addr: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.addr == addr)
            .expect("a member")
    }
}

/// An HTTPS client for one node that trusts the node's certificate.
#[derive(Clone)]
pub struct Http {
    client: HttpsClient,
    pub base: String,
    auth: String,
}

/// A response: status, headers and the whole body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Http {
    /// Waits (bounded) until the node's certificate exists, then builds the client.
    pub async fn new(node: &TestNode) -> Http {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !node.ca().exists() {
            assert!(
                Instant::now() < deadline,
                "no certificate; node log:\n{}",
                node.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let tls = unsplit_host::tls::client_config(&node.ca()).expect("client TLS");
        Http {
            client: https_client(tls),
            base: format!("https://{}", node.addr),
            auth: basic_auth(PASSWORD),
        }
    }

    /// A client for a node at `addr` whose certificate `ca` signs (a localnet's node).
    pub fn for_address(addr: &str, ca: &Path) -> Http {
        let tls = unsplit_host::tls::client_config(ca).expect("client TLS");
        Http {
            client: https_client(tls),
            base: format!("https://{addr}"),
            auth: basic_auth(PASSWORD),
        }
    }

    /// The same client with another network password.
    pub fn with_password(mut self, password: &str) -> Http {
        self.auth = basic_auth(password);
        self
    }

    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        let (status, headers, body) = self.request_raw(method, path, headers, body).await;
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// [`Http::request`] with the body as bytes.
    pub async fn request_raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> (u16, http::HeaderMap, Bytes) {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body.into())).expect("request");
        let resp = tokio::time::timeout(Duration::from_secs(20), self.client.request(req))
            .await
            .expect("request timed out")
            .expect("request failed");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = tokio::time::timeout(Duration::from_secs(20), resp.into_body().collect())
            .await
            .expect("body timed out")
            .expect("body")
            .to_bytes();
        (status, headers, body)
    }

    /// A private-API GET with the network password.
    pub async fn private_get(&self, path: &str, accept: &str) -> Reply {
        self.request(
            "GET",
            path,
            &[("Authorization", &self.auth), ("Accept", accept)],
            Bytes::new(),
        )
        .await
    }

    pub async fn private_post(&self, path: &str) -> Reply {
        self.private_post_body(path, Bytes::new()).await
    }

    /// A private-API POST with a body.
    pub async fn private_post_body(&self, path: &str, body: impl Into<Bytes>) -> Reply {
        self.request("POST", path, &[("Authorization", &self.auth)], body)
            .await
    }

    /// Edits the network configuration (read, `edit`, write back with its revision).
    pub async fn edit_config(&self, edit: impl FnOnce(&str) -> String) {
        let r = self.private_get("/config", "application/toml").await;
        assert_eq!(r.status, 200, "GET /config: {r:?}");
        let revision = r.headers["X-RobustIRC-Config-Revision"]
            .to_str()
            .expect("revision")
            .to_owned();
        let r = self
            .request(
                "POST",
                "/config",
                &[
                    ("Authorization", &self.auth),
                    ("X-RobustIRC-Config-Revision", &revision),
                ],
                edit(&r.body),
            )
            .await;
        assert_eq!(r.status, 200, "POST /config: {r:?}");
    }

    /// Sets a top-level key of the network configuration: replaces its line, or adds it
    /// at the top (before any table).
    pub async fn set_config_key(&self, key: &str, value: &str) {
        let prefix = format!("{key} =");
        self.edit_config(|c| {
            let mut replaced = false;
            let mut lines: Vec<String> = c
                .lines()
                .map(|l| {
                    if l.trim_start().starts_with(&prefix) {
                        replaced = true;
                        format!("{key} = {value}")
                    } else {
                        l.to_owned()
                    }
                })
                .collect();
            if !replaced {
                lines.insert(0, format!("{key} = {value}"));
            }
            lines.join("\n") + "\n"
        })
        .await;
    }

    /// Turns the per-session throttle off (`PostMessageCooloff = "0"`), for tests and
    /// benchmarks that send many lines from one session (RobustIRC's localnet does the
    /// same for its benchmarks).
    pub async fn no_throttle(&self) {
        self.set_config_key("PostMessageCooloff", "\"0\"").await;
    }

    /// Committed request entries from `from` on (`GET /log`, every page).
    pub async fn log_entries(&self, from: u64) -> Vec<(u64, unsplit_host::raft::Request)> {
        let mut entries = Vec::new();
        let mut from = from;
        loop {
            let (status, headers, body) = self
                .request_raw(
                    "GET",
                    &format!("/log?from={from}"),
                    &[("Authorization", &self.auth)],
                    Bytes::new(),
                )
                .await;
            assert_eq!(status, 200, "GET /log?from={from}");
            let page: Vec<(u64, unsplit_host::raft::Request)> =
                postcard::from_bytes(&body).expect("log page");
            entries.extend(page);
            let header = |name: &str| -> u64 { headers[name].to_str().unwrap().parse().unwrap() };
            let (next, last) = (header("X-Next"), header("X-Last-Index"));
            if next > last || next <= from {
                return entries;
            }
            from = next;
        }
    }

    /// Creates a session with extra request headers; the reply when it was refused.
    pub async fn try_create_session(&self, headers: &[(&str, &str)]) -> Result<Session, Reply> {
        let r = self
            .request("POST", "/robustirc/v1/session", headers, Bytes::new())
            .await;
        if r.status != 200 {
            return Err(r);
        }
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("session JSON");
        Ok(Session {
            id: v["Sessionid"].as_str().expect("Sessionid").to_owned(),
            auth: v["Sessionauth"].as_str().expect("Sessionauth").to_owned(),
            next_message_id: Arc::new(std::sync::atomic::AtomicU64::new(1)),
        })
    }

    /// Uploads a logic component and activates it (both must succeed); its hash.
    pub async fn upload_and_activate(&self, component: &'static [u8]) -> String {
        let r = self
            .private_post_body("/module", Bytes::from_static(component))
            .await;
        assert_eq!(r.status, 200, "upload: {r:?}");
        let hash = serde_json::from_str::<serde_json::Value>(&r.body).expect("upload JSON")["Hash"]
            .as_str()
            .expect("Hash")
            .to_owned();
        let body = serde_json::json!({ "Module": hash }).to_string();
        let r = self.private_post_body("/module/activate", body).await;
        assert_eq!(r.status, 200, "activate: {r:?}");
        hash
    }

    /// The JSON status, or `None` when the node does not answer.
    pub async fn try_status(&self) -> Option<serde_json::Value> {
        let req = http::Request::get(format!("{}/", self.base))
            .header("Authorization", &self.auth)
            .header("Accept", "application/json")
            .body(Full::new(Bytes::new()))
            .ok()?;
        let resp = tokio::time::timeout(Duration::from_secs(2), self.client.request(req))
            .await
            .ok()?
            .ok()?;
        let body = tokio::time::timeout(Duration::from_secs(2), resp.into_body().collect())
            .await
            .ok()?
            .ok()?;
        serde_json::from_slice(&body.to_bytes()).ok()
    }

    /// The JSON status (`GET /` with `Accept: application/json`).
    pub async fn status(&self) -> serde_json::Value {
        let r = self.private_get("/", "application/json").await;
        assert_eq!(r.status, 200, "{r:?}");
        serde_json::from_str(&r.body).expect("status JSON")
    }

    /// Waits (bounded) until the node is a leader with its initial configuration applied.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let req = http::Request::get(format!("{}/", self.base))
                .header("Authorization", &self.auth)
                .header("Accept", "application/json")
                .body(Full::new(Bytes::new()))
                .expect("request");
            if let Ok(Ok(resp)) =
                tokio::time::timeout(Duration::from_secs(2), self.client.request(req)).await
                && let Ok(body) = resp.into_body().collect().await
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body.to_bytes())
                && v["State"] == "Leader"
                && v["AppliedIndex"].as_u64().unwrap_or(0) >= 2
                // A new network's first entries: the logic and the services plugins.
                && v["ActivePlugins"]["chanserv"].is_object()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node at {} did not become ready",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens a GetMessages stream and returns its raw lines as they arrive. A node that
    /// has not applied the session's creation yet answers 500 "Session not yet seen";
    /// like a client, this tries again (bounded).
    pub async fn stream(&self, session: &Session, lastseen: &str) -> Stream {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let req = http::Request::get(format!(
                "{}/robustirc/v1/{}/messages?lastseen={lastseen}",
                self.base, session.id
            ))
            .header("X-Session-Auth", &session.auth)
            .body(Full::new(Bytes::new()))
            .expect("request");
            let resp = tokio::time::timeout(Duration::from_secs(20), self.client.request(req))
                .await
                .expect("GetMessages timed out")
                .expect("GetMessages failed");
            if resp.status() == 500 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            assert_eq!(resp.status(), 200);
            return Stream {
                body: resp.into_body(),
                buffer: Vec::new(),
            };
        }
    }

    pub async fn create_session(&self) -> Session {
        match self.try_create_session(&[]).await {
            Ok(s) => s,
            Err(r) => panic!("creating a session: {r:?}"),
        }
    }

    /// Posts one line; returns the HTTP status.
    pub async fn post(&self, session: &Session, line: &str) -> u16 {
        let id = session
            .next_message_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.post_with_id(session, line, id).await.status
    }

    pub async fn post_with_id(&self, session: &Session, line: &str, id: u64) -> Reply {
        let body = serde_json::json!({"Data": line, "ClientMessageId": id}).to_string();
        let path = format!("/robustirc/v1/{}/message", session.id);
        self.request("POST", &path, &[("X-Session-Auth", &session.auth)], body)
            .await
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub auth: String,
    next_message_id: Arc<std::sync::atomic::AtomicU64>,
}

/// A GetMessages stream, read object by object.
pub struct Stream {
    body: hyper::body::Incoming,
    buffer: Vec<u8>,
}

impl Stream {
    /// The next object, or `None` when nothing arrives within `wait` (or the stream ended).
    pub async fn next(&mut self, wait: Duration) -> Option<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(pos) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=pos).collect();
                return serde_json::from_slice(&line).ok();
            }
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                _ => return None,
            }
        }
    }

    /// The next IRC line (type 3), skipping pings.
    pub async fn next_line(&mut self, wait: Duration) -> Option<(String, String)> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.next(left).await?;
            if v["Type"] == 3 {
                let id = format!("{}.{}", v["Id"]["Id"], v["Id"]["Reply"]);
                return Some((id, v["Data"].as_str().unwrap_or("").to_owned()));
            }
        }
    }

    /// Lines until one contains `needle` (inclusive), bounded by `wait`.
    pub async fn lines_until(&mut self, needle: &str, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut lines = Vec::new();
        while let Some((_, line)) = self
            .next_line(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            let done = line.contains(needle);
            lines.push(line);
            if done {
                return lines;
            }
        }
        panic!("no line containing {needle:?} within {wait:?}; got {lines:#?}");
    }
}

/// A fresh temporary directory for one test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("unsplit-test-")
        .tempdir()
        .expect("tempdir")
}

/// A bridge process (`unsplit bridge`) in front of the given nodes.
pub struct TestBridge {
    pub irc: String,
    child: Option<Child>,
    log: PathBuf,
}

impl TestBridge {
    pub fn start(nodes: &[&TestNode], ca: &Path, log: &Path) -> TestBridge {
        let irc = format!("127.0.0.1:{}", free_port());
        let servers: Vec<&str> = nodes.iter().map(|n| n.addr.as_str()).collect();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let child = Command::new(unsplit())
            .arg("bridge")
            .arg("--network")
            .arg(servers.join(","))
            .arg("--tls-ca-file")
            .arg(ca)
            .arg("--listen")
            .arg(&irc)
            .arg("--socks")
            .arg("")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file)
            .spawn()
            .expect("spawn unsplit bridge");
        let bridge = TestBridge {
            irc,
            child: Some(child),
            log: log.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&bridge.irc).is_err() {
            assert!(
                Instant::now() < deadline,
                "bridge not listening; log:\n{}",
                bridge.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        bridge
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TestBridge {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A plain IRC client over TCP, as irssi would be.
pub struct IrcClient {
    reader: tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    /// Every line received, in order.
    pub received: Vec<String>,
    token: u64,
}

impl IrcClient {
    pub async fn connect(addr: &str) -> IrcClient {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to the bridge");
        let (r, w) = tcp.into_split();
        IrcClient {
            reader: tokio::io::BufReader::new(r),
            writer: w,
            received: Vec::new(),
            token: 0,
        }
    }

    pub async fn send(&mut self, line: &str) {
        use tokio::io::AsyncWriteExt;
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("write to the bridge");
    }

    /// The next line, or `None` on timeout or when the connection closed.
    pub async fn line(&mut self, wait: Duration) -> Option<String> {
        use tokio::io::AsyncBufReadExt;
        let mut buf = String::new();
        match tokio::time::timeout(wait, self.reader.read_line(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                let line = buf.trim_end_matches(['\r', '\n']).to_owned();
                self.received.push(line.clone());
                Some(line)
            }
            _ => None,
        }
    }

    /// Reads until a line contains `needle`; returns the lines read (bounded by `wait`).
    pub async fn until(&mut self, needle: &str, wait: Duration) -> Vec<String> {
        let deadline = Instant::now() + wait;
        let mut lines = Vec::new();
        while let Some(l) = self
            .line(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            let done = l.contains(needle);
            lines.push(l);
            if done {
                return lines;
            }
        }
        panic!("no line containing {needle:?} within {wait:?}; got {lines:#?}");
    }

    /// PING through the network and wait for its PONG: every line the network produced
    /// for us before it has arrived. Returns those lines.
    pub async fn sync(&mut self, wait: Duration) -> Vec<String> {
        self.token += 1;
        let token = format!("sync{}", self.token);
        self.send(&format!("PING :{token}")).await;
        let mut lines = self.until(&format!(":{token}"), wait).await;
        lines.pop();
        lines
    }

    /// Registers and waits for the end of the welcome burst.
    pub async fn register(&mut self, nick: &str) {
        self.send(&format!("NICK {nick}")).await;
        self.send(&format!("USER {nick} 0 * :{nick} test")).await;
        self.until(" 422 ", Duration::from_secs(20)).await;
    }
}

/// Serialises the heavy multi-process tests of one test binary: several 3-node
/// clusters at once on a 2-core machine starve each other's heartbeats.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Runs `unsplit <args>` against `nodes`; returns (exit code, stdout, stderr).
pub fn cli(args: &[&str], nodes: &[&TestNode], ca: &Path) -> (i32, String, String) {
    let network = nodes
        .iter()
        .map(|n| n.addr.clone())
        .collect::<Vec<_>>()
        .join(",");
    let mut cmd = Command::new(unsplit());
    cmd.args(&args[..1]);
    if args[0] == "module" || (args[0] == "canary" && !args.contains(&"--data-dir")) {
        cmd.args(["--network", &network, "--network-password", PASSWORD]);
        cmd.arg("--tls-ca-file").arg(ca);
    }
    cmd.args(&args[1..]);
    let out = cmd.output().expect("running unsplit");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

pub fn cli_ok(args: &[&str], nodes: &[&TestNode], ca: &Path) -> String {
    let (code, out, err) = cli(args, nodes, ca);
    assert_eq!(code, 0, "unsplit {args:?} failed:\n{out}\n{err}");
    out
}

/// A registered user in #c, with its open stream.
pub async fn user(http: &Http, nick: &str) -> (Session, Stream) {
    let s = http.create_session().await;
    let mut stream = http.stream(&s, "0.0").await;
    assert_eq!(http.post(&s, &format!("NICK {nick}")).await, 200);
    assert_eq!(
        http.post(&s, &format!("USER {nick} 0 * :{nick}")).await,
        200
    );
    stream.lines_until(" 001 ", WAIT).await;
    assert_eq!(http.post(&s, "JOIN #c").await, 200);
    stream.lines_until(" 366 ", WAIT).await;
    (s, stream)
}

/// Every node's output log, after the cluster converged: all identical.
pub async fn same_output_everywhere(cluster: &TestCluster) {
    cluster.wait_converged(WAIT).await;
    let mut logs = Vec::new();
    for i in 0..cluster.nodes.len() {
        logs.push(
            cluster
                .http(i)
                .await
                .private_get("/outputlog", "application/json")
                .await
                .body,
        );
    }
    assert!(logs[0].len() > 100);
    assert!(logs.iter().all(|l| *l == logs[0]), "output logs differ");
}

/// Every node's `GET /rejected` once the cluster converged; they must all be the same.
pub async fn rejected_everywhere(cluster: &TestCluster) -> serde_json::Value {
    cluster.wait_converged(WAIT).await;
    let mut views = Vec::new();
    for i in 0..cluster.nodes.len() {
        let r = cluster
            .http(i)
            .await
            .private_get("/rejected", "application/json")
            .await;
        views.push(serde_json::from_str::<serde_json::Value>(&r.body).expect("JSON"));
    }
    assert!(
        views.iter().all(|v| *v == views[0]),
        "nodes disagree on /rejected: {views:#?}"
    );
    views.swap_remove(0)
}
