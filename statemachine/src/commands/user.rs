//! USER: username and real name at registration (RFC 2812 §3.1.3).

use super::Ctx;
use super::registration::{USERLEN, try_register};
use crate::message::Message;
use crate::numeric::*;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    if ctx.me().registered || ctx.me().username.is_some() {
        ctx.numeric(ERR_ALREADYREGISTERED, ":You may not reregister");
        return;
    }
    // Keep the characters an ident may have; the username is shown as given, never
    // rewritten with a `~` (clients must be able to re-register with what they sent).
    let username: String = msg
        .param(0)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.[]\\`^{}|".contains(*c))
        .take(USERLEN)
        .collect();
    if username.is_empty() {
        ctx.need_more_params("USER");
        return;
    }
    let realname = msg.param(3).to_owned();
    if let Some(s) = ctx.me_mut() {
        s.username = Some(username);
        s.realname = realname;
    }
    try_register(ctx);
}
