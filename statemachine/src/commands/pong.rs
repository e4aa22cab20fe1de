//! PONG: the answer to a PING. Receiving any line already counts as activity, so there is
//! nothing more to do (RFC 2812 §3.7.3).

use super::Ctx;
use crate::message::Message;

pub(crate) fn handle(_ctx: &mut Ctx, _msg: &Message) {}
