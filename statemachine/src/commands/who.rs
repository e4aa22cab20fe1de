//! WHO: users in a channel or matching a mask (RFC 2812 §3.6.1). Invisible users are
//! shown only to those who share a channel with them, or when asked for by their exact
//! nick (WHOIS shows them anyway).

use super::Ctx;
use crate::SessionId;
use crate::casemap::{eq, fold, wildcard_match};
use crate::message::Message;
use crate::numeric::*;
use crate::state::{Membership, Session};

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let mask = msg.param(0);
    let opers_only = msg.param(1).contains('o');
    let server = ctx.server_name().to_owned();
    // (channel column, user, membership, asked for by exact nick)
    let mut rows: Vec<(String, SessionId, Option<Membership>, bool)> = Vec::new();
    if mask.starts_with('#') {
        if let Some(ch) = ctx.state.channels.get(&fold(mask)) {
            let member = ch.members.contains_key(&ctx.id);
            if member || !ch.modes.secret {
                for (&id, &m) in &ch.members {
                    rows.push((ch.name.clone(), id, Some(m), false));
                }
            }
        }
    } else {
        let everyone = mask.is_empty() || mask == "0" || mask == "*";
        let exact = !mask.contains(['*', '?']);
        for s in ctx.state.sessions.values().filter(|s| s.registered) {
            let named = exact && eq(mask, s.nick_or_star());
            let matches = everyone
                || wildcard_match(mask, s.nick_or_star())
                || wildcard_match(mask, s.user())
                || wildcard_match(mask, &s.host())
                || wildcard_match(mask, &s.realname);
            if matches {
                rows.push(("*".to_owned(), s.id, None, named));
            }
        }
    }
    for (channel, id, membership, named) in rows {
        let Some(s) = ctx.state.sessions.get(&id) else {
            continue;
        };
        if opers_only && s.oper.is_none() {
            continue;
        }
        if s.invisible && !named && id != ctx.id && !ctx.state.share_channel(id, ctx.id) {
            continue;
        }
        let line = who_line(s, &channel, &server, membership);
        ctx.numeric(RPL_WHOREPLY, &line);
    }
    let shown = if mask.is_empty() { "*" } else { mask };
    ctx.numeric(RPL_ENDOFWHO, &format!("{shown} :End of WHO list"));
}

/// `<channel> <user> <host> <server> <nick> <H|G>[*][@|+] :0 <realname>`
fn who_line(s: &Session, channel: &str, server: &str, membership: Option<Membership>) -> String {
    let away = if s.away.is_some() { "G" } else { "H" };
    let oper = if s.oper.is_some() { "*" } else { "" };
    let prefix = membership.map(Membership::prefix).unwrap_or("");
    format!(
        "{channel} {} {} {server} {} {away}{oper}{prefix} :0 {}",
        s.user(),
        s.host(),
        s.nick_or_star(),
        s.realname
    )
}
