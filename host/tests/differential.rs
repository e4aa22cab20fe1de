//! The whole golden corpus through the native library and through the built component
//! in wasmtime: every outcome must be identical, the component must also match the
//! golden files, and snapshots must be byte-identical and interchangeable.

mod common;

use common::{Wasm, services_transcripts, transcripts};
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

/// The services transcripts through the wasm logic and the wasm plugins, driven by the
/// host's `Logic` (the node's own code path), give the golden output too. Password
/// hashes are answered at once, each as the next entry, as the native runner does.
#[test]
fn services_run_the_same_in_wasm() {
    use unsplit_host::logic::Logic;
    use unsplit_host::runtime::{self, Limits, PluginModule};
    use unsplit_services::{Context, Event};
    use unsplit_statemachine::pipeline::Start;
    use unsplit_statemachine::transcript::START_MS;
    use unsplit_statemachine::{Outcome, ServiceEvent};

    let engine = runtime::engine().unwrap();
    let plugins: Vec<_> = unsplit_irc_component::BUILTIN_PLUGINS
        .iter()
        .map(|(_, b)| PluginModule::new(&engine, b).unwrap())
        .collect();
    let all = services_transcripts();
    assert!(all.len() >= 20, "{} services transcripts", all.len());
    let mut memo = std::collections::BTreeMap::new();
    for (name, text) in all {
        let t = Transcript::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut logic = Logic::new(common::module(), Limits::default(), Limits::default()).unwrap();
        // The services start at index 1, as in the native runner.
        let mut index = 1;
        let ctx = Context {
            index,
            time_ms: START_MS,
        };
        for p in &plugins {
            logic.activate_plugin(p.clone(), None, ctx, 64).unwrap();
        }
        let run = t.run_with(|entry| {
            index += 1;
            let mut entry = entry.clone();
            entry.index = index;
            let time_ms = entry.time_ms;
            let ran = logic
                .run(Start::Entry(entry), 64)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                ran.plugin_traps.is_empty(),
                "{name}: {:?}",
                ran.plugin_traps
            );
            let mut outcomes: Vec<Outcome> = vec![ran.done.outcome];
            for job in ran.done.hash_jobs {
                let key = (
                    job.password.clone(),
                    job.salt.clone(),
                    job.algorithm.clone(),
                );
                let result = memo
                    .entry(key)
                    .or_insert_with(|| {
                        unsplit_services::hasher::hash_password(
                            &job.password,
                            &job.salt,
                            job.algorithm.as_deref(),
                        )
                        .map_err(|e| e.to_string())
                    })
                    .clone();
                index += 1;
                let event = ServiceEvent {
                    service: job.service,
                    event: Event::PasswordHashed { id: job.id, result },
                };
                let ran = logic
                    .run(Start::Event(Context { index, time_ms }, event), 64)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                outcomes.push(ran.done.outcome);
            }
            outcomes
        });
        if let Err(report) = t.check(&run) {
            panic!("{name} differs in wasm:\n{report}");
        }
    }
}
