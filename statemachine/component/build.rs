//! Builds the components that the host embeds: the IRC logic and the services plugins.
//!
//! 1. `cargo build -p unsplit-irc-guest --target wasm32-unknown-unknown --profile guest`
//!    into its own target directory (`<target>/guest`), so it never waits on the outer
//!    build's lock. The target is added with rustup when it is missing.
//! 2. Wraps the core module into a component with wit-component.
//! 3. Writes it to `$OUT_DIR/unsplit_irc.wasm`, which `src/lib.rs` embeds.
//! 4. The same for each services plugin (`unsplit-services-guest`, one build per plugin
//!    feature, in `<target>/guest-plugins`): `$OUT_DIR/<plugin>.wasm`.
//!
//! `UNSPLIT_IRC_COMPONENT=<path>` skips 1–2 and embeds a prebuilt logic component instead.

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
    for watched in [
        "Cargo.toml",
        "statemachine/src",
        "statemachine/Cargo.toml",
        "statemachine/guest",
        "plugins",
        "wit",
        "Cargo.lock",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    ensure_target();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
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
    match std::env::var_os("UNSPLIT_IRC_COMPONENT") {
        Some(prebuilt) => {
            println!("cargo:rerun-if-changed={}", Path::new(&prebuilt).display());
            std::fs::copy(&prebuilt, &out).expect("copy UNSPLIT_IRC_COMPONENT");
        }
        None => {
            let bytes = build_component(&workspace, &target_dir, LOGIC, None);
            std::fs::write(&out, bytes).expect("write component");
        }
    }
    // The plugins share one target directory: cargo keeps each feature set's artifacts
    // apart, and the dependencies are built once.
    let plugins_dir = target_dir.with_file_name("guest-plugins");
    let fixtures = std::env::var_os("CARGO_FEATURE_FIXTURES").is_some();
    for (name, features) in PLUGINS
        .iter()
        .chain(fixtures.then_some(PLUGIN_FIXTURES).into_iter().flatten())
    {
        let bytes = build_component(&workspace, &plugins_dir, PLUGIN, *features);
        std::fs::write(out_dir.join(format!("{name}.wasm")), bytes).expect("write plugin");
    }
    // Misbehaving test fixtures (statemachine/src/fixtures.rs), each in its own target
    // directory so that switching features does not rebuild the others.
    if fixtures {
        for fixture in FIXTURES {
            let dir = target_dir.with_file_name(format!("guest-{fixture}"));
            let bytes = build_component(&workspace, &dir, LOGIC, Some(fixture));
            std::fs::write(out_dir.join(format!("{fixture}.wasm")), bytes).expect("write fixture");
        }
    }
}

/// The guest crates: (package, its core module's file name).
const LOGIC: (&str, &str) = ("unsplit-irc-guest", "unsplit_irc_guest.wasm");
const PLUGIN: (&str, &str) = ("unsplit-services-guest", "unsplit_services_guest.wasm");

/// The built-in plugins: output name and the guest's features.
const PLUGINS: &[(&str, Option<&str>)] = &[("nickserv", None), ("chanserv", Some("chanserv"))];
/// Plugin fixtures (plugins/guest/src/lib.rs): a panicking NickServ, an "upgraded" one.
const PLUGIN_FIXTURES: &[(&str, Option<&str>)] = &[
    ("nickserv-fixture-panic", Some("fixture-panic")),
    ("nickserv-fixture-v2", Some("fixture-v2")),
];

const FIXTURES: [&str; 5] = [
    "fixture-reply",
    "fixture-panic",
    "fixture-loop",
    "fixture-alloc",
    "fixture-format2",
];

/// Builds a guest crate (with one feature, or none) and wraps it into a component.
fn build_component(
    workspace: &Path,
    target_dir: &Path,
    (package, file): (&str, &str),
    feature: Option<&str>,
) -> Vec<u8> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace).args([
        "build",
        "-p",
        package,
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
        "building the guest {package} for {TARGET} failed (see the errors above)"
    );
    let core_path = target_dir.join(TARGET).join("guest").join(file);
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
