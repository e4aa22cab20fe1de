//! The built component: its imports, its identity, and the resource limits around it.

mod common;

use unsplit_host::runtime::{
    self, Entry, EntryKind, Limits, LogicInstance, LogicModule, RuntimeError, TrapKind,
};

#[test]
fn imports_only_our_own_interfaces() {
    // The logic and every plugin: the log function and the type-only interfaces, no
    // WASI, nothing else.
    let components = [unsplit_irc_component::IRC_COMPONENT].into_iter().chain(
        unsplit_irc_component::BUILTIN_PLUGINS
            .iter()
            .map(|(_, b)| *b),
    );
    for bytes in components {
        let mut imports = runtime::component_imports(bytes).unwrap();
        imports.sort();
        assert_eq!(
            imports,
            vec![
                "unsplit:irc/host@1.0.0",
                "unsplit:irc/types@1.0.0",
                "unsplit:services/types@1.0.0"
            ]
        );
    }
}

#[test]
fn the_builtin_components_are_what_they_claim() {
    let engine = runtime::engine().unwrap();
    let logic = runtime::compile(&engine, unsplit_irc_component::IRC_COMPONENT).unwrap();
    assert!(matches!(logic, runtime::Compiled::Logic(m) if m.has_services()));
    for (name, bytes) in unsplit_irc_component::BUILTIN_PLUGINS {
        let runtime::Compiled::Plugin(p) = runtime::compile(&engine, bytes).unwrap() else {
            panic!("{name} is not a plugin");
        };
        let info = p.info().unwrap();
        assert_eq!(info.name, *name);
        assert!(!info.nick.is_empty());
    }
    // A plugin is not a logic and the other way round.
    assert!(LogicModule::new(&engine, unsplit_irc_component::NICKSERV_COMPONENT).is_err());
    assert!(runtime::PluginModule::new(&engine, unsplit_irc_component::IRC_COMPONENT).is_err());
}

#[test]
fn reports_name_version_and_snapshot_format() {
    let mut logic = LogicInstance::new(common::module(), Limits::default()).unwrap();
    let info = logic.info().unwrap();
    assert_eq!(info.name, unsplit_statemachine::MODULE_NAME);
    assert_eq!(info.version, unsplit_statemachine::MODULE_VERSION);
    assert_eq!(info.snapshot_format, unsplit_statemachine::SNAPSHOT_FORMAT);
}

#[test]
fn refuses_a_component_that_imports_wasi() {
    // A minimal component (text format compiled by hand) that imports a WASI interface.
    let bytes = component_importing("wasi:clocks/wall-clock@0.2.0");
    let engine = runtime::engine().unwrap();
    let err = LogicModule::new(&engine, &bytes).unwrap_err();
    assert!(
        matches!(&err, RuntimeError::ForeignImport(name) if name == "wasi:clocks/wall-clock@0.2.0"),
        "{err}"
    );
    // Our own import name passes the import check, but the component exports nothing.
    let err =
        LogicModule::new(&engine, &component_importing("unsplit:irc/host@1.0.0")).unwrap_err();
    assert!(matches!(err, RuntimeError::Unsupported(_)), "{err}");
}

/// A component with one instance import named `name` (empty instance type), no exports.
fn component_importing(name: &str) -> Vec<u8> {
    let mut bytes = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    // type section: one instance type with no declarations.
    bytes.extend([0x07, 0x03, 0x01, 0x42, 0x00]);
    // import section: one import, extern name (0x00 kind + name), instance of type 0.
    let mut import = vec![0x01, 0x00, name.len() as u8];
    import.extend(name.as_bytes());
    import.extend([0x05, 0x00]);
    bytes.push(0x0a);
    bytes.push(import.len() as u8);
    bytes.extend(import);
    bytes
}

fn line(index: u64, session: u64, text: &str) -> Entry {
    Entry {
        index,
        time_ms: 1_000,
        session,
        kind: EntryKind::IrcLine(text.as_bytes().to_vec()),
    }
}

fn create(index: u64, session: u64) -> Entry {
    Entry {
        index,
        time_ms: 1_000,
        session,
        kind: EntryKind::CreateSession("127.0.0.1".into()),
    }
}

#[test]
fn running_out_of_fuel_is_a_trap_and_poisons_the_instance() {
    let steps = [
        create(1, 1),
        line(2, 1, "NICK alice"),
        line(3, 1, "USER a 0 * :A"),
    ];
    // Measure each step, then give just enough fuel for the first two: registration
    // (the welcome burst) costs more and must run out.
    let mut measure = LogicInstance::new(common::module(), Limits::default()).unwrap();
    let fuel: Vec<u64> = steps
        .iter()
        .map(|e| measure.apply(e).map(|_| measure.last_fuel()).unwrap())
        .collect();
    let budget = fuel[0].max(fuel[1]) + 1;
    assert!(
        fuel[2] > budget,
        "registration should cost more than NICK: {fuel:?}"
    );
    let limits = Limits {
        fuel_per_call: budget,
        ..Limits::default()
    };
    let mut logic = LogicInstance::new(common::module(), limits).unwrap();
    logic.apply(&steps[0]).unwrap();
    logic.apply(&steps[1]).unwrap();
    let err = logic.apply(&steps[2]).unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::Trap {
                kind: TrapKind::OutOfFuel,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("fuel"), "{err}");
    assert!(matches!(
        logic.apply(&line(4, 1, "PING x")),
        Err(RuntimeError::Poisoned)
    ));
}

#[test]
fn fuel_use_is_deterministic() {
    let run = || {
        let mut logic = LogicInstance::new(common::module(), Limits::default()).unwrap();
        let mut fuel = Vec::new();
        for (i, e) in [
            create(1, 1),
            line(2, 1, "NICK a"),
            line(3, 1, "USER a 0 * :a"),
            line(4, 1, "JOIN #x"),
        ]
        .iter()
        .enumerate()
        {
            logic.apply(e).unwrap_or_else(|err| panic!("{i}: {err}"));
            fuel.push(logic.last_fuel());
        }
        fuel
    };
    let first = run();
    assert!(first.iter().all(|&f| f > 0));
    assert_eq!(first, run());
}

#[test]
fn exceeding_the_memory_limit_is_a_trap() {
    let limits = Limits {
        memory_bytes: 4 << 20,
        ..Limits::default()
    };
    let mut logic = LogicInstance::new(common::module(), limits).unwrap();
    // Grow the state until the 4 MiB limit is reached: sessions with channels.
    let mut index = 0;
    let mut outcome = Ok(());
    'grow: for s in 1..=100_000u64 {
        for e in [
            create(0, s),
            line(0, s, &format!("NICK n{s}")),
            line(0, s, &format!("USER u 0 * :{}", "r".repeat(300))),
        ] {
            index += 1;
            if let Err(err) = logic.apply(&Entry { index, ..e }) {
                outcome = Err(err);
                break 'grow;
            }
        }
    }
    let err = outcome.expect_err("4 MiB should not hold 100,000 sessions");
    assert!(
        matches!(
            err,
            RuntimeError::Trap {
                kind: TrapKind::OutOfMemory,
                ..
            }
        ),
        "{err}"
    );
}
