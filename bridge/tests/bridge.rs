//! The bridge's IRC side (and SOCKS5) against the in-process test network.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use support::{Mode, TestNetwork, within};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use unsplit_bridge::bridge::{Bridge, BridgeAuth, BridgeConfig};
use unsplit_bridge::client::{Network, NetworkConfig};

type Reader = BufReader<Box<dyn AsyncRead + Unpin + Send>>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

struct Irc {
    r: Reader,
    w: Writer,
}

impl Irc {
    async fn connect(addr: SocketAddr) -> Irc {
        Irc::over(
            within(5, "connect", TcpStream::connect(addr))
                .await
                .unwrap(),
        )
    }

    fn over<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(s: S) -> Irc {
        let (r, w) = tokio::io::split(s);
        Irc {
            r: BufReader::new(Box::new(r)),
            w: Box::new(w),
        }
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).await.unwrap();
        self.w.flush().await.unwrap();
    }

    async fn send(&mut self, lines: &[&str]) {
        let mut data = String::new();
        for l in lines {
            data.push_str(l);
            data.push_str("\r\n");
        }
        self.send_raw(data.as_bytes()).await;
    }

    /// The next line; `None` at EOF.
    async fn line_within(&mut self, secs: u64) -> Option<String> {
        let mut buf = String::new();
        let n = within(secs, "a line from the bridge", self.r.read_line(&mut buf))
            .await
            .unwrap_or(0);
        (n > 0).then(|| buf.trim_end_matches(['\r', '\n']).to_owned())
    }

    async fn expect(&mut self, want: &str) {
        assert_eq!(self.line_within(10).await.as_deref(), Some(want));
    }

    async fn expect_eof(&mut self) {
        let got = self.line_within(10).await;
        assert_eq!(got, None, "expected the bridge to close the connection");
    }

    /// Asserts nothing arrives for `ms`.
    async fn expect_quiet(&mut self, ms: u64) {
        let mut buf = String::new();
        if let Ok(r) =
            tokio::time::timeout(Duration::from_millis(ms), self.r.read_line(&mut buf)).await
        {
            panic!("expected silence, got {r:?}: {buf:?}");
        }
    }
}

struct Setup {
    net: TestNetwork,
    bridge: Arc<Bridge>,
    irc: SocketAddr,
}

fn client_config(net: &TestNetwork) -> NetworkConfig {
    let mut c = net.client_config();
    c.timeouts.reconnect_min = Duration::from_millis(10);
    c.timeouts.reconnect_max = Duration::from_millis(20);
    c.timeouts.unreachable_after = Duration::from_millis(300);
    c
}

async fn setup(servers: usize, f: impl FnOnce(&mut BridgeConfig)) -> Setup {
    let net = TestNetwork::start(servers).await;
    let mut cfg = BridgeConfig::default();
    f(&mut cfg);
    let template = client_config(&net);
    let network = Network::new(template.clone()).unwrap();
    let bridge = Bridge::new(cfg, template, BridgeAuth::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let irc = listener.local_addr().unwrap();
    tokio::spawn(bridge.clone().serve_irc(listener, network, None));
    Setup { net, bridge, irc }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    within(10, what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn ping_is_a_barrier_through_the_network() {
    let s = setup(2, |_| {}).await;
    let mut c = Irc::connect(s.irc).await;
    // Sent at once, before the session exists: buffered, then posted in order.
    c.send(&[
        "NICK alice",
        "PRIVMSG #c :one",
        "PRIVMSG #c :two",
        "PING :barrier",
    ])
    .await;
    c.expect(":test.net 001 alice :Welcome alice").await;
    c.expect(":test.net NOTICE * :echo PRIVMSG #c :one").await;
    c.expect(":test.net NOTICE * :echo PRIVMSG #c :two").await;
    c.expect(":test.net PONG test.net :barrier").await;
    let id = &s.net.session_ids()[0];
    assert_eq!(
        s.net.committed(id),
        [
            "NICK alice",
            "PRIVMSG #c :one",
            "PRIVMSG #c :two",
            "PING :barrier"
        ]
    );
    // X-Forwarded-For carries the client's address.
    let rec = s
        .net
        .records()
        .into_iter()
        .find(|r| r.path.ends_with("/session"))
        .unwrap();
    assert_eq!(rec.headers.get("x-forwarded-for").unwrap(), "127.0.0.1");
}

#[tokio::test]
async fn keepalive_is_posted_and_its_pong_swallowed() {
    let s = setup(1, |c| c.keepalive = Duration::from_millis(300)).await;
    let mut c = Irc::connect(s.irc).await;
    c.send(&["NICK bob"]).await;
    c.expect(":test.net 001 bob :Welcome bob").await;
    let id = s.net.session_ids()[0].clone();
    wait_for("two keepalives", || {
        s.net
            .committed(&id)
            .iter()
            .filter(|l| *l == "PING keepalive")
            .count()
            >= 2
    })
    .await;
    c.expect_quiet(300).await;
    // The client's own PING keepalive is not swallowed.
    c.send(&["PING :mine"]).await;
    c.expect(":test.net PONG test.net :mine").await;
}

#[tokio::test]
async fn the_client_is_pinged_and_dropped_when_silent() {
    let s = setup(1, |c| {
        c.client_ping_after = Duration::from_millis(300);
        c.client_ping_timeout = Duration::from_millis(400);
    })
    .await;
    let mut c = Irc::connect(s.irc).await;
    c.send(&["NICK carol"]).await;
    c.expect(":test.net 001 carol :Welcome carol").await;
    let id = s.net.session_ids()[0].clone();
    c.expect("PING :unsplit-bridge").await;
    c.send(&["PONG :unsplit-bridge"]).await;
    c.expect("PING :unsplit-bridge").await;
    // No answer this time.
    c.expect("ERROR :Ping timeout").await;
    c.expect("ERROR :Closing Link: (Bridge: ping timeout)")
        .await;
    c.expect_eof().await;
    assert_eq!(
        s.net.committed(&id),
        ["NICK carol", "QUIT :Bridge: ping timeout"]
    );
}

#[tokio::test]
async fn quit_deletes_the_session_with_its_message() {
    let s = setup(1, |_| {}).await;
    let mut c = Irc::connect(s.irc).await;
    c.send(&["NICK dave", "QUIT :see you"]).await;
    c.expect(":test.net 001 dave :Welcome dave").await;
    c.expect("ERROR :Closing Link: (see you)").await;
    c.expect_eof().await;
    assert_eq!(s.net.session_count(), 0);
    wait_for("connection gone", || s.bridge.active_connections() == 0).await;
}

#[tokio::test]
async fn closing_the_connection_deletes_the_session() {
    let s = setup(1, |_| {}).await;
    let mut c = Irc::connect(s.irc).await;
    c.send(&["NICK erin"]).await;
    c.expect(":test.net 001 erin :Welcome erin").await;
    let id = s.net.session_ids()[0].clone();
    c.send(&["PRIVMSG #c :last words"]).await;
    drop(c);
    wait_for("session deleted", || s.net.session_count() == 0).await;
    let committed = s.net.committed(&id);
    assert_eq!(committed[1], "PRIVMSG #c :last words");
    assert!(committed[2].starts_with("QUIT :Bridge: "), "{committed:?}");
    wait_for("connection gone", || s.bridge.active_connections() == 0).await;
}

#[tokio::test]
async fn unreachable_and_restored_notices_without_disconnect() {
    let s = setup(1, |_| {}).await;
    let mut c = Irc::connect(s.irc).await;
    c.send(&["NICK frank"]).await;
    c.expect(":test.net 001 frank :Welcome frank").await;
    s.net.set_mode(0, Mode::Down);
    c.expect(":unsplit-bridge NOTICE frank :Network unreachable, retrying…")
        .await;
    // Lines sent while the network is away are delivered when it is back.
    c.send(&["PING :while-away"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.net.set_mode(0, Mode::Up);
    let mut got = vec![];
    for _ in 0..2 {
        got.push(c.line_within(15).await.unwrap());
    }
    got.sort();
    assert_eq!(
        got,
        [
            ":test.net PONG test.net :while-away",
            ":unsplit-bridge NOTICE frank :Network connection restored"
        ]
    );
    c.send(&["PING :after"]).await;
    c.expect(":test.net PONG test.net :after").await;
}

#[tokio::test]
async fn a_killed_session_forwards_its_last_lines_then_closes() {
    let s = setup(1, |_| {}).await;
    let mut c = Irc::connect(s.irc).await;
    c.send(&["NICK gina"]).await;
    c.expect(":test.net 001 gina :Welcome gina").await;
    let id = s.net.session_ids()[0].clone();
    s.net.kill(&id, "ERROR :Closing Link: killed (by an oper)");
    c.expect("ERROR :Closing Link: killed (by an oper)").await;
    c.expect_eof().await;
    // And through a post: KILLME makes the network end the session.
    let mut c = Irc::connect(s.irc).await;
    c.send(&["NICK hank", "KILLME", "PRIVMSG #c :too late"])
        .await;
    c.expect(":test.net 001 hank :Welcome hank").await;
    c.expect("ERROR :Closing Link: killed").await;
    c.expect_eof().await;
}

#[tokio::test]
async fn socks_bytes_on_the_irc_port_are_refused() {
    let s = setup(1, |_| {}).await;
    let mut c = Irc::connect(s.irc).await;
    c.send_raw(&[5, 1, 0]).await;
    let line = c.line_within(10).await.unwrap();
    assert!(
        line.starts_with("ERROR :") && line.contains("SOCKS"),
        "{line}"
    );
    c.expect_eof().await;
    // The bridge still serves others.
    let mut c = Irc::connect(s.irc).await;
    c.send(&["PING :ok"]).await;
    c.expect(":test.net PONG test.net :ok").await;
}

#[tokio::test]
async fn long_lines_are_refused_and_invalid_utf8_is_replaced() {
    let s = setup(1, |_| {}).await;
    let mut c = Irc::connect(s.irc).await;
    c.send(&["NICK ivy"]).await;
    c.expect(":test.net 001 ivy :Welcome ivy").await;
    let mut huge = b"PRIVMSG #c :".to_vec();
    huge.extend(vec![b'a'; 20_000]);
    huge.extend(b"\r\nPING :after-huge\r\n");
    c.send_raw(&huge).await;
    c.expect(":unsplit-bridge 417 ivy :Input line was too long")
        .await;
    c.expect(":test.net PONG test.net :after-huge").await;
    // Fits the bridge's 8 KiB but not one PostMessage.
    c.send(&[
        &format!("PRIVMSG #c :{}", "b".repeat(3000)),
        "PING :after-big",
    ])
    .await;
    c.expect(":unsplit-bridge 417 ivy :Input line was too long")
        .await;
    c.expect(":test.net PONG test.net :after-big").await;
    c.send_raw(b"PRIVMSG #c :caf\xe9\r\n").await;
    c.expect(":test.net NOTICE * :echo PRIVMSG #c :caf\u{fffd}")
        .await;
}

#[tokio::test]
async fn shutdown_deletes_sessions_and_tells_clients() {
    let s = setup(1, |_| {}).await;
    let mut c = Irc::connect(s.irc).await;
    c.send(&["NICK jan"]).await;
    c.expect(":test.net 001 jan :Welcome jan").await;
    s.bridge.shutdown();
    c.expect("ERROR :Bridge shutting down").await;
    c.expect_eof().await;
    assert!(s.bridge.wait_idle(Duration::from_secs(2)).await);
    assert_eq!(s.net.session_count(), 0);
    // The listener is closed.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(TcpStream::connect(s.irc).await.is_err());
}

async fn socks_connect(socks: SocketAddr, target: &[u8]) -> (TcpStream, Vec<u8>) {
    let mut t = within(5, "connect", TcpStream::connect(socks))
        .await
        .unwrap();
    t.write_all(&[5, 1, 0]).await.unwrap();
    let mut method = [0u8; 2];
    within(5, "method", t.read_exact(&mut method))
        .await
        .unwrap();
    assert_eq!(method, [5, 0]);
    let mut req = vec![5, 1, 0];
    req.extend(target);
    t.write_all(&req).await.unwrap();
    let mut reply = vec![0u8; 10];
    within(5, "reply", t.read_exact(&mut reply)).await.unwrap();
    (t, reply)
}

#[tokio::test]
async fn socks5_connect_names_the_network() {
    let s = setup(2, |_| {}).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let socks = listener.local_addr().unwrap();
    tokio::spawn(s.bridge.clone().serve_socks(listener));
    let server: SocketAddr = s.net.addr(1).parse().unwrap();

    // By IPv4 address.
    let mut target = vec![1];
    target.extend(match server.ip() {
        std::net::IpAddr::V4(v4) => v4.octets(),
        std::net::IpAddr::V6(_) => unreachable!(),
    });
    target.extend(server.port().to_be_bytes());
    let (t, reply) = socks_connect(socks, &target).await;
    assert_eq!(reply[..2], [5, 0]);
    let mut c = Irc::over(t);
    c.send(&["NICK kim", "PING :socks"]).await;
    c.expect(":test.net 001 kim :Welcome kim").await;
    c.expect(":test.net PONG test.net :socks").await;
    assert!(s.net.records().iter().any(|r| r.server == 1));

    // By name: a server list in the host name.
    let name = format!("{},{}", s.net.addr(0), s.net.addr(1));
    let mut target = vec![3, name.len() as u8];
    target.extend(name.as_bytes());
    target.extend(1u16.to_be_bytes());
    let (t, reply) = socks_connect(socks, &target).await;
    assert_eq!(reply[..2], [5, 0]);
    let mut c = Irc::over(t);
    c.send(&["PING :by-name"]).await;
    c.expect(":test.net PONG test.net :by-name").await;

    // Not a network.
    let name = "not a host";
    let mut target = vec![3, name.len() as u8];
    target.extend(name.as_bytes());
    target.extend(1u16.to_be_bytes());
    let mut t = TcpStream::connect(socks).await.unwrap();
    t.write_all(&[5, 1, 0]).await.unwrap();
    let mut buf = [0u8; 2];
    t.read_exact(&mut buf).await.unwrap();
    let mut req = vec![5, 1, 0];
    req.extend(&target);
    t.write_all(&req).await.unwrap();
    let mut reply = vec![];
    within(5, "refusal", t.read_to_end(&mut reply))
        .await
        .unwrap();
    assert_eq!(reply[..2], [5, 1]);
}

#[tokio::test]
async fn irc_over_tls() {
    let net = TestNetwork::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, &net.pki.cert_pem).unwrap();
    std::fs::write(&key, &net.pki.key_pem).unwrap();
    let acceptor = unsplit_bridge::bridge::tls_acceptor(&cert, &key).unwrap();
    let template = client_config(&net);
    let bridge = Bridge::new(
        BridgeConfig::default(),
        template.clone(),
        BridgeAuth::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(bridge.clone().serve_irc(
        listener,
        Network::new(template).unwrap(),
        Some(acceptor),
    ));

    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut net.pki.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = within(
        5,
        "handshake",
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .unwrap();
    let mut c = Irc::over(tls);
    c.send(&["NICK tls", "PING :secure"]).await;
    c.expect(":test.net 001 tls :Welcome tls").await;
    c.expect(":test.net PONG test.net :secure").await;
    c.send(&["QUIT :bye"]).await;
    c.expect("ERROR :Closing Link: (bye)").await;
    c.expect_eof().await;
}

#[tokio::test]
async fn a_network_that_cannot_be_reached_at_connect_gets_an_error() {
    let net = TestNetwork::start(1).await;
    net.set_mode(0, Mode::Down);
    let mut template = client_config(&net);
    template.timeouts.create = Duration::from_secs(1);
    let bridge = Bridge::new(
        BridgeConfig::default(),
        template.clone(),
        BridgeAuth::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        bridge
            .clone()
            .serve_irc(listener, Network::new(template).unwrap(), None),
    );
    let mut c = Irc::connect(addr).await;
    c.send(&["NICK x"]).await;
    let line = c.line_within(10).await.unwrap();
    assert!(
        line.starts_with("ERROR :Could not create a session"),
        "{line}"
    );
    c.expect_eof().await;
}
