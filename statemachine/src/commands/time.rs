//! TIME: the network's time, which is the time of this entry (RFC 2812 §3.4.6).

use super::Ctx;
use crate::message::Message;
use crate::numeric::*;
use crate::timefmt;

pub(crate) fn handle(ctx: &mut Ctx, _msg: &Message) {
    let server = ctx.server_name().to_owned();
    let now = timefmt::long(ctx.state.now_ms);
    ctx.numeric(RPL_TIME, &format!("{server} :{now}"));
}
