//! Builds the IRC logic component that the host embeds.
//!
//! 1. `cargo build -p unsplit-irc-guest --target wasm32-unknown-unknown --profile guest`
//!    into its own target directory (`<target>/guest`), so it never waits on the outer
//!    build's lock. The target is added with rustup when it is missing.
//! 2. Wraps the core module into a component with wit-component.
//! 3. Writes it to `$OUT_DIR/unsplit_irc.wasm`, which `src/lib.rs` embeds.
//!
//! `UNSPLIT_IRC_COMPONENT=<path>` skips 1–2 and embeds a prebuilt component instead.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest
        .join("../..")
        .canonicalize()
        .expect("workspace root");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("unsplit_irc.wasm");
    println!("cargo:rerun-if-env-changed=UNSPLIT_IRC_COMPONENT");
    if let Some(prebuilt) = std::env::var_os("UNSPLIT_IRC_COMPONENT") {
        println!("cargo:rerun-if-changed={}", Path::new(&prebuilt).display());
        std::fs::copy(&prebuilt, &out).expect("copy UNSPLIT_IRC_COMPONENT");
        return;
    }
    for watched in [
        "Cargo.toml",
        "statemachine/src",
        "statemachine/Cargo.toml",
        "statemachine/guest",
        "wit",
        "Cargo.lock",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    ensure_target();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| {
            if d.is_absolute() {
                d
            } else {
                workspace.join(d)
            }
        })
        .unwrap_or_else(|| workspace.join("target"))
        .join("guest");
    std::fs::write(&out, build_component(&workspace, &target_dir, None)).expect("write component");
    // Misbehaving test fixtures (statemachine/src/fixtures.rs), each in its own target
    // directory so that switching features does not rebuild the others.
    if std::env::var_os("CARGO_FEATURE_FIXTURES").is_some() {
        let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
        for fixture in FIXTURES {
            let dir = target_dir.with_file_name(format!("guest-{fixture}"));
            let bytes = build_component(&workspace, &dir, Some(fixture));
            std::fs::write(out_dir.join(format!("{fixture}.wasm")), bytes).expect("write fixture");
        }
    }
}

const FIXTURES: [&str; 5] = [
    "fixture-reply",
    "fixture-panic",
    "fixture-loop",
    "fixture-alloc",
    "fixture-format2",
];

/// Builds the guest (with one fixture feature, or none) and wraps it into a component.
fn build_component(workspace: &Path, target_dir: &Path, feature: Option<&str>) -> Vec<u8> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace).args([
        "build",
        "-p",
        "unsplit-irc-guest",
        "--target",
        TARGET,
        "--profile",
        "guest",
    ]);
    if let Some(feature) = feature {
        cmd.args(["--features", feature]);
    }
    let status = cmd
        .env("CARGO_TARGET_DIR", target_dir)
        // The outer build's flags and wrappers (clippy, coverage) are for the host target.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .status()
        .expect("run cargo for the guest");
    assert!(
        status.success(),
        "building the IRC logic guest for {TARGET} failed (see the errors above)"
    );
    let core_path = target_dir
        .join(TARGET)
        .join("guest")
        .join("unsplit_irc_guest.wasm");
    let core =
        std::fs::read(&core_path).unwrap_or_else(|e| panic!("read {}: {e}", core_path.display()));
    wit_component::ComponentEncoder::default()
        .module(&core)
        .and_then(|enc| enc.validate(true).encode())
        .unwrap_or_else(|e| panic!("wrapping {} into a component: {e:#}", core_path.display()))
}

/// Adds the wasm target with rustup when the toolchain does not have it yet.
fn ensure_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_owned()));
    if sysroot.is_some_and(|s| s.join("lib/rustlib").join(TARGET).exists()) {
        return;
    }
    println!(
        "cargo:warning=installing the {TARGET} target with rustup (needed to build the IRC logic)"
    );
    let ok = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the {TARGET} target is missing and `rustup target add {TARGET}` failed; install it and retry"
    );
}
