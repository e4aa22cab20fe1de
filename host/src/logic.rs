//! The IRC logic and the services plugins as the node runs them: component instances,
//! plus the checkpoints that make a trap survivable.
//!
//! Every committed entry goes through `unsplit_statemachine::pipeline::run`: the logic
//! applies it and lists events for services, the plugins answer actions, the logic
//! applies those. Each component keeps a checkpoint (its snapshot) and the calls it
//! completed since, so it can be rebuilt at any moment: new instance, restore the
//! checkpoint, replay the calls.
//! - A trap of a **plugin** rebuilds that plugin as it was before the call; the logic is
//!   told (`service-failed`) and the entry goes on.
//! - A trap of the **logic** rejects the whole entry: the logic and every plugin the
//!   entry reached are rebuilt as they were before it.
//!
//! Every node traps on the same call (same bytes, same limits, same fuel), so every node
//! does the same; where a checkpoint was taken does not matter, because the replay is
//! deterministic.

use std::collections::BTreeMap;
use std::sync::Arc;

use unsplit_services::{Action, Context, Event, PluginInfo};
use unsplit_statemachine::pipeline::{self, Done, Start};
use unsplit_statemachine::{self as sm};

use crate::runtime::{
    Entry, Limits, LogicInstance, LogicModule, PluginInstance, PluginModule, RuntimeError,
    TrapKind, convert, wit,
};

/// Entries between two checkpoints: bounds recovery time (replay) and memory.
pub const CHECKPOINT_EVERY: usize = 1000;

/// Why an entry did not produce an outcome.
#[derive(Debug, thiserror::Error)]
pub enum LogicError {
    /// The entry trapped the IRC logic and was rejected; the state (plugins included) is
    /// as if it had never come.
    #[error("rejected: the IRC logic trapped ({kind:?}: {message})")]
    Rejected { kind: TrapKind, message: String },
    /// A module could not take over the state (restore refused it or trapped).
    #[error("the module refused the state: {0}")]
    Refused(String),
    /// The runtime itself failed (not an outcome of the entry): the node cannot go on.
    #[error("the IRC logic runtime failed: {0}")]
    Fatal(String),
}

fn fatal(e: RuntimeError) -> LogicError {
    LogicError::Fatal(e.to_string())
}

/// A restore that the module refused or trapped on is a refusal; anything else is fatal.
fn restored(result: Result<Result<(), String>, RuntimeError>) -> Result<(), LogicError> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(LogicError::Refused(e)),
        Err(e @ RuntimeError::Trap { .. }) => Err(LogicError::Refused(e.to_string())),
        Err(e) => Err(fatal(e)),
    }
}

/// One call the logic completed since its checkpoint.
enum CoreCall {
    Apply(Entry),
    SetServices(wit::Context, Vec<wit::PluginInfo>),
    Actions(wit::Context, String, Vec<wit::Action>),
    Failed(wit::Context, String, Vec<wit::Event>, String),
}

/// The IRC logic: instance, checkpoint, calls since.
struct CoreSlot {
    module: Arc<LogicModule>,
    instance: LogicInstance,
    checkpoint: Vec<u8>,
    log: Vec<CoreCall>,
}

impl CoreSlot {
    fn start(
        module: Arc<LogicModule>,
        limits: Limits,
        state: Option<&[u8]>,
    ) -> Result<CoreSlot, LogicError> {
        let mut instance = LogicInstance::new(module.clone(), limits).map_err(fatal)?;
        let checkpoint = match state {
            Some(state) => {
                restored(instance.restore(state))?;
                state.to_vec()
            }
            None => instance.snapshot().map_err(fatal)?,
        };
        Ok(CoreSlot {
            module,
            instance,
            checkpoint,
            log: Vec::new(),
        })
    }

    fn checkpoint(&mut self) -> Result<(), LogicError> {
        self.checkpoint = self.instance.snapshot().map_err(fatal)?;
        self.log.clear();
        Ok(())
    }

    /// A new instance from the checkpoint and the logged calls.
    fn rebuild(&mut self) -> Result<(), LogicError> {
        let mut instance =
            LogicInstance::new(self.module.clone(), self.instance.limits()).map_err(fatal)?;
        instance
            .restore(&self.checkpoint)
            .map_err(fatal)?
            .map_err(|e| LogicError::Fatal(format!("the logic refused its own checkpoint: {e}")))?;
        // These calls did not trap the first time; the replay is deterministic.
        for call in &self.log {
            match call {
                CoreCall::Apply(e) => instance.apply_step(e).map(drop),
                CoreCall::SetServices(ctx, infos) => instance.set_services(*ctx, infos).map(drop),
                CoreCall::Actions(ctx, s, a) => instance.apply_actions(*ctx, s, a).map(drop),
                CoreCall::Failed(ctx, s, e, r) => instance.service_failed(*ctx, s, e, r).map(drop),
            }
            .map_err(fatal)?;
        }
        self.instance = instance;
        Ok(())
    }
}

/// One services plugin: instance, what it said about itself, checkpoint, calls since
/// (with the index of the entry each belongs to).
struct PluginSlot {
    module: Arc<PluginModule>,
    instance: PluginInstance,
    info: PluginInfo,
    checkpoint: Vec<u8>,
    log: Vec<(wit::Context, Vec<wit::Event>)>,
}

impl PluginSlot {
    fn start(
        module: Arc<PluginModule>,
        limits: Limits,
        state: Option<&[u8]>,
    ) -> Result<PluginSlot, LogicError> {
        let mut instance = PluginInstance::new(module.clone(), limits).map_err(fatal)?;
        let info: PluginInfo = match instance.info() {
            Ok(info) => info.into(),
            Err(e @ RuntimeError::Trap { .. }) => return Err(LogicError::Refused(e.to_string())),
            Err(e) => return Err(fatal(e)),
        };
        let checkpoint = match state {
            Some(state) => {
                restored(instance.restore(state))?;
                state.to_vec()
            }
            None => instance.snapshot().map_err(fatal)?,
        };
        Ok(PluginSlot {
            module,
            instance,
            info,
            checkpoint,
            log: Vec::new(),
        })
    }

    fn checkpoint(&mut self) -> Result<(), LogicError> {
        self.checkpoint = self.instance.snapshot().map_err(fatal)?;
        self.log.clear();
        Ok(())
    }

    fn rebuild(&mut self) -> Result<(), LogicError> {
        let mut instance =
            PluginInstance::new(self.module.clone(), self.instance.limits()).map_err(fatal)?;
        instance
            .restore(&self.checkpoint)
            .map_err(fatal)?
            .map_err(|e| {
                LogicError::Fatal(format!(
                    "plugin {} refused its own checkpoint: {e}",
                    self.info.name
                ))
            })?;
        for (ctx, events) in &self.log {
            instance.handle(*ctx, events).map_err(fatal)?;
        }
        self.instance = instance;
        Ok(())
    }
}

/// Which plugin modules a state names, and their states.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PluginState {
    pub name: String,
    /// The module whose `snapshot()` wrote `state`.
    pub hash: String,
    pub state: Vec<u8>,
}

/// The whole state of the logic and its plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicState {
    pub core: Vec<u8>,
    pub plugins: Vec<PluginState>,
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
    runs_since_checkpoint: usize,
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
    pub fn new(module: Arc<LogicModule>, limits: Limits) -> Result<Logic, LogicError> {
        Logic::start(module, limits, None)
    }

    /// A logic continuing from a snapshot of its state (no plugins yet: see
    /// [`Logic::from_state`]).
    pub fn from_snapshot(
        module: Arc<LogicModule>,
        limits: Limits,
        state: &[u8],
    ) -> Result<Logic, LogicError> {
        Logic::start(module, limits, Some(state))
    }

    fn start(
        module: Arc<LogicModule>,
        limits: Limits,
        state: Option<&[u8]>,
    ) -> Result<Logic, LogicError> {
        Ok(Logic {
            core: CoreSlot::start(module, limits, state)?,
            limits,
            plugins: BTreeMap::new(),
            plugin_limits: Limits::default(),
            runs_since_checkpoint: 0,
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
        plugin_module: impl Fn(&str) -> Result<Arc<PluginModule>, String>,
    ) -> Result<Logic, LogicError> {
        let mut logic = Logic::from_snapshot(module, limits, &state.core)?;
        logic.plugin_limits = plugin_limits;
        for p in &state.plugins {
            let module = plugin_module(&p.hash).map_err(LogicError::Fatal)?;
            let slot = PluginSlot::start(module, plugin_limits, Some(&p.state))?;
            logic.plugins.insert(slot.info.name.clone(), slot);
        }
        Ok(logic)
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

    /// New limits from the next entry on (a configuration change).
    pub fn set_limits(&mut self, limits: Limits, plugin_limits: Limits) {
        self.limits = limits;
        self.core.instance.set_limits(limits);
        self.plugin_limits = plugin_limits;
        for p in self.plugins.values_mut() {
            p.instance.set_limits(plugin_limits);
        }
    }

    /// The plugins, by name: their modules and what they said about themselves.
    pub fn plugins(&self) -> impl Iterator<Item = (&Arc<PluginModule>, &PluginInfo)> {
        self.plugins.values().map(|p| (&p.module, &p.info))
    }

    /// What the logic is told about services: every plugin's info, by name.
    pub fn plugin_infos(&self) -> Vec<PluginInfo> {
        self.plugins.values().map(|p| p.info.clone()).collect()
    }

    /// The same state in another logic module: snapshot from this one, restore into
    /// `module`. On `Err` this logic is unchanged and stays usable.
    pub fn switch_to(&mut self, module: Arc<LogicModule>) -> Result<(), LogicError> {
        self.core.checkpoint()?;
        let next = CoreSlot::start(module, self.limits, Some(&self.core.checkpoint))?;
        self.core = next;
        Ok(())
    }

    /// Runs `module` as the plugin of its name (which must be `expected`, when given):
    /// the state of the plugin it replaces carries over (snapshot → restore), a new
    /// plugin starts empty. The logic must be told next (`Start::SetServices` with
    /// [`Logic::plugin_infos`]). On `Err` nothing changed.
    pub fn switch_plugin(
        &mut self,
        module: Arc<PluginModule>,
        expected: Option<&str>,
    ) -> Result<PluginInfo, LogicError> {
        let fresh = PluginSlot::start(module.clone(), self.plugin_limits, None)?;
        let name = fresh.info.name.clone();
        if let Some(expected) = expected.filter(|e| *e != name) {
            return Err(LogicError::Refused(format!(
                "the plugin calls itself {name}, not {expected}"
            )));
        }
        let slot = match self.plugins.get_mut(&name) {
            Some(old) => {
                old.checkpoint()?;
                PluginSlot::start(module, self.plugin_limits, Some(&old.checkpoint))?
            }
            None => fresh,
        };
        let info = slot.info.clone();
        self.plugins.insert(name, slot);
        Ok(info)
    }

    /// Whether every plugin accepts its `[Plugins.<name>]` table of the network
    /// configuration `toml`: `Err` names the table's line, the plugin and the reason.
    /// Asked before a configuration entry runs, so an invalid one is refused and nothing
    /// changes. Tables of plugins that do not run here are not checked; a document the
    /// logic refuses anyway is left to it. Deterministic, and no plugin state changes
    /// (a plugin that traps while checking is rebuilt from its checkpoint).
    pub fn check_settings(&mut self, toml: &str) -> Result<(), String> {
        let Ok(config) = sm::Config::from_toml(toml) else {
            return Ok(());
        };
        for (name, table) in &config.plugins {
            let Some(slot) = self.plugins.get_mut(name) else {
                continue;
            };
            let refused = match slot.instance.check_settings(table) {
                Ok(Ok(())) => continue,
                Ok(Err(reason)) => reason,
                Err(e @ RuntimeError::Trap { .. }) => {
                    slot.rebuild().map_err(|e| e.to_string())?;
                    format!("the plugin failed while checking them ({e})")
                }
                Err(e) => return Err(e.to_string()),
            };
            let line = toml
                .lines()
                .position(|l| {
                    let l = l.trim().replace(['"', ' '], "");
                    l == format!("[Plugins.{name}]")
                })
                .map(|i| format!("line {}: ", i + 1))
                .unwrap_or_default();
            return Err(format!("{line}Plugins.{name}: {refused}"));
        }
        Ok(())
    }

    /// Fuel the last run used (logic and plugins).
    pub fn last_fuel(&self) -> u64 {
        self.last_fuel
    }

    /// Applies one entry through the logic and the plugins. A trap of the logic rejects
    /// it (everything rolls back); plugin traps are survived and reported. At most
    /// `hash_room` password hash jobs come back (see `pipeline::run`).
    pub fn run(&mut self, start: Start, hash_room: usize) -> Result<Ran, LogicError> {
        let core_mark = self.core.log.len();
        let plugin_marks: Vec<(String, usize)> = self
            .plugins
            .iter()
            .map(|(name, p)| (name.clone(), p.log.len()))
            .collect();
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
                self.runs_since_checkpoint += 1;
                if self.runs_since_checkpoint >= CHECKPOINT_EVERY {
                    self.checkpoint()?;
                }
                Ok(Ran { done, plugin_traps })
            }
            Err(RuntimeError::Trap { kind, message }) => {
                self.traps += 1;
                self.core.log.truncate(core_mark);
                self.core.rebuild()?;
                for (name, mark) in plugin_marks {
                    if let Some(p) = self.plugins.get_mut(&name)
                        && p.log.len() > mark
                    {
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

    /// The whole state; also becomes the new checkpoint of every component.
    pub fn state(&mut self) -> Result<LogicState, LogicError> {
        self.checkpoint()?;
        Ok(LogicState {
            core: self.core.checkpoint.clone(),
            plugins: self
                .plugins
                .values()
                .map(|p| PluginState {
                    name: p.info.name.clone(),
                    hash: p.module.hash.clone(),
                    state: p.checkpoint.clone(),
                })
                .collect(),
        })
    }

    /// The logic's own state (see [`Logic::state`] for the plugins' too).
    pub fn snapshot(&mut self) -> Result<Vec<u8>, LogicError> {
        self.core.checkpoint()?;
        Ok(self.core.checkpoint.clone())
    }

    fn checkpoint(&mut self) -> Result<(), LogicError> {
        self.core.checkpoint()?;
        for p in self.plugins.values_mut() {
            p.checkpoint()?;
        }
        self.runs_since_checkpoint = 0;
        Ok(())
    }

    /// A copy of this logic and its plugins, with `logic` or `plugin` running instead of
    /// the current one (for a shadow or the canary). Both start from this state; a
    /// replaced plugin is announced to the copy's logic (at `ctx`, output dropped), as an
    /// activation would.
    pub fn fork(
        &mut self,
        logic: Option<Arc<LogicModule>>,
        plugin: Option<Arc<PluginModule>>,
        ctx: Context,
    ) -> Result<Logic, LogicError> {
        let state = self.state()?;
        let plugins: BTreeMap<String, Arc<PluginModule>> = self
            .plugins
            .values()
            .map(|p| (p.module.hash.clone(), p.module.clone()))
            .collect();
        let module = logic.unwrap_or_else(|| self.core.module.clone());
        let mut fork = Logic::from_state(module, self.limits, self.plugin_limits, &state, |h| {
            plugins
                .get(h)
                .cloned()
                .ok_or_else(|| format!("plugin module {h} is not loaded"))
        })?;
        if let Some(plugin) = plugin {
            fork.switch_plugin(plugin, None)?;
            let infos = fork.plugin_infos();
            fork.run(Start::SetServices(ctx, infos), 0)?;
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
                slot.log.push((wctx, wevents));
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
