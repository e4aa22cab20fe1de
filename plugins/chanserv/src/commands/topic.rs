//! TOPIC <#channel> <text>: sets the topic as ChanServ. Needs `t`.

use unsplit_services::Action;

use super::{Args, Call, ChannelArg, Command, channel};
use crate::flags::Flags;

pub(crate) const COMMAND: Command = Command {
    name: "TOPIC",
    min_args: 2,
    needs_login: true,
    channel: ChannelArg::Registered,
    flag: Some(Flags::TOPIC),
    syntax: "TOPIC <#channel> <text>",
    summary: "Sets a channel's topic.",
    help: &["Sets a channel's topic. Needs the t flag on the channel."],
    handler,
};

fn handler(call: &mut Call<'_>, args: &Args<'_>) {
    let Some(channel) = channel(call.st, args) else {
        return;
    };
    let name = channel.name.clone();
    call.out.push(Action::SetTopic {
        channel: name.clone(),
        text: args.after_first().to_owned(),
    });
    call.reply(format!("The topic of {name} has been set."));
}
