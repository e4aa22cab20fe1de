//! The node's view of the replicated network configuration (TOML, RobustIRC key names).
//! The IRC logic reads the same document for its own keys; the host reads the ones it
//! acts on itself. docs/network-config.toml documents every key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The keys the host uses. Unknown keys are the logic's (or future) business.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    pub network: String,
    pub server_name: String,
    /// How long an idle session lives; the output window keeps at least this much.
    pub session_expiration_ms: u64,
    /// `PostMessageCooloff`: the ceiling of the exponential throttle per session (see
    /// `throttle`); 0 turns throttling off.
    pub post_message_cooloff_ms: u64,
    /// `MaxSessions`: sessions the network holds at most (more: 429). 0: no limit.
    pub max_sessions: u64,
    /// `MaxSessionsPerAddress`: sessions from one client address at most (more: 429).
    /// 0: no limit.
    pub max_sessions_per_address: u64,
    /// `X-Bridge-Auth` secret → bridge name: these bridges' `X-Forwarded-For` is trusted.
    pub trusted_bridges: BTreeMap<String, String>,
    /// `WhitelistedOrigins`: browser origins the public API answers with CORS headers.
    pub whitelisted_origins: Vec<String>,
    /// `[Logic] FuelPerEntry`: fuel one entry may burn before it is rejected.
    pub fuel_per_entry: u64,
    /// `[Logic] MemoryMiB`: the logic's memory limit.
    pub memory_bytes: usize,
    /// `[Services] FuelPerCall`: fuel one call of a services plugin may burn before it
    /// fails (and is rolled back).
    pub plugin_fuel_per_call: u64,
    /// `[Services] MemoryMiB`: each plugin's memory limit.
    pub plugin_memory_bytes: usize,
}

/// Fuel one call of a services plugin may burn unless the configuration says otherwise.
pub const DEFAULT_PLUGIN_FUEL: u64 = 1_000_000_000;
/// Memory a services plugin may use unless the configuration says otherwise.
pub const DEFAULT_PLUGIN_MEMORY_MIB: u64 = 256;

/// Bounds of the `[Logic]` limits: below them the real logic could not work, above them
/// one entry could stall the network for too long.
pub const FUEL_PER_ENTRY_RANGE: std::ops::RangeInclusive<u64> = 1_000_000..=20_000_000_000;
pub const MEMORY_MIB_RANGE: std::ops::RangeInclusive<u64> = 16..=4096;
/// The longest `PostMessageCooloff`: a post waits at most this long, well within every
/// client's request timeout.
pub const MAX_COOLOFF_MS: u64 = 10_000;
/// RobustIRC's default `PostMessageCooloff`.
pub const DEFAULT_COOLOFF_MS: u64 = 500;
/// Shortest `TrustedBridges` secret (as the bridge's `--bridge-auth-file` demands).
pub const MIN_BRIDGE_SECRET: usize = 32;

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            network: "unsplit".into(),
            server_name: "irc.unsplit".into(),
            session_expiration_ms: 30 * 60 * 1000,
            post_message_cooloff_ms: DEFAULT_COOLOFF_MS,
            max_sessions: 0,
            max_sessions_per_address: 0,
            trusted_bridges: BTreeMap::new(),
            whitelisted_origins: Vec::new(),
            fuel_per_entry: crate::runtime::DEFAULT_FUEL_PER_ENTRY,
            memory_bytes: crate::runtime::DEFAULT_MEMORY_BYTES,
            plugin_fuel_per_call: DEFAULT_PLUGIN_FUEL,
            plugin_memory_bytes: (DEFAULT_PLUGIN_MEMORY_MIB as usize) << 20,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Raw {
    network: Option<String>,
    server_name: Option<String>,
    session_expiration: Option<String>,
    post_message_cooloff: Option<Spanned<String>>,
    max_sessions: Option<u64>,
    max_sessions_per_address: Option<u64>,
    trusted_bridges: Option<Spanned<BTreeMap<String, String>>>,
    whitelisted_origins: Option<Spanned<Vec<String>>>,
    logic: RawLogic,
    services: RawServices,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawLogic {
    fuel_per_entry: Option<Spanned<u64>>,
    #[serde(rename = "MemoryMiB")]
    memory_mib: Option<Spanned<u64>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawServices {
    fuel_per_call: Option<Spanned<u64>>,
    #[serde(rename = "MemoryMiB")]
    memory_mib: Option<Spanned<u64>>,
}

/// `line L: <key> = <value> is outside <range>` when it is.
fn in_range(
    text: &str,
    key: &str,
    value: &Option<Spanned<u64>>,
    range: &std::ops::RangeInclusive<u64>,
) -> Result<(), String> {
    match value {
        Some(v) if !range.contains(v.get_ref()) => Err(format!(
            "{}{key} = {} is outside {}..={}",
            at(text, v.span()),
            v.get_ref(),
            range.start(),
            range.end()
        )),
        _ => Ok(()),
    }
}

/// `line L: ` for a span of `text`.
fn at(text: &str, span: std::ops::Range<usize>) -> String {
    let line = text.get(..span.start).unwrap_or(text).matches('\n').count() + 1;
    format!("line {line}: ")
}

/// Whether `origin` is a browser origin: `http(s)://host[:port]`, nothing after.
fn valid_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
}

impl NetConfig {
    /// Checks the keys the host acts on (the logic checks the rest); `Err` says where,
    /// which value is wrong and why. Nothing of an invalid document takes effect.
    pub fn check(text: &str) -> Result<NetConfig, String> {
        let raw: Raw = toml::from_str(text)
            .map_err(|e| unsplit_statemachine::describe_toml_error(text, &e))?;
        let (logic, services) = (&raw.logic, &raw.services);
        in_range(
            text,
            "Logic.FuelPerEntry",
            &logic.fuel_per_entry,
            &FUEL_PER_ENTRY_RANGE,
        )?;
        in_range(
            text,
            "Logic.MemoryMiB",
            &logic.memory_mib,
            &MEMORY_MIB_RANGE,
        )?;
        in_range(
            text,
            "Services.FuelPerCall",
            &services.fuel_per_call,
            &FUEL_PER_ENTRY_RANGE,
        )?;
        in_range(
            text,
            "Services.MemoryMiB",
            &services.memory_mib,
            &MEMORY_MIB_RANGE,
        )?;
        if let Some(c) = &raw.post_message_cooloff {
            match unsplit_statemachine::parse_duration_ms(c.get_ref()) {
                Err(e) => return Err(format!("{}PostMessageCooloff: {e}", at(text, c.span()))),
                Ok(ms) if ms > MAX_COOLOFF_MS => {
                    return Err(format!(
                        "{}PostMessageCooloff = {:?} is longer than {MAX_COOLOFF_MS} ms (\"0\" turns throttling off)",
                        at(text, c.span()),
                        c.get_ref()
                    ));
                }
                Ok(_) => {}
            }
        }
        let bridges = raw.trusted_bridges.as_ref();
        for (secret, name) in bridges.map(Spanned::get_ref).into_iter().flatten() {
            let where_ = bridges.map(|b| at(text, b.span())).unwrap_or_default();
            if secret.len() < MIN_BRIDGE_SECRET || !secret.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "{where_}TrustedBridges: the secret of {name:?} must be at least {MIN_BRIDGE_SECRET} printable ASCII characters without spaces"
                ));
            }
            if name.trim().is_empty() {
                return Err(format!(
                    "{where_}TrustedBridges: every secret needs a bridge name as its value"
                ));
            }
        }
        if let Some(origins) = &raw.whitelisted_origins {
            for o in origins.get_ref() {
                if !valid_origin(o) {
                    return Err(format!(
                        "{}WhitelistedOrigins: {o:?} is not an origin like \"https://web.example.net\" or \"http://localhost:8080\" (scheme and host, no path)",
                        at(text, origins.span())
                    ));
                }
            }
        }
        Ok(NetConfig::from_raw(raw))
    }

    /// The logic's resource limits this configuration sets.
    pub fn limits(&self) -> crate::runtime::Limits {
        crate::runtime::Limits {
            fuel_per_call: self.fuel_per_entry,
            memory_bytes: self.memory_bytes,
            ..crate::runtime::Limits::default()
        }
    }

    /// The services plugins' resource limits this configuration sets.
    pub fn plugin_limits(&self) -> crate::runtime::Limits {
        crate::runtime::Limits {
            fuel_per_call: self.plugin_fuel_per_call,
            memory_bytes: self.plugin_memory_bytes,
            ..crate::runtime::Limits::default()
        }
    }

    /// Reads the host's keys; anything unreadable keeps its default (the checks in
    /// [`NetConfig::check`] and the logic refuse invalid configs before they count).
    pub fn from_toml(text: &str) -> NetConfig {
        NetConfig::from_raw(toml::from_str(text).unwrap_or_default())
    }

    fn from_raw(raw: Raw) -> NetConfig {
        let d = NetConfig::default();
        let duration = |s: Option<String>, default| {
            s.and_then(|s| unsplit_statemachine::parse_duration_ms(&s).ok())
                .unwrap_or(default)
        };
        NetConfig {
            network: raw.network.unwrap_or(d.network),
            server_name: raw.server_name.unwrap_or(d.server_name),
            session_expiration_ms: duration(raw.session_expiration, d.session_expiration_ms),
            post_message_cooloff_ms: duration(
                raw.post_message_cooloff.map(Spanned::into_inner),
                d.post_message_cooloff_ms,
            )
            .min(MAX_COOLOFF_MS),
            max_sessions: raw.max_sessions.unwrap_or(d.max_sessions),
            max_sessions_per_address: raw
                .max_sessions_per_address
                .unwrap_or(d.max_sessions_per_address),
            trusted_bridges: raw
                .trusted_bridges
                .map(Spanned::into_inner)
                .unwrap_or_default(),
            whitelisted_origins: raw
                .whitelisted_origins
                .map(Spanned::into_inner)
                .unwrap_or_default(),
            fuel_per_entry: raw
                .logic
                .fuel_per_entry
                .map(Spanned::into_inner)
                .unwrap_or(d.fuel_per_entry),
            memory_bytes: raw
                .logic
                .memory_mib
                .map(|m| (m.into_inner() as usize) << 20)
                .unwrap_or(d.memory_bytes),
            plugin_fuel_per_call: raw
                .services
                .fuel_per_call
                .map(Spanned::into_inner)
                .unwrap_or(d.plugin_fuel_per_call),
            plugin_memory_bytes: raw
                .services
                .memory_mib
                .map(|m| (m.into_inner() as usize) << 20)
                .unwrap_or(d.plugin_memory_bytes),
        }
    }

    /// The configuration a new network starts with.
    pub fn initial_toml(network: &str) -> String {
        format!(
            "# unsplit network configuration; docs/network-config.toml documents every key.\n\
             Network = {network:?}\n\
             ServerName = {server:?}\n\
             SessionExpiration = \"30m\"\n\
             # The exponential throttle per session (1 ms doubling up to this; \"0\": off).\n\
             PostMessageCooloff = \"{cooloff}ms\"\n\
             \n\
             [Logic]\n\
             # Fuel (about one wasm instruction each) one entry may burn before it is\n\
             # rejected, and the logic's memory limit.\n\
             FuelPerEntry = {fuel}\n\
             MemoryMiB = {memory}\n\
             \n\
             [Services]\n\
             # The same for each call of a services plugin (NickServ, ChanServ).\n\
             FuelPerCall = {plugin_fuel}\n\
             MemoryMiB = {plugin_memory}\n",
            server = format!("irc.{network}"),
            cooloff = DEFAULT_COOLOFF_MS,
            fuel = crate::runtime::DEFAULT_FUEL_PER_ENTRY,
            memory = crate::runtime::DEFAULT_MEMORY_BYTES >> 20,
            plugin_fuel = DEFAULT_PLUGIN_FUEL,
            plugin_memory = DEFAULT_PLUGIN_MEMORY_MIB,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_host_keys() {
        let c = NetConfig::from_toml(&NetConfig::initial_toml("testnet"));
        assert_eq!(c.network, "testnet");
        assert_eq!(c.server_name, "irc.testnet");
        assert_eq!(c.session_expiration_ms, 1_800_000);
        assert_eq!(c.post_message_cooloff_ms, 500);
        assert_eq!(
            NetConfig::from_toml("garbage = [").session_expiration_ms,
            1_800_000
        );
    }

    #[test]
    fn logic_limits_are_checked() {
        let c = NetConfig::check("[Logic]\nFuelPerEntry = 50000000\nMemoryMiB = 64\n").unwrap();
        assert_eq!(c.limits().fuel_per_call, 50_000_000);
        assert_eq!(c.limits().memory_bytes, 64 << 20);
        let e = NetConfig::check("[Logic]\nFuelPerEntry = 5\n").unwrap_err();
        assert!(
            e.contains("line 2: Logic.FuelPerEntry = 5 is outside"),
            "{e}"
        );
        let e = NetConfig::check("[Logic]\nMemoryMiB = 100000\n").unwrap_err();
        assert!(e.contains("Logic.MemoryMiB"), "{e}");
        let e = NetConfig::check("[Logic]\nMemoryMiB = \"lots\"\n").unwrap_err();
        assert!(e.contains("line 2, column 13"), "{e}");
        let d = NetConfig::check(&NetConfig::initial_toml("x")).unwrap();
        assert_eq!(d.limits(), crate::runtime::Limits::default());
        let c = NetConfig::check("[Services]\nFuelPerCall = 50000000\nMemoryMiB = 32\n").unwrap();
        assert_eq!(c.plugin_limits().fuel_per_call, 50_000_000);
        assert_eq!(c.plugin_limits().memory_bytes, 32 << 20);
        let e = NetConfig::check("[Services]\nMemoryMiB = 1\n").unwrap_err();
        assert!(
            e.contains("line 2: Services.MemoryMiB = 1 is outside"),
            "{e}"
        );
    }

    #[test]
    fn abuse_keys_are_read_and_checked() {
        let secret = "s".repeat(32);
        let c = NetConfig::check(&format!(
            "PostMessageCooloff = \"0\"\nMaxSessions = 10\nMaxSessionsPerAddress = 2\n\
             WhitelistedOrigins = [\"https://web.example.net\", \"http://localhost:8080\"]\n\
             [TrustedBridges]\n\"{secret}\" = \"bridge\"\n"
        ))
        .unwrap();
        assert_eq!(c.post_message_cooloff_ms, 0);
        assert_eq!((c.max_sessions, c.max_sessions_per_address), (10, 2));
        assert_eq!(c.whitelisted_origins.len(), 2);
        assert_eq!(c.trusted_bridges[&secret], "bridge");
        assert_eq!(NetConfig::check("").unwrap(), NetConfig::default());

        for (doc, needle) in [
            (
                "PostMessageCooloff = \"fast\"",
                "line 1: PostMessageCooloff: invalid duration",
            ),
            (
                "\nPostMessageCooloff = \"1m\"",
                "line 2: PostMessageCooloff = \"1m\" is longer",
            ),
            ("MaxSessions = -1", "line 1, column 15"),
            ("MaxSessionsPerAddress = \"x\"", "line 1, column 25"),
            (
                "WhitelistedOrigins = [\"web.example\"]",
                "WhitelistedOrigins: \"web.example\"",
            ),
            ("WhitelistedOrigins = [\"https://a/b\"]", "no path"),
            ("[TrustedBridges]\nshort = \"b\"", "at least 32"),
        ] {
            let e = NetConfig::check(doc).unwrap_err();
            assert!(e.contains(needle), "{doc}: {e}");
        }
    }
}

/// docs/network-config.toml, the fully commented example, must stay valid and true.
#[cfg(test)]
mod example {
    use super::*;

    const EXAMPLE: &str = include_str!("../../docs/network-config.toml");

    #[test]
    fn the_documented_example_passes_both_validators_with_the_defaults() {
        let host = NetConfig::check(EXAMPLE).unwrap();
        let logic = unsplit_statemachine::Config::from_toml(EXAMPLE).unwrap();
        // Every scalar in the example is its default; only the tables show examples.
        assert_eq!(
            NetConfig {
                trusted_bridges: BTreeMap::new(),
                ..host.clone()
            },
            NetConfig::default()
        );
        assert_eq!(host.trusted_bridges.len(), 1);
        assert_eq!(
            unsplit_statemachine::Config {
                irc: Default::default(),
                banned: Default::default(),
                plugins: Default::default(),
                ..logic.clone()
            },
            unsplit_statemachine::Config::default()
        );
        // The plugins' own tables (their values are checked by the plugins themselves:
        // host/tests/hot_swap.rs commits this document with the built-in plugins).
        assert_eq!(
            logic.plugins.keys().collect::<Vec<_>>(),
            ["chanserv", "nickserv"]
        );
        assert_eq!(logic.irc.operators.len(), 1);
        assert_eq!(logic.banned.len(), 1);
        // Every key the code reads is documented.
        for key in [
            "Network",
            "ServerName",
            "Motd",
            "SessionExpiration",
            "RegistrationTimeout",
            "MaxChannelsPerSession",
            "MaxChannels",
            "PostMessageCooloff",
            "MaxSessions",
            "MaxSessionsPerAddress",
            "WhitelistedOrigins",
            "UnregisteredLines",
            "NickChanges",
            "NickChangeInterval",
            "Joins",
            "JoinInterval",
            "FuelPerEntry",
            "MemoryMiB",
            "FuelPerCall",
            "GracePeriod",
            "Enforce",
            "MinPasswordLength",
            "GuestPrefix",
        ] {
            assert!(
                EXAMPLE.contains(&format!("\n{key} = ")),
                "{key} is not in docs/network-config.toml"
            );
        }
        for table in [
            "[IRC]",
            "[[IRC.Operators]]",
            "[TrustedBridges]",
            "[Banned]",
            "[Flood]",
            "[Logic]",
            "[Services]",
            "[Plugins.nickserv]",
            "[Plugins.chanserv]",
        ] {
            assert!(EXAMPLE.contains(&format!("\n{table}\n")), "{table}");
        }
    }

    #[test]
    fn a_new_network_starts_with_a_valid_configuration() {
        let text = NetConfig::initial_toml("example");
        assert_eq!(NetConfig::check(&text).unwrap().network, "example");
        assert!(unsplit_statemachine::Config::from_toml(&text).is_ok());
    }
}
