//! INFO [nick]: an account's registration date and whether it is in use now. The email
//! address is shown only to the account's owner and to IRC operators.

use unsplit_services::casefold;

use super::{Args, Call, Command};

pub(crate) const COMMAND: Command = Command {
    name: "INFO",
    aliases: &[],
    min_args: 0,
    needs_login: false,
    syntax: "INFO [nick]",
    summary: "Shows information about a registered nickname.",
    help: &["Shows when a nickname was registered and whether it is in use now."],
    handler,
};

fn handler(call: &mut Call<'_>, args: &Args<'_>) {
    let name = args
        .get(0)
        .map(str::to_owned)
        .or_else(|| call.from.account.clone())
        .unwrap_or_else(|| call.from.nick.clone());
    let folded = casefold(&name);
    let Some(account) = call.st.accounts.get(&folded) else {
        call.reply(format!("{name} is not registered."));
        return;
    };
    let display = account.name.clone();
    let registered = unsplit_services::utc_date(account.registered_ms);
    let email = account.email.clone();
    let status = if !call.st.logged_in(&folded).is_empty() {
        "logged in now"
    } else if call.st.session_by_nick(&folded).is_some() {
        "the nickname is in use, not logged in"
    } else {
        "offline"
    };
    let privileged = call.from.oper || call.account().as_deref() == Some(folded.as_str());
    call.reply(format!("Information on {display}:"));
    call.reply(format!("Registered: {registered}"));
    call.reply(format!("Status: {status}"));
    if privileged {
        call.reply(format!("Email: {}", email.as_deref().unwrap_or("none")));
    }
    call.reply(format!("End of information on {display}."));
}
