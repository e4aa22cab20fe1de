//! The unsplit IRC server logic.
//!
//! An RFC 2812 IRC server written as a pure, deterministic function of
//! `(state, entry) → (state, outcome)`. Every node of an unsplit network applies the same
//! committed entries in the same order through this logic (compiled to a WebAssembly
//! component, see `statemachine/guest`) and reaches the same state and the same outcomes.
//!
//! Rules that keep it deterministic (see docs/ARCHITECTURE.md):
//! - time comes only from [`Entry::time_ms`], stamped by the raft leader;
//! - no randomness, no I/O, no clocks;
//! - only ordered collections (`BTreeMap`, `BTreeSet`, `Vec`), never hash-map iteration.
//!
//! The same code compiles natively (for fast unit and golden tests) and to wasm.

mod bans;
mod casemap;
mod commands;
mod config;
mod fixtures;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod message;
mod migrate;
mod numeric;
mod output;
pub mod pipeline;
mod ratelimit;
mod server;
mod services;
mod state;
mod timefmt;
pub mod transcript;

pub use config::{Config, ConfigError, describe as describe_toml_error, parse_duration_ms};
pub use server::{RestoreError, Server};
pub use unsplit_services as contract;

/// The module's name as reported through the WIT `info` export.
pub const MODULE_NAME: &str = "unsplit-irc";
/// The module's semantic version (the crate version; test fixtures add `+fixture-…`, so
/// hosts can tell the modules apart).
pub const MODULE_VERSION: &str = if cfg!(feature = "fixture-reply") {
    concat!(env!("CARGO_PKG_VERSION"), "+fixture-reply")
} else if cfg!(feature = "fixture-panic") {
    concat!(env!("CARGO_PKG_VERSION"), "+fixture-panic")
} else if cfg!(feature = "fixture-loop") {
    concat!(env!("CARGO_PKG_VERSION"), "+fixture-loop")
} else if cfg!(feature = "fixture-alloc") {
    concat!(env!("CARGO_PKG_VERSION"), "+fixture-alloc")
} else if cfg!(feature = "fixture-format2") {
    concat!(env!("CARGO_PKG_VERSION"), "+fixture-format2")
} else {
    env!("CARGO_PKG_VERSION")
};
/// The snapshot format [`Server::snapshot`] writes. [`Server::restore`] reads it and the
/// older formats (1: before the abuse protection; see `migrate`). The `fixture-format2`
/// test fixture claims a newer format without any migration, so it refuses every existing
/// state (a module the host must not switch to).
pub const SNAPSHOT_FORMAT: u32 = if cfg!(feature = "fixture-format2") {
    3
} else {
    2
};

/// A session id, chosen by the host. Opaque to the logic.
pub type SessionId = u64;

/// One committed log entry (the WIT `entry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Raft log index, strictly increasing.
    pub index: u64,
    /// Leader-stamped time, milliseconds since the Unix epoch. The only clock.
    pub time_ms: u64,
    /// The session the entry belongs to (0 for ticks and config).
    pub session: SessionId,
    pub kind: EntryKind,
}

/// What an entry asks the logic to do (the WIT `entry-kind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A new session with the client's address.
    CreateSession { remote_addr: String },
    /// The session is gone, with a quit message.
    DeleteSession { quit_message: String },
    /// One raw IRC line without its terminator.
    IrcLine(Vec<u8>),
    /// The clock moved: expire what is due.
    Tick,
    /// A new network configuration (TOML).
    Config(String),
}

/// One line to deliver and its recipients (ascending, unique).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub line: String,
    pub recipients: Vec<SessionId>,
}

/// What one entry produced (the WIT `outcome`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub lines: Vec<OutputLine>,
    /// Sessions ended by this entry, ascending.
    pub closed: Vec<SessionId>,
    /// A problem with the entry that no IRC line reports (e.g. invalid configuration).
    pub error: Option<String>,
}

/// An event for one service (the WIT `service-event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEvent {
    /// The service's name (its `PluginInfo::name`).
    pub service: String,
    pub event: unsplit_services::Event,
}

/// What one call of the services-aware logic produced (the WIT `step`): output for
/// clients, events for services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Step {
    pub outcome: Outcome,
    pub events: Vec<ServiceEvent>,
}
