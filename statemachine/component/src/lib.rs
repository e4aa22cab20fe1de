//! The IRC logic component, built from `statemachine/` by this crate's build script and
//! embedded here, so the node binary runs with nothing to configure.

/// The `unsplit:irc@1.0.0` component (`irc-logic` world) built from this source tree.
pub const IRC_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/unsplit_irc.wasm"));

/// Test fixtures built from the same logic with a misbehaviour (see
/// `statemachine/src/fixtures.rs`): a changed VERSION reply, a panic, an endless loop, an
/// unbounded allocation on a magic line. Only with the `fixtures` feature.
#[cfg(feature = "fixtures")]
pub mod fixtures {
    pub const REPLY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fixture-reply.wasm"));
    pub const PANIC: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fixture-panic.wasm"));
    pub const LOOP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fixture-loop.wasm"));
    pub const ALLOC: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fixture-alloc.wasm"));
    /// Claims snapshot format 2 without a migration: refuses every existing state.
    pub const FORMAT2: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/fixture-format2.wasm"));
}
