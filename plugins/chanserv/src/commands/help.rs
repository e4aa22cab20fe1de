//! HELP [command]: the command list, or one command's syntax and description.

use super::{Args, COMMANDS, Call, ChannelArg, Command};

pub(crate) const COMMAND: Command = Command {
    name: "HELP",
    min_args: 0,
    needs_login: false,
    channel: ChannelArg::None,
    flag: None,
    syntax: "HELP [command]",
    summary: "Shows this list, or help on a command.",
    help: &["Shows the commands, or the syntax and description of one."],
    handler,
};

fn handler(call: &mut Call<'_>, args: &Args<'_>) {
    COMMANDS.help(args.get(0), call.out, call.from.session);
}
