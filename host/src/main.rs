//! `unsplit`: the node and the operator tools.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use unsplit_host::node::{Node, NodeOptions};

#[derive(Parser)]
#[command(name = "unsplit", version, about = "An IRC network that never splits")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node.
    Node(NodeArgs),
}

#[derive(clap::Args)]
struct NodeArgs {
    /// Where the node keeps its raft log, snapshots and identity.
    #[arg(long, default_value = "unsplit-data")]
    data_dir: PathBuf,
    /// Address to listen on (HTTPS: RobustSession API, private API, raft).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// `host:port` at which clients and the other nodes reach this node (default: --listen).
    #[arg(long)]
    peer_addr: Option<String>,
    /// The network's name (a new network's initial configuration).
    #[arg(long, default_value = "unsplit")]
    network_name: String,
    /// The network password (private API user `robustirc`, raft between nodes).
    #[arg(long, env = "UNSPLIT_NETWORK_PASSWORD", hide_env_values = true)]
    network_password: String,
    /// TLS certificate (PEM). Without one, a self-signed pair is generated into --data-dir.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA certificate the other nodes' certificates are signed with (default: our own).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Bootstrap a new network with this node as its only member (first start only).
    #[arg(long)]
    singlenode: bool,
    /// Longest TLS handshake, in seconds.
    #[arg(long, default_value_t = 10)]
    tls_handshake_timeout: u64,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    match cli.command {
        Command::Node(args) => runtime.block_on(node(args)),
    }
}

async fn node(args: NodeArgs) -> anyhow::Result<()> {
    let opts = NodeOptions {
        peer_addr: args.peer_addr.unwrap_or_else(|| args.listen.to_string()),
        data_dir: args.data_dir,
        listen: args.listen,
        network_name: args.network_name,
        password: args.network_password,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        tls_ca: args.tls_ca,
        singlenode: args.singlenode,
        tls_handshake_timeout: Duration::from_secs(args.tls_handshake_timeout),
    };
    let node = Node::start(opts).await.context("starting the node")?;
    tracing::info!(
        "node {} serving on https://{}",
        node.api.id,
        node.local_addr
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    node.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
