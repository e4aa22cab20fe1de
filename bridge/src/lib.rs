//! The RobustSession client library and the IRC/SOCKS5 bridge.
//!
//! Not built yet: this arrives with the one-node issue (see docs/ARCHITECTURE.md).
