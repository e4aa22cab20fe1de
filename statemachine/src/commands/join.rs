//! JOIN: enter channels, creating them as needed; `JOIN 0` leaves all (RFC 2812 §3.2.1).

use super::{Ctx, names, topic};
use crate::casemap::{fold, wildcard_match};
use crate::message::Message;
use crate::numeric::*;
use crate::ratelimit;
use crate::services;
use crate::state::{Channel, ChannelModes, Membership};
use unsplit_services::{Event, EventKind, valid_channel_name};

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    if msg.param(0).is_empty() {
        ctx.need_more_params("JOIN");
        return;
    }
    if msg.param(0) == "0" {
        let mask = ctx.me().mask();
        for key in ctx.me().channels.clone() {
            if let Some(ch) = ctx.state.channels.get(&key) {
                let line = format!(":{mask} PART {}", ch.name);
                let members = ch.members.keys().copied().collect();
                ctx.out.send_sorted(members, line);
            }
            ctx.state.leave_channel(ctx.id, &key);
        }
        return;
    }
    let mut keys = msg.param(1).split(',');
    for name in msg.param(0).split(',') {
        let key = keys.next().unwrap_or("");
        if name.is_empty() {
            continue;
        }
        join_one(ctx, name, key);
    }
}

fn join_one(ctx: &mut Ctx, name: &str, given_key: &str) {
    if !valid_channel_name(name) {
        ctx.numeric(ERR_NOSUCHCHANNEL, &format!("{name} :No such channel"));
        return;
    }
    let folded = fold(name);
    let me = ctx.me();
    if me.channels.contains(&folded) {
        return;
    }
    let flood = &ctx.state.config.flood;
    let (burst, interval) = (flood.joins, flood.join_interval);
    let now = ctx.state.now_ms;
    if ratelimit::wait_ms(me.join_tat_ms, now, burst, interval) > 0 {
        ctx.numeric(
            ERR_TOOMANYJOINS,
            &format!("{name} :Too many join requests. Please wait a while and try again."),
        );
        return;
    }
    let per_session = ctx.state.config.max_channels_per_session as usize;
    if per_session > 0 && me.channels.len() >= per_session {
        ctx.numeric(
            ERR_TOOMANYCHANNELS,
            &format!("{name} :You have joined too many channels"),
        );
        return;
    }
    let mask = me.mask();
    let invited = me.invited_to.contains(&folded);
    let created = ctx
        .state
        .channels
        .get(&folded)
        .is_none_or(|ch| ch.members.is_empty());
    match ctx.state.channels.get(&folded) {
        Some(ch) => {
            let speaking = Membership::default();
            let refusal = if ch.bans.iter().any(|b| wildcard_match(&b.mask, &mask)) && !invited {
                Some((ERR_BANNEDFROMCHAN, "+b"))
            } else if ch.modes.invite_only && !invited {
                Some((ERR_INVITEONLYCHAN, "+i"))
            } else if ch.modes.key.as_deref().is_some_and(|k| k != given_key) {
                Some((ERR_BADCHANNELKEY, "+k"))
            } else if ch
                .modes
                .limit
                .is_some_and(|l| ch.members.len() >= l as usize)
            {
                Some((ERR_CHANNELISFULL, "+l"))
            } else {
                None
            };
            if let Some((code, mode)) = refusal {
                let shown = ch.name.clone();
                ctx.numeric(code, &format!("{shown} :Cannot join channel ({mode})"));
                return;
            }
            if let Some(ch) = ctx.state.channels.get_mut(&folded) {
                ch.members.insert(ctx.id, speaking);
                ch.invites.remove(&ctx.id);
            }
        }
        None => {
            let max = ctx.state.config.max_channels as usize;
            if max > 0 && ctx.state.channels.len() >= max {
                ctx.numeric(
                    ERR_TOOMANYCHANNELS,
                    &format!("{name} :The network has too many channels"),
                );
                return;
            }
            let mut members = std::collections::BTreeMap::new();
            members.insert(
                ctx.id,
                Membership {
                    op: true,
                    voice: false,
                },
            );
            let modes = ChannelModes {
                no_external: true,
                topic_ops: true,
                ..ChannelModes::default()
            };
            ctx.state.channels.insert(
                folded.clone(),
                Channel {
                    name: name.to_owned(),
                    created_ms: now,
                    members,
                    modes,
                    ..Channel::default()
                },
            );
        }
    }
    if let Some(s) = ctx.me_mut() {
        s.channels.insert(folded.clone());
        s.invited_to.remove(&folded);
        ratelimit::take(&mut s.join_tat_ms, now, interval);
    }
    let Some(ch) = ctx.state.channels.get(&folded) else {
        return;
    };
    let shown = ch.name.clone();
    let members = ch.members.keys().copied().collect();
    ctx.out
        .send_sorted(members, format!(":{mask} JOIN {shown}"));
    topic::send_topic(ctx, &folded, false);
    names::send(ctx, &shown);
    let (state, id) = (&*ctx.state, ctx.id);
    services::emit(state, ctx.out, EventKind::Join, || Event::Join {
        user: services::session_user(state, id),
        channel: shown,
        created,
    });
}
