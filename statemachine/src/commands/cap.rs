//! CAP: IRCv3 capability negotiation. `sasl` is offered when a services plugin answers
//! SASL (NickServ); the negotiation always completes, so clients that start with
//! `CAP LS 302` register normally.

use super::Ctx;
use super::registration::try_register;
use crate::message::Message;
use crate::numeric::*;
use crate::services;

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
            let offered = match (services::sasl_service(ctx.state), msg.param(1)) {
                (None, _) => "",
                (Some(_), version) if version.parse::<u32>().is_ok_and(|v| v >= 302) => {
                    "sasl=PLAIN"
                }
                (Some(_), _) => "sasl",
            };
            ctx.reply(format!(":{server} CAP {nick} LS :{offered}"));
        }
        "LIST" => {
            let enabled = ctx.me().caps.iter().cloned().collect::<Vec<_>>().join(" ");
            ctx.reply(format!(":{server} CAP {nick} LIST :{enabled}"));
        }
        "REQ" => {
            begin_negotiation(ctx);
            let requested = msg.param(1).trim();
            let offered = |cap: &str| cap == "sasl" && services::sasl_service(ctx.state).is_some();
            // All or nothing (IRCv3): one unknown capability refuses the whole request.
            let changes: Option<Vec<(bool, &str)>> = requested
                .split(' ')
                .filter(|c| !c.is_empty())
                .map(|c| match c.strip_prefix('-') {
                    Some(c) => offered(c).then_some((false, c)),
                    None => offered(c).then_some((true, c)),
                })
                .collect();
            match changes {
                Some(changes) if !changes.is_empty() => {
                    if let Some(s) = ctx.me_mut() {
                        for (on, cap) in changes {
                            if on {
                                s.caps.insert(cap.to_owned());
                            } else {
                                s.caps.remove(cap);
                            }
                        }
                    }
                    ctx.reply(format!(":{server} CAP {nick} ACK :{requested}"));
                }
                _ => ctx.reply(format!(":{server} CAP {nick} NAK :{requested}")),
            }
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
