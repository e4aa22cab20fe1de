//! TOPIC: show or change a channel's topic (RFC 2812 §3.2.4).

use super::registration::TOPICLEN;
use super::{Ctx, away::truncate};
use crate::casemap::fold;
use crate::message::Message;
use crate::numeric::*;
use crate::services;
use crate::state::Topic;
use unsplit_services::{Event, EventKind};

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let name = msg.param(0);
    if name.is_empty() {
        ctx.need_more_params("TOPIC");
        return;
    }
    let key = fold(name);
    let Some(ch) = ctx.state.channels.get(&key) else {
        ctx.no_such_channel(name);
        return;
    };
    let membership = ch.members.get(&ctx.id).copied();
    let shown = ch.name.clone();
    if msg.params.len() < 2 {
        if membership.is_none() && ch.modes.secret {
            ctx.no_such_channel(name);
        } else {
            send_topic(ctx, &key, true);
        }
        return;
    }
    let Some(membership) = membership else {
        ctx.not_on_channel(&shown);
        return;
    };
    if ch.modes.topic_ops && !membership.op {
        ctx.not_channel_operator(&shown);
        return;
    }
    let text = truncate(msg.param(1), TOPICLEN).to_owned();
    let me = ctx.me();
    let mask = me.mask();
    let set_by = me.nick_or_star().to_owned();
    let now = ctx.state.now_ms;
    let Some(ch) = ctx.state.channels.get_mut(&key) else {
        return;
    };
    ch.topic = if text.is_empty() {
        None
    } else {
        Some(Topic {
            text: text.clone(),
            set_by,
            set_ms: now,
        })
    };
    let members = ch.members.keys().copied().collect();
    ctx.out
        .send_sorted(members, format!(":{mask} TOPIC {shown} :{text}"));
    services::emit(ctx.state, ctx.out, EventKind::Topic, || Event::Topic {
        channel: shown,
        text,
        setter: mask,
    });
}

/// RPL_TOPIC + RPL_TOPICWHOTIME, or RPL_NOTOPIC when `say_none` (JOIN stays silent).
pub(crate) fn send_topic(ctx: &mut Ctx, key: &str, say_none: bool) {
    let Some(ch) = ctx.state.channels.get(key) else {
        return;
    };
    let shown = ch.name.clone();
    match ch.topic.clone() {
        Some(t) => {
            ctx.numeric(RPL_TOPIC, &format!("{shown} :{}", t.text));
            ctx.numeric(
                RPL_TOPICWHOTIME,
                &format!("{shown} {} {}", t.set_by, t.set_ms / 1000),
            );
        }
        None if say_none => ctx.numeric(RPL_NOTOPIC, &format!("{shown} :No topic is set")),
        None => {}
    }
}
