//! SASL PLAIN: the IRC logic decodes `AUTHENTICATE` and asks; we verify the password
//! through the host and answer with `SaslResult` (the logic logs the session in).

use unsplit_services::{Action, Context, SessionId, casefold};

use crate::hash;
use crate::state::{Purpose, State};

pub(crate) fn handle(
    st: &mut State,
    ctx: &Context,
    out: &mut Vec<Action>,
    session: SessionId,
    authzid: &str,
    authcid: &str,
    password: &str,
) {
    let folded = casefold(authcid);
    let acting_as_other = !authzid.is_empty() && casefold(authzid) != folded;
    // An unknown account is refused by the request like any other reason.
    let purpose = Purpose::Sasl { account: folded };
    if acting_as_other
        || hash::request_verify(st, ctx, out, session, authcid, password, purpose).is_err()
    {
        out.push(Action::SaslResult {
            session,
            account: None,
        });
    }
}
