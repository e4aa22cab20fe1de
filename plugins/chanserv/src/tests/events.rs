//! Auto-op/voice on join and on login, topic retention, and dropped accounts.

use unsplit_services::{Action, Event};

use super::*;

fn account_change(u: &User, channels: &[ChannelStatus]) -> Event {
    Event::AccountChange {
        user: u.clone(),
        channels: channels.to_vec(),
    }
}

fn topic(channel: &str, text: &str) -> Event {
    Event::Topic {
        channel: channel.into(),
        text: text.into(),
        setter: "someone".into(),
    }
}

#[test]
fn auto_op_and_voice_on_join() {
    let (mut h, alice) = H::with_channel();
    h.msg(&alice, "ACCESS #chan ADD bob V", &[]);
    h.msg(&alice, "ACCESS #chan ADD carol o", &[]);
    assert_eq!(
        h.join(&alice, "#CHAN", false),
        vec![mode("#Chan", "+o", "alice")]
    );
    let bob = user(2, "bobby", Some("Bob"));
    assert_eq!(
        h.join(&bob, "#chan", false),
        vec![mode("#Chan", "+v", "bobby")]
    );
    // o without O, not logged in, or an unregistered channel: nothing.
    assert_eq!(
        h.join(&user(3, "carol", Some("carol")), "#chan", false),
        vec![]
    );
    assert_eq!(h.join(&user(2, "bob", None), "#chan", false), vec![]);
    assert_eq!(h.join(&alice, "#other", true), vec![]);
}

#[test]
fn auto_op_and_voice_on_login_where_missing() {
    let (mut h, alice) = H::with_channel();
    let mut bob = user(2, "bob", None);
    // bob is op somewhere, in #chan without status; then logs in.
    h.msg(&alice, "ACCESS #chan ADD bob V", &[]);
    h.msg(
        &user(9, "x", Some("x")),
        "REGISTER #two",
        &[on("#two", true, false)],
    );
    h.msg(&user(9, "x", Some("x")), "ACCESS #two ADD bob O", &[]);
    bob.account = Some("bob".into());
    let channels = [
        on("#chan", false, false),
        on("#two", false, true),
        on("#unregistered", false, false),
    ];
    assert_eq!(
        h.one(account_change(&bob, &channels)),
        vec![mode("#Chan", "+v", "bob"), mode("#two", "+o", "bob")]
    );
    // Already voiced / opped: nothing.
    let channels = [on("#chan", false, true), on("#two", true, false)];
    assert_eq!(h.one(account_change(&bob, &channels)), vec![]);
    // An op does not need voice.
    assert_eq!(
        h.one(account_change(&bob, &[on("#chan", true, false)])),
        vec![]
    );
    // A logout does nothing.
    bob.account = None;
    assert_eq!(
        h.one(account_change(&bob, &[on("#two", false, false)])),
        vec![]
    );
}

#[test]
fn topic_is_restored_when_the_channel_is_recreated() {
    let (mut h, alice) = H::with_channel();
    assert_eq!(h.one(topic("#CHAN", "Rules: be nice")), vec![]);
    assert_eq!(h.one(topic("#other", "not kept")), vec![]);
    // Joining a channel that still has members: no topic.
    let bob = user(2, "bob", None);
    assert_eq!(h.join(&bob, "#chan", false), vec![]);
    // Re-created: the topic first, then the founder's auto-op.
    assert_eq!(
        h.join(&alice, "#chan", true),
        vec![
            Action::SetTopic {
                channel: "#Chan".into(),
                text: "Rules: be nice".into()
            },
            mode("#Chan", "+o", "alice"),
        ]
    );
    assert_eq!(h.join(&bob, "#other", true), vec![]);
    // A cleared topic is forgotten.
    h.one(topic("#chan", ""));
    assert_eq!(h.join(&bob, "#chan", true), vec![]);
}

#[test]
fn a_dropped_account_loses_its_access_and_orphaned_channels() {
    let (mut h, alice) = H::with_channel();
    let bob = user(2, "bob", Some("bob"));
    h.msg(&alice, "ACCESS #chan ADD Bob +Vt", &[]);
    h.msg(&bob, "REGISTER #bob", &[on("#Bob", true, false)]);
    h.msg(&bob, "ACCESS #bob ADD alice O", &[]);
    let carol = user(3, "carol", Some("carol"));
    h.msg(&carol, "REGISTER #shared", &[on("#shared", true, false)]);
    h.msg(&carol, "ACCESS #shared ADD bob F", &[]);
    // bob goes (any case): #Bob has no founder left and is dropped, #Chan and #shared
    // keep their other founders. Nothing to tell anyone.
    assert_eq!(
        h.one(Event::AccountDropped("BOB".into())),
        vec![Action::RegisterChannel {
            channel: "#Bob".into(),
            registered: false
        }]
    );
    assert_eq!(
        h.msg(&alice, "ACCESS #chan LIST", &[]),
        vec![
            notice(1, "Access list of #Chan:"),
            notice(1, "Alice +FfoOvVt"),
            notice(1, "End of access list (1 entry)."),
        ]
    );
    assert_eq!(
        h.msg(&carol, "ACCESS #shared LIST", &[]),
        vec![
            notice(3, "Access list of #shared:"),
            notice(3, "carol +FfoOvVt"),
            notice(3, "End of access list (1 entry)."),
        ]
    );
    assert_eq!(
        h.msg(&alice, "INFO #bob", &[]),
        vec![notice(1, "#bob is not registered.")]
    );
    // Whoever registers the nick bob again inherits nothing.
    let new_bob = user(4, "bob", Some("bob"));
    assert_eq!(h.join(&new_bob, "#chan", false), vec![]);
    assert_eq!(
        h.msg(&new_bob, "TOPIC #chan hi", &[]),
        vec![notice(4, "You need the t flag on #Chan to use TOPIC.")]
    );
    // An account nobody knows, or dropped twice: nothing.
    assert_eq!(h.one(Event::AccountDropped("nobody".into())), vec![]);
    assert_eq!(h.one(Event::AccountDropped("bob".into())), vec![]);
    // The last founder of #Chan goes: the channel is dropped.
    assert_eq!(
        h.one(Event::AccountDropped("alice".into())),
        vec![Action::RegisterChannel {
            channel: "#Chan".into(),
            registered: false
        }]
    );
}

#[test]
fn the_user_list_changes_nothing() {
    let (mut h, alice) = H::with_channel();
    let before = h.cs.clone();
    assert_eq!(h.one(Event::Users(vec![alice.clone()])), vec![]);
    assert_eq!(h.cs, before);
}
