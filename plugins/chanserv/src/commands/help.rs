//! HELP [command]: the command list, or one command's syntax and description.

use super::{Args, COMMANDS, Call, ChannelArg, Command, SERVICE, lookup, shown};

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
    if let Some(word) = args.get(0) {
        let upper = word.to_ascii_uppercase();
        let Some(command) = lookup(&upper) else {
            call.reply(format!("No help available for {}.", shown(&upper)));
            return;
        };
        call.reply(format!("Syntax: {}", command.syntax));
        for line in command.help {
            call.reply(*line);
        }
        return;
    }
    call.reply(format!(
        "{SERVICE} keeps registered channels: their access lists, modes and topics."
    ));
    for command in COMMANDS {
        call.reply(format!("{:<8} {}", command.name, command.summary));
    }
    call.reply(format!(
        "Type /msg {SERVICE} HELP <command> for more about a command."
    ));
}
