//! The whole replicated state of NickServ: accounts, the sessions it knows of, pending
//! hash requests, failed attempts and settings. Everything here is in the snapshot.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use unsplit_services::{SessionId, User, casefold};

use crate::settings::Settings;

/// A hash request not answered after this long (entry time) is forgotten.
pub(crate) const HASH_TIMEOUT_MS: u64 = 60_000;
/// At most this many failed password attempts per account …
pub(crate) const MAX_FAILURES: usize = 5;
/// … within this long.
pub(crate) const FAILURE_WINDOW_MS: u64 = 5 * 60_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    pub settings: Settings,
    /// Registered accounts by folded name.
    pub accounts: BTreeMap<String, Account>,
    /// The sessions seen in events, until they quit.
    pub sessions: BTreeMap<SessionId, Session>,
    /// Hash requests waiting for their `PasswordHashed`, by request id.
    pub pending: BTreeMap<u64, Pending>,
    /// Entry times of recent failed password attempts, by folded account.
    pub failures: BTreeMap<String, Vec<u64>>,
    /// The id of the next hash request.
    pub next_hash_id: u64,
    /// The number of the next guest nick.
    pub next_guest: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Account {
    /// The nick it was registered with, case kept.
    pub name: String,
    pub password: Password,
    pub email: Option<String>,
    pub registered_ms: u64,
}

/// A stored password: never the password itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Password {
    pub algorithm: String,
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Session {
    pub nick: String,
    /// The account it is logged in to, as the IRC logic last told us.
    pub account: Option<String>,
    /// It was told to identify for a registered nick.
    pub warned: Option<Warned>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Warned {
    /// The folded nick it was warned about.
    pub nick: String,
    /// When it loses the nick (none: enforcement was off).
    pub deadline_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pending {
    /// Who asked.
    pub session: SessionId,
    /// The entry time of the request.
    pub asked_ms: u64,
    /// The salt sent: a new password's, or the stored one being verified against.
    pub salt: Vec<u8>,
    pub purpose: Purpose,
}

/// What to do with a hash once it arrives. Accounts are folded names, except
/// `Register`'s, which is the name to register (case kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Purpose {
    /// A new account.
    Register {
        account: String,
        email: Option<String>,
    },
    /// A new password for an account.
    SetPassword { account: String },
    /// Verify, then log the session in.
    Identify { account: String },
    /// Verify, then answer the SASL request.
    Sasl { account: String },
    /// Verify, then kill the session using the nick.
    Ghost { account: String },
    /// Verify, then take the nick back and log in.
    Regain { account: String },
    /// Verify, then drop the account.
    Drop { account: String },
}

impl Purpose {
    /// The folded account a verification is about; none for new passwords.
    pub(crate) fn verifies(&self) -> Option<&str> {
        match self {
            Purpose::Register { .. } | Purpose::SetPassword { .. } => None,
            Purpose::Identify { account }
            | Purpose::Sasl { account }
            | Purpose::Ghost { account }
            | Purpose::Regain { account }
            | Purpose::Drop { account } => Some(account),
        }
    }

    /// The folded account a verification would log the session in to (IDENTIFY, SASL).
    pub(crate) fn logs_in_to(&self) -> Option<&str> {
        match self {
            Purpose::Identify { account } | Purpose::Sasl { account } => Some(account),
            _ => None,
        }
    }
}

impl Session {
    pub(crate) fn from_user(user: &User) -> Session {
        Session {
            nick: user.nick.clone(),
            account: user.account.clone(),
            warned: None,
        }
    }

    /// Logged in to the account with this folded name.
    pub(crate) fn is_logged_in_to(&self, folded: &str) -> bool {
        self.account
            .as_deref()
            .is_some_and(|a| casefold(a) == folded)
    }
}

impl State {
    /// Records what an event says about a session (a warning stays).
    pub(crate) fn see(&mut self, user: &User) {
        let session = self
            .sessions
            .entry(user.session)
            .or_insert_with(|| Session::from_user(user));
        session.nick.clone_from(&user.nick);
        session.account.clone_from(&user.account);
    }

    /// The sessions on the network, all of them (`Users`, when the service starts): the
    /// ones known before are forgotten, with their hash requests, unless listed again
    /// (then their warning stays).
    pub(crate) fn replace_sessions(&mut self, users: &[User]) {
        let old = std::mem::take(&mut self.sessions);
        for user in users {
            let mut session = Session::from_user(user);
            session.warned = old.get(&user.session).and_then(|s| s.warned.clone());
            self.sessions.insert(user.session, session);
        }
        let sessions = &self.sessions;
        self.pending
            .retain(|_, p| sessions.contains_key(&p.session));
    }

    /// The session using a nick (folded), if any.
    pub(crate) fn session_by_nick(&self, folded: &str) -> Option<SessionId> {
        self.sessions
            .iter()
            .find(|(_, s)| casefold(&s.nick) == folded)
            .map(|(id, _)| *id)
    }

    /// The sessions logged in to an account (folded), in id order.
    pub(crate) fn logged_in(&self, folded: &str) -> Vec<SessionId> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.is_logged_in_to(folded))
            .map(|(id, _)| *id)
            .collect()
    }

    pub(crate) fn has_pending(&self, session: SessionId) -> bool {
        self.pending.values().any(|p| p.session == session)
    }

    /// A new hash request id.
    pub(crate) fn next_id(&mut self) -> u64 {
        let id = self.next_hash_id;
        self.next_hash_id = self.next_hash_id.wrapping_add(1);
        id
    }

    /// A guest nick that is neither registered nor in use as far as we know. The IRC
    /// logic picks another if it is taken after all.
    pub(crate) fn guest_nick(&mut self) -> String {
        let mut candidate = String::new();
        for _ in 0..64 {
            self.next_guest = self.next_guest.wrapping_add(1);
            candidate = format!("{}{}", self.settings.guest_prefix, self.next_guest);
            let folded = casefold(&candidate);
            if !self.accounts.contains_key(&folded) && self.session_by_nick(&folded).is_none() {
                break;
            }
        }
        candidate
    }

    /// Failed attempts within the window plus verifications under way: the attempts
    /// that count against the limit.
    pub(crate) fn attempts(&self, folded: &str, now: u64) -> usize {
        let failed = self.failures.get(folded).map_or(0, |times| {
            times
                .iter()
                .filter(|&&t| t.saturating_add(FAILURE_WINDOW_MS) > now)
                .count()
        });
        let pending = self
            .pending
            .values()
            .filter(|p| p.purpose.verifies() == Some(folded))
            .count();
        failed.saturating_add(pending)
    }

    pub(crate) fn record_failure(&mut self, folded: &str, now: u64) {
        let times = self.failures.entry(folded.to_owned()).or_default();
        times.retain(|&t| t.saturating_add(FAILURE_WINDOW_MS) > now);
        times.push(now);
        if times.len() > MAX_FAILURES {
            let excess = times.len() - MAX_FAILURES;
            times.drain(..excess);
        }
    }

    /// Forgets failures older than the window.
    pub(crate) fn prune_failures(&mut self, now: u64) {
        for times in self.failures.values_mut() {
            times.retain(|&t| t.saturating_add(FAILURE_WINDOW_MS) > now);
        }
        self.failures.retain(|_, times| !times.is_empty());
    }

    /// The display name of an account (folded), or the folded name if it is gone.
    pub(crate) fn display(&self, folded: &str) -> String {
        self.accounts
            .get(folded)
            .map_or_else(|| folded.to_owned(), |a| a.name.clone())
    }
}
