//! What every plugin needs beside the contract: a snapshot encoding with a format
//! number, and dates from entry times (there is no clock).

use serde::Serialize;
use serde::de::DeserializeOwned;

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

/// (year, month 1–12, day 1–31) from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
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
