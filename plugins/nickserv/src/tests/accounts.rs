//! HELP, REGISTER, IDENTIFY, LOGOUT, INFO, SET and DROP.

use unsplit_services::{Action, Event, EventKind, Plugin};

use super::*;

#[test]
fn info_follows_the_conventions() {
    let info = NickServ::default().info();
    assert_eq!(info.name, "nickserv");
    assert_eq!(info.nick, "NickServ");
    assert_eq!(info.description, "Nickname services");
    assert_eq!(info.commands, vec!["NS", "NICKSERV"]);
    assert_eq!(
        info.subscriptions,
        vec![
            EventKind::Registered,
            EventKind::NickChange,
            EventKind::Quit,
            EventKind::AccountChange,
            EventKind::Tick
        ]
    );
    assert!(info.sasl);
    assert_eq!(info.snapshot_format, crate::SNAPSHOT_FORMAT);
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn help_unknown_and_empty() {
    let mut h = H::new();
    let (a, _) = h.connect(1, "alice");
    let list = h.msg(&a, "help");
    assert_eq!(list.len(), 11, "{list:?}");
    assert_eq!(
        list[2],
        notice(1, "REGISTER  Registers your current nickname.")
    );
    for action in &list {
        let Action::Notice { to: 1, text } = action else {
            panic!("{action:?}");
        };
        assert!(!text.contains('\n'));
    }
    assert_eq!(
        h.msg(&a, "HELP login"),
        vec![
            notice(1, "Syntax: IDENTIFY [account] <password>"),
            notice(
                1,
                "Logs you in to an account: the one named like your current nickname, or the one given."
            ),
            notice(1, "Also: LOGIN"),
        ]
    );
    assert_eq!(
        h.msg(&a, "HELP frob"),
        vec![notice(1, "No help available for FROB.")]
    );
    assert_eq!(
        h.msg(&a, "frob x y"),
        vec![notice(
            1,
            "Unknown command FROB. Type /msg NickServ HELP for help."
        )]
    );
    assert_eq!(
        h.msg(&a, "   "),
        vec![notice(1, "Type /msg NickServ HELP for help.")]
    );
    assert_eq!(
        h.msg(&a, "\u{1}VERSION\u{1}"),
        vec![notice(
            1,
            &format!(
                "\u{1}VERSION unsplit NickServ {}\u{1}",
                env!("CARGO_PKG_VERSION")
            )
        )]
    );
    assert_eq!(
        h.msg(&a, "\u{1}PING 42\u{1}"),
        vec![notice(1, "\u{1}PING 42\u{1}")]
    );
    assert_eq!(h.msg(&a, "\u{1}ACTION waves\u{1}"), vec![]);
}

#[test]
fn register_round_trip() {
    let mut h = H::new();
    let (a, _) = h.connect(1, "Alice");
    let asked = h.msg(&a, "REGISTER hunter22 alice@example.org");
    let salt = b"nickserv:102:1795266199000:0:alice".to_vec();
    assert_eq!(
        asked,
        vec![Action::HashPassword {
            id: 0,
            password: "hunter22".into(),
            salt: salt.clone(),
            algorithm: None,
        }]
    );
    h.advance(150);
    assert_eq!(
        h.one(Event::PasswordHashed {
            id: 0,
            result: Ok(fake_hash("hunter22", &salt, None)),
        }),
        vec![
            Action::SetAccount {
                session: 1,
                account: Some("Alice".into())
            },
            notice(
                1,
                "Alice is now registered to you, and you are now identified."
            ),
        ]
    );
    // The same id again is unknown now.
    assert_eq!(
        h.one(Event::PasswordHashed {
            id: 0,
            result: Ok(fake_hash("x", &salt, None)),
        }),
        vec![]
    );
    // Another session may not register it, whatever the case.
    let (b, _) = h.connect(2, "ALICE");
    assert_eq!(
        h.msg(&b, "REGISTER another1"),
        vec![notice(2, "ALICE is already registered.")]
    );
}

#[test]
fn register_refusals() {
    let mut h = H::new();
    let (a, _) = h.connect(1, "alice");
    assert_eq!(
        h.msg(&a, "REGISTER"),
        vec![
            notice(1, "Insufficient parameters for REGISTER."),
            notice(1, "Syntax: REGISTER <password> [email]"),
        ]
    );
    assert_eq!(
        h.msg(&a, "REGISTER abc"),
        vec![notice(
            1,
            "Your password must be at least 5 characters long."
        )]
    );
    assert_eq!(
        h.msg(&a, "REGISTER ALICE"),
        vec![notice(1, "Your password cannot be your nickname.")]
    );
    assert_eq!(
        h.msg(&a, "REGISTER secret1 not-an-email"),
        vec![notice(1, "not-an-email is not a valid email address.")]
    );
    let asked = h.msg(&a, "REGISTER secret1");
    assert_eq!(hash_requests(&asked).len(), 1);
    assert_eq!(
        h.msg(&a, "REGISTER secret2"),
        vec![notice(
            1,
            "Please wait, your previous request is still being processed."
        )]
    );
    // A hash error: nothing registered, the user is told.
    assert_eq!(
        h.one(Event::PasswordHashed {
            id: 0,
            result: Err("the host is busy".into()),
        }),
        vec![notice(1, "Registration failed: the host is busy.")]
    );
    let u = h.registered(2, "bob", "bobpass");
    assert_eq!(
        h.msg(&u, "REGISTER secret3"),
        vec![notice(2, "You are already logged in as bob.")]
    );
    // Registered by someone else between the request and the answer.
    let (c, _) = h.connect(3, "carol");
    let asked = h.msg(&c, "REGISTER carolpass");
    let (_, _) = h.nick_change(&c, "carol_");
    h.registered(4, "Carol", "other-pass");
    assert_eq!(
        h.answer(&asked),
        vec![notice(3, "carol is already registered.")]
    );
}

#[test]
fn identify_login_logout() {
    let mut h = H::new();
    let a = h.registered(1, "alice", "secret1");
    let (b, _) = h.connect(2, "guest");
    // Wrong password, then the right one with the account named.
    assert_eq!(
        h.msg_hashed(&b, "IDENTIFY alice wrong"),
        vec![notice(2, "Invalid password for alice.")]
    );
    let asked = h.msg(&b, "LOGIN ALICE secret1");
    assert_eq!(
        hash_requests(&asked)[0].3.as_deref(),
        Some("fake$v=1"),
        "verification uses the stored algorithm"
    );
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
    // The one-word form uses the current nick.
    let (c, _) = h.connect(3, "nobody");
    assert_eq!(
        h.msg(&c, "IDENTIFY secret1"),
        vec![notice(3, "nobody is not registered.")]
    );
    assert_eq!(
        h.msg(&a, "IDENTIFY secret1"),
        vec![notice(1, "You are already logged in as alice.")]
    );
    assert_eq!(
        h.msg(&a, "LOGOUT"),
        vec![
            Action::SetAccount {
                session: 1,
                account: None
            },
            notice(1, "You have been logged out."),
        ]
    );
    assert_eq!(
        h.msg(&c, "LOGOUT"),
        vec![notice(3, "You need to be logged in to use LOGOUT.")]
    );
}

#[test]
fn identify_with_spaces_in_the_password() {
    let mut h = H::new();
    h.registered(1, "alice", "secret1");
    let (b, _) = h.connect(2, "b");
    let asked = h.msg(&b, "IDENTIFY alice  two words ");
    assert_eq!(hash_requests(&asked)[0].1, "two words");
}

#[test]
fn info_shows_date_status_and_email_to_the_owner() {
    let mut h = H::new();
    let (a, _) = h.connect(1, "alice");
    h.msg_hashed(&a, "REGISTER secret1 alice@example.org");
    let a = logged(a, "alice");
    h.account_change(&a);
    let (b, _) = h.connect(2, "bob");
    h.advance(3_600_000);
    assert_eq!(
        h.msg(&b, "INFO ALICE"),
        vec![
            notice(2, "Information on alice:"),
            notice(2, "Registered: 2026-11-21 13:03:19 UTC"),
            notice(2, "Status: logged in now"),
            notice(2, "End of information on alice."),
        ]
    );
    let own = h.msg(&a, "INFO");
    assert_eq!(own[3], notice(1, "Email: alice@example.org"));
    let mut oper = user(3, "op");
    oper.oper = true;
    assert_eq!(h.msg(&oper, "INFO alice").len(), 5);
    // Logged out but using the nick; then gone.
    let a = user(1, "alice");
    h.account_change(&a);
    assert_eq!(
        h.msg(&b, "INFO alice")[2],
        notice(2, "Status: the nickname is in use, not logged in")
    );
    h.one(Event::Quit(a));
    assert_eq!(h.msg(&b, "INFO alice")[2], notice(2, "Status: offline"));
    assert_eq!(h.msg(&b, "INFO"), vec![notice(2, "bob is not registered.")]);
}

#[test]
fn set_password_and_email() {
    let mut h = H::new();
    let a = h.registered(1, "alice", "secret1");
    let (b, _) = h.connect(2, "bob");
    assert_eq!(
        h.msg(&b, "SET EMAIL x@y"),
        vec![notice(2, "You need to be logged in to use SET.")]
    );
    assert_eq!(
        h.msg(&a, "SET PASSWORD ab"),
        vec![notice(
            1,
            "Your password must be at least 5 characters long."
        )]
    );
    assert_eq!(
        h.msg(&a, "SET PASSWORD"),
        vec![notice(1, "Syntax: SET PASSWORD <password>")]
    );
    assert_eq!(
        h.msg(&a, "SET COLOUR red"),
        vec![
            notice(1, "Unknown SET option COLOUR."),
            notice(1, "Syntax: SET PASSWORD <password> | SET EMAIL [address]"),
        ]
    );
    let asked = h.msg(&a, "SET PASSWORD newsecret");
    let requests = hash_requests(&asked);
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].3, None,
        "a new password uses the default algorithm"
    );
    assert_ne!(
        requests[0].2,
        b"nickserv:102:1795266199000:0:alice".to_vec()
    );
    assert_eq!(
        h.answer(&asked),
        vec![notice(1, "The password for alice has been changed.")]
    );
    assert_eq!(
        h.msg_hashed(&b, "IDENTIFY alice secret1"),
        vec![notice(2, "Invalid password for alice.")]
    );
    assert_eq!(
        h.msg_hashed(&b, "IDENTIFY alice newsecret")[1],
        notice(2, "You are now identified for alice.")
    );
    assert_eq!(
        h.msg(&a, "SET EMAIL bad address"),
        vec![notice(1, "bad is not a valid email address.")]
    );
    assert_eq!(
        h.msg(&a, "set email a@b.example"),
        vec![notice(1, "The email address of alice is now a@b.example.")]
    );
    assert_eq!(h.msg(&a, "INFO")[3], notice(1, "Email: a@b.example"));
    assert_eq!(
        h.msg(&a, "SET EMAIL"),
        vec![notice(1, "The email address of alice has been removed.")]
    );
    assert_eq!(h.msg(&a, "INFO")[3], notice(1, "Email: none"));
}

#[test]
fn drop_logs_everyone_out() {
    let mut h = H::new();
    let a = h.registered(1, "alice", "secret1");
    let (b, _) = h.connect(2, "alice_phone");
    let b = logged(b, "alice");
    h.account_change(&b);
    let (c, _) = h.connect(3, "carol");
    assert_eq!(
        h.msg(&c, "DROP alice"),
        vec![notice(
            3,
            "To drop alice, log in to it or give its password: DROP alice <password>"
        )]
    );
    assert_eq!(
        h.msg(&c, "DROP"),
        vec![notice(
            3,
            "You are not logged in; use DROP <account> <password>."
        )]
    );
    assert_eq!(
        h.msg(&c, "DROP nobody"),
        vec![notice(3, "nobody is not registered.")]
    );
    assert_eq!(
        h.msg_hashed(&c, "DROP alice wrong"),
        vec![notice(3, "Invalid password for alice.")]
    );
    assert_eq!(
        h.msg(&a, "DROP"),
        vec![
            notice(1, "The account alice has been dropped."),
            Action::DropAccount("alice".into()),
            notice(
                2,
                "You have been logged out: the account alice was dropped."
            ),
        ]
    );
    // The logic logs both sessions out; their account changes warn nobody (alice's nick
    // is not registered any more).
    assert_eq!(h.account_change(&user(1, "alice")), vec![]);
    assert_eq!(h.account_change(&user(2, "alice_phone")), vec![]);
    assert_eq!(
        h.msg(&c, "INFO alice"),
        vec![notice(3, "alice is not registered.")]
    );
    // With the password, by a session that is not logged in.
    h.registered(4, "dave", "davepass");
    assert_eq!(
        h.msg_hashed(&c, "DROP Dave davepass"),
        vec![
            notice(3, "The account dave has been dropped."),
            Action::DropAccount("dave".into()),
            notice(4, "You have been logged out: the account dave was dropped."),
        ]
    );
}
