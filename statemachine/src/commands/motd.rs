//! MOTD: the message of the day from the network config (RFC 2812 §3.4.1).

use super::Ctx;
use crate::message::Message;
use crate::numeric::*;

pub(crate) fn handle(ctx: &mut Ctx, _msg: &Message) {
    send(ctx);
}

pub(crate) fn send(ctx: &mut Ctx) {
    let motd = ctx.state.config.motd.clone();
    if motd.trim().is_empty() {
        ctx.numeric(ERR_NOMOTD, ":MOTD File is missing");
        return;
    }
    let server = ctx.server_name().to_owned();
    ctx.numeric(RPL_MOTDSTART, &format!(":- {server} Message of the day - "));
    for line in motd.trim_end_matches('\n').split('\n') {
        ctx.numeric(RPL_MOTD, &format!(":- {}", line.trim_end_matches('\r')));
    }
    ctx.numeric(RPL_ENDOFMOTD, ":End of MOTD command");
}
