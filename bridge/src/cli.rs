//! The bridge's command line and main loop, shared by the `unsplit-bridge` binary and the
//! `unsplit bridge` subcommand (this is binary glue, hence `anyhow`).
//!
//! ```text
//! unsplit-bridge --network n1:60001,n2:60002 --tls-ca-file ca.pem
//!     IRC clients connect to localhost:6667; SOCKS5 clients to localhost:1080 (the
//!     CONNECT host:port names the network).
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::bridge::{Bridge, BridgeAuth, BridgeConfig, tls_acceptor};
use crate::client::{Network, NetworkConfig, TlsRoots};
use anyhow::{Context, bail};
use tokio::net::TcpListener;

/// The bridge's flags (shared by `unsplit-bridge` and `unsplit bridge`).
#[derive(Debug, clap::Args)]
pub struct BridgeArgs {
    /// The network's servers, host:port[,host:port…] (pings bring the rest). Needed for
    /// --listen; SOCKS clients name their network themselves.
    #[arg(long)]
    network: Option<String>,
    /// CA certificate(s) (PEM) the network's servers are checked against. Default: the
    /// webpki (Mozilla) roots.
    #[arg(long)]
    tls_ca_file: Option<PathBuf>,
    /// Address(es) for IRC clients, host:port[,host:port…]; empty disables.
    #[arg(long, default_value = "localhost:6667")]
    listen: String,
    /// Certificate chain (PEM) for IRC over TLS on --listen.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) for IRC over TLS on --listen.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Address for SOCKS5 clients; the CONNECT target host:port is the network. Empty
    /// disables.
    #[arg(long, default_value = "localhost:1080")]
    socks: String,
    /// File of <network>:<secret> lines sent as X-Bridge-Auth (must not be readable by
    /// others).
    #[arg(long)]
    bridge_auth_file: Option<PathBuf>,
    /// Reconnect a message stream that delivered nothing (not even a ping) for this long.
    #[arg(long, default_value_t = 30)]
    watchdog_secs: u64,
    /// Post `PING keepalive` after this long without a line from the client.
    #[arg(long, default_value_t = 60)]
    keepalive_secs: u64,
    /// PING the IRC client after this long without a line from it.
    #[arg(long, default_value_t = 60)]
    client_ping_secs: u64,
    /// Close the connection when the client does not answer that PING within this long.
    #[arg(long, default_value_t = 60)]
    client_ping_timeout_secs: u64,
    /// Tell the IRC client the network is unreachable after this long without messages.
    #[arg(long, default_value_t = 1000)]
    unreachable_after_ms: u64,
    /// Longest line accepted from an IRC client, in bytes.
    #[arg(long, default_value_t = 8192)]
    max_line_bytes: usize,
    /// On SIGTERM/Ctrl-C, how long connections get to delete their sessions.
    #[arg(long, default_value_t = 1000)]
    shutdown_timeout_ms: u64,
    /// Keep the given server list even when the network announces another (port forwarding).
    #[arg(long)]
    ignore_server_list_updates: bool,
}

async fn bind_all(list: &str) -> anyhow::Result<Vec<TcpListener>> {
    let mut listeners = vec![];
    for addr in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let resolved: Vec<_> = tokio::net::lookup_host(addr)
            .await
            .with_context(|| format!("resolving {addr}"))?
            .collect();
        let mut bound = 0;
        let mut last_err = None;
        for sa in resolved {
            match TcpListener::bind(sa).await {
                Ok(l) => {
                    listeners.push(l);
                    bound += 1;
                }
                Err(e) => {
                    last_err = Some(anyhow::Error::new(e).context(format!("listening on {sa}")))
                }
            }
        }
        if bound == 0 {
            return Err(
                last_err.unwrap_or_else(|| anyhow::anyhow!("{addr} resolves to no address"))
            );
        }
    }
    Ok(listeners)
}

async fn terminated() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch SIGTERM");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the bridge until SIGTERM or Ctrl-C, then gives connections the shutdown
/// timeout to delete their sessions.
pub async fn run(args: BridgeArgs) -> anyhow::Result<()> {
    let mut template = NetworkConfig::new(Vec::<String>::new());
    if let Some(ca) = &args.tls_ca_file {
        template.tls = TlsRoots::CaFile(ca.clone());
    }
    template.ignore_server_list_updates = args.ignore_server_list_updates;
    template.timeouts.watchdog = Duration::from_secs(args.watchdog_secs.max(1));
    template.timeouts.unreachable_after = Duration::from_millis(args.unreachable_after_ms);
    let auth = match &args.bridge_auth_file {
        Some(path) => BridgeAuth::load(path)?,
        None => BridgeAuth::default(),
    };
    let config = BridgeConfig {
        keepalive: Duration::from_secs(args.keepalive_secs.max(1)),
        client_ping_after: Duration::from_secs(args.client_ping_secs.max(1)),
        client_ping_timeout: Duration::from_secs(args.client_ping_timeout_secs.max(1)),
        max_line: args.max_line_bytes.max(512),
        ..BridgeConfig::default()
    };

    let irc_network = match &args.network {
        Some(list) if !args.listen.is_empty() => {
            let mut c = template.clone();
            c.servers = NetworkConfig::parse_servers(list);
            let mut names: Vec<&str> = vec![list.as_str()];
            names.extend(c.servers.iter().map(String::as_str));
            c.bridge_auth = auth.lookup(names);
            Some(Network::new(c).context("--network")?)
        }
        _ => None,
    };
    if irc_network.is_none() && args.socks.is_empty() {
        bail!("nothing to do: give --network (with --listen) and/or --socks");
    }
    if args.network.is_none() && !args.listen.is_empty() {
        tracing::info!(listen = %args.listen, "not listening for IRC: no --network given (SOCKS only)");
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };

    let bridge = Bridge::new(config, template, auth);
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(network) = irc_network {
        for l in bind_all(&args.listen).await? {
            tracing::info!(addr = %l.local_addr()?, tls = tls.is_some(), servers = ?network.servers(), "listening for IRC");
            tasks.spawn(Arc::clone(&bridge).serve_irc(l, network.clone(), tls.clone()));
        }
    }
    if !args.socks.is_empty() {
        for l in bind_all(&args.socks).await? {
            tracing::info!(addr = %l.local_addr()?, "listening for SOCKS5");
            tasks.spawn(Arc::clone(&bridge).serve_socks(l));
        }
    }

    terminated().await;
    let limit = Duration::from_millis(args.shutdown_timeout_ms);
    tracing::info!(
        connections = bridge.active_connections(),
        ?limit,
        "shutting down"
    );
    bridge.shutdown();
    while tasks.join_next().await.is_some() {}
    if !bridge.wait_idle(limit).await {
        tracing::warn!(
            connections = bridge.active_connections(),
            "connections still open at exit"
        );
    }
    Ok(())
}
