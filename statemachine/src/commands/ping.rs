//! PING: liveness check; also the barrier clients use, since the PONG is ordered after
//! every line produced before it (RFC 2812 §3.7.2).

use super::Ctx;
use crate::message::Message;
use crate::numeric::*;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let Some(token) = msg.params.first().filter(|t| !t.is_empty()) else {
        ctx.numeric(ERR_NOORIGIN, ":No origin specified");
        return;
    };
    let server = ctx.server_name().to_owned();
    ctx.reply(format!(":{server} PONG {server} :{token}"));
}
