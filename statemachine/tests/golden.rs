//! Runs every golden transcript in `statemachine/transcripts/` against the native library.
//! `UNSPLIT_BLESS=1 cargo test -p unsplit-statemachine --test golden` rewrites the
//! expected output from the actual output (review the diff!).

use std::path::PathBuf;

use unsplit_statemachine::Server;
use unsplit_statemachine::transcript::{self, Transcript};

fn transcripts() -> Vec<(PathBuf, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("transcripts");
    transcript::read_dir(&dir).expect("read statemachine/transcripts")
}

#[test]
fn golden_transcripts() {
    let bless = std::env::var_os("UNSPLIT_BLESS").is_some();
    let mut failures = Vec::new();
    let all = transcripts();
    let count = all.len();
    for (path, text) in all {
        let t = Transcript::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let run = t.run(&mut Server::new());
        if bless {
            std::fs::write(&path, t.bless(&run)).expect("write blessed transcript");
        } else if let Err(report) = t.check(&run) {
            failures.push(format!("== {}\n{report}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} transcript(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        count >= 60,
        "expected at least 60 transcripts, found {count}"
    );
}

/// Snapshot → restore at every point of every transcript continues identically.
#[test]
fn snapshot_restore_at_every_point_continues_identically() {
    for (path, text) in transcripts() {
        let t = Transcript::parse(&text).unwrap();
        let entries = t.entries();
        let mut reference = Server::new();
        let expected: Vec<_> = entries.iter().map(|e| reference.apply(e)).collect();
        for cut in 0..=entries.len() {
            let mut first = Server::new();
            for e in &entries[..cut] {
                first.apply(e);
            }
            let bytes = first.snapshot();
            let mut restored =
                Server::restore(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                restored.snapshot(),
                bytes,
                "{}: snapshot of a restored state differs",
                path.display()
            );
            for (i, e) in entries.iter().enumerate().skip(cut) {
                assert_eq!(
                    restored.apply(e),
                    expected[i],
                    "{}: entry {} after restoring at {cut} differs",
                    path.display(),
                    i + 1
                );
            }
        }
    }
}
