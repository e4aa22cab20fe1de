//! The response buffer: handlers write lines with their recipients here, never to a
//! socket. The host turns it into the WIT `outcome`.

use std::collections::BTreeSet;

use crate::{Outcome, OutputLine, SessionId};

#[derive(Debug, Default)]
pub(crate) struct Output {
    lines: Vec<OutputLine>,
    closed: Vec<SessionId>,
    error: Option<String>,
}

impl Output {
    /// One line to one session.
    pub fn send(&mut self, session: SessionId, line: String) {
        self.lines.push(OutputLine {
            line,
            recipients: vec![session],
        });
    }

    /// One line to a set of sessions (nothing when the set is empty).
    pub fn send_all(&mut self, sessions: &BTreeSet<SessionId>, line: String) {
        if !sessions.is_empty() {
            self.lines.push(OutputLine {
                line,
                recipients: sessions.iter().copied().collect(),
            });
        }
    }

    /// One line to sessions given in ascending order without duplicates.
    pub fn send_sorted(&mut self, sessions: Vec<SessionId>, line: String) {
        debug_assert!(sessions.windows(2).all(|w| w[0] < w[1]));
        if !sessions.is_empty() {
            self.lines.push(OutputLine {
                line,
                recipients: sessions,
            });
        }
    }

    pub fn close(&mut self, session: SessionId) {
        if !self.closed.contains(&session) {
            self.closed.push(session);
        }
    }

    pub fn error(&mut self, message: String) {
        self.error = Some(message);
    }

    pub fn finish(mut self) -> Outcome {
        self.closed.sort_unstable();
        Outcome {
            lines: self.lines,
            closed: self.closed,
            error: self.error,
        }
    }
}
