//! INVITE: invite a user to a channel (RFC 2812 §3.2.7). An invitation lets the user past
//! +i and +b once.

use super::Ctx;
use crate::casemap::fold;
use crate::message::Message;
use crate::numeric::*;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let (target, name) = (msg.param(0), msg.param(1));
    if target.is_empty() || name.is_empty() {
        ctx.need_more_params("INVITE");
        return;
    }
    let Some(victim) = ctx.state.find_nick(target) else {
        ctx.no_such_nick(target);
        return;
    };
    let (victim_id, victim_nick, away) = (
        victim.id,
        victim.nick_or_star().to_owned(),
        victim.away.clone(),
    );
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
    if ch.members.contains_key(&victim_id) {
        ctx.numeric(
            ERR_USERONCHANNEL,
            &format!("{victim_nick} {shown} :is already on channel"),
        );
        return;
    }
    if ch.modes.invite_only && !membership.op {
        ctx.not_channel_operator(&shown);
        return;
    }
    if let Some(ch) = ctx.state.channels.get_mut(&key) {
        ch.invites.insert(victim_id);
    }
    if let Some(s) = ctx.state.sessions.get_mut(&victim_id) {
        s.invited_to.insert(key);
    }
    ctx.numeric(RPL_INVITING, &format!("{victim_nick} {shown}"));
    let mask = ctx.me().mask();
    ctx.out
        .send(victim_id, format!(":{mask} INVITE {victim_nick} :{shown}"));
    if let Some(away) = away {
        ctx.numeric(RPL_AWAY, &format!("{victim_nick} :{away}"));
    }
}
