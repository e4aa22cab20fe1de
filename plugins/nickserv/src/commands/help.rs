//! HELP [command]: the command list, or one command's syntax and description.

use super::{Args, COMMANDS, Call, Command, SERVICE, lookup};

pub(crate) const COMMAND: Command = Command {
    name: "HELP",
    aliases: &[],
    min_args: 0,
    needs_login: false,
    syntax: "HELP [command]",
    summary: "Shows this list, or help on a command.",
    help: &["Shows the commands, or the syntax and description of one."],
    handler,
};

fn handler(call: &mut Call<'_>, args: &Args<'_>) {
    if let Some(word) = args.get(0) {
        let upper = word.to_ascii_uppercase();
        let Some(command) = lookup(&upper) else {
            let shown: String = upper.chars().take(32).collect();
            call.reply(format!("No help available for {shown}."));
            return;
        };
        call.reply(format!("Syntax: {}", command.syntax));
        for line in command.help {
            call.reply(*line);
        }
        if !command.aliases.is_empty() {
            call.reply(format!("Also: {}", command.aliases.join(", ")));
        }
        return;
    }
    call.reply(format!(
        "{SERVICE} lets you register your nickname as an account and log in to it."
    ));
    for command in COMMANDS {
        call.reply(format!("{:<9} {}", command.name, command.summary));
    }
    call.reply(format!(
        "Type /msg {SERVICE} HELP <command> for more about a command."
    ));
}
