//! OPER: become an IRC operator with a name and password from the network config
//! (RFC 2812 §3.1.4).

use super::Ctx;
use crate::message::Message;
use crate::numeric::*;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let (name, password) = (msg.param(0), msg.param(1));
    // One answer for an unknown name and a wrong password: no probing for names.
    let operators = &ctx.state.config.irc.operators;
    if !operators
        .iter()
        .any(|o| o.name == name && o.password == password)
    {
        ctx.numeric(ERR_PASSWDMISMATCH, ":Password incorrect");
        return;
    }
    let was_oper = ctx.me().oper.is_some();
    if let Some(s) = ctx.me_mut() {
        s.oper = Some(name.to_owned());
    }
    ctx.numeric(RPL_YOUREOPER, ":You are now an IRC operator");
    if !was_oper {
        let nick = ctx.me().nick_or_star().to_owned();
        ctx.reply(format!(":{nick} MODE {nick} :+o"));
    }
}
