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
    /// Run a whole network on this machine (nodes + bridge), for trying unsplit.
    Localnet(LocalnetArgs),
    /// Run the IRC/SOCKS5 bridge (the same as the `unsplit-bridge` binary).
    Bridge(unsplit_bridge::cli::BridgeArgs),
}

#[derive(clap::Args)]
struct LocalnetArgs {
    /// Where the nodes' data, logs, certificate and localnet.json go.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// The bridge's IRC listener.
    #[arg(long, default_value = "localhost:6667")]
    irc_listen: String,
    /// The bridge's SOCKS5 listener.
    #[arg(long, default_value = "localhost:1080")]
    socks_listen: String,
    /// The network's name.
    #[arg(long, default_value = "localnet")]
    network: String,
    /// Return once everything is healthy, leaving it running.
    #[arg(long, conflicts_with = "stop")]
    detach: bool,
    /// Stop the localnet that DIR/localnet.json lists.
    #[arg(long)]
    stop: bool,
    /// SIGKILL one node of a running localnet by name (e.g. node2), to watch failover.
    #[arg(long, value_name = "NAME")]
    kill: Option<String>,
    /// Start one node of a running localnet again by name.
    #[arg(long, value_name = "NAME")]
    restart: Option<String>,
    /// Add a node to a running localnet.
    #[arg(long)]
    add: bool,
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
    #[arg(long, conflicts_with = "join")]
    singlenode: bool,
    /// Join the network of the node at host:port (first start only).
    #[arg(long)]
    join: Option<String>,
    /// Seconds without contact to a leader after which this node refuses streams.
    #[arg(long, default_value_t = 5)]
    leader_timeout: u64,
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
        Command::Localnet(args) => localnet(args, &runtime),
        Command::Bridge(args) => runtime.block_on(unsplit_bridge::cli::run(args)),
    }
}

fn localnet(args: LocalnetArgs, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    use unsplit_host::localnet;
    let dir = args.dir.unwrap_or_else(localnet::default_dir);
    if let Some(name) = &args.kill {
        localnet::kill_node(&dir, name)?;
        println!("killed {name}");
        return Ok(());
    }
    if let Some(name) = &args.restart {
        let node = localnet::restart_node(&dir, name)?;
        println!(
            "restarted {} on {} (pid {})",
            node.name, node.addr, node.pid
        );
        return Ok(());
    }
    if args.add {
        let node = localnet::add_node(&dir)?;
        println!("added {} on {} (pid {})", node.name, node.addr, node.pid);
        return Ok(());
    }
    if args.stop {
        let net = localnet::read(&dir)?;
        localnet::stop(&net);
        println!("stopped the localnet in {}", dir.display());
        return Ok(());
    }
    let opts = localnet::LocalnetOptions {
        dir: dir.clone(),
        nodes: args.nodes,
        irc_listen: args.irc_listen,
        socks_listen: args.socks_listen,
        network: args.network,
    };
    let net = localnet::start(&opts)?;
    let (host, port) = net
        .bridge
        .irc
        .rsplit_once(':')
        .unwrap_or((&net.bridge.irc, "6667"));
    println!("unsplit localnet {:?} is up:", net.network);
    for n in &net.nodes {
        println!(
            "  {} https://{} (pid {}, data {})",
            n.name,
            n.addr,
            n.pid,
            n.data_dir.display()
        );
    }
    println!(
        "  bridge: IRC on {}, SOCKS5 on {} (pid {})",
        net.bridge.irc, net.bridge.socks, net.bridge.pid
    );
    println!();
    println!(
        "Connect with:  irssi -c {host} -p {port}   or   weechat: /server add localnet {host}/{port}"
    );
    println!(
        "Status page:   https://{}/  (user robustirc, password in {})",
        net.nodes[0].addr,
        dir.join("password").display()
    );
    println!("Scripts:       {}", dir.join("localnet.json").display());
    if args.detach {
        println!(
            "Stop with:     unsplit localnet --stop --dir {}",
            dir.display()
        );
        return Ok(());
    }
    println!("Press Ctrl-C to stop.");
    runtime.block_on(shutdown_signal());
    localnet::stop(&net);
    println!("stopped.");
    Ok(())
}

async fn node(args: NodeArgs) -> anyhow::Result<()> {
    let opts = NodeOptions {
        peer_addr: args.peer_addr,
        data_dir: args.data_dir,
        listen: args.listen,
        network_name: args.network_name,
        password: args.network_password,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        tls_ca: args.tls_ca,
        singlenode: args.singlenode,
        join: args.join,
        leader_timeout: Duration::from_secs(args.leader_timeout.max(1)),
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
