//! Test fixtures: module versions built from this same logic with a cargo feature, for
//! the host's crash-isolation, hot-swap and canary tests. None is in a normal build.
//!
//! - `fixture-reply`: the VERSION reply reads differently (and the module version says
//!   so); everything else is identical.
//! - `fixture-panic`: the line `FIXTURE PANIC` panics (a wasm trap); so does a service
//!   logging a session in to the account `FIXTURE` (a trap in the middle of an entry,
//!   after a plugin changed its state: the plugin must be rolled back too).
//! - `fixture-loop`: the line `FIXTURE LOOP` never returns (runs out of fuel).
//! - `fixture-alloc`: the line `FIXTURE ALLOC` allocates without bound (out of memory).
//! - `fixture-format2`: claims a snapshot format newer than the real module's, without a
//!   migration from any older one, so it refuses to restore any existing state (a switch
//!   to it must be refused).

/// Runs a fixture's misbehaviour when `line` is its magic line.
pub(crate) fn misbehave(line: &str) {
    if cfg!(feature = "fixture-panic") && line == "FIXTURE PANIC" {
        panic!("fixture-panic: the magic line");
    }
    if cfg!(feature = "fixture-loop") && line == "FIXTURE LOOP" {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
    if cfg!(feature = "fixture-alloc") && line == "FIXTURE ALLOC" {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

/// Runs the panic fixture's misbehaviour when a service logs a session in to `FIXTURE`.
pub(crate) fn misbehave_on_login(account: &str) {
    if cfg!(feature = "fixture-panic") && account == "FIXTURE" {
        panic!("fixture-panic: a login to the account FIXTURE");
    }
}
