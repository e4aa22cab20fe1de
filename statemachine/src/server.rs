//! The top of the logic: applying one entry, snapshots, restore.

use crate::bans;
use crate::commands::{self, Ctx, quit};
use crate::config::Config;
use crate::message::{self, LineError};
use crate::numeric::*;
use crate::output::Output;
use crate::services;
use crate::state::{Session, State};
use crate::{Entry, EntryKind, Outcome, SNAPSHOT_FORMAT, SessionId, Step};
use unsplit_services::{Action, Context, Event, EventKind, PluginInfo};

/// Why a snapshot could not be restored. The state is left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("snapshot is empty")]
    Empty,
    #[error("snapshot format {found} is not supported (this module reads format {supported})")]
    UnsupportedFormat { found: u32, supported: u32 },
    #[error("snapshot is corrupt: {0}")]
    Corrupt(String),
}

/// The IRC server: the whole replicated state and the apply function.
#[derive(Debug, Clone, Default)]
pub struct Server {
    state: State,
}

impl Server {
    /// A server with no sessions and the default configuration.
    pub fn new() -> Server {
        Server::default()
    }

    /// The active configuration.
    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// Index of the last applied entry (0 before any).
    pub fn last_index(&self) -> u64 {
        self.state.last_index
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.state.sessions.len()
    }

    /// Applies one committed entry (without services: their events are dropped).
    pub fn apply(&mut self, entry: &Entry) -> Outcome {
        self.apply_step(entry).outcome
    }

    /// Applies one committed entry: its outcome, and the events for services.
    pub fn apply_step(&mut self, entry: &Entry) -> Step {
        let mut out = Output::default();
        let state = &mut self.state;
        if state.created_ms == 0 {
            state.created_ms = entry.time_ms;
        }
        state.advance(entry.index, entry.time_ms);
        match &entry.kind {
            EntryKind::CreateSession { remote_addr } => {
                let id = entry.session;
                if id != 0 && !state.sessions.contains_key(&id) {
                    let now = state.now_ms;
                    state.sessions.insert(
                        id,
                        Session {
                            id,
                            created_ms: now,
                            last_active_ms: now,
                            last_message_ms: now,
                            remote_addr: remote_addr.clone(),
                            ..Session::default()
                        },
                    );
                }
            }
            EntryKind::DeleteSession { quit_message } => {
                if state.sessions.contains_key(&entry.session) {
                    let reason = quit::client_reason(quit_message);
                    quit::end_session(state, &mut out, entry.session, &reason);
                }
            }
            EntryKind::IrcLine(raw) => line(state, &mut out, entry.session, raw),
            EntryKind::Tick => {
                expire(state, &mut out);
                services::emit(state, &mut out, EventKind::Tick, || Event::Tick);
            }
            EntryKind::Config(text) => match Config::from_toml(text) {
                Ok(config) => {
                    let old = std::mem::replace(&mut state.config, config);
                    services::settings_changed(state, &mut out, &old.plugins);
                }
                Err(e) => out.error(e.to_string()),
            },
        }
        out.finish_step()
    }

    /// The clock of a services call (same entry as the events it answers).
    fn enter(&mut self, ctx: &Context) {
        self.state.advance(ctx.index, ctx.time_ms);
    }

    /// The services that exist from now on (the WIT `core.set-services`).
    pub fn set_services(&mut self, ctx: &Context, services: Vec<PluginInfo>) -> Step {
        self.enter(ctx);
        let mut out = Output::default();
        services::set_services(&mut self.state, &mut out, services);
        out.finish_step()
    }

    /// Applies a service's actions (the WIT `core.apply-actions`).
    pub fn apply_actions(&mut self, ctx: &Context, service: &str, actions: Vec<Action>) -> Step {
        self.enter(ctx);
        let mut out = Output::default();
        services::apply_actions(&mut self.state, &mut out, service, actions);
        out.finish_step()
    }

    /// A service trapped on `events` (the WIT `core.service-failed`).
    pub fn service_failed(
        &mut self,
        ctx: &Context,
        service: &str,
        events: Vec<Event>,
        reason: &str,
    ) -> Step {
        self.enter(ctx);
        let mut out = Output::default();
        services::failed(&mut self.state, &mut out, service, events, reason);
        out.finish_step()
    }

    /// The whole state: a format number, then the postcard-encoded state.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut bytes = SNAPSHOT_FORMAT.to_le_bytes().to_vec();
        // Serialising plain data into a Vec cannot fail; an empty snapshot would be refused
        // by restore rather than silently accepted.
        if let Ok(body) = postcard::to_allocvec(&self.state) {
            bytes.extend_from_slice(&body);
        }
        bytes
    }

    /// A server continuing from a snapshot.
    pub fn restore(bytes: &[u8]) -> Result<Server, RestoreError> {
        let Some((format, body)) = bytes.split_first_chunk::<4>() else {
            return Err(RestoreError::Empty);
        };
        let format = u32::from_le_bytes(*format);
        let corrupt = |e: postcard::Error| RestoreError::Corrupt(e.to_string());
        let state: State = match format {
            SNAPSHOT_FORMAT => postcard::from_bytes(body).map_err(corrupt)?,
            1 if !cfg!(feature = "fixture-format2") => {
                crate::migrate::from_v1(body).map_err(corrupt)?
            }
            _ => {
                return Err(RestoreError::UnsupportedFormat {
                    found: format,
                    supported: SNAPSHOT_FORMAT,
                });
            }
        };
        Ok(Server { state })
    }
}

/// One IRC line from session `id` (ignored when it is not known).
fn line(state: &mut State, out: &mut Output, id: SessionId, raw: &[u8]) {
    if !admit(state, out, id) {
        return;
    }
    let mut ctx = Ctx { state, out, id };
    let text = match message::check_line(raw) {
        Ok(text) => text,
        Err(LineError::TooLong) => {
            ctx.numeric(ERR_INPUTTOOLONG, ":Input line was too long");
            return;
        }
        Err(e) => {
            let hint = message::command_hint(raw);
            ctx.numeric(ERR_UNKNOWNERROR, &format!("{hint} :{e}"));
            return;
        }
    };
    crate::fixtures::misbehave(text);
    if let Some(msg) = message::parse(text) {
        commands::dispatch(&mut ctx, &msg);
    }
}

/// A line from session `id` counts as activity; then the bounds on a session that has
/// not registered yet: its first line checks its address against the bans, and after
/// `[Flood] UnregisteredLines` lines it is closed. `false` when the session is unknown
/// or was closed (the line is not processed).
fn admit(state: &mut State, out: &mut Output, id: SessionId) -> bool {
    let Some(s) = state.sessions.get_mut(&id) else {
        return false;
    };
    s.last_active_ms = state.now_ms;
    if s.registered {
        return true;
    }
    s.unregistered_lines = s.unregistered_lines.saturating_add(1);
    let lines = s.unregistered_lines;
    if lines == 1 {
        let addr = s.remote_addr.clone();
        if let Some(reason) = bans::ban_reason(state, &addr) {
            let error = format!("You are banned ({reason})");
            quit::end_session_with(state, out, id, &format!("Banned ({reason})"), Some(&error));
            return false;
        }
    }
    let limit = state.config.flood.unregistered_lines;
    if limit > 0 && lines > limit {
        quit::end_session(state, out, id, "Too many lines before registration");
        return false;
    }
    true
}

/// Closes sessions whose time is up (tick entries).
fn expire(state: &mut State, out: &mut Output) {
    let now = state.now_ms;
    let cfg = &state.config;
    let due: Vec<(SessionId, String)> = state
        .sessions
        .values()
        .filter_map(|s| {
            if !s.registered && now.saturating_sub(s.created_ms) >= cfg.registration_timeout {
                Some((s.id, "Registration timed out".to_owned()))
            } else if s.registered && now.saturating_sub(s.last_active_ms) >= cfg.session_expiration
            {
                Some((
                    s.id,
                    format!(
                        "Ping timeout: {} seconds",
                        now.saturating_sub(s.last_active_ms) / 1000
                    ),
                ))
            } else {
                None
            }
        })
        .collect();
    for (id, reason) in due {
        quit::end_session(state, out, id, &reason);
    }
    bans::expire(state);
}

impl Server {
    /// Checks the state's internal consistency: the nick index matches the sessions,
    /// channel membership is recorded on both sides, no channel is empty unless it is
    /// registered, invitations are recorded on both sides, no user holds a service's
    /// nick. For tests; `Err` names the first problem found.
    pub fn check_invariants(&self) -> Result<(), String> {
        let s = &self.state;
        for (folded, id) in &s.nicks {
            let session = s
                .sessions
                .get(id)
                .ok_or(format!("nick {folded} points to missing session {id}"))?;
            if session.nick.as_deref().map(crate::casemap::fold).as_deref() != Some(folded.as_str())
            {
                return Err(format!(
                    "nick index {folded} does not match session {id}'s nick {:?}",
                    session.nick
                ));
            }
        }
        for (id, session) in &s.sessions {
            if let Some(nick) = &session.nick
                && s.nicks.get(&crate::casemap::fold(nick)) != Some(id)
            {
                return Err(format!("session {id}'s nick {nick} is not indexed"));
            }
            if let Some(nick) = &session.nick
                && services::by_nick(s, nick).is_some()
            {
                return Err(format!("session {id} holds the service nick {nick}"));
            }
            if !session.registered && !session.channels.is_empty() {
                return Err(format!("unregistered session {id} is in channels"));
            }
            for key in &session.channels {
                let ch = s
                    .channels
                    .get(key)
                    .ok_or(format!("session {id} is in missing channel {key}"))?;
                if !ch.members.contains_key(id) {
                    return Err(format!("session {id} lists {key} but is not a member"));
                }
            }
            for key in &session.invited_to {
                if !s.channels.get(key).is_some_and(|c| c.invites.contains(id)) {
                    return Err(format!(
                        "session {id} invited to {key} without the channel knowing"
                    ));
                }
            }
        }
        for (key, ch) in &s.channels {
            if ch.members.is_empty() && !ch.registered {
                return Err(format!("channel {key} is empty but exists"));
            }
            if crate::casemap::fold(&ch.name) != *key {
                return Err(format!(
                    "channel {key} is indexed under the wrong name {}",
                    ch.name
                ));
            }
            for id in ch.members.keys() {
                if !s.sessions.get(id).is_some_and(|x| x.channels.contains(key)) {
                    return Err(format!(
                        "channel {key} has member {id} that does not list it"
                    ));
                }
            }
            for id in &ch.invites {
                if !s
                    .sessions
                    .get(id)
                    .is_some_and(|x| x.invited_to.contains(key))
                {
                    return Err(format!(
                        "channel {key} invites {id} without the session knowing"
                    ));
                }
            }
        }
        Ok(())
    }
}
