//! TOPIC: show or change a channel's topic (RFC 2812 §3.2.4).

use super::registration::TOPICLEN;
use super::{Ctx, away::truncate};
use crate::casemap::fold;
use crate::message::Message;
use crate::numeric::*;
use crate::output::Output;
use crate::services;
use crate::state::{State, Topic};
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
    let text = truncate(msg.param(1), TOPICLEN);
    let me = ctx.me();
    let mask = me.mask();
    let set_by = me.nick_or_star().to_owned();
    set_topic(ctx.state, ctx.out, &key, text, &mask, &set_by, &mask);
}

/// Sets the topic of channel `key` to `text` (none when empty), recorded as set by
/// `set_by`, announced to the members from `source` and to services as set by `setter`.
pub(crate) fn set_topic(
    state: &mut State,
    out: &mut Output,
    key: &str,
    text: &str,
    source: &str,
    set_by: &str,
    setter: &str,
) {
    let now = state.now_ms;
    let Some(ch) = state.channels.get_mut(key) else {
        return;
    };
    ch.topic = (!text.is_empty()).then(|| Topic {
        text: text.to_owned(),
        set_by: set_by.to_owned(),
        set_ms: now,
    });
    let shown = ch.name.clone();
    let members = ch.members.keys().copied().collect();
    out.send_sorted(members, format!(":{source} TOPIC {shown} :{text}"));
    services::emit(state, out, EventKind::Topic, || Event::Topic {
        channel: shown,
        text: text.to_owned(),
        setter: setter.to_owned(),
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
