//! The IRC logic's side of the services contract (`wit/services-1.0.0`): which services
//! exist, the events they are sent, and the actions they answer with.
//!
//! Services are plugins the host runs beside the logic. The logic never calls them: it
//! lists events in its step (`Output::event`), the host hands them to the plugins, and
//! the plugins' actions come back through [`apply_actions`]. Every action is checked here
//! like a client's command would be (the session must exist, the nick must be valid and
//! free, …), so a buggy plugin cannot break the state's invariants.

use serde::{Deserialize, Serialize};
use unsplit_services::{Action, ChannelStatus, Event, EventKind, PluginInfo, User};

use crate::SessionId;
use crate::casemap::{eq, fold};
use crate::commands::away::truncate;
use crate::commands::{Ctx, kill, mode, nick, registration, topic};
use crate::numeric::*;
use crate::output::Output;
use crate::state::{Session, State};

/// Longest text of a service's NOTICE (the rest is cut), so the line stays within 512
/// bytes with the longest nicks.
const NOTICELEN: usize = 400;
/// Longest account name.
pub(crate) const ACCOUNTLEN: usize = 64;

/// A service as the logic knows it (from its `PluginInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Service {
    pub name: String,
    pub nick: String,
    pub description: String,
    /// Upper case.
    pub commands: Vec<String>,
    /// One bit per [`EventKind`] (see [`kind_bit`]).
    pub subscriptions: u8,
    pub sasl: bool,
}

impl Service {
    fn from_info(info: PluginInfo) -> Service {
        Service {
            name: info.name,
            nick: info.nick,
            description: info.description,
            commands: info
                .commands
                .iter()
                .map(|c| c.to_ascii_uppercase())
                .collect(),
            subscriptions: info.subscriptions.iter().fold(0, |m, &k| m | kind_bit(k)),
            sasl: info.sasl,
        }
    }

    fn wants(&self, kind: EventKind) -> bool {
        self.subscriptions & kind_bit(kind) != 0
    }

    /// `NickServ!NickServ@irc.example`: the source of everything the service says.
    pub fn mask(&self, server: &str) -> String {
        format!("{0}!{0}@{server}", self.nick)
    }
}

fn kind_bit(kind: EventKind) -> u8 {
    1 << match kind {
        EventKind::Registered => 0,
        EventKind::NickChange => 1,
        EventKind::Join => 2,
        EventKind::Quit => 3,
        EventKind::Topic => 4,
        EventKind::AccountChange => 5,
        EventKind::Tick => 6,
        EventKind::AccountDropped => 7,
    }
}

/// A SASL exchange (`AUTHENTICATE`) in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Sasl {
    /// `AUTHENTICATE PLAIN` accepted; base64 chunks arrive (400 bytes each but the last).
    Plain { data: String },
    /// The credentials went to the service; its `sasl-result` is awaited.
    Waiting,
}

/// The service using `nick` (case-insensitive).
pub(crate) fn by_nick<'a>(state: &'a State, nick: &str) -> Option<&'a Service> {
    state.services.iter().find(|s| eq(&s.nick, nick))
}

/// The service that has `command` (upper case) as a command of its own (`NS`, …).
pub(crate) fn by_command<'a>(state: &'a State, command: &str) -> Option<&'a Service> {
    state
        .services
        .iter()
        .find(|s| s.commands.iter().any(|c| c == command))
}

/// The service answering SASL, if any.
pub(crate) fn sasl_service(state: &State) -> Option<&Service> {
    state.services.iter().find(|s| s.sasl)
}

/// A session as services see it.
pub(crate) fn user(s: &Session) -> User {
    User {
        session: s.id,
        nick: s.nick_or_star().to_owned(),
        username: s.user().to_owned(),
        account: s.account.clone(),
        oper: s.oper.is_some(),
    }
}

/// The session `id` as services see it (empty when it is gone).
pub(crate) fn session_user(state: &State, id: SessionId) -> User {
    state.sessions.get(&id).map(user).unwrap_or_default()
}

/// A session's channels with its status there.
pub(crate) fn channel_statuses(state: &State, s: &Session) -> Vec<ChannelStatus> {
    s.channels
        .iter()
        .filter_map(|key| state.channels.get(key))
        .map(|ch| {
            let m = ch.members.get(&s.id).copied().unwrap_or_default();
            ChannelStatus {
                channel: ch.name.clone(),
                op: m.op,
                voice: m.voice,
            }
        })
        .collect()
}

/// Sends the event `make` builds to every service subscribed to `kind` (built only when
/// one is: most entries concern no service).
pub(crate) fn emit(state: &State, out: &mut Output, kind: EventKind, make: impl FnOnce() -> Event) {
    let mut targets = state.services.iter().filter(|s| s.wants(kind)).peekable();
    if targets.peek().is_none() {
        return;
    }
    let event = make();
    for s in targets {
        out.event(&s.name, event.clone());
    }
}

/// A line to `service` from the session `ctx.id` (a PRIVMSG to its nick or one of its
/// commands).
pub(crate) fn message(ctx: &mut Ctx, service: &str, text: &str) {
    let me = ctx.me();
    if !me.registered {
        return;
    }
    let event = Event::Message {
        from: user(me),
        text: text.to_owned(),
        channels: channel_statuses(ctx.state, me),
    };
    ctx.out.event(service, event);
}

/// The services that exist from now on (the host's `set-services`): nicks are reserved
/// (a user holding one is renamed), every service is sent its settings, and a service
/// new to the list the registered users.
pub(crate) fn set_services(state: &mut State, out: &mut Output, infos: Vec<PluginInfo>) {
    let known: Vec<String> = state.services.iter().map(|s| s.name.clone()).collect();
    let mut services: Vec<Service> = infos
        .into_iter()
        .filter(|i| !i.name.is_empty() && nick::valid_nick(&i.nick))
        .map(Service::from_info)
        .collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    // One service per name and per nick: the first by name wins.
    let mut kept: Vec<Service> = Vec::with_capacity(services.len());
    for s in services {
        if !kept
            .iter()
            .any(|k| k.name == s.name || eq(&k.nick, &s.nick))
        {
            kept.push(s);
        }
    }
    let mut services = kept;
    // Only one service may answer SASL: the first by name.
    let mut sasl_taken = false;
    for s in services.iter_mut().filter(|s| s.sasl) {
        s.sasl = !sasl_taken;
        sasl_taken = true;
    }
    state.services = services;
    let holders: Vec<SessionId> = state
        .services
        .iter()
        .filter_map(|s| state.nicks.get(&fold(&s.nick)).copied())
        .collect();
    for id in holders {
        let guest = guest_nick(state, id);
        let mut ctx = Ctx { state, out, id };
        nick::set_nick(&mut ctx, &guest);
        ctx.server_notice(&format!(
            "Your nick is reserved for services; you are now {guest}."
        ));
    }
    for s in &state.services {
        let settings = state
            .config
            .plugins
            .get(&s.name)
            .cloned()
            .unwrap_or_default();
        out.event(&s.name, Event::Settings(settings));
        if !known.contains(&s.name) {
            let users = state
                .sessions
                .values()
                .filter(|u| u.registered)
                .map(user)
                .collect();
            out.event(&s.name, Event::Users(users));
        }
    }
}

/// A free guest nick for a session that must give its nick up.
fn guest_nick(state: &State, id: SessionId) -> String {
    (0u64..)
        .map(|n| format!("Guest{}", id.wrapping_add(n) % 100_000_000))
        .find(|n| state.nick_taken(n, id).is_none())
        .unwrap_or_default()
}

/// Settings for services whose `[Plugins.<name>]` table changed with a new configuration.
pub(crate) fn settings_changed(
    state: &State,
    out: &mut Output,
    old: &std::collections::BTreeMap<String, String>,
) {
    for s in &state.services {
        let now = state.config.plugins.get(&s.name);
        if now != old.get(&s.name) {
            out.event(&s.name, Event::Settings(now.cloned().unwrap_or_default()));
        }
    }
}

/// Applies what `service` answered, in order. Actions that do not apply (a session
/// that is gone, a nick in use, …) are ignored.
pub(crate) fn apply_actions(
    state: &mut State,
    out: &mut Output,
    service: &str,
    actions: Vec<Action>,
) {
    let Some(svc) = state.services.iter().find(|s| s.name == service).cloned() else {
        return;
    };
    for action in actions {
        match action {
            Action::Notice { to, text } => notice(state, out, &svc, to, &text),
            Action::SetAccount { session, account } => {
                crate::fixtures::misbehave_on_login(account.as_deref().unwrap_or(""));
                set_account(state, out, session, account.as_deref())
            }
            Action::ForceNick { session, nick } => force_nick(state, out, session, &nick),
            Action::Kill { session, reason } => kill(state, out, &svc, session, &reason),
            Action::ChannelMode {
                channel,
                modes,
                args,
            } => {
                let source = svc.mask(&state.config.server_name);
                mode::service_channel_mode(state, out, &source, &channel, &modes, &args);
            }
            Action::SetTopic { channel, text } => set_topic(state, out, &svc, &channel, &text),
            Action::RegisterChannel {
                channel,
                registered,
            } => register_channel(state, &channel, registered),
            Action::SaslResult { session, account } => {
                sasl_result(state, out, &svc, session, account.as_deref())
            }
            Action::DropAccount(account) => drop_account(state, out, &account),
            // Served by the host (the pipeline takes them out before they get here).
            Action::HashPassword { .. } => {}
        }
    }
}

/// `service` trapped on `events` and was rolled back: whoever waits is told.
pub(crate) fn failed(
    state: &mut State,
    out: &mut Output,
    service: &str,
    events: Vec<Event>,
    reason: &str,
) {
    let shown = state
        .services
        .iter()
        .find(|s| s.name == service)
        .map(|s| s.nick.clone())
        .unwrap_or_else(|| service.to_owned());
    for event in events {
        match event {
            Event::Message { from, .. } if state.sessions.contains_key(&from.session) => {
                let id = from.session;
                Ctx { state, out, id }.server_notice(&format!(
                    "{shown} failed on your request and was reset ({}); nothing changed. Please try again later.",
                    truncate(reason, 120)
                ));
            }
            Event::Sasl { session, .. } => sasl_fail(&mut Ctx {
                state,
                out,
                id: session,
            }),
            _ => {}
        }
    }
}

fn notice(state: &State, out: &mut Output, svc: &Service, to: SessionId, text: &str) {
    let Some(s) = state.sessions.get(&to) else {
        return;
    };
    let text = one_line(text);
    let text = match truncate(&text, NOTICELEN) {
        "" => " ",
        t => t,
    };
    out.send(
        to,
        format!(
            ":{} NOTICE {} :{text}",
            svc.mask(&state.config.server_name),
            s.nick_or_star()
        ),
    );
}

/// A service's text without the characters that would end or break an IRC line.
fn one_line(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
        .collect()
}

/// An account name a service may set: one word of printable characters.
fn valid_account(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= ACCOUNTLEN
        && name
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, ':' | ',' | '*' | '?' | '!' | '@'))
}

/// Logs a session in or out: 900/901 to the session, and `account-change` to services
/// once it is registered.
pub(crate) fn set_account(
    state: &mut State,
    out: &mut Output,
    id: SessionId,
    account: Option<&str>,
) {
    if account.is_some_and(|a| !valid_account(a)) {
        return;
    }
    let Some(s) = state.sessions.get_mut(&id) else {
        return;
    };
    if s.account.as_deref() == account {
        return;
    }
    s.account = account.map(str::to_owned);
    let s = s.clone();
    let mask = s.mask();
    let mut ctx = Ctx { state, out, id };
    match account {
        Some(a) => ctx.numeric(
            RPL_LOGGEDIN,
            &format!("{mask} {a} :You are now logged in as {a}"),
        ),
        None => ctx.numeric(RPL_LOGGEDOUT, &format!("{mask} :You are now logged out")),
    }
    if s.registered {
        emit(state, out, EventKind::AccountChange, || {
            Event::AccountChange {
                user: user(&s),
                channels: channel_statuses(state, &s),
            }
        });
    }
}

/// Logs out every session of `account` and tells the services that care.
fn drop_account(state: &mut State, out: &mut Output, account: &str) {
    let sessions: Vec<SessionId> = state
        .sessions
        .values()
        .filter(|s| s.account.as_deref().is_some_and(|a| eq(a, account)))
        .map(|s| s.id)
        .collect();
    for id in sessions {
        set_account(state, out, id, None);
    }
    emit(state, out, EventKind::AccountDropped, || {
        Event::AccountDropped(account.to_owned())
    });
}

fn force_nick(state: &mut State, out: &mut Output, id: SessionId, new: &str) {
    let Some(s) = state.sessions.get(&id) else {
        return;
    };
    if !s.registered || !nick::valid_nick(new) || state.nick_taken(new, id).is_some() {
        return;
    }
    nick::set_nick(&mut Ctx { state, out, id }, new);
}

fn kill(state: &mut State, out: &mut Output, svc: &Service, id: SessionId, reason: &str) {
    let source = svc.mask(&state.config.server_name);
    kill::kill_by(state, out, &source, &svc.nick, id, reason);
}

fn set_topic(state: &mut State, out: &mut Output, svc: &Service, channel: &str, text: &str) {
    let key = fold(channel);
    let text = one_line(text);
    let text = truncate(&text, registration::TOPICLEN);
    let Some(ch) = state.channels.get(&key) else {
        return;
    };
    if ch.topic.as_ref().map(|t| t.text.as_str()).unwrap_or("") == text {
        return;
    }
    let source = svc.mask(&state.config.server_name);
    topic::set_topic(state, out, &key, text, &source, &svc.nick, &svc.nick);
}

fn register_channel(state: &mut State, channel: &str, registered: bool) {
    let key = fold(channel);
    let Some(ch) = state.channels.get_mut(&key) else {
        return;
    };
    ch.registered = registered;
    if !registered && ch.members.is_empty() {
        state.remove_channel(&key);
    }
}

fn sasl_result(
    state: &mut State,
    out: &mut Output,
    svc: &Service,
    id: SessionId,
    account: Option<&str>,
) {
    let Some(s) = state.sessions.get_mut(&id) else {
        return;
    };
    if !svc.sasl || s.sasl != Some(Sasl::Waiting) {
        return;
    }
    let Some(account) = account.filter(|a| valid_account(a)) else {
        sasl_fail(&mut Ctx { state, out, id });
        return;
    };
    s.sasl = None;
    set_account(state, out, id, Some(account));
    Ctx { state, out, id }.numeric(RPL_SASLSUCCESS, ":SASL authentication successful");
}

/// 904 to the session `ctx.id`, and its exchange (if any) is over.
pub(crate) fn sasl_fail(ctx: &mut Ctx) {
    let Some(s) = ctx.me_mut() else {
        return;
    };
    s.sasl = None;
    ctx.numeric(ERR_SASLFAIL, ":SASL authentication failed");
}
