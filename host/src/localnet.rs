//! `unsplit localnet`: a whole network on this machine, for trying unsplit and for
//! scripts. Starts N node processes and a bridge (IRC on localhost:6667, SOCKS5 on
//! localhost:1080 by default) with a generated certificate and password. The bridge is a
//! trusted bridge (`DIR/bridge-auth`, `[TrustedBridges]`), so session limits and bans go
//! by the IRC clients' own addresses. Writes `DIR/localnet.json`:
//!
//! ```json
//! {"network": "localnet", "password": "…", "ca_cert": "DIR/tls/cert.pem",
//!  "nodes": [{"name": "node1", "addr": "127.0.0.1:PORT", "pid": 123, "data_dir": "DIR/node1"}],
//!  "bridge": {"irc": "localhost:6667", "socks": "localhost:1080", "pid": 124}}
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum LocalnetError {
    #[error("{0}")]
    Setup(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LocalnetError {
    let context = context.into();
    move |source| LocalnetError::Io { context, source }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeEntry {
    pub name: String,
    pub addr: String,
    pub pid: u32,
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BridgeEntry {
    pub irc: String,
    pub socks: String,
    pub pid: u32,
}

/// `DIR/localnet.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Localnet {
    pub network: String,
    pub password: String,
    pub ca_cert: PathBuf,
    pub nodes: Vec<NodeEntry>,
    pub bridge: BridgeEntry,
}

#[derive(Debug, Clone)]
pub struct LocalnetOptions {
    pub dir: PathBuf,
    pub nodes: usize,
    pub irc_listen: String,
    pub socks_listen: String,
    pub network: String,
}

/// The default directory: `$XDG_STATE_HOME/unsplit-localnet` or
/// `~/.local/state/unsplit-localnet`.
pub fn default_dir() -> PathBuf {
    if let Some(state) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(state).join("unsplit-localnet");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/state/unsplit-localnet"),
        None => std::env::temp_dir().join("unsplit-localnet"),
    }
}

fn free_port() -> Result<u16, LocalnetError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(io("finding a free port"))
}

/// Starts the network; returns what it started (also written to `localnet.json`).
pub fn start(opts: &LocalnetOptions) -> Result<Localnet, LocalnetError> {
    if !(1..=9).contains(&opts.nodes) {
        return Err(LocalnetError::Setup(
            "--nodes must be between 1 and 9".into(),
        ));
    }
    let file = opts.dir.join("localnet.json");
    if let Ok(existing) = read(&opts.dir)
        && existing.nodes.iter().any(|n| alive(n.pid))
    {
        return Err(LocalnetError::Setup(format!(
            "a localnet from {} is still running: stop it with `unsplit localnet --stop --dir {}`",
            file.display(),
            opts.dir.display()
        )));
    }
    std::fs::create_dir_all(&opts.dir).map_err(io(format!("creating {}", opts.dir.display())))?;
    let exe = std::env::current_exe().map_err(io("finding the unsplit executable"))?;

    let (cert, key) = (opts.dir.join("tls/cert.pem"), opts.dir.join("tls/key.pem"));
    crate::tls::ensure_self_signed(&cert, &key, &["localhost".into(), "127.0.0.1".into()])?;
    let password_file = opts.dir.join("password");
    let password = match std::fs::read_to_string(&password_file) {
        Ok(p) if !p.trim().is_empty() => p.trim().to_owned(),
        _ => {
            let mut bytes = [0u8; 16];
            rand::fill(&mut bytes[..]);
            let p = hex::encode(bytes);
            std::fs::write(&password_file, &p).map_err(io("writing the password"))?;
            p
        }
    };

    let mut nodes = Vec::new();
    for i in 1..=opts.nodes {
        let name = format!("node{i}");
        let data_dir = opts.dir.join(&name);
        let fresh = !data_dir.join("node.json").exists();
        // A restarted localnet keeps each node's address (it is the node's identity).
        let addr = match std::fs::read(data_dir.join("node.json")) {
            Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["addr"].as_str().map(str::to_owned))
                .ok_or_else(|| {
                    LocalnetError::Setup(format!("{}/node.json is corrupt", data_dir.display()))
                })?,
            Err(_) => format!("127.0.0.1:{}", free_port()?),
        };
        let join = if fresh {
            nodes.first().map(|n: &NodeEntry| n.addr.clone())
        } else {
            None
        };
        let child = spawn_node(
            &opts.dir,
            &name,
            &addr,
            &opts.network,
            &password,
            join.as_deref(),
        )?;
        nodes.push(NodeEntry {
            name,
            addr,
            pid: child,
            data_dir,
        });
    }
    wait_healthy(&nodes, &cert, &password, nodes.len())?;
    let bridge_auth = trust_bridge(&opts.dir, &nodes, &cert, &password)?;

    let log = log_file(&opts.dir.join("bridge.log"))?;
    let mut cmd = Command::new(&exe);
    cmd.arg("bridge")
        .arg("--network")
        .arg(
            nodes
                .iter()
                .map(|n| n.addr.as_str())
                .collect::<Vec<_>>()
                .join(","),
        )
        .arg("--tls-ca-file")
        .arg(&cert)
        .arg("--listen")
        .arg(&opts.irc_listen)
        .arg("--socks")
        .arg(&opts.socks_listen)
        .arg("--bridge-auth-file")
        .arg(&bridge_auth);
    let bridge_pid = spawn(cmd, log)?;
    let localnet = Localnet {
        network: opts.network.clone(),
        password,
        ca_cert: cert,
        nodes,
        bridge: BridgeEntry {
            irc: opts.irc_listen.clone(),
            socks: opts.socks_listen.clone(),
            pid: bridge_pid,
        },
    };
    wait_listening(&opts.irc_listen, bridge_pid, &opts.dir.join("bridge.log"))?;
    write(&opts.dir, &localnet)?;
    Ok(localnet)
}

/// The localnet's bridge is a trusted bridge (RobustIRC's localnet does the same): its
/// secret is kept in `DIR/bridge-secret`, handed to the bridge in `DIR/bridge-auth` (both
/// readable by the owner only), and listed under `[TrustedBridges]` in the network
/// configuration, so limits and bans go by the IRC clients' addresses. Returns the
/// bridge-auth file.
fn trust_bridge(
    dir: &Path,
    nodes: &[NodeEntry],
    ca: &Path,
    password: &str,
) -> Result<PathBuf, LocalnetError> {
    let secret_file = dir.join("bridge-secret");
    let secret = match std::fs::read_to_string(&secret_file) {
        Ok(s) if s.trim().len() >= crate::netconfig::MIN_BRIDGE_SECRET => s.trim().to_owned(),
        _ => {
            let mut bytes = [0u8; 32];
            rand::fill(&mut bytes[..]);
            let s = hex::encode(bytes);
            write_private(&secret_file, &s)?;
            s
        }
    };
    // The bridge looks its secret up by its --network value or by a node's address.
    let list = nodes
        .iter()
        .map(|n| n.addr.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let mut auth = format!("# written by unsplit localnet\n{list}:{secret}\n");
    for n in nodes {
        auth.push_str(&format!("{}:{secret}\n", n.addr));
    }
    let auth_file = dir.join("bridge-auth");
    write_private(&auth_file, &auth)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("tokio runtime"))?;
    let setup = |e: String| LocalnetError::Setup(format!("trusting the bridge: {e}"));
    let ops = crate::ops::Ops::new(crate::ops::Target {
        servers: nodes.iter().map(|n| n.addr.clone()).collect(),
        password: password.to_owned(),
        ca: ca.to_path_buf(),
    })
    .map_err(|e| setup(e.to_string()))?;
    runtime.block_on(async {
        // A concurrent edit (revision mismatch) is retried once with the new revision.
        for _ in 0..2 {
            let (revision, body) = ops.get_config().await.map_err(|e| setup(e.to_string()))?;
            if body.contains(&secret) {
                return Ok(());
            }
            let line = format!("{secret:?} = \"localnet bridge\"");
            let edited = match body.find("\n[TrustedBridges]") {
                Some(at) => {
                    let after = at + "\n[TrustedBridges]".len();
                    format!("{}\n{line}{}", &body[..after], &body[after..])
                }
                None => format!("{body}\n[TrustedBridges]\n{line}\n"),
            };
            match ops.set_config(revision, edited).await {
                Ok(_) => return Ok(()),
                Err(e) if e.to_string().contains("Revision mismatch") => {}
                Err(e) => return Err(setup(e.to_string())),
            }
        }
        Err(setup("the configuration kept changing".into()))
    })?;
    Ok(auth_file)
}

/// Writes a file only its owner may read (the bridge refuses others).
fn write_private(path: &Path, text: &str) -> Result<(), LocalnetError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .map_err(io(format!("writing {}", path.display())))?;
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(io(format!("restricting {}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(io(format!("writing {}", path.display())))
}

fn log_file(path: &Path) -> Result<std::fs::File, LocalnetError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io(format!("opening {}", path.display())))
}

/// Starts one node process: `--singlenode` for a fresh first node, `--join` for a fresh
/// other node, no bootstrap flag for a node with data.
fn spawn_node(
    dir: &Path,
    name: &str,
    addr: &str,
    network: &str,
    password: &str,
    join: Option<&str>,
) -> Result<u32, LocalnetError> {
    let exe = std::env::current_exe().map_err(io("finding the unsplit executable"))?;
    let data_dir = dir.join(name);
    let log = log_file(&dir.join(format!("{name}.log")))?;
    let mut cmd = Command::new(exe);
    cmd.arg("node")
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--listen")
        .arg(addr)
        .arg("--network-name")
        .arg(network)
        .arg("--tls-cert")
        .arg(dir.join("tls/cert.pem"))
        .arg("--tls-key")
        .arg(dir.join("tls/key.pem"))
        .env("UNSPLIT_NETWORK_PASSWORD", password);
    if !data_dir.join("node.json").exists() {
        match join {
            Some(target) => cmd.arg("--join").arg(target),
            None => cmd.arg("--singlenode"),
        };
    }
    spawn(cmd, log)
}

fn find(net: &Localnet, dir: &Path, name: &str) -> Result<usize, LocalnetError> {
    net.nodes
        .iter()
        .position(|n| n.name == name)
        .ok_or_else(|| {
            LocalnetError::Setup(format!(
                "no node {name} in {}",
                dir.join("localnet.json").display()
            ))
        })
}

/// SIGKILLs one node by name (to watch failover).
pub fn kill_node(dir: &Path, name: &str) -> Result<(), LocalnetError> {
    let net = read(dir)?;
    let i = find(&net, dir, name)?;
    signal(net.nodes[i].pid, "KILL");
    Ok(())
}

/// Starts one node again by name (killing it first if it runs); updates localnet.json.
pub fn restart_node(dir: &Path, name: &str) -> Result<NodeEntry, LocalnetError> {
    let mut net = read(dir)?;
    let i = find(&net, dir, name)?;
    let old = net.nodes[i].pid;
    if alive(old) {
        signal(old, "KILL");
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(old) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let node = &net.nodes[i];
    net.nodes[i].pid = spawn_node(
        dir,
        &node.name,
        &node.addr,
        &net.network,
        &net.password,
        None,
    )?;
    write(dir, &net)?;
    Ok(net.nodes[i].clone())
}

/// Adds a node to the running localnet: it joins through a live node.
pub fn add_node(dir: &Path) -> Result<NodeEntry, LocalnetError> {
    let mut net = read(dir)?;
    let via = net
        .nodes
        .iter()
        .find(|n| alive(n.pid))
        .map(|n| n.addr.clone())
        .ok_or_else(|| LocalnetError::Setup("no node of the localnet is running".into()))?;
    let name = (1..)
        .map(|i| format!("node{i}"))
        .find(|n| !net.nodes.iter().any(|x| &x.name == n))
        .unwrap_or_default();
    let addr = format!("127.0.0.1:{}", free_port()?);
    let pid = spawn_node(dir, &name, &addr, &net.network, &net.password, Some(&via))?;
    let entry = NodeEntry {
        data_dir: dir.join(&name),
        name,
        addr,
        pid,
    };
    net.nodes.push(entry.clone());
    write(dir, &net)?;
    wait_healthy(
        std::slice::from_ref(&entry),
        &net.ca_cert,
        &net.password,
        net.nodes.len(),
    )?;
    Ok(entry)
}

fn write(dir: &Path, net: &Localnet) -> Result<(), LocalnetError> {
    let file = dir.join("localnet.json");
    let json = serde_json::to_vec_pretty(net).map_err(|e| LocalnetError::Setup(e.to_string()))?;
    let tmp = dir.join("localnet.json.tmp");
    std::fs::write(&tmp, json).map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, &file).map_err(io(format!("writing {}", file.display())))
}

/// Spawns a process in its own process group (a terminal's Ctrl-C does not reach it
/// after `--detach`), output appended to `log`.
fn spawn(mut cmd: Command, log: std::fs::File) -> Result<u32, LocalnetError> {
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let err = log.try_clone().map_err(io("log file"))?;
    cmd.stdin(Stdio::null()).stdout(log).stderr(err);
    cmd.spawn()
        .map(|c| c.id())
        .map_err(io("starting a process"))
}

/// Waits (bounded) until every node answers its status with a known leader.
fn wait_healthy(
    nodes: &[NodeEntry],
    ca: &Path,
    password: &str,
    members: usize,
) -> Result<(), LocalnetError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("tokio runtime"))?;
    let client = crate::network::https_client(crate::tls::client_config(ca)?);
    let auth = crate::network::basic_auth(password);
    let deadline = Instant::now() + Duration::from_secs(60);
    runtime.block_on(async {
        for node in nodes {
            loop {
                if !alive(node.pid) {
                    return Err(LocalnetError::Setup(format!(
                        "{} exited; see {}.log",
                        node.name,
                        node.data_dir.display()
                    )));
                }
                let req = http::Request::get(format!("https://{}/", node.addr))
                    .header(http::header::AUTHORIZATION, &auth)
                    .header(http::header::ACCEPT, "application/json")
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .map_err(|e| LocalnetError::Setup(e.to_string()))?;
                if let Ok(Ok(resp)) =
                    tokio::time::timeout(Duration::from_secs(2), client.request(req)).await
                    && let Ok(body) = http_body_util::BodyExt::collect(resp.into_body()).await
                    && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body.to_bytes())
                    && v["Leader"].as_str().is_some_and(|l| !l.is_empty())
                    && v["AppliedIndex"].as_u64().unwrap_or(0) >= 2
                    && (members == 0 || v["Voters"].as_array().is_some_and(|p| p.len() >= members))
                {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(LocalnetError::Setup(format!(
                        "{} did not become healthy within 60 s",
                        node.name
                    )));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    })
}

fn wait_listening(addr: &str, pid: u32, log: &Path) -> Result<(), LocalnetError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        if !alive(pid) || Instant::now() > deadline {
            return Err(LocalnetError::Setup(format!(
                "the bridge did not start listening on {addr}; see {}",
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

pub fn read(dir: &Path) -> Result<Localnet, LocalnetError> {
    let file = dir.join("localnet.json");
    let bytes = std::fs::read(&file).map_err(io(format!("reading {}", file.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| LocalnetError::Setup(format!("{} is corrupt: {e}", file.display())))
}

/// Stops everything `localnet.json` lists: SIGTERM, then SIGKILL after 5 s.
pub fn stop(localnet: &Localnet) {
    let pids: Vec<u32> = std::iter::once(localnet.bridge.pid)
        .chain(localnet.nodes.iter().map(|n| n.pid))
        .collect();
    for &pid in &pids {
        signal(pid, "TERM");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for &pid in pids.iter().filter(|&&p| alive(p)) {
        signal(pid, "KILL");
    }
}

/// Sends a signal with kill(1): no unsafe code for a one-off operator action.
fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

/// Whether a process is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
