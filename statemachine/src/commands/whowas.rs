//! WHOWAS: who used a nick before (RFC 2812 §3.6.3), newest first.

use super::Ctx;
use crate::casemap::eq;
use crate::message::Message;
use crate::numeric::*;
use crate::timefmt;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let nick = msg.param(0).split(',').next().unwrap_or("");
    if nick.is_empty() {
        ctx.numeric(ERR_NONICKNAMEGIVEN, ":No nickname given");
        return;
    }
    let count = msg
        .param(1)
        .parse::<usize>()
        .ok()
        .filter(|&c| c > 0)
        .unwrap_or(usize::MAX);
    let server = ctx.server_name().to_owned();
    let entries: Vec<_> = ctx
        .state
        .whowas
        .iter()
        .rev()
        .filter(|w| eq(&w.nick, nick))
        .take(count)
        .cloned()
        .collect();
    if entries.is_empty() {
        ctx.numeric(
            ERR_WASNOSUCHNICK,
            &format!("{nick} :There was no such nickname"),
        );
    }
    for w in entries {
        ctx.numeric(
            RPL_WHOWASUSER,
            &format!("{} {} {} * :{}", w.nick, w.username, w.host, w.realname),
        );
        ctx.numeric(
            RPL_WHOISSERVER,
            &format!("{} {server} :{}", w.nick, timefmt::short(w.left_ms)),
        );
    }
    ctx.numeric(RPL_ENDOFWHOWAS, &format!("{nick} :End of WHOWAS"));
}
