//! TLS for the node's one HTTPS listener (rustls with the ring provider, no aws-lc).
//!
//! Certificate and key come from flags; when none are given, a self-signed pair for
//! `localhost`/`127.0.0.1` (plus the node's own host name) is generated once into the
//! data directory and reused on every start. Clients and peers trust it through a CA
//! file (`localnet` hands every process the same one).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key")]
    NoKey { path: PathBuf },
    #[error("generating a self-signed certificate: {0}")]
    Generate(String),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| TlsError::NoKey {
            path: path.to_owned(),
        })
}

/// Writes a self-signed certificate and key for `names` unless both files exist.
pub fn ensure_self_signed(cert: &Path, key: &Path, names: &[String]) -> Result<(), TlsError> {
    if cert.exists() && key.exists() {
        return Ok(());
    }
    let generated = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let write = |path: &Path, text: String| {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
                path: path.to_owned(),
                source,
            })?;
        }
        std::fs::write(path, text).map_err(|source| TlsError::Write {
            path: path.to_owned(),
            source,
        })
    };
    write(key, generated.signing_key.serialize_pem())?;
    restrict(key);
    write(cert, generated.cert.pem())
}

#[cfg(unix)]
fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(not(unix))]
fn restrict(_path: &Path) {}

/// The server side: HTTP/2 and HTTP/1.1 via ALPN.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(load_certs(cert)?, load_key(key)?)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The client side (raft peers, forwarding): trusts the CA file's certificates.
pub fn client_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots.add(cert)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (
            dir.path().join("tls/cert.pem"),
            dir.path().join("tls/key.pem"),
        );
        ensure_self_signed(&cert, &key, &["localhost".into(), "127.0.0.1".into()]).unwrap();
        let first = std::fs::read(&cert).unwrap();
        ensure_self_signed(&cert, &key, &["localhost".into()]).unwrap();
        assert_eq!(
            std::fs::read(&cert).unwrap(),
            first,
            "regenerated an existing certificate"
        );
        server_config(&cert, &key).unwrap();
        client_config(&cert).unwrap();
        assert!(matches!(load_key(&cert), Err(TlsError::NoKey { .. })));
    }
}
