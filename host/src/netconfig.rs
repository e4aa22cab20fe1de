//! The node's view of the replicated network configuration (TOML, RobustIRC key names).
//! The IRC logic reads the same document for its own keys; the host reads the ones it
//! acts on itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The keys the host uses. Unknown keys are the logic's (or future) business.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetConfig {
    pub network: String,
    pub server_name: String,
    /// How long an idle session lives; the output window keeps at least this much.
    pub session_expiration_ms: u64,
    /// `X-Bridge-Auth` secret → bridge name: these bridges' `X-Forwarded-For` is trusted.
    pub trusted_bridges: BTreeMap<String, String>,
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

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            network: "unsplit".into(),
            server_name: "irc.unsplit".into(),
            session_expiration_ms: 30 * 60 * 1000,
            trusted_bridges: BTreeMap::new(),
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
    trusted_bridges: BTreeMap<String, String>,
    logic: RawLogic,
    services: RawServices,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawLogic {
    fuel_per_entry: Option<u64>,
    #[serde(rename = "MemoryMiB")]
    memory_mib: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RawServices {
    fuel_per_call: Option<u64>,
    #[serde(rename = "MemoryMiB")]
    memory_mib: Option<u64>,
}

impl NetConfig {
    /// Checks the keys the host acts on (the logic checks the rest); `Err` says which
    /// value is wrong and why. Nothing of an invalid document takes effect.
    pub fn check(text: &str) -> Result<NetConfig, String> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "PascalCase", default)]
        struct OnlyLogic {
            logic: RawLogic,
            services: RawServices,
        }
        let raw: OnlyLogic = toml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(f) = raw.logic.fuel_per_entry
            && !FUEL_PER_ENTRY_RANGE.contains(&f)
        {
            return Err(format!(
                "Logic.FuelPerEntry = {f} is outside {}..={}",
                FUEL_PER_ENTRY_RANGE.start(),
                FUEL_PER_ENTRY_RANGE.end()
            ));
        }
        if let Some(m) = raw.logic.memory_mib
            && !MEMORY_MIB_RANGE.contains(&m)
        {
            return Err(format!(
                "Logic.MemoryMiB = {m} is outside {}..={}",
                MEMORY_MIB_RANGE.start(),
                MEMORY_MIB_RANGE.end()
            ));
        }
        if let Some(f) = raw.services.fuel_per_call
            && !FUEL_PER_ENTRY_RANGE.contains(&f)
        {
            return Err(format!(
                "Services.FuelPerCall = {f} is outside {}..={}",
                FUEL_PER_ENTRY_RANGE.start(),
                FUEL_PER_ENTRY_RANGE.end()
            ));
        }
        if let Some(m) = raw.services.memory_mib
            && !MEMORY_MIB_RANGE.contains(&m)
        {
            return Err(format!(
                "Services.MemoryMiB = {m} is outside {}..={}",
                MEMORY_MIB_RANGE.start(),
                MEMORY_MIB_RANGE.end()
            ));
        }
        Ok(NetConfig::from_toml(text))
    }

    /// The services plugins' resource limits this configuration sets.
    pub fn plugin_limits(&self) -> crate::runtime::Limits {
        crate::runtime::Limits {
            fuel_per_call: self.plugin_fuel_per_call,
            memory_bytes: self.plugin_memory_bytes,
            ..crate::runtime::Limits::default()
        }
    }

    /// The logic's resource limits this configuration sets.
    pub fn limits(&self) -> crate::runtime::Limits {
        crate::runtime::Limits {
            fuel_per_call: self.fuel_per_entry,
            memory_bytes: self.memory_bytes,
            ..crate::runtime::Limits::default()
        }
    }

    /// Reads the host's keys; anything unreadable keeps its default (the logic, which
    /// validates the whole document, refuses invalid configs before they count).
    pub fn from_toml(text: &str) -> NetConfig {
        let raw: Raw = toml::from_str(text).unwrap_or_default();
        let d = NetConfig::default();
        NetConfig {
            network: raw.network.unwrap_or(d.network),
            server_name: raw.server_name.unwrap_or(d.server_name),
            session_expiration_ms: raw
                .session_expiration
                .and_then(|s| unsplit_statemachine::parse_duration_ms(&s).ok())
                .unwrap_or(d.session_expiration_ms),
            trusted_bridges: raw.trusted_bridges,
            fuel_per_entry: raw.logic.fuel_per_entry.unwrap_or(d.fuel_per_entry),
            memory_bytes: raw
                .logic
                .memory_mib
                .map(|m| (m as usize) << 20)
                .unwrap_or(d.memory_bytes),
            plugin_fuel_per_call: raw.services.fuel_per_call.unwrap_or(d.plugin_fuel_per_call),
            plugin_memory_bytes: raw
                .services
                .memory_mib
                .map(|m| (m as usize) << 20)
                .unwrap_or(d.plugin_memory_bytes),
        }
    }

    /// The configuration a new network starts with.
    pub fn initial_toml(network: &str) -> String {
        format!(
            "# unsplit network configuration (see docs/ for every key).\n\
             Network = {network:?}\n\
             ServerName = {server:?}\n\
             SessionExpiration = \"30m\"\n\
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
        assert!(e.contains("Logic.FuelPerEntry = 5 is outside"), "{e}");
        let e = NetConfig::check("[Logic]\nMemoryMiB = 100000\n").unwrap_err();
        assert!(e.contains("Logic.MemoryMiB"), "{e}");
        let e = NetConfig::check("[Logic]\nMemoryMiB = \"lots\"\n").unwrap_err();
        assert!(e.contains("MemoryMiB"), "{e}");
        let d = NetConfig::check(&NetConfig::initial_toml("x")).unwrap();
        assert_eq!(d.limits(), crate::runtime::Limits::default());
    }
}
