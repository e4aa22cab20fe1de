//! CAP: IRCv3 capability negotiation. No capability is offered yet, but the negotiation
//! completes, so clients that start with `CAP LS 302` register normally.

use super::Ctx;
use super::registration::try_register;
use crate::message::Message;
use crate::numeric::*;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let sub = msg.param(0).to_ascii_uppercase();
    let server = ctx.server_name().to_owned();
    let nick = ctx.me().nick_or_star().to_owned();
    let begin_negotiation = |ctx: &mut Ctx| {
        if let Some(s) = ctx.me_mut()
            && !s.registered
        {
            s.cap_negotiating = true;
        }
    };
    match sub.as_str() {
        "LS" => {
            begin_negotiation(ctx);
            ctx.reply(format!(":{server} CAP {nick} LS :"));
        }
        "LIST" => ctx.reply(format!(":{server} CAP {nick} LIST :")),
        "REQ" => {
            begin_negotiation(ctx);
            let requested = msg.param(1).trim();
            ctx.reply(format!(":{server} CAP {nick} NAK :{requested}"));
        }
        "END" => {
            if let Some(s) = ctx.me_mut() {
                s.cap_negotiating = false;
            }
            try_register(ctx);
        }
        _ => ctx.numeric(
            ERR_INVALIDCAPCMD,
            &format!("{} :Invalid CAP command", msg.param(0)),
        ),
    }
}
