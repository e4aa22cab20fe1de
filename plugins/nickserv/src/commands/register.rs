//! REGISTER <password> [email]: registers the sender's current nick as an account. The
//! account exists once the host has hashed the password (a later entry).

use unsplit_services::casefold;

use super::{Args, Call, Command, check_new_password, valid_email};
use crate::hash::{self, NewPassword};

pub(crate) const COMMAND: Command = Command {
    name: "REGISTER",
    aliases: &[],
    min_args: 1,
    needs_login: false,
    syntax: "REGISTER <password> [email]",
    summary: "Registers your current nickname.",
    help: &[
        "Registers your current nickname as an account with this password and logs you in.",
        "The email address is optional; only you and IRC operators can see it.",
    ],
    handler,
};

fn handler(call: &mut Call<'_>, args: &Args<'_>) {
    let nick = call.from.nick.clone();
    let password = args.get(0).unwrap_or_default();
    if let Some(account) = &call.from.account {
        let text = format!("You are already logged in as {account}.");
        call.reply(text);
        return;
    }
    if call.st.accounts.contains_key(&casefold(&nick)) {
        call.reply(format!("{nick} is already registered."));
        return;
    }
    if let Err(refusal) = check_new_password(call.st, &nick, password) {
        call.reply(refusal);
        return;
    }
    let email = args.get(1).map(str::to_owned);
    if let Some(email) = &email
        && !valid_email(email)
    {
        call.reply(format!("{email} is not a valid email address."));
        return;
    }
    let purpose = NewPassword::Register {
        account: nick,
        email,
    };
    let session = call.from.session;
    if let Err(refusal) = hash::request_new(call.st, call.ctx, call.out, session, password, purpose)
    {
        call.reply(refusal.to_string());
    }
}
