//! PART: leave channels (RFC 2812 §3.2.2).

use super::Ctx;
use crate::casemap::fold;
use crate::message::Message;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    if msg.param(0).is_empty() {
        ctx.need_more_params("PART");
        return;
    }
    // `PART #c :` carries no reason; it is sent like a PART without one.
    let reason = msg.params.get(1).filter(|r| !r.is_empty());
    for name in msg.param(0).split(',').filter(|n| !n.is_empty()) {
        let key = fold(name);
        let Some(ch) = ctx.state.channels.get(&key) else {
            ctx.no_such_channel(name);
            continue;
        };
        if !ch.members.contains_key(&ctx.id) {
            let shown = ch.name.clone();
            ctx.not_on_channel(&shown);
            continue;
        }
        let line = match reason {
            Some(r) => format!(":{} PART {} :{r}", ctx.me().mask(), ch.name),
            None => format!(":{} PART {}", ctx.me().mask(), ch.name),
        };
        let members = ch.members.keys().copied().collect();
        ctx.out.send_sorted(members, line);
        ctx.state.leave_channel(ctx.id, &key);
    }
}
