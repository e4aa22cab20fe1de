//! The response buffer: handlers write lines with their recipients here, never to a
//! socket. The host turns it into the WIT `outcome`.

use std::collections::BTreeSet;

use unsplit_services::Event;

use crate::{Outcome, OutputLine, ServiceEvent, SessionId, Step};

#[derive(Debug, Default)]
pub(crate) struct Output {
    lines: Vec<OutputLine>,
    closed: Vec<SessionId>,
    error: Option<String>,
    /// Events for services, in the order they happened.
    events: Vec<ServiceEvent>,
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

    /// An event for one service.
    pub fn event(&mut self, service: &str, event: Event) {
        self.events.push(ServiceEvent {
            service: service.to_owned(),
            event,
        });
    }

    /// The outcome and the events for services.
    pub fn finish_step(mut self) -> Step {
        self.closed.sort_unstable();
        Step {
            outcome: Outcome {
                lines: self.lines,
                closed: self.closed,
                error: self.error,
            },
            events: self.events,
        }
    }
}
