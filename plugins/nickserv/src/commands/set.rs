//! SET PASSWORD <new> | SET EMAIL [address]: changes the sender's account.

use unsplit_services::shown;

use super::{Args, Call, Command, check_new_password, valid_email};
use crate::hash::{self, NewPassword};

pub(crate) const COMMAND: Command = Command {
    name: "SET",
    aliases: &[],
    min_args: 1,
    needs_login: true,
    syntax: "SET PASSWORD <password> | SET EMAIL [address]",
    summary: "Changes your password or email address.",
    help: &[
        "SET PASSWORD <password> changes your account's password.",
        "SET EMAIL <address> sets your email address; SET EMAIL alone removes it.",
    ],
    handler,
};

fn handler(call: &mut Call<'_>, args: &Args<'_>) {
    let Some(folded) = call.account() else {
        return;
    };
    let Some(account) = call.st.accounts.get(&folded) else {
        call.reply("Your account is not registered any more.");
        return;
    };
    let name = account.name.clone();
    let option = args.get(0).unwrap_or_default().to_ascii_uppercase();
    match option.as_str() {
        "PASSWORD" => {
            let Some(password) = args.get(1) else {
                call.reply("Syntax: SET PASSWORD <password>");
                return;
            };
            if let Err(refusal) = check_new_password(call.st, &name, password) {
                call.reply(refusal);
                return;
            }
            let session = call.from.session;
            let purpose = NewPassword::SetPassword { account: folded };
            if let Err(refusal) =
                hash::request_new(call.st, call.ctx, call.out, session, password, purpose)
            {
                call.reply(refusal.to_string());
            }
        }
        "EMAIL" => {
            let email = args.get(1).map(str::to_owned);
            if let Some(email) = &email
                && !valid_email(email)
            {
                call.reply(format!("{email} is not a valid email address."));
                return;
            }
            let text = match &email {
                Some(email) => format!("The email address of {name} is now {email}."),
                None => format!("The email address of {name} has been removed."),
            };
            if let Some(account) = call.st.accounts.get_mut(&folded) {
                account.email = email;
            }
            call.reply(text);
        }
        _ => {
            call.reply(format!("Unknown SET option {}.", shown(&option)));
            call.reply(format!("Syntax: {}", COMMAND.syntax));
        }
    }
}
