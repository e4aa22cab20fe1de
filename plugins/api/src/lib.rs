//! The services contract (`wit/services-1.0.0/services.wit`) as plain Rust.
//!
//! A services plugin (NickServ, ChanServ, …) is a deterministic state machine: it gets
//! [`Event`]s and answers [`Action`]s, which the IRC logic checks and applies. Plugins are
//! written against the [`Plugin`] trait, so the same code runs natively (unit and golden
//! tests) and as a WebAssembly component (`plugins/guest` exports it with wit-bindgen).
//!
//! Rules a plugin follows, like the IRC logic (docs/ARCHITECTURE.md):
//! - time only from [`Context::time_ms`]; no clocks, randomness or I/O;
//! - only ordered collections in its state (`BTreeMap`, `BTreeSet`, `Vec`);
//! - never hash passwords itself: ask the host with [`Action::HashPassword`] and compare
//!   in the [`Event::PasswordHashed`] that follows in a later entry.

mod conversions;
mod support;
pub use support::{
    Args, CHANNELLEN, CommandSpec, Commands, ECHO_CHARS, civil_from_days, ctcp_reply, decode_state,
    encode_state, notice, parse_duration_ms, shown, utc_date, valid_channel_name,
};
#[cfg(feature = "guest")]
pub mod guest;
#[cfg(feature = "hasher")]
pub mod hasher;

/// Bounds of a [`Action::HashPassword`] request; one outside them is answered with an
/// error at once, before it reaches the host.
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const SALT_BYTES: std::ops::RangeInclusive<usize> = 8..=64;
pub const MAX_ALGORITHM_BYTES: usize = 64;

/// Why a hash request is refused outright, if it is.
pub fn check_hash_request(
    password: &str,
    salt: &[u8],
    algorithm: Option<&str>,
) -> Result<(), String> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!("passwords are at most {MAX_PASSWORD_BYTES} bytes"));
    }
    if !SALT_BYTES.contains(&salt.len()) {
        return Err(format!(
            "the salt must be {} to {} bytes",
            SALT_BYTES.start(),
            SALT_BYTES.end()
        ));
    }
    if algorithm.is_some_and(|a| a.len() > MAX_ALGORITHM_BYTES) {
        return Err("unknown password hash".into());
    }
    Ok(())
}

/// A session id, chosen by the host. Opaque.
pub type SessionId = u64;

/// The entry being applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    /// Raft log index.
    pub index: u64,
    /// Leader-stamped time, ms since the Unix epoch. The only clock.
    pub time_ms: u64,
}

/// A registered user as services see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub session: SessionId,
    pub nick: String,
    pub username: String,
    /// The account the session is logged in to.
    pub account: Option<String>,
    /// An IRC operator.
    pub oper: bool,
}

/// A user's place in one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelStatus {
    pub channel: String,
    pub op: bool,
    pub voice: bool,
}

/// A password hash computed by the host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hashed {
    /// The algorithm with its parameters, e.g. `argon2id$v=19$m=19456,t=2,p=1`.
    pub algorithm: String,
    pub hash: Vec<u8>,
}

/// Something a service is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `PRIVMSG <service nick> :<text>`, or one of the service's commands.
    Message {
        from: User,
        text: String,
        /// The sender's channels with its status there.
        channels: Vec<ChannelStatus>,
    },
    /// A session completed registration.
    Registered(User),
    /// A nick change; `user` has the new nick.
    NickChange { user: User, old_nick: String },
    Join {
        user: User,
        channel: String,
        /// The channel had no members before.
        created: bool,
    },
    /// The session left the network.
    Quit(User),
    Topic {
        channel: String,
        text: String,
        setter: String,
    },
    /// A session logged in or out; `user` has the new account.
    AccountChange {
        user: User,
        channels: Vec<ChannelStatus>,
    },
    /// SASL PLAIN credentials; answer with [`Action::SaslResult`].
    Sasl {
        session: SessionId,
        authzid: String,
        authcid: String,
        password: String,
    },
    /// Time passed.
    Tick,
    /// The service's `[Plugins.<name>]` settings as a TOML document (may be empty).
    Settings(String),
    /// The answer to [`Action::HashPassword`] with this `id`.
    PasswordHashed {
        id: u64,
        result: Result<Hashed, String>,
    },
    /// The registered users, sent with `Settings` when the service starts.
    Users(Vec<User>),
    /// An account was dropped ([`Action::DropAccount`] of any service).
    AccountDropped(String),
}

/// The events a service can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    Registered,
    NickChange,
    Join,
    Quit,
    Topic,
    AccountChange,
    Tick,
    AccountDropped,
}

impl Event {
    /// The subscription this event needs; `None` for events that always reach the service
    /// they are addressed to (messages, SASL, settings, hash results).
    pub fn kind(&self) -> Option<EventKind> {
        match self {
            Event::Registered(_) => Some(EventKind::Registered),
            Event::NickChange { .. } => Some(EventKind::NickChange),
            Event::Join { .. } => Some(EventKind::Join),
            Event::Quit(_) => Some(EventKind::Quit),
            Event::Topic { .. } => Some(EventKind::Topic),
            Event::AccountChange { .. } => Some(EventKind::AccountChange),
            Event::Tick => Some(EventKind::Tick),
            Event::AccountDropped(_) => Some(EventKind::AccountDropped),
            Event::Message { .. }
            | Event::Sasl { .. }
            | Event::Settings(_)
            | Event::PasswordHashed { .. }
            | Event::Users(_) => None,
        }
    }
}

/// Something a service asks for. The IRC logic checks each action and ignores those that
/// do not apply (a session that is gone, a nick in use, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A NOTICE from the service to a session.
    Notice { to: SessionId, text: String },
    /// Log a session in (`Some`) or out (`None`).
    SetAccount {
        session: SessionId,
        account: Option<String>,
    },
    /// Change a session's nick, announced like a NICK of its own.
    ForceNick { session: SessionId, nick: String },
    /// End a session with a reason.
    Kill { session: SessionId, reason: String },
    /// Channel modes set by the service, e.g. `+o` `["alice"]`.
    ChannelMode {
        channel: String,
        modes: String,
        args: Vec<String>,
    },
    /// A topic set by the service.
    SetTopic { channel: String, text: String },
    /// A registered channel survives when empty.
    RegisterChannel { channel: String, registered: bool },
    /// The answer to [`Event::Sasl`]: the account, or `None` for a failure.
    SaslResult {
        session: SessionId,
        account: Option<String>,
    },
    /// Ask the host for a slow salted hash, answered by [`Event::PasswordHashed`] in a
    /// later entry. `algorithm: None` uses the host's default (for new passwords).
    HashPassword {
        id: u64,
        password: String,
        salt: Vec<u8>,
        algorithm: Option<String>,
    },
    /// An account is gone: its sessions are logged out and services subscribed to
    /// [`EventKind::AccountDropped`] are told.
    DropAccount(String),
}

/// What a service says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginInfo {
    /// e.g. `nickserv`: the key of its settings and state.
    pub name: String,
    pub version: String,
    pub snapshot_format: u32,
    /// The pseudo-user's nick, e.g. `NickServ`.
    pub nick: String,
    pub description: String,
    /// Commands that address it directly, e.g. `NS`, `NICKSERV`.
    pub commands: Vec<String>,
    pub subscriptions: Vec<EventKind>,
    /// It answers SASL PLAIN.
    pub sasl: bool,
}

/// A services plugin. Implementations are deterministic (see the crate docs).
pub trait Plugin {
    fn info(&self) -> PluginInfo;
    /// Whether these `[Plugins.<name>]` settings (their own TOML document) would be
    /// accepted; `Err` names the key and the reason. Asked before a configuration is
    /// committed; must not change the state.
    fn check_settings(&self, settings: &str) -> Result<(), String> {
        let _ = settings;
        Ok(())
    }
    /// Handles events in order; returns the actions to apply, in order.
    fn handle(&mut self, ctx: &Context, events: Vec<Event>) -> Vec<Action>;
    /// The whole state: a format number first, so `restore` can read older formats.
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the whole state with a snapshot. On `Err` the state is unchanged.
    fn restore(&mut self, data: &[u8]) -> Result<(), String>;
}

/// Folds one byte under RFC 1459 case mapping (the network's `CASEMAPPING`):
/// `A-Z` → `a-z`, `[]\~` → `{}|^`.
pub fn casefold_byte(b: u8) -> u8 {
    match b {
        b'A'..=b'Z' => b + 32,
        b'[' => b'{',
        b']' => b'}',
        b'\\' => b'|',
        b'~' => b'^',
        other => other,
    }
}

/// The case-folded form of a nick, account or channel name: equal for names IRC treats
/// as equal. Services key their state by it.
pub fn casefold(s: &str) -> String {
    // Folding only touches ASCII bytes, so the result stays valid UTF-8.
    String::from_utf8(s.bytes().map(casefold_byte).collect()).unwrap_or_default()
}

/// Splits a service command into its upper-cased command word and the rest (trimmed):
/// `"identify  secret"` → `("IDENTIFY", "secret")`.
pub fn command_word(text: &str) -> (String, &str) {
    let text = text.trim();
    let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
    (word.to_ascii_uppercase(), rest.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_words() {
        assert_eq!(command_word(" identify  pw "), ("IDENTIFY".into(), "pw"));
        assert_eq!(command_word("HELP"), ("HELP".into(), ""));
        assert_eq!(command_word(""), (String::new(), ""));
    }

    #[test]
    fn folds_rfc1459() {
        assert_eq!(casefold("Alice[]\\~"), "alice{}|^");
        assert_eq!(casefold("#Chan"), "#chan");
    }

    #[test]
    fn always_delivered_events_have_no_kind() {
        assert_eq!(Event::Tick.kind(), Some(EventKind::Tick));
        assert_eq!(Event::Settings(String::new()).kind(), None);
    }
}
