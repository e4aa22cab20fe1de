//! NAMES: who is in a channel (RFC 2812 §3.2.5). Also sent after JOIN.

use super::Ctx;
use crate::casemap::fold;
use crate::message::Message;
use crate::numeric::*;

/// Room for nicks in one RPL_NAMREPLY line, well inside 512 bytes with the prefix.
const NAMES_LINE_BUDGET: usize = 400;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    if msg.param(0).is_empty() {
        // Listing every channel of the network at once floods large networks; like most
        // modern servers we answer only the end marker.
        ctx.numeric(RPL_ENDOFNAMES, "* :End of /NAMES list");
        return;
    }
    for name in msg.param(0).split(',').filter(|n| !n.is_empty()) {
        send(ctx, name);
    }
}

/// RPL_NAMREPLY lines for `name` as the sender may see them, then RPL_ENDOFNAMES.
pub(crate) fn send(ctx: &mut Ctx, name: &str) {
    let key = fold(name);
    let mut shown_name = name.to_owned();
    let mut lines = Vec::new();
    if let Some(ch) = ctx.state.channels.get(&key) {
        let member = ch.members.contains_key(&ctx.id);
        if member || !ch.modes.secret {
            shown_name = ch.name.clone();
            let symbol = if ch.modes.secret { "@" } else { "=" };
            let mut current = String::new();
            for (&id, membership) in &ch.members {
                let Some(s) = ctx.state.sessions.get(&id) else {
                    continue;
                };
                if !member && s.invisible {
                    continue;
                }
                if !current.is_empty()
                    && current.len() + s.nick_or_star().len() + 2 > NAMES_LINE_BUDGET
                {
                    lines.push(std::mem::take(&mut current));
                }
                if !current.is_empty() {
                    current.push(' ');
                }
                current.push_str(membership.prefix());
                current.push_str(s.nick_or_star());
            }
            if !current.is_empty() {
                lines.push(current);
            }
            for line in &mut lines {
                *line = format!("{symbol} {shown_name} :{line}");
            }
        }
    }
    for line in lines {
        ctx.numeric(RPL_NAMREPLY, &line);
    }
    ctx.numeric(RPL_ENDOFNAMES, &format!("{shown_name} :End of /NAMES list"));
}
