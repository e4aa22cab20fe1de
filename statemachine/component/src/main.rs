//! Writes the embedded IRC logic component to a file:
//! `cargo run -p unsplit-irc-component -- [OUT]` (default `target/unsplit_irc.wasm`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/unsplit_irc.wasm".to_owned());
    match std::fs::write(&out, unsplit_irc_component::IRC_COMPONENT) {
        Ok(()) => {
            println!(
                "{out}: {} bytes",
                unsplit_irc_component::IRC_COMPONENT.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write {out}: {e}");
            ExitCode::FAILURE
        }
    }
}
