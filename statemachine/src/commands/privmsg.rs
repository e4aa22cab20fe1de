//! PRIVMSG: messages to channels and users (RFC 2812 §3.3.1). Every error goes to the
//! sender only. NOTICE shares this code with errors switched off.

use super::Ctx;
use super::registration::MAXTARGETS;
use crate::casemap::{fold, wildcard_match};
use crate::message::Message;
use crate::numeric::*;
use crate::services;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    deliver(ctx, msg, "PRIVMSG");
}

/// Delivers a PRIVMSG or NOTICE. NOTICE never triggers automatic replies (RFC 2812
/// §3.3.2), so it reports no errors and no away messages.
pub(crate) fn deliver(ctx: &mut Ctx, msg: &Message, command: &str) {
    let replies = command == "PRIVMSG";
    let targets = msg.param(0);
    if targets.split(',').all(str::is_empty) {
        if replies {
            ctx.numeric(ERR_NORECIPIENT, &format!(":No recipient given ({command})"));
        }
        return;
    }
    let text = msg.param(1);
    if text.is_empty() {
        if replies {
            ctx.numeric(ERR_NOTEXTTOSEND, ":No text to send");
        }
        return;
    }
    let now = ctx.state.now_ms;
    if let Some(s) = ctx.me_mut() {
        s.last_message_ms = now;
    }
    let mask = ctx.me().mask();
    for (i, target) in targets.split(',').filter(|t| !t.is_empty()).enumerate() {
        if i >= MAXTARGETS {
            if replies {
                ctx.numeric(
                    ERR_TOOMANYTARGETS,
                    &format!("{target} :Too many recipients. Only {MAXTARGETS} processed"),
                );
            }
            break;
        }
        if target.starts_with('#') {
            to_channel(ctx, target, &mask, command, text, replies);
        } else {
            to_user(ctx, target, &mask, command, text, replies);
        }
    }
}

fn to_channel(ctx: &mut Ctx, target: &str, mask: &str, command: &str, text: &str, replies: bool) {
    let Some(ch) = ctx.state.channels.get(&fold(target)) else {
        if replies {
            ctx.no_such_nick(target);
        }
        return;
    };
    let membership = ch.members.get(&ctx.id).copied();
    let privileged = membership.is_some_and(|m| m.op || m.voice);
    let allowed = privileged
        || !((ch.modes.no_external && membership.is_none())
            || ch.modes.moderated
            || ch.bans.iter().any(|b| wildcard_match(&b.mask, mask)));
    if !allowed {
        if replies {
            let shown = ch.name.clone();
            ctx.numeric(
                ERR_CANNOTSENDTOCHAN,
                &format!("{shown} :Cannot send to channel"),
            );
        }
        return;
    }
    let line = format!(":{mask} {command} {} :{text}", ch.name);
    let recipients = ch
        .members
        .keys()
        .copied()
        .filter(|&id| id != ctx.id)
        .collect();
    ctx.out.send_sorted(recipients, line);
}

fn to_user(ctx: &mut Ctx, target: &str, mask: &str, command: &str, text: &str, replies: bool) {
    if let Some(service) = services::by_nick(ctx.state, target) {
        // Services answer PRIVMSGs; a NOTICE is never answered (RFC 2812 §3.3.2).
        if replies {
            let name = service.name.clone();
            services::message(ctx, &name, text);
        }
        return;
    }
    let Some(s) = ctx.state.find_nick(target) else {
        if replies {
            ctx.no_such_nick(target);
        }
        return;
    };
    let (id, nick, away) = (s.id, s.nick_or_star().to_owned(), s.away.clone());
    ctx.out
        .send(id, format!(":{mask} {command} {nick} :{text}"));
    if let (true, Some(away)) = (replies, away) {
        ctx.numeric(RPL_AWAY, &format!("{nick} :{away}"));
    }
}
