//! The module lifecycle inside one state machine (the same code every node runs):
//! uploads, activation at an index with the state carried across, rollback, a module
//! that refuses the state, limits from the network configuration, rejected entries kept
//! for operators, snapshots carrying the active module, and the shadow.

use std::sync::Arc;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use unsplit_host::modules::{ModuleBytes, ModuleCache};
use unsplit_host::netconfig::NetConfig;
use unsplit_host::raft::{Op, Request, Response, TypeConfig};
use unsplit_host::runtime::{self, LogicModule};
use unsplit_host::sm::{ShadowCommand, Shared, StateMachine};
use unsplit_host::snapshot::SnapshotStore;
use unsplit_irc_component::{IRC_COMPONENT, fixtures};

const A: u64 = 1_000_000_000 + 10;

struct Node {
    sm: StateMachine,
    shared: Arc<Shared>,
    cache: Arc<ModuleCache>,
    index: u64,
    dir: std::path::PathBuf,
    _tmp: tempfile::TempDir,
}

fn open(dir: &std::path::Path) -> (StateMachine, Arc<Shared>, Arc<ModuleCache>) {
    let engine = runtime::engine().unwrap();
    let builtin = LogicModule::new(&engine, IRC_COMPONENT).unwrap();
    let cache = ModuleCache::new(engine);
    let store = SnapshotStore::open(&dir.join("snapshots")).unwrap();
    let (sm, shared) = StateMachine::open(store, builtin, cache.clone()).unwrap();
    (sm, shared, cache)
}

impl Node {
    fn new() -> Node {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let (sm, shared, cache) = open(&dir);
        Node {
            sm,
            shared,
            cache,
            index: 0,
            dir,
            _tmp: tmp,
        }
    }

    async fn apply(&mut self, op: Op) -> Response {
        self.index += 1;
        let entry = Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), self.index),
            payload: EntryPayload::Normal(Request {
                time_ms: 1_795_266_199_000 + self.index * 10,
                op,
            }),
        };
        self.sm.apply(vec![entry]).await.unwrap().pop().unwrap()
    }

    fn upload_op(&self, bytes: &[u8]) -> Op {
        let bytes = ModuleBytes::new(bytes);
        let (_, info) = self.cache.check(&bytes).unwrap();
        Op::ModuleUpload {
            bytes,
            kind: info.kind,
            name: info.name,
            version: info.version,
            snapshot_format: info.snapshot_format,
        }
    }

    async fn upload(&mut self, bytes: &[u8]) -> String {
        let op = self.upload_op(bytes);
        match self.apply(op).await {
            Response::ModuleUploaded(h) => h,
            other => panic!("upload: {other:?}"),
        }
    }

    async fn activate(&mut self, hash: &str) -> Response {
        self.apply(Op::ModuleActivate { hash: hash.into() }).await
    }

    async fn line(&mut self, session: u64, data: &str) -> Response {
        self.apply(Op::Line {
            session,
            client_message_id: 0,
            data: data.into(),
        })
        .await
    }

    /// The lines the last entry sent to `session`.
    fn last_output(&self, session: u64) -> Vec<String> {
        let st = self.shared.read();
        let id = unsplit_bridge::protocol::MESSAGE_ID_OFFSET + self.index;
        st.output
            .batches()
            .filter(|b| b.id == id)
            .flat_map(|b| b.lines.iter())
            .filter(|l| l.recipients.contains(&session))
            .map(|l| l.text.clone())
            .collect()
    }

    /// A network as a new one starts: the built-in module pinned, the configuration, two
    /// registered users in #c.
    async fn start() -> Node {
        let mut n = Node::new();
        let builtin = n.upload(IRC_COMPONENT).await;
        assert_eq!(
            n.activate(&builtin).await,
            Response::ModuleActivated(builtin.clone())
        );
        n.apply(Op::Config {
            toml: NetConfig::initial_toml("t"),
            revision: 1,
        })
        .await;
        for nick in ["alice", "bob"] {
            let r = n
                .apply(Op::CreateSession {
                    auth: "x".into(),
                    remote_addr: "192.0.2.1".into(),
                })
                .await;
            let Response::SessionCreated(s) = r else {
                panic!("{r:?}")
            };
            n.line(s, &format!("NICK {nick}")).await;
            n.line(s, &format!("USER {nick} 0 * :{nick}")).await;
            n.line(s, "JOIN #c").await;
        }
        n
    }

    fn session(&self, nick_index: usize) -> u64 {
        *self.shared.read().sessions.keys().nth(nick_index).unwrap()
    }

    async fn version(&mut self, session: u64) -> String {
        self.line(session, "VERSION").await;
        self.last_output(session).join("\n")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn activation_switches_at_its_index_carries_the_state_and_rolls_back() {
    let mut n = Node::start().await;
    let (alice, bob) = (n.session(0), n.session(1));
    assert!(alice >= A && bob > alice);
    assert!(!n.version(alice).await.contains("fixture-reply"));

    let reply = n.upload(fixtures::REPLY).await;
    // Uploading changes nothing yet.
    assert!(!n.version(alice).await.contains("fixture-reply"));
    let r = n.activate(&reply).await;
    assert_eq!(r, Response::ModuleActivated(reply.clone()));
    let at = n.index;
    {
        let st = n.shared.read();
        let active = st.modules.active().unwrap();
        assert_eq!((active.hash.as_str(), active.index), (reply.as_str(), at));
        assert!(active.version.ends_with("+fixture-reply"));
    }
    // The state came along: bob is still in #c and hears alice.
    n.line(alice, "PRIVMSG #c :after the switch").await;
    let heard = n.last_output(bob);
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert!(
        heard[0].starts_with(":alice!alice@")
            && heard[0].ends_with(" PRIVMSG #c :after the switch")
    );
    assert!(n.version(alice).await.contains("fixture-reply"));

    // Rollback: the previous module, again with the state.
    let builtin = n
        .shared
        .read()
        .modules
        .resolve("previous")
        .unwrap()
        .hash
        .clone();
    assert_eq!(
        n.activate(&builtin).await,
        Response::ModuleActivated(builtin)
    );
    assert!(!n.version(alice).await.contains("fixture-reply"));
    n.line(bob, "PRIVMSG alice :still here").await;
    assert_eq!(n.last_output(alice).len(), 1);
    assert_eq!(n.shared.read().modules.history.len(), 3);
    assert_eq!(n.shared.read().sessions.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_module_that_refuses_the_state_is_not_activated() {
    let mut n = Node::start().await;
    let alice = n.session(0);
    let before = n.shared.read().modules.active().cloned();
    let format2 = n.upload(fixtures::FORMAT2).await;
    let r = n.activate(&format2).await;
    let Response::ModuleRefused(why) = r else {
        panic!("{r:?}")
    };
    assert!(why.contains("refused the current state"), "{why}");
    assert!(why.contains("format"), "{why}");
    assert!(why.contains("the active module stays"), "{why}");
    assert_eq!(n.shared.read().modules.active().cloned(), before);
    n.line(alice, "PING x").await;
    assert_eq!(n.last_output(alice).len(), 1, "the old module still serves");
    // An unknown hash is refused too.
    assert!(matches!(
        n.activate("00".repeat(32).as_str()).await,
        Response::ModuleRefused(_)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_come_from_the_configuration_and_rejections_are_kept() {
    let mut n = Node::start().await;
    let alice = n.session(0);
    // Invalid limits are refused and change nothing.
    let bad = NetConfig::initial_toml("t").replace("FuelPerEntry = 2000000000", "FuelPerEntry = 5");
    assert!(bad.contains("FuelPerEntry = 5"));
    let r = n
        .apply(Op::Config {
            toml: bad,
            revision: 2,
        })
        .await;
    assert!(
        matches!(&r, Response::ConfigRefused(e) if e.contains("Logic.FuelPerEntry = 5")),
        "{r:?}"
    );
    assert_eq!(n.shared.read().config_revision, 1);

    let lean = NetConfig::initial_toml("t")
        .replace("FuelPerEntry = 2000000000", "FuelPerEntry = 300000000")
        .replace("MemoryMiB = 512", "MemoryMiB = 32");
    assert_eq!(
        n.apply(Op::Config {
            toml: lean,
            revision: 2
        })
        .await,
        Response::Applied
    );
    for (bytes, magic, kind) in [
        (fixtures::LOOP, "FIXTURE LOOP", "OutOfFuel"),
        (fixtures::ALLOC, "FIXTURE ALLOC", "OutOfMemory"),
        (fixtures::PANIC, "FIXTURE PANIC", "Panic"),
    ] {
        let hash = n.upload(bytes).await;
        assert_eq!(
            n.activate(&hash).await,
            Response::ModuleActivated(hash.clone())
        );
        let started = std::time::Instant::now();
        let r = n.line(alice, magic).await;
        assert!(
            matches!(&r, Response::Rejected(reason) if reason.starts_with(kind)),
            "{magic}: {r:?}"
        );
        eprintln!("{magic}: rejected after {:?}", started.elapsed());
        let notice = n.last_output(alice).join("\n");
        assert!(notice.contains("Your last line was rejected"), "{notice}");
        assert!(notice.contains(kind), "{notice}");
        {
            let st = n.shared.read();
            let kept = st.rejected_log.back().unwrap();
            assert_eq!((kept.index, kept.session), (n.index, alice));
            assert_eq!((kept.input.as_str(), kept.kind.as_str()), (magic, kind));
            assert_eq!(kept.module, hash);
        }
        n.line(alice, "PING alive").await;
        assert_eq!(
            n.last_output(alice),
            vec![":irc.t PONG irc.t :alive"],
            "the next line from the same session works"
        );
    }
    assert_eq!(n.shared.read().rejected, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_carries_the_active_module() {
    let mut n = Node::start().await;
    let alice = n.session(0);
    let reply = n.upload(fixtures::REPLY).await;
    n.activate(&reply).await;
    let snapshot =
        n.sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
    // A node restarting from that snapshot runs the activated module, not its built-in.
    let Node {
        sm,
        dir,
        index,
        _tmp,
        ..
    } = n;
    drop(sm);
    let (sm, shared, cache) = open(&dir);
    let mut restarted = Node {
        sm,
        shared,
        cache,
        index,
        dir,
        _tmp,
    };
    assert!(restarted.version(alice).await.contains("fixture-reply"));
    // So does a fresh node that installs it.
    let mut fresh = Node::new();
    fresh
        .sm
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap();
    fresh.index = index;
    assert!(fresh.version(alice).await.contains("fixture-reply"));
    assert_eq!(
        fresh.shared.read().modules.active().unwrap().hash,
        restarted.shared.read().modules.active().unwrap().hash
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shadow_counts_divergences_without_changing_anything() {
    let mut n = Node::start().await;
    let (alice, bob) = (n.session(0), n.session(1));
    let reply = n.upload(fixtures::REPLY).await;
    *n.shared.shadow_command.lock().unwrap() = Some(ShadowCommand::Start(reply.clone()));
    n.line(alice, "PRIVMSG #c :same everywhere").await;
    let out = n.version(alice).await;
    assert!(
        !out.contains("fixture-reply"),
        "the shadow's output is never used"
    );
    n.line(bob, "PING x").await;
    {
        let sh = n.shared.shadow_status();
        assert_eq!(sh.hash.as_deref(), Some(reply.as_str()));
        assert_eq!((sh.compared, sh.divergences, sh.traps), (3, 1, 0));
        assert_eq!(sh.recent[0].input, "VERSION");
        assert!(sh.recent[0].shadow.contains("fixture-reply"));
    }
    *n.shared.shadow_command.lock().unwrap() = Some(ShadowCommand::Stop);
    n.line(bob, "PING y").await;
    assert!(n.shared.shadow_status().hash.is_none());
}
