//! Random entry sequences: no panic, every outcome well-formed, the state consistent
//! after every entry, and snapshot/restore lossless.

use proptest::prelude::*;
use unsplit_statemachine::fuzzing::{action, entries};
use unsplit_statemachine::{Outcome, Server};

fn well_formed(o: &Outcome) -> Result<(), String> {
    for l in &o.lines {
        if l.line.contains(['\r', '\n', '\0']) {
            return Err(format!("line with a control character: {:?}", l.line));
        }
        if l.recipients.is_empty() || !l.recipients.windows(2).all(|w| w[0] < w[1]) {
            return Err(format!(
                "recipients not ascending and unique: {:?}",
                l.recipients
            ));
        }
    }
    if !o.closed.windows(2).all(|w| w[0] < w[1]) {
        return Err(format!("closed not ascending: {:?}", o.closed));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_keep_the_state_consistent(actions in proptest::collection::vec(action(), 1..120)) {
        let mut server = Server::new();
        for e in entries(&actions) {
            let outcome = server.apply(&e);
            well_formed(&outcome).map_err(TestCaseError::fail)?;
            server.check_invariants().map_err(|m| TestCaseError::fail(format!("after {e:?}: {m}")))?;
        }
        let bytes = server.snapshot();
        let restored = Server::restore(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(restored.snapshot(), bytes);
    }

    #[test]
    fn random_bytes_never_panic(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..1200), 1..40)) {
        let mut server = Server::new();
        let mut index = 0;
        let mut apply = |server: &mut Server, kind| {
            index += 1;
            server.apply(&unsplit_statemachine::Entry { index, time_ms: 1, session: 7, kind })
        };
        apply(&mut server, unsplit_statemachine::EntryKind::CreateSession { remote_addr: String::new() });
        for raw in lines {
            let outcome = apply(&mut server, unsplit_statemachine::EntryKind::IrcLine(raw));
            well_formed(&outcome).map_err(TestCaseError::fail)?;
        }
    }
}
