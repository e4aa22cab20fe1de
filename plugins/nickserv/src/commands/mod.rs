//! One NickServ command per file, and the dispatch table with each command's metadata
//! (aliases, arguments, login, help); the checks every service shares and HELP are
//! [`unsplit_services::Commands`].

use unsplit_services::{Action, CommandSpec, Commands, Context, User, notice};

pub(crate) use unsplit_services::Args;

use crate::state::State;

pub(crate) mod drop;
pub(crate) mod ghost;
mod help;
pub(crate) mod identify;
mod info;
mod logout;
pub(crate) mod regain;
mod register;
mod set;

/// The service's nick, as users address it in help texts.
pub(crate) const SERVICE: &str = "NickServ";

/// A command's handler and what the dispatcher checks before it.
pub(crate) struct Command {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// Fewer arguments get the syntax.
    pub min_args: usize,
    /// Only for sessions logged in to an account.
    pub needs_login: bool,
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
    fn aliases(&self) -> &'static [&'static str] {
        self.aliases
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
    intro: "NickServ lets you register your nickname as an account and log in to it.",
    name_width: 9,
    list: &[
        help::COMMAND,
        register::COMMAND,
        identify::COMMAND,
        logout::COMMAND,
        ghost::COMMAND,
        regain::COMMAND,
        drop::COMMAND,
        info::COMMAND,
        set::COMMAND,
    ],
};

/// One message being handled: the state, the entry, the sender and the answers.
pub(crate) struct Call<'a> {
    pub st: &'a mut State,
    pub ctx: &'a Context,
    pub out: &'a mut Vec<Action>,
    pub from: &'a User,
}

impl Call<'_> {
    /// A notice to the sender.
    pub(crate) fn reply(&mut self, text: impl Into<String>) {
        notice(self.out, self.from.session, text);
    }

    /// The folded account the sender is logged in to.
    pub(crate) fn account(&self) -> Option<String> {
        self.from.account.as_deref().map(unsplit_services::casefold)
    }
}

/// Runs the common checks, then the handler. Every message gets an answer.
pub(crate) fn dispatch(call: &mut Call<'_>, text: &str) {
    if let Some((command, args)) = COMMANDS.prologue(call.from, text, call.out) {
        (command.handler)(call, &args);
    }
}

/// Whether a password is acceptable for an account; the refusal otherwise.
pub(crate) fn check_new_password(st: &State, account: &str, password: &str) -> Result<(), String> {
    let min = st.settings.min_password_length;
    if password.chars().count() < usize::try_from(min).unwrap_or(usize::MAX) {
        return Err(format!(
            "Your password must be at least {min} characters long."
        ));
    }
    if unsplit_services::casefold(password) == unsplit_services::casefold(account) {
        return Err("Your password cannot be your nickname.".into());
    }
    Ok(())
}

/// A plausible email address: `local@domain`, no spaces or control characters.
pub(crate) fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}
