//! KILL: an operator ends another user's session (RFC 2812 §3.7.1).

use super::away::truncate;
use super::registration::KICKLEN;
use super::{Ctx, quit};
use crate::SessionId;
use crate::message::Message;
use crate::output::Output;
use crate::state::State;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let target = msg.param(0);
    let Some(victim) = ctx.state.find_nick(target) else {
        ctx.no_such_nick(target);
        return;
    };
    let victim_id = victim.id;
    kill(ctx, victim_id, msg.param(1));
}

/// Ends `victim` as killed by the sender (see [`kill_by`]).
pub(crate) fn kill(ctx: &mut Ctx, victim: SessionId, reason: &str) {
    let me = ctx.me();
    let (killer, mask) = (me.nick_or_star().to_owned(), me.mask());
    kill_by(ctx.state, ctx.out, &mask, &killer, victim, reason);
}

/// Ends `victim` as killed by `killer` (a nick; `source` is its mask): the victim gets
/// `KILL` (when registered: an unregistered client only gets `ERROR`, as on common
/// servers) and `ERROR`, its channel peers `QUIT :Killed (<killer> (<reason>))`. The
/// reason is cut like a KICK reason, so the KILL line stays within 512 bytes; an empty
/// one is `No reason given`.
pub(crate) fn kill_by(
    state: &mut State,
    out: &mut Output,
    source: &str,
    killer: &str,
    victim: SessionId,
    reason: &str,
) {
    let Some(v) = state.sessions.get(&victim) else {
        return;
    };
    let reason = match truncate(reason, KICKLEN) {
        "" => "No reason given",
        r => r,
    };
    if v.registered {
        let line = format!(":{source} KILL {} :{reason}", v.nick_or_star());
        out.send(victim, line);
    }
    quit::end_session(state, out, victim, &format!("Killed ({killer} ({reason}))"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Session;

    #[test]
    fn an_unregistered_victim_gets_only_error() {
        let mut state = State::default();
        for (id, registered) in [(1, false), (2, true)] {
            let nick = Some(format!("n{id}"));
            let session = Session {
                id,
                nick,
                registered,
                ..Default::default()
            };
            state.sessions.insert(id, session);
        }
        let mut out = Output::default();
        kill_by(&mut state, &mut out, "S!S@srv", "S", 1, "");
        kill_by(&mut state, &mut out, "S!S@srv", "S", 2, "");
        let outcome = out.finish_step().outcome;
        let lines: Vec<&str> = outcome.lines.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(
            lines,
            [
                "ERROR :Closing Link: unsplit/0x1 (Killed (S (No reason given)))",
                ":S!S@srv KILL n2 :No reason given",
                "ERROR :Closing Link: unsplit/0x2 (Killed (S (No reason given)))",
            ]
        );
        assert_eq!(outcome.closed, [1, 2]);
    }
}
