//! VOICE <#channel> [nick]: `+v` on the nick (default: the sender). Needs `v`.

use super::{Args, Call, ChannelArg, Command, set_status};
use crate::flags::Flags;

pub(crate) const COMMAND: Command = Command {
    name: "VOICE",
    min_args: 1,
    needs_login: true,
    channel: ChannelArg::Registered,
    flag: Some(Flags::VOICE),
    syntax: "VOICE <#channel> [nick]",
    summary: "Gives you or someone voice.",
    help: &["Gives you or someone voice. Needs the v flag on the channel."],
    handler,
};

fn handler(call: &mut Call<'_>, args: &Args<'_>) {
    set_status(call, args, "+v", "voiced");
}
