//! An in-process RobustSession test network on 127.0.0.1: N HTTPS servers (ephemeral
//! ports, one self-made CA) sharing one toy IRC state, each switchable between up, down,
//! answering an error status, or hanging. Test scaffolding for the client and bridge
//! logic, not a model of the node: the real node has its own end-to-end tests.
//!
//! The toy IRC logic, per posted line:
//! - `PING x` → `:test.net PONG test.net :x`
//! - `NICK n` → `:test.net 001 n :Welcome n`
//! - `KILLME` → `ERROR :Closing Link: killed`, and the session is gone (404 from then on)
//! - `SILENT …` → nothing
//! - anything else → `:test.net NOTICE * :echo <line>`
//!
//! `DELETE` produces `ERROR :Closing Link: (<quit message>)` and ends the session.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use unsplit_bridge::protocol::{
    self, CreateSessionReply, DeleteSession, Message, MessageId, PostMessage, kind,
};

pub const SERVER_NAME: &str = "test.net";

/// A certificate authority and a server certificate for 127.0.0.1 and localhost.
pub struct TestPki {
    pub ca_pem: String,
    pub cert: CertificateDer<'static>,
    pub cert_pem: String,
    pub key_der: Vec<u8>,
    pub key_pem: String,
}

impl TestPki {
    pub fn new() -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "unsplit test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        TestPki {
            ca_pem: ca.pem(),
            cert: cert.der().clone(),
            cert_pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }

    pub fn server_config(&self) -> rustls::ServerConfig {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![self.cert.clone()], key)
        .unwrap()
    }
}

/// How a server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Up,
    /// New connections are closed at once; open ones are cut.
    Down,
    /// Every request is answered with this status; open streams are cut.
    Status(u16),
    /// Requests are never answered; open streams deliver nothing more (no pings either).
    Hang,
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Record {
    pub server: usize,
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug, Clone)]
struct Output {
    id: MessageId,
    session: u64,
    data: String,
}

#[derive(Debug)]
struct SessionState {
    auth: String,
    last_client_message_id: u64,
    gone: bool,
}

#[derive(Default)]
struct State {
    next_index: u64,
    sessions: HashMap<u64, SessionState>,
    outputs: Vec<Output>,
    records: Vec<Record>,
    /// Lines committed, per session, in order (what the network received).
    committed: Vec<(u64, String)>,
}

struct ServerCtl {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    /// For writes: answer with `Content-Location: //<leader>/<path>`.
    leader: Mutex<Option<String>>,
    /// The next N PostMessages are committed but answered 503 (a lost response).
    fail_after_commit: Mutex<u32>,
    conns: Mutex<Vec<AbortHandle>>,
}

struct Shared {
    state: Mutex<State>,
    /// Bumped on every new output.
    changed: watch::Sender<u64>,
    servers: Vec<ServerCtl>,
    ping_interval: Mutex<Duration>,
    initial_ping: Mutex<bool>,
    ping_servers: Mutex<Option<Vec<String>>>,
}

/// The test network. Dropping it stops every server.
pub struct TestNetwork {
    shared: Arc<Shared>,
    pub pki: Arc<TestPki>,
    accept_tasks: Vec<AbortHandle>,
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        for t in &self.accept_tasks {
            t.abort();
        }
        for s in &self.shared.servers {
            for c in s.conns.lock().unwrap().drain(..) {
                c.abort();
            }
        }
    }
}

impl TestNetwork {
    pub async fn start(n: usize) -> TestNetwork {
        let pki = Arc::new(TestPki::new());
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(pki.server_config()));
        let mut listeners = vec![];
        let mut servers = vec![];
        for _ in 0..n {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            servers.push(ServerCtl {
                addr: l.local_addr().unwrap(),
                mode: watch::channel(Mode::Up).0,
                leader: Mutex::new(None),
                fail_after_commit: Mutex::new(0),
                conns: Mutex::new(vec![]),
            });
            listeners.push(l);
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_index: 1,
                ..State::default()
            }),
            changed: watch::channel(0).0,
            servers,
            ping_interval: Mutex::new(Duration::from_secs(20)),
            initial_ping: Mutex::new(true),
            ping_servers: Mutex::new(None),
        });
        let mut accept_tasks = vec![];
        for (idx, l) in listeners.into_iter().enumerate() {
            let shared = shared.clone();
            let acceptor = acceptor.clone();
            let task = tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = l.accept().await else {
                        continue;
                    };
                    let ctl = &shared.servers[idx];
                    if *ctl.mode.borrow() == Mode::Down {
                        drop(tcp);
                        continue;
                    }
                    let shared2 = shared.clone();
                    let acceptor = acceptor.clone();
                    let conn = tokio::spawn(async move {
                        let Ok(Ok(tls)) =
                            tokio::time::timeout(Duration::from_secs(5), acceptor.accept(tcp))
                                .await
                        else {
                            return;
                        };
                        let svc = service_fn(move |req| handle(shared2.clone(), idx, req));
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(tls), svc)
                            .await;
                    });
                    let mut conns = ctl.conns.lock().unwrap();
                    conns.retain(|c| !c.is_finished());
                    conns.push(conn.abort_handle());
                }
            });
            accept_tasks.push(task.abort_handle());
        }
        TestNetwork {
            shared,
            pki,
            accept_tasks,
        }
    }

    pub fn addrs(&self) -> Vec<String> {
        self.shared
            .servers
            .iter()
            .map(|s| s.addr.to_string())
            .collect()
    }

    pub fn addr(&self, i: usize) -> String {
        self.shared.servers[i].addr.to_string()
    }

    pub fn set_mode(&self, i: usize, mode: Mode) {
        let ctl = &self.shared.servers[i];
        ctl.mode.send_replace(mode);
        if matches!(mode, Mode::Down | Mode::Status(_)) {
            for c in ctl.conns.lock().unwrap().drain(..) {
                c.abort();
            }
        }
    }

    pub fn set_leader(&self, i: usize, leader: Option<String>) {
        *self.shared.servers[i].leader.lock().unwrap() = leader;
    }

    pub fn fail_after_commit(&self, i: usize, n: u32) {
        *self.shared.servers[i].fail_after_commit.lock().unwrap() = n;
    }

    pub fn set_ping_interval(&self, d: Duration) {
        *self.shared.ping_interval.lock().unwrap() = d;
    }

    pub fn set_initial_ping(&self, on: bool) {
        *self.shared.initial_ping.lock().unwrap() = on;
    }

    /// The `Servers` list pings carry (default: every server's address).
    pub fn set_ping_servers(&self, servers: Option<Vec<String>>) {
        *self.shared.ping_servers.lock().unwrap() = servers;
    }

    pub fn records(&self) -> Vec<Record> {
        self.shared.state.lock().unwrap().records.clone()
    }

    /// The query strings of the GetMessages requests so far.
    pub fn query_log(&self) -> Vec<String> {
        self.records()
            .into_iter()
            .filter(|r| r.method == Method::GET)
            .map(|r| r.query)
            .collect()
    }

    /// Lines committed for `session` (`0x…`), in order.
    pub fn committed(&self, session: &str) -> Vec<String> {
        let id = protocol::parse_session_id(session).unwrap();
        self.shared
            .state
            .lock()
            .unwrap()
            .committed
            .iter()
            .filter(|(s, _)| *s == id)
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// Ids (`0x…`) of the sessions not ended, oldest first.
    pub fn session_ids(&self) -> Vec<String> {
        let st = self.shared.state.lock().unwrap();
        let mut ids: Vec<u64> = st
            .sessions
            .iter()
            .filter(|(_, s)| !s.gone)
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        ids.into_iter().map(protocol::format_session_id).collect()
    }

    pub fn session_count(&self) -> usize {
        self.shared
            .state
            .lock()
            .unwrap()
            .sessions
            .values()
            .filter(|s| !s.gone)
            .count()
    }

    /// Makes the network produce a line for `session` (as if another user wrote to it).
    pub fn inject(&self, session: &str, line: &str) {
        let id = protocol::parse_session_id(session).unwrap();
        let mut st = self.shared.state.lock().unwrap();
        let index = st.next_index;
        st.next_index += 1;
        st.outputs.push(Output {
            id: MessageId {
                id: index,
                reply: 1,
            },
            session: id,
            data: line.to_owned(),
        });
        drop(st);
        self.shared.changed.send_modify(|v| *v += 1);
    }

    /// Kills `session` from the network side (as an operator's KILL or expiry would).
    pub fn kill(&self, session: &str, last_line: &str) {
        let id = protocol::parse_session_id(session).unwrap();
        let mut st = self.shared.state.lock().unwrap();
        let index = st.next_index;
        st.next_index += 1;
        st.outputs.push(Output {
            id: MessageId {
                id: index,
                reply: 1,
            },
            session: id,
            data: last_line.to_owned(),
        });
        if let Some(s) = st.sessions.get_mut(&id) {
            s.gone = true;
        }
        drop(st);
        self.shared.changed.send_modify(|v| *v += 1);
    }

    pub fn client_config(&self) -> unsplit_bridge::client::NetworkConfig {
        let mut c = unsplit_bridge::client::NetworkConfig::new(self.addrs());
        c.tls = unsplit_bridge::client::TlsRoots::CaPem(self.pki.ca_pem.clone().into_bytes());
        c
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r
}

async fn handle(
    shared: Arc<Shared>,
    idx: usize,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let ctl = &shared.servers[idx];
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    shared.state.lock().unwrap().records.push(Record {
        server: idx,
        method: parts.method.clone(),
        path: path.clone(),
        query: query.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    let mode = *ctl.mode.borrow();
    match mode {
        Mode::Down => return Err(std::io::Error::other("down")),
        Mode::Hang => std::future::pending::<()>().await,
        Mode::Status(code) => {
            return Ok(full(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "test failure",
            ));
        }
        Mode::Up => {}
    }
    let Some(rest) = path.strip_prefix(protocol::PREFIX) else {
        return Ok(full(StatusCode::NOT_FOUND, "not found"));
    };
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let auth = parts
        .headers
        .get(protocol::SESSION_AUTH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut resp = match (&parts.method, segments.as_slice()) {
        (&Method::POST, ["session"]) => create(&shared),
        (&Method::POST, [sid, "message"]) => post(&shared, idx, sid, &auth, &body),
        (&Method::GET, [sid, "messages"]) => {
            return Ok(get_messages(shared.clone(), idx, sid, &auth, &query));
        }
        (&Method::DELETE, [sid]) => delete(&shared, sid, &auth, &body),
        _ => full(StatusCode::NOT_FOUND, "no such endpoint"),
    };
    let leader = ctl.leader.lock().unwrap().clone();
    if let Some(leader) = leader.filter(|_| resp.status() == StatusCode::OK) {
        resp.headers_mut().insert(
            http::header::CONTENT_LOCATION,
            format!("//{leader}{path}").parse().unwrap(),
        );
    }
    Ok(resp)
}

fn create(shared: &Shared) -> Response<Body> {
    let mut st = shared.state.lock().unwrap();
    let id = protocol::MESSAGE_ID_OFFSET + st.next_index;
    st.next_index += 1;
    let auth: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    st.sessions.insert(
        id,
        SessionState {
            auth: auth.clone(),
            last_client_message_id: 0,
            gone: false,
        },
    );
    let reply = CreateSessionReply {
        session_id: protocol::format_session_id(id),
        session_auth: auth,
        prefix: SERVER_NAME.to_owned(),
    };
    full(StatusCode::OK, serde_json::to_vec(&reply).unwrap())
}

fn session_ok(st: &State, sid: &str, auth: &str) -> Option<u64> {
    let id = protocol::parse_session_id(sid)?;
    let s = st.sessions.get(&id)?;
    (!s.gone && s.auth == auth).then_some(id)
}

fn respond_to(line: &str) -> (Vec<String>, bool) {
    let mut words = line.splitn(2, ' ');
    let cmd = words.next().unwrap_or("").to_ascii_uppercase();
    let arg = words.next().unwrap_or("").trim_start_matches(':');
    match cmd.as_str() {
        "PING" => (
            vec![format!(":{SERVER_NAME} PONG {SERVER_NAME} :{arg}")],
            false,
        ),
        "NICK" => (
            vec![format!(":{SERVER_NAME} 001 {arg} :Welcome {arg}")],
            false,
        ),
        "KILLME" => (vec!["ERROR :Closing Link: killed".to_owned()], true),
        "SILENT" => (vec![], false),
        _ => (vec![format!(":{SERVER_NAME} NOTICE * :echo {line}")], false),
    }
}

fn post(shared: &Shared, idx: usize, sid: &str, auth: &str, body: &[u8]) -> Response<Body> {
    let Ok(msg) = serde_json::from_slice::<PostMessage>(body) else {
        return full(StatusCode::BAD_REQUEST, "bad json");
    };
    let mut st = shared.state.lock().unwrap();
    let Some(id) = session_ok(&st, sid, auth) else {
        return full(StatusCode::NOT_FOUND, "no such session");
    };
    if st.sessions[&id].last_client_message_id == msg.client_message_id {
        return full(StatusCode::OK, "");
    }
    let index = st.next_index;
    st.next_index += 1;
    let line = msg.data.split('\n').next().unwrap_or("").to_owned();
    st.committed.push((id, line.clone()));
    let (lines, kill) = respond_to(&line);
    for (i, data) in lines.into_iter().enumerate() {
        st.outputs.push(Output {
            id: MessageId {
                id: index,
                reply: i as u64 + 1,
            },
            session: id,
            data,
        });
    }
    if let Some(s) = st.sessions.get_mut(&id) {
        s.last_client_message_id = msg.client_message_id;
        s.gone |= kill;
    }
    drop(st);
    shared.changed.send_modify(|v| *v += 1);
    let mut fail = shared.servers[idx].fail_after_commit.lock().unwrap();
    if *fail > 0 {
        *fail -= 1;
        return full(StatusCode::SERVICE_UNAVAILABLE, "response lost");
    }
    full(StatusCode::OK, "")
}

fn delete(shared: &Shared, sid: &str, auth: &str, body: &[u8]) -> Response<Body> {
    let quit = serde_json::from_slice::<DeleteSession>(body)
        .map(|d| d.quit_message)
        .unwrap_or_default();
    let mut st = shared.state.lock().unwrap();
    let Some(id) = session_ok(&st, sid, auth) else {
        return full(StatusCode::NOT_FOUND, "no such session");
    };
    let index = st.next_index;
    st.next_index += 1;
    st.committed.push((id, format!("QUIT :{quit}")));
    st.outputs.push(Output {
        id: MessageId {
            id: index,
            reply: 1,
        },
        session: id,
        data: format!("ERROR :Closing Link: ({quit})"),
    });
    if let Some(s) = st.sessions.get_mut(&id) {
        s.gone = true;
    }
    drop(st);
    shared.changed.send_modify(|v| *v += 1);
    full(StatusCode::OK, "")
}

/// A streamed body fed from a channel; an `Err` item cuts the connection.
struct ChannelBody(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

fn object(m: &Message) -> Bytes {
    let mut v = serde_json::to_vec(m).unwrap();
    v.push(b'\n');
    Bytes::from(v)
}

fn get_messages(
    shared: Arc<Shared>,
    idx: usize,
    sid: &str,
    auth: &str,
    query: &str,
) -> Response<Body> {
    let lastseen = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("lastseen="))
        .and_then(MessageId::parse_lastseen)
        .unwrap_or_default();
    let id = {
        let st = shared.state.lock().unwrap();
        let Some(id) = session_ok(&st, sid, auth) else {
            // A deleted session still has output to deliver: only unknown/bad auth is 404.
            let known = protocol::parse_session_id(sid)
                .and_then(|id| st.sessions.get(&id).map(|s| (id, s.auth == auth)))
                .filter(|(id, ok)| {
                    *ok && st
                        .outputs
                        .iter()
                        .any(|o| o.session == *id && o.id > lastseen)
                });
            match known {
                Some((id, _)) => return stream_response(shared.clone(), idx, id, lastseen),
                None => return full(StatusCode::NOT_FOUND, "no such session"),
            }
        };
        id
    };
    stream_response(shared, idx, id, lastseen)
}

fn stream_response(
    shared: Arc<Shared>,
    idx: usize,
    id: u64,
    mut lastseen: MessageId,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut changed = shared.changed.subscribe();
        let mut mode = shared.servers[idx].mode.subscribe();
        let ping = |shared: &Shared| {
            let servers = shared
                .ping_servers
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_else(|| shared.servers.iter().map(|s| s.addr.to_string()).collect());
            object(&Message {
                kind: kind::PING,
                servers,
                ..Message::default()
            })
        };
        if *shared.initial_ping.lock().unwrap() && tx.send(Ok(ping(&shared))).await.is_err() {
            return;
        }
        let interval = *shared.ping_interval.lock().unwrap();
        let mut next_ping = tokio::time::Instant::now() + interval;
        loop {
            changed.borrow_and_update();
            if *mode.borrow_and_update() == Mode::Hang {
                // Deliver nothing more, keep the connection open.
                let _ = tx.closed().await;
                return;
            }
            let (batch, gone) = {
                let st = shared.state.lock().unwrap();
                let batch: Vec<Output> = st
                    .outputs
                    .iter()
                    .filter(|o| o.session == id && o.id > lastseen)
                    .cloned()
                    .collect();
                (batch, st.sessions.get(&id).is_none_or(|s| s.gone))
            };
            for o in batch {
                lastseen = o.id;
                let m = Message {
                    id: o.id,
                    kind: kind::IRC_TO_CLIENT,
                    data: o.data,
                    ..Message::default()
                };
                if tx.send(Ok(object(&m))).await.is_err() {
                    return;
                }
            }
            if gone {
                return;
            }
            tokio::select! {
                _ = changed.changed() => {}
                _ = mode.changed() => {}
                _ = tokio::time::sleep_until(next_ping) => {
                    next_ping = tokio::time::Instant::now() + interval;
                    if tx.send(Ok(ping(&shared))).await.is_err() {
                        return;
                    }
                }
                _ = tx.closed() => return,
            }
        }
    });
    let mut r = Response::new(ChannelBody(rx).boxed());
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        "text/plain; charset=utf-8".parse().unwrap(),
    );
    r
}

/// Runs `f` with a time limit; panics with `what` when it passes.
pub async fn within<T>(secs: u64, what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs} s: {what}"),
    }
}
