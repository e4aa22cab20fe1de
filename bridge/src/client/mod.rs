//! The RobustSession client: one IRC session carried over HTTPS to any server of a
//! network, surviving server failures (RobustIRC's `robustsession`, §1.5 of the protocol
//! notes).
//!
//! ```no_run
//! # async fn demo() -> Result<(), unsplit_bridge::client::Error> {
//! use unsplit_bridge::client::{Event, Network, NetworkConfig, Session, TlsRoots};
//! let mut config = NetworkConfig::new(["localhost:60001", "localhost:60002"]);
//! config.tls = TlsRoots::CaFile("ca.pem".into());
//! let network = Network::new(config)?;
//! let session = Session::create(&network).await?;
//! let mut messages = session.messages()?;
//! session.post("NICK alice").await?;
//! session.post("USER alice 0 * :Alice").await?;
//! while let Some(event) = messages.next().await {
//!     match event {
//!         Event::Line(line) => println!("{line}"),
//!         Event::Unreachable | Event::Restored => {}
//!         Event::Closed(reason) => { println!("closed: {reason}"); break }
//!     }
//! }
//! session.delete("bye").await?;
//! # Ok(()) }
//! ```
//!
//! Behaviour, precisely:
//! - **Server choice**: GetMessages picks a random server not in backoff; PostMessage and
//!   DeleteSession walk the list round-robin. A `200` with `Content-Location:
//!   //<leader>/<path>` moves the leader to the front; a `200` without it moves the server
//!   that answered to the front (writes stick to the server that served them).
//! - **Failures**: transport error, attempt timeout or 5xx → that server backs off and the
//!   next one is tried; `404` → [`Error::NoSuchSession`] (permanent); any other status →
//!   [`Error::Status`] (permanent). Backoff is per server and shared by all sessions of a
//!   [`Network`]: 2^n s (n ≤ 6) with jitter, cleared on success (see `servers.rs`).
//! - **PostMessage**: at most one in flight per session; the `ClientMessageId` is
//!   `(FNV-1a-32(line) << 32) | random 31 bits` and the same id is re-sent on every retry,
//!   so the server's one-deep dedup makes retries idempotent.
//! - **GetMessages** follows `lastseen` across reconnects, swallows pings (their `Servers`
//!   list replaces the server list), drops a stream that delivered no object for
//!   [`Timeouts::watchdog`], and waits a random 250–500 ms before reconnecting.
//! - **Connectivity**: [`Event::Unreachable`] when no stream has delivered an object for
//!   [`Timeouts::unreachable_after`] after a stream broke; [`Event::Restored`] on the first
//!   object after that.
//! - **Transport**: HTTP/1.1 over rustls (ring), one pooled hyper client per [`Network`];
//!   every GetMessages stream holds its own connection. Connect 5 s, TLS handshake 10 s,
//!   create 60 s overall, post/delete 290 s overall, each attempt 30 s.

mod servers;
mod stream;
mod tls;

use std::path::PathBuf;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::sync::{Mutex, mpsc, watch};

use crate::protocol::{self, CreateSessionReply, DeleteSession, PostMessage};
use servers::Servers;

pub use stream::{CloseReason, Event, Messages};

/// The client's version string.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The default `User-Agent`: `unsplit-bridge/<version>`.
pub fn default_user_agent() -> String {
    format!("unsplit-bridge/{VERSION}")
}

/// Errors of the client library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The network answered 404: the session was killed, expired or deleted. Permanent.
    #[error("no such RobustIRC session (killed by the network, expired or deleted)")]
    NoSuchSession,
    /// The network answered a status that is neither 200, 404 nor 5xx. Permanent.
    #[error("{method} {path}: HTTP {status}: {body}")]
    Status {
        method: Method,
        path: String,
        status: StatusCode,
        body: String,
    },
    /// The overall time limit of an operation passed while servers kept failing.
    #[error("{operation} did not succeed within {limit:?} (servers kept failing)")]
    Timeout {
        operation: &'static str,
        limit: Duration,
    },
    /// The network configuration has no servers.
    #[error("no servers configured")]
    NoServers,
    /// A server address is not `host:port`.
    #[error("invalid server address {0:?} (want host:port)")]
    InvalidServer(String),
    #[error("reading the TLS CA file {path}: {source}")]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no certificates found in {0}")]
    NoCertificates(String),
    #[error("TLS configuration: {0}")]
    Tls(rustls::Error),
    /// A header value (bridge auth, forwarded-for, user agent) is not a valid HTTP header.
    #[error("invalid header value for {0}")]
    InvalidHeader(&'static str),
    /// The create-session reply could not be understood.
    #[error("invalid CreateSession reply: {0}")]
    BadReply(String),
    /// The line does not fit into one PostMessage (RobustIRC reads at most 2048 bytes).
    #[error("line too long for one PostMessage ({0} bytes of JSON, at most {max})", max = protocol::MAX_POST_BODY)]
    LineTooLong(usize),
    /// The line contains CR or LF (the server would cut it there).
    #[error("line contains CR or LF")]
    InvalidLine,
    /// [`Session::messages`] was already called for this session.
    #[error("the message stream of this session was already taken")]
    MessagesTaken,
}

impl Error {
    /// Whether the error means the session no longer exists on the network.
    pub fn is_no_such_session(&self) -> bool {
        matches!(self, Error::NoSuchSession)
    }
}

/// Where trusted root certificates come from.
#[derive(Debug, Clone)]
pub enum TlsRoots {
    /// The Mozilla roots compiled in (webpki-roots).
    WebPki,
    /// A PEM file with one or more CA certificates (e.g. localnet's self-made CA).
    CaFile(PathBuf),
    /// PEM text with one or more CA certificates.
    CaPem(Vec<u8>),
}

/// Time limits. [`Timeouts::default`] gives the RobustIRC values.
#[derive(Debug, Clone)]
pub struct Timeouts {
    /// TCP connect (5 s).
    pub connect: Duration,
    /// TLS handshake (10 s).
    pub tls_handshake: Duration,
    /// CreateSession overall, across retries (60 s).
    pub create: Duration,
    /// PostMessage and DeleteSession overall, across retries (290 s).
    pub request: Duration,
    /// One attempt against one server, until the response header (30 s). The server's
    /// own apply timeout is 10 s, plus one proxy hop to the leader.
    pub attempt: Duration,
    /// GetMessages: no object (message or ping) for this long → reconnect elsewhere (30 s).
    pub watchdog: Duration,
    /// After a stream broke: no object for this long → [`Event::Unreachable`] (1 s).
    pub unreachable_after: Duration,
    /// Random wait before reconnecting GetMessages: `[reconnect_min, reconnect_max)`
    /// (250–500 ms).
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// After [`Session::delete`], how long the message stream may still deliver the
    /// network's last lines before it ends (2 s).
    pub delete_grace: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(5),
            tls_handshake: Duration::from_secs(10),
            create: Duration::from_secs(60),
            request: Duration::from_secs(290),
            attempt: Duration::from_secs(30),
            watchdog: Duration::from_secs(30),
            unreachable_after: Duration::from_secs(1),
            reconnect_min: Duration::from_millis(250),
            reconnect_max: Duration::from_millis(500),
            delete_grace: Duration::from_secs(2),
        }
    }
}

/// How to reach a network.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// `host:port` of the servers (any subset of the network will do: pings bring the rest).
    pub servers: Vec<String>,
    pub tls: TlsRoots,
    /// Sent as `X-Bridge-Auth`.
    pub bridge_auth: Option<String>,
    /// Sent as `X-Forwarded-For` (see also [`Network::with_forwarded_for`]).
    pub forwarded_for: Option<String>,
    /// Defaults to `unsplit-bridge/<version>`.
    pub user_agent: String,
    /// Keep the configured server list even when pings carry another one (port forwarding).
    pub ignore_server_list_updates: bool,
    pub timeouts: Timeouts,
}

impl NetworkConfig {
    /// A configuration with the webpki roots and default timeouts.
    pub fn new<I, S>(servers: I) -> NetworkConfig
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        NetworkConfig {
            servers: servers.into_iter().map(Into::into).collect(),
            tls: TlsRoots::WebPki,
            bridge_auth: None,
            forwarded_for: None,
            user_agent: default_user_agent(),
            ignore_server_list_updates: false,
            timeouts: Timeouts::default(),
        }
    }

    /// Splits `host:port[,host:port…]` (empty parts are skipped).
    pub fn parse_servers(list: &str) -> Vec<String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

type HttpClient = Client<tls::Connector, Full<Bytes>>;

/// State shared by every session (and clone) of one network.
struct Shared {
    config: NetworkConfig,
    client: HttpClient,
    servers: StdMutex<Servers>,
    user_agent: http::HeaderValue,
    bridge_auth: Option<http::HeaderValue>,
}

/// A network handle: configuration, the pooled HTTPS client, the server list and the
/// per-server backoff. Cheap to clone; clones share everything but `X-Forwarded-For`.
#[derive(Clone)]
pub struct Network {
    shared: Arc<Shared>,
    forwarded_for: Option<http::HeaderValue>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("servers", &self.servers())
            .finish_non_exhaustive()
    }
}

impl Network {
    /// Validates the configuration and builds the TLS client. Needs a tokio runtime.
    pub fn new(config: NetworkConfig) -> Result<Network, Error> {
        if config.servers.is_empty() {
            return Err(Error::NoServers);
        }
        if let Some(bad) = config.servers.iter().find(|s| !servers::valid_server(s)) {
            return Err(Error::InvalidServer(bad.clone()));
        }
        let tls = tls::client_config(&config.tls)?;
        let connector =
            tls::Connector::new(tls, config.timeouts.connect, config.timeouts.tls_handshake);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            // GetMessages streams hold their own connections; this bounds idle POST ones.
            .pool_max_idle_per_host(128)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        let header =
            |name, v: &str| http::HeaderValue::from_str(v).map_err(|_| Error::InvalidHeader(name));
        let user_agent = header("User-Agent", &config.user_agent)?;
        let bridge_auth = config
            .bridge_auth
            .as_deref()
            .map(|v| header("X-Bridge-Auth", v))
            .transpose()?;
        let forwarded_for = config
            .forwarded_for
            .as_deref()
            .map(|v| header("X-Forwarded-For", v))
            .transpose()?;
        let servers = StdMutex::new(Servers::new(config.servers.clone()));
        Ok(Network {
            shared: Arc::new(Shared {
                config,
                client,
                servers,
                user_agent,
                bridge_auth,
            }),
            forwarded_for,
        })
    }

    /// A handle on the same network that sends `X-Forwarded-For: <value>` (a bridge sets
    /// it to its IRC client's address). Invalid header values are dropped.
    pub fn with_forwarded_for(&self, value: &str) -> Network {
        Network {
            shared: self.shared.clone(),
            forwarded_for: http::HeaderValue::from_str(value).ok(),
        }
    }

    /// The current server list, preferred server first.
    pub fn servers(&self) -> Vec<String> {
        self.lock_servers().list().to_vec()
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.shared.config
    }

    fn lock_servers(&self) -> std::sync::MutexGuard<'_, Servers> {
        // A panic while holding this lock cannot leave the list inconsistent: recover.
        self.shared
            .servers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn failed(&self, server: &str) {
        self.lock_servers()
            .failed(server, Instant::now(), &mut rand::rng());
    }

    fn succeeded(&self, server: &str) {
        self.lock_servers().succeeded(server);
    }

    fn prefer(&self, server: &str) {
        if !self.shared.config.ignore_server_list_updates {
            self.lock_servers().prefer(server);
        }
    }

    fn set_servers(&self, list: Vec<String>) {
        if self.shared.config.ignore_server_list_updates {
            return;
        }
        let list: Vec<String> = list
            .into_iter()
            .filter(|s| servers::valid_server(s))
            .collect();
        if self.lock_servers().set(list.clone()) {
            tracing::debug!(servers = ?list, "server list updated from ping");
        }
    }

    /// Waits until a server is usable (backoff) and returns it.
    async fn pick(&self, random: bool) -> String {
        loop {
            let wait = {
                let mut rng = rand::rng();
                match self.lock_servers().pick(Instant::now(), random, &mut rng) {
                    Ok(server) => return server,
                    Err(wait) => servers::spread_wait(wait, &mut rng),
                }
            };
            tracing::debug!(?wait, "every server is backing off");
            tokio::time::sleep(wait).await;
        }
    }

    /// Sends one request, failing over until a server answers 200 (returned with the
    /// server that answered), 404 or another permanent status. No overall time limit:
    /// callers wrap it.
    async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Option<&http::HeaderValue>,
        body: Option<Bytes>,
        attempt_timeout: Duration,
    ) -> Result<(String, hyper::Response<Incoming>), Error> {
        let random = method == Method::GET;
        loop {
            let server = self.pick(random).await;
            let req = match self.build_request(&method, &server, path, auth, body.clone()) {
                Some(req) => req,
                None => {
                    tracing::warn!(%server, "cannot build a request for this server");
                    self.failed(&server);
                    continue;
                }
            };
            let resp = match tokio::time::timeout(attempt_timeout, self.shared.client.request(req))
                .await
            {
                Ok(Ok(resp)) => resp,
                Ok(Err(e)) => {
                    tracing::warn!(%server, %method, path, error = %error_chain(&e), "request failed, trying another server");
                    self.failed(&server);
                    continue;
                }
                Err(_) => {
                    tracing::warn!(%server, %method, path, timeout = ?attempt_timeout, "no response, trying another server");
                    self.failed(&server);
                    continue;
                }
            };
            let status = resp.status();
            if status == StatusCode::OK {
                let location = resp
                    .headers()
                    .get(header::CONTENT_LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(servers::content_location_server);
                match location {
                    Some(leader) => self.prefer(&leader),
                    None if !random => self.prefer(&server),
                    None => {}
                }
                return Ok((server, resp));
            }
            let text = read_body(resp.into_body(), 1024, Duration::from_secs(2)).await;
            let text = String::from_utf8_lossy(&text).trim().to_owned();
            if status == StatusCode::NOT_FOUND {
                return Err(Error::NoSuchSession);
            }
            if status.is_server_error() {
                tracing::warn!(%server, %method, path, %status, body = %text, "server error, trying another server");
                self.failed(&server);
                continue;
            }
            return Err(Error::Status {
                method,
                path: path.to_owned(),
                status,
                body: text,
            });
        }
    }

    fn build_request(
        &self,
        method: &Method,
        server: &str,
        path: &str,
        auth: Option<&http::HeaderValue>,
        body: Option<Bytes>,
    ) -> Option<Request<Full<Bytes>>> {
        let uri: http::Uri = format!("https://{server}{path}").parse().ok()?;
        let mut req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(header::USER_AGENT, self.shared.user_agent.clone());
        if let Some(auth) = auth {
            req = req.header(protocol::SESSION_AUTH, auth.clone());
        }
        if let Some(v) = &self.shared.bridge_auth {
            req = req.header(protocol::BRIDGE_AUTH, v.clone());
        }
        if let Some(v) = &self.forwarded_for {
            req = req.header("X-Forwarded-For", v.clone());
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        req.body(Full::new(body.unwrap_or_default())).ok()
    }
}

/// Reads up to `limit` bytes of a body within `timeout` (for error texts and small replies).
async fn read_body(mut body: Incoming, limit: usize, timeout: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(timeout, async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                let room = limit.saturating_sub(out.len());
                out.extend_from_slice(&data[..data.len().min(room)]);
                if out.len() >= limit {
                    break;
                }
            }
        }
    })
    .await;
    out
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// FNV-1a, 32 bits.
pub fn fnv1a32(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// A fresh `ClientMessageId` for `line`: `(FNV-1a-32(line) << 32) | random 31 bits`.
pub fn client_message_id(line: &str) -> u64 {
    (u64::from(fnv1a32(line.as_bytes())) << 32) | u64::from(rand::random_range(0..(1u32 << 31)))
}

/// What stops the GetMessages task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    Running,
    /// `delete()` succeeded: deliver the last lines until the stream ends (bounded).
    Deleted,
}

struct SessionInner {
    network: Network,
    id: String,
    auth: http::HeaderValue,
    prefix: String,
    /// Held for the whole of a PostMessage, retries included.
    post_lock: Mutex<()>,
    lifecycle: watch::Sender<Lifecycle>,
    events: StdMutex<Option<mpsc::Receiver<Event>>>,
    /// Taken (and the stream task started) by `messages()`.
    start: StdMutex<Option<stream::Task>>,
}

/// One RobustSession. Cheap to clone (clones are the same session). When the last clone
/// is dropped the message stream stops; the session itself lives on in the network until
/// it expires, so call [`Session::delete`].
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.inner.id)
            .field("prefix", &self.inner.prefix)
            .finish()
    }
}

impl Session {
    /// `POST /robustirc/v1/session`, failing over for at most [`Timeouts::create`].
    pub async fn create(network: &Network) -> Result<Session, Error> {
        let limit = network.shared.config.timeouts.create;
        let attempt = network.shared.config.timeouts.attempt.min(limit);
        let created = tokio::time::timeout(limit, async {
            let path = format!("{}/session", protocol::PREFIX);
            let (server, resp) = network
                .send(Method::POST, &path, None, None, attempt)
                .await?;
            let body = read_body(resp.into_body(), 64 * 1024, attempt).await;
            network.succeeded(&server);
            serde_json::from_slice::<CreateSessionReply>(&body)
                .map_err(|e| Error::BadReply(e.to_string()))
        })
        .await
        .map_err(|_| Error::Timeout {
            operation: "CreateSession",
            limit,
        })??;

        if created.session_id.is_empty()
            || !created
                .session_id
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'x' || b == b'X')
        {
            return Err(Error::BadReply(format!(
                "session id {:?}",
                created.session_id
            )));
        }
        let auth = http::HeaderValue::from_str(&created.session_auth)
            .map_err(|_| Error::BadReply("session auth is not a header value".into()))?;
        let (lifecycle, lifecycle_rx) = watch::channel(Lifecycle::Running);
        let (tx, rx) = mpsc::channel(256);
        let task = stream::Task {
            network: network.clone(),
            path: format!("{}/{}/messages", protocol::PREFIX, created.session_id),
            auth: auth.clone(),
            tx,
            lifecycle: lifecycle_rx,
        };
        tracing::debug!(session = %created.session_id, "session created");
        Ok(Session {
            inner: Arc::new(SessionInner {
                network: network.clone(),
                id: created.session_id,
                auth,
                prefix: created.prefix,
                post_lock: Mutex::new(()),
                lifecycle,
                events: StdMutex::new(Some(rx)),
                start: StdMutex::new(Some(task)),
            }),
        })
    }

    /// The session id as the network gave it (`0x…`).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The network's name (the `Prefix` of the CreateSession reply).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    pub fn network(&self) -> &Network {
        &self.inner.network
    }

    /// The not yet started GetMessages task, if it is still here.
    fn take_start(&self) -> Option<stream::Task> {
        self.inner
            .start
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Starts GetMessages and returns its events. Only once per session.
    pub fn messages(&self) -> Result<Messages, Error> {
        let rx = self
            .inner
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or(Error::MessagesTaken)?;
        if let Some(task) = self.take_start() {
            tokio::spawn(task.run());
        }
        Ok(Messages::new(rx))
    }

    /// Builds the PostMessage for `line` with a fresh `ClientMessageId`. Checks that it
    /// fits: no CR/LF, at most [`protocol::MAX_POST_BODY`] bytes of JSON.
    pub fn prepare(&self, line: &str) -> Result<PostMessage, Error> {
        if line.contains(['\r', '\n']) {
            return Err(Error::InvalidLine);
        }
        let msg = PostMessage {
            data: line.to_owned(),
            client_message_id: client_message_id(line),
        };
        let len = serde_json::to_vec(&msg)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if len > protocol::MAX_POST_BODY {
            return Err(Error::LineTooLong(len));
        }
        Ok(msg)
    }

    /// Posts one IRC line (see [`Session::post_message`]).
    pub async fn post(&self, line: &str) -> Result<(), Error> {
        let msg = self.prepare(line)?;
        self.post_message(&msg).await
    }

    /// Posts a prepared message: waits for the session's previous PostMessage, then sends
    /// with failover until committed, for at most [`Timeouts::request`]. After
    /// [`Error::Timeout`] the same message may be posted again: its id makes it idempotent
    /// as long as no other line was posted in between.
    pub async fn post_message(&self, msg: &PostMessage) -> Result<(), Error> {
        let _guard = self.inner.post_lock.lock().await;
        let body =
            Bytes::from(serde_json::to_vec(msg).map_err(|e| Error::BadReply(e.to_string()))?);
        let path = format!("{}/{}/message", protocol::PREFIX, self.inner.id);
        self.write_request(Method::POST, &path, body, "PostMessage")
            .await
    }

    /// `DELETE /robustirc/v1/<id>` with the quit message; the message stream then delivers
    /// the network's last lines (e.g. `ERROR :Closing Link`) and ends with
    /// [`CloseReason::Deleted`]. Does not wait for an in-flight PostMessage.
    pub async fn delete(&self, quit_message: &str) -> Result<(), Error> {
        let body = serde_json::to_vec(&DeleteSession {
            quit_message: quit_message.to_owned(),
        })
        .map_err(|e| Error::BadReply(e.to_string()))?;
        let path = format!("{}/{}", protocol::PREFIX, self.inner.id);
        let result = self
            .write_request(Method::DELETE, &path, Bytes::from(body), "DeleteSession")
            .await;
        // Whatever the outcome, the session is over from our side.
        self.inner.lifecycle.send_replace(Lifecycle::Deleted);
        // The stream was never started: it never will be.
        drop(self.take_start());
        result
    }

    async fn write_request(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        operation: &'static str,
    ) -> Result<(), Error> {
        let network = &self.inner.network;
        let limit = network.shared.config.timeouts.request;
        let attempt = network.shared.config.timeouts.attempt;
        tokio::time::timeout(limit, async {
            let (server, resp) = network
                .send(method, path, Some(&self.inner.auth), Some(body), attempt)
                .await?;
            // Read the (empty) body so that the connection goes back to the pool.
            read_body(resp.into_body(), 64 * 1024, attempt).await;
            network.succeeded(&server);
            Ok(())
        })
        .await
        .map_err(|_| Error::Timeout { operation, limit })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_values() {
        assert_eq!(fnv1a32(b""), 0x811c9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9cf968);
    }

    #[test]
    fn message_ids() {
        let a = client_message_id("PRIVMSG #c :hi");
        let b = client_message_id("PRIVMSG #c :hi");
        assert_eq!(a >> 32, u64::from(fnv1a32(b"PRIVMSG #c :hi")));
        assert_eq!(a >> 32, b >> 32);
        assert!(a & 0xffff_ffff < 1 << 31);
        let distinct: std::collections::HashSet<_> =
            (0..100).map(|_| client_message_id("x")).collect();
        assert!(distinct.len() > 90);
    }

    #[test]
    fn parse_servers() {
        assert_eq!(NetworkConfig::parse_servers(" a:1, ,b:2,"), ["a:1", "b:2"]);
    }

    #[tokio::test]
    async fn network_validation() {
        assert!(matches!(
            Network::new(NetworkConfig::new(Vec::<String>::new())),
            Err(Error::NoServers)
        ));
        assert!(matches!(
            Network::new(NetworkConfig::new(["nope"])),
            Err(Error::InvalidServer(_))
        ));
        let mut c = NetworkConfig::new(["a:1"]);
        c.tls = TlsRoots::CaPem(b"not pem".to_vec());
        assert!(matches!(Network::new(c), Err(Error::NoCertificates(_))));
        let mut c = NetworkConfig::new(["a:1"]);
        c.tls = TlsRoots::CaFile("/nonexistent/ca.pem".into());
        assert!(matches!(Network::new(c), Err(Error::CaFile { .. })));
        let mut c = NetworkConfig::new(["a:1"]);
        c.bridge_auth = Some("bad\nvalue".into());
        assert!(matches!(Network::new(c), Err(Error::InvalidHeader(_))));
        let n = Network::new(NetworkConfig::new(["a:1", "b:2"])).unwrap();
        assert_eq!(n.servers(), ["a:1", "b:2"]);
        n.prefer("b:2");
        assert_eq!(n.with_forwarded_for("192.0.2.1").servers(), ["b:2", "a:1"]);
    }
}
