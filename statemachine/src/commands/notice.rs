//! NOTICE: like PRIVMSG, but never answered automatically, errors included
//! (RFC 2812 §3.3.2).

use super::{Ctx, privmsg};
use crate::message::Message;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    privmsg::deliver(ctx, msg, "NOTICE");
}
