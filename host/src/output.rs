//! The output window: what every applied entry produced, kept for a while so a client
//! can resume from `lastseen` on any node (RobustIRC keeps about SessionExpiration).
//!
//! Batches are ordered by message id (`MESSAGE_ID_OFFSET + raft index`); each line has
//! its reply number (1, 2, … within the entry, counted before filtering by recipient)
//! and its ascending recipient list. The window is replicated state: it is in snapshots
//! and pruned by entry time, so every node holds the same window.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use unsplit_bridge::protocol::MessageId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutLine {
    pub reply: u64,
    pub text: String,
    pub recipients: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Message id of the input entry.
    pub id: u64,
    /// The entry's time (pruning).
    pub time_ms: u64,
    pub lines: Vec<OutLine>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputWindow {
    batches: VecDeque<Batch>,
    /// Lines over all batches (a cap, and a metric).
    line_count: usize,
}

/// Bounds on the window, whatever the time span: a flood must not grow it without limit.
pub const MAX_WINDOW_LINES: usize = 2_000_000;

impl OutputWindow {
    /// Appends the output of one entry (ids must increase). Empty batches are not kept.
    pub fn push(&mut self, batch: Batch) {
        debug_assert!(self.batches.back().is_none_or(|b| b.id < batch.id));
        if batch.lines.is_empty() {
            return;
        }
        self.line_count += batch.lines.len();
        self.batches.push_back(batch);
    }

    /// Drops batches older than `keep_from_ms`, and the oldest beyond the line cap.
    pub fn prune(&mut self, keep_from_ms: u64) {
        while let Some(front) = self.batches.front() {
            if front.time_ms >= keep_from_ms && self.line_count <= MAX_WINDOW_LINES {
                break;
            }
            self.line_count -= front.lines.len();
            self.batches.pop_front();
        }
    }

    pub fn line_count(&self) -> usize {
        self.line_count
    }

    pub fn batch_count(&self) -> usize {
        self.batches.len()
    }

    /// Every retained batch, oldest first.
    pub fn batches(&self) -> impl Iterator<Item = &Batch> {
        self.batches.iter()
    }

    /// The id of the oldest retained batch.
    pub fn oldest_id(&self) -> Option<u64> {
        self.batches.front().map(|b| b.id)
    }

    /// Lines for `session` strictly after `after`, at most `limit`, with their ids.
    pub fn lines_after(
        &self,
        session: u64,
        after: MessageId,
        limit: usize,
    ) -> Vec<(MessageId, String)> {
        let start = self.batches.partition_point(|b| b.id < after.id);
        let mut out = Vec::new();
        for batch in self.batches.range(start..) {
            for line in &batch.lines {
                if batch.id == after.id && line.reply <= after.reply {
                    continue;
                }
                if line.recipients.binary_search(&session).is_ok() {
                    out.push((
                        MessageId {
                            id: batch.id,
                            reply: line.reply,
                        },
                        line.text.clone(),
                    ));
                    if out.len() >= limit {
                        return out;
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(id: u64, time_ms: u64, lines: &[(&str, &[u64])]) -> Batch {
        Batch {
            id,
            time_ms,
            lines: lines
                .iter()
                .enumerate()
                .map(|(i, (t, r))| OutLine {
                    reply: i as u64 + 1,
                    text: t.to_string(),
                    recipients: r.to_vec(),
                })
                .collect(),
        }
    }

    #[test]
    fn resumes_strictly_after_lastseen_and_filters_by_recipient() {
        let mut w = OutputWindow::default();
        w.push(batch(10, 1, &[("a", &[1]), ("b", &[2]), ("c", &[1, 2])]));
        w.push(batch(11, 2, &[]));
        w.push(batch(12, 3, &[("d", &[2]), ("e", &[1])]));
        let texts = |v: Vec<(MessageId, String)>| v.into_iter().map(|(_, t)| t).collect::<Vec<_>>();
        assert_eq!(
            texts(w.lines_after(1, MessageId::default(), 100)),
            ["a", "c", "e"]
        );
        assert_eq!(
            texts(w.lines_after(1, MessageId { id: 10, reply: 1 }, 100)),
            ["c", "e"]
        );
        assert_eq!(
            texts(w.lines_after(2, MessageId { id: 10, reply: 3 }, 100)),
            ["d"]
        );
        assert_eq!(
            texts(w.lines_after(2, MessageId { id: 12, reply: 1 }, 100)),
            Vec::<String>::new()
        );
        assert_eq!(w.lines_after(1, MessageId::default(), 1).len(), 1);
        assert_eq!(
            w.lines_after(1, MessageId::default(), 100)[2].0,
            MessageId { id: 12, reply: 2 }
        );
        assert_eq!(w.batch_count(), 2);
    }

    #[test]
    fn prunes_by_time() {
        let mut w = OutputWindow::default();
        w.push(batch(1, 100, &[("a", &[1])]));
        w.push(batch(2, 200, &[("b", &[1]), ("c", &[1])]));
        w.prune(150);
        assert_eq!(w.oldest_id(), Some(2));
        assert_eq!(w.line_count(), 2);
        w.prune(u64::MAX);
        assert_eq!(w.batch_count(), 0);
        assert_eq!(w.line_count(), 0);
    }
}
