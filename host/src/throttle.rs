//! The exponential throttle per session (RobustIRC's `PostMessageCooloff`): a session's
//! next line may be proposed `min(2^e ms, cooloff)` after its last one; `e` grows with
//! every line and falls back to 0 after a quiet period. A burst of a few lines passes at
//! once (1, 2, 4 … ms apart); a sustained flood is held to one line per cooloff (two per
//! second at the default 500 ms).
//!
//! The state is replicated (`sm::SessionInfo`) and advanced from the entries' leader-
//! stamped times at apply, so whichever node leads next throttles alike. The leader
//! waits before proposing (`api.rs`); the rule itself is pure. Services run inside the
//! IRC logic as plugins and never post through the API, so they are never throttled.
//!
//! "Quiet" is measured from the moment the line was allowed, not from the previous line:
//! a session flooding at the ceiling has gaps of `cooloff` plus commit latency, which must
//! not count as a pause (RobustIRC measures idleness before its sleep to the same effect).

use serde::{Deserialize, Serialize};

/// One session's throttle state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    /// Entry time of the session's last line (of its creation before the first).
    pub last_line_ms: u64,
    /// The next line waits `min(2^exponent, cooloff)` ms after `last_line_ms`.
    pub exponent: u8,
}

/// `2^exponent` stays far below any cooloff at this exponent; the cap keeps the shift
/// defined whatever the cooloff.
const MAX_EXPONENT: u8 = 40;

impl Throttle {
    /// The state of a session created at `now`.
    pub fn new(now: u64) -> Throttle {
        Throttle {
            last_line_ms: now,
            exponent: 0,
        }
    }

    /// The delay imposed after the last line (0 when throttling is off).
    pub fn delay_ms(&self, cooloff: u64) -> u64 {
        (1u64 << self.exponent.min(MAX_EXPONENT)).min(cooloff)
    }

    /// The earliest entry time of the session's next line.
    pub fn ready_at(&self, cooloff: u64) -> u64 {
        self.last_line_ms.saturating_add(self.delay_ms(cooloff))
    }

    /// The state after a line applied at `now` (its entry time).
    pub fn after_line(self, now: u64, cooloff: u64) -> Throttle {
        let quiet = now.saturating_sub(self.ready_at(cooloff)) > cooloff;
        let exponent = if quiet || cooloff == 0 {
            0
        } else if self.delay_ms(cooloff) >= cooloff {
            self.exponent
        } else {
            self.exponent.saturating_add(1).min(MAX_EXPONENT)
        };
        Throttle {
            last_line_ms: now.max(self.last_line_ms),
            exponent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gaps a session flooding as fast as allowed gets (`latency` ms after each
    /// allowed moment).
    fn flood(cooloff: u64, lines: usize, latency: u64) -> Vec<u64> {
        let mut t = Throttle::new(0);
        let mut gaps = Vec::new();
        for _ in 0..lines {
            let at = t.ready_at(cooloff) + latency;
            gaps.push(at - t.last_line_ms);
            t = t.after_line(at, cooloff);
        }
        gaps
    }

    #[test]
    fn doubles_from_one_millisecond_up_to_the_cooloff() {
        assert_eq!(
            flood(500, 12, 0),
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 500, 500, 500]
        );
        // Commit latency on top of every delay does not reset the exponent.
        let gaps = flood(500, 14, 3);
        assert_eq!(&gaps[9..], [503, 503, 503, 503, 503]);
        assert_eq!(flood(100, 9, 0), [1, 2, 4, 8, 16, 32, 64, 100, 100]);
    }

    #[test]
    fn a_quiet_period_longer_than_the_cooloff_resets() {
        let mut t = Throttle::new(0);
        for _ in 0..20 {
            t = t.after_line(t.ready_at(500), 500);
        }
        assert_eq!(t.delay_ms(500), 500);
        // Quiet for exactly the cooloff after the allowed moment: not yet.
        let kept = t.after_line(t.ready_at(500) + 500, 500);
        assert_eq!(kept.delay_ms(500), 500);
        let reset = t.after_line(t.ready_at(500) + 501, 500);
        assert_eq!(reset.exponent, 0);
        assert_eq!(reset.delay_ms(500), 1);
    }

    #[test]
    fn zero_cooloff_disables_and_nothing_overflows() {
        let t = Throttle {
            last_line_ms: 7,
            exponent: 30,
        };
        assert_eq!(t.ready_at(0), 7);
        assert_eq!(t.after_line(9, 0).exponent, 0);
        let huge = Throttle {
            last_line_ms: u64::MAX,
            exponent: u8::MAX,
        };
        assert_eq!(huge.ready_at(u64::MAX), u64::MAX);
        assert_eq!(huge.after_line(0, u64::MAX).last_line_ms, u64::MAX);
        assert!(huge.after_line(u64::MAX, u64::MAX).exponent <= MAX_EXPONENT);
    }
}
