//! What ChanServ does on its own: auto-op/voice on join and on login, topic retention,
//! and forgetting dropped accounts.

use unsplit_services::{Action, ChannelStatus, User, casefold};

use crate::flags::Flags;
use crate::state::{State, Topic};

/// `+o` for `O`, else `+v` for `V`, unless the user already has that (or more).
fn auto_mode(flags: Flags, status: Option<&ChannelStatus>) -> Option<&'static str> {
    let (op, voice) = status.map_or((false, false), |s| (s.op, s.voice));
    if flags.contains(Flags::AUTO_OP) && !op {
        Some("+o")
    } else if flags.contains(Flags::AUTO_VOICE) && !op && !voice {
        Some("+v")
    } else {
        None
    }
}

/// A join: the retained topic if the channel was empty, then auto-op/voice.
pub(crate) fn join(st: &State, out: &mut Vec<Action>, user: &User, channel: &str, created: bool) {
    let Some(registered) = st.channels.get(&casefold(channel)) else {
        return;
    };
    if created && let Some(topic) = &registered.topic {
        out.push(Action::SetTopic {
            channel: registered.name.clone(),
            text: topic.text.clone(),
        });
    }
    let flags = registered.flags(user.account.as_deref());
    if let Some(modes) = auto_mode(flags, None) {
        out.push(Action::ChannelMode {
            channel: registered.name.clone(),
            modes: modes.into(),
            args: vec![user.nick.clone()],
        });
    }
}

/// A login: auto-op/voice in every registered channel the user is in.
pub(crate) fn account_change(
    st: &State,
    out: &mut Vec<Action>,
    user: &User,
    channels: &[ChannelStatus],
) {
    if user.account.is_none() {
        return;
    }
    for status in channels {
        let Some(registered) = st.channels.get(&casefold(&status.channel)) else {
            continue;
        };
        let flags = registered.flags(user.account.as_deref());
        if let Some(modes) = auto_mode(flags, Some(status)) {
            out.push(Action::ChannelMode {
                channel: registered.name.clone(),
                modes: modes.into(),
                args: vec![user.nick.clone()],
            });
        }
    }
}

/// A topic change in a registered channel is remembered (an empty one forgets it).
pub(crate) fn topic(st: &mut State, channel: &str, text: &str, setter: &str) {
    let Some(registered) = st.channels.get_mut(&casefold(channel)) else {
        return;
    };
    registered.topic = (!text.is_empty()).then(|| Topic {
        text: text.to_owned(),
        setter: setter.to_owned(),
    });
}

/// An account was dropped: it leaves every access list, and a channel left without a
/// founder is dropped (unregistered) with it.
pub(crate) fn account_dropped(st: &mut State, out: &mut Vec<Action>, account: &str) {
    let folded = casefold(account);
    let mut orphans = Vec::new();
    for (key, channel) in &mut st.channels {
        if channel.access.remove(&folded).is_some() && channel.founders().is_empty() {
            orphans.push(key.clone());
        }
    }
    for key in orphans {
        if let Some(channel) = st.channels.remove(&key) {
            out.push(Action::RegisterChannel {
                channel: channel.name,
                registered: false,
            });
        }
    }
}
