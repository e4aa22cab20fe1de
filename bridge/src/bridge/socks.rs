//! The server side of a SOCKS5 CONNECT (RFC 1928, no authentication). The requested
//! `host:port` names the network: one bridge serves any network. A host name may also be
//! a comma-separated server list (`a:1,b:2`), for networks without a single name.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const REPLY_SUCCEEDED: u8 = 0x00;
pub const REPLY_GENERAL_FAILURE: u8 = 0x01;
pub const REPLY_COMMAND_NOT_SUPPORTED: u8 = 0x07;
pub const REPLY_ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;

#[derive(Debug, thiserror::Error)]
pub enum SocksError {
    #[error("SOCKS I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("unsupported SOCKS version {0}")]
    Version(u8),
    #[error("the client offers no supported authentication method (we support 'none')")]
    NoAcceptableAuth,
    #[error("unsupported SOCKS command {0} (only CONNECT)")]
    Command(u8),
    #[error("unsupported SOCKS address type {0}")]
    AddressType(u8),
    #[error("invalid SOCKS domain name")]
    BadDomain,
}

/// The CONNECT target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// A domain name (possibly a comma-separated list), an IPv4 address or `[v6]`.
    pub host: String,
    pub port: u16,
}

impl Target {
    /// The network's servers: `host:port`, or each entry of a comma-separated host list
    /// (entries without a port get the CONNECT port).
    pub fn servers(&self) -> Vec<String> {
        self.host
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                let has_port = s
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.ends_with(':') && p.parse::<u16>().is_ok())
                    && (!s.starts_with('[') || s.contains("]:"));
                if has_port {
                    s.to_owned()
                } else {
                    format!("{s}:{}", self.port)
                }
            })
            .collect()
    }
}

/// Reads the greeting and the request. On an unsupported request the failure reply is
/// sent before the error is returned. On success the caller must send [`reply`].
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> Result<Target, SocksError> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await?;
    if head[0] != 5 {
        return Err(SocksError::Version(head[0]));
    }
    let mut methods = vec![0u8; usize::from(head[1])];
    s.read_exact(&mut methods).await?;
    if !methods.contains(&0) {
        s.write_all(&[5, 0xff]).await?;
        return Err(SocksError::NoAcceptableAuth);
    }
    s.write_all(&[5, 0]).await?;

    let mut req = [0u8; 4];
    s.read_exact(&mut req).await?;
    if req[0] != 5 {
        reply(s, REPLY_GENERAL_FAILURE).await?;
        return Err(SocksError::Version(req[0]));
    }
    // Read the whole request before judging it: closing with unread bytes would reset
    // the connection before the client reads our reply.
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            s.read_exact(&mut a).await?;
            Ok(std::net::Ipv4Addr::from(a).to_string())
        }
        3 => {
            let mut len = [0u8; 1];
            s.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            s.read_exact(&mut name).await?;
            match String::from_utf8(name) {
                Ok(n) if valid_domain(&n) => Ok(n),
                _ => Err(SocksError::BadDomain),
            }
        }
        4 => {
            let mut a = [0u8; 16];
            s.read_exact(&mut a).await?;
            Ok(format!("[{}]", std::net::Ipv6Addr::from(a)))
        }
        other => {
            // Unknown length: nothing more can be read.
            reply(s, REPLY_ADDRESS_TYPE_NOT_SUPPORTED).await?;
            return Err(SocksError::AddressType(other));
        }
    };
    let mut port = [0u8; 2];
    s.read_exact(&mut port).await?;
    let host = match host {
        Ok(h) => h,
        Err(e) => {
            reply(s, REPLY_GENERAL_FAILURE).await?;
            return Err(e);
        }
    };
    if req[1] != 1 {
        reply(s, REPLY_COMMAND_NOT_SUPPORTED).await?;
        return Err(SocksError::Command(req[1]));
    }
    Ok(Target {
        host,
        port: u16::from_be_bytes(port),
    })
}

fn valid_domain(n: &str) -> bool {
    !n.is_empty() && !n.contains(|c: char| c.is_whitespace() || c.is_control())
}

/// Sends the reply to the request (bound address 0.0.0.0:0).
pub async fn reply<S: AsyncWrite + Unpin>(s: &mut S, status: u8) -> std::io::Result<()> {
    s.write_all(&[5, status, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    s.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(client_bytes: &[u8]) -> (Result<Target, SocksError>, Vec<u8>) {
        let (mut a, mut b) = tokio::io::duplex(1024);
        b.write_all(client_bytes).await.unwrap();
        b.shutdown().await.unwrap();
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), accept(&mut a))
            .await
            .unwrap();
        drop(a);
        let mut out = vec![];
        b.read_to_end(&mut out).await.unwrap();
        (r, out)
    }

    #[tokio::test]
    async fn connect_by_name() {
        let mut req = vec![5, 2, 2, 0, 5, 1, 0, 3, 9];
        req.extend(b"irc.local");
        req.extend(6697u16.to_be_bytes());
        let (r, out) = run(&req).await;
        let t = r.unwrap();
        assert_eq!(
            t,
            Target {
                host: "irc.local".into(),
                port: 6697
            }
        );
        assert_eq!(t.servers(), ["irc.local:6697"]);
        assert_eq!(out, [5, 0]);
    }

    #[tokio::test]
    async fn connect_by_address() {
        let (r, _) = run(&[5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0x1a, 0x0b]).await;
        assert_eq!(r.unwrap().servers(), ["127.0.0.1:6667"]);
        let mut req = vec![5, 1, 0, 5, 1, 0, 4];
        req.extend(std::net::Ipv6Addr::LOCALHOST.octets());
        req.extend(1u16.to_be_bytes());
        let (r, _) = run(&req).await;
        assert_eq!(r.unwrap().servers(), ["[::1]:1"]);
    }

    #[tokio::test]
    async fn server_lists() {
        let t = Target {
            host: "a:1,b, [::1]:3,[::2]".into(),
            port: 9,
        };
        assert_eq!(t.servers(), ["a:1", "b:9", "[::1]:3", "[::2]:9"]);
    }

    #[tokio::test]
    async fn refusals() {
        let (r, out) = run(&[5, 1, 2]).await;
        assert!(matches!(r, Err(SocksError::NoAcceptableAuth)));
        assert_eq!(out, [5, 0xff]);
        let (r, _) = run(&[4, 1, 0, 80]).await;
        assert!(matches!(r, Err(SocksError::Version(4))));
        let (r, out) = run(&[5, 1, 0, 5, 2, 0, 1, 1, 2, 3, 4, 0, 80]).await;
        assert!(matches!(r, Err(SocksError::Command(2))));
        assert_eq!(&out[2..4], [5, REPLY_COMMAND_NOT_SUPPORTED]);
        let (r, out) = run(&[5, 1, 0, 5, 1, 0, 9]).await;
        assert!(matches!(r, Err(SocksError::AddressType(9))));
        assert_eq!(&out[2..4], [5, REPLY_ADDRESS_TYPE_NOT_SUPPORTED]);
        let (r, _) = run(&[5, 1, 0, 5, 1, 0, 3, 0, 0, 80]).await;
        assert!(matches!(r, Err(SocksError::BadDomain)));
        let (r, _) = run(&[5, 1]).await;
        assert!(matches!(r, Err(SocksError::Io(_))));
    }
}
