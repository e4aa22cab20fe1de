//! ACCESS <#channel> LIST | ADD <account> <flags> | DEL <account>: a channel's access
//! list. LIST is for anyone with a flag there and for IRC operators; ADD and DEL need
//! `f`. Only founders grant, remove or change founders, and a founder's `F` is removed
//! only by that founder, never leaving the channel without one.

use unsplit_services::{casefold, shown};

use super::{Args, Call, ChannelArg, Command};
use crate::flags::{Change, Flags};
use crate::state::Access;

pub(crate) const COMMAND: Command = Command {
    name: "ACCESS",
    min_args: 2,
    needs_login: false,
    channel: ChannelArg::Registered,
    flag: None,
    syntax: "ACCESS <#channel> LIST | ADD <account> <flags> | DEL <account>",
    summary: "Shows or changes a channel's access list.",
    help: &[
        "LIST shows who has which flags. ADD sets an account's flags: +flags adds, -flags",
        "removes, plain letters set exactly. DEL removes an account. ADD and DEL need f.",
        "Flags: F founder (all flags), f edit the access list, o OP/DEOP, O auto-op on join,",
        "v VOICE/DEVOICE, V auto-voice on join, t TOPIC.",
    ],
    handler,
};

fn handler(call: &mut Call<'_>, args: &Args<'_>) {
    let sub = args.get(1).unwrap_or_default().to_ascii_uppercase();
    match (sub.as_str(), args.get(2), args.get(3)) {
        ("LIST", _, _) => list(call, args),
        ("ADD", Some(account), Some(flags)) => add(call, args, account, flags),
        ("DEL", Some(account), _) => del(call, args, account),
        _ => call.reply(format!("Syntax: {}", COMMAND.syntax)),
    }
}

fn list(call: &mut Call<'_>, args: &Args<'_>) {
    let folded = args.folded(0);
    let mine = call.flags(&folded);
    let Some(channel) = call.st.channels.get(&folded) else {
        return;
    };
    if mine.is_empty() && !call.from.oper {
        let text = format!("You have no access to {}.", channel.name);
        call.reply(text);
        return;
    }
    let mut lines = vec![format!("Access list of {}:", channel.name)];
    for entry in channel.access.values() {
        lines.push(format!("{} {}", entry.account, entry.flags));
    }
    let n = channel.access.len();
    lines.push(format!(
        "End of access list ({n} {}).",
        if n == 1 { "entry" } else { "entries" }
    ));
    for line in lines {
        call.reply(line);
    }
}

/// An account name as nicks go: letters, digits, `[]\`_^{|}-`, not starting with a
/// digit or `-`, at most 50 bytes.
fn valid_account(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || "[]\\`_^{|}-".contains(c);
    name.len() <= 50
        && name.chars().all(ok)
        && name
            .chars()
            .next()
            .is_some_and(|c| !c.is_ascii_digit() && c != '-')
}

/// Whether the sender may take founder status from `target` (folded): only its own,
/// and only if another founder remains. The refusal otherwise.
fn may_unfound(call: &Call<'_>, folded_channel: &str, target: &str) -> Result<(), String> {
    let Some(channel) = call.st.channels.get(folded_channel) else {
        return Err(String::new());
    };
    let me = call.from.account.as_deref().map(casefold);
    let display = channel
        .access
        .get(target)
        .map_or(target, |e| e.account.as_str());
    if me.as_deref() != Some(target) {
        return Err(format!(
            "{display} is a founder of {}; only {display} can give that up.",
            channel.name
        ));
    }
    if channel.founders().len() <= 1 {
        return Err(format!(
            "You are the only founder of {}; drop the channel instead.",
            channel.name
        ));
    }
    Ok(())
}

/// ADD and DEL (`sub`) begin alike: the sender needs `f` on the channel (folded).
/// The sender's flags and the channel's name if so; `None` once refused.
fn editor(call: &mut Call<'_>, folded: &str, sub: &str) -> Option<(Flags, String)> {
    let mine = call.flags(folded);
    let name = call.st.channels.get(folded)?.name.clone();
    if !mine.allows(Flags::ACCESS) {
        call.reply(format!(
            "You need the f flag on {name} to use ACCESS {sub}."
        ));
        return None;
    }
    Some((mine, name))
}

fn add(call: &mut Call<'_>, args: &Args<'_>, account: &str, flags: &str) {
    let folded = args.folded(0);
    let Some((mine, name)) = editor(call, &folded, "ADD") else {
        return;
    };
    if !valid_account(account) {
        call.reply(format!("{} is not a valid account name.", shown(account)));
        return;
    }
    let change = match Change::parse(flags) {
        Ok(change) => change,
        Err(e) => {
            call.reply(e.to_string());
            return;
        }
    };
    let target = casefold(account);
    let old = call
        .st
        .channels
        .get(&folded)
        .map_or(Flags::NONE, |c| c.flags(Some(account)));
    let new = change.apply(old);
    if (old.is_founder() || new.is_founder()) && !mine.is_founder() {
        call.reply(format!("Only a founder of {name} can change founders."));
        return;
    }
    if old.is_founder()
        && !new.is_founder()
        && let Err(refusal) = may_unfound(call, &folded, &target)
    {
        call.reply(refusal);
        return;
    }
    let Some(channel) = call.st.channels.get_mut(&folded) else {
        return;
    };
    if new.is_empty() {
        let removed = channel.access.remove(&target);
        let display = removed.map_or_else(|| account.to_owned(), |e| e.account);
        call.reply(format!("{display} has no access to {name} now."));
        return;
    }
    let entry = channel.access.entry(target).or_insert_with(|| Access {
        account: account.to_owned(),
        flags: Flags::NONE,
    });
    entry.flags = new;
    let text = format!("The flags of {} on {name} are now {new}.", entry.account);
    call.reply(text);
}

fn del(call: &mut Call<'_>, args: &Args<'_>, account: &str) {
    let folded = args.folded(0);
    let Some((_, name)) = editor(call, &folded, "DEL") else {
        return;
    };
    let target = casefold(account);
    let entry = call
        .st
        .channels
        .get(&folded)
        .and_then(|c| c.access.get(&target));
    let Some(entry) = entry else {
        call.reply(format!(
            "{} is not on the access list of {name}.",
            shown(account)
        ));
        return;
    };
    if entry.flags.is_founder()
        && let Err(refusal) = may_unfound(call, &folded, &target)
    {
        call.reply(refusal);
        return;
    }
    let removed = call
        .st
        .channels
        .get_mut(&folded)
        .and_then(|c| c.access.remove(&target));
    let display = removed.map_or_else(|| account.to_owned(), |e| e.account);
    call.reply(format!(
        "{display} has been removed from the access list of {name}."
    ));
}
