//! Timestamps in logs: RFC 3339 text (read by `crate::time`) or Unix epoch numbers, read as
//! seconds since the epoch, and windows as a reader writes them.

pub use crate::time::{format_utc, parse_rfc3339};

/// A number in a log's timestamp field: seconds, or milli-, micro- or nanoseconds when it is too
/// large to be seconds of this era (above year 5000).
pub fn from_epoch_number(value: f64) -> Option<f64> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    const YEAR_5000: f64 = 95_617_584_000.0;
    let mut v = value;
    for _ in 0..4 {
        if v < YEAR_5000 {
            return Some(v);
        }
        v /= 1000.0;
    }
    None
}

/// A window as a reader writes it: `7d`, `10h`, `15m`, `90s`.
pub fn span(seconds: f64) -> String {
    let s = seconds.round() as u64;
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s >= size && s.is_multiple_of(size) {
            return format!("{}{unit}", s / size);
        }
    }
    format!("{s}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_numbers_in_any_unit() {
        assert_eq!(from_epoch_number(1_796_119_200.0), Some(1_796_119_200.0));
        assert_eq!(from_epoch_number(1_796_119_200_000.0), Some(1_796_119_200.0));
        assert_eq!(from_epoch_number(1_796_119_200_000_000_000.0), Some(1_796_119_200.0));
        assert_eq!(from_epoch_number(-1.0), None);
    }

    #[test]
    fn windows_as_a_reader_writes_them() {
        assert_eq!(span(7.0 * 86_400.0), "7d");
        assert_eq!(span(36_000.0), "10h");
        assert_eq!(span(5_400.0), "90m");
        assert_eq!(span(61.0), "61s");
    }
}
