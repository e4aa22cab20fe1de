//! ACCESS LIST/ADD/DEL and the founder rules.

use super::*;

#[test]
fn list_for_flag_holders_and_opers() {
    let (mut h, alice) = H::with_channel();
    assert_eq!(
        h.msg(&alice, "ACCESS #chan ADD Bob +ov", &[]),
        vec![notice(1, "The flags of Bob on #Chan are now +ov.")]
    );
    let listing = vec![
        notice(1, "Access list of #Chan:"),
        notice(1, "Alice +FfoOvVt"),
        notice(1, "Bob +ov"),
        notice(1, "End of access list (2 entries)."),
    ];
    assert_eq!(h.msg(&alice, "access #CHAN list", &[]), listing);
    let bob = user(2, "bob", Some("bob"));
    assert_eq!(h.msg(&bob, "ACCESS #chan LIST", &[]).len(), 4);
    let carol = user(3, "carol", Some("carol"));
    assert_eq!(
        h.msg(&carol, "ACCESS #chan LIST", &[]),
        vec![notice(3, "You have no access to #Chan.")]
    );
    let mut oper = user(4, "oper", None);
    oper.oper = true;
    assert_eq!(h.msg(&oper, "ACCESS #chan LIST", &[]).len(), 4);
    assert_eq!(
        h.msg(&alice, "ACCESS #chan", &[]),
        vec![
            notice(1, "Insufficient parameters for ACCESS."),
            notice(
                1,
                "Syntax: ACCESS <#channel> LIST | ADD <account> <flags> | DEL <account>"
            ),
        ]
    );
    assert_eq!(
        h.msg(&alice, "ACCESS #chan ADD bob", &[]),
        vec![notice(
            1,
            "Syntax: ACCESS <#channel> LIST | ADD <account> <flags> | DEL <account>"
        )]
    );
}

#[test]
fn add_forms_and_refusals() {
    let (mut h, alice) = H::with_channel();
    h.msg(&alice, "ACCESS #chan ADD bob fo", &[]);
    let bob = user(2, "bob", Some("bob"));
    // bob has f: he may edit non-founders.
    assert_eq!(
        h.msg(&bob, "ACCESS #chan ADD carol +vV", &[]),
        vec![notice(2, "The flags of carol on #Chan are now +vV.")]
    );
    assert_eq!(
        h.msg(&bob, "ACCESS #chan ADD CAROL +t-V", &[]),
        vec![notice(2, "The flags of carol on #Chan are now +vt.")]
    );
    assert_eq!(
        h.msg(&bob, "ACCESS #chan ADD carol o", &[]),
        vec![notice(2, "The flags of carol on #Chan are now +o.")]
    );
    assert_eq!(
        h.msg(&bob, "ACCESS #chan ADD carol -o", &[]),
        vec![notice(2, "carol has no access to #Chan now.")]
    );
    assert_eq!(
        h.msg(&bob, "ACCESS #chan ADD carol +x", &[]),
        vec![notice(
            2,
            "Unknown flag x. Flags: F (founder), f (access list), o (op), O (auto-op), v (voice), V (auto-voice), t (topic)."
        )]
    );
    assert_eq!(
        h.msg(&bob, "ACCESS #chan ADD carol +", &[]),
        vec![notice(2, "No flags given.")]
    );
    assert_eq!(
        h.msg(&bob, "ACCESS #chan ADD #evil o", &[]),
        vec![notice(2, "#evil is not a valid account name.")]
    );
    // Founders: only founders grant F, and nobody but alice touches alice's entry.
    assert_eq!(
        h.msg(&bob, "ACCESS #chan ADD bob +F", &[]),
        vec![notice(2, "Only a founder of #Chan can change founders.")]
    );
    assert_eq!(
        h.msg(&bob, "ACCESS #chan ADD alice -o", &[]),
        vec![notice(2, "Only a founder of #Chan can change founders.")]
    );
    // Without f.
    let carol = user(3, "carol", Some("carol"));
    assert_eq!(
        h.msg(&carol, "ACCESS #chan ADD carol +o", &[]),
        vec![notice(3, "You need the f flag on #Chan to use ACCESS ADD.")]
    );
    assert_eq!(
        h.msg(&carol, "ACCESS #chan DEL bob", &[]),
        vec![notice(3, "You need the f flag on #Chan to use ACCESS DEL.")]
    );
}

#[test]
fn founder_flag_is_only_given_up_by_its_holder() {
    let (mut h, alice) = H::with_channel();
    assert_eq!(
        h.msg(&alice, "ACCESS #chan ADD alice -F", &[]),
        vec![notice(
            1,
            "You are the only founder of #Chan; drop the channel instead."
        )]
    );
    assert_eq!(
        h.msg(&alice, "ACCESS #chan DEL ALICE", &[]),
        vec![notice(
            1,
            "You are the only founder of #Chan; drop the channel instead."
        )]
    );
    assert_eq!(
        h.msg(&alice, "ACCESS #chan ADD Dave +F", &[]),
        vec![notice(1, "The flags of Dave on #Chan are now +F.")]
    );
    let dave = user(4, "dave", Some("dave"));
    // Another founder cannot take alice's F or remove her.
    assert_eq!(
        h.msg(&dave, "ACCESS #chan ADD alice -F", &[]),
        vec![notice(
            4,
            "Alice is a founder of #Chan; only Alice can give that up."
        )]
    );
    assert_eq!(
        h.msg(&dave, "ACCESS #chan DEL alice", &[]),
        vec![notice(
            4,
            "Alice is a founder of #Chan; only Alice can give that up."
        )]
    );
    // But a founder may change another founder's other flags.
    assert_eq!(
        h.msg(&dave, "ACCESS #chan ADD alice -t", &[]),
        vec![notice(4, "The flags of Alice on #Chan are now +FfoOvV.")]
    );
    // With two founders, alice may give hers up.
    assert_eq!(
        h.msg(&alice, "ACCESS #chan ADD alice -F", &[]),
        vec![notice(1, "The flags of Alice on #Chan are now +foOvV.")]
    );
    assert_eq!(
        h.msg(&dave, "ACCESS #chan DEL alice", &[]),
        vec![notice(
            4,
            "Alice has been removed from the access list of #Chan."
        )]
    );
    assert_eq!(
        h.msg(&dave, "ACCESS #chan DEL alice", &[]),
        vec![notice(4, "alice is not on the access list of #Chan.")]
    );
    assert_eq!(
        h.msg(&dave, "INFO #chan", &[])[1],
        notice(4, "Founder: Dave")
    );
}
