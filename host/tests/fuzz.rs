//! Random entry sequences (plausible commands and raw bytes) through the native library
//! and the component: the component never traps and every outcome is identical.

mod common;

use common::{Wasm, from_wit, to_wit};
use proptest::prelude::*;
use unsplit_statemachine::Server;
use unsplit_statemachine::fuzzing::{action, entries};

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn native_and_wasm_agree_on_random_histories(actions in proptest::collection::vec(action(), 1..150)) {
        let mut native = Server::new();
        let mut wasm = Wasm::new();
        for e in entries(&actions) {
            let expected = native.apply(&e);
            let actual = wasm.0.apply(&to_wit(&e)).map_err(|err| TestCaseError::fail(format!("{e:?}: {err}")))?;
            prop_assert_eq!(from_wit(actual), expected, "entry {:?}", e);
        }
        prop_assert_eq!(wasm.0.snapshot().unwrap(), native.snapshot());
    }
}
