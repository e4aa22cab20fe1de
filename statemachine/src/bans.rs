//! Address bans: the configuration's `[Banned]` table and operators' G-lines. A session's
//! address is what the host reported when it was created (for a session through a trusted
//! bridge, the address that bridge forwarded), so bans follow users through such bridges.

use crate::casemap::wildcard_match;
use crate::state::State;

/// Why sessions from `addr` are banned, if they are: the `[Banned]` entry or the active
/// G-line that matches it (the configuration first, then G-lines by mask).
pub(crate) fn ban_reason(state: &State, addr: &str) -> Option<String> {
    if addr.is_empty() {
        return None;
    }
    let configured = state
        .config
        .banned
        .iter()
        .find(|(mask, _)| wildcard_match(mask, addr))
        .map(|(_, reason)| reason.clone());
    configured.or_else(|| {
        state
            .glines
            .values()
            .find(|g| g.active(state.now_ms) && wildcard_match(&g.mask, addr))
            .map(|g| g.reason.clone())
    })
}

/// Forgets G-lines whose time is up (tick entries).
pub(crate) fn expire(state: &mut State) {
    let now = state.now_ms;
    state.glines.retain(|_, g| g.active(now));
}
