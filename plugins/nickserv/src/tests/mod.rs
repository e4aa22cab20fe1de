//! Tests that drive NickServ only through the `Plugin` trait with synthetic events and
//! assert the exact actions. Password hashes are faked (the plugin only compares them):
//! the password's bytes reversed, then the salt.

use unsplit_services::{Action, Context, Event, Hashed, Plugin, SessionId, User};

use crate::NickServ;

mod accounts;
mod nicks;
mod security;
mod snapshots;

/// 2026-11-21 13:03:19 UTC.
pub(crate) const T0: u64 = 1_795_266_199_000;

pub(crate) struct H {
    pub ns: NickServ,
    pub now: u64,
    pub index: u64,
}

pub(crate) fn user(session: SessionId, nick: &str) -> User {
    User {
        session,
        nick: nick.into(),
        username: "u".into(),
        account: None,
        oper: false,
    }
}

pub(crate) fn logged(mut u: User, account: &str) -> User {
    u.account = Some(account.into());
    u
}

pub(crate) fn fake_hash(password: &str, salt: &[u8], algorithm: Option<&str>) -> Hashed {
    let mut hash: Vec<u8> = password.bytes().rev().collect();
    hash.extend_from_slice(salt);
    Hashed {
        algorithm: algorithm.unwrap_or("fake$v=1").into(),
        hash,
    }
}

pub(crate) fn notice(to: SessionId, text: &str) -> Action {
    Action::Notice {
        to,
        text: text.into(),
    }
}

/// The hash requests among some actions: (id, password, salt, algorithm).
pub(crate) fn hash_requests(actions: &[Action]) -> Vec<(u64, String, Vec<u8>, Option<String>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::HashPassword {
                id,
                password,
                salt,
                algorithm,
            } => Some((*id, password.clone(), salt.clone(), algorithm.clone())),
            _ => None,
        })
        .collect()
}

impl H {
    pub(crate) fn new() -> H {
        H {
            ns: NickServ::default(),
            now: T0,
            index: 100,
        }
    }

    pub(crate) fn handle(&mut self, events: Vec<Event>) -> Vec<Action> {
        self.index += 1;
        let ctx = Context {
            index: self.index,
            time_ms: self.now,
        };
        self.ns.handle(&ctx, events)
    }

    pub(crate) fn one(&mut self, event: Event) -> Vec<Action> {
        self.handle(vec![event])
    }

    pub(crate) fn msg(&mut self, from: &User, text: &str) -> Vec<Action> {
        self.one(Event::Message {
            from: from.clone(),
            text: text.into(),
            channels: vec![],
        })
    }

    pub(crate) fn tick(&mut self) -> Vec<Action> {
        self.one(Event::Tick)
    }

    pub(crate) fn advance(&mut self, ms: u64) {
        self.now += ms;
    }

    /// Answers every hash request in `actions` (each in its own later entry), as the
    /// host would; returns what the plugin answered, in order.
    pub(crate) fn answer(&mut self, actions: &[Action]) -> Vec<Action> {
        let mut out = Vec::new();
        for (id, password, salt, algorithm) in hash_requests(actions) {
            let result = Ok(fake_hash(&password, &salt, algorithm.as_deref()));
            out.extend(self.one(Event::PasswordHashed { id, result }));
        }
        out
    }

    /// A message that needs a hash, and the answer to it.
    pub(crate) fn msg_hashed(&mut self, from: &User, text: &str) -> Vec<Action> {
        let asked = self.msg(from, text);
        assert_eq!(hash_requests(&asked).len(), 1, "{text}: {asked:?}");
        self.answer(&asked)
    }

    /// A session completes registration.
    pub(crate) fn connect(&mut self, session: SessionId, nick: &str) -> (User, Vec<Action>) {
        let u = user(session, nick);
        let out = self.one(Event::Registered(u.clone()));
        (u, out)
    }

    /// Tells the plugin a session logged in or out (as the logic would after SetAccount).
    pub(crate) fn account_change(&mut self, u: &User) -> Vec<Action> {
        self.one(Event::AccountChange {
            user: u.clone(),
            channels: vec![],
        })
    }

    /// Connects `nick`, registers it with `password` and logs it in; the user returned
    /// carries the account.
    pub(crate) fn registered(&mut self, session: SessionId, nick: &str, password: &str) -> User {
        let (u, _) = self.connect(session, nick);
        let done = self.msg_hashed(&u, &format!("REGISTER {password}"));
        assert!(
            done.contains(&Action::SetAccount {
                session,
                account: Some(nick.into())
            }),
            "{done:?}"
        );
        let u = logged(u, nick);
        assert_eq!(self.account_change(&u), vec![]);
        u
    }

    pub(crate) fn nick_change(&mut self, u: &User, nick: &str) -> (User, Vec<Action>) {
        let mut new = u.clone();
        new.nick = nick.into();
        let out = self.one(Event::NickChange {
            user: new.clone(),
            old_nick: u.nick.clone(),
        });
        (new, out)
    }
}
