//! The `--bridge-auth-file`: one `<network>:<secret>` per line, sent as `X-Bridge-Auth` to
//! that network (whose config lists the secret under `TrustedBridges`, so that it trusts
//! our `X-Forwarded-For`). `<network>` is the `--network` value, or for SOCKS the
//! requested host (`host` or `host:port`). The secret is what follows the last `:`; it
//! must be at least 32 bytes. Empty lines and lines starting with `#` are ignored. The
//! file must not be readable by others (like RobustIRC's `-bridge_auth`).

use std::path::Path;

/// Shortest accepted secret.
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "{path} is readable or writable by others (mode {mode:o}); fix with: chmod o-rwx {path}"
    )]
    Permissions { path: String, mode: u32 },
    #[error("line {line}: want <network>:<secret>")]
    Syntax { line: usize },
    #[error("line {line}: the secret is {len} bytes, want at least {MIN_SECRET_LEN}")]
    ShortSecret { line: usize, len: usize },
}

/// The parsed file.
#[derive(Clone, Default)]
pub struct BridgeAuth {
    entries: Vec<(String, String)>,
}

impl std::fmt::Debug for BridgeAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secrets.
        f.debug_struct("BridgeAuth")
            .field(
                "networks",
                &self.entries.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl BridgeAuth {
    pub fn load(path: &Path) -> Result<BridgeAuth, AuthError> {
        let display = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| AuthError::Read {
            path: display.clone(),
            source,
        })?;
        check_permissions(&display, &meta)?;
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            path: display,
            source,
        })?;
        BridgeAuth::parse(&text)
    }

    pub fn parse(text: &str) -> Result<BridgeAuth, AuthError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (network, secret) = line
                .rsplit_once(':')
                .ok_or(AuthError::Syntax { line: i + 1 })?;
            if network.is_empty() {
                return Err(AuthError::Syntax { line: i + 1 });
            }
            if secret.len() < MIN_SECRET_LEN {
                return Err(AuthError::ShortSecret {
                    line: i + 1,
                    len: secret.len(),
                });
            }
            entries.push((network.to_owned(), secret.to_owned()));
        }
        Ok(BridgeAuth { entries })
    }

    /// The secret for the first of `names` that has one.
    pub fn lookup<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Option<String> {
        names.into_iter().find_map(|n| {
            self.entries
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, s)| s.clone())
        })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(unix)]
fn check_permissions(path: &str, meta: &std::fs::Metadata) -> Result<(), AuthError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o007 != 0 {
        return Err(AuthError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &str, _: &std::fs::Metadata) -> Result<(), AuthError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn parse_and_lookup() {
        let a = BridgeAuth::parse(&format!(
            "# comment\n\nirc.example:{SECRET}\n127.0.0.1:6667:{SECRET}x\n"
        ))
        .unwrap();
        assert_eq!(a.lookup(["nope", "irc.example"]).as_deref(), Some(SECRET));
        assert_eq!(a.lookup(["127.0.0.1:6667"]), Some(format!("{SECRET}x")));
        assert_eq!(a.lookup(["127.0.0.1"]), None);
        assert!(!format!("{a:?}").contains(SECRET));
        assert!(matches!(
            BridgeAuth::parse("x:short"),
            Err(AuthError::ShortSecret { line: 1, len: 5 })
        ));
        assert!(matches!(
            BridgeAuth::parse("\nnocolon"),
            Err(AuthError::Syntax { line: 2 })
        ));
        assert!(matches!(
            BridgeAuth::parse(&format!(":{SECRET}")),
            Err(AuthError::Syntax { line: 1 })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn refuses_world_readable_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth");
        std::fs::write(&path, format!("n:{SECRET}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            BridgeAuth::load(&path),
            Err(AuthError::Permissions { .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            BridgeAuth::load(&path).unwrap().lookup(["n"]).as_deref(),
            Some(SECRET)
        );
    }
}
