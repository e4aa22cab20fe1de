//! DROP <#channel>: unregisters a channel (a founder or an IRC operator).

use unsplit_services::Action;

use super::{Args, Call, ChannelArg, Command};

pub(crate) const COMMAND: Command = Command {
    name: "DROP",
    min_args: 1,
    needs_login: false,
    channel: ChannelArg::Registered,
    flag: None,
    syntax: "DROP <#channel>",
    summary: "Unregisters a channel.",
    help: &["Unregisters a channel and forgets its access list. Founders and IRC operators only."],
    handler,
};

fn handler(call: &mut Call<'_>, args: &Args<'_>) {
    let folded = args.folded(0);
    let Some(channel) = call.st.channels.get(&folded) else {
        return;
    };
    let name = channel.name.clone();
    if !call.from.oper && !call.flags(&folded).is_founder() {
        call.reply(format!(
            "Only a founder of {name} or an IRC operator can drop it."
        ));
        return;
    }
    call.st.channels.remove(&folded);
    call.out.push(Action::RegisterChannel {
        channel: name.clone(),
        registered: false,
    });
    call.reply(format!("{name} has been dropped."));
}
