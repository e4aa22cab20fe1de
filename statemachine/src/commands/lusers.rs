//! LUSERS: network size (RFC 2812 §3.4.2). One virtual server, however many nodes.

use super::Ctx;
use crate::message::Message;
use crate::numeric::*;

pub(crate) fn handle(ctx: &mut Ctx, _msg: &Message) {
    send(ctx);
}

pub(crate) fn send(ctx: &mut Ctx) {
    let (users, invisible) = ctx.state.user_count();
    let opers = ctx
        .state
        .sessions
        .values()
        .filter(|s| s.registered && s.oper.is_some())
        .count();
    let unknown = ctx
        .state
        .sessions
        .values()
        .filter(|s| !s.registered)
        .count();
    let channels = ctx.state.channels.len();
    let max = ctx.state.max_users.max(users);
    ctx.numeric(
        RPL_LUSERCLIENT,
        &format!(
            ":There are {} users and {invisible} invisible on 1 servers",
            users - invisible
        ),
    );
    if opers > 0 {
        ctx.numeric(RPL_LUSEROP, &format!("{opers} :operator(s) online"));
    }
    if unknown > 0 {
        ctx.numeric(
            RPL_LUSERUNKNOWN,
            &format!("{unknown} :unknown connection(s)"),
        );
    }
    if channels > 0 {
        ctx.numeric(RPL_LUSERCHANNELS, &format!("{channels} :channels formed"));
    }
    ctx.numeric(
        RPL_LUSERME,
        &format!(":I have {users} clients and 1 servers"),
    );
    ctx.numeric(
        RPL_LOCALUSERS,
        &format!("{users} {max} :Current local users {users}, max {max}"),
    );
    ctx.numeric(
        RPL_GLOBALUSERS,
        &format!("{users} {max} :Current global users {users}, max {max}"),
    );
}
