//! AUTHENTICATE: SASL PLAIN (IRCv3 `sasl` 3.1), answered by the services plugin that
//! handles SASL (NickServ). The logic decodes the credentials and hands them to the
//! service; its `sasl-result` action completes the exchange (900 + 903, or 904).

use super::Ctx;
use crate::message::Message;
use crate::numeric::*;
use crate::services::{self, Sasl};
use unsplit_services::Event;

/// Bytes of one AUTHENTICATE payload chunk; a shorter one (or `+`) ends the payload.
const CHUNK: usize = 400;
/// Largest decoded-to-be payload accepted (base64 characters).
const MAX_PAYLOAD: usize = 4 * CHUNK;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let param = msg.param(0);
    let Some(service) = services::sasl_service(ctx.state).map(|s| s.name.clone()) else {
        services::sasl_fail(ctx);
        return;
    };
    let me = ctx.me();
    if !me.caps.contains("sasl") {
        services::sasl_fail(ctx);
        return;
    }
    if param == "*" {
        if let Some(s) = ctx.me_mut() {
            s.sasl = None;
        }
        ctx.numeric(ERR_SASLABORTED, ":SASL authentication aborted");
        return;
    }
    if me.account.is_some() {
        ctx.numeric(
            ERR_SASLALREADY,
            ":You have already authenticated using SASL",
        );
        return;
    }
    match me.sasl.clone() {
        None => {
            if param.eq_ignore_ascii_case("PLAIN") {
                if let Some(s) = ctx.me_mut() {
                    s.sasl = Some(Sasl::Plain {
                        data: String::new(),
                    });
                }
                ctx.reply("AUTHENTICATE +".to_owned());
            } else {
                ctx.numeric(RPL_SASLMECHS, "PLAIN :are available SASL mechanisms");
                services::sasl_fail(ctx);
            }
        }
        Some(Sasl::Plain { mut data }) => {
            if param.len() > CHUNK {
                too_long(ctx);
                return;
            }
            if param != "+" {
                data.push_str(param);
            }
            if data.len() > MAX_PAYLOAD {
                too_long(ctx);
                return;
            }
            if param.len() == CHUNK {
                if let Some(s) = ctx.me_mut() {
                    s.sasl = Some(Sasl::Plain { data });
                }
                return;
            }
            let Some((authzid, authcid, password)) = decode_plain(&data) else {
                services::sasl_fail(ctx);
                return;
            };
            if let Some(s) = ctx.me_mut() {
                s.sasl = Some(Sasl::Waiting);
            }
            let event = Event::Sasl {
                session: ctx.id,
                authzid,
                authcid,
                password,
            };
            ctx.out.event(&service, event);
        }
        // A client must wait for the answer; anything else aborts the exchange.
        Some(Sasl::Waiting) => {
            if let Some(s) = ctx.me_mut() {
                s.sasl = None;
            }
            ctx.numeric(ERR_SASLABORTED, ":SASL authentication aborted");
        }
    }
}

fn too_long(ctx: &mut Ctx) {
    if let Some(s) = ctx.me_mut() {
        s.sasl = None;
    }
    ctx.numeric(ERR_SASLTOOLONG, ":SASL message too long");
}

/// `base64(authzid NUL authcid NUL password)` → its three parts (valid UTF-8, no NUL in
/// them, a non-empty account name and password).
fn decode_plain(data: &str) -> Option<(String, String, String)> {
    let bytes = base64_decode(data)?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.split('\0');
    let (authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authcid.is_empty() || password.is_empty() {
        return None;
    }
    Some((authzid.to_owned(), authcid.to_owned(), password.to_owned()))
}

/// Standard base64 with padding (RFC 4648 §4); `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, quad) in bytes.chunks(4).enumerate() {
        let last = i + 1 == bytes.len() / 4;
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64_and_plain() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        for bad in ["Zg", "Z===", "Zg==Zm9v", "Zm9!"] {
            assert!(base64_decode(bad).is_none(), "{bad}");
        }
        // "\0alice\0secret"
        assert_eq!(
            decode_plain("AGFsaWNlAHNlY3JldA==").unwrap(),
            (String::new(), "alice".into(), "secret".into())
        );
        assert!(decode_plain("YWxpY2U=").is_none());
    }
}
