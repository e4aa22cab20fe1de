//! The replicated IRC state. Everything here is serialised into snapshots, so every
//! collection is ordered (`BTreeMap`/`BTreeSet`/`Vec`) and nothing is derived from
//! iteration order of a hashed map.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::SessionId;
use crate::casemap::fold;
use crate::config::Config;

/// How many nick changes and quits WHOWAS remembers, network-wide.
pub(crate) const WHOWAS_HISTORY: usize = 1000;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct State {
    pub config: Config,
    /// Time of the first entry ever applied (RPL_CREATED).
    pub created_ms: u64,
    /// Index of the last applied entry.
    pub last_index: u64,
    /// Time of the last applied entry.
    pub now_ms: u64,
    pub sessions: BTreeMap<SessionId, Session>,
    /// Folded nick → session. Holds the nicks of unregistered sessions too (NICK reserves).
    pub nicks: BTreeMap<String, SessionId>,
    /// Folded channel name → channel.
    pub channels: BTreeMap<String, Channel>,
    pub whowas: VecDeque<WhowasEntry>,
    /// Most registered users seen at once (RPL_LOCALUSERS/GLOBALUSERS).
    pub max_users: u64,
    /// The services (plugins) that exist, by name.
    pub services: Vec<crate::services::Service>,
    /// Address bans set by operators (GLINE), by folded mask.
    pub glines: BTreeMap<String, Gline>,
}

/// An address ban set with GLINE.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Gline {
    /// The mask as the operator gave it (or the address of the nick they named).
    pub mask: String,
    pub reason: String,
    /// The operator's nick.
    pub set_by: String,
    pub set_ms: u64,
    /// When it lapses (entry time); 0: never.
    pub expires_ms: u64,
}

impl Gline {
    pub fn active(&self, now: u64) -> bool {
        self.expires_ms == 0 || now < self.expires_ms
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Session {
    pub id: SessionId,
    pub created_ms: u64,
    /// Last line of any kind (expiry).
    pub last_active_ms: u64,
    /// Last PRIVMSG/NOTICE (WHOIS idle time).
    pub last_message_ms: u64,
    /// The client's address as the host reported it. Never shown to other users.
    pub remote_addr: String,
    pub nick: Option<String>,
    pub username: Option<String>,
    pub realname: String,
    pub password: Option<String>,
    pub registered: bool,
    /// `CAP LS`/`CAP REQ` seen and no `CAP END` yet: registration waits.
    pub cap_negotiating: bool,
    pub invisible: bool,
    /// The operator block name after a successful OPER.
    pub oper: Option<String>,
    pub away: Option<String>,
    /// Folded names of the channels this session is in.
    pub channels: BTreeSet<String>,
    /// Folded names of the channels this session was invited to.
    pub invited_to: BTreeSet<String>,
    /// The services account the session is logged in to.
    pub account: Option<String>,
    /// IRCv3 capabilities the session enabled (`CAP REQ`).
    pub caps: BTreeSet<String>,
    /// A SASL exchange in progress.
    pub sasl: Option<crate::services::Sasl>,
    /// Lines received while unregistered (the first one checks the address bans).
    pub unregistered_lines: u32,
    /// Rate limits of nick changes and joins (see `ratelimit`).
    pub nick_tat_ms: u64,
    pub join_tat_ms: u64,
}

impl Session {
    /// The nick, or `*` before one was accepted (the target of numerics).
    pub fn nick_or_star(&self) -> &str {
        self.nick.as_deref().unwrap_or("*")
    }

    /// The cloaked host every user sees: the session id, never the address.
    pub fn host(&self) -> String {
        format!("unsplit/0x{:x}", self.id)
    }

    pub fn user(&self) -> &str {
        self.username.as_deref().unwrap_or("*")
    }

    /// `nick!user@host`, the source of everything the session says.
    pub fn mask(&self) -> String {
        format!("{}!{}@{}", self.nick_or_star(), self.user(), self.host())
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Channel {
    /// The name as it was first written.
    pub name: String,
    pub created_ms: u64,
    pub topic: Option<Topic>,
    pub members: BTreeMap<SessionId, Membership>,
    pub modes: ChannelModes,
    pub bans: Vec<Ban>,
    /// Sessions invited (cleared when they join or leave the network).
    pub invites: BTreeSet<SessionId>,
    /// Registered with services (ChanServ): the channel stays when its last member leaves.
    pub registered: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Topic {
    pub text: String,
    pub set_by: String,
    pub set_ms: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Membership {
    pub op: bool,
    pub voice: bool,
}

impl Membership {
    /// The highest prefix (`@` before `+`), for NAMES and WHO.
    pub fn prefix(self) -> &'static str {
        if self.op {
            "@"
        } else if self.voice {
            "+"
        } else {
            ""
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChannelModes {
    pub invite_only: bool,
    pub moderated: bool,
    pub no_external: bool,
    pub secret: bool,
    pub topic_ops: bool,
    pub key: Option<String>,
    pub limit: Option<u32>,
}

impl ChannelModes {
    /// The mode string for RPL_CHANNELMODEIS, e.g. `+klnt key 10`. The key is shown only
    /// to members.
    pub fn render(&self, show_key: bool) -> String {
        let mut flags = String::from("+");
        let mut args = Vec::new();
        if self.invite_only {
            flags.push('i');
        }
        if let Some(key) = &self.key {
            flags.push('k');
            args.push(if show_key {
                key.clone()
            } else {
                "*".to_owned()
            });
        }
        if let Some(limit) = self.limit {
            flags.push('l');
            args.push(limit.to_string());
        }
        if self.moderated {
            flags.push('m');
        }
        if self.no_external {
            flags.push('n');
        }
        if self.secret {
            flags.push('s');
        }
        if self.topic_ops {
            flags.push('t');
        }
        for a in args {
            flags.push(' ');
            flags.push_str(&a);
        }
        flags
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ban {
    pub mask: String,
    pub set_by: String,
    pub set_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct WhowasEntry {
    pub nick: String,
    pub username: String,
    pub host: String,
    pub realname: String,
    pub left_ms: u64,
}

/// Why a nick is not free for a session (see [`State::nick_taken`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NickTaken {
    /// A service uses it.
    Service,
    /// Another session holds it (registered or not).
    Session,
}

impl State {
    /// Whether `nick` is taken for session `id`: reserved by a service, or held by
    /// another session. `None`: `id` may use it (it may already hold it).
    pub fn nick_taken(&self, nick: &str, id: SessionId) -> Option<NickTaken> {
        if crate::services::by_nick(self, nick).is_some() {
            return Some(NickTaken::Service);
        }
        match self.nicks.get(&fold(nick)) {
            Some(&owner) if owner != id => Some(NickTaken::Session),
            _ => None,
        }
    }

    /// Moves the clock and the applied index to those of an entry or a services call:
    /// neither steps back (the leader's clock may, after a leader change; a services call
    /// has the index of the entry already applied).
    pub fn advance(&mut self, index: u64, time_ms: u64) {
        self.now_ms = self.now_ms.max(time_ms);
        self.last_index = self.last_index.max(index);
    }

    /// The registered session using `nick` (case-insensitive).
    pub fn find_nick(&self, nick: &str) -> Option<&Session> {
        let id = self.nicks.get(&fold(nick))?;
        self.sessions.get(id).filter(|s| s.registered)
    }

    /// Registered sessions (those counted as users).
    pub fn user_count(&self) -> (u64, u64) {
        let mut users = 0;
        let mut invisible = 0;
        for s in self.sessions.values().filter(|s| s.registered) {
            users += 1;
            if s.invisible {
                invisible += 1;
            }
        }
        (users, invisible)
    }

    /// Whether two sessions share at least one channel.
    pub fn share_channel(&self, a: SessionId, b: SessionId) -> bool {
        let (Some(sa), Some(sb)) = (self.sessions.get(&a), self.sessions.get(&b)) else {
            return false;
        };
        let (small, large) = if sa.channels.len() <= sb.channels.len() {
            (sa, sb)
        } else {
            (sb, sa)
        };
        small.channels.iter().any(|c| large.channels.contains(c))
    }

    /// Everyone who shares a channel with `id`, plus `id` itself when `include_self`.
    pub fn common_channel_peers(&self, id: SessionId, include_self: bool) -> BTreeSet<SessionId> {
        let mut peers = BTreeSet::new();
        if let Some(s) = self.sessions.get(&id) {
            for key in &s.channels {
                if let Some(ch) = self.channels.get(key) {
                    peers.extend(ch.members.keys().copied());
                }
            }
        }
        if include_self {
            peers.insert(id);
        } else {
            peers.remove(&id);
        }
        peers
    }

    pub fn record_whowas(&mut self, s: &Session) {
        if let (Some(nick), true) = (&s.nick, s.registered) {
            if self.whowas.len() >= WHOWAS_HISTORY {
                self.whowas.pop_front();
            }
            self.whowas.push_back(WhowasEntry {
                nick: nick.clone(),
                username: s.user().to_owned(),
                host: s.host(),
                realname: s.realname.clone(),
                left_ms: self.now_ms,
            });
        }
    }

    /// Removes `id` from channel `key`, deleting the channel when it becomes empty.
    pub fn leave_channel(&mut self, id: SessionId, key: &str) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.channels.remove(key);
        }
        let empty = match self.channels.get_mut(key) {
            Some(ch) => {
                ch.members.remove(&id);
                ch.members.is_empty()
            }
            None => false,
        };
        let registered = self.channels.get(key).is_some_and(|c| c.registered);
        if empty && !registered {
            self.remove_channel(key);
        }
    }

    /// Deletes a channel, forgetting its invitations.
    pub fn remove_channel(&mut self, key: &str) {
        if let Some(ch) = self.channels.remove(key) {
            for invited in ch.invites {
                if let Some(s) = self.sessions.get_mut(&invited) {
                    s.invited_to.remove(key);
                }
            }
        }
    }

    /// Forgets a session entirely: channels, invites, nick.
    pub fn remove_session(&mut self, id: SessionId) -> Option<Session> {
        let s = self.sessions.get(&id)?.clone();
        for key in &s.channels {
            self.leave_channel(id, key);
        }
        for key in &s.invited_to {
            if let Some(ch) = self.channels.get_mut(key) {
                ch.invites.remove(&id);
            }
        }
        if let Some(nick) = &s.nick {
            let folded = fold(nick);
            if self.nicks.get(&folded) == Some(&id) {
                self.nicks.remove(&folded);
            }
        }
        self.sessions.remove(&id)
    }
}
