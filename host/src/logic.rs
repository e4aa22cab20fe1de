//! The IRC logic and the services plugins as the node runs them: component instances,
//! plus the checkpoints that make a trap survivable and every node's instances alike.
//!
//! Every committed entry goes through `unsplit_statemachine::pipeline::run`: the logic
//! applies it and lists events for services, the plugins answer actions, the logic
//! applies those. Each component (the logic, each plugin) keeps a checkpoint (its
//! snapshot) and the calls it completed since, so it can be rebuilt at any moment: new
//! instance, restore the checkpoint, replay the calls.
//! - A trap of a **plugin** rebuilds that plugin as it was before the call; the logic is
//!   told (`service-failed`) and the entry goes on.
//! - A trap of the **logic** rejects the whole entry: the logic and every plugin the
//!   entry reached are rebuilt as they were before it.
//!
//! **Every instance that serves calls is a fresh instance, restored from a checkpoint,
//! that then made exactly the logged calls.** Whether a call runs out of fuel or memory
//! can depend on an instance's history (the allocator's free lists, the high-water mark
//! of its linear memory), not only on its state, so every node must have the same
//! history, not just the same state:
//! - checkpoints are taken at the same log indexes on every node (the first run at or
//!   after each multiple of [`CHECKPOINT_EVERY`], every switch of a module, every change
//!   of the limits), and taking one re-instantiates from it;
//! - snapshots for raft, the shadow and the canary are the checkpoints and the logs
//!   ([`LogicState`]): taking one calls nothing in the live instances, and a node that
//!   restores one rebuilds exactly the instances the others have;
//! - the host's other calls into a plugin (`info`, `check-settings`) run on a scratch
//!   instance or are logged like the rest.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use unsplit_services::{Action, Context, Event, PluginInfo};
use unsplit_statemachine::pipeline::{self, Done, Start};
use unsplit_statemachine::{self as sm};

use crate::runtime::{
    Entry, Limits, LogicInstance, LogicModule, PluginInstance, PluginModule, RuntimeError,
    TrapKind, convert, wit,
};

/// Log indexes between two checkpoints: bounds recovery time (replay) and memory.
pub const CHECKPOINT_EVERY: u64 = 1000;

/// Why an entry did not produce an outcome.
#[derive(Debug, thiserror::Error)]
pub enum LogicError {
    /// The entry trapped the IRC logic and was rejected; the state (plugins included) is
    /// as if it had never come.
    #[error("rejected: the IRC logic trapped ({kind:?}: {message})")]
    Rejected { kind: TrapKind, message: String },
    /// A module could not take over the state (it failed to start, refused the state or
    /// trapped on it).
    #[error("the module refused the state: {0}")]
    Refused(String),
    /// The runtime itself failed (not an outcome of the entry): the node cannot go on.
    #[error("the IRC logic runtime failed: {0}")]
    Fatal(String),
}

fn fatal(e: impl std::fmt::Display) -> LogicError {
    LogicError::Fatal(e.to_string())
}

fn refused(e: impl std::fmt::Display) -> LogicError {
    LogicError::Refused(e.to_string())
}

/// A call the logic completed since its checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CoreCall {
    Apply(Entry),
    SetServices(wit::Context, Vec<wit::PluginInfo>),
    Actions(wit::Context, String, Vec<wit::Action>),
    Failed(wit::Context, String, Vec<wit::Event>, String),
}

/// A call a plugin completed since its checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PluginCall {
    Handle(wit::Context, Vec<wit::Event>),
    CheckSettings(String),
}

/// One plugin's checkpoint and the calls since, and the module that runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginState {
    pub name: String,
    /// The module whose `snapshot()` wrote `checkpoint`.
    pub hash: String,
    pub checkpoint: Vec<u8>,
    pub log: Vec<PluginCall>,
}

/// The whole state of the logic and its plugins, as every node holds it: checkpoints and
/// the calls since. Restoring it rebuilds instances with the same history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogicState {
    /// The log index of the last deterministic checkpoint (the next follows from it).
    pub checkpoint_index: u64,
    pub core: Vec<u8>,
    pub core_log: Vec<CoreCall>,
    pub plugins: Vec<PluginState>,
}

/// What a slot needs of a kind of component: building an instance from a checkpoint and
/// its log, and the few calls the slot itself makes.
trait Component {
    type Module;
    type Instance;
    type Call: Clone;
    /// The name in messages.
    const WHAT: &'static str;
    fn instantiate(
        module: &Arc<Self::Module>,
        limits: Limits,
    ) -> Result<Self::Instance, RuntimeError>;
    fn restore(i: &mut Self::Instance, state: &[u8]) -> Result<Result<(), String>, RuntimeError>;
    fn replay(i: &mut Self::Instance, call: &Self::Call) -> Result<(), RuntimeError>;
    fn snapshot(i: &mut Self::Instance) -> Result<Vec<u8>, RuntimeError>;
    fn limits(i: &Self::Instance) -> Limits;
}

struct Core;

impl Component for Core {
    type Module = LogicModule;
    type Instance = LogicInstance;
    type Call = CoreCall;
    const WHAT: &'static str = "the logic";

    fn instantiate(
        module: &Arc<LogicModule>,
        limits: Limits,
    ) -> Result<LogicInstance, RuntimeError> {
        LogicInstance::new(module.clone(), limits)
    }

    fn restore(i: &mut LogicInstance, state: &[u8]) -> Result<Result<(), String>, RuntimeError> {
        i.restore(state)
    }

    fn replay(i: &mut LogicInstance, call: &CoreCall) -> Result<(), RuntimeError> {
        match call {
            CoreCall::Apply(e) => i.apply_step(e).map(drop),
            CoreCall::SetServices(ctx, infos) => i.set_services(*ctx, infos).map(drop),
            CoreCall::Actions(ctx, s, a) => i.apply_actions(*ctx, s, a).map(drop),
            CoreCall::Failed(ctx, s, e, r) => i.service_failed(*ctx, s, e, r).map(drop),
        }
    }

    fn snapshot(i: &mut LogicInstance) -> Result<Vec<u8>, RuntimeError> {
        i.snapshot()
    }

    fn limits(i: &LogicInstance) -> Limits {
        i.limits()
    }
}

struct Plugin;

impl Component for Plugin {
    type Module = PluginModule;
    type Instance = PluginInstance;
    type Call = PluginCall;
    const WHAT: &'static str = "a plugin";

    fn instantiate(
        module: &Arc<PluginModule>,
        limits: Limits,
    ) -> Result<PluginInstance, RuntimeError> {
        PluginInstance::new(module.clone(), limits)
    }

    fn restore(i: &mut PluginInstance, state: &[u8]) -> Result<Result<(), String>, RuntimeError> {
        i.restore(state)
    }

    fn replay(i: &mut PluginInstance, call: &PluginCall) -> Result<(), RuntimeError> {
        match call {
            PluginCall::Handle(ctx, events) => i.handle(*ctx, events).map(drop),
            PluginCall::CheckSettings(text) => i.check_settings(text).map(drop),
        }
    }

    fn snapshot(i: &mut PluginInstance) -> Result<Vec<u8>, RuntimeError> {
        i.snapshot()
    }

    fn limits(i: &PluginInstance) -> Limits {
        i.limits()
    }
}

/// One component: its module, its instance, its checkpoint, the calls since.
struct Slot<C: Component> {
    module: Arc<C::Module>,
    instance: C::Instance,
    checkpoint: Vec<u8>,
    log: Vec<C::Call>,
}

type CoreSlot = Slot<Core>;

/// A plugin's slot, with what the plugin says about itself.
struct PluginSlot {
    info: PluginInfo,
    slot: Slot<Plugin>,
}

impl std::ops::Deref for PluginSlot {
    type Target = Slot<Plugin>;

    fn deref(&self) -> &Slot<Plugin> {
        &self.slot
    }
}

impl std::ops::DerefMut for PluginSlot {
    fn deref_mut(&mut self) -> &mut Slot<Plugin> {
        &mut self.slot
    }
}

/// A fresh instance of `module` restored from `checkpoint`, having replayed `log`.
fn fresh<C: Component>(
    module: &Arc<C::Module>,
    limits: Limits,
    checkpoint: &[u8],
    log: &[C::Call],
) -> Result<C::Instance, RuntimeError> {
    let mut instance = C::instantiate(module, limits)?;
    C::restore(&mut instance, checkpoint)?.map_err(|why| RuntimeError::Trap {
        kind: TrapKind::Panic,
        message: format!("{} refused the state: {why}", C::WHAT),
    })?;
    for call in log {
        C::replay(&mut instance, call)?;
    }
    Ok(instance)
}

impl<C: Component> Slot<C> {
    /// `module` from a checkpoint and its log (`None`: the module's empty state, taken
    /// from a scratch instance). Any failure is a refusal: the module cannot take over.
    fn start(
        module: Arc<C::Module>,
        limits: Limits,
        state: Option<(Vec<u8>, Vec<C::Call>)>,
    ) -> Result<Slot<C>, LogicError> {
        Slot::start_with(module, limits, state, None)
    }

    /// [`Slot::start`] with a scratch instance the caller already has (only read from).
    fn start_with(
        module: Arc<C::Module>,
        limits: Limits,
        state: Option<(Vec<u8>, Vec<C::Call>)>,
        scratch: Option<C::Instance>,
    ) -> Result<Slot<C>, LogicError> {
        let (checkpoint, log) = match state {
            Some(s) => s,
            None => {
                let mut scratch = match scratch {
                    Some(s) => s,
                    None => C::instantiate(&module, limits).map_err(refused)?,
                };
                (C::snapshot(&mut scratch).map_err(refused)?, Vec::new())
            }
        };
        let instance = fresh::<C>(&module, limits, &checkpoint, &log).map_err(refused)?;
        Ok(Slot {
            module,
            instance,
            checkpoint,
            log,
        })
    }

    /// A new checkpoint from the live instance, and a fresh instance from it. If either
    /// fails (deterministically, on every node alike) the slot stays as it was: the same
    /// instance (rebuilt if it trapped), the old checkpoint, a longer log.
    fn checkpoint(&mut self) -> Result<(), LogicError> {
        let limits = C::limits(&self.instance);
        let snapshot = match C::snapshot(&mut self.instance) {
            Ok(s) => s,
            Err(RuntimeError::Trap { kind, message }) => {
                tracing::warn!(
                    "{} trapped taking a checkpoint ({kind:?}: {message})",
                    C::WHAT
                );
                return self.rebuild();
            }
            Err(e) => return Err(fatal(e)),
        };
        match fresh::<C>(&self.module, limits, &snapshot, &[]) {
            Ok(instance) => {
                self.instance = instance;
                self.checkpoint = snapshot;
                self.log.clear();
            }
            Err(e) => tracing::warn!("{} refused its own checkpoint: {e}", C::WHAT),
        }
        Ok(())
    }

    /// A new instance from the checkpoint and the logged calls.
    fn rebuild(&mut self) -> Result<(), LogicError> {
        let limits = C::limits(&self.instance);
        self.instance = fresh::<C>(&self.module, limits, &self.checkpoint, &self.log)
            .map_err(|e| fatal(format!("rebuilding {}: {e}", C::WHAT)))?;
        Ok(())
    }
}

impl PluginSlot {
    /// What the plugin says about itself is asked of a scratch instance, so the serving
    /// instance's history is only the checkpoint and the logged calls.
    fn start(
        module: Arc<PluginModule>,
        limits: Limits,
        state: Option<(Vec<u8>, Vec<PluginCall>)>,
    ) -> Result<PluginSlot, LogicError> {
        let (scratch, info) = PluginSlot::ask(&module, limits)?;
        PluginSlot::start_with(module, limits, state, scratch, info)
    }

    /// A scratch instance of `module` and what the plugin says about itself.
    fn ask(
        module: &Arc<PluginModule>,
        limits: Limits,
    ) -> Result<(PluginInstance, PluginInfo), LogicError> {
        let mut scratch = PluginInstance::new(module.clone(), limits).map_err(refused)?;
        let info = scratch.info().map_err(refused)?.into();
        Ok((scratch, info))
    }

    /// [`PluginSlot::start`] with the scratch instance and the info already asked for
    /// (the scratch then also gives a new plugin its empty state).
    fn start_with(
        module: Arc<PluginModule>,
        limits: Limits,
        state: Option<(Vec<u8>, Vec<PluginCall>)>,
        scratch: PluginInstance,
        info: PluginInfo,
    ) -> Result<PluginSlot, LogicError> {
        Ok(PluginSlot {
            info,
            slot: Slot::start_with(module, limits, state, Some(scratch))?,
        })
    }

    fn state(&self) -> PluginState {
        PluginState {
            name: self.info.name.clone(),
            hash: self.module.hash.clone(),
            checkpoint: self.checkpoint.clone(),
            log: self.log.clone(),
        }
    }
}

/// A trap of a plugin during a run (the entry itself went on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginTrap {
    pub plugin: String,
    pub kind: TrapKind,
    pub message: String,
}

/// What a run produced: the pipeline's result and the plugin traps it survived.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ran {
    pub done: Done,
    pub plugin_traps: Vec<PluginTrap>,
}

pub struct Logic {
    core: CoreSlot,
    limits: Limits,
    plugins: BTreeMap<String, PluginSlot>,
    plugin_limits: Limits,
    /// The log index of the last checkpoint taken at the same index on every node.
    checkpoint_index: u64,
    last_fuel: u64,
    /// Traps of the logic survived since start (for metrics).
    pub traps: u64,
}

impl std::fmt::Debug for Logic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logic")
            .field("module", &self.core.module.hash)
            .field("plugins", &self.plugins.keys().collect::<Vec<_>>())
            .field("traps", &self.traps)
            .finish()
    }
}

impl Logic {
    /// A fresh logic with the empty state and no plugins.
    pub fn new(
        module: Arc<LogicModule>,
        limits: Limits,
        plugin_limits: Limits,
    ) -> Result<Logic, LogicError> {
        Ok(Logic {
            core: CoreSlot::start(module, limits, None)?,
            limits,
            plugins: BTreeMap::new(),
            plugin_limits,
            checkpoint_index: 0,
            last_fuel: 0,
            traps: 0,
        })
    }

    /// The logic and its plugins continuing from `state`; `plugin_module` finds each
    /// plugin's module by hash.
    pub fn from_state(
        module: Arc<LogicModule>,
        limits: Limits,
        plugin_limits: Limits,
        state: &LogicState,
        mut plugin_module: impl FnMut(&str) -> Result<Arc<PluginModule>, String>,
    ) -> Result<Logic, LogicError> {
        let core = CoreSlot::start(
            module,
            limits,
            Some((state.core.clone(), state.core_log.clone())),
        )?;
        let mut plugins = BTreeMap::new();
        for p in &state.plugins {
            let module = plugin_module(&p.hash).map_err(LogicError::Fatal)?;
            let slot = PluginSlot::start(
                module,
                plugin_limits,
                Some((p.checkpoint.clone(), p.log.clone())),
            )?;
            plugins.insert(slot.info.name.clone(), slot);
        }
        Ok(Logic {
            core,
            limits,
            plugins,
            plugin_limits,
            checkpoint_index: state.checkpoint_index,
            last_fuel: 0,
            traps: 0,
        })
    }

    pub fn module(&self) -> &Arc<LogicModule> {
        &self.core.module
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn plugin_limits(&self) -> Limits {
        self.plugin_limits
    }

    /// New limits from the next entry on (a configuration change at `index`). Every
    /// component takes a checkpoint here, so no log spans two sets of limits (a rebuild
    /// replays calls under the limits they ran with).
    pub fn set_limits(
        &mut self,
        limits: Limits,
        plugin_limits: Limits,
        index: u64,
    ) -> Result<(), LogicError> {
        self.limits = limits;
        self.core.instance.set_limits(limits);
        self.plugin_limits = plugin_limits;
        for p in self.plugins.values_mut() {
            p.instance.set_limits(plugin_limits);
        }
        self.checkpoint(index)
    }

    /// What the logic is told about services: every plugin's info, by name.
    pub fn plugin_infos(&self) -> Vec<PluginInfo> {
        self.plugins.values().map(|p| p.info.clone()).collect()
    }

    /// The same state in another logic module: snapshot from this one, restore into
    /// `module` (at an activation entry, on every node alike). On `Err` this logic is
    /// unchanged and stays usable.
    pub fn switch_to(&mut self, module: Arc<LogicModule>) -> Result<(), LogicError> {
        let state = match self.core.instance.snapshot() {
            Ok(s) => s,
            Err(e) => {
                self.core.rebuild()?;
                return Err(refused(format!(
                    "the old module could not save its state: {e}"
                )));
            }
        };
        self.core = CoreSlot::start(module, self.limits, Some((state, Vec::new())))?;
        Ok(())
    }

    /// Runs `module` as the plugin of its name (which must be `expected`, when given):
    /// the state of the plugin it replaces carries over (snapshot → restore), a new
    /// plugin starts empty; then the logic is told the services (`set-services`, at
    /// `ctx`). When anything fails (the plugin, or the logic on the new list) everything
    /// stays as it was and the activation is refused.
    pub fn activate_plugin(
        &mut self,
        module: Arc<PluginModule>,
        expected: Option<&str>,
        ctx: Context,
        hash_room: usize,
    ) -> Result<Ran, LogicError> {
        let (scratch, info) = PluginSlot::ask(&module, self.plugin_limits)?;
        let name = info.name.clone();
        if let Some(expected) = expected.filter(|e| *e != name) {
            return Err(refused(format!(
                "the plugin calls itself {name}, not {expected}"
            )));
        }
        let state = match self.plugins.get_mut(&name) {
            Some(old) => match old.instance.snapshot() {
                Ok(s) => Some((s, Vec::new())),
                Err(e) => {
                    old.rebuild()?;
                    return Err(refused(format!(
                        "the old plugin could not save its state: {e}"
                    )));
                }
            },
            None => None,
        };
        let slot = PluginSlot::start_with(module, self.plugin_limits, state, scratch, info)?;
        let previous = self.plugins.insert(name.clone(), slot);
        let infos = self.plugin_infos();
        match self.run(Start::SetServices(ctx, infos), hash_room) {
            Ok(ran) => Ok(ran),
            Err(e) => {
                match previous {
                    Some(p) => self.plugins.insert(name, p),
                    None => self.plugins.remove(&name),
                };
                Err(match e {
                    LogicError::Rejected { kind, message } => refused(format!(
                        "the IRC logic failed on the new services ({kind:?}: {message})"
                    )),
                    other => other,
                })
            }
        }
    }

    /// Whether every plugin accepts its `[Plugins.<name>]` table of the network
    /// configuration `toml`: `Err` names the table's line, the plugin and the reason.
    /// Asked before a configuration entry runs (on every node alike), so an invalid one
    /// is refused and nothing changes. Tables of plugins that do not run here are not
    /// checked; a document the logic refuses anyway is left to it. The calls are logged
    /// like any other (a plugin that traps while checking is rebuilt).
    pub fn check_settings(&mut self, toml: &str) -> Result<Result<(), String>, LogicError> {
        let Ok(config) = sm::Config::from_toml(toml) else {
            return Ok(Ok(()));
        };
        for (name, table) in &config.plugins {
            let Some(slot) = self.plugins.get_mut(name) else {
                continue;
            };
            let refused = match slot.instance.check_settings(table) {
                Ok(answer) => {
                    slot.log.push(PluginCall::CheckSettings(table.clone()));
                    match answer {
                        Ok(()) => continue,
                        Err(reason) => reason,
                    }
                }
                Err(e @ RuntimeError::Trap { .. }) => {
                    slot.rebuild()?;
                    format!("the plugin failed while checking them ({e})")
                }
                Err(e) => return Err(fatal(e)),
            };
            let line = toml
                .lines()
                .position(|l| l.trim().replace(['"', ' '], "") == format!("[Plugins.{name}]"))
                .map(|i| format!("line {}: ", i + 1))
                .unwrap_or_default();
            return Ok(Err(format!("{line}Plugins.{name}: {refused}")));
        }
        Ok(Ok(()))
    }

    /// Fuel the last run used (logic and plugins).
    pub fn last_fuel(&self) -> u64 {
        self.last_fuel
    }

    /// Applies one entry through the logic and the plugins. A trap of the logic rejects
    /// it (everything rolls back); plugin traps are survived and reported. At most
    /// `hash_room` password hash jobs come back (see `pipeline::run`).
    pub fn run(&mut self, start: Start, hash_room: usize) -> Result<Ran, LogicError> {
        let index = match &start {
            Start::Entry(e) => e.index,
            Start::SetServices(ctx, _) | Start::Event(ctx, _) => ctx.index,
        };
        let core_mark = self.core.log.len();
        // A run neither adds nor removes plugins: the marks follow the map's order.
        let plugin_marks: Vec<usize> = self.plugins.values().map(|p| p.log.len()).collect();
        let mut fuel = 0;
        let mut core = CoreSide {
            slot: &mut self.core,
            fuel: &mut fuel,
        };
        let mut services = ServicesSide {
            plugins: &mut self.plugins,
            fuel: 0,
            traps: Vec::new(),
            fatal: None,
        };
        let result = pipeline::run(&mut core, &mut services, start, hash_room);
        let (plugin_traps, plugin_fuel, broken) = (services.traps, services.fuel, services.fatal);
        self.last_fuel = fuel + plugin_fuel;
        if let Some(e) = broken {
            return Err(e);
        }
        match result {
            Ok(done) => {
                if index >= (self.checkpoint_index / CHECKPOINT_EVERY + 1) * CHECKPOINT_EVERY {
                    self.checkpoint(index)?;
                }
                Ok(Ran { done, plugin_traps })
            }
            Err(RuntimeError::Trap { kind, message }) => {
                self.traps += 1;
                self.core.log.truncate(core_mark);
                self.core.rebuild()?;
                for (p, mark) in self.plugins.values_mut().zip(plugin_marks) {
                    if p.log.len() > mark {
                        p.log.truncate(mark);
                        p.rebuild()?;
                    }
                }
                Err(LogicError::Rejected { kind, message })
            }
            Err(e) => Err(fatal(e)),
        }
    }

    /// Applies one entry (see [`Logic::run`]) and returns its output.
    pub fn apply(&mut self, entry: sm::Entry) -> Result<sm::Outcome, LogicError> {
        self.run(Start::Entry(entry), usize::MAX)
            .map(|r| r.done.outcome)
    }

    /// The whole state: every component's checkpoint and the calls since. Calls nothing
    /// in the instances.
    pub fn state(&self) -> LogicState {
        LogicState {
            checkpoint_index: self.checkpoint_index,
            core: self.core.checkpoint.clone(),
            core_log: self.core.log.clone(),
            plugins: self.plugins.values().map(PluginSlot::state).collect(),
        }
    }

    /// A checkpoint of every component at log index `index`, which must be the same on
    /// every node (see the module's documentation).
    pub fn checkpoint(&mut self, index: u64) -> Result<(), LogicError> {
        self.core.checkpoint()?;
        for p in self.plugins.values_mut() {
            p.checkpoint()?;
        }
        self.checkpoint_index = index;
        Ok(())
    }

    /// The logic's own state after a checkpoint now (for tests and benchmarks; a node
    /// takes checkpoints only at indexes every node agrees on).
    pub fn snapshot(&mut self) -> Result<Vec<u8>, LogicError> {
        let index = self.checkpoint_index;
        self.checkpoint(index)?;
        Ok(self.core.checkpoint.clone())
    }

    /// A copy of this logic and its plugins, with `logic` or `plugin` running instead of
    /// the current one (for a shadow or the canary). It starts from this state; a
    /// replaced plugin is announced to the copy's logic (at `ctx`, output dropped), as an
    /// activation would.
    pub fn fork(
        &self,
        logic: Option<Arc<LogicModule>>,
        plugin: Option<Arc<PluginModule>>,
        ctx: Context,
    ) -> Result<Logic, LogicError> {
        let plugins: BTreeMap<String, Arc<PluginModule>> = self
            .plugins
            .values()
            .map(|p| (p.module.hash.clone(), p.module.clone()))
            .collect();
        let mut fork = Logic::from_state(
            self.core.module.clone(),
            self.limits,
            self.plugin_limits,
            &self.state(),
            |h| {
                plugins
                    .get(h)
                    .cloned()
                    .ok_or_else(|| format!("plugin module {h} is not loaded"))
            },
        )?;
        if let Some(logic) = logic {
            fork.switch_to(logic)?;
        }
        if let Some(plugin) = plugin {
            fork.activate_plugin(plugin, None, ctx, 0)?;
        }
        Ok(fork)
    }
}

/// The logic as the pipeline calls it: completed calls are logged for a rebuild.
struct CoreSide<'a> {
    slot: &'a mut CoreSlot,
    fuel: &'a mut u64,
}

impl CoreSide<'_> {
    /// Counts the fuel of a call and converts its step; the caller logs the call.
    fn done(
        &mut self,
        step: Result<crate::runtime::Step, RuntimeError>,
    ) -> Result<sm::Step, RuntimeError> {
        *self.fuel += self.slot.instance.last_fuel();
        step.map(convert::step)
    }
}

impl pipeline::Core for CoreSide<'_> {
    type Error = RuntimeError;

    fn apply(&mut self, entry: &sm::Entry) -> Result<sm::Step, RuntimeError> {
        let e = convert::entry(entry);
        let step = self.slot.instance.apply_step(&e);
        let step = self.done(step)?;
        self.slot.log.push(CoreCall::Apply(e));
        Ok(step)
    }

    fn set_services(
        &mut self,
        ctx: &Context,
        services: Vec<PluginInfo>,
    ) -> Result<sm::Step, RuntimeError> {
        let (ctx, infos): (wit::Context, Vec<wit::PluginInfo>) = (
            (*ctx).into(),
            services.into_iter().map(Into::into).collect(),
        );
        let step = self.slot.instance.set_services(ctx, &infos);
        let step = self.done(step)?;
        self.slot.log.push(CoreCall::SetServices(ctx, infos));
        Ok(step)
    }

    fn apply_actions(
        &mut self,
        ctx: &Context,
        service: &str,
        actions: Vec<Action>,
    ) -> Result<sm::Step, RuntimeError> {
        let (ctx, actions): (wit::Context, Vec<wit::Action>) =
            ((*ctx).into(), actions.into_iter().map(Into::into).collect());
        let step = self.slot.instance.apply_actions(ctx, service, &actions);
        let step = self.done(step)?;
        self.slot
            .log
            .push(CoreCall::Actions(ctx, service.to_owned(), actions));
        Ok(step)
    }

    fn service_failed(
        &mut self,
        ctx: &Context,
        service: &str,
        events: Vec<Event>,
        reason: &str,
    ) -> Result<sm::Step, RuntimeError> {
        let (ctx, events): (wit::Context, Vec<wit::Event>) =
            ((*ctx).into(), events.into_iter().map(Into::into).collect());
        let step = self
            .slot
            .instance
            .service_failed(ctx, service, &events, reason);
        let step = self.done(step)?;
        self.slot.log.push(CoreCall::Failed(
            ctx,
            service.to_owned(),
            events,
            reason.to_owned(),
        ));
        Ok(step)
    }
}

/// The plugins as the pipeline calls them: a trap rebuilds the plugin as it was before
/// the call and is reported; a runtime failure stops the run (`fatal`).
struct ServicesSide<'a> {
    plugins: &'a mut BTreeMap<String, PluginSlot>,
    fuel: u64,
    traps: Vec<PluginTrap>,
    fatal: Option<LogicError>,
}

impl pipeline::Services for ServicesSide<'_> {
    fn handle(
        &mut self,
        service: &str,
        ctx: &Context,
        events: &[Event],
    ) -> Result<Vec<Action>, String> {
        let Some(slot) = self.plugins.get_mut(service) else {
            return Ok(Vec::new());
        };
        if self.fatal.is_some() {
            return Err("the runtime failed".into());
        }
        let wctx: wit::Context = (*ctx).into();
        let wevents: Vec<wit::Event> = events.iter().cloned().map(Into::into).collect();
        let result = slot.instance.handle(wctx, &wevents);
        self.fuel += slot.instance.last_fuel();
        match result {
            Ok(actions) => {
                slot.log.push(PluginCall::Handle(wctx, wevents));
                Ok(actions.into_iter().map(Into::into).collect())
            }
            Err(RuntimeError::Trap { kind, message }) => {
                if let Err(e) = slot.rebuild() {
                    self.fatal = Some(e);
                }
                let reason = format!("{kind:?}: {message}");
                self.traps.push(PluginTrap {
                    plugin: service.to_owned(),
                    kind,
                    message,
                });
                Err(reason)
            }
            Err(e) => {
                let reason = e.to_string();
                self.fatal = Some(fatal(e));
                Err(reason)
            }
        }
    }
}
