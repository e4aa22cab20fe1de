//! GetMessages: one long-lived stream per session, reconnected elsewhere when it breaks,
//! resuming after the last message received (`lastseen`).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Method;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Error, Lifecycle, Network};
use crate::protocol::{Message, MessageId, kind};

/// Largest JSON object accepted on a stream; a bigger one is a protocol error.
const MAX_OBJECT: usize = 1 << 20;

/// What a session's message stream delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An IRC line from the network (without CR LF).
    Line(String),
    /// No message stream has delivered anything for [`super::Timeouts::unreachable_after`]
    /// after the last one broke (or while connecting): the network is unreachable from
    /// here. The client keeps retrying.
    Unreachable,
    /// Messages flow again after [`Event::Unreachable`].
    Restored,
    /// The last event: the session is over.
    Closed(CloseReason),
}

/// Why a message stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// [`super::Session::delete`] was called.
    Deleted,
    /// The network answered 404: the session was killed or expired.
    NoSuchSession,
    /// A permanent error (an unexpected HTTP status).
    Failed(String),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Deleted => f.write_str("session deleted"),
            CloseReason::NoSuchSession => f.write_str(&Error::NoSuchSession.to_string()),
            CloseReason::Failed(e) => f.write_str(e),
        }
    }
}

/// The events of one session ([`super::Session::messages`]). Also a
/// [`futures_util::Stream`]. Dropping it stops the GetMessages stream.
#[derive(Debug)]
pub struct Messages {
    rx: mpsc::Receiver<Event>,
}

impl Messages {
    pub(super) fn new(rx: mpsc::Receiver<Event>) -> Messages {
        Messages { rx }
    }

    /// The next event; `None` after [`Event::Closed`] or when the session was dropped.
    pub async fn next(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is ready now (`None` when none is, or at the end).
    pub fn try_next(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

impl futures_util::Stream for Messages {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}

/// Everything the stream task needs (it does not keep the session alive).
pub(crate) struct Task {
    pub(crate) network: Network,
    /// `/robustirc/v1/<id>/messages`
    pub(crate) path: String,
    pub(crate) auth: http::HeaderValue,
    pub(crate) tx: mpsc::Sender<Event>,
    pub(crate) lifecycle: watch::Receiver<Lifecycle>,
}

/// How one stream ended (when the task goes on).
#[derive(Debug)]
enum StreamEnd {
    /// A clean end, after this many objects.
    Eof {
        objects: usize,
    },
    Watchdog,
    Transport(String),
    Protocol(String),
}

impl std::fmt::Display for StreamEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamEnd::Eof { .. } => f.write_str("the server ended the stream"),
            StreamEnd::Watchdog => f.write_str("no message or ping within the watchdog time"),
            StreamEnd::Transport(e) => write!(f, "transport error: {e}"),
            StreamEnd::Protocol(e) => write!(f, "protocol error: {e}"),
        }
    }
}

/// The task ends.
enum Stop {
    /// Send this as the last event.
    Close(CloseReason),
    /// Nobody listens any more.
    Silent,
}

struct State {
    lastseen: MessageId,
    /// Since when no stream has delivered anything (`None`: healthy).
    down_since: Option<Instant>,
    /// Whether [`Event::Unreachable`] was sent and not yet followed by `Restored`.
    notified: bool,
    /// After `delete()`: when to stop waiting for the server to end the stream.
    deleted_at: Option<Instant>,
}

impl Task {
    pub(crate) async fn run(mut self) {
        let mut state = State {
            lastseen: MessageId::default(),
            down_since: None,
            notified: false,
            deleted_at: None,
        };
        let stop = self.run_inner(&mut state).await;
        if let Stop::Close(reason) = stop {
            tracing::debug!(path = %self.path, %reason, "message stream closed");
            let _ = self.tx.send(Event::Closed(reason)).await;
        }
    }

    async fn run_inner(&mut self, st: &mut State) -> Stop {
        let timeouts = self.network.config().timeouts.clone();
        loop {
            if *self.lifecycle.borrow() == Lifecycle::Deleted {
                return Stop::Close(CloseReason::Deleted);
            }
            let path = format!("{}?lastseen={}", self.path, st.lastseen.lastseen());
            let connect_started = Instant::now();
            let connected = {
                let connect = self.network.send(
                    Method::GET,
                    &path,
                    Some(&self.auth),
                    None,
                    timeouts.watchdog,
                );
                tokio::pin!(connect);
                loop {
                    let notify_at =
                        st.down_since.unwrap_or(connect_started) + timeouts.unreachable_after;
                    tokio::select! {
                        r = &mut connect => break r,
                        _ = tokio::time::sleep_until(notify_at), if !st.notified => {
                            if let Err(stop) = notify_unreachable(&self.tx, st).await {
                                return stop;
                            }
                        }
                        r = self.lifecycle.changed() => {
                            if r.is_err() {
                                return Stop::Silent;
                            }
                            if *self.lifecycle.borrow() == Lifecycle::Deleted {
                                return Stop::Close(CloseReason::Deleted);
                            }
                        }
                        _ = self.tx.closed() => return Stop::Silent,
                    }
                }
            };
            let (server, resp) = match connected {
                Ok(x) => x,
                Err(Error::NoSuchSession) if *self.lifecycle.borrow() == Lifecycle::Deleted => {
                    return Stop::Close(CloseReason::Deleted);
                }
                Err(Error::NoSuchSession) => return Stop::Close(CloseReason::NoSuchSession),
                Err(e) => return Stop::Close(CloseReason::Failed(e.to_string())),
            };
            tracing::debug!(%server, lastseen = %st.lastseen.lastseen(), "message stream connected");
            let end = match self.read(st, &server, resp.into_body(), &timeouts).await {
                Ok(end) => end,
                Err(stop) => return stop,
            };
            if *self.lifecycle.borrow() == Lifecycle::Deleted {
                return Stop::Close(CloseReason::Deleted);
            }
            if matches!(end, StreamEnd::Eof { objects } if objects > 0) {
                // A server that delivered objects ended the stream on purpose (the session
                // ended, the server shuts down or lost the leader): no backoff. The
                // reconnect learns which (404, 500 → next server, or 200).
                tracing::info!(%server, reason = %end, "message stream ended, reconnecting");
            } else {
                tracing::info!(%server, reason = %end, "message stream failed, reconnecting elsewhere");
                self.network.failed(&server);
                st.down_since.get_or_insert_with(Instant::now);
            }

            // Wait 250–500 ms before reconnecting elsewhere (thundering herd).
            let wait = random_between(timeouts.reconnect_min, timeouts.reconnect_max);
            let until = Instant::now() + wait;
            loop {
                let notify_at = st.down_since.unwrap_or(until) + timeouts.unreachable_after;
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => break,
                    _ = tokio::time::sleep_until(notify_at), if !st.notified => {
                        if let Err(stop) = notify_unreachable(&self.tx, st).await {
                            return stop;
                        }
                    }
                    r = self.lifecycle.changed() => {
                        if r.is_err() {
                            return Stop::Silent;
                        }
                    }
                    _ = self.tx.closed() => return Stop::Silent,
                }
            }
        }
    }

    /// Reads one stream until it ends. `Err` ends the task.
    async fn read(
        &mut self,
        st: &mut State,
        server: &str,
        mut body: Incoming,
        timeouts: &super::Timeouts,
    ) -> Result<StreamEnd, Stop> {
        let mut buf: Vec<u8> = Vec::new();
        let mut total = 0;
        let mut deadline = Instant::now() + timeouts.watchdog;
        loop {
            let notify_at = st.down_since.map(|t| t + timeouts.unreachable_after);
            let delete_by = st.deleted_at.map(|t| t + timeouts.delete_grace);
            tokio::select! {
                frame = tokio::time::timeout_at(deadline, body.frame()) => {
                    let data = match frame {
                        Err(_) => return Ok(StreamEnd::Watchdog),
                        Ok(None) => return Ok(StreamEnd::Eof { objects: total }),
                        Ok(Some(Err(e))) => return Ok(StreamEnd::Transport(super::error_chain(&e))),
                        Ok(Some(Ok(frame))) => match frame.into_data() {
                            Ok(data) => data,
                            Err(_) => continue,
                        },
                    };
                    buf.extend_from_slice(&data);
                    let mut objects = 0;
                    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        let line = line.trim_ascii();
                        if line.is_empty() {
                            continue;
                        }
                        let msg: Message = match serde_json::from_slice(line) {
                            Ok(m) => m,
                            Err(e) => return Ok(StreamEnd::Protocol(format!("invalid object: {e}"))),
                        };
                        objects += 1;
                        total += 1;
                        self.deliver(st, server, msg).await?;
                    }
                    if buf.len() > MAX_OBJECT {
                        return Ok(StreamEnd::Protocol(format!("object longer than {MAX_OBJECT} bytes")));
                    }
                    if objects > 0 {
                        // Time spent waiting for our consumer does not count against the server.
                        deadline = Instant::now() + timeouts.watchdog;
                    }
                }
                _ = sleep_until_opt(notify_at), if !st.notified && notify_at.is_some() => {
                    notify_unreachable(&self.tx, st).await?;
                }
                r = self.lifecycle.changed() => {
                    if r.is_err() {
                        return Err(Stop::Silent);
                    }
                    if *self.lifecycle.borrow() == Lifecycle::Deleted {
                        st.deleted_at.get_or_insert_with(Instant::now);
                    }
                }
                _ = sleep_until_opt(delete_by), if delete_by.is_some() => {
                    return Err(Stop::Close(CloseReason::Deleted));
                }
                _ = self.tx.closed() => return Err(Stop::Silent),
            }
        }
    }

    async fn deliver(&mut self, st: &mut State, server: &str, msg: Message) -> Result<(), Stop> {
        if st.down_since.take().is_some() || st.notified {
            self.network.succeeded(server);
        }
        if st.notified {
            st.notified = false;
            tracing::info!(%server, "network connectivity restored");
            self.tx
                .send(Event::Restored)
                .await
                .map_err(|_| Stop::Silent)?;
        }
        match msg.kind {
            kind::IRC_TO_CLIENT => {
                if msg.id <= st.lastseen {
                    // Already delivered (a server that is behind re-sent it).
                    return Ok(());
                }
                st.lastseen = msg.id;
                self.tx
                    .send(Event::Line(msg.data))
                    .await
                    .map_err(|_| Stop::Silent)
            }
            kind::PING => {
                if !msg.servers.is_empty() {
                    self.network.set_servers(msg.servers);
                }
                Ok(())
            }
            other => {
                tracing::debug!(kind = other, "ignoring message of unexpected type");
                Ok(())
            }
        }
    }
}

async fn notify_unreachable(tx: &mpsc::Sender<Event>, st: &mut State) -> Result<(), Stop> {
    st.notified = true;
    tracing::warn!("network unreachable, retrying");
    tx.send(Event::Unreachable).await.map_err(|_| Stop::Silent)
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn random_between(min: Duration, max: Duration) -> Duration {
    if max <= min {
        return min;
    }
    min + (max - min).mul_f64(rand::random_range(0.0..1.0))
}
