//! DEOP <#channel> [nick]: `-o` on the nick (default: the sender). Needs `o`.

use super::{Args, Call, ChannelArg, Command, set_status};
use crate::flags::Flags;

pub(crate) const COMMAND: Command = Command {
    name: "DEOP",
    min_args: 1,
    needs_login: true,
    channel: ChannelArg::Registered,
    flag: Some(Flags::OP),
    syntax: "DEOP <#channel> [nick]",
    summary: "Takes channel operator status from you or someone.",
    help: &["Takes channel operator status from you or someone. Needs the o flag on the channel."],
    handler,
};

fn handler(call: &mut Call<'_>, args: &Args<'_>) {
    set_status(call, args, "-o", "deopped");
}
