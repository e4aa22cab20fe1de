//! The IRC logic as the node runs it: one component instance plus the checkpoint that
//! makes a trap survivable.
//!
//! A trap (panic, out of fuel, out of memory) poisons the wasmtime store. Recovery is:
//! drop the instance, instantiate anew, restore the last checkpoint, replay the entries
//! applied since, and report the trapping entry as rejected. Every node traps on the same
//! entry (same bytes, same limits, same fuel), so every node rejects it alike; where the
//! checkpoint was taken does not matter, because the replay is deterministic.

use std::sync::Arc;

use crate::runtime::{Entry, Limits, LogicInstance, LogicModule, Outcome, RuntimeError, TrapKind};

/// Entries between two checkpoints: bounds recovery time (replay) and memory.
pub const CHECKPOINT_EVERY: usize = 1000;

/// Why an entry did not produce an outcome.
#[derive(Debug, thiserror::Error)]
pub enum LogicError {
    /// The entry trapped and was rejected; the state is as if it had never come.
    #[error("rejected: the IRC logic trapped ({kind:?}: {message})")]
    Rejected { kind: TrapKind, message: String },
    /// A module could not take over the state (restore refused it or trapped).
    #[error("the module refused the state: {0}")]
    Refused(String),
    /// The runtime itself failed (not an outcome of the entry): the node cannot go on.
    #[error("the IRC logic runtime failed: {0}")]
    Fatal(String),
}

pub struct Logic {
    module: Arc<LogicModule>,
    limits: Limits,
    instance: LogicInstance,
    checkpoint: Vec<u8>,
    since_checkpoint: Vec<Entry>,
    /// Traps survived since start (for metrics).
    pub traps: u64,
}

impl std::fmt::Debug for Logic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logic")
            .field("module", &self.module.hash)
            .field("traps", &self.traps)
            .finish()
    }
}

fn fatal(e: RuntimeError) -> LogicError {
    LogicError::Fatal(e.to_string())
}

impl Logic {
    /// A fresh logic with the empty state.
    pub fn new(module: Arc<LogicModule>, limits: Limits) -> Result<Logic, LogicError> {
        let mut instance = LogicInstance::new(module.clone(), limits).map_err(fatal)?;
        let checkpoint = instance.snapshot().map_err(fatal)?;
        Ok(Logic {
            module,
            limits,
            instance,
            checkpoint,
            since_checkpoint: Vec::new(),
            traps: 0,
        })
    }

    /// A logic continuing from a snapshot of its state.
    pub fn from_snapshot(
        module: Arc<LogicModule>,
        limits: Limits,
        state: &[u8],
    ) -> Result<Logic, LogicError> {
        let mut instance = LogicInstance::new(module.clone(), limits).map_err(fatal)?;
        match instance.restore(state) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(LogicError::Refused(e)),
            Err(e @ RuntimeError::Trap { .. }) => return Err(LogicError::Refused(e.to_string())),
            Err(e) => return Err(fatal(e)),
        }
        Ok(Logic {
            module,
            limits,
            instance,
            checkpoint: state.to_vec(),
            since_checkpoint: Vec::new(),
            traps: 0,
        })
    }

    pub fn module(&self) -> &Arc<LogicModule> {
        &self.module
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// New limits from the next entry on (a configuration change).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
        self.instance.set_limits(limits);
    }

    /// The same state in another module: snapshot from this one, restore into `module`.
    /// On `Err` this logic is unchanged and stays usable.
    pub fn switch_to(&mut self, module: Arc<LogicModule>) -> Result<(), LogicError> {
        let state = self.snapshot()?;
        let next = Logic::from_snapshot(module, self.limits, &state)?;
        let traps = self.traps;
        *self = next;
        self.traps = traps;
        Ok(())
    }

    /// Fuel the last call used.
    pub fn last_fuel(&self) -> u64 {
        self.instance.last_fuel()
    }

    /// Applies one entry; a trap rejects it and the logic recovers.
    pub fn apply(&mut self, entry: Entry) -> Result<Outcome, LogicError> {
        match self.instance.apply(&entry) {
            Ok(outcome) => {
                self.since_checkpoint.push(entry);
                if self.since_checkpoint.len() >= CHECKPOINT_EVERY {
                    self.checkpoint()?;
                }
                Ok(outcome)
            }
            Err(RuntimeError::Trap { kind, message }) => {
                self.traps += 1;
                self.recover()?;
                Err(LogicError::Rejected { kind, message })
            }
            Err(e) => Err(fatal(e)),
        }
    }

    /// The whole logic state; also becomes the new checkpoint.
    pub fn snapshot(&mut self) -> Result<Vec<u8>, LogicError> {
        self.checkpoint()?;
        Ok(self.checkpoint.clone())
    }

    fn checkpoint(&mut self) -> Result<(), LogicError> {
        self.checkpoint = self.instance.snapshot().map_err(fatal)?;
        self.since_checkpoint.clear();
        Ok(())
    }

    fn recover(&mut self) -> Result<(), LogicError> {
        let mut instance = LogicInstance::new(self.module.clone(), self.limits).map_err(fatal)?;
        instance
            .restore(&self.checkpoint)
            .map_err(fatal)?
            .map_err(|e| LogicError::Fatal(format!("the logic refused its own checkpoint: {e}")))?;
        for e in &self.since_checkpoint {
            // These entries did not trap the first time; the replay is deterministic.
            instance.apply(e).map_err(fatal)?;
        }
        self.instance = instance;
        Ok(())
    }
}
