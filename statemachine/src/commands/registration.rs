//! Completing registration: the welcome burst (001–005, LUSERS, MOTD).

use super::{Ctx, lusers, motd};
use crate::config::Config;
use crate::numeric::*;
use crate::services;
use crate::timefmt;
use unsplit_services::{Event, EventKind};

pub(crate) const NICKLEN: usize = 30;
pub(crate) const CHANNELLEN: usize = unsplit_services::CHANNELLEN;
pub(crate) const TOPICLEN: usize = 390;
pub(crate) const AWAYLEN: usize = 390;
pub(crate) const KICKLEN: usize = 390;
pub(crate) const USERLEN: usize = 16;
/// Parameter-taking mode changes per MODE command.
pub(crate) const MODES: usize = 6;
/// Targets per PRIVMSG/NOTICE.
pub(crate) const MAXTARGETS: usize = 4;

/// User modes, channel modes, channel modes with a parameter (RPL_MYINFO).
const USER_MODES: &str = "io";
const CHANNEL_MODES: &str = "biklmnostv";
const CHANNEL_PARAM_MODES: &str = "bklov";

/// The ISUPPORT tokens, grouped into RPL_ISUPPORT lines of at most 13 tokens.
pub(crate) fn isupport(config: &Config) -> Vec<String> {
    let chanlimit = match config.max_channels_per_session {
        0 => "#:".to_owned(),
        n => format!("#:{n}"),
    };
    let tokens = [
        format!("AWAYLEN={AWAYLEN}"),
        "CASEMAPPING=rfc1459".to_owned(),
        format!("CHANLIMIT={chanlimit}"),
        "CHANMODES=b,k,l,imnst".to_owned(),
        format!("CHANNELLEN={CHANNELLEN}"),
        "CHANTYPES=#".to_owned(),
        format!("KICKLEN={KICKLEN}"),
        format!("MAXTARGETS={MAXTARGETS}"),
        format!("MODES={MODES}"),
        format!("NETWORK={}", config.network),
        format!("NICKLEN={NICKLEN}"),
        "PREFIX=(ov)@+".to_owned(),
        format!("TARGMAX=PRIVMSG:{MAXTARGETS},NOTICE:{MAXTARGETS},JOIN:,PART:,WHOIS:1"),
        format!("TOPICLEN={TOPICLEN}"),
        format!("USERLEN={USERLEN}"),
    ];
    tokens.chunks(13).map(|c| c.join(" ")).collect()
}

pub(crate) fn send_isupport(ctx: &mut Ctx) {
    for tokens in isupport(&ctx.state.config) {
        ctx.numeric(
            RPL_ISUPPORT,
            &format!("{tokens} :are supported by this server"),
        );
    }
}

/// Completes registration once NICK and USER are in and no CAP negotiation is open.
pub(crate) fn try_register(ctx: &mut Ctx) {
    let me = ctx.me();
    if me.registered || me.cap_negotiating || me.nick.is_none() || me.username.is_none() {
        return;
    }
    if let Some(s) = ctx.me_mut() {
        s.registered = true;
    }
    let (users, _) = ctx.state.user_count();
    ctx.state.max_users = ctx.state.max_users.max(users);
    let network = ctx.state.config.network.clone();
    let server = ctx.server_name().to_owned();
    let mask = ctx.me().mask();
    let version = crate::commands::version::version_string();
    let created = timefmt::short(ctx.state.created_ms);
    ctx.numeric(
        RPL_WELCOME,
        &format!(":Welcome to the {network} IRC Network {mask}"),
    );
    ctx.numeric(
        RPL_YOURHOST,
        &format!(":Your host is {server}, running version {version}"),
    );
    ctx.numeric(RPL_CREATED, &format!(":This server was created {created}"));
    ctx.numeric(
        RPL_MYINFO,
        &format!("{server} {version} {USER_MODES} {CHANNEL_MODES} {CHANNEL_PARAM_MODES}"),
    );
    send_isupport(ctx);
    lusers::send(ctx);
    motd::send(ctx);
    let (state, id) = (&*ctx.state, ctx.id);
    services::emit(state, ctx.out, EventKind::Registered, || {
        Event::Registered(services::session_user(state, id))
    });
    // RobustIRC's `PASS nickserv=<password>` (also `PASS <user>:nickserv=<password>`):
    // identify to the SASL service as registration completes.
    // The password is everything after `nickserv=`, colons included.
    let password = ctx.me().password.clone().unwrap_or_default();
    if let Some(secret) = password
        .strip_prefix("nickserv=")
        .or_else(|| password.split_once(":nickserv=").map(|(_, p)| p))
        && let Some(service) = services::sasl_service(ctx.state)
    {
        let name = service.name.clone();
        services::message(ctx, &name, &format!("IDENTIFY {secret}"));
    }
}
