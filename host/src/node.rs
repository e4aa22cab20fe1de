//! Starting a node: data directory, TLS, the logic module, the raft log and state
//! machine, bootstrap, the leader's tick loop, and the HTTPS listener.
//!
//! Data directory layout:
//! - `node.json` — this node's raft id and peer address (written on first start);
//! - `raft/` — the raft log (fjall, see unsplit-logstore);
//! - `snapshots/current.snapshot` — the last raft snapshot (host state + logic state);
//! - `tls/cert.pem`, `tls/key.pem` — generated when no certificate is given.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo};
use openraft::storage::RaftLogStorage;
use openraft::{BasicNode, Config, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::api::{Api, ApiParts};
use crate::modules::ModuleKind;
use crate::modules::{ModuleBytes, ModuleCache};
use crate::netconfig::NetConfig;
use crate::network::{Network, https_client};
use crate::raft::{NodeId, Op, Raft, TypeConfig};
use crate::runtime::{self, LogicModule};
use crate::sm::StateMachine;
use crate::snapshot::SnapshotStore;
use crate::tls;

/// How often the leader proposes a tick (session expiry runs on ticks).
pub const TICK_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct NodeOptions {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// `host:port` the other nodes and clients reach this node at (default: the address
    /// the listener is bound to).
    pub peer_addr: Option<String>,
    pub network_name: String,
    pub password: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The CA that signed the peers' certificates (default: this node's certificate).
    pub tls_ca: Option<PathBuf>,
    /// Bootstrap a new single-node network in an empty data directory.
    pub singlenode: bool,
    /// Join the network this node (`host:port`) belongs to (first start only).
    pub join: Option<String>,
    /// A follower without contact to a leader for this long refuses streams.
    pub leader_timeout: Duration,
    /// Longest TLS handshake before a connection is dropped.
    pub tls_handshake_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("the IRC logic: {0}")]
    Logic(#[from] runtime::RuntimeError),
    #[error("raft: {0}")]
    Raft(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> NodeError {
    let context = context.into();
    move |source| NodeError::Io { context, source }
}

#[derive(Serialize, Deserialize)]
struct Identity {
    id: NodeId,
    addr: String,
}

/// The raft timing for a LAN: a new leader in about a second.
pub fn raft_config() -> Config {
    Config {
        cluster_name: "unsplit".into(),
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 800,
        install_snapshot_timeout: 10_000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(10_000),
        max_in_snapshot_log_to_keep: 1_000,
        max_payload_entries: 512,
        ..Config::default()
    }
}

/// SHA-256 of the running executable (status, rolling restarts). Computed on a
/// background thread: a debug binary is hundreds of megabytes.
pub fn executable_hash() -> Arc<OnceLock<String>> {
    let hash = Arc::new(OnceLock::new());
    let slot = hash.clone();
    std::thread::spawn(move || {
        let value = std::env::current_exe()
            .and_then(std::fs::read)
            .map(|bytes| hex::encode(Sha256::digest(bytes)))
            .unwrap_or_else(|_| "unknown".into());
        let _ = slot.set(value);
    });
    hash
}

/// A running node.
pub struct Node {
    pub api: Arc<Api>,
    pub raft: Raft,
    pub local_addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Node {
    /// Opens (or bootstraps) the node and starts serving.
    pub async fn start(opts: NodeOptions) -> Result<Node, NodeError> {
        std::fs::create_dir_all(&opts.data_dir)
            .map_err(io(format!("creating {}", opts.data_dir.display())))?;
        // Bind first: with port 0 the announced address must be the bound one.
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(io(format!("listening on {}", opts.listen)))?;
        let local_addr = listener.local_addr().map_err(io("listener address"))?;
        let peer_addr = opts
            .peer_addr
            .clone()
            .unwrap_or_else(|| local_addr.to_string());

        let (cert, key) = match (&opts.tls_cert, &opts.tls_key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            (None, None) => {
                let (c, k) = (
                    opts.data_dir.join("tls/cert.pem"),
                    opts.data_dir.join("tls/key.pem"),
                );
                let host = peer_addr
                    .rsplit_once(':')
                    .map(|(h, _)| h)
                    .unwrap_or(&peer_addr);
                let names = vec![
                    "localhost".to_owned(),
                    "127.0.0.1".to_owned(),
                    host.to_owned(),
                ];
                tls::ensure_self_signed(&c, &k, &names)?;
                (c, k)
            }
            _ => {
                return Err(NodeError::Setup(
                    "--tls-cert and --tls-key go together".into(),
                ));
            }
        };
        let server_tls = tls::server_config(&cert, &key)?;
        let client_tls = tls::client_config(opts.tls_ca.as_deref().unwrap_or(&cert))?;
        let client = https_client(client_tls);
        let identity = match read_identity(&opts.data_dir)? {
            Some(identity) => identity,
            None => {
                let id = match &opts.join {
                    Some(target) => {
                        join_network(&client, target, &peer_addr, &opts.password).await?
                    }
                    None if opts.singlenode => 1,
                    None => {
                        return Err(NodeError::Setup(format!(
                            "{} holds no network yet: start the first node with --singlenode and the others with --join <host:port>",
                            opts.data_dir.display()
                        )));
                    }
                };
                let identity = Identity {
                    id,
                    addr: peer_addr.clone(),
                };
                let path = opts.data_dir.join("node.json");
                write_atomic(
                    &path,
                    &serde_json::to_vec_pretty(&identity).unwrap_or_default(),
                )?;
                identity
            }
        };

        let engine = runtime::engine()?;
        let module = LogicModule::new(&engine, unsplit_irc_component::IRC_COMPONENT)?;
        let cache = ModuleCache::new(engine);

        let raft_dir = opts.data_dir.join("raft");
        let mut log_store = tokio::task::spawn_blocking(move || {
            unsplit_logstore::LogStore::<TypeConfig>::open(&raft_dir)
        })
        .await
        .map_err(|e| NodeError::Setup(e.to_string()))?
        .map_err(|e| NodeError::Setup(format!("opening the raft log: {e}")))?;
        let log_state = log_store
            .get_log_state()
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        let ready_index = log_state.last_log_id.map(|l| l.index).unwrap_or(0);
        let snapshots = SnapshotStore::open(&opts.data_dir.join("snapshots"))
            .map_err(io("opening snapshots"))?;
        let has_snapshot = snapshots
            .load()
            .map_err(io("reading the snapshot"))?
            .is_some();
        let fresh = log_state.last_log_id.is_none() && !has_snapshot;
        let log_reader = log_store.clone();
        let (sm, shared) = StateMachine::open(snapshots.clone(), module, cache.clone())
            .map_err(|e| NodeError::Raft(e.to_string()))?;

        let config = raft_config()
            .validate()
            .map_err(|e| NodeError::Raft(e.to_string()))?;
        let network = Network::new(client.clone(), &opts.password);
        let raft = Raft::new(identity.id, Arc::new(config), network, log_store, sm)
            .await
            .map_err(|e| NodeError::Raft(e.to_string()))?;

        // A new network starts with this node alone; a joining node waits for the leader.
        if fresh && opts.singlenode && opts.join.is_none() {
            let members = BTreeMap::from([(
                identity.id,
                BasicNode {
                    addr: identity.addr.clone(),
                },
            )]);
            raft.initialize(members)
                .await
                .map_err(|e| NodeError::Raft(e.to_string()))?;
        }

        let api = Arc::new(Api::new(ApiParts {
            id: identity.id,
            raft: raft.clone(),
            shared,
            password: opts.password.clone(),
            ready_index,
            exe_hash: executable_hash(),
            client,
            leader_timeout: opts.leader_timeout,
            cache,
            snapshots,
            log: log_reader,
        }));
        let mut tasks = vec![tokio::spawn(serve(
            listener,
            server_tls,
            api.clone(),
            opts.tls_handshake_timeout,
        ))];
        tasks.push(tokio::spawn(leader_duties(
            api.clone(),
            opts.network_name.clone(),
        )));
        tasks.push(tokio::spawn(hash_passwords(api.clone())));
        Ok(Node {
            api,
            raft,
            local_addr,
            tasks,
        })
    }

    /// Stops serving and shuts raft down (the log is flushed).
    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = self.raft.shutdown().await;
    }
}

fn read_identity(data_dir: &Path) -> Result<Option<Identity>, NodeError> {
    let path = data_dir.join("node.json");
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| NodeError::Setup(format!("{} is corrupt: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(format!("reading {}", path.display()))(e)),
    }
}

/// Asks a node of the network to add us (`POST /join`); returns our raft id. Retries for
/// a minute: the other node may be starting too.
async fn join_network(
    client: &crate::network::HttpsClient,
    target: &str,
    addr: &str,
    password: &str,
) -> Result<NodeId, NodeError> {
    use http_body_util::BodyExt;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let body = serde_json::json!({ "Addr": addr }).to_string();
    loop {
        let req = http::Request::post(format!("https://{target}/join"))
            .header(
                http::header::AUTHORIZATION,
                crate::network::basic_auth(password),
            )
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body.clone())))
            .map_err(|e| NodeError::Setup(e.to_string()))?;
        let outcome = match tokio::time::timeout(Duration::from_secs(15), client.request(req)).await
        {
            Ok(Ok(resp)) => {
                let status = resp.status();
                let bytes = resp
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes).trim().to_owned();
                match serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v["Id"].as_u64())
                {
                    Some(id) if status.is_success() => return Ok(id),
                    _ if status == http::StatusCode::UNAUTHORIZED => {
                        return Err(NodeError::Setup(format!(
                            "{target} refused the network password"
                        )));
                    }
                    _ => format!("HTTP {status}: {text}"),
                }
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        if std::time::Instant::now() > deadline {
            return Err(NodeError::Setup(format!("joining via {target}: {outcome}")));
        }
        tracing::info!("joining via {target}: {outcome}; retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("renaming to {}", path.display())))
}

/// Accepts connections: TLS with a bounded handshake, then HTTP/1.1 or HTTP/2.
async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    api: Arc<Api>,
    handshake: Duration,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let api = api.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!("TLS handshake with {peer}: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake with {peer} timed out");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |req| {
                let api = api.clone();
                async move { Ok::<_, std::convert::Infallible>(api.handle(req, peer).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("connection from {peer}: {e}");
            }
        });
    }
}

/// What only the leader does: pin the logic module and commit the initial configuration
/// once, and propose a tick every [`TICK_INTERVAL`] (session expiry; the tick carries
/// the leader's time).
async fn leader_duties(api: Arc<Api>, network: String) {
    let mut interval = tokio::time::interval(TICK_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A built-in module the network refuses is not proposed again and again: the next
    // try waits twice as long each time (at most a minute).
    let (mut pin_backoff, mut pin_next) = (Duration::from_millis(200), Instant::now());
    loop {
        let is_leader = api.raft.metrics().borrow().state == ServerState::Leader;
        if is_leader {
            if needs_builtins(&api) && Instant::now() >= pin_next {
                match pin_builtin_modules(&api).await {
                    Ok(()) => pin_backoff = Duration::from_millis(200),
                    Err(e) => {
                        tracing::warn!(
                            "pinning the built-in modules: {e}; retrying in {pin_backoff:?}"
                        );
                        pin_next = Instant::now() + pin_backoff;
                        pin_backoff = (pin_backoff * 2).min(Duration::from_secs(60));
                    }
                }
            }
            let needs_config = api.shared.read().config_revision == 0;
            if needs_config {
                let toml = NetConfig::initial_toml(&network);
                if let Err(e) = api.propose(Op::Config { toml, revision: 1 }).await {
                    tracing::warn!("committing the initial configuration: {e}");
                }
            }
        }
        tokio::select! {
            _ = interval.tick() => {
                if api.raft.metrics().borrow().state == ServerState::Leader
                    && let Err(e) = api.propose(Op::Tick).await
                {
                    tracing::warn!("tick: {e}");
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(200)), if needs_setup(&api) => {}
        }
    }
}

/// What only the leader does for services: compute the password hashes plugins asked
/// for (argon2id, slow on purpose) on a blocking thread, off the apply path, and commit
/// each result as an entry. At most `workers` at a time, so the apply loop keeps a core;
/// a new leader picks up what the old one left (the requests are replicated state).
async fn hash_passwords(api: Arc<Api>) {
    use std::collections::BTreeSet;
    let workers = std::thread::available_parallelism()
        .map(|n| n.get().saturating_sub(1))
        .unwrap_or(1)
        .clamp(1, 4);
    let limit = Arc::new(tokio::sync::Semaphore::new(workers));
    let in_flight = Arc::new(std::sync::Mutex::new(BTreeSet::<(String, u64)>::new()));
    loop {
        tokio::select! {
            _ = api.shared.hash_wakeup.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        if api.raft.metrics().borrow().state != ServerState::Leader {
            continue;
        }
        let jobs: Vec<crate::sm::PendingHash> = {
            let st = api.shared.read();
            let mut busy = in_flight.lock().unwrap_or_else(|e| e.into_inner());
            // Forget what is no longer pending (answered, or expired).
            busy.retain(|(s, i)| st.hash_jobs.iter().any(|j| j.service == *s && j.id == *i));
            st.hash_jobs
                .iter()
                .filter(|j| !busy.contains(&(j.service.clone(), j.id)))
                .cloned()
                .collect()
        };
        for job in jobs {
            let Ok(permit) = limit.clone().acquire_owned().await else {
                return;
            };
            in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((job.service.clone(), job.id));
            let (api, in_flight) = (api.clone(), in_flight.clone());
            tokio::spawn(async move {
                let key = (job.service.clone(), job.id);
                let started = std::time::Instant::now();
                let hashed = tokio::task::spawn_blocking(move || {
                    if job.password.is_empty() {
                        // Restored from a snapshot, which never holds passwords.
                        return Err("the request was interrupted; please try again".to_owned());
                    }
                    unsplit_services::hasher::hash_password(
                        &job.password,
                        &job.salt,
                        job.algorithm.as_deref(),
                    )
                    .map_err(|e| e.to_string())
                })
                .await;
                drop(permit);
                let counters = &api.shared.counters;
                counters
                    .hashes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                counters.hash_nanos.fetch_add(
                    started.elapsed().as_nanos() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                let result = match hashed {
                    Ok(Ok(h)) => Ok(crate::raft::HashedPassword {
                        algorithm: h.algorithm,
                        hash: h.hash,
                    }),
                    Ok(Err(e)) => Err(e),
                    Err(e) => Err(format!("the hash failed: {e}")),
                };
                let op = Op::PasswordHashed {
                    service: key.0.clone(),
                    id: key.1,
                    result,
                };
                if let Err(e) = api.propose(op).await {
                    // Another leader will pick the request up.
                    tracing::warn!("committing a password hash: {e}");
                    in_flight
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&key);
                }
            });
        }
    }
}

fn needs_setup(api: &Api) -> bool {
    api.shared.read().config_revision == 0 || needs_builtins(api)
}

/// The built-in modules: the IRC logic and the services plugins, with their kinds.
fn builtins() -> impl Iterator<Item = (ModuleKind, &'static [u8])> {
    std::iter::once((ModuleKind::Logic, unsplit_irc_component::IRC_COMPONENT)).chain(
        unsplit_irc_component::BUILTIN_PLUGINS
            .iter()
            .map(|(name, bytes)| (ModuleKind::Plugin((*name).to_owned()), *bytes)),
    )
}

/// Whether a built-in kind has never been activated on this network.
fn needs_builtins(api: &Api) -> bool {
    let st = api.shared.read();
    builtins().any(|(kind, _)| st.modules.active_of(&kind).is_none())
}

/// A new network's first entries upload and activate the modules built into the leader's
/// binary (the logic, then NickServ and ChanServ): from then on they are replicated
/// state, and a node with another binary (or one restoring a snapshot later) runs the
/// same modules from the same index. A kind that was ever activated is left alone.
async fn pin_builtin_modules(api: &Api) -> Result<(), String> {
    for (kind, component) in builtins() {
        if api.shared.read().modules.active_of(&kind).is_some() {
            continue;
        }
        let bytes = ModuleBytes::new(component);
        let hash = bytes.hash();
        if !api.shared.read().modules.known.contains_key(&hash) {
            let info = api
                .check_module(&bytes)
                .await
                .map_err(|e| e.to_string())??;
            match api.commit_upload(&bytes, &info).await {
                Ok(crate::raft::Response::ModuleUploaded(_)) => {}
                Ok(other) => return Err(format!("uploading {kind}: {other:?}")),
                Err(e) => return Err(e.to_string()),
            }
        }
        match api.propose(Op::ModuleActivate { hash }).await {
            Ok(crate::raft::Response::ModuleActivated(_)) => {}
            Ok(other) => return Err(format!("activating {kind}: {other:?}")),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}
