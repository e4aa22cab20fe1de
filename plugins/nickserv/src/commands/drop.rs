//! DROP [account] [password]: unregisters an account; the IRC logic logs out every
//! session logged in to it and tells the other services (ChanServ forgets it).

use unsplit_services::{Action, SessionId, casefold, notice};

use super::{Args, Call, Command};
use crate::hash;
use crate::state::{Purpose, State};

pub(crate) const COMMAND: Command = Command {
    name: "DROP",
    aliases: &[],
    min_args: 0,
    needs_login: false,
    syntax: "DROP [account] [password]",
    summary: "Unregisters your account.",
    help: &[
        "Unregisters an account for good and logs out everyone logged in to it.",
        "You must be logged in to the account, or give its password.",
    ],
    handler,
};

fn handler(call: &mut Call<'_>, args: &Args<'_>) {
    let name = match (args.get(0), &call.from.account) {
        (Some(name), _) => name.to_owned(),
        (None, Some(account)) => account.clone(),
        (None, None) => {
            call.reply("You are not logged in; use DROP <account> <password>.");
            return;
        }
    };
    let folded = casefold(&name);
    if !call.st.accounts.contains_key(&folded) {
        call.reply(format!("{name} is not registered."));
        return;
    }
    let session = call.from.session;
    if call.account().as_deref() == Some(folded.as_str()) {
        complete(call.st, call.out, session, &folded);
        return;
    }
    let password = args.after_first();
    if password.is_empty() {
        let display = call.st.display(&folded);
        call.reply(format!(
            "To drop {display}, log in to it or give its password: DROP {display} <password>"
        ));
        return;
    }
    let purpose = Purpose::Drop { account: folded };
    if let Err(refusal) = hash::request_verify(
        call.st, call.ctx, call.out, session, &name, password, purpose,
    ) {
        call.reply(refusal.to_string());
    }
}

/// Authorised: remove the account. The IRC logic logs out every session of it
/// (`DropAccount`) and tells the other services, so nothing keeps referring to it.
pub(crate) fn complete(st: &mut State, out: &mut Vec<Action>, session: SessionId, folded: &str) {
    let Some(account) = st.accounts.remove(folded) else {
        notice(out, session, format!("{folded} is not registered."));
        return;
    };
    st.failures.remove(folded);
    let name = account.name;
    notice(
        out,
        session,
        format!("The account {name} has been dropped."),
    );
    out.push(Action::DropAccount(name.clone()));
    for id in st.logged_in(folded) {
        if id != session {
            notice(
                out,
                id,
                format!("You have been logged out: the account {name} was dropped."),
            );
        }
        if let Some(s) = st.sessions.get_mut(&id) {
            s.account = None;
        }
    }
}
