//! KICK: remove users from a channel (RFC 2812 §3.2.8).

use super::registration::KICKLEN;
use super::{Ctx, away::truncate};
use crate::casemap::fold;
use crate::message::Message;
use crate::numeric::*;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let name = msg.param(0);
    if name.is_empty() || msg.param(1).split(',').all(str::is_empty) {
        ctx.need_more_params("KICK");
        return;
    }
    let key = fold(name);
    let Some(ch) = ctx.state.channels.get(&key) else {
        ctx.no_such_channel(name);
        return;
    };
    let shown = ch.name.clone();
    let Some(membership) = ch.members.get(&ctx.id).copied() else {
        ctx.not_on_channel(&shown);
        return;
    };
    if !membership.op {
        ctx.not_channel_operator(&shown);
        return;
    }
    let me = ctx.me();
    let mask = me.mask();
    let reason = match msg.params.get(2).filter(|r| !r.is_empty()) {
        Some(r) => truncate(r, KICKLEN).to_owned(),
        None => me.nick_or_star().to_owned(),
    };
    for target in msg.param(1).split(',').filter(|t| !t.is_empty()) {
        let Some(victim) = ctx.state.find_nick(target) else {
            ctx.no_such_nick(target);
            continue;
        };
        let (victim_id, victim_nick) = (victim.id, victim.nick_or_star().to_owned());
        let Some(ch) = ctx.state.channels.get(&key) else {
            return;
        };
        if !ch.members.contains_key(&victim_id) {
            ctx.numeric(
                ERR_USERNOTINCHANNEL,
                &format!("{victim_nick} {shown} :They aren't on that channel"),
            );
            continue;
        }
        let members = ch.members.keys().copied().collect();
        ctx.out.send_sorted(
            members,
            format!(":{mask} KICK {shown} {victim_nick} :{reason}"),
        );
        ctx.state.leave_channel(victim_id, &key);
    }
}
