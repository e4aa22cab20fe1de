//! One NickServ command per file, and the dispatch table with each command's metadata
//! (aliases, arguments, login, help), so HELP and the common checks live here once.

use unsplit_services::{Action, Context, User, command_word};

use crate::notice;
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

/// The table, in the order HELP lists it.
pub(crate) const COMMANDS: &[Command] = &[
    help::COMMAND,
    register::COMMAND,
    identify::COMMAND,
    logout::COMMAND,
    ghost::COMMAND,
    regain::COMMAND,
    drop::COMMAND,
    info::COMMAND,
    set::COMMAND,
];

/// Looks a command up by its upper-case name or an alias.
pub(crate) fn lookup(word: &str) -> Option<&'static Command> {
    COMMANDS
        .iter()
        .find(|c| c.name == word || c.aliases.contains(&word))
}

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

/// A command's arguments: the words, and the text after the first word (a password
/// that follows an account name may contain spaces).
pub(crate) struct Args<'a> {
    pub words: Vec<&'a str>,
    pub rest: &'a str,
}

impl<'a> Args<'a> {
    fn new(rest: &'a str) -> Self {
        Args {
            words: rest.split_whitespace().collect(),
            rest,
        }
    }

    pub(crate) fn get(&self, i: usize) -> Option<&'a str> {
        self.words.get(i).copied()
    }

    /// Everything after the first word, trimmed (empty if there is none).
    pub(crate) fn after_first(&self) -> &'a str {
        self.rest
            .split_once(char::is_whitespace)
            .map_or("", |(_, tail)| tail.trim())
    }
}

/// At most this many characters of an unknown word are echoed back.
const ECHO_CHARS: usize = 32;

/// Runs the common checks, then the handler. Every message gets an answer.
pub(crate) fn dispatch(call: &mut Call<'_>, text: &str) {
    if text.starts_with('\u{1}') {
        if let Some(reply) = unsplit_services::ctcp_reply(SERVICE, env!("CARGO_PKG_VERSION"), text)
        {
            call.reply(reply);
        }
        return;
    }
    let (word, rest) = command_word(text);
    if word.is_empty() {
        call.reply(format!("Type /msg {SERVICE} HELP for help."));
        return;
    }
    let Some(command) = lookup(&word) else {
        let shown: String = word.chars().take(ECHO_CHARS).collect();
        call.reply(format!(
            "Unknown command {shown}. Type /msg {SERVICE} HELP for help."
        ));
        return;
    };
    if command.needs_login && call.from.account.is_none() {
        call.reply(format!("You need to be logged in to use {}.", command.name));
        return;
    }
    let args = Args::new(rest);
    if args.words.len() < command.min_args {
        call.reply(format!("Insufficient parameters for {}.", command.name));
        call.reply(format!("Syntax: {}", command.syntax));
        return;
    }
    (command.handler)(call, &args);
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
