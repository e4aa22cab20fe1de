//! Parsing one client line into a command and its parameters (RFC 2812 §2.3.1).
//!
//! The line arrives as raw bytes. [`check_line`] applies the byte-level rules (length,
//! NUL, UTF-8) and [`parse`] splits a valid line. Nothing here can panic on any input.

/// Longest line body in bytes: 512 including the CR LF terminator (RFC 2812 §2.3).
pub(crate) const MAX_LINE_BYTES: usize = 510;
/// Longest IRCv3 tag section we accept in front of a line (its own 8191-byte budget).
pub(crate) const MAX_TAG_BYTES: usize = 8191;
/// At most 15 parameters (RFC 2812 §2.3.1).
const MAX_PARAMS: usize = 15;

/// A parsed client message. `command` is upper-case ASCII.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub command: String,
    pub params: Vec<String>,
}

impl Message {
    /// Parameter `i`, or "" when absent.
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map(String::as_str).unwrap_or("")
    }
}

/// Why a line was refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LineError {
    #[error("Input line was too long")]
    TooLong,
    #[error("Message contains a NUL byte")]
    Nul,
    #[error("Message is not valid UTF-8")]
    InvalidUtf8,
}

/// Cuts the line at its first CR or LF (a line is one line) and drops IRCv3 tags.
fn body(raw: &[u8]) -> (&[u8], usize) {
    let end = raw
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(raw.len());
    let line = &raw[..end];
    let line = trim_start_spaces(line);
    if line.first() == Some(&b'@') {
        match line.iter().position(|&b| b == b' ') {
            Some(sp) => (trim_start_spaces(&line[sp..]), sp),
            None => (&[], line.len()),
        }
    } else {
        (line, 0)
    }
}

fn trim_start_spaces(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&c| c == b' ').count();
    &b[n..]
}

/// The command word of a raw line, upper-cased, for error replies about lines that could
/// not be decoded; `*` when there is no usable word.
pub(crate) fn command_hint(raw: &[u8]) -> String {
    let (mut line, _) = body(raw);
    if line.first() == Some(&b':') {
        let sp = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        line = trim_start_spaces(&line[sp..]);
    }
    let word: Vec<u8> = line.iter().take_while(|&&b| b != b' ').copied().collect();
    if !word.is_empty() && word.len() <= 32 && word.iter().all(u8::is_ascii_alphanumeric) {
        String::from_utf8(word)
            .unwrap_or_default()
            .to_ascii_uppercase()
    } else {
        "*".to_owned()
    }
}

/// Checks the byte-level rules and returns the line body as text.
pub(crate) fn check_line(raw: &[u8]) -> Result<&str, LineError> {
    let (line, tag_len) = body(raw);
    if tag_len > MAX_TAG_BYTES || line.len() > MAX_LINE_BYTES {
        return Err(LineError::TooLong);
    }
    if line.contains(&0) {
        return Err(LineError::Nul);
    }
    std::str::from_utf8(line).map_err(|_| LineError::InvalidUtf8)
}

/// Splits a checked line. `None` for a line with no command (empty, blank, prefix only),
/// which RFC 2812 says to ignore silently.
pub(crate) fn parse(line: &str) -> Option<Message> {
    let mut rest = line.trim_start_matches(' ');
    if let Some(after) = rest.strip_prefix(':') {
        // A client-supplied prefix is ignored: the server knows who sent the line.
        rest = after
            .split_once(' ')
            .map(|(_, r)| r)
            .unwrap_or("")
            .trim_start_matches(' ');
    }
    let (command, mut rest) = match rest.split_once(' ') {
        Some((c, r)) => (c, r),
        None => (rest, ""),
    };
    if command.is_empty() {
        return None;
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        if let Some(trailing) = rest.strip_prefix(':') {
            params.push(trailing.to_owned());
            break;
        }
        if params.len() == MAX_PARAMS - 1 {
            params.push(rest.to_owned());
            break;
        }
        match rest.split_once(' ') {
            Some((p, r)) => {
                params.push(p.to_owned());
                rest = r;
            }
            None => {
                params.push(rest.to_owned());
                break;
            }
        }
    }
    Some(Message {
        command: command.to_ascii_uppercase(),
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Option<(String, Vec<String>)> {
        parse(line).map(|m| (m.command, m.params))
    }

    #[test]
    fn parses_params_and_trailing() {
        let (c, ps) = p("privmsg #a :hello  world ").unwrap();
        assert_eq!(c, "PRIVMSG");
        assert_eq!(ps, vec!["#a", "hello  world "]);
        let (_, ps) = p("MODE   #a  +o   bob").unwrap();
        assert_eq!(ps, vec!["#a", "+o", "bob"]);
        let (_, ps) = p("TOPIC #a :").unwrap();
        assert_eq!(ps, vec!["#a", ""]);
    }

    #[test]
    fn ignores_prefix_and_tags() {
        assert_eq!(
            check_line(b"@a=b;c :nick!u@h PING x").unwrap(),
            ":nick!u@h PING x"
        );
        let (c, ps) = p(":nick!u@h PING x").unwrap();
        assert_eq!((c.as_str(), ps), ("PING", vec!["x".to_owned()]));
    }

    #[test]
    fn empty_and_prefix_only_lines_have_no_command() {
        assert_eq!(p(""), None);
        assert_eq!(p("    "), None);
        assert_eq!(p(":prefix"), None);
        assert_eq!(p(":prefix   "), None);
    }

    #[test]
    fn fifteen_params_at_most() {
        let line = format!(
            "CMD {}",
            (1..=20)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let (_, ps) = p(&line).unwrap();
        assert_eq!(ps.len(), 15);
        assert_eq!(ps[14], "15 16 17 18 19 20");
    }

    #[test]
    fn byte_rules() {
        assert_eq!(check_line(&[b'a'; 510]).map(str::len), Ok(510));
        assert_eq!(check_line(&[b'a'; 511]), Err(LineError::TooLong));
        assert_eq!(check_line(b"PRIVMSG a :\xff"), Err(LineError::InvalidUtf8));
        assert_eq!(check_line(b"PRIVMSG a :\0"), Err(LineError::Nul));
        assert_eq!(check_line(b"PING a\r\nPING b"), Ok("PING a"));
        assert_eq!(command_hint(b"privmsg a :\xff"), "PRIVMSG");
        assert_eq!(command_hint(b"\xff"), "*");
    }
}
