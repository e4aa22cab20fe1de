//! The whole golden corpus through the native library and through the built component
//! in wasmtime: every outcome must be identical, the component must also match the
//! golden files, and snapshots must be byte-identical and interchangeable.

mod common;

use common::{Wasm, transcripts};
use unsplit_statemachine::Server;
use unsplit_statemachine::transcript::{Logic, Transcript};

#[test]
fn component_matches_native_on_every_transcript() {
    let all = transcripts();
    assert!(all.len() >= 60, "only {} transcripts", all.len());
    let mut failures = Vec::new();
    for (name, text) in &all {
        let t = Transcript::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let native = t.run(&mut Server::new());
        let wasm = t.run(&mut Wasm::new());
        if native != wasm {
            failures.push(format!("{name}: native and wasm outcomes differ"));
        }
        if let Err(report) = t.check(&wasm) {
            failures.push(format!(
                "{name}: wasm differs from the golden file:\n{report}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Snapshots taken in wasm and natively are the same bytes, and each restores into the
/// other and continues identically.
#[test]
fn snapshots_are_identical_and_interchangeable() {
    for (name, text) in transcripts() {
        let t = Transcript::parse(&text).unwrap();
        let entries = t.entries();
        for cut in [0, entries.len() / 3, entries.len() / 2, entries.len()] {
            let mut native = Server::new();
            let mut wasm = Wasm::new();
            for e in &entries[..cut] {
                native.apply(e);
                Logic::apply(&mut wasm, e);
            }
            let native_bytes = native.snapshot();
            let wasm_bytes = wasm.0.snapshot().unwrap();
            assert_eq!(
                native_bytes, wasm_bytes,
                "{name}: snapshots differ at entry {cut}"
            );

            // native snapshot → fresh wasm instance; wasm snapshot → native.
            let mut wasm2 = Wasm::new();
            wasm2.0.restore(&native_bytes).unwrap().unwrap();
            let mut native2 = Server::restore(&wasm_bytes).unwrap();
            for e in &entries[cut..] {
                let a = native2.apply(e);
                let b = Logic::apply(&mut wasm2, e);
                let c = native.apply(e);
                assert_eq!(a, b, "{name}: restored outcomes differ after cut {cut}");
                assert_eq!(a, c, "{name}: restore changed behaviour after cut {cut}");
            }
        }
    }
}

#[test]
fn restore_refuses_garbage_and_keeps_the_state() {
    let mut wasm = Wasm::new();
    let before = wasm.0.snapshot().unwrap();
    for bad in [
        &b""[..],
        b"\x01\x00",
        b"\x09\x00\x00\x00rest",
        b"\x01\x00\x00\x00\xff\xff\xff",
    ] {
        let refused = wasm.0.restore(bad).unwrap();
        assert!(refused.is_err(), "{bad:?} was accepted");
    }
    assert_eq!(wasm.0.snapshot().unwrap(), before);
}
