//! The bridge: plain RFC 2812 IRC (TCP, optionally TLS) and SOCKS5 on one side, one
//! RobustSession per IRC connection on the other. Per connection:
//!
//! - the session is created when the client connects (`X-Forwarded-For` = the client's
//!   IP); what the client sends meanwhile is buffered;
//! - client lines are posted in order, one at a time. `PING` goes through the network, so
//!   its `PONG` comes after every line the network produced before it (a barrier);
//! - after [`BridgeConfig::keepalive`] without a post, `PING keepalive` is posted and its
//!   `PONG` swallowed, so that idle sessions do not expire;
//! - after [`BridgeConfig::client_ping_after`] of silence from the client, it gets a
//!   `PING`; no line within [`BridgeConfig::client_ping_timeout`] closes the connection;
//! - network trouble never disconnects the client: it gets NOTICEs ("Network unreachable,
//!   retrying…", "Network connection restored") while the client library retries;
//! - `QUIT :msg` → DeleteSession with that message; the network's last lines
//!   (`ERROR :Closing Link…`) are forwarded, then the connection is closed. A client that
//!   just closes the connection gets a DeleteSession with a generic message;
//! - a session the network ended (killed, expired: 404) → its last lines are forwarded,
//!   then the connection is closed;
//! - lines longer than [`BridgeConfig::max_line`] (or too long for one PostMessage) are
//!   answered with `417` and dropped; invalid UTF-8 becomes U+FFFD (see [`crate::irc`]);
//! - a first byte 0x04/0x05 on the IRC port (a SOCKS client) gets an `ERROR` and a close.

mod auth;
mod conn;
pub mod socks;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::client::{self, Network, NetworkConfig};
pub use auth::{AuthError, BridgeAuth, MIN_SECRET_LEN};

/// Most SOCKS networks kept (with their connection pools and backoff state).
const MAX_CACHED_NETWORKS: usize = 1024;

/// Per-connection behaviour.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Prefix of the bridge's own lines (`:unsplit-bridge NOTICE …`) and its PING token.
    pub name: String,
    /// Post `PING keepalive` after this long without a post (60 s).
    pub keepalive: Duration,
    /// Send the IRC client a PING after this long without a line from it (60 s).
    pub client_ping_after: Duration,
    /// Close the connection when the client sends nothing for this long after that PING
    /// (60 s). Also bounds each write to the client.
    pub client_ping_timeout: Duration,
    /// Longest client line, in bytes, without CR LF (8 KiB).
    pub max_line: usize,
    /// Bound on the TLS (IRC over TLS) and SOCKS handshakes (10 s).
    pub handshake_timeout: Duration,
    /// After a DeleteSession or a 404, how long the network's last lines may take (3 s).
    pub close_grace: Duration,
}

impl Default for BridgeConfig {
    fn default() -> BridgeConfig {
        BridgeConfig {
            name: "unsplit-bridge".to_owned(),
            keepalive: Duration::from_secs(60),
            client_ping_after: Duration::from_secs(60),
            client_ping_timeout: Duration::from_secs(60),
            max_line: 8192,
            handshake_timeout: Duration::from_secs(10),
            close_grace: Duration::from_secs(3),
        }
    }
}

/// Errors of the bridge's setup (not of single connections: those are logged).
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Client(#[from] client::Error),
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("no certificate in {0}")]
    NoCertificate(String),
    #[error("no private key in {0}")]
    NoKey(String),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// A running bridge: its listeners' accept loops and connections share it.
pub struct Bridge {
    config: Arc<BridgeConfig>,
    /// For SOCKS: the network configuration but for the servers and the bridge auth.
    template: NetworkConfig,
    auth: BridgeAuth,
    networks: Mutex<HashMap<String, Network>>,
    shutdown: watch::Sender<bool>,
    active: watch::Sender<usize>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Counts a connection while it lives.
struct ActiveGuard(watch::Sender<usize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Bridge {
    /// `template` gives TLS roots, timeouts and user agent for networks reached through
    /// SOCKS (its servers are ignored); `auth` their `X-Bridge-Auth` secrets.
    pub fn new(config: BridgeConfig, template: NetworkConfig, auth: BridgeAuth) -> Arc<Bridge> {
        Arc::new(Bridge {
            config: Arc::new(config),
            template,
            auth,
            networks: Mutex::new(HashMap::new()),
            shutdown: watch::channel(false).0,
            active: watch::channel(0).0,
        })
    }

    pub fn config(&self) -> &BridgeConfig {
        &self.config
    }

    /// The network for a SOCKS target (cached, so that sessions share backoff state and
    /// connections).
    pub fn socks_network(&self, target: &socks::Target) -> Result<Network, client::Error> {
        let servers = target.servers();
        let key = servers.join(",");
        let mut networks = self.networks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = networks.get(&key) {
            return Ok(n.clone());
        }
        let mut config = self.template.clone();
        config.servers = servers;
        let hostport = format!("{}:{}", target.host, target.port);
        config.bridge_auth =
            self.auth
                .lookup([target.host.as_str(), hostport.as_str(), key.as_str()]);
        let network = Network::new(config)?;
        if networks.len() < MAX_CACHED_NETWORKS {
            networks.insert(key, network.clone());
        }
        Ok(network)
    }

    /// Serves IRC clients on `listener` for `network` until [`Bridge::shutdown`]. With
    /// `tls`, clients speak IRC over TLS.
    pub async fn serve_irc(
        self: Arc<Self>,
        listener: TcpListener,
        network: Network,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) {
        let mut stop = self.shutdown.subscribe();
        while let Some((tcp, peer)) = next_connection(&listener, &mut stop).await {
            let guard = self.track();
            let bridge = self.clone();
            let network = network.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let _guard = guard;
                let _ = tcp.set_nodelay(true);
                match tls {
                    None => conn::serve(bridge, tcp, peer, network, true).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(
                            bridge.config.handshake_timeout,
                            acceptor.accept(tcp),
                        )
                        .await
                        {
                            Ok(Ok(stream)) => {
                                conn::serve(bridge, stream, peer, network, false).await
                            }
                            Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
            });
        }
    }

    /// Serves SOCKS5 clients on `listener` until [`Bridge::shutdown`].
    pub async fn serve_socks(self: Arc<Self>, listener: TcpListener) {
        let mut stop = self.shutdown.subscribe();
        while let Some((tcp, peer)) = next_connection(&listener, &mut stop).await {
            let guard = self.track();
            let bridge = self.clone();
            tokio::spawn(async move {
                let _guard = guard;
                let _ = tcp.set_nodelay(true);
                bridge.socks_connection(tcp, peer).await;
            });
        }
    }

    async fn socks_connection(self: Arc<Self>, mut tcp: TcpStream, peer: SocketAddr) {
        let target = match tokio::time::timeout(
            self.config.handshake_timeout,
            socks::accept(&mut tcp),
        )
        .await
        {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                tracing::info!(%peer, error = %e, "SOCKS handshake failed");
                return;
            }
            Err(_) => {
                tracing::info!(%peer, "SOCKS handshake timed out");
                return;
            }
        };
        let network = match self.socks_network(&target) {
            Ok(n) => n,
            Err(e) => {
                tracing::info!(%peer, host = %target.host, error = %e, "SOCKS target is not a usable network");
                let _ = socks::reply(&mut tcp, socks::REPLY_GENERAL_FAILURE).await;
                return;
            }
        };
        if socks::reply(&mut tcp, socks::REPLY_SUCCEEDED)
            .await
            .is_err()
        {
            return;
        }
        tracing::info!(%peer, servers = ?network.servers(), "SOCKS connection");
        conn::serve(self, tcp, peer, network, false).await;
    }

    /// Serves one already-accepted IRC connection (any byte stream), e.g. for tests or
    /// socket activation.
    pub async fn serve_connection<S>(self: Arc<Self>, stream: S, peer: SocketAddr, network: Network)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let _guard = self.track();
        conn::serve(self, stream, peer, network, true).await;
    }

    fn track(&self) -> ActiveGuard {
        self.active.send_modify(|n| *n += 1);
        ActiveGuard(self.active.clone())
    }

    /// Stops the accept loops and tells every connection to delete its session, send the
    /// client an `ERROR` and close.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Connections still open.
    pub fn active_connections(&self) -> usize {
        *self.active.borrow()
    }

    /// Waits until no connection is open, at most `limit`. Returns whether none is.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        let mut rx = self.active.subscribe();
        tokio::time::timeout(limit, rx.wait_for(|n| *n == 0))
            .await
            .is_ok()
    }
}

/// The next accepted connection, or `None` once the bridge shuts down. Accept errors
/// (e.g. out of file descriptors) are logged and retried after a pause, not spun on.
async fn next_connection(
    listener: &TcpListener,
    stop: &mut watch::Receiver<bool>,
) -> Option<(tokio::net::TcpStream, std::net::SocketAddr)> {
    loop {
        tokio::select! {
            _ = stopped(stop) => return None,
            r = listener.accept() => match r {
                Ok(x) => return Some(x),
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
        }
    }
}

/// A TLS acceptor (ring provider) from PEM certificate chain and key files.
pub fn tls_acceptor(
    cert_path: &std::path::Path,
    key_path: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, BridgeError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|source| BridgeError::Read {
            path: p.display().to_string(),
            source,
        })
    };
    let cert_pem = read(cert_path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|source| BridgeError::Read {
            path: cert_path.display().to_string(),
            source,
        })?;
    if certs.is_empty() {
        return Err(BridgeError::NoCertificate(cert_path.display().to_string()));
    }
    let key_pem = read(key_path)?;
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|source| BridgeError::Read {
            path: key_path.display().to_string(),
            source,
        })?
        .ok_or_else(|| BridgeError::NoKey(key_path.display().to_string()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Resolves once the shutdown flag is set (or its sender is gone).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
