//! A rate limit with a burst, kept in one number per limit and session: the "theoretical
//! arrival time" of the generic cell rate algorithm. Up to `burst` events pass at once;
//! after that, one more per `interval`; quiet time refills the allowance at that pace.
//! Time is the entry time, so every node decides alike.

/// How long (ms) the next event must wait; 0 when it may happen now. `burst == 0` or
/// `interval == 0` means no limit.
pub(crate) fn wait_ms(tat: u64, now: u64, burst: u32, interval: u64) -> u64 {
    if burst == 0 || interval == 0 {
        return 0;
    }
    let allowance = u64::from(burst - 1).saturating_mul(interval);
    tat.max(now).saturating_sub(now).saturating_sub(allowance)
}

/// Records an event that was allowed ([`wait_ms`] returned 0).
pub(crate) fn take(tat: &mut u64, now: u64, interval: u64) {
    *tat = (*tat).max(now).saturating_add(interval);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_one_per_interval() {
        let mut tat = 0;
        let now = 1_000_000;
        for _ in 0..3 {
            assert_eq!(wait_ms(tat, now, 3, 1000), 0);
            take(&mut tat, now, 1000);
        }
        // The fourth waits a whole interval; half an interval later, half of it.
        assert_eq!(wait_ms(tat, now, 3, 1000), 1000);
        assert_eq!(wait_ms(tat, now + 500, 3, 1000), 500);
        assert_eq!(wait_ms(tat, now + 1000, 3, 1000), 0);
        take(&mut tat, now + 1000, 1000);
        assert_eq!(wait_ms(tat, now + 1000, 3, 1000), 1000);
        // Quiet time refills the burst.
        let later = now + 10_000;
        for _ in 0..3 {
            assert_eq!(wait_ms(tat, later, 3, 1000), 0);
            take(&mut tat, later, 1000);
        }
        assert!(wait_ms(tat, later, 3, 1000) > 0);
    }

    #[test]
    fn zero_means_unlimited_and_nothing_overflows() {
        assert_eq!(wait_ms(u64::MAX, 0, 0, 1000), 0);
        assert_eq!(wait_ms(u64::MAX, 0, 5, 0), 0);
        let mut tat = u64::MAX - 1;
        take(&mut tat, 0, u64::MAX);
        assert_eq!(tat, u64::MAX);
        assert_eq!(wait_ms(0, u64::MAX, u32::MAX, u64::MAX), 0);
    }
}
