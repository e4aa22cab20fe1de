//! ISON: which of these nicks are online (RFC 2812 §4.9).

use super::Ctx;
use crate::message::Message;
use crate::numeric::*;
use crate::services;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let online: Vec<String> = msg
        .params
        .iter()
        .flat_map(|p| p.split(' '))
        .filter_map(|n| match services::by_nick(ctx.state, n) {
            Some(service) => Some(service.nick.clone()),
            None => ctx.state.find_nick(n).and_then(|s| s.nick.clone()),
        })
        .collect();
    ctx.numeric(RPL_ISON, &format!(":{}", online.join(" ")));
}
