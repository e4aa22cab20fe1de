//! GLINE: an operator bans a client address network-wide (RobustIRC's GLINE, with an
//! optional duration) and kills every session from it. `GLINE <nick> …` bans that user's
//! address: for a session through a trusted bridge, the address the bridge forwarded.
//!
//! `GLINE <nick|address mask|CIDR block> [<duration>] :<reason>`; without parameters, the list of
//! address bans (the configuration's `[Banned]` and the G-lines) as `STATS g` shows them.

use super::Ctx;
use super::away::truncate;
use super::kill;
use crate::bans::covers;
use crate::casemap::fold;
use crate::config::{MAX_BAN_REASON, parse_duration_ms, valid_address_mask};
use crate::message::Message;
use crate::numeric::*;
use crate::state::Gline;
use crate::timefmt;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    if msg.params.is_empty() {
        list(ctx);
        return;
    }
    let target = msg.param(0);
    let (duration, reason) = if msg.params.len() >= 3 {
        (msg.param(1), msg.param(2))
    } else {
        ("0", msg.param(1))
    };
    let Ok(duration_ms) = parse_duration_ms(duration) else {
        ctx.server_notice(&format!(
            "*** GLINE: invalid duration {:?} (e.g. 30m, 12h, 0 for permanent)",
            truncate(duration, 32)
        ));
        return;
    };
    let reason = match truncate(reason, MAX_BAN_REASON) {
        "" => "No reason given",
        r => r,
    };
    let mask = if let Some(victim) = ctx.state.find_nick(target) {
        if victim.remote_addr.is_empty() {
            let nick = victim.nick_or_star().to_owned();
            ctx.server_notice(&format!("*** GLINE: {nick} has no known address"));
            return;
        }
        victim.remote_addr.clone()
    } else if target.contains(['.', ':', '*', '?']) {
        if !valid_address_mask(target) {
            ctx.server_notice(
                &format!(
                    "*** GLINE: {} is not an address or address mask (like 192.0.2.7, 192.0.2.* or 192.0.2.0/24)",
                    truncate(target, 64)
                ),
            );
            return;
        }
        target.to_owned()
    } else {
        ctx.no_such_nick(target);
        return;
    };
    if covers(&mask, &ctx.me().remote_addr) {
        ctx.server_notice(&format!(
            "*** GLINE: {mask} matches your own address; not set"
        ));
        return;
    }
    let now = ctx.state.now_ms;
    let expires_ms = if duration_ms == 0 {
        0
    } else {
        now.saturating_add(duration_ms)
    };
    let set_by = ctx.me().nick_or_star().to_owned();
    ctx.state.glines.insert(
        fold(&mask),
        Gline {
            mask: mask.clone(),
            reason: reason.to_owned(),
            set_by,
            set_ms: now,
            expires_ms,
        },
    );
    let victims: Vec<_> = ctx
        .state
        .sessions
        .values()
        .filter(|s| covers(&mask, &s.remote_addr))
        .map(|s| s.id)
        .collect();
    for &victim in &victims {
        kill::kill(ctx, victim, &format!("G-lined: {reason}"));
    }
    let until = match expires_ms {
        0 => "permanent".to_owned(),
        t => format!("until {}", timefmt::short(t)),
    };
    let killed = match victims.len() {
        1 => "1 session".to_owned(),
        n => format!("{n} sessions"),
    };
    ctx.server_notice(&format!(
        "*** G-line on {mask} set ({until}): {reason}; {killed} killed"
    ));
}

/// `223 G <mask> <set> <expires> <by> :<reason>` per ban (times in Unix seconds, 0 for
/// none), then 219.
fn list(ctx: &mut Ctx) {
    let now = ctx.state.now_ms;
    let mut rows: Vec<String> = ctx
        .state
        .config
        .banned
        .iter()
        .map(|(mask, reason)| format!("G {mask} 0 0 config :{reason}"))
        .collect();
    rows.extend(
        ctx.state
            .glines
            .values()
            .filter(|g| g.active(now))
            .map(|g| {
                format!(
                    "G {} {} {} {} :{}",
                    g.mask,
                    g.set_ms / 1000,
                    g.expires_ms / 1000,
                    g.set_by,
                    g.reason
                )
            }),
    );
    for row in rows {
        ctx.numeric(RPL_STATSGLINE, &row);
    }
    ctx.numeric(RPL_ENDOFSTATS, "g :End of /STATS report");
}
