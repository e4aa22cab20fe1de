//! PASS: the connection password, before registration (RFC 2812 §3.1.1).
//!
//! Stored for the session; the services plugins read it (`PASS nickserv=…`, see
//! docs/ARCHITECTURE.md). Sent after registration it is an error.

use super::Ctx;
use crate::message::Message;
use crate::numeric::*;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    if ctx.me().registered {
        ctx.numeric(ERR_ALREADYREGISTERED, ":You may not reregister");
        return;
    }
    let password = msg.param(0).to_owned();
    if let Some(s) = ctx.me_mut() {
        s.password = Some(password);
    }
}
