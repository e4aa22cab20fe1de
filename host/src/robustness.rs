//! `unsplit robustness`: RobustIRC's "test program for verifying robustness", for unsplit.
//!
//! [`run`] starts a network of `unsplit` node processes (on 127.0.0.1 only) plus a bridge
//! in a fresh directory, and lets many clients talk while nodes are SIGKILLed and
//! restarted at random moments:
//!
//! - RobustSession sessions (the client library in `unsplit_bridge::client`) and plain IRC
//!   clients through the bridge all join one channel and send `PRIVMSG`s, to the channel
//!   and to each other, with payloads `rb <sender> <n>` numbered per sender, at random
//!   intervals;
//! - a chaos task kills a random node, the leader, or two nodes in a row (both down only
//!   for a bounded pause), sometimes right after forcing a snapshot, and restarts them;
//!   the schedule (which action, which node index, every pause) comes from a `StdRng`
//!   seeded with [`RobustnessOptions::seed`], so a seed reproduces it.
//!
//! Then the chaos stops, every node is up, and it verifies:
//!
//! 1. **no session was lost**: every client gets the PONG of a PING barrier (twice: the
//!    first round makes sure the bridge has posted everything its clients sent, the second
//!    that every client has received everything before it);
//! 2. **the nodes converge**: all report the same `AppliedIndex` (bounded wait);
//! 3. **the nodes agree**: `GET /outputlog` from every node; every input id (batch) held
//!    by all of them has identical lines (data, reply numbers, recipients), and no node
//!    has a batch the others lack in the common range;
//! 4. **every acknowledged line was committed once**: in the output log each payload
//!    appears at most once, and every acknowledged one is there;
//! 5. **exactly once, in order**: every client received every acknowledged line addressed
//!    to it (the channel's lines from everyone else, its private messages) exactly once,
//!    in each sender's order, and nothing else (unacknowledged lines at most once);
//! 6. no node log contains a panic.
//!
//! A RobustSession line is acknowledged when `post` returned `Ok`; a bridge client's line
//! when the PONG of its first barrier arrived (the bridge posts in order, one at a time).
//!
//! A clean run deletes its directory (unless [`RobustnessOptions::keep`]); a failed one
//! keeps it (node logs `nodeN.log`, `bridge.log`, the data directories) and says where.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::time::Instant;
use unsplit_bridge::client::{self as rs, Event};
use unsplit_bridge::protocol::{MESSAGE_ID_OFFSET, PostMessage};

use crate::network::{HttpsClient, basic_auth, https_client};

/// The channel every client joins.
pub const CHANNEL: &str = "#robustness";
/// First word of every test payload: `rb <sender> <n>`.
const PAYLOAD: &str = "rb";
/// At most this many problems are listed (the rest are counted).
const MAX_PROBLEMS: usize = 200;
/// Sessions expire after 30 minutes; the output window is pruned by entry time after
/// SessionExpiration + 10 s. Shorter runs must find every line in the window.
const WINDOW_COMPLETE_FOR: Duration = Duration::from_secs(25 * 60);
/// Bound on a process starting and becoming ready.
const PROCESS_START: Duration = Duration::from_secs(60);

/// What to run. [`RobustnessOptions::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct RobustnessOptions {
    /// Where the nodes' data directories, logs and certificate go. Must be absent or
    /// empty. Deleted after a clean run (unless `keep`), kept after a failure.
    pub dir: PathBuf,
    /// The `unsplit` executable that runs the nodes and the bridge.
    pub binary: PathBuf,
    /// How long the clients send and the chaos task kills nodes.
    pub duration: Duration,
    /// Nodes in the network (3–7).
    pub nodes: usize,
    /// RobustSession sessions (client library).
    pub sessions: usize,
    /// Plain IRC clients through the bridge.
    pub bridge_clients: usize,
    /// Seeds the chaos schedule and every client's send schedule.
    pub seed: u64,
    /// Mean time between two chaos actions (each wait is uniform in ½…1½ of it).
    pub kill_interval: Duration,
    /// Longest time a killed node stays down.
    pub max_down: Duration,
    /// Longest time two nodes are down at once (no quorum with 3 nodes).
    pub max_double_down: Duration,
    /// Mean time between two lines of one client (uniform in 0…2× of it).
    pub send_interval: Duration,
    /// Bound on every wait of the end phase (a line's acknowledgement, barriers,
    /// catch-up) and on a restarted node finding its leader.
    pub settle_timeout: Duration,
    /// Keep the directory after a clean run too.
    pub keep: bool,
    /// Print progress to stdout.
    pub verbose: bool,
}

impl RobustnessOptions {
    /// Defaults: 60 s, 3 nodes, 20 sessions + 4 bridge clients, a chaos action every ~6 s,
    /// a line per client every ~0.7 s, seed 1.
    pub fn new(dir: PathBuf, binary: PathBuf) -> RobustnessOptions {
        RobustnessOptions {
            dir,
            binary,
            duration: Duration::from_secs(60),
            nodes: 3,
            sessions: 20,
            bridge_clients: 4,
            seed: 1,
            kill_interval: Duration::from_secs(6),
            max_down: Duration::from_secs(4),
            max_double_down: Duration::from_secs(2),
            send_interval: Duration::from_millis(700),
            settle_timeout: Duration::from_secs(120),
            keep: false,
            verbose: false,
        }
    }
}

/// What a run did and checked.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub seed: u64,
    /// The run's directory (deleted after a clean run unless kept).
    pub dir: PathBuf,
    pub dir_kept: bool,
    /// Whole run, setup and checks included.
    pub elapsed: Duration,
    /// Traffic and chaos.
    pub chaos_duration: Duration,
    pub nodes: usize,
    pub sessions: usize,
    pub bridge_clients: usize,
    /// Test lines (PRIVMSGs) sent.
    pub lines_sent: u64,
    /// … acknowledged (post returned Ok / the bridge client's barrier passed).
    pub lines_acknowledged: u64,
    /// Deliveries owed: acknowledged lines × the clients they were addressed to.
    pub deliveries_expected: u64,
    /// Test lines received by clients.
    pub deliveries: u64,
    /// Chaos.
    pub chaos_actions: u64,
    pub kills: u64,
    pub leader_kills: u64,
    pub double_kills: u64,
    pub snapshots: u64,
    pub restarts: u64,
    /// Unreachable events the RobustSession clients saw.
    pub unreachable_events: u64,
    /// Final applied index (all nodes).
    pub applied_index: u64,
    /// Batches (input ids) compared across all nodes.
    pub batches_compared: u64,
    /// Checks that ran (and passed unless `problems` says otherwise).
    pub checks: Vec<String>,
    /// What went wrong; empty for a clean run.
    pub problems: Vec<String>,
    /// Problems beyond the first [`MAX_PROBLEMS`].
    pub problems_omitted: u64,
}

impl Report {
    fn problem(&mut self, p: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p.into());
        } else {
            self.problems_omitted += 1;
        }
    }

    fn problems(&mut self, ps: impl IntoIterator<Item = String>) {
        for p in ps {
            self.problem(p);
        }
    }

    /// Whether every check passed.
    pub fn clean(&self) -> bool {
        self.problems.is_empty() && self.problems_omitted == 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "robustness run, seed {}: {} nodes, {} sessions + {} bridge clients, {:.0} s of chaos ({:.0} s in all)",
            self.seed,
            self.nodes,
            self.sessions,
            self.bridge_clients,
            self.chaos_duration.as_secs_f64(),
            self.elapsed.as_secs_f64()
        )?;
        writeln!(
            f,
            "  chaos: {} actions: {} kills ({} of the leader, {} double), {} snapshots, {} restarts",
            self.chaos_actions,
            self.kills,
            self.leader_kills,
            self.double_kills,
            self.snapshots,
            self.restarts
        )?;
        writeln!(
            f,
            "  lines: {} sent, {} acknowledged; deliveries: {} owed, {} received; {} unreachable events",
            self.lines_sent,
            self.lines_acknowledged,
            self.deliveries_expected,
            self.deliveries,
            self.unreachable_events
        )?;
        writeln!(
            f,
            "  nodes: applied index {}, {} batches compared on every node",
            self.applied_index, self.batches_compared
        )?;
        for c in &self.checks {
            writeln!(f, "  check: {c}")?;
        }
        if self.clean() {
            write!(f, "  result: clean")?;
        } else {
            writeln!(
                f,
                "  result: {} problem(s)",
                self.problems.len() as u64 + self.problems_omitted
            )?;
            for p in &self.problems {
                writeln!(f, "    - {p}")?;
            }
            if self.problems_omitted > 0 {
                writeln!(f, "    … and {} more", self.problems_omitted)?;
            }
            write!(f, "  data kept in {}", self.dir.display())?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RobustnessError {
    #[error("invalid options: {0}")]
    Options(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// Setup or the run itself broke off (a process did not start, a wait ran out).
    #[error("the run was aborted: {reason}\n{report}")]
    Aborted { reason: String, report: Box<Report> },
    /// The run finished and a check found something.
    #[error("{report}")]
    Failed { report: Box<Report> },
}

impl RobustnessError {
    /// The report so far (not for option errors).
    pub fn report(&self) -> Option<&Report> {
        match self {
            RobustnessError::Aborted { report, .. } | RobustnessError::Failed { report } => {
                Some(report)
            }
            _ => None,
        }
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> RobustnessError {
    let context = context.into();
    move |source| RobustnessError::Io { context, source }
}

/// Parses `90`, `90s`, `500ms`, `10m`, `2h`, `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("{s:?}: a number needs a unit (ms, s, m, h)"))?;
        if digits == 0 {
            return Err(format!("{s:?}: expected a number at {rest:?}"));
        }
        let (num, tail) = rest.split_at(digits);
        let n: u64 = num.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let one = match unit {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" | "min" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            other => return Err(format!("{s:?}: unknown unit {other:?} (ms, s, m, h)")),
        };
        let part = one
            .checked_mul(u32::try_from(n).map_err(|_| format!("{s:?}: too large"))?)
            .ok_or_else(|| format!("{s:?}: too large"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("{s:?}: too large"))?;
        rest = tail;
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------
// Progress and small helpers.

#[derive(Clone)]
struct Progress {
    start: Instant,
    verbose: bool,
}

impl Progress {
    fn say(&self, msg: impl AsRef<str>) {
        if self.verbose {
            println!(
                "[{:>7.1}s] {}",
                self.start.elapsed().as_secs_f64(),
                msg.as_ref()
            );
        }
    }

    fn at(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// Problems found by concurrent tasks.
#[derive(Clone, Default)]
struct Problems(Arc<Mutex<Vec<String>>>);

impl Problems {
    fn push(&self, p: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(p.into());
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Aborts a task when dropped (an early return must not leave tasks behind).
struct Task<T>(tokio::task::JoinHandle<T>);

impl<T> Task<T> {
    fn spawn<F>(f: F) -> Task<T>
    where
        F: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        Task(tokio::spawn(f))
    }

    /// Waits for the task, at most `limit`.
    async fn join(mut self, limit: Duration) -> Result<T, String> {
        match tokio::time::timeout(limit, &mut self.0).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(format!("task failed: {e}")),
            Err(_) => Err(format!("task did not finish within {limit:?}")),
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn random_between(rng: &mut StdRng, min: Duration, max: Duration) -> Duration {
    if max <= min {
        return min;
    }
    min + (max - min).mul_f64(rng.random_range(0.0..1.0))
}

fn free_port() -> Result<u16, RobustnessError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(io("finding a free port on 127.0.0.1"))
}

fn open_log(path: &Path, banner: &str) -> Result<(std::fs::File, std::fs::File), String> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    let _ = writeln!(file, "--- robustness: {banner} ---");
    let err = file
        .try_clone()
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    Ok((file, err))
}

// ---------------------------------------------------------------------------------------
// The private API.

#[derive(Clone)]
struct Admin {
    client: HttpsClient,
    auth: String,
}

#[derive(Debug, Clone)]
struct Status {
    state: String,
    leader: String,
    peers: usize,
    applied: u64,
}

impl Admin {
    async fn request(
        &self,
        method: http::Method,
        addr: &str,
        path: &str,
        limit: Duration,
    ) -> Result<(u16, Bytes), String> {
        let req = http::Request::builder()
            .method(method)
            .uri(format!("https://{addr}{path}"))
            .header(http::header::AUTHORIZATION, &self.auth)
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| format!("no answer within {limit:?}"))?
    }

    async fn json(
        &self,
        addr: &str,
        path: &str,
        limit: Duration,
    ) -> Result<serde_json::Value, String> {
        let (status, body) = self.request(http::Method::GET, addr, path, limit).await?;
        if status != 200 {
            let text = String::from_utf8_lossy(body.get(..body.len().min(300)).unwrap_or(&[]));
            return Err(format!("HTTP {status}: {}", text.trim()));
        }
        serde_json::from_slice(&body).map_err(|e| format!("invalid JSON: {e}"))
    }

    async fn status(&self, addr: &str) -> Result<Status, String> {
        let v = self.json(addr, "/", Duration::from_secs(5)).await?;
        Ok(Status {
            state: v["State"].as_str().unwrap_or("").to_owned(),
            leader: v["Leader"].as_str().unwrap_or("").to_owned(),
            peers: v["Peers"].as_array().map_or(0, Vec::len),
            applied: v["AppliedIndex"].as_u64().unwrap_or(0),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Processes.

struct NodeProc {
    name: String,
    addr: String,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

enum Bootstrap {
    Single,
    Join(String),
    Restart,
}

struct Spawner {
    binary: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    password: String,
    progress: Progress,
}

impl Spawner {
    fn spawn_node(&self, node: &mut NodeProc, how: Bootstrap) -> Result<(), String> {
        let what = match &how {
            Bootstrap::Single => "first start (--singlenode)".to_owned(),
            Bootstrap::Join(target) => format!("first start (--join {target})"),
            Bootstrap::Restart => "restart".to_owned(),
        };
        let (out, err) = open_log(
            &node.log,
            &format!("{} {what} at +{:.1}s", node.name, self.progress.at()),
        )?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("node")
            .arg("--data-dir")
            .arg(&node.data_dir)
            .arg("--listen")
            .arg(&node.addr)
            .arg("--network-name")
            .arg("robustness")
            .arg("--tls-cert")
            .arg(&self.cert)
            .arg("--tls-key")
            .arg(&self.key)
            .env("UNSPLIT_NETWORK_PASSWORD", &self.password)
            .env("RUST_LOG", "info,openraft=warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        match how {
            Bootstrap::Single => {
                cmd.arg("--singlenode");
            }
            Bootstrap::Join(target) => {
                cmd.arg("--join").arg(target);
            }
            Bootstrap::Restart => {}
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        node.child = Some(child);
        Ok(())
    }

    fn spawn_bridge(&self, nodes: &[NodeProc], irc: &str, log: &Path) -> Result<Child, String> {
        let (out, err) = open_log(log, &format!("bridge start at +{:.1}s", self.progress.at()))?;
        let servers: Vec<&str> = nodes.iter().map(|n| n.addr.as_str()).collect();
        Command::new(&self.binary)
            .arg("bridge")
            .arg("--network")
            .arg(servers.join(","))
            .arg("--tls-ca-file")
            .arg(&self.cert)
            .arg("--listen")
            .arg(irc)
            .arg("--socks")
            .arg("")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting the bridge: {e}"))
    }
}

/// SIGKILL and reap (bounded).
async fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), c.wait()).await;
    }
}

/// Whether the process has exited (and how).
fn exited(child: &mut Option<Child>) -> Option<String> {
    match child {
        None => Some("not running".into()),
        Some(c) => match c.try_wait() {
            Ok(Some(status)) => Some(format!("exited: {status}")),
            Ok(None) => None,
            Err(e) => Some(format!("unknown state: {e}")),
        },
    }
}

/// Waits until the node answers its status and `ok` accepts it.
async fn wait_node(
    admin: &Admin,
    node: &mut NodeProc,
    limit: Duration,
    ok: impl Fn(&Status) -> bool,
) -> Result<Status, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(how) = exited(&mut node.child) {
            return Err(format!("{} {how} (see {})", node.name, node.log.display()));
        }
        let last = match admin.status(&node.addr).await {
            Ok(s) if ok(&s) => return Ok(s),
            Ok(s) => format!("{s:?}"),
            Err(e) => e,
        };
        if Instant::now() > deadline {
            return Err(format!(
                "{} not ready within {limit:?}; last status: {last}",
                node.name
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every node is up, agrees on one leader and counts every node as a member.
async fn wait_healthy(
    admin: &Admin,
    nodes: &mut [NodeProc],
    limit: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        let mut seen = Vec::new();
        let mut bad = None;
        for node in nodes.iter_mut() {
            if let Some(how) = exited(&mut node.child) {
                return Err(format!("{} {how}", node.name));
            }
            match admin.status(&node.addr).await {
                Ok(s) => seen.push((node.name.clone(), s)),
                Err(e) => bad = Some(format!("{}: {e}", node.name)),
            }
        }
        if bad.is_none() {
            let leader = seen
                .first()
                .map(|(_, s)| s.leader.clone())
                .unwrap_or_default();
            let agree = !leader.is_empty()
                && seen.iter().all(|(_, s)| {
                    s.leader == leader
                        && (s.state == "Leader" || s.state == "Follower")
                        && s.peers == nodes.len()
                });
            if agree {
                return Ok(());
            }
            bad = Some(format!("{seen:?}"));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the network did not become healthy within {limit:?}: {}",
                bad.unwrap_or_default()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Clients.

/// What a client received.
#[derive(Default)]
struct Inbox {
    lines: Vec<String>,
    unreachable: u64,
    closed: Option<String>,
}

enum Conn {
    Session(rs::Session),
    Irc(Arc<tokio::sync::Mutex<tokio::net::tcp::OwnedWriteHalf>>),
}

struct Client {
    nick: String,
    conn: Conn,
    inbox: Arc<Mutex<Inbox>>,
    changed: watch::Receiver<()>,
    _reader: Task<()>,
}

/// One test line: its number, whom it went to (`None`: the channel), and whether it was
/// acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sent {
    seq: u64,
    to: Option<usize>,
    acked: bool,
}

impl Client {
    async fn session(network: &rs::Network, nick: &str) -> Result<Client, String> {
        let session = rs::Session::create(network)
            .await
            .map_err(|e| format!("{nick}: creating the session: {e}"))?;
        let mut messages = session
            .messages()
            .map_err(|e| format!("{nick}: the message stream: {e}"))?;
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let (tx, changed) = watch::channel(());
        let sink = inbox.clone();
        let reader = Task::spawn(async move {
            while let Some(event) = messages.next().await {
                let mut inbox = sink.lock().unwrap_or_else(|e| e.into_inner());
                match event {
                    Event::Line(line) => inbox.lines.push(line),
                    Event::Unreachable => inbox.unreachable += 1,
                    Event::Restored => {}
                    Event::Closed(reason) => {
                        inbox.closed = Some(reason.to_string());
                        drop(inbox);
                        tx.send_replace(());
                        break;
                    }
                }
                drop(inbox);
                tx.send_replace(());
            }
        });
        Ok(Client {
            nick: nick.to_owned(),
            conn: Conn::Session(session),
            inbox,
            changed,
            _reader: reader,
        })
    }

    async fn irc(addr: &str, nick: &str) -> Result<Client, String> {
        let tcp = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        .map_err(|_| format!("{nick}: connecting to the bridge timed out"))?
        .map_err(|e| format!("{nick}: connecting to the bridge: {e}"))?;
        let (r, w) = tcp.into_split();
        let writer = Arc::new(tokio::sync::Mutex::new(w));
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let (tx, changed) = watch::channel(());
        let sink = inbox.clone();
        let pong = writer.clone();
        let reader = Task::spawn(async move {
            let mut reader = tokio::io::BufReader::new(r);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                let why = match reader.read_until(b'\n', &mut buf).await {
                    Ok(0) => "the bridge closed the connection".to_owned(),
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\r', '\n'])
                            .to_owned();
                        // The bridge's own liveness check (`PING :<bridge>`), not the network's.
                        if let Some(token) = line.strip_prefix("PING ") {
                            let mut w = pong.lock().await;
                            let _ = tokio::time::timeout(
                                Duration::from_secs(10),
                                w.write_all(format!("PONG {token}\r\n").as_bytes()),
                            )
                            .await;
                        }
                        sink.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .lines
                            .push(line);
                        tx.send_replace(());
                        continue;
                    }
                    Err(e) => format!("reading from the bridge: {e}"),
                };
                sink.lock().unwrap_or_else(|e| e.into_inner()).closed = Some(why);
                tx.send_replace(());
                break;
            }
        });
        Ok(Client {
            nick: nick.to_owned(),
            conn: Conn::Irc(writer),
            inbox,
            changed,
            _reader: reader,
        })
    }

    fn received(&self) -> usize {
        self.inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lines
            .len()
    }

    /// Sends one line. A session's post is retried with the same message (idempotent)
    /// until it is acknowledged or `deadline` passes; returns whether it was acknowledged
    /// (always false for a bridge client: that is known only at its barrier).
    async fn send(&self, line: &str, deadline: Instant) -> Result<bool, String> {
        match &self.conn {
            Conn::Session(session) => {
                let msg = session.prepare(line).map_err(|e| e.to_string())?;
                post_until(session, &msg, deadline).await.map(|()| true)
            }
            Conn::Irc(writer) => {
                let mut w = tokio::time::timeout_at(deadline, writer.lock())
                    .await
                    .map_err(|_| "the connection is busy".to_owned())?;
                tokio::time::timeout_at(deadline, w.write_all(format!("{line}\r\n").as_bytes()))
                    .await
                    .map_err(|_| "writing to the bridge blocked".to_owned())?
                    .map_err(|e| format!("writing to the bridge: {e}"))?;
                Ok(false)
            }
        }
    }

    /// Waits until a line from index `from` on satisfies `pred`; returns its index.
    async fn wait_for(
        &self,
        from: usize,
        deadline: Instant,
        pred: impl Fn(&str) -> bool,
    ) -> Result<usize, String> {
        let mut changed = self.changed.clone();
        let mut reader_gone = false;
        loop {
            changed.borrow_and_update();
            {
                let inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
                let found = inbox
                    .lines
                    .get(from..)
                    .and_then(|ls| ls.iter().position(|l| pred(l)));
                if let Some(i) = found {
                    return Ok(from + i);
                }
                if let Some(why) = &inbox.closed {
                    return Err(format!("session closed: {why}"));
                }
                if reader_gone {
                    return Err("the message stream ended".into());
                }
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Err(_) => return Err("timed out".into()),
                // The reader ended: one last look at what it left.
                Ok(Err(_)) => reader_gone = true,
                Ok(Ok(())) => {}
            }
        }
    }

    /// Registers (NICK, USER) and waits for the end of the welcome burst.
    async fn register(&self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let from = self.received();
        let nick = &self.nick;
        self.send(&format!("NICK {nick}"), deadline).await?;
        self.send(&format!("USER {nick} 0 * :robustness {nick}"), deadline)
            .await?;
        let me = format!(" {nick} ");
        self.wait_for(from, deadline, |l| {
            (l.contains(" 376 ") || l.contains(" 422 ")) && l.contains(&me)
        })
        .await
        .map(|_| ())
        .map_err(|e| format!("{nick}: registration: {e}"))
    }

    /// PING through the network and wait for its PONG: everything the network produced
    /// for this client before it has arrived, and what it sent before was committed.
    async fn barrier(&self, token: &str, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        let from = self.received();
        self.send(&format!("PING :{token}"), deadline)
            .await
            .map_err(|e| format!("{}: posting the barrier PING: {e}", self.nick))?;
        let end = format!(":{token}");
        self.wait_for(from, deadline, |l| {
            l.contains(" PONG ") && l.ends_with(&end)
        })
        .await
        .map(|_| ())
        .map_err(|e| format!("{}: no PONG for {token} within {limit:?}: {e}", self.nick))
    }
}

/// Posts until acknowledged; a timeout of the library is retried with the same message.
async fn post_until(
    session: &rs::Session,
    msg: &PostMessage,
    deadline: Instant,
) -> Result<(), String> {
    loop {
        match tokio::time::timeout_at(deadline, session.post_message(msg)).await {
            Err(_) => return Err("not acknowledged in time".into()),
            Ok(Ok(())) => return Ok(()),
            Ok(Err(rs::Error::Timeout { .. })) if Instant::now() < deadline => continue,
            Ok(Err(e)) => return Err(e.to_string()),
        }
    }
}

fn payload_line(target: &str, nick: &str, seq: u64) -> String {
    format!("PRIVMSG {target} :{PAYLOAD} {nick} {seq}")
}

/// One client's traffic until `stop`: random pauses, then a numbered line to the channel
/// (70 %) or to another client (30 %).
#[allow(clippy::too_many_arguments)]
async fn traffic(
    client: Arc<Client>,
    me: usize,
    nicks: Arc<Vec<String>>,
    mean: Duration,
    seed: u64,
    settle: Duration,
    mut stop: watch::Receiver<bool>,
    problems: Problems,
) -> Vec<Sent> {
    let mut rng = StdRng::seed_from_u64(seed ^ (me as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut sent: Vec<Sent> = Vec::new();
    let mut seq = 0;
    loop {
        let pause = mean.mul_f64(rng.random_range(0.0..2.0));
        let to = if nicks.len() > 1 && rng.random_bool(0.3) {
            let j = rng.random_range(0..nicks.len() - 1);
            Some(if j >= me { j + 1 } else { j })
        } else {
            None
        };
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => break,
        }
        seq += 1;
        let target = to
            .and_then(|j| nicks.get(j))
            .map_or(CHANNEL, String::as_str);
        let line = payload_line(target, &client.nick, seq);
        let deadline = Instant::now() + settle;
        match client.send(&line, deadline).await {
            Ok(acked) => sent.push(Sent { seq, to, acked }),
            Err(e) => {
                sent.push(Sent {
                    seq,
                    to,
                    acked: false,
                });
                problems.push(format!(
                    "{}: line {seq} ({line:?}) failed, the client stops sending: {e}",
                    client.nick
                ));
                break;
            }
        }
    }
    sent
}

// ---------------------------------------------------------------------------------------
// Chaos.

#[derive(Debug, Default, Clone)]
struct ChaosStats {
    actions: u64,
    kills: u64,
    leader_kills: u64,
    double_kills: u64,
    snapshots: u64,
    restarts: u64,
}

struct Chaos {
    nodes: Vec<NodeProc>,
    spawner: Arc<Spawner>,
    admin: Admin,
    progress: Progress,
    problems: Problems,
    stats: ChaosStats,
    settle: Duration,
}

impl Chaos {
    fn name(&self, i: usize) -> String {
        self.nodes
            .get(i)
            .map_or_else(|| format!("node#{i}"), |n| n.name.clone())
    }

    async fn kill(&mut self, i: usize, why: &str) {
        if let Some(node) = self.nodes.get_mut(i) {
            self.progress
                .say(format!("chaos: SIGKILL {} ({why})", node.name));
            kill(&mut node.child).await;
            self.stats.kills += 1;
        }
    }

    /// Starts a killed node again and waits until it is up and knows a leader. A process
    /// that exits at once (e.g. its port was still taken) is started again.
    async fn restart(&mut self, i: usize) {
        let Some(node) = self.nodes.get_mut(i) else {
            return;
        };
        self.progress.say(format!("chaos: restart {}", node.name));
        self.stats.restarts += 1;
        let mut attempts = 0;
        loop {
            attempts += 1;
            if let Err(e) = self.spawner.spawn_node(node, Bootstrap::Restart) {
                self.problems.push(format!("restarting {}: {e}", node.name));
                return;
            }
            match wait_node(&self.admin, node, self.settle, |s| !s.leader.is_empty()).await {
                Ok(_) => return,
                Err(e) if attempts < 5 && exited(&mut node.child).is_some() => {
                    self.progress
                        .say(format!("chaos: {} did not stay up ({e}); again", node.name));
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    self.problems.push(format!(
                        "{} restarted at +{:.1}s but did not find a leader: {e}",
                        node.name,
                        self.progress.at()
                    ));
                    return;
                }
            }
        }
    }

    /// `POST /snapshot`: a snapshot now, and the log it covers purged (a node that comes
    /// back later may need the snapshot installed).
    async fn snapshot(&mut self, i: usize) {
        let name = self.name(i);
        let addr = self
            .nodes
            .get(i)
            .map(|n| n.addr.clone())
            .unwrap_or_default();
        self.progress.say(format!("chaos: snapshot on {name}"));
        let result = self
            .admin
            .request(
                http::Method::POST,
                &addr,
                "/snapshot",
                Duration::from_secs(60),
            )
            .await;
        match result {
            Ok((200, _)) => self.stats.snapshots += 1,
            // E.g. a snapshot already being built: not a fault.
            Ok((status, body)) => self.progress.say(format!(
                "chaos: snapshot on {name}: HTTP {status} {}",
                String::from_utf8_lossy(&body).trim()
            )),
            Err(e) => self.problems.push(format!("POST /snapshot on {name}: {e}")),
        }
    }

    async fn leader(&mut self) -> Option<usize> {
        for node in &self.nodes {
            if node.child.is_none() {
                continue;
            }
            if let Ok(s) = self.admin.status(&node.addr).await
                && !s.leader.is_empty()
            {
                return self.nodes.iter().position(|n| n.addr == s.leader);
            }
        }
        None
    }

    async fn run(
        mut self,
        seed: u64,
        opts: ChaosOpts,
        mut stop: watch::Receiver<bool>,
    ) -> (Vec<NodeProc>, ChaosStats) {
        let n = self.nodes.len();
        let mut plan = Plan::new(seed, n, opts);
        loop {
            // The next step is drawn before anything happens: the schedule depends on the
            // seed only (which node "the leader" is depends on the run).
            let (wait, action) = plan.next_step();
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => break,
            }
            self.stats.actions += 1;
            match action {
                Action::Kill { node, down } => {
                    self.kill(node, "random node").await;
                    tokio::time::sleep(down).await;
                    self.restart(node).await;
                }
                Action::KillLeader { fallback, down } => {
                    let leader = self.leader().await;
                    let i = leader.unwrap_or(fallback);
                    let why = if leader.is_some() {
                        self.stats.leader_kills += 1;
                        "the leader"
                    } else {
                        "no leader known: a random node"
                    };
                    self.kill(i, why).await;
                    tokio::time::sleep(down).await;
                    self.restart(i).await;
                }
                Action::KillTwo {
                    first,
                    second,
                    gap,
                    both,
                    down,
                } => {
                    self.stats.double_kills += 1;
                    self.kill(first, "first of two").await;
                    tokio::time::sleep(gap).await;
                    self.kill(second, "second of two: no quorum for a moment")
                        .await;
                    tokio::time::sleep(both).await;
                    self.restart(first).await;
                    tokio::time::sleep(down).await;
                    self.restart(second).await;
                }
                Action::Snapshot { node, then_kill } => {
                    self.snapshot(node).await;
                    if let Some(down) = then_kill {
                        self.kill(node, "right after its snapshot").await;
                        tokio::time::sleep(down).await;
                        self.restart(node).await;
                    }
                }
            }
        }
        // Whatever happened, leave every node running.
        for i in 0..n {
            let down = self
                .nodes
                .get_mut(i)
                .is_some_and(|node| exited(&mut node.child).is_some());
            if down {
                self.problems.push(format!(
                    "{} was not running when the chaos stopped",
                    self.name(i)
                ));
                self.restart(i).await;
            }
        }
        (self.nodes, self.stats)
    }
}

/// One chaos action. Node numbers are indexes into the node list.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    /// Kill a node, restart it after `down`.
    Kill { node: usize, down: Duration },
    /// Kill whichever node leads (`fallback` if none is known), restart it after `down`.
    KillLeader { fallback: usize, down: Duration },
    /// Kill `first`, after `gap` also `second` (no quorum with three nodes), restart
    /// `first` after `both`, then `second` after `down`.
    KillTwo {
        first: usize,
        second: usize,
        gap: Duration,
        both: Duration,
        down: Duration,
    },
    /// Snapshot (and purge) on a node, then maybe kill it and restart it after a while.
    Snapshot {
        node: usize,
        then_kill: Option<Duration>,
    },
}

/// The seeded chaos schedule. Kinds come in shuffled rounds of four, so that any four
/// consecutive actions include each kind once.
struct Plan {
    rng: StdRng,
    nodes: usize,
    opts: ChaosOpts,
    round: Vec<u8>,
}

impl Plan {
    fn new(seed: u64, nodes: usize, opts: ChaosOpts) -> Plan {
        Plan {
            rng: StdRng::seed_from_u64(seed),
            nodes: nodes.max(2),
            opts,
            round: Vec::new(),
        }
    }

    /// The wait before the next action, and the action.
    fn next_step(&mut self) -> (Duration, Action) {
        if self.round.is_empty() {
            self.round = vec![0, 1, 2, 3];
            // Fisher–Yates with our own rng (the schedule must depend on the seed only).
            for i in (1..self.round.len()).rev() {
                let j = self.rng.random_range(0..=i);
                self.round.swap(i, j);
            }
        }
        let kind = self.round.pop().unwrap_or(0);
        let rng = &mut self.rng;
        let opts = self.opts;
        let wait = opts.interval.mul_f64(rng.random_range(0.5..1.5));
        let node = rng.random_range(0..self.nodes);
        let other = (node + rng.random_range(1..self.nodes)) % self.nodes;
        let down = random_between(rng, Duration::from_millis(100), opts.max_down);
        let action = match kind {
            0 => Action::Kill { node, down },
            1 => Action::KillLeader {
                fallback: node,
                down,
            },
            2 => Action::KillTwo {
                first: node,
                second: other,
                gap: random_between(rng, Duration::ZERO, Duration::from_secs(1)),
                both: random_between(rng, Duration::from_millis(100), opts.max_double_down),
                down: down / 2,
            },
            _ => Action::Snapshot {
                node,
                then_kill: rng.random_bool(0.5).then_some(down),
            },
        };
        (wait, action)
    }
}

#[derive(Debug, Clone, Copy)]
struct ChaosOpts {
    interval: Duration,
    max_down: Duration,
    max_double_down: Duration,
}

// ---------------------------------------------------------------------------------------
// Checks (pure functions).

/// A parsed test line: `:<from>!… PRIVMSG <target> :rb <sender> <seq>`.
#[derive(Debug, PartialEq, Eq)]
struct TestLine<'a> {
    from: &'a str,
    target: &'a str,
    sender: &'a str,
    seq: u64,
}

fn parse_test_line(line: &str) -> Option<TestLine<'_>> {
    let rest = line.strip_prefix(':')?;
    let (prefix, rest) = rest.split_once(' ')?;
    let from = prefix.split('!').next()?;
    let rest = rest.strip_prefix("PRIVMSG ")?;
    let (target, text) = rest.split_once(" :")?;
    let text = text.strip_prefix(PAYLOAD)?.strip_prefix(' ')?;
    let (sender, seq) = text.split_once(' ')?;
    Some(TestLine {
        from,
        target,
        sender,
        seq: seq.parse().ok()?,
    })
}

/// One client's side of the run, for the checks.
struct Record {
    nick: String,
    sent: Vec<Sent>,
    received: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct DeliveryCounts {
    expected: u64,
    delivered: u64,
}

/// Every acknowledged line reached every client it was addressed to exactly once, in the
/// sender's order; nothing arrived that was not sent to that client; unacknowledged lines
/// arrived at most once.
fn check_deliveries(records: &[Record]) -> (DeliveryCounts, Vec<String>) {
    let mut counts = DeliveryCounts::default();
    let mut problems = Vec::new();
    let index: HashMap<&str, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.nick.as_str(), i))
        .collect();
    for (r, receiver) in records.iter().enumerate() {
        // Per sender: the sequence numbers received, in arrival order.
        let mut got: Vec<Vec<u64>> = vec![Vec::new(); records.len()];
        for line in &receiver.received {
            let Some(t) = parse_test_line(line) else {
                continue;
            };
            let Some(&s) = index.get(t.sender) else {
                problems.push(format!(
                    "{} received a line from unknown sender {:?}: {line:?}",
                    receiver.nick, t.sender
                ));
                continue;
            };
            if t.from != t.sender {
                problems.push(format!(
                    "{} received {line:?} with source {:?}, not {:?}",
                    receiver.nick, t.from, t.sender
                ));
            }
            // Sequence numbers count from 1 without gaps.
            let sent = records.get(s).and_then(|x| {
                x.sent
                    .get(usize::try_from(t.seq).unwrap_or(usize::MAX).wrapping_sub(1))
                    .filter(|e| e.seq == t.seq)
            });
            match sent {
                None => problems.push(format!(
                    "{} received line {} of {}, which was never sent: {line:?}",
                    receiver.nick, t.seq, t.sender
                )),
                Some(e) => {
                    let ok_target = match e.to {
                        None => t.target == CHANNEL && s != r,
                        Some(to) => to == r && t.target.eq_ignore_ascii_case(&receiver.nick),
                    };
                    if !ok_target {
                        problems.push(format!(
                            "{} received line {} of {} that was not addressed to it: {line:?}",
                            receiver.nick, t.seq, t.sender
                        ));
                    }
                }
            }
            if let Some(list) = got.get_mut(s) {
                list.push(t.seq);
            }
            counts.delivered += 1;
        }
        for (s, sender) in records.iter().enumerate() {
            let list = got.get(s).map(Vec::as_slice).unwrap_or(&[]);
            // Exactly once and in order.
            let mut seen = BTreeSet::new();
            let mut last = 0;
            for &seq in list {
                if !seen.insert(seq) {
                    problems.push(format!(
                        "{} received line {seq} of {} more than once",
                        receiver.nick, sender.nick
                    ));
                } else if seq < last {
                    problems.push(format!(
                        "{} received line {seq} of {} after line {last} (out of order)",
                        receiver.nick, sender.nick
                    ));
                }
                last = last.max(seq);
            }
            if s == r {
                continue;
            }
            for e in &sender.sent {
                let addressed = e.to.is_none_or(|to| to == r);
                if !addressed || !e.acked {
                    continue;
                }
                counts.expected += 1;
                if !seen.contains(&e.seq) {
                    let what = if e.to.is_some() {
                        "a private message"
                    } else {
                        "a channel message"
                    };
                    problems.push(format!(
                        "{} never received line {} of {} ({what}, acknowledged)",
                        receiver.nick, e.seq, sender.nick
                    ));
                }
            }
        }
    }
    (counts, problems)
}

/// One node's `GET /outputlog`.
#[derive(Debug, Clone)]
struct OutputLog {
    node: String,
    applied: u64,
    /// Batch id → its `Lines` array.
    batches: BTreeMap<u64, serde_json::Value>,
}

fn parse_output_log(node: &str, v: &serde_json::Value) -> Result<OutputLog, String> {
    let applied = v["AppliedIndex"]
        .as_u64()
        .ok_or_else(|| format!("{node}: /outputlog has no AppliedIndex"))?;
    let list = v["Batches"]
        .as_array()
        .ok_or_else(|| format!("{node}: /outputlog has no Batches"))?;
    let mut batches = BTreeMap::new();
    for b in list {
        let id = b["Id"]
            .as_u64()
            .ok_or_else(|| format!("{node}: a batch without an Id: {b}"))?;
        if batches.insert(id, b["Lines"].clone()).is_some() {
            return Err(format!("{node}: batch {id} appears twice in /outputlog"));
        }
    }
    Ok(OutputLog {
        node: node.to_owned(),
        applied,
        batches,
    })
}

fn index_of(id: u64) -> u64 {
    id.saturating_sub(MESSAGE_ID_OFFSET)
}

/// Every node holds the same batches, line for line, in the range all of them cover.
/// Returns how many batch ids were compared.
fn compare_output_logs(logs: &[OutputLog]) -> (u64, Vec<String>) {
    let mut problems = Vec::new();
    let Some(first) = logs.first() else {
        return (0, problems);
    };
    // The common range: from the newest oldest batch to the lowest applied index.
    let lo = logs
        .iter()
        .map(|l| l.batches.keys().next().copied().unwrap_or(u64::MAX))
        .max()
        .unwrap_or(u64::MAX);
    let hi = MESSAGE_ID_OFFSET + logs.iter().map(|l| l.applied).min().unwrap_or(0);
    if lo > hi {
        return (0, problems);
    }
    let mut ids = BTreeSet::new();
    for l in logs {
        ids.extend(l.batches.range(lo..=hi).map(|(id, _)| *id));
    }
    for &id in &ids {
        let reference = first.batches.get(&id);
        for other in logs.iter().skip(1) {
            let theirs = other.batches.get(&id);
            if reference != theirs {
                let show = |v: Option<&serde_json::Value>| {
                    v.map_or_else(|| "(no batch)".to_owned(), |v| v.to_string())
                };
                problems.push(format!(
                    "divergence at raft index {} (batch {id}): {} has {}, {} has {}",
                    index_of(id),
                    first.node,
                    show(reference),
                    other.node,
                    show(theirs)
                ));
            }
        }
    }
    (ids.len() as u64, problems)
}

/// In one node's output log: every test line was committed at most once, and every
/// acknowledged one is there (if `complete`: the window still holds the whole run;
/// otherwise only lines after one of the same sender that is there, since the window
/// loses the oldest batches first).
fn check_committed(log: &OutputLog, records: &[Record], complete: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let nicks: HashMap<&str, &str> = records
        .iter()
        .map(|r| (r.nick.as_str(), r.nick.as_str()))
        .collect();
    let mut found: HashMap<(&str, u64), Vec<u64>> = HashMap::new();
    for (id, lines) in &log.batches {
        for line in lines.as_array().map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(t) = line["Data"].as_str().and_then(parse_test_line)
                && let Some(nick) = nicks.get(t.sender)
            {
                found.entry((nick, t.seq)).or_default().push(*id);
            }
        }
    }
    for r in records {
        let oldest = r
            .sent
            .iter()
            .filter(|e| found.contains_key(&(r.nick.as_str(), e.seq)))
            .map(|e| e.seq)
            .min();
        for e in &r.sent {
            match found.get(&(r.nick.as_str(), e.seq)) {
                Some(ids) if ids.len() > 1 => problems.push(format!(
                    "line {} of {} was committed {} times (raft indexes {:?})",
                    e.seq,
                    r.nick,
                    ids.len(),
                    ids.iter().map(|&id| index_of(id)).collect::<Vec<_>>()
                )),
                Some(_) => {}
                None if e.acked && (complete || oldest.is_some_and(|o| o < e.seq)) => {
                    problems.push(format!(
                        "line {} of {} was acknowledged but is not in {}'s output log",
                        e.seq, r.nick, log.node
                    ));
                }
                None => {}
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------
// The run.

/// Runs the whole test; see the module documentation.
pub async fn run(opts: RobustnessOptions) -> Result<Report, RobustnessError> {
    if !(3..=7).contains(&opts.nodes) {
        return Err(RobustnessError::Options(
            "nodes must be between 3 and 7".into(),
        ));
    }
    if opts.sessions + opts.bridge_clients < 2 {
        return Err(RobustnessError::Options(
            "at least two clients are needed".into(),
        ));
    }
    if opts.sessions + opts.bridge_clients > 500 {
        return Err(RobustnessError::Options("at most 500 clients".into()));
    }
    if opts.send_interval.is_zero() || opts.kill_interval.is_zero() {
        return Err(RobustnessError::Options(
            "send and kill intervals must not be zero".into(),
        ));
    }
    if !opts.binary.is_file() {
        return Err(RobustnessError::Options(format!(
            "no unsplit executable at {}",
            opts.binary.display()
        )));
    }
    if opts.dir.exists() {
        let mut entries =
            std::fs::read_dir(&opts.dir).map_err(io(format!("reading {}", opts.dir.display())))?;
        if entries.next().is_some() {
            return Err(RobustnessError::Options(format!(
                "{} is not empty (each run needs a fresh directory)",
                opts.dir.display()
            )));
        }
    }
    std::fs::create_dir_all(&opts.dir).map_err(io(format!("creating {}", opts.dir.display())))?;
    let dir = std::fs::canonicalize(&opts.dir).unwrap_or_else(|_| opts.dir.clone());

    let progress = Progress {
        start: Instant::now(),
        verbose: opts.verbose,
    };
    let mut report = Report {
        seed: opts.seed,
        dir: dir.clone(),
        nodes: opts.nodes,
        sessions: opts.sessions,
        bridge_clients: opts.bridge_clients,
        ..Report::default()
    };
    progress.say(format!(
        "robustness run in {} with seed {} ({} nodes, {} sessions, {} bridge clients, {:?})",
        dir.display(),
        opts.seed,
        opts.nodes,
        opts.sessions,
        opts.bridge_clients,
        opts.duration
    ));
    let outcome = run_inner(&opts, &dir, &progress, &mut report).await;
    report.elapsed = progress.start.elapsed();
    match outcome {
        Ok(()) if report.clean() => {
            if opts.keep {
                report.dir_kept = true;
            } else if let Err(e) = std::fs::remove_dir_all(&dir) {
                progress.say(format!("could not delete {}: {e}", dir.display()));
                report.dir_kept = true;
            }
            Ok(report)
        }
        Ok(()) => {
            report.dir_kept = true;
            Err(RobustnessError::Failed {
                report: Box::new(report),
            })
        }
        Err(reason) => {
            report.dir_kept = true;
            Err(RobustnessError::Aborted {
                reason,
                report: Box::new(report),
            })
        }
    }
}

/// Everything after the options were checked. `Err` aborts the run; problems found by the
/// checks go to the report.
async fn run_inner(
    opts: &RobustnessOptions,
    dir: &Path,
    progress: &Progress,
    report: &mut Report,
) -> Result<(), String> {
    // Certificate and password, shared by all nodes.
    let (cert, key) = (dir.join("tls/cert.pem"), dir.join("tls/key.pem"));
    crate::tls::ensure_self_signed(&cert, &key, &["localhost".into(), "127.0.0.1".into()])
        .map_err(|e| format!("certificate: {e}"))?;
    let mut secret = [0u8; 16];
    rand::fill(&mut secret[..]);
    let password = hex::encode(secret);
    let tls = crate::tls::client_config(&cert).map_err(|e| format!("client TLS: {e}"))?;
    let admin = Admin {
        client: https_client(tls),
        auth: basic_auth(&password),
    };
    let spawner = Arc::new(Spawner {
        binary: opts.binary.clone(),
        cert: cert.clone(),
        key,
        password,
        progress: progress.clone(),
    });

    // The network: the first node alone, then the others join it one by one.
    let mut nodes = Vec::new();
    for i in 1..=opts.nodes {
        let port = free_port().map_err(|e| e.to_string())?;
        nodes.push(NodeProc {
            name: format!("node{i}"),
            addr: format!("127.0.0.1:{port}"),
            data_dir: dir.join(format!("node{i}")),
            log: dir.join(format!("node{i}.log")),
            child: None,
        });
    }
    let first = nodes.first().map(|n| n.addr.clone()).unwrap_or_default();
    for (i, node) in nodes.iter_mut().enumerate() {
        let how = if i == 0 {
            Bootstrap::Single
        } else {
            Bootstrap::Join(first.clone())
        };
        spawner.spawn_node(node, how)?;
        let want = if i == 0 { "Leader" } else { "Follower" };
        wait_node(&admin, node, PROCESS_START, |s| {
            s.state == want && s.applied >= 2
        })
        .await?;
        progress.say(format!("{} is up on {} ({want})", node.name, node.addr));
    }
    wait_healthy(&admin, &mut nodes, PROCESS_START).await?;

    let irc = format!("127.0.0.1:{}", free_port().map_err(|e| e.to_string())?);
    let mut bridge = Some(spawner.spawn_bridge(&nodes, &irc, &dir.join("bridge.log"))?);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(&irc).await.is_err() {
        if let Some(how) = exited(&mut bridge) {
            return Err(format!(
                "the bridge {how}; see {}",
                dir.join("bridge.log").display()
            ));
        }
        if Instant::now() > deadline {
            return Err("the bridge did not listen within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    progress.say(format!("bridge is up on {irc}"));

    // Clients: register, join, barrier.
    let mut config = rs::NetworkConfig::new(nodes.iter().map(|n| n.addr.clone()));
    config.tls = rs::TlsRoots::CaFile(cert.clone());
    config.user_agent = "unsplit-robustness".into();
    config.timeouts.request = Duration::from_secs(60);
    let network = rs::Network::new(config).map_err(|e| format!("client library: {e}"))?;
    let mut nicks = Vec::new();
    let mut clients = Vec::new();
    for i in 1..=opts.sessions {
        let nick = format!("rs{i:02}");
        clients.push(Arc::new(Client::session(&network, &nick).await?));
        nicks.push(nick);
    }
    for i in 1..=opts.bridge_clients {
        let nick = format!("br{i:02}");
        clients.push(Arc::new(Client::irc(&irc, &nick).await?));
        nicks.push(nick);
    }
    let setup = Duration::from_secs(60);
    for c in &clients {
        c.register(setup).await?;
        let deadline = Instant::now() + setup;
        c.send(&format!("JOIN {CHANNEL}"), deadline)
            .await
            .map_err(|e| format!("{}: JOIN: {e}", c.nick))?;
        c.barrier(&format!("joined-{}", c.nick), setup).await?;
    }
    progress.say(format!(
        "{} clients registered and joined {CHANNEL}",
        clients.len()
    ));

    // Traffic and chaos.
    let nicks = Arc::new(nicks);
    let problems = Problems::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut senders = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        senders.push(Task::spawn(traffic(
            c.clone(),
            i,
            nicks.clone(),
            opts.send_interval,
            opts.seed,
            opts.settle_timeout,
            stop_rx.clone(),
            problems.clone(),
        )));
    }
    let chaos = Chaos {
        nodes,
        spawner: spawner.clone(),
        admin: admin.clone(),
        progress: progress.clone(),
        problems: problems.clone(),
        stats: ChaosStats::default(),
        settle: opts.settle_timeout,
    };
    let chaos_opts = ChaosOpts {
        interval: opts.kill_interval,
        max_down: opts.max_down,
        max_double_down: opts.max_double_down,
    };
    let chaos = Task::spawn(chaos.run(opts.seed, chaos_opts, stop_rx.clone()));
    let chaos_start = Instant::now();
    progress.say(format!("traffic and chaos for {:?}", opts.duration));
    let mut next_note = Instant::now() + Duration::from_secs(10);
    let end = Instant::now() + opts.duration;
    while Instant::now() < end {
        tokio::time::sleep_until(end.min(next_note)).await;
        if Instant::now() >= next_note {
            let received: usize = clients.iter().map(|c| c.received()).sum();
            progress.say(format!("… {received} lines received by the clients so far"));
            next_note += Duration::from_secs(10);
        }
    }
    stop_tx.send_replace(true);
    report.chaos_duration = chaos_start.elapsed();
    progress.say("stopping: waiting for the last lines and the chaos to finish");

    // A chaos action takes at most a few restarts, each bounded by the settle timeout.
    let (mut nodes, stats) = chaos
        .join(opts.settle_timeout * 4 + Duration::from_secs(60))
        .await?;
    report.chaos_actions = stats.actions;
    report.kills = stats.kills;
    report.leader_kills = stats.leader_kills;
    report.double_kills = stats.double_kills;
    report.snapshots = stats.snapshots;
    report.restarts = stats.restarts;
    let mut sent: Vec<Vec<Sent>> = Vec::new();
    for t in senders {
        sent.push(
            t.join(opts.settle_timeout + Duration::from_secs(30))
                .await?,
        );
    }
    report.problems(problems.take());
    if let Err(e) = wait_healthy(&admin, &mut nodes, opts.settle_timeout).await {
        report.problem(format!("after the chaos: {e}"));
    }

    // Barriers: the first makes sure everything the bridge clients sent was posted (and
    // that no session was lost), the second that everything produced reached everyone.
    let mut stuck = BTreeSet::new();
    for round in 1..=2 {
        let mut waits = Vec::new();
        for c in &clients {
            let c = c.clone();
            let limit = opts.settle_timeout;
            waits.push(Task::spawn(async move {
                c.barrier(&format!("final{round}-{}", c.nick), limit).await
            }));
        }
        let mut failed = 0;
        for (i, w) in waits.into_iter().enumerate() {
            let r = w
                .join(opts.settle_timeout + Duration::from_secs(10))
                .await
                .and_then(|r| r);
            let bridged = clients
                .get(i)
                .is_some_and(|c| matches!(c.conn, Conn::Irc(_)));
            if let Err(e) = &r {
                failed += 1;
                stuck.insert(i);
                report.problem(format!("session lost or stuck (barrier {round}): {e}"));
            }
            // A bridge client's lines are acknowledged by its first barrier: the bridge
            // posts in order, so the PONG means every earlier line was committed.
            if round == 1
                && bridged
                && r.is_ok()
                && let Some(list) = sent.get_mut(i)
            {
                list.iter_mut().for_each(|e| e.acked = true);
            }
        }
        progress.say(format!(
            "barrier {round}: {} of {} clients answered",
            clients.len() - failed,
            clients.len()
        ));
    }
    report.checks.push(format!(
        "{} of {} clients still work (two PING/PONG barriers each)",
        clients.len() - stuck.len(),
        clients.len()
    ));

    // Every node catches up.
    let deadline = Instant::now() + opts.settle_timeout;
    let mut applied: Vec<(String, Result<u64, String>)>;
    loop {
        applied = Vec::new();
        for node in &nodes {
            let a = admin.status(&node.addr).await.map(|s| s.applied);
            applied.push((node.name.clone(), a));
        }
        let first = applied.first().and_then(|(_, a)| a.as_ref().ok().copied());
        let same = first.is_some()
            && applied
                .iter()
                .all(|(_, a)| a.as_ref().ok().copied() == first);
        if same {
            report.applied_index = first.unwrap_or(0);
            report.checks.push(format!(
                "all {} nodes applied the same index ({})",
                nodes.len(),
                report.applied_index
            ));
            break;
        }
        if Instant::now() > deadline {
            report.problem(format!(
                "the nodes did not converge within {:?}: {applied:?}",
                opts.settle_timeout
            ));
            report
                .checks
                .push("the nodes did NOT reach the same applied index".into());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    progress.say(format!("applied indexes: {applied:?}"));

    // The nodes agree on every output.
    let mut logs = Vec::new();
    for node in &nodes {
        match admin
            .json(&node.addr, "/outputlog", Duration::from_secs(120))
            .await
        {
            Ok(v) => match parse_output_log(&node.name, &v) {
                Ok(l) => logs.push(l),
                Err(e) => report.problem(e),
            },
            Err(e) => report.problem(format!("GET /outputlog from {}: {e}", node.name)),
        }
    }
    if logs.len() == nodes.len() {
        let (compared, problems) = compare_output_logs(&logs);
        report.batches_compared = compared;
        let found = problems.len();
        report.problems(problems);
        report.checks.push(format!(
            "the output logs of all nodes agree on {compared} batches ({found} differences)"
        ));
    }

    // Each line committed once; each acknowledged line delivered exactly once, in order.
    let records: Vec<Record> = clients
        .iter()
        .zip(sent)
        .map(|(c, sent)| {
            let inbox = c.inbox.lock().unwrap_or_else(|e| e.into_inner());
            Record {
                nick: c.nick.clone(),
                sent,
                received: inbox.lines.clone(),
            }
        })
        .collect();
    report.lines_sent = records.iter().map(|r| r.sent.len() as u64).sum();
    report.lines_acknowledged = records
        .iter()
        .map(|r| r.sent.iter().filter(|e| e.acked).count() as u64)
        .sum();
    for c in clients.iter().filter(|c| matches!(c.conn, Conn::Irc(_))) {
        let inbox = c.inbox.lock().unwrap_or_else(|e| e.into_inner());
        for l in inbox
            .lines
            .iter()
            .filter(|l| l.contains(" NOTICE ") && l.contains("The network refused a line"))
        {
            report.problem(format!("{}: the bridge said {l:?}", c.nick));
        }
    }
    report.unreachable_events = clients
        .iter()
        .map(|c| {
            c.inbox
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unreachable
        })
        .sum();
    if let Some(log) = logs.first() {
        let complete = progress.start.elapsed() < WINDOW_COMPLETE_FOR;
        let problems = check_committed(log, &records, complete);
        let found = problems.len();
        report.problems(problems);
        report.checks.push(format!(
            "every test line was committed at most once, every acknowledged one is in the output log ({found} problems)"
        ));
    }
    let (counts, problems) = check_deliveries(&records);
    report.deliveries_expected = counts.expected;
    report.deliveries = counts.delivered;
    let found = problems.len();
    report.problems(problems);
    report.checks.push(format!(
        "every acknowledged line reached each addressee exactly once, in order ({found} problems)"
    ));

    // Shut everything down, then look for panics in the logs.
    drop(clients);
    kill(&mut bridge).await;
    for node in &mut nodes {
        kill(&mut node.child).await;
    }
    let mut panics = 0;
    for log in nodes
        .iter()
        .map(|n| n.log.clone())
        .chain(std::iter::once(dir.join("bridge.log")))
    {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("panicked")) {
            panics += 1;
            report.problem(format!("{}: {line}", log.display()));
        }
    }
    report.checks.push(if panics == 0 {
        "no process panicked".to_owned()
    } else {
        format!("{panics} process log(s) show a panic")
    });
    progress.say("done");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5m3").is_err());
    }

    #[test]
    fn plan_is_seeded_and_covers_every_kind() {
        let opts = ChaosOpts {
            interval: Duration::from_secs(4),
            max_down: Duration::from_secs(3),
            max_double_down: Duration::from_secs(2),
        };
        let steps = |seed| {
            let mut p = Plan::new(seed, 3, opts);
            (0..8).map(|_| p.next_step()).collect::<Vec<_>>()
        };
        assert_eq!(steps(7), steps(7));
        assert_ne!(steps(7), steps(8));
        for seed in 0..20 {
            let s = steps(seed);
            for window in s.chunks(4) {
                let kinds: BTreeSet<u8> = window
                    .iter()
                    .map(|(_, a)| match a {
                        Action::Kill { .. } => 0,
                        Action::KillLeader { .. } => 1,
                        Action::KillTwo { .. } => 2,
                        Action::Snapshot { .. } => 3,
                    })
                    .collect();
                assert_eq!(kinds.len(), 4, "{s:?}");
            }
            for (wait, a) in &s {
                assert!(*wait >= Duration::from_secs(2) && *wait <= Duration::from_secs(6));
                if let Action::KillTwo {
                    first,
                    second,
                    both,
                    ..
                } = a
                {
                    assert_ne!(first, second);
                    assert!(*first < 3 && *second < 3);
                    assert!(*both <= opts.max_double_down);
                }
            }
        }
    }

    #[test]
    fn test_lines_parse() {
        assert_eq!(
            parse_test_line(":rs01!rs01@unsplit/0x1 PRIVMSG #robustness :rb rs01 17"),
            Some(TestLine {
                from: "rs01",
                target: "#robustness",
                sender: "rs01",
                seq: 17
            })
        );
        assert_eq!(parse_test_line(":s PONG s :rb x 1"), None);
        assert_eq!(parse_test_line(":a!b@c PRIVMSG #x :hello"), None);
    }

    fn sent(seq: u64, to: Option<usize>) -> Sent {
        Sent {
            seq,
            to,
            acked: true,
        }
    }

    fn line(from: &str, target: &str, seq: u64) -> String {
        format!(":{from}!{from}@h PRIVMSG {target} :rb {from} {seq}")
    }

    #[test]
    fn deliveries() {
        let a = Record {
            nick: "a".into(),
            sent: vec![sent(1, None), sent(2, Some(1)), sent(3, None)],
            received: vec![],
        };
        let mut b = Record {
            nick: "b".into(),
            sent: vec![],
            received: vec![
                line("a", CHANNEL, 1),
                line("a", "b", 2),
                line("a", CHANNEL, 3),
            ],
        };
        let (counts, problems) = check_deliveries(&[
            a,
            Record {
                nick: b.nick.clone(),
                sent: vec![],
                received: b.received.clone(),
            },
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            counts,
            DeliveryCounts {
                expected: 3,
                delivered: 3
            }
        );

        // Lost, duplicated, reordered, misaddressed.
        b.received = vec![
            line("a", CHANNEL, 3),
            line("a", CHANNEL, 1),
            line("a", CHANNEL, 1),
        ];
        let a = Record {
            nick: "a".into(),
            sent: vec![sent(1, None), sent(2, Some(1)), sent(3, None)],
            received: vec![line("a", CHANNEL, 1)],
        };
        let (_, problems) = check_deliveries(&[a, b]);
        let text = problems.join("\n");
        assert!(text.contains("b never received line 2 of a"), "{text}");
        assert!(text.contains("more than once"), "{text}");
        assert!(text.contains("out of order"), "{text}");
        assert!(
            text.contains("a received line 1 of a that was not addressed"),
            "{text}"
        );
    }

    #[test]
    fn unacknowledged_lines_may_be_missing() {
        let a = Record {
            nick: "a".into(),
            sent: vec![Sent {
                seq: 1,
                to: None,
                acked: false,
            }],
            received: vec![],
        };
        let b = Record {
            nick: "b".into(),
            sent: vec![],
            received: vec![],
        };
        let (counts, problems) = check_deliveries(&[a, b]);
        assert!(problems.is_empty());
        assert_eq!(counts.expected, 0);
    }

    fn log(node: &str, applied: u64, batches: &[(u64, &str)]) -> OutputLog {
        OutputLog {
            node: node.into(),
            applied,
            batches: batches
                .iter()
                .map(|(i, data)| {
                    (
                        MESSAGE_ID_OFFSET + i,
                        serde_json::json!([{"Reply": 1, "Data": data, "Recipients": [1]}]),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn output_logs() {
        let a = log("n1", 10, &[(3, "x"), (5, "y"), (9, "z")]);
        let b = log("n2", 12, &[(3, "x"), (5, "y"), (9, "z"), (11, "w")]);
        let (n, problems) = compare_output_logs(&[a.clone(), b]);
        assert_eq!(n, 3);
        assert!(problems.is_empty(), "{problems:?}");
        // A node that pruned more: only the common range counts.
        let c = log("n3", 10, &[(5, "y"), (9, "z")]);
        let (n, problems) = compare_output_logs(&[a.clone(), c]);
        assert_eq!((n, problems.len()), (2, 0));
        // Different data, a missing batch.
        let d = log("n4", 10, &[(3, "x"), (5, "Y")]);
        let (_, problems) = compare_output_logs(&[a, d]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("raft index 5"), "{problems:?}");
        assert!(problems[1].contains("(no batch)"), "{problems:?}");

        let v = serde_json::json!({"AppliedIndex": 4, "Batches": [
            {"Id": MESSAGE_ID_OFFSET + 2, "Lines": []}]});
        assert_eq!(parse_output_log("n", &v).unwrap().batches.len(), 1);
    }

    #[test]
    fn committed_once() {
        let records = [Record {
            nick: "a".into(),
            sent: vec![sent(1, None), sent(2, None), sent(3, None)],
            received: vec![],
        }];
        let l = log(
            "n1",
            10,
            &[
                (3, &line("a", CHANNEL, 2)),
                (4, &line("a", CHANNEL, 3)),
                (5, &line("a", CHANNEL, 3)),
            ],
        );
        let problems = check_committed(&l, &records, false);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("committed 2 times"));
        let problems = check_committed(&l, &records, true);
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
