//! The unsplit node.
//!
//! - [`runtime`]: the wasmtime engine and the IRC logic component's bindings;
//! - [`logic`]: one logic instance plus checkpoint, surviving traps;
//! - [`sm`]: the raft state machine (host state, output window, snapshots);
//! - [`api`]: the HTTPS API (RobustSession, private API, raft RPCs);
//! - [`node`]: starting a node; [`network`]: raft RPCs to peers; [`tls`]: certificates.

pub mod api;
pub mod localnet;
pub mod logic;
pub mod netconfig;
pub mod network;
pub mod node;
pub mod ops;
pub mod output;
pub mod raft;
pub mod robustness;
pub mod runtime;
pub mod sm;
pub mod snapshot;
pub mod tls;
