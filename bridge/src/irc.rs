//! Just enough IRC for the bridge: splitting a line into prefix, command and parameters,
//! and reading lines from a client with a length bound.
//!
//! Bytes that are not UTF-8 are replaced with U+FFFD: RobustSession carries lines as JSON
//! strings, which cannot hold arbitrary bytes. (Clients that still send Latin-1 lose those
//! characters; modern clients send UTF-8.)

use tokio::io::{AsyncRead, AsyncReadExt};

/// A parsed IRC line, borrowing from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub prefix: Option<&'a str>,
    pub command: &'a str,
    pub params: Vec<&'a str>,
}

impl Parsed<'_> {
    /// The last parameter (the trailing one, if any).
    pub fn last(&self) -> Option<&str> {
        self.params.last().copied()
    }

    /// The nick part of the prefix (`nick!user@host` → `nick`).
    pub fn prefix_nick(&self) -> Option<&str> {
        self.prefix.map(|p| p.split(['!', '@']).next().unwrap_or(p))
    }

    pub fn is(&self, command: &str) -> bool {
        self.command.eq_ignore_ascii_case(command)
    }
}

/// Parses one line (without CR LF). IRCv3 tags are skipped. `None` for an empty line.
pub fn parse(line: &str) -> Option<Parsed<'_>> {
    let mut rest = line.trim_start_matches(' ');
    if rest.starts_with('@') {
        rest = rest
            .split_once(' ')
            .map_or("", |(_, r)| r)
            .trim_start_matches(' ');
    }
    let mut prefix = None;
    if let Some(p) = rest.strip_prefix(':') {
        let (p, r) = p.split_once(' ').unwrap_or((p, ""));
        prefix = Some(p);
        rest = r.trim_start_matches(' ');
    }
    let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
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
            params.push(trailing);
            break;
        }
        let (p, r) = rest.split_once(' ').unwrap_or((rest, ""));
        params.push(p);
        rest = r;
    }
    Some(Parsed {
        prefix,
        command,
        params,
    })
}

/// What [`LineReader::next`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadLine {
    /// A line without its CR LF, invalid UTF-8 replaced with U+FFFD.
    Line(String),
    /// A line longer than the limit began; it is discarded up to its end.
    TooLong,
    /// The client closed the connection.
    Eof,
}

/// Reads `\n`-terminated lines (a trailing `\r` is removed), at most `max` bytes each.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    max: usize,
    discarding: bool,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(inner: R, max: usize) -> LineReader<R> {
        LineReader {
            inner,
            buf: Vec::with_capacity(512),
            max: max.max(1),
            discarding: false,
            eof: false,
        }
    }

    /// The first byte of the stream, without consuming it (`None` at EOF).
    pub async fn peek_byte(&mut self) -> std::io::Result<Option<u8>> {
        while self.buf.is_empty() && !self.eof {
            self.fill().await?;
        }
        Ok(self.buf.first().copied())
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.inner.read(&mut chunk).await?;
        if n == 0 {
            self.eof = true;
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    pub async fn next(&mut self) -> std::io::Result<ReadLine> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                if self.discarding {
                    self.discarding = false;
                    continue;
                }
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > self.max {
                    return Ok(ReadLine::TooLong);
                }
                return Ok(ReadLine::Line(String::from_utf8_lossy(&line).into_owned()));
            }
            if self.buf.len() > self.max {
                self.buf.clear();
                if !self.discarding {
                    self.discarding = true;
                    return Ok(ReadLine::TooLong);
                }
            }
            if self.eof {
                if self.buf.is_empty() || self.discarding {
                    self.buf.clear();
                    return Ok(ReadLine::Eof);
                }
                // A last line without its newline.
                let line: Vec<u8> = std::mem::take(&mut self.buf);
                let line = line.strip_suffix(b"\r").unwrap_or(&line);
                return Ok(ReadLine::Line(String::from_utf8_lossy(line).into_owned()));
            }
            self.fill().await?;
        }
    }
}

/// `line` up to its first CR or LF (what may be written as one IRC line).
pub fn one_line(line: &str) -> &str {
    line.split(['\r', '\n']).next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        let p = parse(":nick!u@h PRIVMSG #c :hello  world").unwrap();
        assert_eq!(p.prefix, Some("nick!u@h"));
        assert_eq!(p.prefix_nick(), Some("nick"));
        assert_eq!(p.command, "PRIVMSG");
        assert_eq!(p.params, ["#c", "hello  world"]);
        let p = parse("@time=x;y=z  QUIT").unwrap();
        assert_eq!((p.prefix, p.command, p.params.len()), (None, "QUIT", 0));
        let p = parse("quit :").unwrap();
        assert!(p.is("QUIT"));
        assert_eq!(p.last(), Some(""));
        let p = parse("PONG  a  b :c d").unwrap();
        assert_eq!(p.params, ["a", "b", "c d"]);
        assert_eq!(parse(""), None);
        assert_eq!(parse("   "), None);
        assert_eq!(parse(":onlyprefix"), None);
        assert_eq!(parse("@tags-only"), None);
        assert_eq!(one_line("a\r\nb"), "a");
    }

    #[tokio::test]
    async fn reads_lines_with_a_bound() {
        let mut data = b"NICK a\r\nUSER b\n".to_vec();
        data.extend(vec![b'x'; 100]);
        data.extend(b"\r\nPRIVMSG \xff\xfeok\r\nlast".to_vec());
        let mut r = LineReader::new(&data[..], 50);
        assert_eq!(r.peek_byte().await.unwrap(), Some(b'N'));
        assert_eq!(r.next().await.unwrap(), ReadLine::Line("NICK a".into()));
        assert_eq!(r.next().await.unwrap(), ReadLine::Line("USER b".into()));
        assert_eq!(r.next().await.unwrap(), ReadLine::TooLong);
        assert_eq!(
            r.next().await.unwrap(),
            ReadLine::Line("PRIVMSG \u{fffd}\u{fffd}ok".into())
        );
        assert_eq!(r.next().await.unwrap(), ReadLine::Line("last".into()));
        assert_eq!(r.next().await.unwrap(), ReadLine::Eof);
        assert_eq!(r.next().await.unwrap(), ReadLine::Eof);
    }

    #[tokio::test]
    async fn too_long_across_reads_and_at_eof() {
        // Longer than one 4096-byte read and than the bound: one TooLong, then the rest.
        let mut data = vec![b'y'; 10_000];
        data.extend(b"\nok\n");
        data.extend(vec![b'z'; 9000]);
        let mut r = LineReader::new(&data[..], 8192);
        assert_eq!(r.next().await.unwrap(), ReadLine::TooLong);
        assert_eq!(r.next().await.unwrap(), ReadLine::Line("ok".into()));
        assert_eq!(r.next().await.unwrap(), ReadLine::TooLong);
        assert_eq!(r.next().await.unwrap(), ReadLine::Eof);
        let mut r = LineReader::new(&b""[..], 10);
        assert_eq!(r.peek_byte().await.unwrap(), None);
        assert_eq!(r.next().await.unwrap(), ReadLine::Eof);
    }
}
