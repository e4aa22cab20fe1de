//! Nick protection: a session using a registered nick without being logged in to its
//! account is told to identify, and renamed to a guest nick when the grace period ends.

use unsplit_services::{Action, Context, SessionId, casefold, notice};

use crate::state::{State, Warned};

/// After a session registered, changed nick or logged in or out (or a login failed):
/// warn it, or cancel its warning. A warning for the same nick (a case change) keeps
/// its deadline.
pub(crate) fn check(st: &mut State, ctx: &Context, out: &mut Vec<Action>, id: SessionId) {
    let grace_ms = st.settings.grace_period_ms;
    let enforce = st.settings.enforce;
    let Some(session) = st.sessions.get(&id) else {
        return;
    };
    let folded = casefold(&session.nick);
    if !st.accounts.contains_key(&folded) || session.is_logged_in_to(&folded) {
        if let Some(session) = st.sessions.get_mut(&id) {
            session.warned = None;
        }
        return;
    }
    if session.warned.as_ref().is_some_and(|w| w.nick == folded) {
        return;
    }
    // Logging in to it right now (`PASS nickserv=…`, an IDENTIFY or SASL whose hash is
    // being computed): the warning waits for the outcome.
    if st
        .pending
        .values()
        .any(|p| p.session == id && p.purpose.logs_in_to() == Some(folded.as_str()))
    {
        return;
    }
    let deadline_ms = enforce.then(|| ctx.time_ms.saturating_add(grace_ms));
    if let Some(session) = st.sessions.get_mut(&id) {
        session.warned = Some(Warned {
            nick: folded,
            deadline_ms,
        });
    }
    let text = if enforce {
        format!(
            "This nickname is registered. Please identify with /msg NickServ IDENTIFY \
             <password> within {}, or choose another nickname.",
            seconds(grace_ms)
        )
    } else {
        "This nickname is registered. Please identify with /msg NickServ IDENTIFY \
         <password>, or choose another nickname."
            .to_owned()
    };
    notice(out, id, text);
}

fn seconds(ms: u64) -> String {
    match ms.div_ceil(1000) {
        1 => "1 second".to_owned(),
        n => format!("{n} seconds"),
    }
}

/// On a tick: renames every session whose deadline passed and that still uses the nick
/// without being logged in to it. The warning stays until the rename comes back as a
/// nick change: the logic refuses a guest nick that turned out to be taken (an
/// unregistered session may hold it), and then the next tick tries the next one.
pub(crate) fn enforce(st: &mut State, ctx: &Context, out: &mut Vec<Action>) {
    if !st.settings.enforce {
        return;
    }
    let due: Vec<(SessionId, Warned)> = st
        .sessions
        .iter()
        .filter_map(|(id, s)| {
            let warned = s.warned.as_ref()?;
            let due = warned.deadline_ms.is_some_and(|d| ctx.time_ms >= d);
            due.then(|| (*id, warned.clone()))
        })
        .collect();
    for (id, warned) in due {
        let Some(session) = st.sessions.get(&id) else {
            continue;
        };
        let still = casefold(&session.nick) == warned.nick
            && st.accounts.contains_key(&warned.nick)
            && !session.is_logged_in_to(&warned.nick);
        if !still {
            if let Some(session) = st.sessions.get_mut(&id) {
                session.warned = None;
            }
            continue;
        }
        let name = st.display(&warned.nick);
        let guest = st.guest_nick();
        out.push(Action::ForceNick {
            session: id,
            nick: guest.clone(),
        });
        notice(
            out,
            id,
            format!("You did not identify for {name} in time; your nickname is now {guest}."),
        );
    }
}
