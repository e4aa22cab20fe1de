//! LIST: every channel the sender may see (RFC 2812 §3.2.6). Every non-secret channel is
//! listed, always: nothing is left out because of where or when it was created
//! (RobustIRC's LIST missed channels).

use super::Ctx;
use crate::casemap::fold;
use crate::message::Message;
use crate::numeric::*;

pub(crate) fn handle(ctx: &mut Ctx, msg: &Message) {
    let filter: Option<Vec<String>> = msg.params.first().filter(|p| !p.is_empty()).map(|p| {
        // Each channel once, in the order asked for.
        let mut keys: Vec<String> = Vec::new();
        for key in p.split(',').map(fold) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    });
    let mut rows = Vec::new();
    let channels: Box<dyn Iterator<Item = _>> = match &filter {
        Some(keys) => Box::new(keys.iter().filter_map(|k| ctx.state.channels.get(k))),
        None => Box::new(ctx.state.channels.values()),
    };
    for ch in channels {
        if ch.modes.secret && !ch.members.contains_key(&ctx.id) {
            continue;
        }
        let topic = ch.topic.as_ref().map(|t| t.text.as_str()).unwrap_or("");
        rows.push(format!("{} {} :{topic}", ch.name, ch.members.len()));
    }
    ctx.numeric(RPL_LISTSTART, "Channel :Users  Name");
    for row in rows {
        ctx.numeric(RPL_LIST, &row);
    }
    ctx.numeric(RPL_LISTEND, ":End of /LIST");
}
