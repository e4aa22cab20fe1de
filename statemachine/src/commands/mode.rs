//! MODE: channel modes `b i k l m n o s t v` and user modes `i o` (RFC 2812 §3.1.5,
//! RFC 2811 §4).

use super::Ctx;
use super::registration::MODES;
use crate::casemap::{fold, normalize_mask};
use crate::message::Message;
use crate::numeric::*;
use crate::state::Ban;

/// Bans one channel may hold.
const MAX_BANS: usize = 100;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    if msg.param(0).is_empty() {
        ctx.need_more_params("MODE");
        return;
    }
    if msg.param(0).starts_with('#') {
        channel_mode(ctx, msg);
    } else {
        user_mode(ctx, msg);
    }
}

/// Applied changes, rendered as one MODE line: `+ov-b alice bob mask`.
#[derive(Default)]
struct Changes {
    flags: String,
    args: Vec<String>,
    sign: Option<bool>,
}

impl Changes {
    fn push(&mut self, plus: bool, mode: char, arg: Option<String>) {
        if self.sign != Some(plus) {
            self.flags.push(if plus { '+' } else { '-' });
            self.sign = Some(plus);
        }
        self.flags.push(mode);
        self.args.extend(arg);
    }

    fn render(&self) -> String {
        let mut s = self.flags.clone();
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

fn channel_mode(ctx: &mut Ctx, msg: &Message) {
    let name = msg.param(0);
    let key = fold(name);
    let Some(ch) = ctx.state.channels.get(&key) else {
        ctx.no_such_channel(name);
        return;
    };
    let shown = ch.name.clone();
    let membership = ch.members.get(&ctx.id).copied();
    if msg.param(1).is_empty() {
        let modes = ch.modes.render(membership.is_some());
        let created = ch.created_ms / 1000;
        ctx.numeric(RPL_CHANNELMODEIS, &format!("{shown} {modes}"));
        ctx.numeric(RPL_CREATIONTIME, &format!("{shown} {created}"));
        return;
    }
    let is_op = membership.is_some_and(|m| m.op);
    let mut args = msg.params[2..].iter();
    let mut changes = Changes::default();
    let mut plus = true;
    let mut param_changes = 0;
    let mut refused = false;
    let mut unknown = Vec::new();
    let setter = ctx.me().nick_or_star().to_owned();
    let now = ctx.state.now_ms;
    for mode in msg.param(1).chars() {
        match mode {
            '+' => {
                plus = true;
                continue;
            }
            '-' => {
                plus = false;
                continue;
            }
            _ => {}
        }
        let takes_arg = matches!(mode, 'o' | 'v' | 'b') || (mode == 'k') || (mode == 'l' && plus);
        if takes_arg {
            param_changes += 1;
            if param_changes > MODES {
                break;
            }
        }
        // `MODE #c b` / `MODE #c +b` without a mask lists the bans, for anyone.
        if mode == 'b' && args.len() == 0 {
            send_ban_list(ctx, &key);
            continue;
        }
        if !"biklmnostv".contains(mode) {
            if !unknown.contains(&mode) {
                unknown.push(mode);
            }
            continue;
        }
        if !is_op {
            if takes_arg {
                args.next();
            }
            refused = true;
            continue;
        }
        let arg = if takes_arg {
            args.next().cloned()
        } else {
            None
        };
        match mode {
            'o' | 'v' => {
                let Some(nick) = arg else { continue };
                match member_mode(ctx.state, &key, plus, mode, &nick, &mut changes) {
                    Ok(()) => {}
                    Err(MemberModeError::NoSuchNick) => ctx.no_such_nick(&nick),
                    Err(MemberModeError::NotOnChannel(tnick)) => ctx.numeric(
                        ERR_USERNOTINCHANNEL,
                        &format!("{tnick} {shown} :They aren't on that channel"),
                    ),
                }
            }
            'b' => {
                let Some(raw) = arg else { continue };
                let mask = normalize_mask(&raw);
                let Some(ch) = ctx.state.channels.get_mut(&key) else {
                    return;
                };
                let existing = ch
                    .bans
                    .iter()
                    .position(|b| crate::casemap::eq(&b.mask, &mask));
                match (plus, existing) {
                    (true, None) if ch.bans.len() < MAX_BANS => {
                        ch.bans.push(Ban {
                            mask: mask.clone(),
                            set_by: setter.clone(),
                            set_ms: now,
                        });
                        changes.push(true, 'b', Some(mask));
                    }
                    (false, Some(i)) => {
                        let removed = ch.bans.remove(i);
                        changes.push(false, 'b', Some(removed.mask));
                    }
                    _ => {}
                }
            }
            'k' => {
                let Some(ch) = ctx.state.channels.get_mut(&key) else {
                    return;
                };
                if plus {
                    let Some(k) =
                        arg.filter(|k| !k.is_empty() && k.len() <= 23 && !k.contains(','))
                    else {
                        continue;
                    };
                    if ch.modes.key.as_ref() != Some(&k) {
                        ch.modes.key = Some(k.clone());
                        changes.push(true, 'k', Some(k));
                    }
                } else if ch.modes.key.take().is_some() {
                    changes.push(false, 'k', Some("*".to_owned()));
                }
            }
            'l' => {
                let Some(ch) = ctx.state.channels.get_mut(&key) else {
                    return;
                };
                if plus {
                    let Some(limit) = arg.and_then(|a| a.parse::<u32>().ok()).filter(|&l| l > 0)
                    else {
                        continue;
                    };
                    if ch.modes.limit != Some(limit) {
                        ch.modes.limit = Some(limit);
                        changes.push(true, 'l', Some(limit.to_string()));
                    }
                } else if ch.modes.limit.take().is_some() {
                    changes.push(false, 'l', None);
                }
            }
            _ => {
                let Some(ch) = ctx.state.channels.get_mut(&key) else {
                    return;
                };
                let flag = match mode {
                    'i' => &mut ch.modes.invite_only,
                    'm' => &mut ch.modes.moderated,
                    'n' => &mut ch.modes.no_external,
                    's' => &mut ch.modes.secret,
                    _ => &mut ch.modes.topic_ops,
                };
                if *flag != plus {
                    *flag = plus;
                    changes.push(plus, mode, None);
                }
            }
        }
    }
    for mode in unknown {
        ctx.numeric(
            ERR_UNKNOWNMODE,
            &format!("{mode} :is unknown mode char to me for {shown}"),
        );
    }
    if refused {
        if membership.is_none() {
            ctx.not_on_channel(&shown);
        } else {
            ctx.not_channel_operator(&shown);
        }
    }
    if !changes.flags.is_empty() {
        let mask = ctx.me().mask();
        let Some(ch) = ctx.state.channels.get(&key) else {
            return;
        };
        let members = ch.members.keys().copied().collect();
        ctx.out.send_sorted(
            members,
            format!(":{mask} MODE {shown} {}", changes.render()),
        );
    }
}

/// Why a member mode (`o`, `v`) did not apply.
enum MemberModeError {
    NoSuchNick,
    /// The nick (as its owner writes it) is not on the channel.
    NotOnChannel(String),
}

/// Gives (`plus`) or takes channel `key`'s member mode `mode` (`o` or `v`) to or from
/// the user `nick`; a change is added to `changes` (none when the member already has
/// that status).
fn member_mode(
    state: &mut crate::state::State,
    key: &str,
    plus: bool,
    mode: char,
    nick: &str,
    changes: &mut Changes,
) -> Result<(), MemberModeError> {
    let target = state.find_nick(nick).ok_or(MemberModeError::NoSuchNick)?;
    let (tid, tnick) = (target.id, target.nick_or_star().to_owned());
    let Some(m) = state
        .channels
        .get_mut(key)
        .and_then(|ch| ch.members.get_mut(&tid))
    else {
        return Err(MemberModeError::NotOnChannel(tnick));
    };
    let flag = if mode == 'o' { &mut m.op } else { &mut m.voice };
    if *flag != plus {
        *flag = plus;
        changes.push(plus, mode, Some(tnick));
    }
    Ok(())
}

/// Channel member modes (`o`, `v`) set by a service (ChanServ): no privilege check, the
/// service decided; changes that do not apply (a nick not on the channel, a status the
/// member already has) are skipped. Announced to the channel from `source`.
pub(crate) fn service_channel_mode(
    state: &mut crate::state::State,
    out: &mut crate::output::Output,
    source: &str,
    channel: &str,
    modes: &str,
    args: &[String],
) {
    let key = fold(channel);
    let mut changes = Changes::default();
    let mut plus = true;
    let mut args = args.iter();
    for mode in modes.chars().take(2 * MODES) {
        match mode {
            '+' => plus = true,
            '-' => plus = false,
            'o' | 'v' => {
                let Some(nick) = args.next() else { break };
                // What does not apply is skipped silently.
                let _ = member_mode(state, &key, plus, mode, nick, &mut changes);
            }
            _ => {}
        }
    }
    if let Some(ch) = state.channels.get(&key)
        && !changes.flags.is_empty()
    {
        let members = ch.members.keys().copied().collect();
        out.send_sorted(
            members,
            format!(":{source} MODE {} {}", ch.name, changes.render()),
        );
    }
}

fn send_ban_list(ctx: &mut Ctx, key: &str) {
    let Some(ch) = ctx.state.channels.get(key) else {
        return;
    };
    let shown = ch.name.clone();
    // A secret channel's bans are its members' business.
    let bans = if ch.modes.secret && !ch.members.contains_key(&ctx.id) {
        Vec::new()
    } else {
        ch.bans.clone()
    };
    for ban in bans {
        ctx.numeric(
            RPL_BANLIST,
            &format!("{shown} {} {} {}", ban.mask, ban.set_by, ban.set_ms / 1000),
        );
    }
    ctx.numeric(
        RPL_ENDOFBANLIST,
        &format!("{shown} :End of channel ban list"),
    );
}

fn user_mode(ctx: &mut Ctx, msg: &Message) {
    let target = msg.param(0);
    let Some(s) = ctx.state.find_nick(target) else {
        ctx.no_such_nick(target);
        return;
    };
    if s.id != ctx.id {
        ctx.numeric(ERR_USERSDONTMATCH, ":Can't change mode for other users");
        return;
    }
    if msg.param(1).is_empty() {
        let mut modes = String::from("+");
        if s.invisible {
            modes.push('i');
        }
        if s.oper.is_some() {
            modes.push('o');
        }
        ctx.numeric(RPL_UMODEIS, &modes);
        return;
    }
    let mut plus = true;
    let mut changes = Changes::default();
    let mut unknown = false;
    for mode in msg.param(1).chars() {
        let Some(me) = ctx.state.sessions.get_mut(&ctx.id) else {
            return;
        };
        match mode {
            '+' => plus = true,
            '-' => plus = false,
            'i' if me.invisible != plus => {
                me.invisible = plus;
                changes.push(plus, 'i', None);
            }
            // +o only through OPER.
            'o' if !plus && me.oper.is_some() => {
                me.oper = None;
                changes.push(false, 'o', None);
            }
            'i' | 'o' => {}
            _ => unknown = true,
        }
    }
    if unknown {
        ctx.numeric(ERR_UMODEUNKNOWNFLAG, ":Unknown MODE flag");
    }
    if !changes.flags.is_empty() {
        let nick = ctx.me().nick_or_star().to_owned();
        ctx.reply(format!(":{nick} MODE {nick} :{}", changes.render()));
    }
}
