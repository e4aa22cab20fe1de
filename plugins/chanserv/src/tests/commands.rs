//! HELP, REGISTER, DROP, INFO, OP/DEOP/VOICE/DEVOICE and TOPIC.

use unsplit_services::{Action, Event, EventKind, Plugin};

use super::*;

#[test]
fn info_follows_the_conventions() {
    let info = ChanServ::default().info();
    assert_eq!(info.name, "chanserv");
    assert_eq!(info.nick, "ChanServ");
    assert_eq!(info.description, "Channel services");
    assert_eq!(info.commands, vec!["CS", "CHANSERV"]);
    assert_eq!(
        info.subscriptions,
        vec![
            EventKind::Join,
            EventKind::Topic,
            EventKind::AccountChange,
            EventKind::AccountDropped
        ]
    );
    assert!(!info.sasl);
    assert_eq!(info.snapshot_format, crate::SNAPSHOT_FORMAT);
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn help_unknown_and_empty() {
    let mut h = H::new();
    let u = user(1, "bob", None);
    let list = h.msg(&u, "HELP", &[]);
    assert_eq!(list.len(), 12);
    assert_eq!(
        list[9],
        notice(1, "ACCESS   Shows or changes a channel's access list.")
    );
    assert_eq!(
        h.msg(&u, "help op", &[]),
        vec![
            notice(1, "Syntax: OP <#channel> [nick]"),
            notice(
                1,
                "Gives you or someone channel operator status. Needs the o flag on the channel."
            ),
        ]
    );
    assert_eq!(
        h.msg(&u, "HELP nope", &[]),
        vec![notice(1, "No help available for NOPE.")]
    );
    assert_eq!(
        h.msg(&u, "FOO #chan", &[]),
        vec![notice(
            1,
            "Unknown command FOO. Type /msg ChanServ HELP for help."
        )]
    );
    assert_eq!(
        h.msg(&u, "", &[]),
        vec![notice(1, "Type /msg ChanServ HELP for help.")]
    );
    assert_eq!(
        h.msg(&u, "\u{1}VERSION\u{1}", &[]),
        vec![notice(
            1,
            &format!(
                "\u{1}VERSION unsplit ChanServ {}\u{1}",
                env!("CARGO_PKG_VERSION")
            )
        )]
    );
}

#[test]
fn register_refusals() {
    let (mut h, alice) = H::with_channel();
    let bob = user(2, "bob", Some("bob"));
    let anon = user(3, "anon", None);
    assert_eq!(
        h.msg(&anon, "REGISTER #other", &[on("#other", true, false)]),
        vec![notice(3, "You need to be logged in to use REGISTER.")]
    );
    assert_eq!(
        h.msg(&bob, "REGISTER", &[]),
        vec![
            notice(2, "Insufficient parameters for REGISTER."),
            notice(2, "Syntax: REGISTER <#channel>"),
        ]
    );
    assert_eq!(
        h.msg(&bob, "REGISTER other", &[]),
        vec![notice(2, "other is not a valid channel name.")]
    );
    assert_eq!(
        h.msg(&bob, "REGISTER #other", &[on("#elsewhere", true, false)]),
        vec![notice(2, "You are not on #other.")]
    );
    assert_eq!(
        h.msg(&bob, "REGISTER #other", &[on("#Other", false, true)]),
        vec![notice(
            2,
            "You must be a channel operator in #Other to register it."
        )]
    );
    assert_eq!(
        h.msg(&alice, "REGISTER #CHAN", &[on("#Chan", true, false)]),
        vec![notice(1, "#Chan is already registered.")]
    );
}

#[test]
fn drop_by_founder_or_oper() {
    let (mut h, alice) = H::with_channel();
    let bob = user(2, "bob", Some("bob"));
    assert_eq!(
        h.msg(&bob, "DROP #chan", &[]),
        vec![notice(
            2,
            "Only a founder of #Chan or an IRC operator can drop it."
        )]
    );
    assert_eq!(
        h.msg(&bob, "DROP #none", &[]),
        vec![notice(2, "#none is not registered.")]
    );
    assert_eq!(
        h.msg(&alice, "DROP #CHAN", &[]),
        vec![
            Action::RegisterChannel {
                channel: "#Chan".into(),
                registered: false
            },
            notice(1, "#Chan has been dropped."),
        ]
    );
    assert_eq!(
        h.msg(&alice, "INFO #chan", &[]),
        vec![notice(1, "#chan is not registered.")]
    );
    let (mut h, _) = H::with_channel();
    let mut oper = user(3, "oper", None);
    oper.oper = true;
    assert_eq!(h.msg(&oper, "DROP #chan", &[]).len(), 2);
}

#[test]
fn info_shows_founder_date_and_topic() {
    let (mut h, _) = H::with_channel();
    let bob = user(2, "bob", None);
    let expected = |topic: &str| {
        vec![
            notice(2, "Information on #Chan:"),
            notice(2, "Founder: Alice"),
            notice(2, "Registered: 2026-11-21 13:03:19 UTC"),
            notice(2, topic),
            notice(2, "End of information on #Chan."),
        ]
    };
    assert_eq!(h.msg(&bob, "INFO #chan", &[]), expected("Topic: none"));
    h.one(Event::Topic {
        channel: "#chan".into(),
        text: "Welcome!".into(),
        setter: "alice!u@unsplit/0x1".into(),
    });
    assert_eq!(
        h.msg(&bob, "INFO #chan", &[]),
        expected("Topic: Welcome! (set by alice!u@unsplit/0x1)")
    );
}

#[test]
fn op_deop_voice_devoice() {
    let (mut h, alice) = H::with_channel();
    let here = [on("#chan", false, false)];
    assert_eq!(
        h.msg(&alice, "OP #chan", &here),
        vec![
            mode("#Chan", "+o", "alice"),
            notice(1, "alice has been opped on #Chan."),
        ]
    );
    assert_eq!(
        h.msg(&alice, "DEOP #chan bob", &here),
        vec![
            mode("#Chan", "-o", "bob"),
            notice(1, "bob has been deopped on #Chan."),
        ]
    );
    assert_eq!(
        h.msg(&alice, "VOICE #chan bob", &[]),
        vec![
            mode("#Chan", "+v", "bob"),
            notice(1, "bob has been voiced on #Chan."),
        ]
    );
    assert_eq!(
        h.msg(&alice, "DEVOICE #chan", &here),
        vec![
            mode("#Chan", "-v", "alice"),
            notice(1, "alice has been devoiced on #Chan."),
        ]
    );
    assert_eq!(
        h.msg(&alice, "OP #chan", &[]),
        vec![notice(1, "You are not on #Chan.")]
    );
    // bob has v only.
    h.msg(&alice, "ACCESS #chan ADD bob v", &[]);
    let bob = user(2, "bob", Some("Bob"));
    assert_eq!(
        h.msg(&bob, "OP #chan", &here),
        vec![notice(2, "You need the o flag on #Chan to use OP.")]
    );
    assert_eq!(
        h.msg(&bob, "VOICE #chan", &here)[0],
        mode("#Chan", "+v", "bob")
    );
    let anon = user(3, "anon", None);
    assert_eq!(
        h.msg(&anon, "OP #chan", &here),
        vec![notice(3, "You need to be logged in to use OP.")]
    );
    assert_eq!(
        h.msg(&bob, "OP #nowhere", &here),
        vec![notice(2, "#nowhere is not registered.")]
    );
}

#[test]
fn topic_needs_t() {
    let (mut h, alice) = H::with_channel();
    assert_eq!(
        h.msg(&alice, "TOPIC #chan Hello  world", &[]),
        vec![
            Action::SetTopic {
                channel: "#Chan".into(),
                text: "Hello  world".into()
            },
            notice(1, "The topic of #Chan has been set."),
        ]
    );
    let bob = user(2, "bob", Some("bob"));
    assert_eq!(
        h.msg(&bob, "TOPIC #chan hi", &[]),
        vec![notice(2, "You need the t flag on #Chan to use TOPIC.")]
    );
    assert_eq!(
        h.msg(&bob, "TOPIC #chan", &[]),
        vec![
            notice(2, "Insufficient parameters for TOPIC."),
            notice(2, "Syntax: TOPIC <#channel> <text>"),
        ]
    );
}
