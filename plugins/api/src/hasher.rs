//! The host's password hash: argon2id (RFC 9106) with OWASP's parameters.
//!
//! Plugins ask for hashes with [`crate::Action::HashPassword`]; the leader's host computes
//! them here, off the apply path, and commits the result. A plugin names the algorithm
//! it stored with a hash, so the parameters can change later without locking anyone out;
//! only bounded argon2id parameters are accepted, so a plugin cannot make the leader burn
//! unbounded memory or time.

use argon2::{Algorithm, Argon2, Params, Version};

use crate::Hashed;

/// What new passwords are hashed with: 19 MiB, 2 passes, 1 lane (OWASP 2023).
pub const DEFAULT_ALGORITHM: &str = "argon2id$v=19$m=19456,t=2,p=1";

/// Bytes of hash output.
pub const HASH_LEN: usize = 32;
/// Largest memory cost accepted (KiB) and most passes: a plugin cannot make the leader
/// spend more than about 64 MiB and a few hundred milliseconds on one hash.
const MAX_M_KIB: u32 = 64 * 1024;
const MAX_T: u32 = 4;

/// Why a hash could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("unsupported password hash {0:?}")]
    UnknownAlgorithm(String),
    #[error("{0}")]
    BadInput(String),
}

/// Parses `argon2id$v=19$m=<KiB>,t=<passes>,p=1`.
fn params(algorithm: &str) -> Result<Params, HashError> {
    let unknown = || HashError::UnknownAlgorithm(algorithm.to_owned());
    let rest = algorithm
        .strip_prefix("argon2id$v=19$")
        .ok_or_else(unknown)?;
    let (mut m, mut t, mut p) = (None, None, None);
    for part in rest.split(',') {
        let (key, value) = part.split_once('=').ok_or_else(unknown)?;
        let value: u32 = value.parse().map_err(|_| unknown())?;
        match key {
            "m" => m = Some(value),
            "t" => t = Some(value),
            "p" => p = Some(value),
            _ => return Err(unknown()),
        }
    }
    let (Some(m), Some(t), Some(1)) = (m, t, p) else {
        return Err(unknown());
    };
    if !(8..=MAX_M_KIB).contains(&m) || !(1..=MAX_T).contains(&t) {
        return Err(unknown());
    }
    Params::new(m, t, 1, Some(HASH_LEN)).map_err(|_| unknown())
}

/// Hashes `password` with `salt` (at least 8 bytes) and `algorithm` (the default when
/// `None`).
pub fn hash_password(
    password: &str,
    salt: &[u8],
    algorithm: Option<&str>,
) -> Result<Hashed, HashError> {
    let algorithm = algorithm.unwrap_or(DEFAULT_ALGORITHM);
    let params = params(algorithm)?;
    crate::check_hash_request(password, salt, Some(algorithm)).map_err(HashError::BadInput)?;
    let mut hash = vec![0u8; HASH_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), salt, &mut hash)
        .map_err(|e| HashError::BadInput(e.to_string()))?;
    Ok(Hashed {
        algorithm: algorithm.to_owned(),
        hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_salted_and_parameterised() {
        let a = hash_password("secret", b"saltsalt", None).unwrap();
        assert_eq!(a.algorithm, DEFAULT_ALGORITHM);
        assert_eq!(a.hash.len(), HASH_LEN);
        assert_eq!(a, hash_password("secret", b"saltsalt", None).unwrap());
        assert_ne!(
            a.hash,
            hash_password("secret", b"saltsal2", None).unwrap().hash
        );
        assert_ne!(
            a.hash,
            hash_password("secreT", b"saltsalt", None).unwrap().hash
        );
        let cheap = hash_password("secret", b"saltsalt", Some("argon2id$v=19$m=64,t=1,p=1"));
        assert_ne!(cheap.unwrap().hash, a.hash);
    }

    #[test]
    fn refuses_unbounded_or_unknown_parameters() {
        for bad in [
            "md5",
            "argon2id$v=19$m=999999999,t=2,p=1",
            "argon2id$v=19$m=19456,t=99,p=1",
            "argon2id$v=19$m=131072,t=2,p=1",
            "argon2id$v=19$m=19456,t=2,p=4",
            "argon2id$v=19$m=19456,t=2",
            "argon2i$v=19$m=19456,t=2,p=1",
        ] {
            assert!(
                matches!(
                    hash_password("x", b"saltsalt", Some(bad)),
                    Err(HashError::UnknownAlgorithm(_))
                ),
                "{bad}"
            );
        }
        assert!(hash_password("x", b"short", None).is_err());
        assert!(hash_password(&"x".repeat(2000), b"saltsalt", None).is_err());
    }
}
