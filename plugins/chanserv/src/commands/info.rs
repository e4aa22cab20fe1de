//! INFO <#channel>: founders, registration date and the retained topic.

use super::{Args, Call, ChannelArg, Command, channel};

pub(crate) const COMMAND: Command = Command {
    name: "INFO",
    min_args: 1,
    needs_login: false,
    channel: ChannelArg::Registered,
    flag: None,
    syntax: "INFO <#channel>",
    summary: "Shows information about a registered channel.",
    help: &["Shows a registered channel's founders, registration date and topic."],
    handler,
};

fn handler(call: &mut Call<'_>, args: &Args<'_>) {
    let Some(channel) = channel(call.st, args) else {
        return;
    };
    let founders = channel.founders().join(", ");
    let lines = [
        format!("Information on {}:", channel.name),
        format!(
            "Founder: {}",
            if founders.is_empty() {
                "none"
            } else {
                &founders
            }
        ),
        format!(
            "Registered: {}",
            unsplit_services::utc_date(channel.registered_ms)
        ),
        match &channel.topic {
            Some(topic) => format!("Topic: {} (set by {})", topic.text, topic.setter),
            None => "Topic: none".to_owned(),
        },
        format!("End of information on {}.", channel.name),
    ];
    for line in lines {
        call.reply(line);
    }
}
