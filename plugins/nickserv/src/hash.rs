//! Password hashes through the host: asking (`HashPassword`), the answer
//! (`PasswordHashed`, a later entry) and requests that are never answered.
//!
//! A session has at most one request under way. New passwords get a fresh salt derived
//! from replicated data; verifications send the stored salt and algorithm and compare
//! the hash that comes back with the stored one.

use unsplit_services::{Action, Context, Hashed, MAX_PASSWORD_BYTES, SessionId, casefold, notice};

use crate::commands::{drop, ghost, identify, regain};
use crate::protect;
use crate::state::{Account, HASH_TIMEOUT_MS, MAX_FAILURES, Password, Pending, Purpose, State};

/// Why a hash was not asked for. The texts are the notices the user gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("Please wait, your previous request is still being processed.")]
    Busy,
    #[error("Too many failed attempts for {0}; try again later.")]
    Locked(String),
    #[error("{0} is not registered.")]
    NotRegistered(String),
    #[error("That password is too long.")]
    TooLong,
}

/// 16 to 64 bytes, unique per request: the entry, the request id and the account.
fn new_salt(ctx: &Context, id: u64, folded: &str) -> Vec<u8> {
    let mut salt = format!("nickserv:{}:{}:{id}:{folded}", ctx.index, ctx.time_ms).into_bytes();
    salt.truncate(64);
    if salt.len() < 16 {
        salt.resize(16, b'.');
    }
    salt
}

/// What a new password is for: the purposes that ask for a hash without verifying one.
pub(crate) enum NewPassword {
    /// A new account: the name to register (case kept).
    Register {
        account: String,
        email: Option<String>,
    },
    /// A new password for an account (folded).
    SetPassword { account: String },
}

/// Asks for the hash of a new password (REGISTER, SET PASSWORD).
pub(crate) fn request_new(
    st: &mut State,
    ctx: &Context,
    out: &mut Vec<Action>,
    session: SessionId,
    password: &str,
    new: NewPassword,
) -> Result<(), Refusal> {
    if st.has_pending(session) {
        return Err(Refusal::Busy);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Refusal::TooLong);
    }
    let (folded, purpose) = match new {
        NewPassword::Register { account, email } => {
            (casefold(&account), Purpose::Register { account, email })
        }
        NewPassword::SetPassword { account } => (account.clone(), Purpose::SetPassword { account }),
    };
    let id = st.next_id();
    let salt = new_salt(ctx, id, &folded);
    let pending = Pending {
        session,
        asked_ms: ctx.time_ms,
        salt,
        purpose,
    };
    ask(st, out, id, password, None, pending);
    Ok(())
}

/// Asks for the hash of a password to compare with an account's (`name` as typed).
/// `purpose` names the same account, folded.
pub(crate) fn request_verify(
    st: &mut State,
    ctx: &Context,
    out: &mut Vec<Action>,
    session: SessionId,
    name: &str,
    password: &str,
    purpose: Purpose,
) -> Result<(), Refusal> {
    let folded = casefold(name);
    let Some(account) = st.accounts.get(&folded) else {
        return Err(Refusal::NotRegistered(name.to_owned()));
    };
    if st.has_pending(session) {
        return Err(Refusal::Busy);
    }
    if st.attempts(&folded, ctx.time_ms) >= MAX_FAILURES {
        return Err(Refusal::Locked(account.name.clone()));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Refusal::TooLong);
    }
    let Password {
        algorithm, salt, ..
    } = account.password.clone();
    let id = st.next_id();
    let pending = Pending {
        session,
        asked_ms: ctx.time_ms,
        salt,
        purpose,
    };
    ask(st, out, id, password, Some(algorithm), pending);
    Ok(())
}

/// Sends hash request `id` to the host and keeps what to do with its answer.
fn ask(
    st: &mut State,
    out: &mut Vec<Action>,
    id: u64,
    password: &str,
    algorithm: Option<String>,
    pending: Pending,
) {
    out.push(Action::HashPassword {
        id,
        password: password.to_owned(),
        salt: pending.salt.clone(),
        algorithm,
    });
    st.pending.insert(id, pending);
}

/// A `PasswordHashed` event: finishes the request it answers (unknown ids — expired,
/// or their session quit — are ignored).
pub(crate) fn on_result(
    st: &mut State,
    ctx: &Context,
    out: &mut Vec<Action>,
    id: u64,
    result: Result<Hashed, String>,
) {
    let Some(pending) = st.pending.remove(&id) else {
        return;
    };
    let session = pending.session;
    match pending.purpose {
        Purpose::Register { account, email } => {
            let hashed = match result {
                Ok(hashed) => hashed,
                Err(reason) => {
                    notice(out, session, format!("Registration failed: {reason}."));
                    return;
                }
            };
            let folded = casefold(&account);
            if st.accounts.contains_key(&folded) {
                notice(out, session, format!("{account} is already registered."));
                return;
            }
            st.accounts.insert(
                folded,
                Account {
                    name: account.clone(),
                    password: Password {
                        algorithm: hashed.algorithm,
                        salt: pending.salt,
                        hash: hashed.hash,
                    },
                    email,
                    registered_ms: ctx.time_ms,
                },
            );
            out.push(Action::SetAccount {
                session,
                account: Some(account.clone()),
            });
            notice(
                out,
                session,
                format!("{account} is now registered to you, and you are now identified."),
            );
            // Someone else may have taken the nick while the hash was computed.
            if let Some(holder) = st.session_by_nick(&casefold(&account))
                && holder != session
            {
                protect::check(st, ctx, out, holder);
            }
        }
        Purpose::SetPassword { account } => {
            let hashed = match result {
                Ok(hashed) => hashed,
                Err(reason) => {
                    notice(
                        out,
                        session,
                        format!("Your password was not changed: {reason}."),
                    );
                    return;
                }
            };
            let Some(entry) = st.accounts.get_mut(&account) else {
                notice(out, session, format!("{account} is not registered."));
                return;
            };
            entry.password = Password {
                algorithm: hashed.algorithm,
                salt: pending.salt,
                hash: hashed.hash,
            };
            let text = format!("The password for {} has been changed.", entry.name);
            notice(out, session, text);
        }
        purpose => verified(st, ctx, out, session, &pending.salt, purpose, result),
    }
}

/// The answer to a verification: compare, count a failure, or carry the purpose out.
fn verified(
    st: &mut State,
    ctx: &Context,
    out: &mut Vec<Action>,
    session: SessionId,
    salt: &[u8],
    purpose: Purpose,
    result: Result<Hashed, String>,
) {
    let folded = purpose.verifies().unwrap_or_default().to_owned();
    let name = match compare(st, ctx, &folded, salt, result) {
        Ok(name) => name,
        Err(text) => {
            match purpose {
                Purpose::Sasl { .. } => out.push(Action::SaslResult {
                    session,
                    account: None,
                }),
                _ => notice(out, session, text),
            }
            // A login under way held the nick protection back; it starts now.
            protect::check(st, ctx, out, session);
            return;
        }
    };
    match purpose {
        Purpose::Sasl { .. } => out.push(Action::SaslResult {
            session,
            account: Some(name),
        }),
        Purpose::Identify { .. } => identify::complete(st, out, session, &folded),
        Purpose::Ghost { .. } => ghost::complete(st, out, session, &folded),
        Purpose::Regain { .. } => regain::complete(st, out, session, &folded, true),
        Purpose::Drop { .. } => drop::complete(st, out, session, &folded),
        Purpose::Register { .. } | Purpose::SetPassword { .. } => {}
    }
}

/// The account's display name if `result` is its password's hash; otherwise the
/// refusal to tell the user (a wrong password counts as a failed attempt).
fn compare(
    st: &mut State,
    ctx: &Context,
    folded: &str,
    salt: &[u8],
    result: Result<Hashed, String>,
) -> Result<String, String> {
    let hashed = result.map_err(|reason| {
        format!("The password could not be checked: {reason}. Please try again.")
    })?;
    let account = st
        .accounts
        .get(folded)
        .ok_or_else(|| format!("{folded} is not registered."))?;
    let stored = &account.password;
    let matches =
        stored.salt == salt && stored.algorithm == hashed.algorithm && stored.hash == hashed.hash;
    let name = account.name.clone();
    if !matches {
        st.record_failure(folded, ctx.time_ms);
        return Err(format!("Invalid password for {name}."));
    }
    st.failures.remove(folded);
    Ok(name)
}

/// On a tick: forgets requests older than [`HASH_TIMEOUT_MS`] and tells whoever waits.
pub(crate) fn expire(st: &mut State, ctx: &Context, out: &mut Vec<Action>) {
    let expired: Vec<u64> = st
        .pending
        .iter()
        .filter(|(_, p)| ctx.time_ms >= p.asked_ms.saturating_add(HASH_TIMEOUT_MS))
        .map(|(id, _)| *id)
        .collect();
    for id in expired {
        let Some(pending) = st.pending.remove(&id) else {
            continue;
        };
        match pending.purpose {
            Purpose::Sasl { .. } => out.push(Action::SaslResult {
                session: pending.session,
                account: None,
            }),
            _ => notice(
                out,
                pending.session,
                "Your request timed out; please try again.",
            ),
        }
        protect::check(st, ctx, out, pending.session);
    }
}
