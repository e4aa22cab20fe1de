//! Address bans: the configuration's `[Banned]` table and operators' G-lines. A session's
//! address is what the host reported when it was created (for a session through a trusted
//! bridge, the address that bridge forwarded), so bans follow users through such bridges.

use std::net::IpAddr;

use crate::casemap::wildcard_match;
use crate::state::State;

/// Whether a ban `mask` covers `addr`: a CIDR block (`192.0.2.0/24`, `2001:db8::/32`) or a
/// glob (`*`, `?`, case-insensitive). An empty address is never banned.
pub(crate) fn covers(mask: &str, addr: &str) -> bool {
    if addr.is_empty() {
        return false;
    }
    match mask.split_once('/') {
        Some((net, bits)) => in_block(net, bits, addr),
        None => wildcard_match(mask, addr),
    }
}

fn in_block(net: &str, bits: &str, addr: &str) -> bool {
    let (Ok(net), Ok(bits), Ok(addr)) = (
        net.parse::<IpAddr>(),
        bits.parse::<u32>(),
        addr.parse::<IpAddr>(),
    ) else {
        return false;
    };
    let (net, addr, width) = match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => (u128::from(n.to_bits()), u128::from(a.to_bits()), 32),
        (IpAddr::V6(n), IpAddr::V6(a)) => (n.to_bits(), a.to_bits(), 128),
        _ => return false,
    };
    if bits > width {
        return false;
    }
    let shift = width - bits;
    shift >= 128 || (net >> shift) == (addr >> shift)
}

/// Whether `mask` is a well-formed CIDR block, when it is one.
pub(crate) fn valid_block(mask: &str) -> bool {
    match mask.split_once('/') {
        None => true,
        Some((net, bits)) => match (net.parse::<IpAddr>(), bits.parse::<u32>()) {
            (Ok(IpAddr::V4(_)), Ok(b)) => b <= 32,
            (Ok(IpAddr::V6(_)), Ok(b)) => b <= 128,
            _ => false,
        },
    }
}

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
        .find(|(mask, _)| covers(mask, addr))
        .map(|(_, reason)| reason.clone());
    configured.or_else(|| {
        state
            .glines
            .values()
            .find(|g| g.active(state.now_ms) && covers(&g.mask, addr))
            .map(|g| g.reason.clone())
    })
}

/// Forgets G-lines whose time is up (tick entries).
pub(crate) fn expire(state: &mut State) {
    let now = state.now_ms;
    state.glines.retain(|_, g| g.active(now));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_cidr_blocks() {
        assert!(covers("192.0.2.*", "192.0.2.77"));
        assert!(!covers("192.0.2.*", "192.0.20.1"));
        assert!(covers("2001:DB8::*", "2001:db8::1"));
        assert!(covers("192.0.2.0/24", "192.0.2.255"));
        assert!(!covers("192.0.2.0/24", "192.0.3.0"));
        assert!(covers("10.0.0.0/8", "10.200.1.1"));
        assert!(covers("0.0.0.0/0", "198.51.100.1"));
        assert!(covers("2001:db8::/32", "2001:db8:ffff::1"));
        assert!(!covers("2001:db8::/32", "2001:db9::1"));
        assert!(covers("2001:db8::1/128", "2001:db8::1"));
        assert!(!covers("192.0.2.0/24", "2001:db8::1"));
        assert!(!covers("192.0.2.0/33", "192.0.2.1"));
        assert!(!covers("192.0.2.7", ""));
        assert!(valid_block("192.0.2.0/24") && valid_block("192.0.2.*"));
        assert!(!valid_block("192.0.2.0/40") && !valid_block("x/8") && !valid_block("::/129"));
    }
}
