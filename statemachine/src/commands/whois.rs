//! WHOIS: details about a user (RFC 2812 §3.6.2).

use super::Ctx;
use crate::message::Message;
use crate::numeric::*;
use crate::services;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    // `WHOIS <server> <nick>` is accepted; there is only one server.
    let nick = if msg.params.len() >= 2 {
        msg.param(1)
    } else {
        msg.param(0)
    };
    let nick = nick.split(',').next().unwrap_or("");
    if nick.is_empty() {
        ctx.numeric(ERR_NONICKNAMEGIVEN, ":No nickname given");
        return;
    }
    if let Some(service) = services::by_nick(ctx.state, nick) {
        let (shown, description) = (service.nick.clone(), service.description.clone());
        let server = ctx.server_name().to_owned();
        ctx.numeric(
            RPL_WHOISUSER,
            &format!("{shown} {shown} {server} * :{description}"),
        );
        ctx.numeric(
            RPL_WHOISSERVER,
            &format!("{shown} {server} :Network services"),
        );
        ctx.numeric(RPL_WHOISOPERATOR, &format!("{shown} :is a Network Service"));
        ctx.numeric(RPL_ENDOFWHOIS, &format!("{shown} :End of /WHOIS list"));
        return;
    }
    let Some(s) = ctx.state.find_nick(nick) else {
        ctx.no_such_nick(nick);
        ctx.numeric(RPL_ENDOFWHOIS, &format!("{nick} :End of /WHOIS list"));
        return;
    };
    let s = s.clone();
    let shown = s.nick_or_star().to_owned();
    let server = ctx.server_name().to_owned();
    let network = ctx.state.config.network.clone();
    let now = ctx.state.now_ms;
    ctx.numeric(
        RPL_WHOISUSER,
        &format!("{shown} {} {} * :{}", s.user(), s.host(), s.realname),
    );
    let mut channels = Vec::new();
    for key in &s.channels {
        let Some(ch) = ctx.state.channels.get(key) else {
            continue;
        };
        if ch.modes.secret && s.id != ctx.id && !ch.members.contains_key(&ctx.id) {
            continue;
        }
        let prefix = ch.members.get(&s.id).map(|m| m.prefix()).unwrap_or("");
        channels.push(format!("{prefix}{}", ch.name));
    }
    if !channels.is_empty() {
        ctx.numeric(
            RPL_WHOISCHANNELS,
            &format!("{shown} :{}", channels.join(" ")),
        );
    }
    ctx.numeric(
        RPL_WHOISSERVER,
        &format!("{shown} {server} :{network}, one server that never splits"),
    );
    if let Some(away) = &s.away {
        ctx.numeric(RPL_AWAY, &format!("{shown} :{away}"));
    }
    if s.oper.is_some() {
        ctx.numeric(RPL_WHOISOPERATOR, &format!("{shown} :is an IRC operator"));
    }
    if let Some(account) = &s.account {
        ctx.numeric(
            RPL_WHOISACCOUNT,
            &format!("{shown} {account} :is logged in as"),
        );
    }
    let idle = now.saturating_sub(s.last_message_ms) / 1000;
    let signon = s.created_ms / 1000;
    ctx.numeric(
        RPL_WHOISIDLE,
        &format!("{shown} {idle} {signon} :seconds idle, signon time"),
    );
    ctx.numeric(RPL_ENDOFWHOIS, &format!("{shown} :End of /WHOIS list"));
}
