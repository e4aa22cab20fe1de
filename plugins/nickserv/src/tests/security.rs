//! SASL, failed-attempt limits, and hash requests that are slow, refused or never
//! answered.

use unsplit_services::{Action, Event};

use super::*;

fn sasl(session: SessionId, authzid: &str, authcid: &str, password: &str) -> Event {
    Event::Sasl {
        session,
        authzid: authzid.into(),
        authcid: authcid.into(),
        password: password.into(),
    }
}

fn sasl_result(session: SessionId, account: Option<&str>) -> Action {
    Action::SaslResult {
        session,
        account: account.map(Into::into),
    }
}

#[test]
fn sasl_success_and_failures() {
    let mut h = H::new();
    h.registered(1, "Alice", "secret1");
    // Unknown account, or acting as someone else: refused at once.
    assert_eq!(
        h.one(sasl(7, "", "nobody", "x")),
        vec![sasl_result(7, None)]
    );
    assert_eq!(
        h.one(sasl(7, "bob", "alice", "secret1")),
        vec![sasl_result(7, None)]
    );
    // Right password (authzid equal up to case): the account's display name.
    let asked = h.one(sasl(7, "ALICE", "alice", "secret1"));
    assert_eq!(hash_requests(&asked).len(), 1);
    assert_eq!(h.answer(&asked), vec![sasl_result(7, Some("Alice"))]);
    let asked = h.one(sasl(8, "", "alice", "wrong"));
    assert_eq!(h.answer(&asked), vec![sasl_result(8, None)]);
    // One request at a time per session.
    let asked = h.one(sasl(9, "", "alice", "secret1"));
    assert_eq!(
        h.one(sasl(9, "", "alice", "secret1")),
        vec![sasl_result(9, None)]
    );
    // A hash error fails the attempt without counting it.
    let id = hash_requests(&asked)[0].0;
    assert_eq!(
        h.one(Event::PasswordHashed {
            id,
            result: Err("unsupported password hash".into())
        }),
        vec![sasl_result(9, None)]
    );
}

#[test]
fn lockout_after_five_failures_counts_sasl_and_identify() {
    let mut h = H::new();
    h.registered(1, "alice", "secret1");
    let (b, _) = h.connect(2, "bob");
    for _ in 0..3 {
        assert_eq!(
            h.msg_hashed(&b, "IDENTIFY alice wrong"),
            vec![notice(2, "Invalid password for alice.")]
        );
        h.advance(10_000);
    }
    for _ in 0..2 {
        let asked = h.one(sasl(9, "", "alice", "wrong"));
        assert_eq!(h.answer(&asked), vec![sasl_result(9, None)]);
    }
    let locked = vec![notice(
        2,
        "Too many failed attempts for alice; try again later.",
    )];
    assert_eq!(h.msg(&b, "IDENTIFY alice secret1"), locked);
    assert_eq!(
        h.one(sasl(9, "", "alice", "secret1")),
        vec![sasl_result(9, None)]
    );
    assert_eq!(h.msg(&b, "GHOST alice secret1"), locked);
    let (c, _) = h.connect(3, "carol");
    assert_eq!(
        h.msg(&c, "DROP alice secret1"),
        vec![notice(
            3,
            "Too many failed attempts for alice; try again later."
        )]
    );
    // Five minutes after the first failure one attempt is free again.
    h.advance(5 * 60_000 - 30_001);
    assert_eq!(h.msg(&b, "IDENTIFY alice secret1"), locked);
    h.advance(1);
    let done = h.msg_hashed(&b, "IDENTIFY alice secret1");
    assert_eq!(done[1], notice(2, "You are now identified for alice."));
    // Success clears the count.
    let (d, _) = h.connect(4, "dave");
    for _ in 0..4 {
        h.msg_hashed(&d, "IDENTIFY alice wrong");
    }
    assert_eq!(hash_requests(&h.msg(&d, "IDENTIFY alice wrong")).len(), 1);
}

#[test]
fn verifications_under_way_count_against_the_limit() {
    let mut h = H::new();
    h.registered(1, "alice", "secret1");
    for session in 10..15 {
        let asked = h.one(sasl(session, "", "alice", "guess"));
        assert_eq!(hash_requests(&asked).len(), 1);
    }
    assert_eq!(
        h.one(sasl(15, "", "alice", "guess")),
        vec![sasl_result(15, None)]
    );
}

#[test]
fn unanswered_requests_expire_after_a_minute() {
    let mut h = H::new();
    let (a, _) = h.connect(1, "alice");
    let asked = h.msg(&a, "REGISTER secret1");
    let sasl_asked = h.one(sasl(5, "", "alice", "x"));
    assert_eq!(sasl_asked, vec![sasl_result(5, None)], "not registered yet");
    h.advance(59_999);
    assert_eq!(h.tick(), vec![]);
    h.advance(1);
    assert_eq!(
        h.tick(),
        vec![notice(1, "Your request timed out; please try again.")]
    );
    // The late answer is ignored, and a new request may be made.
    assert_eq!(h.answer(&asked), vec![]);
    let done = h.msg_hashed(&a, "REGISTER secret1");
    assert_eq!(done.len(), 2);
    // A SASL request that times out fails.
    let asked = h.one(sasl(5, "", "alice", "secret1"));
    assert_eq!(hash_requests(&asked).len(), 1);
    h.advance(60_000);
    assert_eq!(h.tick(), vec![sasl_result(5, None)]);
    assert_eq!(h.answer(&asked), vec![]);
}

#[test]
fn quitting_forgets_pending_requests() {
    let mut h = H::new();
    let (a, _) = h.connect(1, "alice");
    let asked = h.msg(&a, "REGISTER secret1");
    h.one(Event::Quit(a.clone()));
    assert_eq!(h.answer(&asked), vec![]);
    let (b, _) = h.connect(2, "bob");
    assert_eq!(
        h.msg(&b, "INFO alice"),
        vec![notice(2, "alice is not registered.")]
    );
}

#[test]
fn salts_are_16_to_64_bytes_and_unique() {
    let mut h = H::new();
    h.index = 0;
    h.now = 0;
    let (a, _) = h.connect(1, "a");
    let asked = h.msg(&a, "REGISTER secret1");
    let salt = &hash_requests(&asked)[0].2;
    assert_eq!(salt.len(), 16);
    h.answer(&asked);
    let long = "x".repeat(60);
    let (b, _) = h.connect(2, &long);
    let first = hash_requests(&h.msg(&b, "REGISTER secret1"))[0].2.clone();
    assert_eq!(first.len(), 64);
    let a = logged(a, "a");
    let asked = h.msg(&a, "SET PASSWORD secret2");
    assert_ne!(hash_requests(&asked)[0].2, *salt);
}

#[test]
fn passwords_never_appear_in_notices() {
    let mut h = H::new();
    let a = h.registered(1, "alice", "secret1");
    let (b, _) = h.connect(2, "bob");
    let mut all = Vec::new();
    all.extend(h.msg_hashed(&b, "IDENTIFY alice wrongpass"));
    all.extend(h.msg_hashed(&b, "GHOST alice wrongpass"));
    all.extend(h.msg(&a, "SET PASSWORD alice"));
    all.extend(h.msg_hashed(&a, "SET PASSWORD newpass1"));
    all.extend(h.msg_hashed(&b, "IDENTIFY alice newpass1"));
    for action in all {
        if let Action::Notice { text, .. } = action {
            assert!(
                !text.contains("wrongpass") && !text.contains("newpass1"),
                "{text}"
            );
        }
    }
}
