//! KILL: an operator ends another user's session (RFC 2812 §3.7.1).

use super::away::truncate;
use super::registration::KICKLEN;
use super::{Ctx, quit};
use crate::SessionId;
use crate::message::Message;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let target = msg.param(0);
    let Some(victim) = ctx.state.find_nick(target) else {
        ctx.no_such_nick(target);
        return;
    };
    let victim_id = victim.id;
    let reason = match msg.param(1) {
        "" => "No reason given",
        r => r,
    };
    kill(ctx, victim_id, reason);
}

/// Ends `victim` as killed by the sender: the victim gets `KILL` (when registered) and
/// `ERROR`, its channel peers `QUIT :Killed (<killer> (<reason>))`. The reason is cut like
/// a KICK reason, so the KILL line stays within 512 bytes.
pub(crate) fn kill(ctx: &mut Ctx, victim: SessionId, reason: &str) {
    let Some(v) = ctx.state.sessions.get(&victim) else {
        return;
    };
    let (registered, victim_nick) = (v.registered, v.nick_or_star().to_owned());
    let me = ctx.me();
    let (killer, mask) = (me.nick_or_star().to_owned(), me.mask());
    let reason = truncate(reason, KICKLEN);
    if registered {
        ctx.out
            .send(victim, format!(":{mask} KILL {victim_nick} :{reason}"));
    }
    quit::end_session(
        ctx.state,
        ctx.out,
        victim,
        &format!("Killed ({killer} ({reason}))"),
    );
}
