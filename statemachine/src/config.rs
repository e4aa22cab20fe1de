//! The logic's view of the replicated network configuration.
//!
//! The configuration is one TOML document (RobustIRC's format, extended). The logic reads
//! the keys it knows and ignores the rest (the host's keys, such as `TrustedBridges`).
//! Durations are Go-style strings as RobustIRC writes them: `"30m0s"`, `"500ms"`, `"1h"`.
//! docs/network-config.toml documents every key.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a configuration document was refused. The previous configuration stays active.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid network configuration: {0}")]
    Invalid(String),
}

/// One IRC operator: `OPER <Name> <Password>` grants operator status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Operator {
    pub name: String,
    pub password: String,
}

/// The `[IRC]` table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IrcConfig {
    pub operators: Vec<Operator>,
}

/// The `[Flood]` table: bounds per session, measured with entry time. A count of 0 turns
/// that bound off.
///
/// NICK changes and JOINs are rate limits with a burst: up to `NickChanges` changes at
/// once, then one more per `NickChangeInterval` (the allowance refills at that pace while
/// the session is quiet). The same for `Joins` and `JoinInterval`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct FloodConfig {
    /// Lines a session may send before its registration completes; the next one closes
    /// it (`ERROR`).
    pub unregistered_lines: u32,
    /// Nick changes of a registered session in a burst; beyond, 438 ERR_NICKTOOFAST.
    pub nick_changes: u32,
    #[serde(deserialize_with = "duration_ms")]
    pub nick_change_interval: u64,
    /// Channels joined in a burst; beyond, 500 ERR_TOOMANYJOINS for that channel.
    pub joins: u32,
    #[serde(deserialize_with = "duration_ms")]
    pub join_interval: u64,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            unregistered_lines: 30,
            nick_changes: 5,
            nick_change_interval: 15_000,
            joins: 100,
            join_interval: 1_000,
        }
    }
}

/// Longest `[Banned]` key or G-line mask, in bytes.
pub(crate) const MAX_BAN_MASK: usize = 100;
/// Longest ban reason, in bytes (the `ERROR` line must stay within 512 bytes).
pub(crate) const MAX_BAN_REASON: usize = 300;

/// Whether `mask` is usable as an address ban: an address, a glob over addresses (`*`,
/// `?`) or a CIDR block (`192.0.2.0/24`); never only wildcards and separators (that would
/// ban everyone).
pub(crate) fn valid_address_mask(mask: &str) -> bool {
    !mask.is_empty()
        && mask.len() <= MAX_BAN_MASK
        && mask
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"*?.:-_/[]".contains(&b))
        && mask.bytes().any(|b| b.is_ascii_alphanumeric())
        && crate::bans::valid_block(mask)
}

/// The configuration fields the IRC logic uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Config {
    /// The network's name (ISUPPORT `NETWORK`, the welcome message).
    pub network: String,
    /// The name the one virtual server shows as the prefix of its replies.
    pub server_name: String,
    /// Message of the day, one string; lines split at `\n`. Empty: no MOTD (422).
    pub motd: String,
    /// Registered sessions without any activity for this long are closed (ms).
    #[serde(deserialize_with = "duration_ms")]
    pub session_expiration: u64,
    /// Sessions that have not completed registration after this long are closed (ms).
    #[serde(deserialize_with = "duration_ms")]
    pub registration_timeout: u64,
    /// Channels one session may be in (ISUPPORT `CHANLIMIT`). 0: no limit.
    pub max_channels_per_session: u32,
    /// Channels the whole network may have. 0: no limit.
    pub max_channels: u32,
    #[serde(rename = "IRC")]
    pub irc: IrcConfig,
    /// `[Plugins.<name>]`: each services plugin's settings, as a TOML document of its own
    /// (the plugin reads it; the logic only passes it on when it changes).
    #[serde(deserialize_with = "plugin_tables")]
    pub plugins: BTreeMap<String, String>,
    /// `[Banned]`: client address (or glob over addresses) → reason. A session from a
    /// banned address is closed on its first line (`ERROR :Closing Link: You are banned
    /// (reason)`); sessions already running are not touched (GLINE kills them).
    pub banned: BTreeMap<String, String>,
    pub flood: FloodConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            network: "unsplit".to_owned(),
            server_name: "irc.unsplit".to_owned(),
            motd: String::new(),
            session_expiration: 30 * 60 * 1000,
            registration_timeout: 10 * 60 * 1000,
            max_channels_per_session: 100,
            max_channels: 0,
            irc: IrcConfig::default(),
            plugins: BTreeMap::new(),
            banned: BTreeMap::new(),
            flood: FloodConfig::default(),
        }
    }
}

impl Config {
    /// Parses a TOML document. Unknown keys are ignored; missing keys take their defaults.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Invalid(describe(text, &e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |what: &str| Err(ConfigError::Invalid(what.to_owned()));
        if self.network.is_empty() || self.network.contains([' ', ',', '\r', '\n']) {
            return bad("Network must be a non-empty word");
        }
        if self.server_name.is_empty() || self.server_name.contains([' ', ',', '\r', '\n']) {
            return bad("ServerName must be a non-empty word");
        }
        if self.session_expiration < 1000 {
            return bad("SessionExpiration must be at least 1s");
        }
        if self.registration_timeout < 1000 {
            return bad("RegistrationTimeout must be at least 1s");
        }
        for op in &self.irc.operators {
            if op.name.is_empty() || op.name.contains(' ') || op.password.is_empty() {
                return bad("every IRC.Operators entry needs a Name (one word) and a Password");
            }
        }
        for (mask, reason) in &self.banned {
            if !valid_address_mask(mask) {
                return Err(ConfigError::Invalid(format!(
                    "Banned: {mask:?} is not an address, address mask or CIDR block (letters, \
                     digits, `.:-_/[]`, wildcards `*` `?`; at most {MAX_BAN_MASK} bytes, not only wildcards)"
                )));
            }
            if reason.len() > MAX_BAN_REASON || reason.contains(['\r', '\n', '\0']) {
                return Err(ConfigError::Invalid(format!(
                    "Banned: the reason for {mask:?} must be one line of at most {MAX_BAN_REASON} bytes"
                )));
            }
        }
        Ok(())
    }
}

/// `line L, column C: message`, from the parser's span (the host reports its own keys'
/// errors the same way).
pub fn describe(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// TOML (human-readable) writes durations as Go strings; snapshots (postcard) store the
/// milliseconds as they were serialised.
fn duration_ms<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    if d.is_human_readable() {
        let text = String::deserialize(d)?;
        parse_duration_ms(&text).map_err(serde::de::Error::custom)
    } else {
        u64::deserialize(d)
    }
}

/// TOML writes each plugin's settings as a table; snapshots store the tables as TOML text.
fn plugin_tables<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    if d.is_human_readable() {
        let tables = BTreeMap::<String, toml::Table>::deserialize(d)?;
        tables
            .into_iter()
            .map(|(name, table)| {
                toml::to_string(&table)
                    .map(|text| (name, text))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    } else {
        BTreeMap::deserialize(d)
    }
}

/// Parses a Go duration string (`"1h30m"`, `"500ms"`, `"1.5s"`) into milliseconds (the
/// services plugins read their settings with the same function).
pub use unsplit_services::parse_duration_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_robustirc_style_config() {
        let c = Config::from_toml(
            "SessionExpiration = \"10m\"\nPostMessageCooloff = \"500ms\"\n\
             [IRC]\n[[IRC.Operators]]\nName = \"foo\"\nPassword = \"bar\"\n",
        )
        .unwrap();
        assert_eq!(c.session_expiration, 600_000);
        assert_eq!(
            c.irc.operators,
            vec![Operator {
                name: "foo".into(),
                password: "bar".into()
            }]
        );
        assert_eq!(c.network, "unsplit");
    }

    #[test]
    fn plugin_settings_are_passed_on_as_toml() {
        let c =
            Config::from_toml("[Plugins.nickserv]\nGracePeriod = \"30s\"\n[Plugins.chanserv]\n")
                .unwrap();
        assert_eq!(c.plugins["nickserv"], "GracePeriod = \"30s\"\n");
        assert_eq!(c.plugins["chanserv"], "");
        assert!(Config::from_toml("Plugins = 3").is_err());
        assert!(Config::from_toml("[Plugins]\nnickserv = 3").is_err());
    }

    #[test]
    fn flood_and_banned_tables() {
        let d = Config::default();
        assert_eq!(d.flood.unregistered_lines, 30);
        assert!(d.banned.is_empty());
        let c = Config::from_toml(
            "[Banned]\n\"192.0.2.*\" = \"proxies\"\n\
             [Flood]\nNickChanges = 0\nJoinInterval = \"2s\"\n",
        )
        .unwrap();
        assert_eq!(c.banned["192.0.2.*"], "proxies");
        assert_eq!(c.flood.nick_changes, 0);
        assert_eq!(c.flood.join_interval, 2000);
        assert_eq!(c.flood.joins, FloodConfig::default().joins);
        let e = Config::from_toml("[Flood]\nJoinInterval = \"often\"\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = Config::from_toml("[Flood]\nJoins = -1\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        for bad in ["*", "*.*", "a b", "x@y", &"1".repeat(101)] {
            let e = Config::from_toml(&format!("[Banned]\n{bad:?} = \"r\"\n")).unwrap_err();
            assert!(e.to_string().contains("Banned"), "{bad}: {e}");
        }
        assert!(valid_address_mask("2001:db8::*"));
        assert!(valid_address_mask("192.0.2.0/24"));
        assert!(!valid_address_mask("192.0.2.0/99"));
    }

    #[test]
    fn refuses_bad_values_with_a_reason() {
        let e = Config::from_toml("SessionExpiration = \"soon\"").unwrap_err();
        assert!(e.to_string().contains("invalid duration"), "{e}");
        let e = Config::from_toml("Network = \"two words\"").unwrap_err();
        assert!(e.to_string().contains("Network"), "{e}");
        assert!(Config::from_toml("[[[").is_err());
    }
}
