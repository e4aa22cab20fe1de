//! One ChanServ command per file, and the dispatch table with each command's metadata
//! (arguments, login, which channel it needs, the flag it needs, help); the checks every
//! service shares and HELP are [`unsplit_services::Commands`], the channel checks are
//! here.

use unsplit_services::{
    Action, ChannelStatus, CommandSpec, Commands, Context, User, casefold, notice, shown,
};

pub(crate) use unsplit_services::Args;

use crate::flags::Flags;
use crate::state::{Channel, State};

mod access;
mod deop;
mod devoice;
mod drop;
mod help;
mod info;
mod op;
mod register;
mod topic;
mod voice;

/// The service's nick, as users address it in help texts.
pub(crate) const SERVICE: &str = "ChanServ";

/// What the first argument must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelArg {
    /// No channel.
    None,
    /// A channel name, registered or not.
    Any,
    /// A registered channel.
    Registered,
}

/// A command's handler and what the dispatcher checks before it.
pub(crate) struct Command {
    pub name: &'static str,
    /// Fewer arguments get the syntax.
    pub min_args: usize,
    /// Only for sessions logged in to an account.
    pub needs_login: bool,
    pub channel: ChannelArg,
    /// The flag needed on that (registered) channel; founders have every flag.
    pub flag: Option<Flags>,
    pub syntax: &'static str,
    /// One line for the command list.
    pub summary: &'static str,
    /// Lines for `HELP <command>`.
    pub help: &'static [&'static str],
    pub handler: fn(&mut Call<'_>, &Args<'_>),
}

impl CommandSpec for Command {
    fn name(&self) -> &'static str {
        self.name
    }
    fn min_args(&self) -> usize {
        self.min_args
    }
    fn needs_login(&self) -> bool {
        self.needs_login
    }
    fn syntax(&self) -> &'static str {
        self.syntax
    }
    fn summary(&self) -> &'static str {
        self.summary
    }
    fn help(&self) -> &'static [&'static str] {
        self.help
    }
}

/// The table, in the order HELP lists it.
pub(crate) const COMMANDS: Commands<Command> = Commands {
    service: SERVICE,
    version: env!("CARGO_PKG_VERSION"),
    intro: "ChanServ keeps registered channels: their access lists, modes and topics.",
    name_width: 8,
    list: &[
        help::COMMAND,
        register::COMMAND,
        drop::COMMAND,
        info::COMMAND,
        op::COMMAND,
        deop::COMMAND,
        voice::COMMAND,
        devoice::COMMAND,
        access::COMMAND,
        topic::COMMAND,
    ],
};

/// One message being handled.
pub(crate) struct Call<'a> {
    pub st: &'a mut State,
    pub ctx: &'a Context,
    pub out: &'a mut Vec<Action>,
    pub from: &'a User,
    /// The sender's channels with its status there.
    pub channels: &'a [ChannelStatus],
}

impl Call<'_> {
    pub(crate) fn reply(&mut self, text: impl Into<String>) {
        notice(self.out, self.from.session, text);
    }

    /// The sender's status in a channel (folded), if it is there.
    pub(crate) fn status(&self, folded: &str) -> Option<&ChannelStatus> {
        self.channels
            .iter()
            .find(|c| casefold(&c.channel) == folded)
    }

    /// The sender's flags on a registered channel (folded).
    pub(crate) fn flags(&self, folded: &str) -> Flags {
        self.st
            .channels
            .get(folded)
            .map_or(Flags::NONE, |c| c.flags(self.from.account.as_deref()))
    }
}

/// A channel name the IRC logic accepts (one rule for both).
pub(crate) fn valid_channel(name: &str) -> bool {
    unsplit_services::valid_channel_name(name)
}

/// Runs the common checks, then the handler. Every message gets an answer.
pub(crate) fn dispatch(call: &mut Call<'_>, text: &str) {
    let Some((command, args)) = COMMANDS.prologue(call.from, text, call.out) else {
        return;
    };
    if command.channel != ChannelArg::None {
        let name = args.get(0).unwrap_or_default();
        if !valid_channel(name) {
            call.reply(format!("{} is not a valid channel name.", shown(name)));
            return;
        }
        if command.channel == ChannelArg::Registered {
            let folded = casefold(name);
            let Some(channel) = call.st.channels.get(&folded) else {
                call.reply(format!("{name} is not registered."));
                return;
            };
            if let Some(flag) = command.flag
                && !call.flags(&folded).allows(flag)
            {
                let text = format!(
                    "You need the {} flag on {} to use {}.",
                    flag.letters(),
                    channel.name,
                    command.name
                );
                call.reply(text);
                return;
            }
        }
    }
    (command.handler)(call, &args);
}

/// OP, DEOP, VOICE and DEVOICE: `modes` on the target (default: the sender).
pub(crate) fn set_status(call: &mut Call<'_>, args: &Args<'_>, modes: &str, done: &str) {
    let folded = args.folded(0);
    let Some(channel) = call.st.channels.get(&folded) else {
        return;
    };
    let name = channel.name.clone();
    let target = match args.get(1) {
        Some(nick) => nick.to_owned(),
        None => {
            if call.status(&folded).is_none() {
                call.reply(format!("You are not on {name}."));
                return;
            }
            call.from.nick.clone()
        }
    };
    call.out.push(Action::ChannelMode {
        channel: name.clone(),
        modes: modes.into(),
        args: vec![target.clone()],
    });
    call.reply(format!("{target} has been {done} on {name}."));
}

/// The registered channel a handler was dispatched for (checked by the dispatcher).
pub(crate) fn channel<'s>(st: &'s State, args: &Args<'_>) -> Option<&'s Channel> {
    st.channels.get(&args.folded(0))
}
