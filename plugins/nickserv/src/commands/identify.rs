//! IDENTIFY [account] <password> (alias LOGIN): logs in once the host's hash matches.

use unsplit_services::{Action, SessionId, casefold, notice};

use super::{Args, Call, Command};
use crate::hash;
use crate::state::{Purpose, State};

pub(crate) const COMMAND: Command = Command {
    name: "IDENTIFY",
    aliases: &["LOGIN"],
    min_args: 1,
    needs_login: false,
    syntax: "IDENTIFY [account] <password>",
    summary: "Logs you in to your account.",
    help: &[
        "Logs you in to an account: the one named like your current nickname, or the one given.",
    ],
    handler,
};

fn handler(call: &mut Call<'_>, args: &Args<'_>) {
    let (name, password) = match args.words.as_slice() {
        [password] => (call.from.nick.clone(), *password),
        _ => (
            args.get(0).unwrap_or_default().to_owned(),
            args.after_first(),
        ),
    };
    let folded = casefold(&name);
    if !call.st.accounts.contains_key(&folded) {
        call.reply(format!("{name} is not registered."));
        return;
    }
    if call.account().as_deref() == Some(folded.as_str()) {
        let text = format!("You are already logged in as {}.", call.st.display(&folded));
        call.reply(text);
        return;
    }
    let session = call.from.session;
    let purpose = Purpose::Identify { account: folded };
    if let Err(refusal) = hash::request_verify(
        call.st, call.ctx, call.out, session, &name, password, purpose,
    ) {
        call.reply(refusal.to_string());
    }
}

/// The password matched: log the session in.
pub(crate) fn complete(st: &mut State, out: &mut Vec<Action>, session: SessionId, folded: &str) {
    let name = st.display(folded);
    out.push(Action::SetAccount {
        session,
        account: Some(name.clone()),
    });
    notice(out, session, format!("You are now identified for {name}."));
}
