//! Numbers as a reader sees them, by the metric's unit: values, signed differences, intervals,
//! p-values, dollars and durations. One module, so the terminal, the comment, the charts and the
//! JUnit report print the same number the same way.

pub use crate::metrics::Unit;

/// The unit of a metric, by name.
pub fn unit(metric: &str) -> Unit {
    crate::metrics::unit_of(metric)
}

/// A commit as messages quote it: its first 12 hex digits (the whole string when shorter).
pub fn short_sha(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// A value with its unit, or a dash when there is none.
pub fn value(metric: &str, x: Option<f64>) -> String {
    finite(x).map_or_else(dash, |x| unit(metric).value(x))
}

/// Two values of a metric side by side (baseline and candidate): each as [`value`] prints it,
/// with as many more decimals (up to three) as tell them apart when they differ but would print
/// alike: "8.02 ms → 8.05 ms", not "8 ms → 8 ms" beside a significant change.
pub fn values(metric: &str, a: Option<f64>, b: Option<f64>) -> (String, String) {
    match (finite(a), finite(b)) {
        (Some(a), Some(b)) => unit(metric).pair(a, b),
        (a, b) => (value(metric, a), value(metric, b)),
    }
}

/// `p < 0.001`, `p = 0.012`: a p-value in a sentence.
pub fn p_sentence(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".to_owned()
    } else {
        format!("p = {:.3}", p.min(1.0))
    }
}

/// A relative change as a signed percentage, `+12.5%`.
pub fn relative(r: f64) -> String {
    signed_text(format!("{:.1}%", (r * 100.0).abs()), r)
}

/// Numbers of a metric, as a reader sees them (an inherent impl: `Unit` lives in `metrics`).
impl Unit {
    pub fn value(self, x: f64) -> String {
        self.value_finer(x, 0)
    }

    /// [`Unit::value`] with `extra` more decimals.
    fn value_finer(self, x: f64, extra: usize) -> String {
        match self {
            Unit::Share => format!("{:.*}%", 1 + extra, x * 100.0),
            Unit::Milliseconds => format!("{x:.extra$} ms"),
            Unit::Usd => dollars_finer(x, extra),
            Unit::Number => plain_finer(x, extra),
        }
    }

    /// Two values as [`values`] prints them.
    pub fn pair(self, a: f64, b: f64) -> (String, String) {
        let plain = (self.value(a), self.value(b));
        // Equal up to the last bits a running mean leaves (70 of 100 cases passing, in two
        // orders): alike, at the unit's precision.
        if plain.0 != plain.1 || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) {
            return plain;
        }
        (1..=3)
            .map(|extra| (self.value_finer(a, extra), self.value_finer(b, extra)))
            .find(|(a, b)| a != b)
            .unwrap_or(plain)
    }

    /// A difference, always signed. Cost differences also say how large they are relative to
    /// the baseline, which is what a reviewer weighs ("12% cheaper").
    pub fn delta(self, d: f64, baseline: Option<f64>) -> String {
        let text = self.signed(d);
        match (self, baseline) {
            (Unit::Usd, Some(b)) if b > 0.0 => {
                format!("{text} ({})", signed_text(format!("{:.1}%", (d / b * 100.0).abs()), d))
            }
            _ => text,
        }
    }

    pub fn interval(self, lo: f64, hi: f64) -> String {
        match self {
            Unit::Share => format!(
                "[{}, {}] pp",
                signed_text(format!("{:.1}", (lo * 100.0).abs()), lo),
                signed_text(format!("{:.1}", (hi * 100.0).abs()), hi)
            ),
            Unit::Milliseconds => {
                let decimals = ms_decimals(lo.abs().max(hi.abs()));
                format!(
                    "[{}, {}] ms",
                    signed_text(format!("{:.decimals$}", lo.abs()), lo),
                    signed_text(format!("{:.decimals$}", hi.abs()), hi)
                )
            }
            Unit::Usd | Unit::Number => format!("[{}, {}]", self.signed(lo), self.signed(hi)),
        }
    }

    pub fn signed(self, d: f64) -> String {
        signed_text(self.magnitude(d), d)
    }

    /// The size of a difference, unsigned, in the unit differences are shown in.
    pub fn magnitude(self, d: f64) -> String {
        let d = d.abs();
        match self {
            Unit::Share => format!("{:.1} pp", d * 100.0),
            Unit::Milliseconds => format!("{d:.*} ms", ms_decimals(d)),
            Unit::Usd => dollars(d),
            Unit::Number => plain(d),
        }
    }
}

/// Decimals for a difference of `d` milliseconds: none from half a millisecond on, else enough
/// (up to three) that a difference under it does not print as "0 ms".
fn ms_decimals(d: f64) -> usize {
    if d <= 0.0 || !d.is_finite() || format!("{d:.0}") != "0" {
        0
    } else {
        (-d.log10()).ceil().clamp(1.0, 3.0) as usize
    }
}

/// Prefixes `+` or `−` to an already formatted magnitude; none when it rounds to zero, so a
/// reader never sees "−0.0 pp".
pub fn signed_text(magnitude: String, value: f64) -> String {
    let rounds_to_zero = !magnitude.chars().any(|c| c.is_ascii_digit() && c != '0');
    if rounds_to_zero || value == 0.0 {
        magnitude
    } else if value < 0.0 {
        format!("−{magnitude}")
    } else {
        format!("+{magnitude}")
    }
}

/// Dollars with three significant digits below $1 (per-request costs are fractions of a cent:
/// $0.000412), cents above.
pub fn dollars(x: f64) -> String {
    dollars_finer(x, 0)
}

/// [`dollars`] with `extra` more decimals.
fn dollars_finer(x: f64, extra: usize) -> String {
    if !x.is_finite() {
        return dash();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    let a = x.abs();
    if a == 0.0 {
        "$0".to_owned()
    } else if a >= 1.0 {
        format!("{sign}${a:.*}", 2 + extra)
    } else {
        let decimals = (2 - a.log10().floor() as i32).clamp(2, 12) as usize + extra;
        format!("{sign}${a:.decimals$}")
    }
}

pub fn plain(x: f64) -> String {
    plain_finer(x, 0)
}

/// [`plain`] with `extra` more decimals.
fn plain_finer(x: f64, extra: usize) -> String {
    let a = x.abs();
    let decimals = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        3
    };
    format!("{x:.*}", decimals + extra)
}

/// `0.003`, `<0.001`, or a dash when there is no test.
pub fn p_value(p: Option<f64>) -> String {
    match finite(p) {
        None => dash(),
        Some(p) if p < 0.001 => "<0.001".to_owned(),
        Some(p) => format!("{:.3}", p.min(1.0)),
    }
}

pub fn duration(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1_000.0)
    } else {
        let s = ms / 1_000;
        format!("{} min {} s", s / 60, s % 60)
    }
}

pub fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|x| x.is_finite())
}

pub fn dash() -> String {
    "—".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_values_read_as_in_papers() {
        assert_eq!(p_value(Some(0.0031)), "0.003");
        assert_eq!(p_value(Some(0.0004)), "<0.001");
        assert_eq!(p_value(Some(0.0)), "<0.001");
        assert_eq!(p_value(Some(1.2)), "1.000");
        assert_eq!(p_value(Some(f64::NAN)), "—");
        assert_eq!(p_value(None), "—");
    }

    #[test]
    fn durations_and_dollars_read_naturally() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_340), "12.3 s");
        assert_eq!(duration(83_400), "1 min 23 s");
        assert_eq!(dollars(0.01234), "$0.0123");
        assert_eq!(dollars(12.345), "$12.35");
        assert_eq!(dollars(-0.5), "-$0.500");
        assert_eq!(dollars(f64::INFINITY), "—");
    }

    #[test]
    fn two_values_that_differ_never_print_alike() {
        // The memory benchmark's p95 latencies: both "8 ms" at the unit's precision.
        assert_eq!(
            values("latency_p95_ms", Some(8.021), Some(8.046)),
            ("8.02 ms".into(), "8.05 ms".into())
        );
        assert_eq!(
            values("latency_p95_ms", Some(812.0), Some(845.0)),
            ("812 ms".into(), "845 ms".into())
        );
        // Equal values stay at the unit's precision; beyond three more decimals, alike.
        assert_eq!(
            values("latency_p95_ms", Some(8.0), Some(8.0)),
            ("8 ms".into(), "8 ms".into())
        );
        assert_eq!(
            values("latency_p95_ms", Some(8.0), Some(8.00001)),
            ("8 ms".into(), "8 ms".into())
        );
        // 70 of 100 cases passing in either arm, summed in two orders by a running mean.
        assert_eq!(
            values("pass_rate", Some(0.6999999999999993), Some(0.7000000000000006)),
            ("70.0%".into(), "70.0%".into())
        );
        assert_eq!(
            values("pass_rate", Some(0.9001), Some(0.9004)),
            ("90.01%".into(), "90.04%".into())
        );
        assert_eq!(
            values("cost_per_request", Some(0.0001231), Some(0.0001234)),
            ("$0.0001231".into(), "$0.0001234".into())
        );
        assert_eq!(values("pass_rate", None, Some(0.5)), ("—".into(), "50.0%".into()));
    }

    #[test]
    fn a_difference_under_a_millisecond_shows_its_size() {
        let ms = Unit::Milliseconds;
        assert_eq!(ms.signed(0.025), "+0.03 ms");
        assert_eq!(ms.signed(-0.3), "−0.3 ms");
        assert_eq!(ms.signed(12.4), "+12 ms");
        assert_eq!(ms.signed(0.0), "0 ms");
        assert_eq!(ms.signed(0.0004), "0.000 ms");
        // Exactly half a millisecond rounds to an even "0": it shows its decimal.
        assert_eq!(ms.signed(0.5), "+0.5 ms");
        assert_eq!(ms.signed(0.7), "+1 ms");
        assert_eq!(ms.interval(0.1, 0.5), "[+0.1, +0.5] ms");
        assert_eq!(ms.interval(-0.12, 0.26), "[−0.1, +0.3] ms");
        assert_eq!(ms.interval(-3.0, 12.0), "[−3, +12] ms");
    }
}
