//! The network's server list, server choice and per-server backoff (RobustSession §1.5).
//!
//! Shared by every session of one [`super::Network`], so that a server that fails for one
//! session is avoided by all of them, as RobustIRC's `robustsession` does.
//!
//! Differences from RobustIRC, both made for many clients failing at once:
//! - backoff delays carry jitter: a failure at exponent `n` waits a uniform random time in
//!   `[2^n / 2, 2^n]` quarter seconds (n ≤ 8, so at most 64 s), so that clients that lost
//!   the same server at the same moment do not come back at the same moment; the first
//!   step is short (250–500 ms) because a leader change takes about a second, and the
//!   nodes hold writes during an election;
//! - failures reported while a server is already backing off do not raise its exponent:
//!   a thousand sessions losing one server at once count as one failure, not as a thousand.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::Rng;

/// The largest backoff exponent: 2^8 × 250 ms = 64 s.
pub(crate) const MAX_BACKOFF_EXP: u32 = 8;
/// The unit of the backoff: 2^n of these.
const BACKOFF_UNIT: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy)]
struct Backoff {
    exp: u32,
    next: Instant,
}

#[derive(Debug)]
pub(crate) struct Servers {
    list: Vec<String>,
    /// The next index for round-robin choice.
    offset: usize,
    backoff: HashMap<String, Backoff>,
}

impl Servers {
    pub(crate) fn new(list: Vec<String>) -> Servers {
        Servers {
            list,
            offset: 0,
            backoff: HashMap::new(),
        }
    }

    pub(crate) fn list(&self) -> &[String] {
        &self.list
    }

    /// Chooses a server not in backoff. `random` (for GET) tries a random one first, else
    /// (and as fallback) the list is walked round-robin from the offset. When every
    /// server is in backoff, returns how long until the soonest one is usable again.
    pub(crate) fn pick(
        &mut self,
        now: Instant,
        random: bool,
        rng: &mut impl Rng,
    ) -> Result<String, Duration> {
        if self.list.is_empty() {
            return Err(Duration::from_secs(1));
        }
        if random {
            let s = &self.list[rng.random_range(0..self.list.len())];
            if self.ready_in(s, now).is_zero() {
                return Ok(s.clone());
            }
        }
        let mut soonest = Duration::MAX;
        for i in 0..self.list.len() {
            let idx = (self.offset + i) % self.list.len();
            let wait = self.ready_in(&self.list[idx], now);
            if wait.is_zero() {
                if !random {
                    self.offset = (idx + 1) % self.list.len();
                }
                return Ok(self.list[idx].clone());
            }
            soonest = soonest.min(wait);
        }
        Err(soonest)
    }

    fn ready_in(&self, server: &str, now: Instant) -> Duration {
        self.backoff
            .get(server)
            .map_or(Duration::ZERO, |b| b.next.saturating_duration_since(now))
    }

    /// Records a failure (transport error, 5xx, broken stream, watchdog).
    pub(crate) fn failed(&mut self, server: &str, now: Instant, rng: &mut impl Rng) {
        let b = self
            .backoff
            .entry(server.to_owned())
            .or_insert(Backoff { exp: 0, next: now });
        if b.exp > 0 && b.next > now {
            // Already backing off: a concurrent failure of the same episode.
            return;
        }
        b.exp = (b.exp + 1).min(MAX_BACKOFF_EXP);
        b.next = now + jittered_backoff(b.exp, rng);
    }

    /// Records a success: the server's backoff is cleared.
    pub(crate) fn succeeded(&mut self, server: &str) {
        self.backoff.remove(server);
    }

    /// Moves (or adds) `server` to the front: the next round-robin choice. A hint only;
    /// backoff still applies.
    pub(crate) fn prefer(&mut self, server: &str) {
        if self.list.first().is_some_and(|s| s == server) && self.offset == 0 {
            return;
        }
        self.list.retain(|s| s != server);
        self.list.insert(0, server.to_owned());
        self.offset = 0;
    }

    /// Replaces the list (from a ping's `Servers`). Backoff entries of servers no longer in
    /// the list are dropped. Returns whether the list changed.
    pub(crate) fn set(&mut self, list: Vec<String>) -> bool {
        if list.is_empty() {
            return false;
        }
        let mut sorted_old = self.list.clone();
        let mut sorted_new = list.clone();
        sorted_old.sort();
        sorted_new.sort();
        if sorted_old == sorted_new {
            // Same set: keep our order (it carries the leader preference).
            return false;
        }
        self.backoff.retain(|s, _| list.contains(s));
        self.list = list;
        self.offset = 0;
        true
    }

    #[cfg(test)]
    fn exp(&self, server: &str) -> u32 {
        self.backoff.get(server).map_or(0, |b| b.exp)
    }
}

/// A uniform random delay in `[2^exp / 2, 2^exp]` × 250 ms.
pub(crate) fn jittered_backoff(exp: u32, rng: &mut impl Rng) -> Duration {
    let full = BACKOFF_UNIT * (1u32 << exp.min(MAX_BACKOFF_EXP));
    let half = full / 2;
    half + half.mul_f64(rng.random_range(0.0..=1.0))
}

/// How long a request sleeps when every server is backing off: the soonest end of a
/// backoff plus up to a quarter of it again, so that the sessions sharing a network do not
/// all probe the recovered server in the same instant.
pub(crate) fn spread_wait(wait: Duration, rng: &mut impl Rng) -> Duration {
    let wait = wait.min(BACKOFF_UNIT * (1u32 << MAX_BACKOFF_EXP));
    wait + (wait / 4).mul_f64(rng.random_range(0.0..=1.0)) + Duration::from_millis(1)
}

/// Parses a `Content-Location` value (`//<leader>/<path>`, or a full `https://` URL) into
/// the leader's `host:port`.
pub(crate) fn content_location_server(value: &str) -> Option<String> {
    let rest = value
        .strip_prefix("https:")
        .or_else(|| value.strip_prefix("http:"))
        .unwrap_or(value);
    let rest = rest.strip_prefix("//")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    valid_server(authority).then(|| authority.to_owned())
}

/// Whether `s` looks like `host:port` (host a name, an IPv4 address or `[v6]`).
pub(crate) fn valid_server(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    if !matches!(port.parse::<u16>(), Ok(p) if p != 0) || host.is_empty() {
        return false;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    host.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn servers(n: usize) -> Servers {
        Servers::new((0..n).map(|i| format!("s{i}:1")).collect())
    }

    #[test]
    fn round_robin_and_prefer() {
        let mut rng = StdRng::seed_from_u64(1);
        let now = Instant::now();
        let mut s = servers(3);
        let picks: Vec<_> = (0..4)
            .map(|_| s.pick(now, false, &mut rng).unwrap())
            .collect();
        assert_eq!(picks, ["s0:1", "s1:1", "s2:1", "s0:1"]);
        s.prefer("s2:1");
        assert_eq!(s.list(), ["s2:1", "s0:1", "s1:1"]);
        assert_eq!(s.pick(now, false, &mut rng).unwrap(), "s2:1");
        s.prefer("new:7");
        assert_eq!(s.list(), ["new:7", "s2:1", "s0:1", "s1:1"]);
    }

    #[test]
    fn backoff_grows_with_jitter_caps_and_clears() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut now = Instant::now();
        let mut s = servers(1);
        let mut waits = vec![];
        for _ in 0..10 {
            s.failed("s0:1", now, &mut rng);
            let wait = s.pick(now, false, &mut rng).unwrap_err();
            waits.push(wait);
            now += wait;
            assert_eq!(s.pick(now, false, &mut rng).unwrap(), "s0:1");
        }
        for (i, w) in waits.iter().enumerate() {
            let full = BACKOFF_UNIT * (1u32 << (i as u32 + 1).min(MAX_BACKOFF_EXP));
            assert!(*w >= full / 2 && *w <= full, "{i}: {w:?}");
        }
        assert_eq!(s.exp("s0:1"), MAX_BACKOFF_EXP);
        s.succeeded("s0:1");
        assert_eq!(s.exp("s0:1"), 0);
        assert!(s.pick(now, true, &mut rng).is_ok());
    }

    #[test]
    fn jitter_spreads_clients() {
        // 10,000 clients failing at one instant come back spread over [32 s, 64 s].
        let mut rng = StdRng::seed_from_u64(3);
        let delays: Vec<_> = (0..10_000)
            .map(|_| jittered_backoff(MAX_BACKOFF_EXP, &mut rng))
            .collect();
        let min = delays.iter().min().unwrap();
        let max = delays.iter().max().unwrap();
        assert!(*min >= Duration::from_secs(32) && *max <= Duration::from_secs(64));
        assert!(*max - *min > Duration::from_secs(30));
        let in_first_second = delays
            .iter()
            .filter(|d| **d < Duration::from_secs(33))
            .count();
        assert!(in_first_second < 600, "{in_first_second}");
    }

    #[test]
    fn concurrent_failures_count_once() {
        let mut rng = StdRng::seed_from_u64(4);
        let now = Instant::now();
        let mut s = servers(2);
        for _ in 0..1000 {
            s.failed("s0:1", now, &mut rng);
        }
        assert_eq!(s.exp("s0:1"), 1);
        // The other server is still chosen, randomly or not.
        for _ in 0..20 {
            assert_eq!(s.pick(now, true, &mut rng).unwrap(), "s1:1");
            assert_eq!(s.pick(now, false, &mut rng).unwrap(), "s1:1");
        }
        s.failed("s1:1", now, &mut rng);
        let wait = s.pick(now, false, &mut rng).unwrap_err();
        assert!(wait <= Duration::from_secs(2));
    }

    #[test]
    fn server_list_updates() {
        let mut rng = StdRng::seed_from_u64(5);
        let now = Instant::now();
        let mut s = servers(2);
        s.prefer("s1:1");
        s.failed("s0:1", now, &mut rng);
        assert!(
            !s.set(vec!["s0:1".into(), "s1:1".into()]),
            "same set keeps the order"
        );
        assert_eq!(s.list(), ["s1:1", "s0:1"]);
        assert!(!s.set(vec![]));
        assert!(s.set(vec!["s2:1".into(), "s1:1".into()]));
        assert_eq!(s.list(), ["s2:1", "s1:1"]);
        assert_eq!(s.exp("s0:1"), 0);
    }

    #[test]
    fn content_location_and_addresses() {
        assert_eq!(
            content_location_server("//10.0.0.1:8443/robustirc/v1/0x1/message").as_deref(),
            Some("10.0.0.1:8443")
        );
        assert_eq!(
            content_location_server("https://n2:443/x").as_deref(),
            Some("n2:443")
        );
        assert_eq!(
            content_location_server("//[::1]:60000/x").as_deref(),
            Some("[::1]:60000")
        );
        assert_eq!(content_location_server("/robustirc/v1/x"), None);
        assert_eq!(content_location_server("//bad host:1/x"), None);
        assert!(valid_server("localhost:6667"));
        assert!(!valid_server("localhost"));
        assert!(!valid_server("a b:1"));
        assert!(!valid_server("h:99999"));
        assert!(
            !valid_server("127.0.0.1:0"),
            "a node announcing its unbound listen address"
        );
        assert!(!valid_server("[zz]:1"));
        let mut rng = StdRng::seed_from_u64(6);
        let w = spread_wait(Duration::from_secs(4), &mut rng);
        assert!(
            w > Duration::from_secs(4) && w <= Duration::from_secs(5) + Duration::from_millis(1)
        );
    }
}
