//! The components built from this source tree by this crate's build script and embedded
//! here, so the node binary runs with nothing to configure: the IRC logic
//! (`statemachine/`) and the services plugins (`plugins/`).

/// The IRC logic: world `unsplit:services/irc-logic-with-services@1.0.0`, which includes
/// `unsplit:irc/irc-logic@1.0.0`.
pub const IRC_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/unsplit_irc.wasm"));

/// NickServ (`plugins/nickserv`), world `unsplit:services/service-plugin@1.0.0`.
pub const NICKSERV_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/nickserv.wasm"));
/// ChanServ (`plugins/chanserv`).
pub const CHANSERV_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chanserv.wasm"));

/// The plugins a new network starts with, by name.
pub const BUILTIN_PLUGINS: &[(&str, &[u8])] = &[
    ("nickserv", NICKSERV_COMPONENT),
    ("chanserv", CHANSERV_COMPONENT),
];

/// A built-in component by the name operators use: `builtin` (the IRC logic) or
/// `builtin:<plugin>`.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    match name.strip_prefix("builtin") {
        Some("") => Some(IRC_COMPONENT),
        Some(rest) => {
            let plugin = rest.strip_prefix(':')?;
            BUILTIN_PLUGINS
                .iter()
                .find(|(n, _)| *n == plugin)
                .map(|(_, bytes)| *bytes)
        }
        None => None,
    }
}

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
    /// NickServ that panics on the message `FIXTURE PANIC` (plugins/guest).
    pub const NICKSERV_PANIC: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/nickserv-fixture-panic.wasm"));
    /// NickServ "upgraded": version `+fixture-v2`, answers `FIXTURE VERSION`.
    pub const NICKSERV_V2: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/nickserv-fixture-v2.wasm"));
}
