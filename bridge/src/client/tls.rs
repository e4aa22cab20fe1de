//! The HTTPS connector: TCP with a connect timeout and keepalive, then a rustls (ring)
//! handshake with its own timeout. HTTP/1.1 only (ALPN `http/1.1`), see the module docs of
//! [`super`].

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{Error, TlsRoots};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Reads every certificate of a PEM file.
pub(crate) fn load_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = std::fs::read(path).map_err(|source| Error::CaFile {
        path: path.to_owned(),
        source,
    })?;
    let certs = parse_pem_certs(&pem).map_err(|source| Error::CaFile {
        path: path.to_owned(),
        source,
    })?;
    if certs.is_empty() {
        return Err(Error::NoCertificates(path.display().to_string()));
    }
    Ok(certs)
}

fn parse_pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, io::Error> {
    rustls_pemfile::certs(&mut &pem[..]).collect()
}

/// The rustls client configuration: ring provider only, the given roots, ALPN http/1.1.
pub(crate) fn client_config(roots: &TlsRoots) -> Result<ClientConfig, Error> {
    let mut store = RootCertStore::empty();
    match roots {
        TlsRoots::WebPki => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        TlsRoots::CaFile(path) => {
            for cert in load_pem_certs(path)? {
                store.add(cert).map_err(Error::Tls)?;
            }
        }
        TlsRoots::CaPem(pem) => {
            let certs = parse_pem_certs(pem).map_err(|e| Error::NoCertificates(e.to_string()))?;
            if certs.is_empty() {
                return Err(Error::NoCertificates("the given PEM".into()));
            }
            for cert in certs {
                store.add(cert).map_err(Error::Tls)?;
            }
        }
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(Error::Tls)?
            .with_root_certificates(store)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A `tower_service::Service<Uri>` for hyper-util's pooled client.
#[derive(Clone)]
pub(crate) struct Connector {
    http: HttpConnector,
    tls: tokio_rustls::TlsConnector,
    handshake_timeout: Duration,
}

impl Connector {
    pub(crate) fn new(
        config: ClientConfig,
        connect_timeout: Duration,
        handshake_timeout: Duration,
    ) -> Connector {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_keepalive(Some(Duration::from_secs(30)));
        http.set_nodelay(true);
        Connector {
            http,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            handshake_timeout,
        }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TlsConn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<TlsConn, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let host = uri
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned());
        let connecting = self.http.call(uri);
        let tls = self.tls.clone();
        let handshake_timeout = self.handshake_timeout;
        Box::pin(async move {
            let host = host.ok_or("URI without a host")?;
            let name = ServerName::try_from(host)?;
            let tcp = connecting.await?.into_inner();
            let stream = tokio::time::timeout(handshake_timeout, tls.connect(name, tcp))
                .await
                .map_err(|_| format!("TLS handshake timed out after {handshake_timeout:?}"))??;
            Ok(TlsConn(TokioIo::new(stream)))
        })
    }
}

/// A TLS connection, as hyper wants it.
pub(crate) struct TlsConn(TokioIo<TlsStream<TcpStream>>);

impl Connection for TlsConn {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for TlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for TlsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }
}
