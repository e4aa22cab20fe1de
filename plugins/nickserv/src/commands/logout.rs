//! LOGOUT: logs the sender out of its account.

use unsplit_services::Action;

use super::{Args, Call, Command};

pub(crate) const COMMAND: Command = Command {
    name: "LOGOUT",
    aliases: &[],
    min_args: 0,
    needs_login: true,
    syntax: "LOGOUT",
    summary: "Logs you out of your account.",
    help: &["Logs you out of your account. Your nickname stays."],
    handler,
};

fn handler(call: &mut Call<'_>, _args: &Args<'_>) {
    call.out.push(Action::SetAccount {
        session: call.from.session,
        account: None,
    });
    call.reply("You have been logged out.");
}
