//! VERSION: the module's version (RFC 2812 §3.4.3), then ISUPPORT as modern servers do.

use super::Ctx;
use super::registration::send_isupport;
use crate::message::Message;
use crate::numeric::*;

/// `unsplit-irc-<semver>`: the IRC logic module that answers, not the node binary.
pub(crate) fn version_string() -> String {
    format!("{}-{}", crate::MODULE_NAME, crate::MODULE_VERSION)
}

pub(crate) fn handle(ctx: &mut Ctx, _msg: &Message) {
    let server = ctx.server_name().to_owned();
    let version = version_string();
    ctx.numeric(
        RPL_VERSION,
        &format!(
            "{version} {server} :unsplit, an IRC network that never splits{}",
            if cfg!(feature = "fixture-reply") {
                " (changed by the fixture)"
            } else {
                ""
            }
        ),
    );
    send_isupport(ctx);
}
