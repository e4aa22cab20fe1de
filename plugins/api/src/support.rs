//! What every plugin needs beside the contract: a snapshot encoding with a format
//! number, and dates from entry times (there is no clock).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Action, SessionId, User};

/// A plugin's state as a snapshot: the format number (4 bytes, little endian), then the
/// postcard encoding.
pub fn encode_state<T: Serialize>(format: u32, state: &T) -> Vec<u8> {
    let mut bytes = format.to_le_bytes().to_vec();
    // Encoding plain data (maps, strings, integers) into a Vec cannot fail.
    if let Ok(body) = postcard::to_allocvec(state) {
        bytes.extend_from_slice(&body);
    }
    bytes
}

/// The state in a snapshot of `plugin` written by [`encode_state`] with `format`. Only
/// the canonical encoding is accepted (no trailing bytes, no redundant forms), so a
/// restore followed by a snapshot gives back exactly what was restored.
pub fn decode_state<T: Serialize + DeserializeOwned>(
    plugin: &str,
    format: u32,
    data: &[u8],
) -> Result<T, String> {
    let (found, body) = data
        .split_first_chunk::<4>()
        .ok_or(format!("{plugin} snapshot: too short"))?;
    let found = u32::from_le_bytes(*found);
    if found != format {
        return Err(format!(
            "{plugin} snapshot: format {found} (this version reads {format})"
        ));
    }
    let state: T = postcard::from_bytes(body).map_err(|e| format!("{plugin} snapshot: {e}"))?;
    if postcard::to_allocvec(&state).ok().as_deref() != Some(body) {
        return Err(format!("{plugin} snapshot: not in canonical form"));
    }
    Ok(state)
}

/// The answer of service `service` (at `version`) to a CTCP request `text`
/// (`\x01VERSION\x01`, `\x01PING …\x01`): VERSION and PING are answered, other
/// requests are ignored, as clients do.
pub fn ctcp_reply(service: &str, version: &str, text: &str) -> Option<String> {
    let body = text.trim_matches('\u{1}');
    match crate::command_word(body).0.as_str() {
        "VERSION" => Some(format!("\u{1}VERSION unsplit {service} {version}\u{1}")),
        "PING" => Some(format!("\u{1}{body}\u{1}")),
        _ => None,
    }
}

/// A notice from a service to a session.
pub fn notice(out: &mut Vec<Action>, to: SessionId, text: impl Into<String>) {
    out.push(Action::Notice {
        to,
        text: text.into(),
    });
}

/// At most this many characters of a word a user typed are echoed back (enough for a
/// whole valid channel or account name).
pub const ECHO_CHARS: usize = 50;

/// A word the user typed, cut to [`ECHO_CHARS`] characters, to echo back.
pub fn shown(word: &str) -> String {
    word.chars().take(ECHO_CHARS).collect()
}

/// A command's arguments: the words after the command word, and that text whole (a
/// password that follows an account name may contain spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args<'a> {
    pub words: Vec<&'a str>,
    pub rest: &'a str,
}

impl<'a> Args<'a> {
    /// The arguments in `rest`, the text after the command word.
    pub fn new(rest: &'a str) -> Self {
        Args {
            words: rest.split_whitespace().collect(),
            rest,
        }
    }

    pub fn get(&self, i: usize) -> Option<&'a str> {
        self.words.get(i).copied()
    }

    /// Word `i` case-folded (empty if there is none).
    pub fn folded(&self, i: usize) -> String {
        crate::casefold(self.get(i).unwrap_or_default())
    }

    /// Everything after the first word, trimmed (empty if there is none).
    pub fn after_first(&self) -> &'a str {
        self.rest
            .split_once(char::is_whitespace)
            .map_or("", |(_, tail)| tail.trim())
    }
}

/// A command in a service's table, as the checks before its handler and HELP see it.
pub trait CommandSpec {
    /// The upper-case name.
    fn name(&self) -> &'static str;
    /// Other names it answers to.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    /// Fewer arguments get the syntax.
    fn min_args(&self) -> usize;
    /// Only for sessions logged in to an account.
    fn needs_login(&self) -> bool;
    fn syntax(&self) -> &'static str;
    /// One line for the command list.
    fn summary(&self) -> &'static str;
    /// Lines for `HELP <command>`.
    fn help(&self) -> &'static [&'static str];
}

/// A service's commands and how it introduces them: what every service answers the
/// same way (CTCP, unknown commands, the common checks, HELP) lives here once.
#[derive(Debug)]
pub struct Commands<C: 'static> {
    /// The service's nick, as users address it.
    pub service: &'static str,
    /// The plugin's version, for CTCP VERSION.
    pub version: &'static str,
    /// The first line of the command list.
    pub intro: &'static str,
    /// The width command names are padded to in the command list.
    pub name_width: usize,
    /// The table, in the order HELP lists it.
    pub list: &'static [C],
}

impl<C: CommandSpec> Commands<C> {
    /// A command by its upper-case name or an alias.
    pub fn lookup(&self, word: &str) -> Option<&'static C> {
        self.list
            .iter()
            .find(|c| c.name() == word || c.aliases().contains(&word))
    }

    /// The checks before a command's handler, for a message `text` from `from`: a CTCP
    /// request is answered (or ignored), an empty message gets the hint to use HELP, an
    /// unknown command is named with that hint, a command for logged-in sessions refuses
    /// others, and too few arguments get the syntax. Answers are notices to `from`. The
    /// command and its arguments if its handler is to run.
    pub fn prologue<'t>(
        &self,
        from: &User,
        text: &'t str,
        out: &mut Vec<Action>,
    ) -> Option<(&'static C, Args<'t>)> {
        let to = from.session;
        let service = self.service;
        if text.starts_with('\u{1}') {
            if let Some(reply) = ctcp_reply(service, self.version, text) {
                notice(out, to, reply);
            }
            return None;
        }
        let (word, rest) = crate::command_word(text);
        if word.is_empty() {
            notice(out, to, format!("Type /msg {service} HELP for help."));
            return None;
        }
        let Some(command) = self.lookup(&word) else {
            let text = format!(
                "Unknown command {}. Type /msg {service} HELP for help.",
                shown(&word)
            );
            notice(out, to, text);
            return None;
        };
        if command.needs_login() && from.account.is_none() {
            let text = format!("You need to be logged in to use {}.", command.name());
            notice(out, to, text);
            return None;
        }
        let args = Args::new(rest);
        if args.words.len() < command.min_args() {
            let text = format!("Insufficient parameters for {}.", command.name());
            notice(out, to, text);
            notice(out, to, format!("Syntax: {}", command.syntax()));
            return None;
        }
        Some((command, args))
    }

    /// HELP \[command\] to session `to`: the command list, or one command's syntax,
    /// description and aliases.
    pub fn help(&self, word: Option<&str>, out: &mut Vec<Action>, to: SessionId) {
        if let Some(word) = word {
            let upper = word.to_ascii_uppercase();
            let Some(command) = self.lookup(&upper) else {
                notice(out, to, format!("No help available for {}.", shown(&upper)));
                return;
            };
            notice(out, to, format!("Syntax: {}", command.syntax()));
            for line in command.help() {
                notice(out, to, *line);
            }
            if !command.aliases().is_empty() {
                notice(out, to, format!("Also: {}", command.aliases().join(", ")));
            }
            return;
        }
        notice(out, to, self.intro);
        let width = self.name_width;
        for command in self.list {
            let line = format!("{:<width$} {}", command.name(), command.summary());
            notice(out, to, line);
        }
        let service = self.service;
        let text = format!("Type /msg {service} HELP <command> for more about a command.");
        notice(out, to, text);
    }
}

/// Parses a Go duration string (`"1h30m"`, `"500ms"`, `"1.5s"`, `"0"`; units `ns`,
/// `us`/`µs`, `ms`, `s`, `m`, `h`; no sign) into milliseconds, truncated.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let err =
        || format!("invalid duration {text:?} (expected e.g. \"30m\", \"500ms\", \"1h30m0s\")");
    if text == "0" {
        return Ok(0);
    }
    if text.is_empty() {
        return Err(err());
    }
    let mut rest = text;
    let mut total_ns: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if num_len == 0 {
            return Err(err());
        }
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if (int.is_empty() && frac.is_empty()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| err())?
        };
        let mut value = int.checked_mul(unit_ns).ok_or_else(err)?;
        let mut scale = unit_ns;
        for digit in frac.bytes().take(18) {
            scale /= 10;
            value = value
                .checked_add(u128::from(digit - b'0') * scale)
                .ok_or_else(err)?;
        }
        total_ns = total_ns.checked_add(value).ok_or_else(err)?;
        rest = tail;
    }
    u64::try_from(total_ns / 1_000_000).map_err(|_| err())
}

/// Longest channel name in bytes (the network's `CHANNELLEN`).
pub const CHANNELLEN: usize = 50;

/// Whether `name` is a channel name the network accepts: RFC 2812's chanstring with the
/// `#` prefix only (no space, comma, BEL, colon, CR, LF or NUL), 2 to [`CHANNELLEN`]
/// bytes. The IRC logic creates no other channel, so services need accept no other.
pub fn valid_channel_name(name: &str) -> bool {
    (2..=CHANNELLEN).contains(&name.len())
        && name.starts_with('#')
        && !name.contains([' ', ',', '\x07', ':', '\r', '\n', '\0'])
}

/// (year, month 1–12, day 1–31) from days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-11-21 13:03:19 UTC` for milliseconds since the Unix epoch (an entry's time).
pub fn utc_date(ms: u64) -> String {
    // u64 ms / 1000 always fits an i64.
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctcp_version_and_ping() {
        assert_eq!(
            ctcp_reply("NickServ", "1.0.0", "\u{1}VERSION\u{1}").as_deref(),
            Some("\u{1}VERSION unsplit NickServ 1.0.0\u{1}")
        );
        assert_eq!(
            ctcp_reply("NickServ", "1.0.0", "\u{1}PING 42\u{1}").as_deref(),
            Some("\u{1}PING 42\u{1}")
        );
        assert_eq!(ctcp_reply("NickServ", "1.0.0", "\u{1}TIME\u{1}"), None);
    }

    #[test]
    fn args_and_echoes() {
        let args = Args::new("Alice  my pass word ");
        assert_eq!(args.words, ["Alice", "my", "pass", "word"]);
        assert_eq!(args.get(1), Some("my"));
        assert_eq!(args.get(4), None);
        assert_eq!(args.folded(0), crate::casefold("Alice"));
        assert_eq!(args.folded(9), "");
        assert_eq!(args.after_first(), "my pass word");
        assert_eq!(Args::new("alone").after_first(), "");
        let long = "é".repeat(ECHO_CHARS + 10);
        assert_eq!(shown(&long).chars().count(), ECHO_CHARS);
        assert_eq!(shown("short"), "short");
    }

    struct Cmd {
        name: &'static str,
        aliases: &'static [&'static str],
        min_args: usize,
        needs_login: bool,
    }

    impl CommandSpec for Cmd {
        fn name(&self) -> &'static str {
            self.name
        }
        fn aliases(&self) -> &'static [&'static str] {
            self.aliases
        }
        fn min_args(&self) -> usize {
            self.min_args
        }
        fn needs_login(&self) -> bool {
            self.needs_login
        }
        fn syntax(&self) -> &'static str {
            "SYNTAX"
        }
        fn summary(&self) -> &'static str {
            "Summary."
        }
        fn help(&self) -> &'static [&'static str] {
            &["Help line."]
        }
    }

    const COMMANDS: Commands<Cmd> = Commands {
        service: "TestServ",
        version: "1.0.0",
        intro: "TestServ tests.",
        name_width: 6,
        list: &[
            Cmd {
                name: "OPEN",
                aliases: &["O"],
                min_args: 1,
                needs_login: false,
            },
            Cmd {
                name: "SHUT",
                aliases: &[],
                min_args: 0,
                needs_login: true,
            },
        ],
    };

    fn notices(out: Vec<Action>) -> Vec<String> {
        out.into_iter()
            .map(|a| match a {
                Action::Notice { to: 7, text } => text,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// The command found (its name and words) and the notices given.
    fn run<'t>(from: &User, text: &'t str) -> (Option<(&'static str, Vec<&'t str>)>, Vec<String>) {
        let mut out = Vec::new();
        let found = COMMANDS
            .prologue(from, text, &mut out)
            .map(|(c, args)| (c.name, args.words));
        (found, notices(out))
    }

    #[test]
    fn prologue_answers_what_no_handler_should() {
        let mut from = User {
            session: 7,
            ..User::default()
        };
        assert_eq!(
            run(&from, "\u{1}VERSION\u{1}"),
            (
                None,
                vec!["\u{1}VERSION unsplit TestServ 1.0.0\u{1}".to_owned()]
            )
        );
        assert_eq!(run(&from, "\u{1}TIME\u{1}"), (None, vec![]));
        assert_eq!(
            run(&from, "  "),
            (None, vec!["Type /msg TestServ HELP for help.".to_owned()])
        );
        let unknown = format!(
            "Unknown command {}. Type /msg TestServ HELP for help.",
            "X".repeat(ECHO_CHARS)
        );
        assert_eq!(run(&from, &"x".repeat(80)), (None, vec![unknown]));
        assert_eq!(
            run(&from, "o"),
            (
                None,
                vec![
                    "Insufficient parameters for OPEN.".to_owned(),
                    "Syntax: SYNTAX".to_owned()
                ]
            )
        );
        assert_eq!(
            run(&from, "open a b"),
            (Some(("OPEN", vec!["a", "b"])), vec![])
        );
        assert_eq!(
            run(&from, "shut"),
            (
                None,
                vec!["You need to be logged in to use SHUT.".to_owned()]
            )
        );
        from.account = Some("me".into());
        assert_eq!(run(&from, "shut"), (Some(("SHUT", vec![])), vec![]));
    }

    #[test]
    fn help_lists_or_explains() {
        let help = |word: Option<&str>| {
            let mut out = Vec::new();
            COMMANDS.help(word, &mut out, 7);
            notices(out)
        };
        assert_eq!(
            help(None),
            [
                "TestServ tests.",
                "OPEN   Summary.",
                "SHUT   Summary.",
                "Type /msg TestServ HELP <command> for more about a command."
            ]
        );
        assert_eq!(help(Some("o")), ["Syntax: SYNTAX", "Help line.", "Also: O"]);
        assert_eq!(help(Some("shut")), ["Syntax: SYNTAX", "Help line."]);
        assert_eq!(help(Some("nope")), ["No help available for NOPE."]);
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration_ms("30m0s"), Ok(1_800_000));
        assert_eq!(parse_duration_ms("1m30s"), Ok(90_000));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1500));
        assert_eq!(parse_duration_ms("2500us"), Ok(2));
        assert_eq!(parse_duration_ms("0"), Ok(0));
        for bad in [
            "",
            "5",
            "m",
            "1x",
            "1..5s",
            "-1s",
            ".s",
            "99999999999999999999h",
        ] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn channel_names() {
        for ok in [
            "#a",
            "#Chan",
            "#a\tb",
            "#é",
            &format!("#{}", "c".repeat(49)),
        ] {
            assert!(valid_channel_name(ok), "{ok:?}");
        }
        for bad in [
            "",
            "#",
            "a",
            "&a",
            "#a b",
            "#a,b",
            "#a:b",
            "#a\x07",
            "#a\rb",
            "#a\nb",
            "#a\0",
            &format!("#{}", "c".repeat(50)),
        ] {
            assert!(!valid_channel_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn formats_known_dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_date(1_795_266_199_000), "2026-11-21 13:03:19 UTC");
        assert_eq!(utc_date(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert!(utc_date(u64::MAX).ends_with(" UTC"));
    }

    #[test]
    fn states_round_trip_and_refuse_the_rest() {
        let state = vec![(1u32, "a".to_owned())];
        let bytes = encode_state(3, &state);
        assert_eq!(
            decode_state::<Vec<(u32, String)>>("p", 3, &bytes),
            Ok(state)
        );
        assert!(
            decode_state::<Vec<(u32, String)>>("p", 4, &bytes)
                .unwrap_err()
                .contains("format 3")
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_state::<Vec<(u32, String)>>("p", 3, &longer).is_err());
        assert!(decode_state::<Vec<(u32, String)>>("p", 3, b"ab").is_err());
    }
}
