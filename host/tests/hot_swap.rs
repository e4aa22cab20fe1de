//! The module lifecycle inside one state machine (the same code every node runs):
//! uploads, activation at an index with the state carried across, rollback, a module
//! that refuses the state, limits from the network configuration, rejected entries kept
//! for operators, snapshots carrying the active module, and the shadow; services plugins
//! through the same lifecycle (upgrade, rollback, traps isolated, snapshots, password
//! hashes answered by a later entry).

use std::sync::Arc;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use unsplit_host::canary::{Recording, replay};
use unsplit_host::logic::PluginState;
use unsplit_host::modules::{ModuleBytes, ModuleCache, ModuleKind, UPLOAD_CHUNK};
use unsplit_host::netconfig::NetConfig;
use unsplit_host::raft::{HashedPassword, Op, Request, Response, TypeConfig};
use unsplit_host::runtime::{self, LogicModule};
use unsplit_host::sm::{MAX_PENDING_HASHES, ShadowCommand, Shared, SnapshotData, StateMachine};
use unsplit_host::snapshot::SnapshotStore;
use unsplit_irc_component::{IRC_COMPONENT, fixtures};

const A: u64 = 1_000_000_000 + 10;

struct Node {
    sm: StateMachine,
    shared: Arc<Shared>,
    cache: Arc<ModuleCache>,
    index: u64,
    /// Every request applied, for the canary.
    log: Vec<(u64, Request)>,
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
            log: Vec::new(),
            dir,
            _tmp: tmp,
        }
    }

    async fn apply(&mut self, op: Op) -> Response {
        self.index += 1;
        let request = Request {
            time_ms: 1_795_266_199_000 + self.index * 10,
            op,
        };
        self.log.push((self.index, request.clone()));
        let entry = Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), self.index),
            payload: EntryPayload::Normal(request),
        };
        self.sm.apply(vec![entry]).await.unwrap().pop().unwrap()
    }

    /// The same node after a restart: the state machine opened again from its data
    /// directory (the last snapshot).
    fn restart(self) -> Node {
        let Node {
            sm,
            dir,
            index,
            _tmp,
            ..
        } = self;
        drop(sm);
        let (sm, shared, cache) = open(&dir);
        Node {
            sm,
            shared,
            cache,
            index,
            log: Vec::new(),
            dir,
            _tmp,
        }
    }

    /// Uploads a component as the leader does: its chunks, then the upload.
    async fn upload(&mut self, bytes: &[u8]) -> String {
        let bytes = ModuleBytes::new(bytes);
        let d = NetConfig::default();
        let (_, info) = self
            .cache
            .check(&bytes, d.limits(), d.plugin_limits())
            .unwrap();
        let hash = bytes.hash();
        for (i, chunk) in bytes.0.chunks(UPLOAD_CHUNK).enumerate() {
            let op = Op::ModuleChunk {
                hash: hash.clone(),
                offset: (i * UPLOAD_CHUNK) as u64,
                data: ModuleBytes::new(chunk),
            };
            assert_eq!(self.apply(op).await, Response::Applied);
        }
        let op = Op::ModuleUpload {
            hash,
            kind: info.kind,
            name: info.name,
            version: info.version,
            snapshot_format: info.snapshot_format,
        };
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
    let index = n.index;
    let mut restarted = n.restart();
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

// Services plugins: the same lifecycle, plus the pipeline.

impl Node {
    /// `start()` plus the built-in NickServ and ChanServ.
    async fn with_services() -> Node {
        let mut n = Node::start().await;
        for (_, bytes) in unsplit_irc_component::BUILTIN_PLUGINS {
            let h = n.upload(bytes).await;
            assert_eq!(n.activate(&h).await, Response::ModuleActivated(h));
        }
        n
    }

    /// Answers every pending password hash as the leader would; returns how many.
    async fn answer_hashes(&mut self) -> usize {
        let jobs: Vec<_> = self.shared.read().hash_jobs.iter().cloned().collect();
        for job in &jobs {
            let h = unsplit_services::hasher::hash_password(
                &job.password,
                &job.salt,
                job.algorithm.as_deref(),
            )
            .unwrap();
            let op = Op::PasswordHashed {
                service: job.service.clone(),
                id: job.id,
                result: Ok(HashedPassword {
                    algorithm: h.algorithm,
                    hash: h.hash,
                }),
            };
            assert_eq!(self.apply(op).await, Response::Applied);
        }
        jobs.len()
    }

    /// The state of plugin `name` in a snapshot taken now (its checkpoint and the calls
    /// since).
    async fn plugin_state(&mut self, name: &str) -> PluginState {
        let snap = self
            .sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let data = SnapshotData::decode(&snap.snapshot.into_inner()).unwrap();
        data.logic
            .plugins
            .into_iter()
            .find(|p| p.name == name)
            .unwrap()
    }

    /// Registers alice's nick with NickServ (hash answered).
    async fn register_alice(&mut self) {
        let alice = self.session(0);
        self.line(alice, "PRIVMSG NickServ :REGISTER hunter22")
            .await;
        assert_eq!(self.answer_hashes().await, 1);
        let out = self.last_output(alice).join("\n");
        assert!(out.contains(" 900 alice "), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn services_answer_through_the_pipeline_and_hashes_come_from_the_leader() {
    let mut n = Node::with_services().await;
    let alice = n.session(0);
    n.line(alice, "PRIVMSG NickServ :REGISTER hunter22").await;
    // Nothing is hashed on the apply path: a request is pending instead.
    assert!(
        n.last_output(alice).is_empty(),
        "{:?}",
        n.last_output(alice)
    );
    let jobs: Vec<_> = n.shared.read().hash_jobs.iter().cloned().collect();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].service, "nickserv");
    assert!(jobs[0].salt.len() >= 8);
    n.answer_hashes().await;
    let out = n.last_output(alice).join("\n");
    assert!(
        out.contains(" 900 alice ") && out.contains("NickServ"),
        "{out}"
    );
    assert!(n.shared.read().hash_jobs.is_empty());
    // A second answer to the same request (a new leader redoing it) is ignored.
    let op = Op::PasswordHashed {
        service: "nickserv".into(),
        id: jobs[0].id,
        result: Err("late".into()),
    };
    assert_eq!(n.apply(op).await, Response::Applied);
    assert!(n.last_output(alice).is_empty());
    // WHOIS shows the account; the alias reaches the same service.
    n.line(alice, "WHOIS alice").await;
    assert!(
        n.last_output(alice)
            .join("\n")
            .contains(" 330 alice alice alice :is logged in as")
    );
    n.line(alice, "NS INFO").await;
    assert!(
        n.last_output(alice)
            .join("\n")
            .contains("Information on alice")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trapping_plugin_is_reset_and_the_entry_goes_on() {
    let mut n = Node::with_services().await;
    let (alice, bob) = (n.session(0), n.session(1));
    n.register_alice().await;
    let panicky = n.upload(fixtures::NICKSERV_PANIC).await;
    assert_eq!(
        n.activate(&panicky).await,
        Response::ModuleActivated(panicky.clone())
    );
    let before = n.plugin_state("nickserv").await;
    let r = n.line(alice, "PRIVMSG NickServ :FIXTURE PANIC").await;
    assert_eq!(
        r,
        Response::Applied,
        "a plugin trap does not reject the entry"
    );
    let out = n.last_output(alice).join("\n");
    assert!(out.contains("NickServ failed on your request"), "{out}");
    assert_eq!(
        n.plugin_state("nickserv").await,
        before,
        "rolled back to before the call"
    );
    {
        let st = n.shared.read();
        assert_eq!((st.rejected, st.plugin_failures), (0, 1));
        let kept = st.rejected_log.back().unwrap();
        assert_eq!(kept.plugin.as_deref(), Some("nickserv"));
        assert_eq!(
            (kept.kind.as_str(), kept.module.as_str()),
            ("Panic", panicky.as_str())
        );
    }
    // The core and the plugin both go on: the account is still there.
    n.line(bob, "PRIVMSG #c :still chatting").await;
    assert_eq!(n.last_output(alice).len(), 1);
    n.line(alice, "NS INFO alice").await;
    assert!(n.last_output(alice).join("\n").contains("Registered: "));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_logic_trap_after_a_plugin_ran_rolls_the_plugin_back_too() {
    // The panic fixture traps when a service logs someone in to the account FIXTURE:
    // NickServ has stored the account by then, and must forget it again.
    let mut n = Node::with_services().await;
    let alice = n.session(0);
    n.line(alice, "NICK FIXTURE").await;
    let panic = n.upload(fixtures::PANIC).await;
    n.activate(&panic).await;
    n.line(alice, "PRIVMSG NickServ :REGISTER hunter22").await;
    let job = n.shared.read().hash_jobs.front().cloned().unwrap();
    let before = n.plugin_state("nickserv").await;
    let h = unsplit_services::hasher::hash_password(&job.password, &job.salt, None).unwrap();
    let r = n
        .apply(Op::PasswordHashed {
            service: job.service.clone(),
            id: job.id,
            result: Ok(HashedPassword {
                algorithm: h.algorithm,
                hash: h.hash,
            }),
        })
        .await;
    assert!(
        matches!(&r, Response::Rejected(why) if why.starts_with("Panic")),
        "{r:?}"
    );
    assert_eq!(
        n.plugin_state("nickserv").await,
        before,
        "NickServ rolled back"
    );
    // The request is not answered again (no endless retries of a message of death).
    assert!(n.shared.read().hash_jobs.is_empty());
    n.line(alice, "NS INFO FIXTURE").await;
    let out = n.last_output(alice).join("\n");
    assert!(out.contains("FIXTURE is not registered"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_upgrade_keeps_its_accounts_and_rolls_back() {
    let mut n = Node::with_services().await;
    let alice = n.session(0);
    n.register_alice().await;
    n.line(alice, "PRIVMSG NickServ :FIXTURE VERSION").await;
    assert!(n.last_output(alice).join("\n").contains("Unknown command"));
    let v2 = n.upload(fixtures::NICKSERV_V2).await;
    assert_eq!(n.activate(&v2).await, Response::ModuleActivated(v2.clone()));
    {
        let st = n.shared.read();
        let active = st
            .modules
            .active_of(&ModuleKind::Plugin("nickserv".into()))
            .unwrap();
        assert_eq!((active.hash.as_str(), active.index), (v2.as_str(), n.index));
        // The logic is unchanged.
        assert_eq!(st.modules.active().unwrap().kind, ModuleKind::Logic);
    }
    n.line(alice, "PRIVMSG NickServ :FIXTURE VERSION").await;
    assert!(n.last_output(alice).join("\n").contains("fixture-v2"));
    n.line(alice, "NS INFO alice").await;
    assert!(
        n.last_output(alice)
            .join("\n")
            .contains("Status: logged in now")
    );
    // Rollback of the plugin alone.
    let previous = n
        .shared
        .read()
        .modules
        .resolve("previous:nickserv")
        .unwrap()
        .hash
        .clone();
    assert_eq!(
        n.activate(&previous).await,
        Response::ModuleActivated(previous)
    );
    n.line(alice, "PRIVMSG NickServ :FIXTURE VERSION").await;
    assert!(n.last_output(alice).join("\n").contains("Unknown command"));
    n.line(alice, "NS INFO alice").await;
    assert!(
        n.last_output(alice)
            .join("\n")
            .contains("Information on alice")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_carries_the_plugins_and_their_state() {
    let mut n = Node::with_services().await;
    let alice = n.session(0);
    n.register_alice().await;
    let snapshot =
        n.sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
    let index = n.index;
    let mut restarted = n.restart();
    restarted.line(alice, "NS INFO alice").await;
    assert!(
        restarted
            .last_output(alice)
            .join("\n")
            .contains("Status: logged in now")
    );
    let mut fresh = Node::new();
    fresh
        .sm
        .install_snapshot(&snapshot.meta, snapshot.snapshot)
        .await
        .unwrap();
    fresh.index = index;
    fresh.line(alice, "NS INFO alice").await;
    assert!(
        fresh
            .last_output(alice)
            .join("\n")
            .contains("Status: logged in now")
    );
    assert_eq!(
        fresh.plugin_state("nickserv").await,
        restarted.plugin_state("nickserv").await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_pending_hashes_are_answered_busy_at_once() {
    let mut n = Node::with_services().await;
    let mut sessions = Vec::new();
    for i in 0..(MAX_PENDING_HASHES + 2) {
        let r = n
            .apply(Op::CreateSession {
                auth: "x".into(),
                remote_addr: "192.0.2.9".into(),
            })
            .await;
        let Response::SessionCreated(s) = r else {
            panic!("{r:?}")
        };
        n.line(s, &format!("NICK u{i}")).await;
        n.line(s, &format!("USER u{i} 0 * :u")).await;
        sessions.push(s);
    }
    for s in &sessions {
        n.line(*s, "PRIVMSG NickServ :REGISTER longenough").await;
    }
    assert_eq!(n.shared.read().hash_jobs.len(), MAX_PENDING_HASHES);
    let last = *sessions.last().unwrap();
    let out = n.last_output(last).join("\n");
    assert!(
        out.contains("NickServ"),
        "the one beyond the limit is answered at once: {out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_canary_compares_two_versions_of_a_plugin() {
    let mut n = Node::with_services().await;
    let (alice, bob) = (n.session(0), n.session(1));
    n.register_alice().await;
    n.line(bob, "PRIVMSG NickServ :FIXTURE VERSION").await;
    n.line(alice, "PRIVMSG #c :hello").await;
    n.line(alice, "NS INFO").await;
    n.line(alice, "PRIVMSG NickServ :FIXTURE VERSION").await;
    let recording = Recording::new(None, n.log.clone()).unwrap();
    let engine = runtime::engine().unwrap();
    let compile = |b: &[u8]| runtime::compile(&engine, b).unwrap();
    let report = replay(
        &recording,
        (
            compile(unsplit_irc_component::NICKSERV_COMPONENT),
            "v1".into(),
        ),
        (compile(fixtures::NICKSERV_V2), "v2".into()),
        &mut |_, _| {},
    )
    .unwrap();
    let inputs: Vec<&str> = report
        .divergences
        .iter()
        .map(|d| d.input.as_str())
        .collect();
    // Exactly the two FIXTURE VERSION messages; the registration, its hash, the chat and
    // INFO are the same in both.
    assert_eq!(report.divergent, 2, "{}", report.summary(10));
    // (Inputs to services are shown with their arguments redacted.)
    assert!(
        inputs
            .iter()
            .all(|i| *i == "PRIVMSG NickServ :FIXTURE <redacted>"),
        "{}",
        report.summary(10)
    );
    assert!(report.rejections.is_empty());
    // A logic and a plugin cannot be compared.
    let mixed = replay(
        &recording,
        (compile(IRC_COMPONENT), "logic".into()),
        (compile(fixtures::NICKSERV_V2), "v2".into()),
        &mut |_, _| {},
    );
    assert!(mixed.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_settings_are_checked_before_a_configuration_counts() {
    let mut n = Node::with_services().await;
    let base = NetConfig::initial_toml("t");
    let bad = format!("{base}\n[Plugins.nickserv]\nGracePeriod = \"soon\"\n");
    let line = bad.lines().position(|l| l == "[Plugins.nickserv]").unwrap() + 1;
    let r = n
        .apply(Op::Config {
            toml: bad,
            revision: 2,
        })
        .await;
    let Response::ConfigRefused(why) = r else {
        panic!("{r:?}")
    };
    assert!(
        why.contains(&format!("line {line}: Plugins.nickserv: GracePeriod")),
        "{why}"
    );
    assert_eq!(n.shared.read().config_revision, 1, "nothing changed");
    // A valid table counts, and NickServ gets it.
    let good = format!("{base}\n[Plugins.nickserv]\nGracePeriod = \"10s\"\n");
    let r = n
        .apply(Op::Config {
            toml: good,
            revision: 2,
        })
        .await;
    assert_eq!(r, Response::Applied);
    // The documented example passes the built-in plugins' checks too.
    let example = include_str!("../../docs/network-config.toml");
    let r = n
        .apply(Op::Config {
            toml: example.into(),
            revision: 3,
        })
        .await;
    assert_eq!(r, Response::Applied, "docs/network-config.toml");
    let r = n
        .apply(Op::Config {
            toml: format!("{base}\n[Plugins.nickserv]\nGracePeriod = \"10s\"\n"),
            revision: 4,
        })
        .await;
    assert_eq!(r, Response::Applied);
    let alice = n.session(0);
    n.register_alice().await;
    n.line(alice, "QUIT").await;
    let bob = n.session(0);
    n.line(bob, "NICK alice").await;
    let warning = n.last_output(bob).join("\n");
    assert!(warning.contains("within 10 seconds"), "{warning}");
}
