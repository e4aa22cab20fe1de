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

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, ResourceLimiter, Store, Trap};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/irc-1.0.0",
        world: "irc-logic",
    });
}

pub use bindings::unsplit::irc::host::LogLevel;
pub use bindings::unsplit::irc::types::{Entry, EntryKind, ModuleInfo, Outcome, OutputLine};
use bindings::{IrcLogic, IrcLogicPre};

/// The contract packages this host can run.
pub const SUPPORTED_CONTRACTS: &[&str] = &["unsplit:irc@1.0.0"];

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

/// A validated, compiled logic component, ready to instantiate (cheaply, many times).
pub struct LogicModule {
    engine: Engine,
    pre: IrcLogicPre<HostState>,
    /// SHA-256 of the component bytes, hex.
    pub hash: String,
    pub size: usize,
}

impl std::fmt::Debug for LogicModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogicModule")
            .field("hash", &self.hash)
            .field("size", &self.size)
            .finish()
    }
}

impl LogicModule {
    /// Validates and compiles a component: imports only `unsplit:*`, and it must export
    /// a supported contract.
    pub fn new(engine: &Engine, bytes: &[u8]) -> Result<Arc<LogicModule>, RuntimeError> {
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
            .and_then(IrcLogicPre::new)
            .map_err(|e| RuntimeError::Unsupported(format!("{e:#}")))?;
        let hash = Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Arc::new(LogicModule {
            engine: engine.clone(),
            pre,
            hash,
            size: bytes.len(),
        }))
    }
}

impl LogicModule {
    /// What the module says about itself (instantiates it once).
    pub fn info(self: &Arc<Self>) -> Result<ModuleInfo, RuntimeError> {
        LogicInstance::new(self.clone(), Limits::default())?.info()
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

impl bindings::unsplit::irc::host::Host for HostState {
    fn log(&mut self, level: LogLevel, message: String) {
        // Diagnostics only; nothing here feeds back into the logic.
        let level = match level {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        eprintln!("logic {level}: {message}");
    }
}

/// One running instance of the logic, with its state inside.
pub struct LogicInstance {
    module: Arc<LogicModule>,
    store: Store<HostState>,
    bindings: IrcLogic,
    limits: Limits,
    poisoned: bool,
    last_fuel: u64,
}

impl std::fmt::Debug for LogicInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogicInstance")
            .field("module", &self.module.hash)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl LogicInstance {
    /// A fresh instance with the empty initial state.
    pub fn new(module: Arc<LogicModule>, limits: Limits) -> Result<LogicInstance, RuntimeError> {
        let state = HostState {
            limits: MemoryLimiter {
                max_bytes: limits.memory_bytes,
                refused: false,
            },
        };
        let mut store = Store::new(&module.engine, state);
        store.limiter(|s| &mut s.limits);
        store
            .set_fuel(limits.fuel_per_call)
            .map_err(RuntimeError::engine)?;
        let bindings = module
            .pre
            .instantiate(&mut store)
            .map_err(|e| classify(e, false))?;
        Ok(LogicInstance {
            module,
            store,
            bindings,
            limits,
            poisoned: false,
            last_fuel: 0,
        })
    }

    pub fn module(&self) -> &Arc<LogicModule> {
        &self.module
    }

    /// Fuel the last call used.
    pub fn last_fuel(&self) -> u64 {
        self.last_fuel
    }

    /// Runs one call with a fresh fuel budget; a trap poisons the instance.
    fn call<T>(
        &mut self,
        fuel: u64,
        f: impl FnOnce(&IrcLogic, &mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Result<T, RuntimeError> {
        if self.poisoned {
            return Err(RuntimeError::Poisoned);
        }
        self.store.set_fuel(fuel).map_err(RuntimeError::engine)?;
        self.store.data_mut().limits.refused = false;
        let result = f(&self.bindings, &mut self.store);
        self.last_fuel = fuel - self.store.get_fuel().unwrap_or(0);
        result.map_err(|e| {
            self.poisoned = true;
            classify(e, self.store.data().limits.refused)
        })
    }

    pub fn info(&mut self) -> Result<ModuleInfo, RuntimeError> {
        self.call(self.limits.fuel_per_state_call, |b, s| {
            b.unsplit_irc_logic().call_info(s)
        })
    }

    /// Applies one committed entry.
    pub fn apply(&mut self, entry: &Entry) -> Result<Outcome, RuntimeError> {
        self.call(self.limits.fuel_per_call, |b, s| {
            b.unsplit_irc_logic().call_apply(s, entry)
        })
    }

    /// The logic's whole state.
    pub fn snapshot(&mut self) -> Result<Vec<u8>, RuntimeError> {
        self.call(self.limits.fuel_per_state_call, |b, s| {
            b.unsplit_irc_logic().call_snapshot(s)
        })
    }

    /// Replaces the state; the inner `Err` is the logic refusing the bytes.
    pub fn restore(&mut self, data: &[u8]) -> Result<Result<(), String>, RuntimeError> {
        self.call(self.limits.fuel_per_state_call, |b, s| {
            b.unsplit_irc_logic().call_restore(s, data)
        })
    }

    /// New limits for the following calls (a configuration change at a log index).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        self.store.data_mut().limits.max_bytes = limits.memory_bytes;
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }
}

fn classify(e: wasmtime::Error, memory_refused: bool) -> RuntimeError {
    let kind = match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => TrapKind::OutOfFuel,
        _ if memory_refused => TrapKind::OutOfMemory,
        Some(_) => TrapKind::Panic,
        None => return RuntimeError::Engine(format!("{e:#}")),
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
