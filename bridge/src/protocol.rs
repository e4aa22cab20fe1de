//! The RobustSession wire format, exactly as RobustIRC speaks it (shared with the node).
//!
//! Endpoints (all under `/robustirc/v1/`):
//! - `POST session` → [`CreateSessionReply`];
//! - `POST <id>/message` with [`PostMessage`] → `200` once committed and applied;
//! - `GET <id>/messages?lastseen=<id>.<reply>` → newline-separated [`Message`] objects;
//! - `DELETE <id>` with [`DeleteSession`].
//!
//! Session ids are rendered `0x%x` and parsed with base detection (`0x…` hex, else
//! decimal). Every call but create carries `X-Session-Auth`.

use serde::{Deserialize, Serialize};

/// The path prefix of the public API.
pub const PREFIX: &str = "/robustirc/v1";
/// Header carrying the session secret.
pub const SESSION_AUTH: &str = "X-Session-Auth";
/// Header a trusted bridge uses to authenticate itself (then `X-Forwarded-For` counts).
pub const BRIDGE_AUTH: &str = "X-Bridge-Auth";
/// Largest PostMessage body the server reads.
pub const MAX_POST_BODY: usize = 2048;
/// How often a GetMessages stream carries a ping.
pub const PING_INTERVAL_SECS: u64 = 20;
/// RobustIRC's message id offset: id = offset + raft index (robustirc#150).
pub const MESSAGE_ID_OFFSET: u64 = 4_648_398_125_000_000_000;

/// Message types (RobustIRC `robust.Type`). Clients only ever receive 3 and 4.
pub mod kind {
    pub const CREATE_SESSION: u8 = 0;
    pub const DELETE_SESSION: u8 = 1;
    pub const IRC_FROM_CLIENT: u8 = 2;
    pub const IRC_TO_CLIENT: u8 = 3;
    pub const PING: u8 = 4;
    pub const MESSAGE_OF_DEATH: u8 = 5;
    pub const CONFIG: u8 = 6;
}

/// `POST /robustirc/v1/session` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSessionReply {
    /// `0x…`
    #[serde(rename = "Sessionid")]
    pub session_id: String,
    #[serde(rename = "Sessionauth")]
    pub session_auth: String,
    /// The network name.
    #[serde(rename = "Prefix")]
    pub prefix: String,
}

/// `POST /robustirc/v1/<id>/message` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostMessage {
    #[serde(rename = "Data")]
    pub data: String,
    #[serde(rename = "ClientMessageId", default)]
    pub client_message_id: u64,
}

/// `DELETE /robustirc/v1/<id>` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteSession {
    #[serde(rename = "Quitmessage", default)]
    pub quit_message: String,
}

/// A message id: the input's id and the reply number within it.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct MessageId {
    #[serde(rename = "Id")]
    pub id: u64,
    #[serde(rename = "Reply")]
    pub reply: u64,
}

impl MessageId {
    /// Parses `lastseen` (`<id>.<reply>`, decimal). `"0.0"` is the start.
    pub fn parse_lastseen(s: &str) -> Option<MessageId> {
        let (id, reply) = s.split_once('.')?;
        Some(MessageId {
            id: id.parse().ok()?,
            reply: reply.parse().ok()?,
        })
    }

    /// `<id>.<reply>`, as `lastseen` wants it.
    pub fn lastseen(&self) -> String {
        format!("{}.{}", self.id, self.reply)
    }
}

/// One object of a GetMessages stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    #[serde(rename = "Id")]
    pub id: MessageId,
    #[serde(rename = "Session", default)]
    pub session: MessageId,
    #[serde(rename = "Type")]
    pub kind: u8,
    #[serde(rename = "Data", default)]
    pub data: String,
    #[serde(rename = "UnixNano", default)]
    pub unix_nano: i64,
    /// On pings: the network's current server list (`host:port`).
    #[serde(rename = "Servers", default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
}

/// Parses a session id as RobustIRC does (base detection: `0x` hex, else decimal).
pub fn parse_session_id(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// `0x%x`
pub fn format_session_id(id: u64) -> String {
    format!("0x{id:x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_field_names_match_robustirc() {
        let m = Message {
            id: MessageId { id: 5, reply: 2 },
            kind: kind::IRC_TO_CLIENT,
            data: ":a PRIVMSG b :hi".into(),
            ..Message::default()
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"Id":{"Id":5,"Reply":2},"Session":{"Id":0,"Reply":0},"Type":3,"Data":":a PRIVMSG b :hi","UnixNano":0}"#
        );
        let p: PostMessage =
            serde_json::from_str(r#"{"Data":"PING x","ClientMessageId":7}"#).unwrap();
        assert_eq!(p.client_message_id, 7);
    }

    #[test]
    fn ids_and_lastseen() {
        assert_eq!(
            parse_session_id("0x40826d7767378206"),
            Some(0x40826d7767378206)
        );
        assert_eq!(parse_session_id("42"), Some(42));
        assert_eq!(parse_session_id("0xzz"), None);
        assert_eq!(format_session_id(255), "0xff");
        assert_eq!(
            MessageId::parse_lastseen("10.3"),
            Some(MessageId { id: 10, reply: 3 })
        );
        assert_eq!(MessageId::parse_lastseen("10"), None);
        assert_eq!(MessageId { id: 1, reply: 0 }.lastseen(), "1.0");
    }
}
