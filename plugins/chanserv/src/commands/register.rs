//! REGISTER <#channel>: registers a channel the sender is an operator in; the sender
//! becomes its founder with every flag.

use std::collections::BTreeMap;

use unsplit_services::{Action, casefold};

use super::{Args, Call, ChannelArg, Command};
use crate::flags::Flags;
use crate::state::{Access, Channel};

pub(crate) const COMMAND: Command = Command {
    name: "REGISTER",
    min_args: 1,
    needs_login: true,
    channel: ChannelArg::Any,
    flag: None,
    syntax: "REGISTER <#channel>",
    summary: "Registers a channel you are an operator in.",
    help: &[
        "Registers a channel you are an operator in. You become its founder: you keep",
        "every flag, and the channel stays when everyone has left.",
    ],
    handler,
};

fn handler(call: &mut Call<'_>, args: &Args<'_>) {
    let typed = args.get(0).unwrap_or_default();
    let folded = casefold(typed);
    let Some(account) = call.from.account.clone() else {
        return;
    };
    if let Some(channel) = call.st.channels.get(&folded) {
        let text = format!("{} is already registered.", channel.name);
        call.reply(text);
        return;
    }
    let Some(status) = call.status(&folded) else {
        call.reply(format!("You are not on {typed}."));
        return;
    };
    let name = status.channel.clone();
    if !status.op {
        call.reply(format!(
            "You must be a channel operator in {name} to register it."
        ));
        return;
    }
    let founder = Access {
        account: account.clone(),
        flags: Flags::ALL,
    };
    call.st.channels.insert(
        folded,
        Channel {
            name: name.clone(),
            registered_ms: call.ctx.time_ms,
            access: BTreeMap::from([(casefold(&account), founder)]),
            topic: None,
        },
    );
    call.out.push(Action::RegisterChannel {
        channel: name.clone(),
        registered: true,
    });
    call.reply(format!("{name} is now registered to {account}."));
}
