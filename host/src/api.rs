//! The node's HTTPS API: the public RobustSession protocol (wire-compatible with
//! RobustIRC, see `unsplit_bridge::protocol`), and the private API behind HTTP basic auth
//! (user `robustirc`, the network password): status page, JSON status, `/metrics`, and
//! the raft RPCs between nodes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Body, Frame, Incoming};
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::mpsc;
use unsplit_bridge::protocol::{
    self, CreateSessionReply, DeleteSession, MESSAGE_ID_OFFSET, Message, MessageId, PostMessage,
    kind,
};

use crate::network::HttpsClient;
use crate::raft::{NodeId, Op, Raft, Request, Response};
use crate::sm::Shared;

/// How long a write may wait for commit and apply before the client is told to retry.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a write is held while the network elects a leader.
const LEADER_WAIT: Duration = Duration::from_secs(3);
/// Lines sent per stream wake-up at most (the rest follow at once).
const STREAM_BATCH: usize = 1000;

/// A response body: a whole body, or a GetMessages stream.
pub type ApiBody = Either<Full<Bytes>, StreamBody>;

/// The streaming body of GetMessages: chunks from the stream's task.
pub struct StreamBody(mpsc::Receiver<Bytes>);

impl Body for StreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// Everything the handlers need: the node's parts (reachable as `api.raft`, … through
/// `Deref`) and the API's own state.
pub struct Api {
    parts: ApiParts,
    pub started: Instant,
    /// Session → generation of its newest stream on this node (a newer one supersedes).
    streams: Mutex<HashMap<u64, u64>>,
    next_stream: AtomicU64,
    pub open_streams: AtomicU64,
    auth_failures: AtomicU64,
    /// When this node last heard from a leader (raft RPCs), for status.
    last_contact: Mutex<Option<Instant>>,
    /// Serialises joins; holds the last node id handed out, so none is given twice.
    join_lock: tokio::sync::Mutex<NodeId>,
    /// Serialises module uploads on the leader (their chunks must not interleave).
    pub(crate) upload_lock: tokio::sync::Mutex<()>,
    /// One post per session at a time on the leader, so parallel posts of one session
    /// cannot pass the throttle together. Entries exist only while a post is in flight.
    post_gates: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::ops::Deref for Api {
    type Target = ApiParts;

    fn deref(&self) -> &ApiParts {
        &self.parts
    }
}

/// What [`Api::new`] needs: the node's parts.
pub struct ApiParts {
    pub id: NodeId,
    pub raft: Raft,
    pub shared: Arc<Shared>,
    pub password: String,
    /// GetMessages waits until the node has applied this index (what it had before a
    /// restart), so a restarted node never serves a stale window (robustirc#94).
    pub ready_index: u64,
    /// SHA-256 of the executable, once computed.
    pub exe_hash: Arc<std::sync::OnceLock<String>>,
    /// HTTPS client for forwarding writes to the leader.
    pub client: HttpsClient,
    /// A follower that has not heard from a leader for this long refuses streams, so
    /// clients move to a node that has.
    pub leader_timeout: Duration,
    /// Compiled logic modules (uploads are checked with it before they are proposed).
    pub cache: Arc<crate::modules::ModuleCache>,
    /// The snapshot file and the raft log, read for the canary (`GET /snapshot`, `/log`).
    pub snapshots: crate::snapshot::SnapshotStore,
    pub log: unsplit_logstore::LogStore<crate::raft::TypeConfig>,
}

/// Marks a request one node forwarded to the leader (never forwarded twice).
const FORWARDED: &str = "X-Unsplit-Forwarded";
/// On a forwarded session create: the TCP peer the forwarding node saw, and that node's
/// proof (the network password's basic auth) that the leader may use it.
const CLIENT_ADDRESS: &str = "X-Unsplit-Client-Address";
const NODE_AUTH: &str = "X-Unsplit-Node-Auth";
/// On the leader's answer to a forwarded request: the leader's applied index.
const APPLIED_INDEX: &str = "X-Unsplit-Applied-Index";

impl Api {
    pub fn new(parts: ApiParts) -> Api {
        Api {
            parts,
            started: Instant::now(),
            streams: Mutex::new(HashMap::new()),
            next_stream: AtomicU64::new(1),
            open_streams: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
            last_contact: Mutex::new(None),
            join_lock: tokio::sync::Mutex::new(0),
            upload_lock: tokio::sync::Mutex::new(()),
            post_gates: Mutex::new(HashMap::new()),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn full(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> http::Response<ApiBody> {
    let mut r = http::Response::new(Either::Left(Full::new(body.into())));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> http::Response<ApiBody> {
    let mut body = body.into();
    body.push('\n');
    full(status, "text/plain; charset=utf-8", body)
}

pub(crate) fn json(value: &impl serde::Serialize) -> http::Response<ApiBody> {
    match serde_json::to_vec(value) {
        Ok(v) => full(StatusCode::OK, "application/json", v),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("encoding: {e}")),
    }
}

/// A raft answer a handler has no use for (a bug, not a client error).
pub(crate) fn unexpected(answer: &Response) -> http::Response<ApiBody> {
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("unexpected answer: {answer:?}"),
    )
}

/// Why a write did not go through.
#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    #[error("this node is not the leader")]
    NotLeader(Option<String>),
    #[error("timed out waiting for the entry to be applied")]
    Timeout,
    #[error("raft: {0}")]
    Raft(String),
}

impl ProposeError {
    pub(crate) fn response(&self) -> http::Response<ApiBody> {
        match self {
            ProposeError::NotLeader(_) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "No leader known. Please try another server.",
            ),
            other => text(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

impl Api {
    /// Proposes one entry, stamped with this (leader) node's clock, and waits until it
    /// is committed and applied here.
    pub async fn propose(&self, op: Op) -> Result<Response, ProposeError> {
        let request = Request {
            time_ms: now_ms(),
            op,
        };
        match tokio::time::timeout(APPLY_TIMEOUT, self.raft.client_write(request)).await {
            Err(_) => Err(ProposeError::Timeout),
            Ok(Ok(written)) => Ok(written.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(ProposeError::NotLeader(f.leader_node.map(|n| n.addr)))
            }
            Ok(Err(e)) => Err(ProposeError::Raft(e.to_string())),
        }
    }

    /// Routes one request. The answer to a request another node forwarded carries this
    /// node's applied index, so that node can wait for it before it answers its client.
    pub async fn handle(
        self: Arc<Self>,
        req: http::Request<Incoming>,
        peer: SocketAddr,
    ) -> http::Response<ApiBody> {
        let forwarded = req.headers().contains_key(FORWARDED);
        let mut response = self.clone().route(req, peer).await;
        if forwarded {
            let applied = self.shared.read().applied_index();
            response
                .headers_mut()
                .insert(APPLIED_INDEX, HeaderValue::from(applied));
        }
        response
    }

    async fn route(
        self: Arc<Self>,
        req: http::Request<Incoming>,
        peer: SocketAddr,
    ) -> http::Response<ApiBody> {
        let path = req.uri().path().to_owned();
        if let Some(rest) = path
            .strip_prefix(protocol::PREFIX)
            .and_then(|r| r.strip_prefix('/'))
        {
            let rest = rest.to_owned();
            let origin = req.headers().get(header::ORIGIN).cloned();
            let response = if req.method() == Method::OPTIONS {
                self.preflight(origin.as_ref())
            } else {
                self.clone().public(req, &rest, peer).await
            };
            return self.with_cors(response, origin);
        }
        if !self.authorized(req.headers()).await {
            let mut r = text(StatusCode::UNAUTHORIZED, "unauthorized");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"unsplit\""),
            );
            return r;
        }
        match (req.method().clone(), path.as_str()) {
            (Method::GET, "/" | "/status") => self.status(req.headers()),
            (Method::GET, "/metrics") => self.metrics(),
            (Method::POST, "/raft/append" | "/raft/vote" | "/raft/snapshot") => {
                self.raft_rpc(req, &path).await
            }
            (Method::POST, "/snapshot") => self.force_snapshot().await,
            (Method::GET, "/outputlog") => self.output_log(),
            (Method::POST, "/quit") => self.quit(),
            (Method::POST, "/kill") => match self.leader_elsewhere() {
                Some(leader) => self.forward(&leader, req).await,
                None => self.kill(req).await,
            },
            (Method::POST, "/part") => match self.leader_elsewhere() {
                Some(leader) => self.forward(&leader, req).await,
                None => self.part(req).await,
            },
            (Method::POST, "/join") => match self.leader_elsewhere() {
                Some(leader) => self.forward(&leader, req).await,
                None => self.join(req).await,
            },
            (Method::POST, "/module" | "/module/activate") => match self.leader_elsewhere() {
                Some(leader) => self.forward(&leader, req).await,
                None if path == "/module" => self.upload_module(req).await,
                None => self.activate_module(req).await,
            },
            (Method::GET, "/config") => self.get_config(),
            (Method::POST, "/config") => match self.leader_elsewhere() {
                Some(leader) => self.forward(&leader, req).await,
                None => self.post_config(req).await,
            },
            (Method::GET, "/modules") => self.list_modules(),
            (Method::GET, "/rejected") => self.rejected(),
            (Method::GET, "/shadow") => json(&*self.shared.shadow_status()),
            (Method::POST, "/shadow") => self.steer_shadow(req).await,
            (Method::GET, "/snapshot") => self.download_snapshot().await,
            (Method::GET, "/log") => self.download_log(req.uri().query().unwrap_or("")).await,
            (Method::GET, p) if p.starts_with("/module/") => self.download_module(&p[8..]),
            _ => text(StatusCode::NOT_FOUND, "not found"),
        }
    }

    /// Basic auth with the network password. Failures are slowed down: the delay doubles
    /// with every failure (1 ms … 1 s) and a success resets it.
    async fn authorized(&self, headers: &HeaderMap) -> bool {
        let expected = crate::network::basic_auth(&self.password);
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            self.auth_failures.store(0, Ordering::Relaxed);
            return true;
        }
        let failures = self.auth_failures.fetch_add(1, Ordering::Relaxed).min(10);
        tokio::time::sleep(Duration::from_millis((1u64 << failures).min(1000))).await;
        false
    }

    async fn public(
        self: Arc<Self>,
        mut req: http::Request<Incoming>,
        rest: &str,
        peer: SocketAddr,
    ) -> http::Response<ApiBody> {
        let method = req.method().clone();
        if method != Method::GET {
            if self.raft.metrics().borrow().current_leader.is_none() {
                // An election is under way: hold the write until it is decided.
                self.wait_for_leader(None, LEADER_WAIT).await;
            }
            if let Some(leader) = self.leader_elsewhere() {
                if rest == "session" {
                    // The leader sees this node as the peer: tell it the client's TCP
                    // peer; the leader resolves a trusted bridge's X-Forwarded-For itself.
                    let addr = self
                        .forwarded_peer(req.headers())
                        .unwrap_or_else(|| peer.ip().to_string());
                    let auth = crate::network::basic_auth(&self.password);
                    let headers = req.headers_mut();
                    for (name, value) in [(CLIENT_ADDRESS, addr), (NODE_AUTH, auth)] {
                        if let Ok(v) = HeaderValue::from_str(&value) {
                            headers.insert(name, v);
                        }
                    }
                }
                return self.forward(&leader, req).await;
            }
        }
        if rest == "session" {
            return match method {
                Method::POST => self.create_session(req.headers(), peer).await,
                _ => text(StatusCode::METHOD_NOT_ALLOWED, "use POST"),
            };
        }
        let (id_text, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(session) = protocol::parse_session_id(id_text) else {
            return text(
                StatusCode::BAD_REQUEST,
                format!("invalid session id {id_text:?}"),
            );
        };
        if let Err(r) = self.check_session(session, req.headers()) {
            return r;
        }
        match (method, tail) {
            (Method::POST, "message") => self.post_message(session, req).await,
            (Method::GET, "messages") => {
                self.get_messages(session, req.uri().query().unwrap_or(""))
            }
            (Method::DELETE, "") => self.delete_session(session, req).await,
            _ => text(StatusCode::NOT_FOUND, "not found"),
        }
    }

    /// 404 unless the session exists here and the secret matches (RobustIRC's codes).
    #[allow(clippy::result_large_err)]
    fn check_session(
        &self,
        session: u64,
        headers: &HeaderMap,
    ) -> Result<(), http::Response<ApiBody>> {
        let Some(given) = headers
            .get(protocol::SESSION_AUTH)
            .and_then(|v| v.to_str().ok())
        else {
            return Err(text(StatusCode::NOT_FOUND, "no X-Session-Auth header set"));
        };
        let st = self.shared.read();
        match st.sessions.get(&session) {
            Some(s) if constant_time_eq(s.auth.as_bytes(), given.as_bytes()) => Ok(()),
            Some(_) => Err(text(StatusCode::NOT_FOUND, "invalid X-Session-Auth header")),
            // Not applied here yet (a lagging node, right after creation): try another
            // server. Gone for good only when this node is past the session's index.
            None if session.saturating_sub(MESSAGE_ID_OFFSET) > st.applied_index() => Err(text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Session not yet seen",
            )),
            None => Err(text(StatusCode::NOT_FOUND, "No such session")),
        }
    }

    async fn create_session(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
    ) -> http::Response<ApiBody> {
        let remote_addr = self.client_address(headers, peer);
        let mut secret = [0u8; 128];
        rand::fill(&mut secret[..]);
        let auth = hex::encode(secret);
        match self
            .propose(Op::CreateSession {
                auth: auth.clone(),
                remote_addr,
            })
            .await
        {
            Ok(Response::SessionCreated(id)) => {
                let prefix = self.shared.read().config().network.clone();
                json(&CreateSessionReply {
                    session_id: protocol::format_session_id(id),
                    session_auth: auth,
                    prefix,
                })
            }
            Ok(Response::SessionLimit(why)) => text(StatusCode::TOO_MANY_REQUESTS, why),
            Ok(Response::Rejected(reason)) => text(StatusCode::INTERNAL_SERVER_ERROR, reason),
            Ok(other) => unexpected(&other),
            Err(e) => e.response(),
        }
    }

    /// The client's address: the TCP peer, or `X-Forwarded-For` from a trusted bridge.
    /// Session limits per address and bans (GLINE, `[Banned]`) go by it.
    fn client_address(&self, headers: &HeaderMap, peer: SocketAddr) -> String {
        let peer = self
            .forwarded_peer(headers)
            .unwrap_or_else(|| peer.ip().to_string());
        let bridge = headers
            .get(protocol::BRIDGE_AUTH)
            .and_then(|v| v.to_str().ok());
        let forwarded = headers.get("X-Forwarded-For").and_then(|v| v.to_str().ok());
        if let (Some(secret), Some(forwarded)) = (bridge, forwarded)
            && self
                .shared
                .read()
                .config()
                .trusted_bridges
                .contains_key(secret)
            && let Some(first) = forwarded.split(',').next()
            && let Some(addr) = canonical_address(first)
        {
            return addr;
        }
        peer
    }

    /// On a create another node of the network forwarded: the TCP peer that node saw
    /// (authenticated with the network password). Whether that peer is a trusted bridge
    /// is decided here, on the leader, whose configuration is never behind a committed
    /// edit the way a follower's can be.
    fn forwarded_peer(&self, headers: &HeaderMap) -> Option<String> {
        let from_node = headers.get(NODE_AUTH).is_some_and(|v| {
            let expected = crate::network::basic_auth(&self.password);
            constant_time_eq(v.as_bytes(), expected.as_bytes())
        });
        if !from_node {
            return None;
        }
        headers
            .get(CLIENT_ADDRESS)
            .and_then(|v| v.to_str().ok())
            .and_then(canonical_address)
    }

    async fn post_message(
        &self,
        session: u64,
        req: http::Request<Incoming>,
    ) -> http::Response<ApiBody> {
        let body = match read_body(req.into_body(), protocol::MAX_POST_BODY).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let msg: PostMessage = match serde_json::from_slice(&body) {
            Ok(m) => m,
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")),
        };
        // One line per message: whatever follows the first line break is dropped.
        let line = msg.data.split(['\n', '\r']).next().unwrap_or("").to_owned();
        let op = Op::Line {
            session,
            client_message_id: msg.client_message_id,
            data: line,
        };
        // One post of a session at a time, each waiting for the throttle (RobustIRC's
        // PostMessageCooloff): the entry time the leader stamps is never earlier than the
        // replicated state allows.
        let gate = self.post_gate(session);
        let turn = gate.gate.lock().await;
        self.throttle(session).await;
        let result = self.propose(op).await;
        drop(turn);
        drop(gate);
        match result {
            Ok(Response::Applied | Response::Duplicate | Response::Rejected(_)) => {
                full(StatusCode::OK, "text/plain", "")
            }
            Ok(Response::NoSuchSession) => text(StatusCode::NOT_FOUND, "No such session"),
            Ok(other) => unexpected(&other),
            Err(e) => e.response(),
        }
    }

    /// The session's post gate; dropping the handle (also when the client went away
    /// mid-wait) forgets the gate once no other post holds or waits for it.
    fn post_gate(&self, session: u64) -> PostGate<'_> {
        let mut gates = self.post_gates.lock().unwrap_or_else(|e| e.into_inner());
        PostGate {
            api: self,
            session,
            gate: gates.entry(session).or_default().clone(),
        }
    }

    /// Waits until the session's next line may be proposed (`throttle`). Bounded by the
    /// cooloff (plus a second for a leader whose clock is behind the previous one's).
    async fn throttle(&self, session: u64) {
        let (ready_at, cooloff) = {
            let st = self.shared.read();
            let cooloff = st.config().post_message_cooloff_ms;
            match st.sessions.get(&session) {
                Some(s) if cooloff > 0 => (s.throttle.ready_at(cooloff), cooloff),
                _ => return,
            }
        };
        let limit = Duration::from_millis(cooloff + 1000);
        let started = Instant::now();
        loop {
            let now = now_ms();
            if now >= ready_at || started.elapsed() >= limit {
                return;
            }
            tokio::time::sleep(Duration::from_millis(ready_at - now)).await;
        }
    }

    /// CORS preflight (`OPTIONS`) of the public API: allowed for `WhitelistedOrigins`.
    fn preflight(&self, origin: Option<&HeaderValue>) -> http::Response<ApiBody> {
        match origin {
            Some(o) if !self.origin_allowed(o) => text(
                StatusCode::FORBIDDEN,
                "this origin is not in the network's WhitelistedOrigins",
            ),
            _ => {
                let mut r = full(StatusCode::NO_CONTENT, "text/plain", "");
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(CORS_METHODS));
                r
            }
        }
    }

    fn origin_allowed(&self, origin: &HeaderValue) -> bool {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let st = self.shared.read();
        st.config().whitelisted_origins.iter().any(|o| o == origin)
    }

    /// RobustIRC's CORS headers for a whitelisted `Origin` (plus the methods, which
    /// browsers need for DELETE, and `Vary`).
    fn with_cors(
        &self,
        mut r: http::Response<ApiBody>,
        origin: Option<HeaderValue>,
    ) -> http::Response<ApiBody> {
        let Some(origin) = origin.filter(|o| self.origin_allowed(o)) else {
            return r;
        };
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("X-Session-Auth, Accept, Content-Type"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(CORS_METHODS),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        r
    }

    /// `POST /kill` (form `session=0x…`, repeatable), as RobustIRC: each session is
    /// deleted with the quit message "killed". 404 names the sessions that did not exist.
    async fn kill(&self, req: http::Request<Incoming>) -> http::Response<ApiBody> {
        let body = match read_body(req.into_body(), 64 << 10).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let form = String::from_utf8_lossy(&body);
        let mut sessions = Vec::new();
        for pair in form.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("session", v)) => match protocol::parse_session_id(v.trim()) {
                    Some(id) => sessions.push(id),
                    None => {
                        return text(StatusCode::BAD_REQUEST, format!("invalid session id {v:?}"));
                    }
                },
                _ => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("expected session=0x… form fields, got {pair:?}"),
                    );
                }
            }
        }
        if sessions.is_empty() {
            return text(StatusCode::BAD_REQUEST, "expected session=0x… form fields");
        }
        let (mut report, mut missing) = (String::new(), false);
        for session in sessions {
            let op = Op::DeleteSession {
                session,
                quit_message: "killed".into(),
            };
            let id = protocol::format_session_id(session);
            match self.propose(op).await {
                Ok(Response::NoSuchSession) => {
                    missing = true;
                    report.push_str(&format!("{id}: no such session\n"));
                }
                Ok(_) => report.push_str(&format!("{id}: killed\n")),
                Err(e) => return e.response(),
            }
        }
        let status = if missing {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        full(status, "text/plain; charset=utf-8", report)
    }

    async fn delete_session(
        &self,
        session: u64,
        req: http::Request<Incoming>,
    ) -> http::Response<ApiBody> {
        let body = match read_body(req.into_body(), protocol::MAX_POST_BODY).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let quit: DeleteSession = if body.iter().all(u8::is_ascii_whitespace) {
            DeleteSession::default()
        } else {
            match serde_json::from_slice(&body) {
                Ok(q) => q,
                Err(e) => return text(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")),
            }
        };
        let quit_message = quit
            .quit_message
            .split(['\n', '\r'])
            .next()
            .unwrap_or("")
            .to_owned();
        match self
            .propose(Op::DeleteSession {
                session,
                quit_message,
            })
            .await
        {
            Ok(Response::NoSuchSession) => text(StatusCode::NOT_FOUND, "No such session"),
            Ok(_) => full(StatusCode::OK, "text/plain", ""),
            Err(e) => e.response(),
        }
    }

    fn get_messages(self: Arc<Self>, session: u64, query: &str) -> http::Response<ApiBody> {
        if self.partitioned() {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "No contact with the leader for more than {:?}; try another server.",
                    self.leader_timeout
                ),
            );
        }
        let mut lastseen = MessageId::default();
        for pair in query.split('&') {
            if let Some(value) = pair.strip_prefix("lastseen=") {
                match MessageId::parse_lastseen(value) {
                    Some(id) => lastseen = id,
                    None => {
                        return text(
                            StatusCode::BAD_REQUEST,
                            format!("invalid lastseen {value:?}"),
                        );
                    }
                }
            }
        }
        let generation = self.next_stream.fetch_add(1, Ordering::Relaxed);
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session, generation);
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        let api = self.clone();
        tokio::spawn(async move {
            api.open_streams.fetch_add(1, Ordering::Relaxed);
            api.stream(session, generation, lastseen, tx).await;
            api.open_streams.fetch_sub(1, Ordering::Relaxed);
            let mut streams = api.streams.lock().unwrap_or_else(|e| e.into_inner());
            if streams.get(&session) == Some(&generation) {
                streams.remove(&session);
            }
        });
        let mut r = http::Response::new(Either::Right(StreamBody(rx)));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }

    /// Feeds one GetMessages stream until the session ends, the client goes away, or a
    /// newer stream for the same session supersedes it.
    async fn stream(
        &self,
        session: u64,
        generation: u64,
        mut cursor: MessageId,
        tx: mpsc::Sender<Bytes>,
    ) {
        let notify = self.shared.wakeups.subscribe(session);
        let ping_every = Duration::from_secs(protocol::PING_INTERVAL_SECS);
        let mut next_ping = Instant::now();
        loop {
            if self
                .streams
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&session)
                != Some(&generation)
            {
                return;
            }
            // Cut off from the leader: end the stream so the client moves elsewhere.
            if self.partitioned() {
                return;
            }
            // Hold until this node has applied everything the client has seen, and what
            // the node itself had before it restarted.
            let hold_until = self
                .ready_index
                .max(cursor.id.saturating_sub(MESSAGE_ID_OFFSET));
            let (lines, alive) = {
                let st = self.shared.read();
                if st.applied_index() < hold_until {
                    (Vec::new(), true)
                } else {
                    (
                        st.output.lines_after(session, cursor, STREAM_BATCH),
                        st.sessions.contains_key(&session),
                    )
                }
            };
            let mut chunk = Vec::new();
            if Instant::now() >= next_ping {
                let ping = Message {
                    kind: kind::PING,
                    servers: self.servers(),
                    ..Message::default()
                };
                if serde_json::to_writer(&mut chunk, &ping).is_ok() {
                    chunk.push(b'\n');
                }
                next_ping = Instant::now() + ping_every;
            }
            for (id, data) in &lines {
                let m = Message {
                    id: *id,
                    kind: kind::IRC_TO_CLIENT,
                    data: data.clone(),
                    ..Message::default()
                };
                if serde_json::to_writer(&mut chunk, &m).is_ok() {
                    chunk.push(b'\n');
                }
                cursor = *id;
            }
            if !chunk.is_empty() && tx.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
            if lines.len() == STREAM_BATCH {
                continue;
            }
            if !alive {
                return;
            }
            // Edge-triggered wake-ups plus a level check every second: a missed
            // notification costs at most a second, never a stuck stream.
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1).min(next_ping.saturating_duration_since(Instant::now()))) => {}
                _ = tx.closed() => return,
            }
        }
    }

    /// The members as an HTML table: id, address, voter or learner, and (on the leader)
    /// how far each has replicated.
    fn peer_table(&self, m: &openraft::RaftMetrics<NodeId, openraft::BasicNode>) -> String {
        let membership = m.membership_config.membership();
        let mut rows = String::from(
            "<table><tr><th>id</th><th>address</th><th>role</th><th>replicated to</th></tr>",
        );
        for (id, node) in membership.nodes() {
            let role = if membership.voter_ids().any(|v| v == *id) {
                "voter"
            } else {
                "learner"
            };
            let role = if m.current_leader == Some(*id) {
                "leader"
            } else {
                role
            };
            let replicated = match &m.replication {
                Some(r) => r
                    .get(id)
                    .cloned()
                    .flatten()
                    .map(|l| l.index.to_string())
                    .unwrap_or_else(|| "-".into()),
                None => "(known to the leader)".into(),
            };
            rows.push_str(&format!(
                "<tr><td>{id}</td><td>{}</td><td>{role}</td><td>{replicated}</td></tr>",
                html_escape(&node.addr)
            ));
        }
        rows.push_str("</table>");
        rows
    }

    /// The network's nodes as `host:port`, for pings and status.
    fn servers(&self) -> Vec<String> {
        let metrics = self.raft.metrics().borrow().clone();
        metrics
            .membership_config
            .membership()
            .nodes()
            .map(|(_, n)| n.addr.clone())
            .collect()
    }

    fn status(&self, headers: &HeaderMap) -> http::Response<ApiBody> {
        let m = self.raft.metrics().borrow().clone();
        let leader = m
            .current_leader
            .and_then(|l| {
                m.membership_config
                    .membership()
                    .get_node(&l)
                    .map(|n| n.addr.clone())
            })
            .unwrap_or_default();
        let applied = self.shared.read().applied_index();
        let last_contact = if m.current_leader == Some(self.id) {
            0.0
        } else {
            self.last_contact
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .map(|t| t.elapsed().as_secs_f64())
                .unwrap_or(-1.0)
        };
        let status = serde_json::json!({
            "State": format!("{:?}", m.state),
            "Leader": leader,
            "Peers": self.servers(),
            "AppliedIndex": applied,
            "CommitIndex": m.last_applied.map(|l| l.index).unwrap_or(0).max(applied),
            "LastContact": last_contact,
            "ExecutableHash": self.exe_hash.get().map(String::as_str).unwrap_or(""),
            "CurrentTime": now_ms(),
            "Voters": m
                .membership_config
                .membership()
                .voter_ids()
                .filter_map(|v| m.membership_config.membership().get_node(&v).map(|n| n.addr.clone()))
                .collect::<Vec<_>>(),
            "SnapshotIndex": m.snapshot.map(|l| l.index).unwrap_or(0),
            "PurgedIndex": m.purged.map(|l| l.index).unwrap_or(0),
            "ActiveModule": self.shared.read().modules.active(),
            "ActivePlugins": self.shared.read().modules.active_plugins(),
        });
        let wants_json = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"));
        if wants_json {
            return json(&status);
        }
        let st = self.shared.read();
        let config = st.config().clone();
        let html = format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>unsplit {network} — node {id}</title>\
             <style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em 1em;text-align:left}}</style></head><body>\
             <h1>unsplit network {network}</h1><table>\
             <tr><th>node</th><td>{id}</td></tr><tr><th>state</th><td>{state:?}</td></tr>\
             <tr><th>leader</th><td>{leader}</td></tr><tr><th>peers</th><td>{peers}</td></tr>\
             <tr><th>term</th><td>{term}</td></tr><tr><th>applied index</th><td>{applied}</td></tr>\
             <tr><th>sessions</th><td>{sessions}</td></tr><tr><th>open GetMessages streams</th><td>{streams}</td></tr>\
             <tr><th>output window</th><td>{lines} lines in {batches} entries</td></tr>\
             <tr><th>rejected entries</th><td>{rejected}</td></tr><tr><th>config revision</th><td>{revision}</td></tr>\
             <tr><th>logic module</th><td>{module}</td></tr><tr><th>services plugins</th><td>{plugins}</td></tr>\
             <tr><th>plugin traps</th><td>{plugin_failures}</td></tr><tr><th>pending password hashes</th><td>{hashes}</td></tr>\
             <tr><th>shadow</th><td>{shadow}</td></tr>\
             <tr><th>executable</th><td>{exe}</td></tr><tr><th>up</th><td>{up} s</td></tr></table>\
             <h2>Rejected entries and plugin traps (newest {kept})</h2>\
             <table><tr><th>index</th><th>session</th><th>trap</th><th>input</th><th>module</th><th>plugin</th></tr>{rejected_rows}</table>\
             </body></html>",
            network = html_escape(&config.network),
            id = self.id,
            state = m.state,
            leader = html_escape(&leader),
            peers = self.peer_table(&m),
            term = m.current_term,
            sessions = st.sessions.len(),
            streams = self.open_streams.load(Ordering::Relaxed),
            lines = st.output.line_count(),
            batches = st.output.batch_count(),
            rejected = st.rejected,
            revision = st.config_revision,
            exe = self
                .exe_hash
                .get()
                .map(String::as_str)
                .unwrap_or("(computing)"),
            up = self.started.elapsed().as_secs(),
            module = match st.modules.active() {
                Some(a) => format!(
                    "{} <code>{}</code> since index {}",
                    html_escape(&a.version),
                    &a.hash[..16],
                    a.index
                ),
                None => "built-in (nothing activated yet)".into(),
            },
            plugins = {
                let active = st.modules.active_plugins();
                if active.is_empty() {
                    "none".to_owned()
                } else {
                    active
                        .iter()
                        .map(|(name, a)| {
                            format!(
                                "{} {} <code>{}</code> since index {}",
                                html_escape(name),
                                html_escape(&a.version),
                                &a.hash[..16],
                                a.index
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("<br>")
                }
            },
            plugin_failures = st.plugin_failures,
            hashes = st.hash_jobs.len(),
            shadow = {
                let sh = self.shared.shadow_status();
                match (&sh.hash, &sh.error) {
                    (Some(h), _) => format!(
                        "{} <code>{}</code> since index {}: {} compared, {} divergent, {} traps",
                        html_escape(&sh.version),
                        &h[..16],
                        sh.since_index,
                        sh.compared,
                        sh.divergences,
                        sh.traps
                    ),
                    (None, Some(e)) => format!("failed to start: {}", html_escape(e)),
                    (None, None) => "none".into(),
                }
            },
            kept = st.rejected_log.len(),
            rejected_rows = st
                .rejected_log
                .iter()
                .rev()
                .map(|r| format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                    r.index,
                    r.session,
                    html_escape(&r.reason),
                    html_escape(&r.input),
                    r.module.get(..16).unwrap_or(&r.module),
                    html_escape(r.plugin.as_deref().unwrap_or("(the logic: rejected)"))
                ))
                .collect::<String>(),
        );
        full(StatusCode::OK, "text/html; charset=utf-8", html)
    }

    fn metrics(&self) -> http::Response<ApiBody> {
        let m = self.raft.metrics().borrow().clone();
        let st = self.shared.read();
        let c = &self.shared.counters;
        let mut out = String::new();
        // `value` is the sample's value, or whole labelled sample lines (starting with
        // the metric's name).
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let samples = if value.starts_with(name) {
                value
            } else {
                format!("{name} {value}")
            };
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{samples}\n"
            ));
        };
        metric(
            "unsplit_raft_is_leader",
            "gauge",
            "1 if this node is the raft leader.",
            u8::from(m.current_leader == Some(self.id)).to_string(),
        );
        metric(
            "unsplit_raft_term",
            "gauge",
            "Current raft term.",
            m.current_term.to_string(),
        );
        metric(
            "unsplit_raft_last_log_index",
            "gauge",
            "Index of the last raft log entry.",
            m.last_log_index.unwrap_or(0).to_string(),
        );
        metric(
            "unsplit_applied_index",
            "gauge",
            "Index of the last applied entry.",
            st.applied_index().to_string(),
        );
        metric(
            "unsplit_sessions",
            "gauge",
            "Live sessions.",
            st.sessions.len().to_string(),
        );
        metric(
            "unsplit_getmessages_streams",
            "gauge",
            "Open GetMessages streams on this node.",
            self.open_streams.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "unsplit_output_window_lines",
            "gauge",
            "Lines retained in the output window.",
            st.output.line_count().to_string(),
        );
        metric(
            "unsplit_applied_entries_total",
            "counter",
            "Entries applied since start.",
            c.applied_entries.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "unsplit_output_lines_total",
            "counter",
            "Output lines produced since start.",
            c.output_lines.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "unsplit_rejected_entries_total",
            "counter",
            "Entries rejected because the logic trapped (since start).",
            c.rejected_entries.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "unsplit_apply_seconds_total",
            "counter",
            "Time spent in the IRC logic.",
            format!("{:.6}", c.apply_nanos.load(Ordering::Relaxed) as f64 / 1e9),
        );
        let by_kind = ["panic", "out_of_fuel", "out_of_memory"]
            .iter()
            .enumerate()
            .map(|(i, kind)| {
                format!(
                    "unsplit_rejected_entries_by_kind_total{{kind=\"{kind}\"}} {}",
                    c.rejected_by_kind[i].load(Ordering::Relaxed)
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        metric(
            "unsplit_rejected_entries_by_kind_total",
            "counter",
            "Entries rejected since start, by trap kind.",
            by_kind,
        );
        metric(
            "unsplit_rejected_entries_replicated",
            "gauge",
            "Entries rejected since the network began (replicated state).",
            st.rejected.to_string(),
        );
        metric(
            "unsplit_module_swaps_total",
            "counter",
            "Switches of the active logic module applied by this node (since start).",
            c.swaps.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "unsplit_module_last_swap_seconds",
            "gauge",
            "How long the last module switch paused the apply loop.",
            format!(
                "{:.6}",
                c.last_swap_micros.load(Ordering::Relaxed) as f64 / 1e6
            ),
        );
        metric(
            "unsplit_module_active_index",
            "gauge",
            "Log index from which the active module runs (0: built-in).",
            st.modules
                .active()
                .map(|a| a.index)
                .unwrap_or(0)
                .to_string(),
        );
        {
            let sh = self.shared.shadow_status();
            metric(
                "unsplit_shadow_active",
                "gauge",
                "1 when this node runs a shadow module.",
                u8::from(sh.hash.is_some()).to_string(),
            );
            metric(
                "unsplit_shadow_compared_total",
                "counter",
                "Entries the shadow module applied beside the active one.",
                sh.compared.to_string(),
            );
            metric(
                "unsplit_shadow_divergences_total",
                "counter",
                "Entries where the shadow's outcome differed from the active module's.",
                sh.divergences.to_string(),
            );
            metric(
                "unsplit_shadow_traps_total",
                "counter",
                "Entries the shadow module trapped on.",
                sh.traps.to_string(),
            );
        }
        metric(
            "unsplit_plugin_traps_total",
            "counter",
            "Calls of services plugins that trapped (the plugin was reset, the entry went on; since start).",
            c.plugin_traps.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "unsplit_plugin_traps_replicated",
            "gauge",
            "Services plugin traps since the network began (replicated state).",
            st.plugin_failures.to_string(),
        );
        metric(
            "unsplit_password_hashes_pending",
            "gauge",
            "Password hashes services asked for that the leader has not committed yet.",
            st.hash_jobs.len().to_string(),
        );
        metric(
            "unsplit_password_hashes_total",
            "counter",
            "Password hashes this node computed as leader (since start).",
            c.hashes.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "unsplit_password_hash_seconds_total",
            "counter",
            "Time this node spent hashing passwords, off the apply path.",
            format!("{:.6}", c.hash_nanos.load(Ordering::Relaxed) as f64 / 1e9),
        );
        metric(
            "unsplit_wasm_fuel_total",
            "counter",
            "Wasm fuel used by the IRC logic and its plugins.",
            c.fuel_used.load(Ordering::Relaxed).to_string(),
        );
        // Cluster: commit/apply lag and per-peer replication lag (on the leader).
        let last_log = m.last_log_index.unwrap_or(0);
        let applied = st.applied_index();
        out.push_str(&format!(
            "# HELP unsplit_apply_lag_entries Log entries this node has but has not applied.\n\
             # TYPE unsplit_apply_lag_entries gauge\nunsplit_apply_lag_entries {}\n",
            last_log.saturating_sub(applied)
        ));
        if let Some(replication) = &m.replication {
            out.push_str(
                "# HELP unsplit_replication_lag_entries Entries a peer is behind the leader's log.\n\
                 # TYPE unsplit_replication_lag_entries gauge\n",
            );
            for (peer, matched) in replication.iter() {
                let lag = last_log.saturating_sub(matched.as_ref().map(|l| l.index).unwrap_or(0));
                out.push_str(&format!(
                    "unsplit_replication_lag_entries{{peer=\"{peer}\"}} {lag}\n"
                ));
            }
        }
        // Apply latency histogram and fuel per entry.
        out.push_str(
            "# HELP unsplit_apply_duration_seconds Time the IRC logic took per entry.\n\
             # TYPE unsplit_apply_duration_seconds histogram\n",
        );
        let mut cumulative = 0;
        for (i, bucket) in c.apply_buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = crate::sm::APPLY_BUCKETS_US
                .get(i)
                .map(|us| format!("{}", *us as f64 / 1e6))
                .unwrap_or_else(|| "+Inf".to_owned());
            out.push_str(&format!(
                "unsplit_apply_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}\n"
            ));
        }
        let calls = c.logic_calls.load(Ordering::Relaxed);
        out.push_str(&format!(
            "unsplit_apply_duration_seconds_sum {:.6}\nunsplit_apply_duration_seconds_count {calls}\n",
            c.apply_nanos.load(Ordering::Relaxed) as f64 / 1e9
        ));
        out.push_str(&format!(
            "# HELP unsplit_wasm_fuel_per_entry Average wasm fuel per entry since start.\n\
             # TYPE unsplit_wasm_fuel_per_entry gauge\nunsplit_wasm_fuel_per_entry {}\n",
            c.fuel_used
                .load(Ordering::Relaxed)
                .checked_div(calls)
                .unwrap_or(0)
        ));
        full(StatusCode::OK, "text/plain; version=0.0.4", out)
    }

    /// `POST /quit`: the process exits after answering (a supervisor restarts it; used by
    /// `unsplit rollingrestart`). Raft is shut down first, so the log is flushed.
    fn quit(&self) -> http::Response<ApiBody> {
        let raft = self.raft.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            tracing::info!("quitting on request (POST /quit)");
            let _ = raft.shutdown().await;
            std::process::exit(0);
        });
        text(StatusCode::OK, "quitting")
    }

    /// `POST /part {"Addr": "host:port"}` on the leader: removes that node from the
    /// network, refused when the remaining voters could not keep a quorum (a majority of
    /// them must answer right now).
    async fn part(&self, req: http::Request<Incoming>) -> http::Response<ApiBody> {
        let addr = match read_addr(req).await {
            Ok(addr) => addr,
            Err(r) => return r,
        };
        let membership = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .clone();
        let Some(id) = membership
            .nodes()
            .find(|(_, n)| n.addr == addr)
            .map(|(id, _)| *id)
        else {
            return text(
                StatusCode::NOT_FOUND,
                format!("{} is not a member of this network", addr),
            );
        };
        let remaining: Vec<(NodeId, String)> = membership
            .voter_ids()
            .filter(|&v| v != id)
            .filter_map(|v| membership.get_node(&v).map(|n| (v, n.addr.clone())))
            .collect();
        if remaining.is_empty() {
            return text(StatusCode::BAD_REQUEST, "refusing to remove the last voter");
        }
        let mut answering = 0;
        for (voter, addr) in &remaining {
            if *voter == self.id || self.answers(addr).await {
                answering += 1;
            }
        }
        if answering * 2 <= remaining.len() {
            return text(
                StatusCode::BAD_REQUEST,
                format!(
                    "refusing: only {answering} of the {} remaining voters answer, which is no quorum",
                    remaining.len()
                ),
            );
        }
        // Another membership change (a join being promoted) may be in flight: retry for
        // a while rather than fail.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let remove =
                openraft::ChangeMembers::RemoveVoters(std::collections::BTreeSet::from([id]));
            match self.raft.change_membership(remove, false).await {
                Ok(_) => return text(StatusCode::OK, format!("removed node {id} ({})", addr)),
                Err(e)
                    if e.to_string().contains("undergoing a configuration change")
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    return text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("removing {}: {e}", addr),
                    );
                }
            }
        }
    }

    /// Whether a node answers its status within two seconds.
    async fn answers(&self, addr: &str) -> bool {
        let Ok(req) = http::Request::get(format!("https://{addr}/"))
            .header(
                header::AUTHORIZATION,
                crate::network::basic_auth(&self.password),
            )
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
        else {
            return false;
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(2), self.client.request(req)).await,
            Ok(Ok(r)) if r.status().is_success()
        )
    }

    /// `GET /outputlog`: the whole output window as one JSON document, for comparing what
    /// every node produced for every input (the robustness test, operators).
    fn output_log(&self) -> http::Response<ApiBody> {
        let st = self.shared.read();
        let batches: Vec<serde_json::Value> = st
            .output
            .batches()
            .map(|b| {
                serde_json::json!({
                    "Id": b.id,
                    "Lines": b.lines.iter().map(|l| serde_json::json!({
                        "Reply": l.reply, "Data": l.text, "Recipients": l.recipients,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json(&serde_json::json!({ "AppliedIndex": st.applied_index(), "Batches": batches }))
    }

    /// The leader's address when another node leads (writes go there).
    pub(crate) fn leader_elsewhere(&self) -> Option<String> {
        let m = self.raft.metrics().borrow().clone();
        let leader = m.current_leader.filter(|&l| l != self.id)?;
        m.membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())
    }

    /// Whether this node lost the leader: not the leader itself and no append from one
    /// for longer than `leader_timeout`. Such a node refuses and ends streams.
    pub fn partitioned(&self) -> bool {
        if self.raft.metrics().borrow().current_leader == Some(self.id) {
            return false;
        }
        let last = *self.last_contact.lock().unwrap_or_else(|e| e.into_inner());
        match last {
            Some(t) => t.elapsed() > self.leader_timeout,
            // Never heard from a leader since start: give it one timeout.
            None => self.started.elapsed() > self.leader_timeout,
        }
    }

    /// Proxies a request to the leader and returns its answer with
    /// `Content-Location: //<leader><path>` (RobustIRC's convention).
    pub(crate) async fn forward(
        &self,
        leader: &str,
        req: http::Request<Incoming>,
    ) -> http::Response<ApiBody> {
        if req.headers().contains_key(FORWARDED) {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "No leader known. Please try another server.",
            );
        }
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let (parts, body) = req.into_parts();
        let limit = if path.starts_with("/module") {
            crate::modules::MAX_MODULE_BYTES
        } else {
            1 << 20
        };
        let body = match read_body(body, limit).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        let mut leader = leader.to_owned();
        // One retry: when the leader we knew is gone, hold the request until the network
        // has elected another (bounded), instead of sending the client into backoff.
        for attempt in 0..2 {
            let mut out = http::Request::builder()
                .method(parts.method.clone())
                .uri(format!("https://{leader}{path}"));
            for name in [
                header::AUTHORIZATION.as_str(),
                header::CONTENT_TYPE.as_str(),
                header::USER_AGENT.as_str(),
                protocol::SESSION_AUTH,
                protocol::BRIDGE_AUTH,
                "X-Forwarded-For",
                crate::admin::CONFIG_REVISION,
                CLIENT_ADDRESS,
                NODE_AUTH,
            ] {
                if let Some(v) = parts.headers.get(name) {
                    out = out.header(name, v);
                }
            }
            let Ok(out) = out.header(FORWARDED, "1").body(Full::new(body.clone())) else {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot forward this request",
                );
            };
            let reply = match tokio::time::timeout(APPLY_TIMEOUT, self.client.request(out)).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    let old = self.raft.metrics().borrow().current_leader;
                    match self.wait_for_leader(old, LEADER_WAIT).await {
                        Some(addr) if attempt == 0 => {
                            leader = addr;
                            continue;
                        }
                        _ => {
                            return text(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                format!("forwarding to the leader {leader}: {e}"),
                            );
                        }
                    }
                }
                Err(_) => {
                    return text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("forwarding to the leader {leader} timed out"),
                    );
                }
            };
            let status = reply.status();
            let applied = reply
                .headers()
                .get(APPLIED_INDEX)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let content_type = reply.headers().get(header::CONTENT_TYPE).cloned();
            let revision = reply.headers().get(crate::admin::CONFIG_REVISION).cloned();
            let body = match Limited::new(reply.into_body(), 1 << 20).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("reading the leader's answer: {e}"),
                    );
                }
            };
            // Read your writes: what the client changed through this node shows in its
            // next read here (GET /config, /modules, a new session's GetMessages). A
            // node that cannot catch up in time answers anyway; reads are then stale.
            // Not for posted lines, the hot path: their output reaches the session's
            // stream whenever this node applies them, nothing is read back.
            if let Some(index) = applied.filter(|_| !path.ends_with("/message")) {
                let _ = self
                    .raft
                    .wait(Some(LEADER_WAIT))
                    .applied_index_at_least(Some(index), "a forwarded write")
                    .await;
            }
            let mut r = http::Response::new(Either::Left(Full::new(body)));
            *r.status_mut() = status;
            if let Some(ct) = content_type {
                r.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            if let Some(rev) = revision {
                r.headers_mut().insert(crate::admin::CONFIG_REVISION, rev);
            }
            if let Ok(v) = HeaderValue::from_str(&format!("//{leader}{path}")) {
                r.headers_mut().insert(header::CONTENT_LOCATION, v);
            }
            return r;
        }
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "No leader known. Please try another server.",
        )
    }

    /// Waits (at most `limit`) until a leader other than `not` is known and another node
    /// than this one; returns its address. `None` when none appeared, or when this node
    /// became the leader (the client's retry then lands here).
    async fn wait_for_leader(&self, not: Option<NodeId>, limit: Duration) -> Option<String> {
        let mut rx = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            {
                let m = rx.borrow_and_update();
                match m.current_leader {
                    Some(id) if id == self.id => return None,
                    Some(id) if Some(id) != not => {
                        return m
                            .membership_config
                            .membership()
                            .get_node(&id)
                            .map(|n| n.addr.clone());
                    }
                    _ => {}
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }

    /// `POST /join {"Addr": "host:port"}` on the leader: the node becomes a learner with
    /// the next free id, and a voter once it has caught up. Idempotent per address.
    async fn join(self: Arc<Self>, req: http::Request<Incoming>) -> http::Response<ApiBody> {
        let addr = match read_addr(req).await {
            Ok(addr) => addr,
            Err(r) => return r,
        };
        // Only an established leader hands out ids: before it has committed its own
        // membership, every id would look free.
        let mut last_id = self.join_lock.lock().await;
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        if metrics.current_leader != Some(self.id) || membership.voter_ids().next().is_none() {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Not ready to add nodes yet; retry.",
            );
        }
        let existing = membership
            .nodes()
            .find(|(_, n)| n.addr == addr)
            .map(|(id, _)| *id);
        let id = match existing {
            Some(id) => id,
            None => {
                let highest = membership.nodes().map(|(id, _)| *id).max().unwrap_or(0);
                let id = highest.max(*last_id) + 1;
                *last_id = id;
                let node = openraft::BasicNode { addr: addr.clone() };
                if let Err(e) = self.raft.add_learner(id, node, false).await {
                    return text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("adding {}: {e}", addr),
                    );
                }
                id
            }
        };
        let is_voter = membership.voter_ids().any(|v| v == id);
        if !is_voter {
            let api = self.clone();
            tokio::spawn(async move { api.promote_when_caught_up(id).await });
        }
        json(&serde_json::json!({ "Id": id }))
    }

    /// Makes a learner a voter once its log has caught up with the leader's (bounded).
    async fn promote_when_caught_up(&self, id: NodeId) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            let m = self.raft.metrics().borrow().clone();
            if m.current_leader != Some(self.id) {
                return;
            }
            let last = m.last_log_index.unwrap_or(0);
            let matched = m
                .replication
                .as_ref()
                .and_then(|r| r.get(&id).cloned().flatten())
                .map(|l| l.index)
                .unwrap_or(0);
            if matched + 100 >= last && matched > 0 {
                let add =
                    openraft::ChangeMembers::AddVoterIds(std::collections::BTreeSet::from([id]));
                match self.raft.change_membership(add, false).await {
                    Ok(_) => {
                        tracing::info!("node {id} caught up and is a voter now");
                        return;
                    }
                    Err(e) => tracing::warn!("promoting node {id}: {e}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tracing::warn!("node {id} did not catch up within 5 minutes; it stays a learner");
    }

    /// Takes a snapshot now and purges the log it covers (RobustIRC's `/snapshot`).
    async fn force_snapshot(&self) -> http::Response<ApiBody> {
        let applied = self.shared.read().applied_index();
        if let Err(e) = self.raft.trigger().snapshot().await {
            return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
        let done = self
            .raft
            .wait(Some(Duration::from_secs(30)))
            .metrics(
                |m| m.snapshot.is_some_and(|s| s.index >= applied),
                "snapshot",
            )
            .await;
        if let Err(e) = done {
            return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
        if let Err(e) = self.raft.trigger().purge_log(applied).await {
            return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
        // The purge runs asynchronously: answer once it is done (bounded; openraft keeps
        // entries a lagging follower still needs, so it may stop short).
        let _ = self
            .raft
            .wait(Some(Duration::from_secs(5)))
            .metrics(|m| m.purged.is_some_and(|p| p.index >= applied), "purge")
            .await;
        let purged = self
            .raft
            .metrics()
            .borrow()
            .purged
            .map(|p| p.index)
            .unwrap_or(0);
        let mut answer = format!("snapshot at index {applied}, log purged up to {purged}");
        if purged < applied {
            answer.push_str(" (the rest is still needed by a follower)");
        }
        text(StatusCode::OK, answer)
    }

    async fn raft_rpc(&self, req: http::Request<Incoming>, path: &str) -> http::Response<ApiBody> {
        let body = match read_body(req.into_body(), 512 << 20).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        if path != "/raft/vote" {
            *self.last_contact.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
        let bad =
            |e: serde_json::Error| text(StatusCode::BAD_REQUEST, format!("invalid raft RPC: {e}"));
        match path {
            "/raft/append" => match serde_json::from_slice(&body) {
                Ok(rpc) => json(&self.raft.append_entries(rpc).await),
                Err(e) => bad(e),
            },
            "/raft/vote" => match serde_json::from_slice(&body) {
                Ok(rpc) => json(&self.raft.vote(rpc).await),
                Err(e) => bad(e),
            },
            _ => match serde_json::from_slice(&body) {
                Ok(rpc) => json(&self.raft.install_snapshot(rpc).await),
                Err(e) => bad(e),
            },
        }
    }
}

/// Reads a whole request body of at most `limit` bytes; a larger one is answered with
/// `400 request body larger than <limit> bytes`.
#[allow(clippy::result_large_err)]
pub(crate) async fn read_body(
    body: Incoming,
    limit: usize,
) -> Result<Bytes, http::Response<ApiBody>> {
    match Limited::new(body, limit).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(_) => Err(text(
            StatusCode::BAD_REQUEST,
            format!("request body larger than {limit} bytes"),
        )),
    }
}

/// The `{"Addr": "host:port"}` body of `/join` and `/part`.
#[derive(serde::Deserialize)]
struct AddrBody {
    #[serde(rename = "Addr")]
    addr: String,
}

/// Reads and checks an [`AddrBody`]; errors are answered with 400.
#[allow(clippy::result_large_err)]
async fn read_addr(req: http::Request<Incoming>) -> Result<String, http::Response<ApiBody>> {
    let body = read_body(req.into_body(), 4096).await?;
    let parsed: AddrBody = serde_json::from_slice(&body)
        .map_err(|e| text(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")))?;
    if parsed.addr.is_empty() || !parsed.addr.contains(':') {
        return Err(text(StatusCode::BAD_REQUEST, "Addr must be host:port"));
    }
    Ok(parsed.addr)
}

/// A hold on one session's post gate (see [`Api::post_gate`]).
struct PostGate<'a> {
    api: &'a Api,
    session: u64,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for PostGate<'_> {
    fn drop(&mut self) {
        let mut gates = self
            .api
            .post_gates
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // The map's reference and ours: nobody else holds or waits for it.
        if Arc::strong_count(&self.gate) == 2 {
            gates.remove(&self.session);
        }
    }
}

/// The methods of the public API, for CORS.
const CORS_METHODS: &str = "GET, POST, DELETE, OPTIONS";

/// A forwarded client address in one spelling: an IP address (also from `ip:port` or
/// `[ip]:port`) as Rust prints it, or a short host-name-like token as given. `None` for
/// anything else (the TCP peer counts then).
fn canonical_address(forwarded: &str) -> Option<String> {
    let forwarded = forwarded.trim();
    if let Ok(ip) = forwarded.parse::<std::net::IpAddr>() {
        return Some(ip.to_string());
    }
    if let Ok(sa) = forwarded.parse::<SocketAddr>() {
        return Some(sa.ip().to_string());
    }
    let plausible = !forwarded.is_empty()
        && forwarded.len() <= 100
        && forwarded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
    plausible.then(|| forwarded.to_owned())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::canonical_address;

    #[test]
    fn forwarded_addresses_have_one_spelling() {
        assert_eq!(
            canonical_address(" 192.0.2.7 ").as_deref(),
            Some("192.0.2.7")
        );
        assert_eq!(
            canonical_address("192.0.2.7:4000").as_deref(),
            Some("192.0.2.7")
        );
        assert_eq!(
            canonical_address("2001:DB8::1").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(
            canonical_address("[2001:db8::1]:6667").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(
            canonical_address("client.example").as_deref(),
            Some("client.example")
        );
        for bad in ["", "a b", "x*", "<script>", &"a".repeat(101)] {
            assert_eq!(canonical_address(bad), None, "{bad}");
        }
    }
}
