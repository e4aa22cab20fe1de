//! AWAY: set or clear the away message (RFC 2812 §4.1).

use super::Ctx;
use super::registration::AWAYLEN;
use crate::message::Message;
use crate::numeric::*;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let text = truncate(msg.param(0), AWAYLEN);
    if text.is_empty() {
        if let Some(s) = ctx.me_mut() {
            s.away = None;
        }
        ctx.numeric(RPL_UNAWAY, ":You are no longer marked as being away");
    } else {
        if let Some(s) = ctx.me_mut() {
            s.away = Some(text.to_owned());
        }
        ctx.numeric(RPL_NOWAWAY, ":You have been marked as being away");
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
