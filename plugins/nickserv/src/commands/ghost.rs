//! GHOST <nick> [password]: disconnects another session using one of your nicks.

use unsplit_services::{Action, SessionId, casefold, notice};

use super::{Args, Call, Command};
use crate::hash;
use crate::state::{Purpose, State};

pub(crate) const COMMAND: Command = Command {
    name: "GHOST",
    aliases: &[],
    min_args: 1,
    needs_login: false,
    syntax: "GHOST <nick> [password]",
    summary: "Disconnects a session using your nickname.",
    help: &[
        "Disconnects another session that uses your registered nickname, e.g. a client",
        "that lost its connection. Without the password you must be logged in to the account.",
    ],
    handler,
};

fn handler(call: &mut Call<'_>, args: &Args<'_>) {
    let nick = args.get(0).unwrap_or_default();
    let folded = casefold(nick);
    if !call.st.accounts.contains_key(&folded) {
        call.reply(format!("{nick} is not registered."));
        return;
    }
    let name = call.st.display(&folded);
    match call.st.session_by_nick(&folded) {
        None => {
            call.reply(format!("{name} is not online."));
            return;
        }
        Some(holder) if holder == call.from.session => {
            call.reply("You cannot ghost yourself.");
            return;
        }
        Some(_) => {}
    }
    let session = call.from.session;
    if call.account().as_deref() == Some(folded.as_str()) {
        complete(call.st, call.out, session, &folded);
        return;
    }
    let password = args.after_first();
    if password.is_empty() {
        call.reply(format!(
            "You are not logged in to {name}; use GHOST {name} <password>."
        ));
        return;
    }
    let purpose = Purpose::Ghost { account: folded };
    if let Err(refusal) = hash::request_verify(
        call.st, call.ctx, call.out, session, nick, password, purpose,
    ) {
        call.reply(refusal.to_string());
    }
}

/// Authorised: kill the session using the nick (looked up again, as time has passed).
pub(crate) fn complete(st: &mut State, out: &mut Vec<Action>, session: SessionId, folded: &str) {
    let name = st.display(folded);
    let Some(holder) = st.session_by_nick(folded).filter(|&h| h != session) else {
        notice(out, session, format!("{name} is not online."));
        return;
    };
    let by = st
        .sessions
        .get(&session)
        .map_or_else(String::new, |s| s.nick.clone());
    out.push(Action::Kill {
        session: holder,
        reason: format!("GHOST command used by {by}"),
    });
    notice(out, session, format!("{name} has been ghosted."));
}
