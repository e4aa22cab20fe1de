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
    /// Verify robustness: a local network, many clients talking, nodes killed at random;
    /// then check that every node agrees and every line arrived exactly once, in order.
    Robustness(RobustnessArgs),
    /// One-screen health summary of a network.
    Status(TargetArgs),
    /// Remove a node from a network (refused when the rest could not keep a quorum).
    Removepeer {
        #[command(flatten)]
        target: TargetArgs,
        /// The node to remove, host:port.
        addr: String,
    },
    /// Upload, activate, roll back and inspect the IRC logic modules of a network.
    Module {
        #[command(flatten)]
        target: TargetArgs,
        #[command(subcommand)]
        action: ModuleAction,
    },
    /// Edit the network configuration: opens $EDITOR on it and submits the result
    /// (refused, with the reason, when invalid or when someone else changed it first).
    Editconfig(TargetArgs),
    /// Replay recorded inputs through two module versions and report every input whose
    /// output differs (exit status 1 on divergence, 2 on error). Never writes to a network.
    Canary(CanaryArgs),
    /// Restart every node in turn while the network keeps serving (needs a supervisor
    /// that starts a node again after it quits).
    Rollingrestart {
        #[command(flatten)]
        target: TargetArgs,
        /// Longest wait for health or for a node to come back, in seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
}

#[derive(Subcommand)]
enum ModuleAction {
    /// Commit a component through raft: the IRC logic or a services plugin (every node
    /// stores, checks and compiles it).
    Upload {
        /// The component (.wasm); `builtin` uploads the IRC logic built into this binary,
        /// `builtin:nickserv` / `builtin:chanserv` its plugins.
        file: PathBuf,
    },
    /// Switch every node to an uploaded module at one log index (the IRC logic, or the
    /// plugin of that module's name).
    Activate {
        /// Hash, unique hash prefix (8+ digits), version, `previous` (the logic's) or
        /// `previous:<plugin>`.
        module: String,
    },
    /// Activate the module that was active before the current one: the IRC logic's, or
    /// the named plugin's.
    Rollback {
        /// A plugin (e.g. `nickserv`); without it, the IRC logic.
        plugin: Option<String>,
    },
    /// Uploaded modules, the active logic and plugins and since which index.
    List,
    /// Entries the logic trapped on (panic, out of fuel, out of memory).
    Rejected,
    /// Run a module as a shadow beside the active one on one node and count divergences
    /// (`off` stops it); without a module, show the shadow's counters.
    Shadow {
        /// The node (host:port) that runs the shadow.
        #[arg(long)]
        node: String,
        module: Option<String>,
    },
}

#[derive(clap::Args)]
struct CanaryArgs {
    /// The reference version: a .wasm file, `builtin`, or a module of the recording
    /// (hash, hash prefix, version, `active`, `previous`).
    #[arg(long)]
    old: String,
    /// The candidate version (same forms as --old).
    #[arg(long)]
    new: String,
    /// Replay a node's data directory (the node must be stopped, or copy the directory).
    #[arg(long, conflicts_with_all = ["network", "localnet"])]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    /// Write a self-contained HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Divergences shown in the text summary.
    #[arg(long, default_value_t = 20)]
    show: usize,
}

/// Which network an operator tool talks to.
#[derive(clap::Args)]
struct TargetArgs {
    /// Nodes of the network, host:port[,host:port…] (or --localnet).
    #[arg(long)]
    network: Option<String>,
    /// The network password (user robustirc).
    #[arg(long, env = "UNSPLIT_NETWORK_PASSWORD", hide_env_values = true)]
    network_password: Option<String>,
    /// CA certificate the nodes' certificates are checked against.
    #[arg(long)]
    tls_ca_file: Option<PathBuf>,
    /// Take all of the above from a localnet directory.
    #[arg(long, conflicts_with_all = ["network", "tls_ca_file"])]
    localnet: Option<PathBuf>,
}

impl TargetArgs {
    fn target(&self) -> anyhow::Result<unsplit_host::ops::Target> {
        use unsplit_host::ops::Target;
        if let Some(dir) = &self.localnet {
            return Ok(Target::from_localnet(dir)?);
        }
        let servers: Vec<String> = self
            .network
            .as_deref()
            .context("--network (or --localnet) is needed")?
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        let password = self
            .network_password
            .clone()
            .context("--network-password (or UNSPLIT_NETWORK_PASSWORD) is needed")?;
        let ca = self
            .tls_ca_file
            .clone()
            .context("--tls-ca-file is needed")?;
        Ok(Target {
            servers,
            password,
            ca,
        })
    }
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
struct RobustnessArgs {
    /// A new (absent or empty) directory for the run; deleted after a clean run.
    /// Default: a new directory in the system's temporary directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// How long clients talk while nodes are killed (e.g. 60s, 10m, 2h).
    #[arg(long, default_value = "60s", value_parser = unsplit_host::robustness::parse_duration)]
    duration: Duration,
    /// Seed of the kill and send schedules (default: random; printed, to reproduce).
    #[arg(long)]
    seed: Option<u64>,
    /// Number of nodes (3–7).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// RobustSession sessions (client library).
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    /// IRC clients through the bridge.
    #[arg(long, default_value_t = 4)]
    bridge_clients: usize,
    /// Mean time between two kills (or other chaos actions).
    #[arg(long, default_value = "6s", value_parser = unsplit_host::robustness::parse_duration)]
    kill_interval: Duration,
    /// Longest time a killed node stays down.
    #[arg(long, default_value = "4s", value_parser = unsplit_host::robustness::parse_duration)]
    max_down: Duration,
    /// Longest time two nodes are down at once.
    #[arg(long, default_value = "2s", value_parser = unsplit_host::robustness::parse_duration)]
    max_double_down: Duration,
    /// Mean time between two lines of one client.
    #[arg(long, default_value = "700ms", value_parser = unsplit_host::robustness::parse_duration)]
    send_interval: Duration,
    /// Bound on each wait at the end (acknowledgements, barriers, catch-up).
    #[arg(long, default_value = "120s", value_parser = unsplit_host::robustness::parse_duration)]
    settle_timeout: Duration,
    /// Keep the directory after a clean run too.
    #[arg(long)]
    keep: bool,
    /// The unsplit executable that runs the nodes and the bridge (default: this one).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Print only the report.
    #[arg(long)]
    quiet: bool,
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
        Command::Robustness(args) => robustness(args, &runtime),
        Command::Status(target) => runtime.block_on(async {
            let ops = unsplit_host::ops::Ops::new(target.target()?)?;
            let statuses = ops.statuses().await;
            print!("{}", unsplit_host::ops::render(&statuses));
            unsplit_host::ops::healthy(&statuses).map_err(|why| anyhow::anyhow!(why))
        }),
        Command::Removepeer { target, addr } => runtime.block_on(async {
            let ops = unsplit_host::ops::Ops::new(target.target()?)?;
            println!("{}", ops.removepeer(&addr).await?);
            Ok(())
        }),
        Command::Module { target, action } => runtime.block_on(module(target, action)),
        Command::Editconfig(target) => runtime.block_on(editconfig(target)),
        Command::Canary(args) => match runtime.block_on(canary(args)) {
            Ok(true) => Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => {
                eprintln!("unsplit canary: {e:#}");
                std::process::exit(2);
            }
        },
        Command::Rollingrestart { target, timeout } => runtime.block_on(async {
            let ops = unsplit_host::ops::Ops::new(target.target()?)?;
            ops.rolling_restart(Duration::from_secs(timeout), |line| println!("{line}"))
                .await?;
            println!("rolling restart done; the network is healthy");
            Ok(())
        }),
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

fn robustness(args: RobustnessArgs, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    use unsplit_host::robustness::{self, RobustnessOptions};
    let seed = args.seed.unwrap_or_else(rand::random);
    let dir = args.dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("unsplit-robustness-{seed}-{}", std::process::id()))
    });
    let binary = match args.binary {
        Some(b) => b,
        None => std::env::current_exe().context("finding the unsplit executable")?,
    };
    let mut opts = RobustnessOptions::new(dir, binary);
    opts.duration = args.duration;
    opts.seed = seed;
    opts.nodes = args.nodes;
    opts.sessions = args.sessions;
    opts.bridge_clients = args.bridge_clients;
    opts.kill_interval = args.kill_interval;
    opts.max_down = args.max_down;
    opts.max_double_down = args.max_double_down;
    opts.send_interval = args.send_interval;
    opts.settle_timeout = args.settle_timeout;
    opts.keep = args.keep;
    opts.verbose = !args.quiet;
    match runtime.block_on(robustness::run(opts)) {
        Ok(report) => {
            println!("{report}");
            Ok(())
        }
        Err(e) => {
            println!("{e}");
            anyhow::bail!("the robustness run failed; reproduce its schedule with --seed {seed}")
        }
    }
}

async fn module(target: TargetArgs, action: ModuleAction) -> anyhow::Result<()> {
    use unsplit_host::moduleops::{render_modules, render_rejected};
    let ops = unsplit_host::ops::Ops::new(target.target()?)?;
    match action {
        ModuleAction::Upload { file } => {
            let builtin = file.to_str().and_then(unsplit_irc_component::builtin);
            let bytes = match builtin {
                Some(bytes) => bytes.to_vec(),
                None => {
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?
                }
            };
            let v = ops.upload_module(bytes).await?;
            println!(
                "uploaded {} {} ({} bytes)\nhash {}\nactivate it with: unsplit module activate {}",
                v["Name"].as_str().unwrap_or(""),
                v["Version"].as_str().unwrap_or(""),
                v["Size"],
                v["Hash"].as_str().unwrap_or(""),
                v["Hash"].as_str().unwrap_or("").get(..12).unwrap_or("")
            );
        }
        ModuleAction::Activate { module } => activated(&ops.activate_module(&module).await?),
        ModuleAction::Rollback { plugin } => {
            let which = match plugin {
                Some(p) => format!("previous:{p}"),
                None => "previous".to_owned(),
            };
            activated(&ops.activate_module(&which).await?)
        }
        ModuleAction::List => print!("{}", render_modules(&ops.get_json("/modules").await?)),
        ModuleAction::Rejected => print!("{}", render_rejected(&ops.get_json("/rejected").await?)),
        ModuleAction::Shadow { node, module } => match module {
            Some(m) => println!("{}", ops.shadow(&node, &m).await?),
            None => println!(
                "{}",
                serde_json::to_string_pretty(&ops.shadow_status(&node).await?)?
            ),
        },
    }
    Ok(())
}

fn activated(v: &serde_json::Value) {
    println!(
        "module {} ({}) is active from log index {} on every node",
        v["Hash"].as_str().unwrap_or(""),
        v["Version"].as_str().unwrap_or(""),
        v["Index"]
    );
}

/// Runs the canary; `Ok(true)` when the versions agree on every input.
async fn canary(args: CanaryArgs) -> anyhow::Result<bool> {
    use std::io::{IsTerminal, Write};
    use unsplit_host::canary::{self, Recording};
    use unsplit_host::runtime::Compiled;
    let recording = match &args.data_dir {
        Some(dir) => Recording::from_data_dir(dir).await?,
        None => {
            let ops = unsplit_host::ops::Ops::new(args.target.target()?)?;
            ops.recording(&mut |line| eprintln!("{line}")).await?
        }
    };
    eprintln!(
        "recording: {} entries after index {}",
        recording.entries.len(),
        recording.start_index
    );
    let engine = unsplit_host::runtime::engine()?;
    let load = |what: &str| -> anyhow::Result<_> {
        let (bytes, label) = canary::resolve_module(what, &recording)?;
        let module = unsplit_host::runtime::compile(&engine, &bytes.0)
            .with_context(|| format!("module {what}"))?;
        let version = match &module {
            Compiled::Logic(m) => m.info().map(|i| i.version).unwrap_or_default(),
            Compiled::Plugin(p) => p
                .info()
                .map(|i| format!("{} {}", i.name, i.version))
                .unwrap_or_default(),
        };
        Ok((module, format!("{label} ({version})")))
    };
    let old = load(&args.old)?;
    let new = load(&args.new)?;
    let terminal = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let mut last_line = std::time::Instant::now();
    let mut progress = |done: u64, total: u64| {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        if terminal {
            let bar = "#".repeat((pct / 4) as usize);
            eprint!("\r[{bar:<25}] {pct:>3}% {done}/{total} inputs");
            let _ = std::io::stderr().flush();
            if done == total {
                eprintln!();
            }
        } else if started.elapsed().as_secs() >= 2 && last_line.elapsed().as_secs() >= 5
            || (done == total && started.elapsed().as_secs() >= 2)
        {
            last_line = std::time::Instant::now();
            eprintln!("replayed {done}/{total} inputs ({pct}%)");
        }
    };
    let report =
        tokio::task::block_in_place(|| canary::replay(&recording, old, new, &mut progress))?;
    print!("{}", report.summary(args.show));
    if let Some(path) = &args.html {
        std::fs::write(path, report.html())
            .with_context(|| format!("writing {}", path.display()))?;
        println!("HTML report: {}", path.display());
    }
    Ok(report.divergent == 0)
}

/// `unsplit editconfig`: GET /config, $EDITOR, POST /config with the revision.
async fn editconfig(target: TargetArgs) -> anyhow::Result<()> {
    let ops = unsplit_host::ops::Ops::new(target.target()?)?;
    let (revision, toml) = ops.get_config().await?;
    let path = std::env::temp_dir().join(format!(
        "unsplit-config-{}-rev{revision}.toml",
        std::process::id()
    ));
    std::fs::write(&path, &toml).with_context(|| format!("writing {}", path.display()))?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status()
        .with_context(|| format!("starting {editor}"))?;
    anyhow::ensure!(
        status.success(),
        "{editor} failed ({status}); nothing was changed (your edit is in {})",
        path.display()
    );
    let edited = std::fs::read_to_string(&path)?;
    if edited == toml {
        let _ = std::fs::remove_file(&path);
        println!("no change (revision {revision} stays)");
        return Ok(());
    }
    match ops.set_config(revision, edited).await {
        Ok(new) => {
            let _ = std::fs::remove_file(&path);
            println!("configuration revision {new} is active");
            Ok(())
        }
        Err(e) => anyhow::bail!(
            "{e}\nnothing was changed; your edit is kept in {}",
            path.display()
        ),
    }
}
