//! The RobustSession side of unsplit: the wire format ([`protocol`], shared with the
//! node), the client library ([`client`]), and the IRC/SOCKS5 bridge ([`bridge`]) that the
//! `unsplit-bridge` binary runs.

pub mod bridge;
pub mod cli;
pub mod client;
pub mod irc;
pub mod protocol;
