//! Instants as text, in one place for every command: RFC 3339 read (canary logs, the ledger,
//! a provider's rate-limit and batch times) and written (UTC, whole seconds), on the proleptic
//! Gregorian calendar. Imports nothing of the crate.

use std::time::{Duration, SystemTime};

/// Seconds since the Unix epoch of an RFC 3339 timestamp (`2026-12-01T10:00:00Z`,
/// `2026-12-01 10:00:00.250+02:00`), or of an ISO 8601 one without a zone, read as UTC
/// (`2026-12-01T10:00:00.123456`, what Python's `datetime.utcnow().isoformat()` writes) or with
/// an offset without its colon (`+0200`); `None` when the text is not one.
pub fn parse_rfc3339(text: &str) -> Option<f64> {
    let b = text.trim().as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    // A day the month does not have (`02-31`) is no date: read as one, it would fall in the
    // next month, and the record out of its arm's order with a date no one wrote.
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if !(1..=12).contains(&month) || !(1..=days_in_month).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut fraction = 0.0;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        fraction = format!("0.{}", std::str::from_utf8(&b[start..i]).ok()?).parse().ok()?;
    }
    let offset = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        // `+hh:mm` or `+hhmm`; an offset's hours run to 23 and its minutes to 59 (RFC 3339's
        // time-numoffset).
        Some(sign @ (b'+' | b'-')) if (b.len() == i + 6 && b[i + 3] == b':') || b.len() == i + 5 => {
            let minutes_at = if b.len() == i + 6 { i + 4 } else { i + 3 };
            let (hours, minutes) = (digits(i + 1..i + 3)?, digits(minutes_at..minutes_at + 2)?);
            if hours > 23 || minutes > 59 {
                return None;
            }
            if *sign == b'+' {
                hours * 60 + minutes
            } else {
                -(hours * 60 + minutes)
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset * 60;
    Some(seconds as f64 + fraction)
}

/// [`parse_rfc3339`] as an instant.
pub fn parse_rfc3339_instant(text: &str) -> Option<SystemTime> {
    at_seconds(parse_rfc3339(text)?)
}

/// The instant `seconds` after the Unix epoch (before it when negative).
pub fn at_seconds(seconds: f64) -> Option<SystemTime> {
    if !seconds.is_finite() {
        return None;
    }
    let span = Duration::try_from_secs_f64(seconds.abs()).ok()?;
    if seconds >= 0.0 {
        SystemTime::UNIX_EPOCH.checked_add(span)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(span)
    }
}

/// `2026-12-01T10:00:00Z` for seconds since the epoch (whole seconds, UTC).
pub fn format_utc(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "unknown time".to_owned();
    }
    let s = seconds.floor() as i64;
    let (days, rest) = (s.div_euclid(86_400), s.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// [`format_utc`] of an instant (one before the epoch reads as the epoch).
pub fn format_instant(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    format_utc(secs as f64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`,
/// "chrono-Compatible Low-Level Date Algorithms").
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`] (same source).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(text: &str, expected: Option<f64>) {
        assert_eq!(parse_rfc3339(text), expected, "{text}");
    }

    #[test]
    fn rfc3339_timestamps() {
        // python3: datetime.fromisoformat("2026-12-01T10:00:00+00:00").timestamp() -> 1796119200.0
        check("2026-12-01T10:00:00Z", Some(1_796_119_200.0));
        check("2026-12-01 12:00:00+02:00", Some(1_796_119_200.0));
        check("2026-12-01T10:00:00.25Z", Some(1_796_119_200.25));
        // datetime.fromisoformat("2024-02-29T23:59:59-05:30").timestamp() -> 1709270999.0
        check("2024-02-29T23:59:59-05:30", Some(1_709_270_999.0));
        check("1970-01-01T00:00:00Z", Some(0.0));
        check("2026-13-01T10:00:00Z", None);
        // Days the month has not, and offsets past 23:59, are no timestamps (Python's
        // datetime.fromisoformat refuses "2026-02-31T10:00:00Z" and "…+25:00" alike);
        // datetime.fromisoformat("2024-02-29T10:00:00+00:00").timestamp() -> 1709200800.0,
        // datetime.fromisoformat("2026-12-01T10:00:00+23:59").timestamp() -> 1796032860.0
        check("2026-02-31T10:00:00Z", None);
        check("2025-02-29T10:00:00Z", None);
        check("2026-04-31T10:00:00Z", None);
        check("2024-02-29T10:00:00Z", Some(1_709_200_800.0));
        check("2026-12-01T10:00:00+25:00", None);
        check("2026-12-01T10:00:00+0260", None);
        check("2026-12-01T10:00:00+23:59", Some(1_796_032_860.0));
        // No zone: UTC. datetime.fromisoformat("2026-12-01T10:00:00.123456+00:00").timestamp()
        // -> 1796119200.123456
        check("2026-12-01T10:00:00", Some(1_796_119_200.0));
        check("2026-12-01T10:00:00.123456", Some(1_796_119_200.123456));
        // datetime.strptime("2026-12-01T12:00:00+0200", "%Y-%m-%dT%H:%M:%S%z").timestamp()
        // -> 1796119200.0
        check("2026-12-01T12:00:00+0200", Some(1_796_119_200.0));
        check("2026-12-01T10:00:00+02", None);
        check("yesterday", None);
        check("2026-12-01T10:00:00.Z", None);
    }

    #[test]
    fn instants_print_as_rfc_3339_and_read_back() {
        // `date -u -d @0`, `@951782400` (a leap day), `@1764684300`.
        for (secs, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_764_684_300, "2025-12-02T14:05:00Z"),
        ] {
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(format_instant(at), text);
            assert_eq!(parse_rfc3339_instant(text), Some(at));
        }
        assert_eq!(format_utc(1_796_119_200.0), "2026-12-01T10:00:00Z");
        assert_eq!(format_utc(1_709_270_999.0), "2024-03-01T05:29:59Z");
        // python3: datetime.fromisoformat("1969-12-31T23:59:59Z").timestamp() -> -1.0
        assert_eq!(
            parse_rfc3339_instant("1969-12-31T23:59:59Z"),
            Some(SystemTime::UNIX_EPOCH - Duration::from_secs(1))
        );
        assert_eq!(parse_rfc3339_instant("yesterday"), None);
    }
}
