//! UNGLINE: an operator lifts a G-line (`UNGLINE <mask>`, the mask as GLINE listed it).
//! Bans from the configuration's `[Banned]` table are lifted by editing the configuration.

use super::Ctx;
use super::away::truncate;
use crate::casemap::{eq, fold};
use crate::config::MAX_BAN_MASK;
use crate::message::Message;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    // No ban mask is longer (GLINE and `[Banned]` both check it): the cut loses no match
    // and keeps the notices short.
    let mask = truncate(msg.param(0), MAX_BAN_MASK);
    if let Some(g) = ctx.state.glines.remove(&fold(mask)) {
        ctx.server_notice(&format!("*** G-line on {} removed", g.mask));
    } else if ctx.state.config.banned.keys().any(|k| eq(k, mask)) {
        ctx.server_notice(
            &format!(
                "*** {mask} is banned by the network configuration ([Banned]); a configuration change lifts it"
            ),
        );
    } else {
        ctx.server_notice(&format!("*** No G-line on {mask}"));
    }
}
