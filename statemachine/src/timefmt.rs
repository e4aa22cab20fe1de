//! Human-readable UTC times from entry timestamps (no clock, no time zone database).

use unsplit_services::civil_from_days;

const DAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `Saturday November 21 2026 -- 13:03:19 +00:00`, the RPL_TIME style of common servers.
pub(crate) fn long(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    format!(
        "{weekday} {} {d} {y} -- {:02}:{:02}:{:02} +00:00",
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `2026-11-21 13:03:19 UTC`, for RPL_CREATED and WHOWAS (the date services show too).
pub(crate) use unsplit_services::utc_date as short;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        assert_eq!(long(0), "Thursday January 1 1970 -- 00:00:00 +00:00");
        assert_eq!(
            long(1_795_266_199_000),
            "Saturday November 21 2026 -- 13:03:19 +00:00"
        );
        assert_eq!(short(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert!(short(u64::MAX).len() > 10);
    }
}
