//! NICK: choose or change the nickname (RFC 2812 §3.1.2).

use super::Ctx;
use super::registration::{NICKLEN, try_register};
use unsplit_services::{Event, EventKind};

use crate::casemap::fold;
use crate::message::Message;
use crate::numeric::*;
use crate::ratelimit;
use crate::services;
use crate::state::NickTaken;

/// RFC 2812 nickname: a letter or special first, then letters, digits, specials, `-`.
pub(crate) fn valid_nick(nick: &str) -> bool {
    let special = |c: char| "[]\\`_^{|}".contains(c);
    let mut chars = nick.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || special(c) => {}
        _ => return false,
    }
    nick.len() <= NICKLEN && chars.all(|c| c.is_ascii_alphanumeric() || special(c) || c == '-')
}

/// A refused parameter as it can be echoed in a middle parameter: its first word, or `*`
/// when that is empty or starts with `:` (either would break the reply's syntax).
fn echo_word(param: &str) -> &str {
    match param.split(' ').next() {
        Some(w) if !w.is_empty() && !w.starts_with(':') => w,
        _ => "*",
    }
}

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let new = msg.param(0);
    if new.is_empty() {
        ctx.numeric(ERR_NONICKNAMEGIVEN, ":No nickname given");
        return;
    }
    if !valid_nick(new) {
        let shown = echo_word(new);
        ctx.numeric(
            ERR_ERRONEUSNICKNAME,
            &format!("{shown} :Erroneous nickname"),
        );
        return;
    }
    match ctx.state.nick_taken(new, ctx.id) {
        Some(NickTaken::Service) => {
            ctx.numeric(
                ERR_NICKNAMEINUSE,
                &format!("{new} :Nickname is reserved for services"),
            );
            return;
        }
        Some(NickTaken::Session) => {
            ctx.numeric(
                ERR_NICKNAMEINUSE,
                &format!("{new} :Nickname is already in use"),
            );
            return;
        }
        None => {}
    }
    let me = ctx.me();
    if me.registered && me.nick.as_deref() != Some(new) {
        // A user's nick changes are rate limited (the nick chosen while registering is
        // not, nor is a rename services force).
        let flood = &ctx.state.config.flood;
        let (burst, interval) = (flood.nick_changes, flood.nick_change_interval);
        let now = ctx.state.now_ms;
        let wait = ratelimit::wait_ms(me.nick_tat_ms, now, burst, interval);
        if wait > 0 {
            ctx.numeric(
                ERR_NICKTOOFAST,
                &format!(
                    "{new} :Nick change too fast. Please wait {} seconds.",
                    wait.div_ceil(1000)
                ),
            );
            return;
        }
        if let Some(s) = ctx.me_mut() {
            ratelimit::take(&mut s.nick_tat_ms, now, interval);
        }
    }
    set_nick(ctx, new);
}

/// Gives the session `ctx.id` a nick that is valid and free (checked by the caller):
/// announced to the session and every common channel once registered (services forcing
/// a nick change go through here too), else it may complete registration.
pub(crate) fn set_nick(ctx: &mut Ctx, new: &str) {
    let me = ctx.me();
    if me.nick.as_deref() == Some(new) {
        return;
    }
    let old_mask = me.mask();
    let registered = me.registered;
    let old_nick = me.nick.clone().unwrap_or_default();
    if registered {
        let snapshot = me.clone();
        ctx.state.record_whowas(&snapshot);
    }
    if !old_nick.is_empty() {
        ctx.state.nicks.remove(&fold(&old_nick));
    }
    ctx.state.nicks.insert(fold(new), ctx.id);
    if let Some(s) = ctx.me_mut() {
        s.nick = Some(new.to_owned());
    }
    if registered {
        let peers = ctx.state.common_channel_peers(ctx.id, true);
        ctx.out.send_all(&peers, format!(":{old_mask} NICK :{new}"));
        let (state, id) = (&*ctx.state, ctx.id);
        services::emit(state, ctx.out, EventKind::NickChange, || {
            Event::NickChange {
                user: services::session_user(state, id),
                old_nick,
            }
        });
    } else {
        try_register(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::{echo_word, valid_nick};

    #[test]
    fn refused_nicks_echo_as_one_middle_parameter() {
        assert_eq!(echo_word("al ice"), "al");
        assert_eq!(echo_word(" x"), "*");
        assert_eq!(echo_word(":x"), "*");
        assert_eq!(echo_word("1a"), "1a");
    }

    #[test]
    fn nick_syntax() {
        for ok in ["a", "Alice", "[x]", "a-1", "`q", "_", &"n".repeat(30)] {
            assert!(valid_nick(ok), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "-a",
            "a b",
            "a!b",
            "a@b",
            "#c",
            "é",
            &"n".repeat(31),
        ] {
            assert!(!valid_nick(bad), "{bad}");
        }
    }
}
