//! The IRC logic component, built from `statemachine/` by this crate's build script and
//! embedded here, so the node binary runs with nothing to configure.

/// The `unsplit:irc@1.0.0` component (`irc-logic` world) built from this source tree.
pub const IRC_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/unsplit_irc.wasm"));
