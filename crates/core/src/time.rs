//! The clock and `metav1.Time` in JSON: RFC 3339, UTC, whole seconds on output.
//!
//! apimachinery `pkg/apis/meta/v1/time.go`: `MarshalJSON` writes `t.UTC().Format(time.RFC3339)`
//! and `UnmarshalJSON` parses `time.RFC3339` (fractional seconds and offsets accepted); `Now()` is the
//! system clock. The workspace's one clock ([`since_epoch`], [`unix_now`]) and one RFC 3339 formatter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch on the system clock (zero if the clock is before 1970).
pub fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Now, in whole Unix seconds.
pub fn unix_now() -> i64 {
    i64::try_from(since_epoch().as_secs()).unwrap_or(i64::MAX)
}

/// Now as `metav1.Now()` marshals it (`2006-01-02T15:04:05Z`).
pub fn now_rfc3339() -> String {
    rfc3339(unix_now())
}

/// Unix seconds as RFC 3339 ([`format_rfc3339`]); the seconds themselves outside years 0–9999.
pub fn rfc3339(secs: i64) -> String {
    format_rfc3339(secs).unwrap_or_else(|| secs.to_string())
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01, proleptic Gregorian (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Formats Unix seconds as `2006-01-02T15:04:05Z`. `None` outside years 0..=9999, which Go's
/// `Time.MarshalJSON` refuses as well.
pub fn format_rfc3339(secs: i64) -> Option<String> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return None;
    }
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    ))
}

/// Parses RFC 3339 (`2024-05-01T10:00:00Z`, `2024-05-01T12:00:00.5+02:00`) into Unix seconds
/// and nanoseconds.
pub fn parse_rfc3339(s: &str) -> Option<(i64, i32)> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d == 0 || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let dim = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if d > dim[mo as usize - 1] {
        return None;
    }
    let mut i = 19;
    let mut nanos: i32 = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        nanos = format!("{digits:0<9}").parse().ok()?;
    }
    let offset: i64 = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = i64::from(num(i + 1..i + 3)?);
            let om = i64::from(num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(sec) - offset;
    Some((secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        // 1575997028 is the creationTimestamp of the upstream `oldSecret` vector.
        assert_eq!(
            format_rfc3339(1_575_997_028).unwrap(),
            "2019-12-10T16:57:08Z"
        );
        assert_eq!(
            parse_rfc3339("2019-12-10T16:57:08Z"),
            Some((1_575_997_028, 0))
        );
        assert_eq!(format_rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            parse_rfc3339("2024-02-29T23:59:59.25+01:00"),
            Some((1_709_247_599, 250_000_000))
        );
        assert_eq!(
            format_rfc3339(1_709_247_599).unwrap(),
            "2024-02-29T22:59:59Z"
        );
        assert_eq!(
            format_rfc3339(-62_135_596_800).unwrap(),
            "0001-01-01T00:00:00Z"
        );
    }

    #[test]
    fn the_clock_is_now() {
        let (a, b) = (unix_now(), since_epoch());
        assert!(a >= 1_767_225_600, "after 2026-01-01: {a}");
        assert!(b.as_secs().abs_diff(a as u64) <= 1);
        let now = now_rfc3339();
        assert_eq!(
            parse_rfc3339(&now).map(|(s, _)| s.abs_diff(a) <= 1),
            Some(true),
            "{now}"
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(253_402_300_800), "253402300800", "year 10000");
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00Zx",
            "2024-01-01T00:00:60Z",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s}");
        }
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_is_identity(secs in -62_135_596_800i64..253_402_300_799) {
            let s = format_rfc3339(secs).unwrap();
            proptest::prop_assert_eq!(parse_rfc3339(&s), Some((secs, 0)));
        }
    }
}
