//! USERHOST: `nick[*]=(+|-)user@host` for up to five nicks (RFC 2812 §4.8).

use super::Ctx;
use crate::message::Message;
use crate::numeric::*;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let replies: Vec<String> = msg
        .params
        .iter()
        .take(5)
        .filter_map(|n| ctx.state.find_nick(n))
        .map(|s| {
            let oper = if s.oper.is_some() { "*" } else { "" };
            let away = if s.away.is_some() { '-' } else { '+' };
            format!("{}{oper}={away}{}@{}", s.nick_or_star(), s.user(), s.host())
        })
        .collect();
    ctx.numeric(RPL_USERHOST, &format!(":{}", replies.join(" ")));
}
