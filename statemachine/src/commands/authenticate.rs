//! AUTHENTICATE: SASL PLAIN (IRCv3 `sasl` 3.1), answered by the services plugin that
//! handles SASL (NickServ). The logic decodes the credentials and hands them to the
//! service; its `sasl-result` action completes the exchange (900 + 903, or 904).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

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
    // Standard base64 with canonical padding (RFC 4648 §4); anything else fails.
    let bytes = STANDARD.decode(data).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let mut parts = text.split('\0');
    let (authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authcid.is_empty() || password.is_empty() {
        return None;
    }
    Some((authzid.to_owned(), authcid.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plain_and_refuses_bad_base64() {
        // "\0alice\0secret"
        assert_eq!(
            decode_plain("AGFsaWNlAHNlY3JldA==").unwrap(),
            (String::new(), "alice".into(), "secret".into())
        );
        // "bob\0alice\0pw"
        assert_eq!(
            decode_plain("Ym9iAGFsaWNlAHB3").unwrap(),
            ("bob".into(), "alice".into(), "pw".into())
        );
        // Valid base64 but not PLAIN: one part, an empty account or password, four parts.
        for bad in ["YWxpY2U=", "AABzZWNyZXQ=", "AGFsaWNlAA==", "AGEAYgBj"] {
            assert!(decode_plain(bad).is_none(), "{bad}");
        }
        // Not base64: unpadded, over-padded, padding inside, a foreign character.
        for bad in [
            "AGFsaWNlAHNlY3JldA",
            "AGFsaWNlAHNlY3JldA===",
            "AGFs=aWNlAHNlY3JldA==",
            "AGFsaWNlAHNlY3JldA!=",
        ] {
            assert!(decode_plain(bad).is_none(), "{bad}");
        }
    }
}
