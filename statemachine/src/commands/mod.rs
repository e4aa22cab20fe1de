//! One IRC command per file, and the dispatch table that carries each command's metadata
//! so the common checks (registration, parameter count, operator status) live here once.

use crate::SessionId;
use crate::message::Message;
use crate::numeric::*;
use crate::output::Output;
use crate::state::{Session, State};

mod authenticate;
pub(crate) mod away;
mod cap;
mod gline;
mod invite;
mod ison;
mod join;
mod kick;
pub(crate) mod kill;
mod list;
mod lusers;
pub(crate) mod mode;
mod motd;
mod names;
pub(crate) mod nick;
mod notice;
mod oper;
mod part;
mod pass;
mod ping;
mod pong;
mod privmsg;
pub(crate) mod quit;
pub(crate) mod registration;
mod time;
pub(crate) mod topic;
mod ungline;
mod user;
mod userhost;
mod version;
mod who;
mod whois;
mod whowas;

/// A command's handler and the checks that run before it.
pub(crate) struct Command {
    pub name: &'static str,
    /// Parameters required; fewer gets ERR_NEEDMOREPARAMS.
    pub min_params: usize,
    /// Usable before registration completes (otherwise ERR_NOTREGISTERED).
    pub before_registration: bool,
    /// Only IRC operators may use it (otherwise ERR_NOPRIVILEGES).
    pub oper_only: bool,
    pub handler: fn(&mut Ctx, &Message),
}

const fn cmd(name: &'static str, min_params: usize, handler: fn(&mut Ctx, &Message)) -> Command {
    Command {
        name,
        min_params,
        before_registration: false,
        oper_only: false,
        handler,
    }
}

const fn pre(command: Command) -> Command {
    Command {
        before_registration: true,
        ..command
    }
}

const fn oper(command: Command) -> Command {
    Command {
        oper_only: true,
        ..command
    }
}

/// The dispatch table, sorted by name.
pub(crate) const COMMANDS: &[Command] = &[
    pre(cmd("AUTHENTICATE", 1, authenticate::handle)),
    cmd("AWAY", 0, away::handle),
    pre(cmd("CAP", 1, cap::handle)),
    oper(cmd("GLINE", 0, gline::handle)),
    cmd("INVITE", 2, invite::handle),
    cmd("ISON", 1, ison::handle),
    cmd("JOIN", 1, join::handle),
    cmd("KICK", 2, kick::handle),
    oper(cmd("KILL", 1, kill::handle)),
    cmd("LIST", 0, list::handle),
    cmd("LUSERS", 0, lusers::handle),
    cmd("MODE", 1, mode::handle),
    cmd("MOTD", 0, motd::handle),
    cmd("NAMES", 0, names::handle),
    pre(cmd("NICK", 0, nick::handle)),
    cmd("NOTICE", 0, notice::handle),
    cmd("OPER", 2, oper::handle),
    cmd("PART", 1, part::handle),
    pre(cmd("PASS", 1, pass::handle)),
    pre(cmd("PING", 0, ping::handle)),
    pre(cmd("PONG", 0, pong::handle)),
    cmd("PRIVMSG", 0, privmsg::handle),
    pre(cmd("QUIT", 0, quit::handle)),
    cmd("TIME", 0, time::handle),
    cmd("TOPIC", 1, topic::handle),
    oper(cmd("UNGLINE", 1, ungline::handle)),
    pre(cmd("USER", 4, user::handle)),
    cmd("USERHOST", 1, userhost::handle),
    cmd("VERSION", 0, version::handle),
    cmd("WHO", 0, who::handle),
    cmd("WHOIS", 1, whois::handle),
    cmd("WHOWAS", 1, whowas::handle),
];

/// Looks a command up by its upper-case name.
pub(crate) fn lookup(name: &str) -> Option<&'static Command> {
    COMMANDS
        .binary_search_by(|c| c.name.cmp(name))
        .ok()
        .map(|i| &COMMANDS[i])
}

/// Runs the common checks, then the handler.
pub(crate) fn dispatch(ctx: &mut Ctx, msg: &Message) {
    let Some(command) = lookup(&msg.command) else {
        // A service's own command (`NS IDENTIFY …`) is a PRIVMSG to it.
        if let Some(service) = crate::services::by_command(ctx.state, &msg.command) {
            if !ctx.me().registered {
                ctx.numeric(ERR_NOTREGISTERED, ":You have not registered");
                return;
            }
            let name = service.name.clone();
            crate::services::message(ctx, &name, &msg.params.join(" "));
            return;
        }
        ctx.numeric(
            ERR_UNKNOWNCOMMAND,
            &format!("{} :Unknown command", msg.command),
        );
        return;
    };
    if !command.before_registration && !ctx.me().registered {
        ctx.numeric(ERR_NOTREGISTERED, ":You have not registered");
        return;
    }
    if msg.params.len() < command.min_params {
        ctx.need_more_params(&msg.command);
        return;
    }
    if command.oper_only && ctx.me().oper.is_none() {
        ctx.numeric(
            ERR_NOPRIVILEGES,
            ":Permission Denied- You're not an IRC operator",
        );
        return;
    }
    (command.handler)(ctx, msg);
}

/// What a handler works with: the state, the response buffer and the sender.
pub(crate) struct Ctx<'a> {
    pub state: &'a mut State,
    pub out: &'a mut Output,
    /// The session that sent the line.
    pub id: SessionId,
}

static GONE: Session = Session {
    id: 0,
    created_ms: 0,
    last_active_ms: 0,
    last_message_ms: 0,
    remote_addr: String::new(),
    nick: None,
    username: None,
    realname: String::new(),
    password: None,
    registered: false,
    cap_negotiating: false,
    invisible: false,
    oper: None,
    away: None,
    channels: std::collections::BTreeSet::new(),
    invited_to: std::collections::BTreeSet::new(),
    account: None,
    caps: std::collections::BTreeSet::new(),
    sasl: None,
    unregistered_lines: 0,
    nick_tat_ms: 0,
    join_tat_ms: 0,
};

impl Ctx<'_> {
    /// The sender. After QUIT removed it, an empty placeholder (never a panic).
    pub fn me(&self) -> &Session {
        self.state.sessions.get(&self.id).unwrap_or(&GONE)
    }

    pub fn me_mut(&mut self) -> Option<&mut Session> {
        self.state.sessions.get_mut(&self.id)
    }

    pub fn server_name(&self) -> &str {
        &self.state.config.server_name
    }

    /// `:<server> <code> <nick> <rest>` to the sender.
    pub fn numeric(&mut self, code: &str, rest: &str) {
        let line = format!(
            ":{} {code} {} {rest}",
            self.server_name(),
            self.me().nick_or_star()
        );
        self.out.send(self.id, line);
    }

    /// `:<server> NOTICE <nick> :<text>` to the sender.
    pub fn server_notice(&mut self, text: &str) {
        let line = format!(
            ":{} NOTICE {} :{text}",
            self.server_name(),
            self.me().nick_or_star()
        );
        self.out.send(self.id, line);
    }

    /// A line to the sender only.
    pub fn reply(&mut self, line: String) {
        self.out.send(self.id, line);
    }

    pub fn need_more_params(&mut self, command: &str) {
        self.numeric(
            ERR_NEEDMOREPARAMS,
            &format!("{command} :Not enough parameters"),
        );
    }

    pub fn no_such_nick(&mut self, target: &str) {
        self.numeric(ERR_NOSUCHNICK, &format!("{target} :No such nick/channel"));
    }

    pub fn not_on_channel(&mut self, channel: &str) {
        self.numeric(
            ERR_NOTONCHANNEL,
            &format!("{channel} :You're not on that channel"),
        );
    }

    pub fn not_channel_operator(&mut self, channel: &str) {
        self.numeric(
            ERR_CHANOPRIVSNEEDED,
            &format!("{channel} :You're not channel operator"),
        );
    }

    pub fn no_such_channel(&mut self, target: &str) {
        self.numeric(ERR_NOSUCHCHANNEL, &format!("{target} :No such channel"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_so_lookup_finds_every_command() {
        assert!(COMMANDS.windows(2).all(|w| w[0].name < w[1].name));
        for c in COMMANDS {
            assert!(lookup(c.name).is_some_and(|f| f.name == c.name));
        }
        assert!(lookup("GLINE").is_some_and(|c| c.oper_only));
        assert!(lookup("UNGLINE").is_some_and(|c| c.oper_only && c.min_params == 1));
    }
}
