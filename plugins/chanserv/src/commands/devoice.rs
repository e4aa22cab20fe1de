//! DEVOICE <#channel> [nick]: `-v` on the nick (default: the sender). Needs `v`.

use super::{Args, Call, ChannelArg, Command, set_status};
use crate::flags::Flags;

pub(crate) const COMMAND: Command = Command {
    name: "DEVOICE",
    min_args: 1,
    needs_login: true,
    channel: ChannelArg::Registered,
    flag: Some(Flags::VOICE),
    syntax: "DEVOICE <#channel> [nick]",
    summary: "Takes voice from you or someone.",
    help: &["Takes voice from you or someone. Needs the v flag on the channel."],
    handler,
};

fn handler(call: &mut Call<'_>, args: &Args<'_>) {
    set_status(call, args, "-v", "devoiced");
}
