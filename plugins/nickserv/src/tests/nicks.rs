//! GHOST, REGAIN and nick protection.

use unsplit_services::{Action, Event};

use super::*;

const WARNING: &str = "This nickname is registered. Please identify with /msg NickServ \
                       IDENTIFY <password> within 60 seconds, or choose another nickname.";

/// alice registered on session 1, then gone; session 2 now uses the nick "alice".
fn alice_away() -> (H, User) {
    let mut h = H::new();
    let a = h.registered(1, "alice", "secret1");
    h.one(Event::Quit(a));
    let (imp, out) = h.connect(2, "alice");
    assert_eq!(out, vec![notice(2, WARNING)]);
    (h, imp)
}

#[test]
fn ghost_when_logged_in_or_with_the_password() {
    let mut h = H::new();
    let a = h.registered(1, "alice", "secret1");
    let (a2, _) = h.nick_change(&a, "alice_");
    let (ghost, _) = h.connect(2, "Alice");
    assert_eq!(
        h.msg(&a2, "GHOST alice"),
        vec![
            Action::Kill {
                session: 2,
                reason: "GHOST command used by alice_".into()
            },
            notice(1, "alice has been ghosted."),
        ]
    );
    h.one(Event::Quit(ghost));
    assert_eq!(
        h.msg(&a2, "GHOST alice"),
        vec![notice(1, "alice is not online.")]
    );
    // Not logged in: the password is needed.
    let (ghost, _) = h.connect(3, "alice");
    let (b, _) = h.connect(4, "bob");
    assert_eq!(
        h.msg(&b, "GHOST alice"),
        vec![notice(
            4,
            "You are not logged in to alice; use GHOST alice <password>."
        )]
    );
    assert_eq!(
        h.msg_hashed(&b, "GHOST alice nope1"),
        vec![notice(4, "Invalid password for alice.")]
    );
    assert_eq!(
        h.msg_hashed(&b, "GHOST alice secret1"),
        vec![
            Action::Kill {
                session: 3,
                reason: "GHOST command used by bob".into()
            },
            notice(4, "alice has been ghosted."),
        ]
    );
    assert_eq!(
        h.msg(&ghost, "GHOST alice secret1"),
        vec![notice(3, "You cannot ghost yourself.")]
    );
    assert_eq!(
        h.msg(&b, "GHOST nobody"),
        vec![notice(4, "nobody is not registered.")]
    );
}

#[test]
fn regain_when_logged_in_renames_the_holder_first() {
    let mut h = H::new();
    let a = h.registered(1, "Alice", "secret1");
    let (a2, _) = h.nick_change(&a, "alice_");
    let (holder, out) = h.connect(2, "alice");
    assert_eq!(out, vec![notice(2, WARNING)]);
    assert_eq!(
        h.msg(&a2, "RECOVER alice"),
        vec![
            Action::ForceNick {
                session: 2,
                nick: "Guest1".into()
            },
            notice(
                2,
                "The owner of Alice has taken the nickname back; your nickname is now Guest1."
            ),
            Action::ForceNick {
                session: 1,
                nick: "Alice".into()
            },
            notice(1, "You have regained the nickname Alice."),
        ]
    );
    // The logic applies both; their nick changes come back and nobody is warned.
    let (_, out) = h.nick_change(&holder, "Guest1");
    assert_eq!(out, vec![]);
    let (a, out) = h.nick_change(&a2, "Alice");
    assert_eq!(out, vec![]);
    h.advance(120_000);
    assert_eq!(h.tick(), vec![]);
    assert_eq!(
        h.msg(&a, "REGAIN alice"),
        vec![notice(1, "You already have the nickname Alice.")]
    );
}

#[test]
fn regain_with_a_password_logs_in_before_taking_the_nick() {
    let (mut h, _) = alice_away();
    let (b, _) = h.connect(3, "bob");
    assert_eq!(
        h.msg(&b, "REGAIN alice"),
        vec![notice(
            3,
            "You are not logged in to alice; use REGAIN alice <password>."
        )]
    );
    assert_eq!(
        h.msg_hashed(&b, "REGAIN alice wrong1"),
        vec![notice(3, "Invalid password for alice.")]
    );
    assert_eq!(
        h.msg_hashed(&b, "REGAIN alice secret1"),
        vec![
            Action::ForceNick {
                session: 2,
                nick: "Guest1".into()
            },
            notice(
                2,
                "The owner of alice has taken the nickname back; your nickname is now Guest1."
            ),
            Action::SetAccount {
                session: 3,
                account: Some("alice".into())
            },
            notice(3, "You are now identified for alice."),
            Action::ForceNick {
                session: 3,
                nick: "alice".into()
            },
            notice(3, "You have regained the nickname alice."),
        ]
    );
}

#[test]
fn regain_a_free_nick() {
    let mut h = H::new();
    let a = h.registered(1, "alice", "secret1");
    let (a, _) = h.nick_change(&a, "other");
    assert_eq!(
        h.msg(&a, "REGAIN alice"),
        vec![
            Action::ForceNick {
                session: 1,
                nick: "alice".into()
            },
            notice(1, "You have regained the nickname alice."),
        ]
    );
}

#[test]
fn unidentified_nick_is_renamed_after_the_grace_period() {
    let (mut h, imp) = alice_away();
    h.advance(30_000);
    assert_eq!(h.tick(), vec![]);
    // A case change keeps the deadline.
    let (imp, out) = h.nick_change(&imp, "ALICE");
    assert_eq!(out, vec![]);
    h.advance(30_000);
    assert_eq!(
        h.tick(),
        vec![
            Action::ForceNick {
                session: 2,
                nick: "Guest1".into()
            },
            notice(
                2,
                "You did not identify for alice in time; your nickname is now Guest1."
            ),
        ]
    );
    let (imp, out) = h.nick_change(&imp, "Guest1");
    assert_eq!(out, vec![]);
    h.advance(60_000);
    assert_eq!(h.tick(), vec![]);
    // Back to the nick: a new warning and a new deadline.
    let (_, out) = h.nick_change(&imp, "alice");
    assert_eq!(out, vec![notice(2, WARNING)]);
    h.advance(60_000);
    assert_eq!(
        h.tick()[0],
        Action::ForceNick {
            session: 2,
            nick: "Guest2".into()
        }
    );
}

#[test]
fn a_refused_rename_is_tried_again_on_the_next_tick() {
    let (mut h, _) = alice_away();
    h.advance(60_000);
    let renamed = |nick: &str| {
        vec![
            Action::ForceNick {
                session: 2,
                nick: nick.into(),
            },
            notice(
                2,
                &format!("You did not identify for alice in time; your nickname is now {nick}."),
            ),
        ]
    };
    assert_eq!(h.tick(), renamed("Guest1"));
    // No nick change came back (an unregistered session held Guest1): the next guest.
    h.advance(10_000);
    assert_eq!(h.tick(), renamed("Guest2"));
}

#[test]
fn guest_nicks_skip_registered_and_used_ones() {
    let (mut h, _) = alice_away();
    h.registered(3, "Guest1", "guestpass");
    h.connect(4, "guest2");
    h.advance(60_000);
    assert_eq!(
        h.tick()[0],
        Action::ForceNick {
            session: 2,
            nick: "Guest3".into()
        }
    );
}

#[test]
fn identifying_or_leaving_the_nick_cancels_the_deadline() {
    let (mut h, imp) = alice_away();
    let out = h.msg_hashed(&imp, "IDENTIFY secret1");
    assert_eq!(out[1], notice(2, "You are now identified for alice."));
    h.account_change(&logged(imp, "alice"));
    h.advance(60_000);
    assert_eq!(h.tick(), vec![]);

    let (mut h, imp) = alice_away();
    let (_, out) = h.nick_change(&imp, "someone");
    assert_eq!(out, vec![]);
    h.advance(60_000);
    assert_eq!(h.tick(), vec![]);

    // Logged in to another account does not count.
    let (mut h, _) = alice_away();
    let b = h.registered(3, "bob", "bobpass");
    let (_, out) = h.nick_change(&b, "Alice");
    assert_eq!(out, vec![notice(3, WARNING)]);
    // Quitting forgets the session.
    let (mut h, imp) = alice_away();
    h.one(Event::Quit(imp));
    h.advance(60_000);
    assert_eq!(h.tick(), vec![]);
}

#[test]
fn logging_out_on_a_registered_nick_starts_the_grace_period() {
    let mut h = H::new();
    let a = h.registered(1, "alice", "secret1");
    h.msg(&a, "LOGOUT");
    assert_eq!(
        h.account_change(&user(1, "alice")),
        vec![notice(1, WARNING)]
    );
    h.advance(60_000);
    assert_eq!(h.tick().len(), 2);
}

#[test]
fn settings_change_grace_enforcement_and_guest_prefix() {
    let mut h = H::new();
    h.registered(1, "alice", "secret1");
    h.one(Event::Settings(
        "GracePeriod = \"2m\"\nGuestPrefix = \"Anon\"".into(),
    ));
    let (_, out) = h.connect(2, "alice");
    assert_eq!(
        out,
        vec![notice(
            2,
            "This nickname is registered. Please identify with /msg NickServ IDENTIFY \
             <password> within 120 seconds, or choose another nickname."
        )]
    );
    h.advance(60_000);
    assert_eq!(h.tick(), vec![]);
    h.advance(60_000);
    assert_eq!(
        h.tick()[0],
        Action::ForceNick {
            session: 2,
            nick: "Anon1".into()
        }
    );
    // Without enforcement: a warning only.
    h.one(Event::Settings("Enforce = false".into()));
    let (_, out) = h.connect(3, "Alice");
    assert_eq!(
        out,
        vec![notice(
            3,
            "This nickname is registered. Please identify with /msg NickServ IDENTIFY \
             <password>, or choose another nickname."
        )]
    );
    h.advance(600_000);
    assert_eq!(h.tick(), vec![]);
    // An invalid document keeps the previous settings; an empty one restores defaults.
    h.one(Event::Settings("MinPasswordLength = 0".into()));
    let (d, _) = h.connect(4, "dave");
    assert_eq!(
        h.msg(&d, "REGISTER abcd"),
        vec![notice(
            4,
            "Your password must be at least 5 characters long."
        )]
    );
    h.one(Event::Settings("MinPasswordLength = 10".into()));
    assert_eq!(
        h.msg(&d, "REGISTER abcdefgh"),
        vec![notice(
            4,
            "Your password must be at least 10 characters long."
        )]
    );
    h.one(Event::Settings(String::new()));
    let (_, out) = h.connect(5, "ALICE");
    assert_eq!(out, vec![notice(5, WARNING)]);
}

#[test]
fn a_nick_taken_while_registering_is_protected_at_once() {
    let mut h = H::new();
    let (a, _) = h.connect(1, "alice");
    let asked = h.msg(&a, "REGISTER secret1");
    h.nick_change(&a, "alice_away");
    let (_, out) = h.connect(2, "Alice");
    assert_eq!(out, vec![]);
    let done = h.answer(&asked);
    assert_eq!(done.len(), 3, "{done:?}");
    assert_eq!(done[2], notice(2, WARNING));
    h.advance(60_000);
    assert_eq!(
        h.tick()[0],
        Action::ForceNick {
            session: 2,
            nick: "Guest1".into()
        }
    );
}

#[test]
fn started_on_a_running_network_it_learns_the_users_and_protects_their_nicks() {
    let mut h = H::new();
    // Known from before (a snapshot): alice's account, and sessions long gone.
    h.registered(1, "alice", "secret1");
    h.registered(2, "bob", "secret2");
    let (stale, _) = h.connect(3, "carol");
    let asked = h.msg(&stale, "REGISTER carolpass");
    assert_eq!(hash_requests(&asked).len(), 1);
    // The service starts: settings, then everyone there is now.
    h.one(Event::Settings("GracePeriod = \"30s\"".into()));
    let imp = user(7, "Alice");
    let bob = logged(user(8, "bob"), "bob");
    let dave = user(9, "dave");
    assert_eq!(
        h.one(Event::Users(vec![imp.clone(), bob.clone(), dave.clone()])),
        vec![notice(
            7,
            "This nickname is registered. Please identify with /msg NickServ IDENTIFY \
             <password> within 30 seconds, or choose another nickname."
        )]
    );
    // The sessions not listed are gone, with their requests.
    assert_eq!(h.answer(&asked), vec![]);
    assert_eq!(
        h.msg(&dave, "INFO alice")[2],
        notice(9, "Status: the nickname is in use, not logged in")
    );
    assert_eq!(
        h.ns.state.sessions.keys().copied().collect::<Vec<_>>(),
        vec![7, 8, 9]
    );
    assert_eq!(h.ns.state.sessions[&8].account.as_deref(), Some("bob"));
    // The grace period runs from the start.
    h.advance(29_000);
    assert_eq!(h.tick(), vec![]);
    h.advance(1_000);
    assert_eq!(
        h.tick(),
        vec![
            Action::ForceNick {
                session: 7,
                nick: "Guest1".into()
            },
            notice(
                7,
                "You did not identify for alice in time; your nickname is now Guest1."
            ),
        ]
    );
}

#[test]
fn a_login_under_way_holds_the_warning_back() {
    let mut h = H::new();
    let a = h.registered(1, "alice", "secret1");
    h.one(Event::Quit(a));
    // `PASS nickserv=…`: the registration and the IDENTIFY arrive in one call.
    let imp = user(2, "alice");
    let identify = |text: &str| Event::Message {
        from: imp.clone(),
        text: text.into(),
        channels: vec![],
    };
    let asked = h.handle(vec![
        Event::Registered(imp.clone()),
        identify("IDENTIFY secret1"),
    ]);
    assert_eq!(hash_requests(&asked).len(), 1, "{asked:?}");
    assert_eq!(
        h.answer(&asked),
        vec![
            Action::SetAccount {
                session: 2,
                account: Some("alice".into())
            },
            notice(2, "You are now identified for alice."),
        ]
    );
    h.one(Event::Quit(logged(imp.clone(), "alice")));
    // A wrong password: refused, then warned.
    let asked = h.handle(vec![
        Event::Registered(imp.clone()),
        identify("IDENTIFY nope1"),
    ]);
    assert_eq!(
        h.answer(&asked),
        vec![notice(2, "Invalid password for alice."), notice(2, WARNING)]
    );
    h.one(Event::Quit(imp.clone()));
    // No answer within a minute: timed out, then warned (the grace period from then).
    h.handle(vec![
        Event::Registered(imp.clone()),
        identify("IDENTIFY secret1"),
    ]);
    h.advance(60_000);
    assert_eq!(
        h.tick(),
        vec![
            notice(2, "Your request timed out; please try again."),
            notice(2, WARNING)
        ]
    );
    h.advance(59_000);
    assert_eq!(h.tick(), vec![]);
}

#[test]
fn settings_are_checked_before_they_count() {
    let ns = crate::NickServ::default();
    let before = ns.snapshot();
    assert_eq!(ns.check_settings(""), Ok(()));
    assert_eq!(
        ns.check_settings("GracePeriod = \"90s\"\nEnforce = false"),
        Ok(())
    );
    let e = ns.check_settings("GracePeriod = \"soon\"").unwrap_err();
    assert!(e.contains("GracePeriod"), "{e}");
    let e = ns.check_settings("MinPasswordLength = 0").unwrap_err();
    assert!(e.contains("MinPasswordLength"), "{e}");
    let e = ns.check_settings("GuestPrefix = \"1x\"").unwrap_err();
    assert!(e.contains("GuestPrefix"), "{e}");
    assert!(ns.check_settings("Enforce = [").is_err());
    assert_eq!(ns.snapshot(), before, "checking changes nothing");
}
