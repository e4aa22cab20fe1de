//! QUIT: end the session (RFC 2812 §3.1.7), and the one way every session ends (QUIT,
//! DELETE from the client, KILL, expiry).

use super::Ctx;
use super::away::truncate;
use crate::SessionId;
use crate::message::Message;
use crate::output::Output;
use crate::services;
use crate::state::State;
use unsplit_services::{Event, EventKind};

/// Longest quit reason in bytes (longer ones are cut): the QUIT relayed to peers and the
/// ERROR line then stay within 512 bytes even for the longest nick, username and host,
/// whatever the client or the host (delete-session) sent.
pub(crate) const QUITLEN: usize = 400;

/// A client-chosen reason is prefixed so it cannot pose as a server reason. A quit message
/// from a delete-session entry has not been through line parsing, so it is cut at its first
/// CR or LF and loses NUL bytes here (it must never split or break the QUIT line).
pub(crate) fn client_reason(message: &str) -> String {
    let message: String = message
        .split(['\r', '\n'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|&c| c != '\0')
        .collect();
    if message.is_empty() {
        "Client Quit".to_owned()
    } else {
        format!("Quit: {message}")
    }
}

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let reason = client_reason(msg.param(0));
    end_session(ctx.state, ctx.out, ctx.id, &reason);
}

/// Announces the quit to everyone who shares a channel, sends ERROR to the session,
/// remembers the nick for WHOWAS and forgets the session.
pub(crate) fn end_session(state: &mut State, out: &mut Output, id: SessionId, reason: &str) {
    end_session_with(state, out, id, reason, None);
}

/// [`end_session`] with the ERROR line's text after `Closing Link: ` given (cut like a
/// reason), instead of `<host> (<reason>)`.
pub(crate) fn end_session_with(
    state: &mut State,
    out: &mut Output,
    id: SessionId,
    reason: &str,
    error: Option<&str>,
) {
    let Some(session) = state.sessions.get(&id).cloned() else {
        return;
    };
    let reason = truncate(reason, QUITLEN);
    if session.registered {
        let peers = state.common_channel_peers(id, false);
        out.send_all(&peers, format!(":{} QUIT :{reason}", session.mask()));
        state.record_whowas(&session);
        services::emit(state, out, EventKind::Quit, || {
            Event::Quit(services::user(&session))
        });
    }
    let error = match error {
        Some(text) => truncate(text, QUITLEN).to_owned(),
        None => format!("{} ({reason})", session.host()),
    };
    out.send(id, format!("ERROR :Closing Link: {error}"));
    state.remove_session(id);
    out.close(id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_reasons_stay_on_one_line() {
        assert_eq!(client_reason(""), "Client Quit");
        assert_eq!(client_reason("bye"), "Quit: bye");
        assert_eq!(client_reason("a\r\nPRIVMSG #x :hi"), "Quit: a");
        assert_eq!(client_reason("a\0b"), "Quit: ab");
        assert_eq!(client_reason("\nx"), "Client Quit");
    }

    #[test]
    fn long_reasons_are_cut() {
        let mut state = State::default();
        state.sessions.insert(
            1,
            crate::state::Session {
                id: 1,
                ..Default::default()
            },
        );
        let mut out = Output::default();
        end_session(&mut state, &mut out, 1, &"é".repeat(300));
        let outcome = out.finish_step().outcome;
        assert_eq!(outcome.closed, vec![1]);
        let line = &outcome.lines[0].line;
        assert!(line.len() < 510, "{}", line.len());
        assert!(line.ends_with("éé)"), "{line}");
    }
}
