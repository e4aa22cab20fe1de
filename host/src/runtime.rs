//! Running the IRC logic component: a deterministic wasmtime engine, the
//! `unsplit:irc@1.0.0` bindings, fuel and memory limits per call, and the checks a
//! component must pass before it may run (valid, supported contract, imports only
//! `unsplit:*`).
//!
//! Every node must compute the same outcome for the same entry, so the engine is set up
//! for determinism: cranelift only, NaN canonicalisation, deterministic relaxed SIMD, no
//! threads, fuel metering. A trap (panic, out of fuel, out of memory) is an outcome, not
//! a crash: it is returned as [`RuntimeError::Trap`] and the instance is marked poisoned
//! (wasmtime cannot re-enter a store after a trap); the caller builds a fresh instance.

use std::sync::Arc;

use wasmtime::component::{Component, HasSelf, Instance, InstancePre, Linker};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/irc-1.0.0",
        world: "irc-logic",
        // The calls a component completed are part of snapshots (see `logic`).
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    });
}

/// The IRC logic with the services hooks (`unsplit:services@1.0.0`).
mod services_bindings {
    wasmtime::component::bindgen!({
        path: ["../wit/irc-1.0.0", "../wit/services-1.0.0"],
        world: "unsplit:services/irc-logic-with-services",
        additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
        with: {
            "unsplit:irc/types@1.0.0": super::bindings::unsplit::irc::types,
            "unsplit:irc/host@1.0.0": super::bindings::unsplit::irc::host,
        },
    });
}

/// A services plugin (`unsplit:services/service-plugin@1.0.0`).
mod plugin_bindings {
    wasmtime::component::bindgen!({
        path: ["../wit/irc-1.0.0", "../wit/services-1.0.0"],
        world: "unsplit:services/service-plugin",
        with: {
            "unsplit:irc/types@1.0.0": super::bindings::unsplit::irc::types,
            "unsplit:irc/host@1.0.0": super::bindings::unsplit::irc::host,
            "unsplit:services/types@1.0.0": super::services_bindings::unsplit::services::types,
        },
    });
}

pub use bindings::unsplit::irc::host::LogLevel;
pub use bindings::unsplit::irc::types::{Entry, EntryKind, ModuleInfo, Outcome, OutputLine};
use bindings::{IrcLogic, IrcLogicIndices};
use plugin_bindings::{ServicePlugin, ServicePluginIndices};
pub use services_bindings::exports::unsplit::services::core::{ServiceEvent, Step};
/// The services contract's types as the host sees them.
pub use services_bindings::unsplit::services::types as wit;
use services_bindings::{IrcLogicWithServices, IrcLogicWithServicesIndices};

unsplit_services::wit_conversions!(services_bindings::unsplit::services::types);

/// Conversions between the native library's types (what the pipeline and the host's
/// state work with) and the WIT types the components take.
pub mod convert {
    use unsplit_statemachine as sm;

    use super::{Entry, EntryKind, Outcome, ServiceEvent, Step};

    pub fn entry(e: &sm::Entry) -> Entry {
        let kind = match &e.kind {
            sm::EntryKind::CreateSession { remote_addr } => {
                EntryKind::CreateSession(remote_addr.clone())
            }
            sm::EntryKind::DeleteSession { quit_message } => {
                EntryKind::DeleteSession(quit_message.clone())
            }
            sm::EntryKind::IrcLine(b) => EntryKind::IrcLine(b.clone()),
            sm::EntryKind::Tick => EntryKind::Tick,
            sm::EntryKind::Config(t) => EntryKind::Config(t.clone()),
        };
        Entry {
            index: e.index,
            time_ms: e.time_ms,
            session: e.session,
            kind,
        }
    }

    pub fn outcome(o: Outcome) -> sm::Outcome {
        sm::Outcome {
            lines: o
                .lines
                .into_iter()
                .map(|l| sm::OutputLine {
                    line: l.line,
                    recipients: l.recipients,
                })
                .collect(),
            closed: o.closed,
            error: o.error,
        }
    }

    pub fn step(s: Step) -> sm::Step {
        sm::Step {
            outcome: outcome(s.outcome),
            events: s
                .events
                .into_iter()
                .map(|ServiceEvent { service, event }| sm::ServiceEvent {
                    service,
                    event: event.into(),
                })
                .collect(),
        }
    }
}

/// The contract packages this host can run: the IRC logic (with or without the services
/// hooks) and services plugins.
pub const SUPPORTED_CONTRACTS: &[&str] = &["unsplit:irc@1.0.0", "unsplit:services@1.0.0"];

/// Fuel one entry may burn unless the network configuration says otherwise.
pub const DEFAULT_FUEL_PER_ENTRY: u64 = 2_000_000_000;
/// Memory the logic may use unless the network configuration says otherwise.
pub const DEFAULT_MEMORY_BYTES: usize = 512 << 20;

/// Per-call resource bounds. Every node of a network must use the same values, or a
/// trap on one node would not be a trap on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fuel (roughly wasm instructions) one `apply` may burn.
    pub fuel_per_call: u64,
    /// Fuel for the host's own calls: `snapshot`, `restore`, `info`. They are not driven
    /// by a client, but a 10k-user restore needs far more than one entry should.
    pub fuel_per_state_call: u64,
    /// Largest linear memory the instance may grow to, in bytes.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // A 49-recipient fan-out costs a few hundred thousand fuel; a 10k-user restore a
        // few hundred million. These leave ample room while stopping an endless loop in
        // well under a second.
        Limits {
            fuel_per_call: DEFAULT_FUEL_PER_ENTRY,
            fuel_per_state_call: 50_000_000_000,
            memory_bytes: DEFAULT_MEMORY_BYTES,
        }
    }
}

/// Why a trap happened. Deterministic for equal limits, guest bytes and wasmtime version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// The call used up its fuel.
    OutOfFuel,
    /// The guest asked for more memory than [`Limits::memory_bytes`].
    OutOfMemory,
    /// A panic (`unreachable`) or any other wasm trap.
    Panic,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("the component is not valid: {0}")]
    Invalid(String),
    #[error("the component imports {0:?}, which is outside unsplit:*")]
    ForeignImport(String),
    #[error("the component does not implement a supported contract ({SUPPORTED_CONTRACTS:?}): {0}")]
    Unsupported(String),
    #[error("the logic trapped ({kind:?}): {message}")]
    Trap { kind: TrapKind, message: String },
    #[error("the instance trapped earlier and cannot be used again")]
    Poisoned,
    #[error("wasmtime: {0}")]
    Engine(String),
}

impl RuntimeError {
    fn engine(e: impl std::fmt::Display) -> RuntimeError {
        RuntimeError::Engine(format!("{e:#}"))
    }
}

/// The engine configuration every node uses. Changing it changes fuel counts: treat it
/// like a contract.
pub fn engine() -> Result<Engine, RuntimeError> {
    let mut config = Config::new();
    config
        .strategy(wasmtime::Strategy::Cranelift)
        .consume_fuel(true)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .wasm_component_model(true);
    Engine::new(&config).map_err(RuntimeError::engine)
}

/// The top-level imports of a component, as `package/interface@version` names.
pub fn component_imports(bytes: &[u8]) -> Result<Vec<String>, RuntimeError> {
    use wasmparser::{Parser, Payload};
    let mut imports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| RuntimeError::Invalid(e.to_string()))? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| RuntimeError::Invalid(e.to_string()))?;
                    imports.push(import.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(imports)
}

/// A validated, compiled component: the IRC logic or a services plugin.
#[derive(Debug, Clone)]
pub enum Compiled {
    Logic(Arc<LogicModule>),
    Plugin(Arc<PluginModule>),
}

impl Compiled {
    pub fn hash(&self) -> &str {
        match self {
            Compiled::Logic(m) => &m.hash,
            Compiled::Plugin(m) => &m.hash,
        }
    }

    /// The engine it was compiled with (modules to run beside it compile with it too).
    pub fn engine(&self) -> &Engine {
        match self {
            Compiled::Logic(m) => &m.engine,
            Compiled::Plugin(m) => &m.engine,
        }
    }
}

/// What every component must pass: only `unsplit:*` imports, valid, linkable against
/// the host interface. Returns the component's instance-pre and its hash.
fn prepare(
    engine: &Engine,
    bytes: &[u8],
) -> Result<(InstancePre<HostState>, String), RuntimeError> {
    for import in component_imports(bytes)? {
        if !import.starts_with("unsplit:") {
            return Err(RuntimeError::ForeignImport(import));
        }
    }
    let component =
        Component::new(engine, bytes).map_err(|e| RuntimeError::Invalid(format!("{e:#}")))?;
    let mut linker = Linker::<HostState>::new(engine);
    IrcLogic::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
        .map_err(RuntimeError::engine)?;
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|e| RuntimeError::Unsupported(format!("{e:#}")))?;
    Ok((pre, crate::modules::hash_of(bytes)))
}

/// Compiles a component and finds out what it is: the IRC logic (with the services hooks
/// or without) or a services plugin.
pub fn compile(engine: &Engine, bytes: &[u8]) -> Result<Compiled, RuntimeError> {
    let (pre, hash) = prepare(engine, bytes)?;
    let size = bytes.len();
    let engine = engine.clone();
    let logic = IrcLogicIndices::new(&pre);
    if let Ok(logic) = logic {
        let services = IrcLogicWithServicesIndices::new(&pre).ok();
        return Ok(Compiled::Logic(Arc::new(LogicModule {
            engine,
            pre,
            indices: match services {
                Some(s) => CoreIndices::Services(s),
                None => CoreIndices::Plain(logic),
            },
            hash,
            size,
        })));
    }
    match ServicePluginIndices::new(&pre) {
        Ok(indices) => Ok(Compiled::Plugin(Arc::new(PluginModule {
            engine,
            pre,
            indices,
            hash,
            size,
        }))),
        Err(e) => Err(RuntimeError::Unsupported(format!(
            "exports neither unsplit:irc/logic nor unsplit:services/plugin: {e:#}"
        ))),
    }
}

enum CoreIndices {
    Plain(IrcLogicIndices),
    Services(IrcLogicWithServicesIndices),
}

/// A validated, compiled IRC logic component, ready to instantiate (cheaply, many times).
pub struct LogicModule {
    engine: Engine,
    pre: InstancePre<HostState>,
    indices: CoreIndices,
    /// SHA-256 of the component bytes, hex.
    pub hash: String,
    pub size: usize,
}

impl std::fmt::Debug for LogicModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogicModule")
            .field("hash", &self.hash)
            .field("size", &self.size)
            .field("services", &self.has_services())
            .finish()
    }
}

impl LogicModule {
    /// Validates and compiles an IRC logic component: imports only `unsplit:*`, and it
    /// must export a supported contract.
    pub fn new(engine: &Engine, bytes: &[u8]) -> Result<Arc<LogicModule>, RuntimeError> {
        match compile(engine, bytes)? {
            Compiled::Logic(m) => Ok(m),
            Compiled::Plugin(_) => Err(RuntimeError::Unsupported(
                "this is a services plugin, not the IRC logic".into(),
            )),
        }
    }

    /// It exports the services hooks (`unsplit:services/core`).
    pub fn has_services(&self) -> bool {
        matches!(self.indices, CoreIndices::Services(_))
    }

    /// What the module says about itself (instantiates it once).
    pub fn info(self: &Arc<Self>) -> Result<ModuleInfo, RuntimeError> {
        LogicInstance::new(self.clone(), Limits::default())?.info()
    }
}

/// A validated, compiled services plugin.
pub struct PluginModule {
    engine: Engine,
    pre: InstancePre<HostState>,
    indices: ServicePluginIndices,
    pub hash: String,
    pub size: usize,
}

impl std::fmt::Debug for PluginModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginModule")
            .field("hash", &self.hash)
            .field("size", &self.size)
            .finish()
    }
}

impl PluginModule {
    /// Validates and compiles a services plugin.
    pub fn new(engine: &Engine, bytes: &[u8]) -> Result<Arc<PluginModule>, RuntimeError> {
        match compile(engine, bytes)? {
            Compiled::Plugin(m) => Ok(m),
            Compiled::Logic(_) => Err(RuntimeError::Unsupported(
                "this is the IRC logic, not a services plugin".into(),
            )),
        }
    }

    /// What the plugin says about itself (instantiates it once).
    pub fn info(self: &Arc<Self>) -> Result<wit::PluginInfo, RuntimeError> {
        PluginInstance::new(self.clone(), Limits::default())?.info()
    }
}

/// What the store holds for the host side of the contract.
pub struct HostState {
    limits: MemoryLimiter,
}

struct MemoryLimiter {
    max_bytes: usize,
    /// Set when the guest asked for more memory than allowed (classifies the trap).
    refused: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = desired <= self.max_bytes;
        self.refused |= !ok;
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl bindings::unsplit::irc::types::Host for HostState {}
impl services_bindings::unsplit::services::types::Host for HostState {}

impl bindings::unsplit::irc::host::Host for HostState {
    fn log(&mut self, level: LogLevel, message: String) {
        // Diagnostics only; nothing here feeds back into the logic.
        let level = match level {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        eprintln!("component {level}: {message}");
    }
}

/// One store with its limits: fuel per call, a memory cap, and poisoning after a trap
/// (wasmtime cannot re-enter a store that trapped).
struct Sandbox {
    store: Store<HostState>,
    limits: Limits,
    poisoned: bool,
    last_fuel: u64,
}

impl Sandbox {
    fn new(engine: &Engine, limits: Limits) -> Result<Sandbox, RuntimeError> {
        let state = HostState {
            limits: MemoryLimiter {
                max_bytes: limits.memory_bytes,
                refused: false,
            },
        };
        let mut store = Store::new(engine, state);
        store.limiter(|s| &mut s.limits);
        store
            .set_fuel(limits.fuel_per_call)
            .map_err(RuntimeError::engine)?;
        Ok(Sandbox {
            store,
            limits,
            poisoned: false,
            last_fuel: 0,
        })
    }

    fn instantiate(&mut self, pre: &InstancePre<HostState>) -> Result<Instance, RuntimeError> {
        pre.instantiate(&mut self.store)
            .map_err(|e| classify(e, false))
    }

    /// Runs one call with a fresh budget; a trap poisons the sandbox.
    fn call<T>(
        &mut self,
        budget: Budget,
        f: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, RuntimeError> {
        if self.poisoned {
            return Err(RuntimeError::Poisoned);
        }
        let (fuel, memory) = match budget {
            Budget::Call => (self.limits.fuel_per_call, self.limits.memory_bytes),
            // A lowered memory limit must never make the state unreadable.
            Budget::State => (self.limits.fuel_per_state_call, STATE_MEMORY_BYTES),
        };
        self.store.set_fuel(fuel).map_err(RuntimeError::engine)?;
        let data = self.store.data_mut();
        data.limits.refused = false;
        data.limits.max_bytes = memory;
        let result = f(&mut self.store);
        self.last_fuel = fuel - self.store.get_fuel().unwrap_or(0);
        result.map_err(|e| {
            self.poisoned = true;
            classify(e, self.store.data().limits.refused)
        })
    }

    fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        self.store.data_mut().limits.max_bytes = limits.memory_bytes;
    }
}

/// Which budget a call gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Budget {
    /// An entry's work: the configured fuel and memory limits.
    Call,
    /// The host's own calls (`info`, `snapshot`, `restore`, `check-settings`): their own
    /// fuel budget, and memory up to what wasm32 can address.
    State,
}

/// The memory cap of the host's own calls (the whole 32-bit address space).
const STATE_MEMORY_BYTES: usize = 4 << 30;

/// How the host calls an instance of the IRC logic.
enum CoreBindings {
    Plain(IrcLogic),
    Services(IrcLogicWithServices),
}

/// One running instance of the logic, with its state inside.
pub struct LogicInstance {
    module: Arc<LogicModule>,
    sandbox: Sandbox,
    bindings: CoreBindings,
}

impl std::fmt::Debug for LogicInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogicInstance")
            .field("module", &self.module.hash)
            .field("poisoned", &self.sandbox.poisoned)
            .finish()
    }
}

/// Calls `unsplit:irc/logic.$method` whichever bindings the instance has.
macro_rules! logic_call {
    ($self:ident, $budget:expr, $method:ident $(, $arg:expr)*) => {{
        let bindings = &$self.bindings;
        $self.sandbox.call($budget, |s| match bindings {
            CoreBindings::Plain(b) => b.unsplit_irc_logic().$method(s $(, $arg)*),
            CoreBindings::Services(b) => b.unsplit_irc_logic().$method(s $(, $arg)*),
        })
    }};
}

/// Calls `unsplit:services/core.$method`; a logic without the hooks answers an empty
/// step (it has no services).
macro_rules! core_call {
    ($self:ident, $method:ident $(, $arg:expr)*) => {{
        match &$self.bindings {
            CoreBindings::Plain(_) => Ok(Step {
                outcome: Outcome { lines: Vec::new(), closed: Vec::new(), error: None },
                events: Vec::new(),
            }),
            CoreBindings::Services(b) => $self
                .sandbox
                .call(Budget::Call, |s| b.unsplit_services_core().$method(s $(, $arg)*)),
        }
    }};
}

impl LogicInstance {
    /// A fresh instance with the empty initial state.
    pub fn new(module: Arc<LogicModule>, limits: Limits) -> Result<LogicInstance, RuntimeError> {
        let mut sandbox = Sandbox::new(&module.engine, limits)?;
        let instance = sandbox.instantiate(&module.pre)?;
        let store = &mut sandbox.store;
        let bindings = match &module.indices {
            CoreIndices::Plain(i) => i.load(store, &instance).map(CoreBindings::Plain),
            CoreIndices::Services(i) => i.load(store, &instance).map(CoreBindings::Services),
        }
        .map_err(|e| classify(e, false))?;
        Ok(LogicInstance {
            module,
            sandbox,
            bindings,
        })
    }

    pub fn module(&self) -> &Arc<LogicModule> {
        &self.module
    }

    /// Fuel the last call used.
    pub fn last_fuel(&self) -> u64 {
        self.sandbox.last_fuel
    }

    pub fn info(&mut self) -> Result<ModuleInfo, RuntimeError> {
        logic_call!(self, Budget::State, call_info)
    }

    /// Applies one committed entry (`unsplit:irc/logic.apply`: no services).
    pub fn apply(&mut self, entry: &Entry) -> Result<Outcome, RuntimeError> {
        logic_call!(self, Budget::Call, call_apply, entry)
    }

    /// Applies one committed entry, with the events for services when the logic has the
    /// hooks.
    pub fn apply_step(&mut self, entry: &Entry) -> Result<Step, RuntimeError> {
        match &self.bindings {
            CoreBindings::Plain(_) => self.apply(entry).map(|outcome| Step {
                outcome,
                events: Vec::new(),
            }),
            CoreBindings::Services(_) => core_call!(self, call_apply, entry),
        }
    }

    pub fn set_services(
        &mut self,
        ctx: wit::Context,
        services: &[wit::PluginInfo],
    ) -> Result<Step, RuntimeError> {
        core_call!(self, call_set_services, ctx, services)
    }

    pub fn apply_actions(
        &mut self,
        ctx: wit::Context,
        service: &str,
        actions: &[wit::Action],
    ) -> Result<Step, RuntimeError> {
        core_call!(self, call_apply_actions, ctx, service, actions)
    }

    pub fn service_failed(
        &mut self,
        ctx: wit::Context,
        service: &str,
        events: &[wit::Event],
        reason: &str,
    ) -> Result<Step, RuntimeError> {
        core_call!(self, call_service_failed, ctx, service, events, reason)
    }

    /// The logic's whole state.
    pub fn snapshot(&mut self) -> Result<Vec<u8>, RuntimeError> {
        logic_call!(self, Budget::State, call_snapshot)
    }

    /// Replaces the state; the inner `Err` is the logic refusing the bytes.
    pub fn restore(&mut self, data: &[u8]) -> Result<Result<(), String>, RuntimeError> {
        logic_call!(self, Budget::State, call_restore, data)
    }

    /// New limits for the following calls (a configuration change at a log index).
    pub fn set_limits(&mut self, limits: Limits) {
        self.sandbox.set_limits(limits);
    }

    pub fn limits(&self) -> Limits {
        self.sandbox.limits
    }
}

/// One running instance of a services plugin, with its state inside.
pub struct PluginInstance {
    module: Arc<PluginModule>,
    sandbox: Sandbox,
    bindings: ServicePlugin,
}

impl std::fmt::Debug for PluginInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInstance")
            .field("module", &self.module.hash)
            .field("poisoned", &self.sandbox.poisoned)
            .finish()
    }
}

impl PluginInstance {
    /// A fresh instance with the plugin's empty initial state.
    pub fn new(module: Arc<PluginModule>, limits: Limits) -> Result<PluginInstance, RuntimeError> {
        let mut sandbox = Sandbox::new(&module.engine, limits)?;
        let instance = sandbox.instantiate(&module.pre)?;
        let bindings = module
            .indices
            .load(&mut sandbox.store, &instance)
            .map_err(|e| classify(e, false))?;
        Ok(PluginInstance {
            module,
            sandbox,
            bindings,
        })
    }

    pub fn last_fuel(&self) -> u64 {
        self.sandbox.last_fuel
    }

    pub fn info(&mut self) -> Result<wit::PluginInfo, RuntimeError> {
        let b = &self.bindings;
        self.sandbox
            .call(Budget::State, |s| b.unsplit_services_plugin().call_info(s))
    }

    /// Whether the plugin would accept these settings (it changes nothing).
    pub fn check_settings(&mut self, settings: &str) -> Result<Result<(), String>, RuntimeError> {
        let b = &self.bindings;
        self.sandbox.call(Budget::State, |s| {
            b.unsplit_services_plugin().call_check_settings(s, settings)
        })
    }

    pub fn handle(
        &mut self,
        ctx: wit::Context,
        events: &[wit::Event],
    ) -> Result<Vec<wit::Action>, RuntimeError> {
        let b = &self.bindings;
        self.sandbox.call(Budget::Call, |s| {
            b.unsplit_services_plugin().call_handle(s, ctx, events)
        })
    }

    pub fn snapshot(&mut self) -> Result<Vec<u8>, RuntimeError> {
        let b = &self.bindings;
        self.sandbox.call(Budget::State, |s| {
            b.unsplit_services_plugin().call_snapshot(s)
        })
    }

    pub fn restore(&mut self, data: &[u8]) -> Result<Result<(), String>, RuntimeError> {
        let b = &self.bindings;
        self.sandbox.call(Budget::State, |s| {
            b.unsplit_services_plugin().call_restore(s, data)
        })
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.sandbox.set_limits(limits);
    }

    pub fn limits(&self) -> Limits {
        self.sandbox.limits
    }
}

/// What went wrong in a call into a component. Every error a call returns is the
/// component's doing — a wasm trap, or a fault wasmtime found in what it returned (a
/// pointer out of bounds, a bad discriminant) — so every one is a trap: deterministic,
/// and an outcome of the entry rather than a failure of the node.
fn classify(e: wasmtime::Error, memory_refused: bool) -> RuntimeError {
    let kind = match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => TrapKind::OutOfFuel,
        _ if memory_refused => TrapKind::OutOfMemory,
        _ => TrapKind::Panic,
    };
    // The trap itself, not the wasm backtrace (which names host-specific offsets).
    let message = match e.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => e.root_cause().to_string(),
    };
    RuntimeError::Trap { kind, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage() {
        let engine = engine().unwrap();
        assert!(matches!(
            LogicModule::new(&engine, b"not wasm"),
            Err(RuntimeError::Invalid(_))
        ));
    }
}
