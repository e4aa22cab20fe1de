//! The `[Plugins.nickserv]` settings: parsed from their own TOML document, kept in the
//! snapshot, and replaced only by a document that is valid as a whole.

use serde::{Deserialize, Serialize};

/// What the network configuration can change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Settings {
    /// How long a session may use a registered nick without identifying.
    pub grace_period_ms: u64,
    /// Rename sessions that do not identify in time (otherwise only warn).
    pub enforce: bool,
    /// Shortest password REGISTER and SET PASSWORD accept, in characters.
    pub min_password_length: u32,
    /// Nicks given to sessions renamed by enforcement or REGAIN: `<prefix><number>`.
    pub guest_prefix: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            grace_period_ms: 60_000,
            enforce: true,
            min_password_length: 5,
            guest_prefix: "Guest".into(),
        }
    }
}

/// Why a settings document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SettingsError {
    #[error("{0}")]
    Toml(String),
    #[error("GracePeriod: invalid duration {0:?} (expected e.g. \"60s\", \"2m\", \"1m30s\")")]
    Duration(String),
    #[error("MinPasswordLength must be 1 to {MAX_MIN_PASSWORD_LENGTH}")]
    MinPasswordLength,
    #[error("GuestPrefix {0:?} is not the start of a valid nickname (1 to 20 characters)")]
    GuestPrefix(String),
}

const MAX_MIN_PASSWORD_LENGTH: i64 = 128;
const MAX_GUEST_PREFIX: usize = 20;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Raw {
    grace_period: Option<String>,
    enforce: Option<bool>,
    min_password_length: Option<i64>,
    guest_prefix: Option<String>,
}

impl Settings {
    /// Parses a whole document; missing keys take their defaults, unknown keys are ignored.
    pub(crate) fn parse(text: &str) -> Result<Settings, SettingsError> {
        let raw: Raw = toml::from_str(text).map_err(|e| SettingsError::Toml(e.to_string()))?;
        let mut settings = Settings::default();
        if let Some(text) = raw.grace_period {
            settings.grace_period_ms = unsplit_services::parse_duration_ms(&text)
                .map_err(|_| SettingsError::Duration(text))?;
        }
        if let Some(enforce) = raw.enforce {
            settings.enforce = enforce;
        }
        if let Some(min) = raw.min_password_length {
            if !(1..=MAX_MIN_PASSWORD_LENGTH).contains(&min) {
                return Err(SettingsError::MinPasswordLength);
            }
            settings.min_password_length =
                u32::try_from(min).map_err(|_| SettingsError::MinPasswordLength)?;
        }
        if let Some(prefix) = raw.guest_prefix {
            if !valid_guest_prefix(&prefix) {
                return Err(SettingsError::GuestPrefix(prefix));
            }
            settings.guest_prefix = prefix;
        }
        Ok(settings)
    }
}

/// A nick may start with a letter or one of `[]\`_^{|}`, then also digits and `-`.
fn valid_guest_prefix(prefix: &str) -> bool {
    let special = |b: u8| b"[]\\`_^{|}".contains(&b);
    let mut bytes = prefix.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    prefix.len() <= MAX_GUEST_PREFIX
        && (first.is_ascii_alphabetic() || special(first))
        && bytes.all(|b| b.is_ascii_alphanumeric() || special(b) || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(Settings::parse(""), Ok(Settings::default()));
        let s = Settings::parse(
            "GracePeriod = \"2m\"\nEnforce = false\nMinPasswordLength = 8\n\
             GuestPrefix = \"Anon\"\nSomethingElse = 1\n",
        )
        .unwrap();
        assert_eq!(
            s,
            Settings {
                grace_period_ms: 120_000,
                enforce: false,
                min_password_length: 8,
                guest_prefix: "Anon".into(),
            }
        );
    }

    #[test]
    fn refuses_invalid_values() {
        for bad in [
            "GracePeriod = \"soon\"",
            "GracePeriod = 60",
            "Enforce = \"yes\"",
            "MinPasswordLength = 0",
            "MinPasswordLength = 100000",
            "GuestPrefix = \"\"",
            "GuestPrefix = \"1abc\"",
            "GuestPrefix = \"a b\"",
            "GuestPrefix = \"aaaaaaaaaaaaaaaaaaaaaaaaa\"",
            "not toml",
        ] {
            assert!(Settings::parse(bad).is_err(), "{bad}");
        }
    }
}
