//! KILL: an operator ends another user's session (RFC 2812 §3.7.1).

use super::away::truncate;
use super::registration::KICKLEN;
use super::{Ctx, quit};
use crate::message::Message;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let target = msg.param(0);
    let Some(victim) = ctx.state.find_nick(target) else {
        ctx.no_such_nick(target);
        return;
    };
    let (victim_id, victim_nick) = (victim.id, victim.nick_or_star().to_owned());
    let me = ctx.me();
    let (killer, mask) = (me.nick_or_star().to_owned(), me.mask());
    // Cut like a KICK reason, so the KILL line stays within 512 bytes.
    let reason = match truncate(msg.param(1), KICKLEN) {
        "" => "No reason given",
        r => r,
    };
    ctx.out
        .send(victim_id, format!(":{mask} KILL {victim_nick} :{reason}"));
    quit::end_session(
        ctx.state,
        ctx.out,
        victim_id,
        &format!("Killed ({killer} ({reason}))"),
    );
}
