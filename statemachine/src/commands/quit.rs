//! QUIT: end the session (RFC 2812 §3.1.7), and the one way every session ends (QUIT,
//! DELETE from the client, KILL, expiry).

use super::Ctx;
use crate::SessionId;
use crate::message::Message;
use crate::output::Output;
use crate::state::State;

/// A client-chosen reason is prefixed so it cannot pose as a server reason.
pub(crate) fn client_reason(message: &str) -> String {
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
    let Some(session) = state.sessions.get(&id).cloned() else {
        return;
    };
    if session.registered {
        let peers = state.common_channel_peers(id, false);
        out.to_all(&peers, format!(":{} QUIT :{reason}", session.mask()));
        state.record_whowas(&session);
    }
    out.to(
        id,
        format!("ERROR :Closing Link: {} ({reason})", session.host()),
    );
    state.remove_session(id);
    out.close(id);
}
