//! REGAIN <nick> [password] (alias RECOVER): takes your registered nick back. The
//! session using it is renamed to a guest nick first, then the sender gets the nick;
//! the IRC logic announces both like ordinary NICKs (RobustIRC's services did not).

use unsplit_services::{Action, SessionId, casefold, notice};

use super::{Args, Call, Command};
use crate::hash;
use crate::state::{Purpose, State};

pub(crate) const COMMAND: Command = Command {
    name: "REGAIN",
    aliases: &["RECOVER"],
    min_args: 1,
    needs_login: false,
    syntax: "REGAIN <nick> [password]",
    summary: "Takes your nickname back from whoever uses it.",
    help: &[
        "Renames the session using your registered nickname to a guest nick and gives you",
        "the nickname. With the password it also logs you in; without it you must be",
        "logged in to the account already.",
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
    let logged_in = call.account().as_deref() == Some(folded.as_str());
    if casefold(&call.from.nick) == folded && logged_in {
        call.reply(format!("You already have the nickname {name}."));
        return;
    }
    let session = call.from.session;
    if logged_in {
        complete(call.st, call.out, session, &folded, false);
        return;
    }
    let password = args.after_first();
    if password.is_empty() {
        call.reply(format!(
            "You are not logged in to {name}; use REGAIN {name} <password>."
        ));
        return;
    }
    let purpose = Purpose::Regain { account: folded };
    if let Err(refusal) = hash::request_verify(
        call.st, call.ctx, call.out, session, nick, password, purpose,
    ) {
        call.reply(refusal.to_string());
    }
}

/// Authorised: rename the holder (if another session), log in (`login`), take the nick.
/// The login comes before the nick change, so the new nick is never seen unidentified.
pub(crate) fn complete(
    st: &mut State,
    out: &mut Vec<Action>,
    session: SessionId,
    folded: &str,
    login: bool,
) {
    let name = st.display(folded);
    let holder = st.session_by_nick(folded);
    if let Some(holder) = holder.filter(|&h| h != session) {
        let guest = st.guest_nick();
        out.push(Action::ForceNick {
            session: holder,
            nick: guest.clone(),
        });
        notice(
            out,
            holder,
            format!(
                "The owner of {name} has taken the nickname back; your nickname is now {guest}."
            ),
        );
    }
    if login {
        super::identify::complete(st, out, session, folded);
    }
    if holder == Some(session) {
        return;
    }
    out.push(Action::ForceNick {
        session,
        nick: name.clone(),
    });
    notice(
        out,
        session,
        format!("You have regained the nickname {name}."),
    );
}
