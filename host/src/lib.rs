//! The unsplit node.
//!
//! Today: the WebAssembly runtime that runs the IRC logic component ([`runtime`]).
//! The raft log, storage, the RobustSession HTTP API and the admin API arrive with the
//! one-node issue (see docs/ARCHITECTURE.md).

pub mod logic;
pub mod netconfig;
pub mod output;
pub mod raft;
pub mod runtime;
pub mod sm;
pub mod snapshot;
