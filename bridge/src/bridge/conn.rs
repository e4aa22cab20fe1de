//! One IRC connection ⇄ one RobustSession (behaviour: see the parent module).
//!
//! Three tasks per connection: the reader (client lines → channel), the poster (posts in
//! order, one at a time, plus the keepalive), and this one, which owns the client's write
//! half, forwards the network's lines and decides when to close.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Bridge, BridgeConfig, stopped};
use crate::client::{self, CloseReason, Event, Messages, Network, Session};
use crate::irc::{self, LineReader, ReadLine};

/// Client lines read ahead of the poster.
const INPUT_QUEUE: usize = 16;
/// Lines handed to the poster but not yet posted.
const POST_QUEUE: usize = 16;
/// Lines buffered while the session is being created.
const MAX_PENDING: usize = 64;
/// Network events written before flushing.
const MAX_BATCH: usize = 64;

/// The token of the bridge's own PING to the client is its name; the keepalive PING to
/// the network uses this one.
const KEEPALIVE: &str = "keepalive";

enum Input {
    Line(String),
    TooLong,
    SocksByte(u8),
    Closed(String),
}

enum PostItem {
    Line(String),
    Delete(String),
}

enum Outcome {
    Deleted(Result<(), client::Error>),
    Gone,
    TooLong,
    Failed(client::Error),
    Retrying,
}

#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) async fn serve<S>(
    bridge: Arc<Bridge>,
    stream: S,
    peer: SocketAddr,
    network: Network,
    check_socks: bool,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let cfg = bridge.config.clone();
    let (rd, wr) = tokio::io::split(stream);
    let (in_tx, in_rx) = mpsc::channel(INPUT_QUEUE);
    let reader = AbortOnDrop(tokio::spawn(read_client(
        rd,
        in_tx,
        cfg.max_line,
        check_socks,
    )));
    let mut c = Conn::new(cfg, peer, wr);
    run(&bridge, &mut c, in_rx, network).await;
    drop(reader);
    c.out.close().await;
    tracing::debug!(%peer, "connection closed");
}

async fn run<W>(
    bridge: &Bridge,
    c: &mut Conn<W>,
    mut in_rx: mpsc::Receiver<Input>,
    network: Network,
) where
    W: AsyncWrite + Unpin,
{
    let peer = c.peer;
    let mut stop = bridge.shutdown.subscribe();

    // Create the session, buffering what the client sends meanwhile.
    let network = network.with_forwarded_for(&peer.ip().to_string());
    let mut pending: VecDeque<Input> = VecDeque::new();
    let session = {
        let create = Session::create(&network);
        tokio::pin!(create);
        let mut client_gone = false;
        loop {
            tokio::select! {
                r = &mut create => match r {
                    Ok(s) => break s,
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "could not create a session");
                        c.error(&format!("Could not create a session on the network: {e}")).await;
                        return;
                    }
                },
                input = in_rx.recv(), if !client_gone && pending.len() < MAX_PENDING => match input {
                    Some(Input::SocksByte(b)) => {
                        c.socks_error(b).await;
                        return;
                    }
                    Some(Input::Closed(why)) => {
                        client_gone = true;
                        pending.push_back(Input::Closed(why));
                    }
                    None => {
                        client_gone = true;
                        pending.push_back(Input::Closed("the connection ended".into()));
                    }
                    Some(i) => pending.push_back(i),
                },
                _ = stopped(&mut stop) => {
                    c.error("Bridge shutting down").await;
                    return;
                }
            }
        }
    };
    tracing::info!(%peer, session = session.id(), "session created");

    let mut events = match session.messages() {
        Ok(m) => m,
        Err(e) => {
            c.error(&e.to_string()).await;
            return;
        }
    };
    let (post_tx, post_rx) = mpsc::channel(POST_QUEUE);
    let (res_tx, mut res_rx) = mpsc::channel(8);
    let _poster = AbortOnDrop(tokio::spawn(poster(
        session.clone(),
        post_rx,
        res_tx,
        c.cfg.keepalive,
        c.keepalives.clone(),
    )));
    let mut poster_alive = true;

    loop {
        while c.outbox.is_empty() && c.reading {
            let Some(input) = pending.pop_front() else {
                break;
            };
            c.input(input).await;
        }
        let client_deadline = c.client_deadline();
        let close_by = c.close_by;
        tokio::select! {
            _ = stopped(&mut stop) => {
                c.shutdown(&session).await;
                return;
            }
            ev = events.next() => {
                if c.events(ev, &mut events).await == Flow::Close {
                    return;
                }
            }
            out = res_rx.recv(), if poster_alive => match out {
                Some(out) => c.outcome(out).await,
                None => poster_alive = false,
            },
            permit = post_tx.reserve(), if !c.outbox.is_empty() && poster_alive => match permit {
                Ok(p) => {
                    if let Some(item) = c.outbox.pop_front() {
                        p.send(item);
                    }
                }
                Err(_) => c.outbox.clear(),
            },
            input = in_rx.recv(), if c.reading && c.outbox.is_empty() && pending.is_empty() => {
                c.input(input.unwrap_or_else(|| Input::Closed("the connection ended".into()))).await;
            }
            _ = tokio::time::sleep_until(client_deadline), if c.reading => c.client_timer().await,
            _ = sleep_until_opt(close_by), if close_by.is_some() => {
                tracing::debug!(%peer, "closing without the network's last lines");
                return;
            }
        }
        if c.out.dead && !c.quitting {
            c.quit("Bridge: writing to the client failed");
        }
    }
}

/// Reads the client's lines into `tx`; the first input may be `SocksByte`.
async fn read_client<R: AsyncRead + Unpin>(
    rd: R,
    tx: mpsc::Sender<Input>,
    max: usize,
    check_socks: bool,
) {
    let mut reader = LineReader::new(rd, max);
    if check_socks {
        match reader.peek_byte().await {
            Ok(Some(b @ (4 | 5))) => {
                let _ = tx.send(Input::SocksByte(b)).await;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = tx
                    .send(Input::Closed(format!("reading from the client: {e}")))
                    .await;
                return;
            }
        }
    }
    loop {
        let input = match reader.next().await {
            Ok(ReadLine::Line(l)) => Input::Line(l),
            Ok(ReadLine::TooLong) => Input::TooLong,
            Ok(ReadLine::Eof) => Input::Closed("the client closed the connection".into()),
            Err(e) => Input::Closed(format!("reading from the client: {e}")),
        };
        let end = matches!(input, Input::Closed(_));
        if tx.send(input).await.is_err() || end {
            return;
        }
    }
}

/// Posts the client's lines in order, one at a time; posts `PING keepalive` after
/// `keepalive` without a post; ends after the DeleteSession or when the session is gone.
async fn poster(
    session: Session,
    mut rx: mpsc::Receiver<PostItem>,
    tx: mpsc::Sender<Outcome>,
    keepalive: Duration,
    keepalives: Arc<AtomicU32>,
) {
    let mut idle_until = Instant::now() + keepalive;
    loop {
        let item = tokio::select! {
            item = rx.recv() => match item {
                Some(item) => Some(item),
                None => return,
            },
            _ = tokio::time::sleep_until(idle_until) => None,
        };
        let (line, is_keepalive) = match item {
            Some(PostItem::Delete(msg)) => {
                let r = session.delete(&msg).await;
                let _ = tx.send(Outcome::Deleted(r)).await;
                return;
            }
            Some(PostItem::Line(line)) => (line, false),
            None => (format!("PING {KEEPALIVE}"), true),
        };
        let msg = match session.prepare(&line) {
            Ok(m) => m,
            Err(_) => {
                let _ = tx.send(Outcome::TooLong).await;
                continue;
            }
        };
        if is_keepalive {
            keepalives.fetch_add(1, Ordering::SeqCst);
        }
        loop {
            match session.post_message(&msg).await {
                Ok(()) => break,
                // The same message (same id) again: idempotent. The client never sees a
                // disconnect because the network is slow or away.
                Err(client::Error::Timeout { .. }) => {
                    if tx.send(Outcome::Retrying).await.is_err() {
                        return;
                    }
                }
                Err(client::Error::NoSuchSession) => {
                    let _ = tx.send(Outcome::Gone).await;
                    return;
                }
                Err(e) => {
                    if is_keepalive {
                        keepalives.fetch_sub(1, Ordering::SeqCst);
                    }
                    if tx.send(Outcome::Failed(e)).await.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
        idle_until = Instant::now() + keepalive;
    }
}

struct Conn<W> {
    cfg: Arc<BridgeConfig>,
    peer: SocketAddr,
    out: ClientOut<W>,
    /// Keepalive PINGs posted whose PONG has not been swallowed yet.
    keepalives: Arc<AtomicU32>,
    /// Items for the poster, in order (at most a line and a Delete).
    outbox: VecDeque<PostItem>,
    /// Whether client input is still read.
    reading: bool,
    /// Whether the Delete was queued.
    quitting: bool,
    /// Whether the session is over on the network (deleted or gone).
    ended: bool,
    /// Close the connection at this time at the latest.
    close_by: Option<Instant>,
    last_client: Instant,
    ping_sent: Option<Instant>,
}

impl<W: AsyncWrite + Unpin> Conn<W> {
    fn new(cfg: Arc<BridgeConfig>, peer: SocketAddr, wr: W) -> Conn<W> {
        let out = ClientOut {
            w: BufWriter::new(wr),
            name: cfg.name.clone(),
            nick: "*".to_owned(),
            timeout: cfg.client_ping_timeout,
            dead: false,
        };
        Conn {
            cfg,
            peer,
            out,
            keepalives: Arc::new(AtomicU32::new(0)),
            outbox: VecDeque::new(),
            reading: true,
            quitting: false,
            ended: false,
            close_by: None,
            last_client: Instant::now(),
            ping_sent: None,
        }
    }

    async fn error(&mut self, text: &str) {
        self.out.send(&format!("ERROR :{text}")).await;
        self.out.flush().await;
    }

    async fn notice(&mut self, text: &str) {
        let line = format!(":{} NOTICE {} :{text}", self.out.name, self.out.nick);
        self.out.send(&line).await;
    }

    async fn socks_error(&mut self, byte: u8) {
        tracing::info!(peer = %self.peer, byte, "SOCKS client on the IRC port");
        self.error(&format!(
            "This is an IRC port, not SOCKS: read 0x{byte:02x} (a SOCKS version) as the first byte. \
             Connect to the bridge's SOCKS port instead."
        ))
        .await;
    }

    /// Queues the DeleteSession (after the lines already queued) and stops reading.
    fn quit(&mut self, message: &str) {
        self.reading = false;
        if self.quitting || self.ended {
            return;
        }
        self.quitting = true;
        tracing::info!(peer = %self.peer, message, "deleting the session");
        self.outbox.push_back(PostItem::Delete(message.to_owned()));
    }

    async fn input(&mut self, input: Input) {
        match input {
            Input::Line(line) => {
                self.last_client = Instant::now();
                self.ping_sent = None;
                enum Action {
                    Ignore,
                    Quit(String),
                    Post,
                }
                let action = match irc::parse(&line) {
                    None => Action::Ignore,
                    Some(p) if p.is("PONG") && p.last() == Some(self.cfg.name.as_str()) => {
                        Action::Ignore
                    }
                    Some(p) if p.is("QUIT") => {
                        Action::Quit(p.params.first().copied().unwrap_or("").to_owned())
                    }
                    Some(_) => Action::Post,
                };
                match action {
                    Action::Ignore => {}
                    Action::Quit(msg) => self.quit(&msg),
                    Action::Post => self.outbox.push_back(PostItem::Line(line)),
                }
            }
            Input::TooLong => {
                self.last_client = Instant::now();
                self.ping_sent = None;
                self.too_long().await;
            }
            Input::SocksByte(b) => {
                self.socks_error(b).await;
                self.quit("Bridge: SOCKS client on the IRC port");
            }
            Input::Closed(why) => {
                tracing::info!(peer = %self.peer, why, "client input ended");
                self.quit(&format!("Bridge: {why}"));
            }
        }
    }

    async fn too_long(&mut self) {
        let line = format!(
            ":{} 417 {} :Input line was too long",
            self.out.name, self.out.nick
        );
        self.out.send(&line).await;
        self.out.flush().await;
    }

    /// Handles `first` and whatever else is ready, then flushes.
    async fn events(&mut self, first: Option<Event>, events: &mut Messages) -> Flow {
        let mut next = first;
        let mut n = 0;
        let flow = loop {
            match next {
                None => break Flow::Close,
                Some(Event::Line(line)) => self.network_line(&line).await,
                Some(Event::Unreachable) => self.notice("Network unreachable, retrying…").await,
                Some(Event::Restored) => self.notice("Network connection restored").await,
                Some(Event::Closed(reason)) => {
                    tracing::info!(peer = %self.peer, %reason, "session over");
                    if let CloseReason::Failed(e) = reason {
                        self.out.send(&format!("ERROR :{e}")).await;
                    }
                    break Flow::Close;
                }
            }
            n += 1;
            if n >= MAX_BATCH {
                break Flow::Continue;
            }
            next = events.try_next();
            if next.is_none() {
                break Flow::Continue;
            }
        };
        self.out.flush().await;
        flow
    }

    async fn network_line(&mut self, line: &str) {
        if let Some(p) = irc::parse(line) {
            if p.is("PONG") && p.last() == Some(KEEPALIVE) {
                let swallowed = self
                    .keepalives
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if swallowed {
                    return;
                }
            }
            let own_nick_change = p.is("NICK")
                && p.prefix_nick()
                    .is_some_and(|n| n.eq_ignore_ascii_case(&self.out.nick));
            let new_nick = match p.command {
                "001" => p.params.first().copied(),
                _ if own_nick_change => p.last(),
                _ => None,
            };
            if let Some(nick) = new_nick.filter(|n| !n.is_empty()) {
                self.out.nick = nick.to_owned();
            }
        }
        self.out.send(irc::one_line(line)).await;
    }

    async fn outcome(&mut self, out: Outcome) {
        match out {
            Outcome::Deleted(r) => {
                self.ended = true;
                if let Err(e) = &r {
                    tracing::info!(peer = %self.peer, error = %e, "DeleteSession failed");
                }
                // The message stream now delivers the network's last lines and ends.
                self.close_by = Some(Instant::now() + self.cfg.close_grace);
            }
            Outcome::Gone => {
                tracing::info!(peer = %self.peer, "the network ended the session");
                self.ended = true;
                self.reading = false;
                self.outbox.clear();
                self.close_by = Some(Instant::now() + self.cfg.close_grace);
            }
            Outcome::TooLong => self.too_long().await,
            Outcome::Failed(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "a line was refused by the network");
                self.notice(&format!("The network refused a line: {e}"))
                    .await;
                self.out.flush().await;
            }
            Outcome::Retrying => {
                self.notice("Still trying to deliver your last line…").await;
                self.out.flush().await;
            }
        }
    }

    fn client_deadline(&self) -> Instant {
        match self.ping_sent {
            Some(at) => at + self.cfg.client_ping_timeout,
            None => self.last_client + self.cfg.client_ping_after,
        }
    }

    async fn client_timer(&mut self) {
        if self.ping_sent.is_some() {
            tracing::info!(peer = %self.peer, "client ping timeout");
            self.error("Ping timeout").await;
            self.quit("Bridge: ping timeout");
        } else {
            let ping = format!("PING :{}", self.cfg.name);
            self.out.send(&ping).await;
            self.out.flush().await;
            self.ping_sent = Some(Instant::now());
        }
    }

    async fn shutdown(&mut self, session: &Session) {
        tracing::info!(peer = %self.peer, "bridge shutting down: deleting the session");
        let ended = self.ended;
        let grace = self.cfg.close_grace;
        let delete = async {
            if !ended {
                let _ = tokio::time::timeout(grace, session.delete("Bridge shutting down")).await;
            }
        };
        let out = &mut self.out;
        let notify = async {
            let _ = tokio::time::timeout(grace, async {
                out.send("ERROR :Bridge shutting down").await;
                out.flush().await;
            })
            .await;
        };
        tokio::join!(delete, notify);
    }
}

/// The client's write half. Every write is bounded in time; after a failure the client is
/// `dead` and further writes are skipped.
struct ClientOut<W> {
    w: BufWriter<W>,
    name: String,
    nick: String,
    timeout: Duration,
    dead: bool,
}

impl<W: AsyncWrite + Unpin> ClientOut<W> {
    async fn send(&mut self, line: &str) {
        if self.dead {
            return;
        }
        let w = &mut self.w;
        let r = tokio::time::timeout(self.timeout, async {
            w.write_all(line.as_bytes()).await?;
            w.write_all(b"\r\n").await
        })
        .await;
        if !matches!(r, Ok(Ok(()))) {
            self.dead = true;
        }
    }

    /// Flushes and closes the write side (TLS: sends close_notify), briefly.
    async fn close(&mut self) {
        if !self.dead {
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                let _ = self.w.flush().await;
                let _ = self.w.shutdown().await;
            })
            .await;
        }
    }

    async fn flush(&mut self) {
        if self.dead {
            return;
        }
        if !matches!(
            tokio::time::timeout(self.timeout, self.w.flush()).await,
            Ok(Ok(()))
        ) {
            self.dead = true;
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
