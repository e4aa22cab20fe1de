//! The unsplit node.
//!
//! - [`runtime`]: the wasmtime engine and the IRC logic component's bindings;
//! - [`logic`]: one logic instance plus checkpoint, surviving traps;
//! - [`modules`]: uploaded logic modules, activations, the compiled-module cache;
//! - [`canary`]: replaying recorded inputs through two module versions;
//! - [`sm`]: the raft state machine (host state, output window, snapshots);
//! - [`api`]: the HTTPS API (RobustSession, private API, raft RPCs);
//! - [`node`]: starting a node; [`network`]: raft RPCs to peers; [`tls`]: certificates.

pub mod admin;
pub mod api;
pub mod canary;
pub mod localnet;
pub mod logic;
pub mod moduleops;
pub mod modules;
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
pub mod throttle;
pub mod tls;
