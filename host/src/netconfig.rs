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
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            network: "unsplit".into(),
            server_name: "irc.unsplit".into(),
            session_expiration_ms: 30 * 60 * 1000,
            trusted_bridges: BTreeMap::new(),
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
}

impl NetConfig {
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
        }
    }

    /// The configuration a new network starts with.
    pub fn initial_toml(network: &str) -> String {
        format!(
            "# unsplit network configuration (see docs/ for every key).\n\
             Network = {network:?}\n\
             ServerName = {server:?}\n\
             SessionExpiration = \"30m\"\n",
            server = format!("irc.{network}"),
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
}
