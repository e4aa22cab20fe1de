//! The RobustSession side of unsplit: the wire format ([`protocol`], shared with the
//! node), the client library, and the IRC/SOCKS5 bridge.

pub mod protocol;
