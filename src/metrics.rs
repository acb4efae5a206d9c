//! What a metric is: the one home of its unit, its default direction and blocking, what value a
//! call contributes, the quantity its comparison estimates, the test that decides it, and the
//! fewest cases that test can judge.
//!
//! Built-in metrics are known by name; a scorer's metric (an assertion's `metric:` name) is
//! read from its values (booleans are proportions, numbers means) and from its name only for
//! the unit (`…_rate` a share, `…_ms` milliseconds, `cost…`/`…_usd` dollars). Nothing else in
//! the program guesses what a metric is from its name.

use crate::results::{Call, CaseResult, Direction, Score};

pub const PASS_RATE: &str = "pass_rate";
pub const ERROR_RATE: &str = "error_rate";
pub const LATENCY_P50: &str = "latency_p50_ms";
pub const LATENCY_P95: &str = "latency_p95_ms";
pub const COST: &str = "cost_per_request";
/// The share of cases whose repeats disagree on `pass`.
pub const FLAKY_SHARE: &str = "flaky_share";
/// Agreement between a case's repeats, 0 to 1 (each call's score is its mean agreement with
/// the other repeats of its case and arm; see `scorers::consistency`).
pub const CONSISTENCY: &str = "consistency";
/// The share of outputs with personal data in them (a `pii` assertion's default metric).
pub const PII_LEAK_RATE: &str = "pii_leak_rate";

/// Metrics every experiment reports, besides its scorers.
pub const BUILTIN: &[&str] = &[PASS_RATE, ERROR_RATE, LATENCY_P50, LATENCY_P95, COST];

pub use crate::results::DEFAULT_TIMEOUT_MS;

/// How a metric's values read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A share in [0, 1], shown as a percentage; differences in percentage points.
    Share,
    Milliseconds,
    Usd,
    /// A plain number (a judge score, a similarity).
    Number,
}

/// What the metric measures per call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// Whether every assertion held (an errored call fails).
    Pass,
    /// Whether the call errored.
    Error,
    /// A quantile of the per-call latency; errored calls count at their timeout.
    Latency { quantile: f64 },
    /// What the call costs at list price.
    Cost,
    /// Whether a case's repeats disagree on `pass` (one value per case and arm).
    Flaky,
    /// How much a case's repeats agree (one value per case and arm: the mean of its calls'
    /// `consistency` scores, which is the mean agreement over all pairs of repeats).
    Consistency,
    /// A scorer's named score.
    Score,
}

/// What the choice of a metric's test reads of its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataShape {
    /// Every value is 0 or 1.
    pub binary: bool,
    /// One call per case and arm (no repeats).
    pub single: bool,
    /// Cases come in the dataset's groups: the units are groups.
    pub grouped: bool,
}

/// The test that decides whether a metric changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Test {
    /// Binary, one value per case: exact McNemar on the discordant pairs, Newcombe interval.
    McnemarExact,
    /// Means (of per-case means): paired t, cluster-robust when cases are grouped; t interval,
    /// Fieller's interval for the ratio.
    PairedT,
    /// Means of skewed amounts (cost): the same statistic, calibrated by the studentized
    /// bootstrap over cases (or groups), which keeps its error rates where the t reference's
    /// symmetric tails do not (see `stats::studentized_mean`).
    BootstrapT,
    /// Quantiles over calls: sign-flip permutation over cases (or groups), interval from the
    /// bootstrap over whole cases.
    SignFlip,
    /// Nothing to compare (candidate only, or no data).
    None,
}

impl Test {
    /// The name `results.json` records.
    pub fn as_str(self) -> &'static str {
        match self {
            Test::McnemarExact => "mcnemar-exact",
            Test::PairedT => "paired-t",
            Test::BootstrapT => "paired-bootstrap-t",
            Test::SignFlip => "sign-flip-permutation",
            Test::None => "none",
        }
    }
}

/// What `delta` and its interval estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Estimand {
    ProportionDifference,
    MeanDifference,
    QuantileDifference,
}

impl Estimand {
    pub fn as_str(self) -> &'static str {
        match self {
            Estimand::ProportionDifference => "proportion-difference",
            Estimand::MeanDifference => "mean-difference",
            Estimand::QuantileDifference => "quantile-difference",
        }
    }
}

/// Cases (or groups) below which a mean or a proportion is "too few to judge": a t interval
/// from fewer units has a critical value above 2.26 and an estimate of the spread from
/// almost nothing, and exact McNemar cannot reach p < 0.05 with fewer than six discordant pairs;
/// the calibration table in docs/statistics.md shows the false-alarm and false non-inferiority
/// rates at n = 3, 5, 10 and 20.
pub const MIN_UNITS_MEAN: usize = 10;

/// Units from which a skewed amount (cost, a custom `…_usd`/`…_ms` mean) is judged, by the
/// bootstrap-t; below it the amount is "too few to judge". With fewer, the rare cases that
/// carry a change may not be in the sample at all, and no test of the mean is calibrated: in
/// docs/statistics.md's calibration, under no change, the paired t called a regression of cost
/// whose differences are left-skewed (the candidate drops rare expensive answers) in 14% of
/// pull requests at n = 10, 5.8% at 20 and 3.3% at 30 (the promise is 2.5%; 1.4% at 40 with
/// the bootstrap-t), and a 10% cost margin was "proven" at a true 10% rise in 3.1% of runs at
/// n = 30 against 2.1% at n = 40.
pub const MIN_UNITS_AMOUNT: usize = 40;

/// Calls in the tail a quantile needs before it is judged: `n·(1 − q) ≥ 5` for an upper
/// quantile (five calls above p95 means 100 cases), `n·q ≥ 5` for a lower one.
pub const TAIL_CALLS: f64 = 5.0;

/// The assertion types, as written in files. Each records its score under its own name when
/// `metric:` names none, except `llm-compare` (`preference`), `pii` ([`PII_LEAK_RATE`]),
/// `hallucination` (`hallucination_rate`) and `exec` (the names its script gives).
pub const ASSERTION_TYPES: &[&str] = &[
    "llm-compare",
    "equals",
    "contains",
    "icontains",
    "not-contains",
    "not-icontains",
    "starts-with",
    "regex",
    "json-valid",
    "json-path",
    "max-length",
    "pii",
    "forbidden-terms",
    "json-schema",
    "refusal",
    "not-refusal",
    "similarity",
    "exec",
    "llm-rubric",
    "relevance",
    "hallucination",
];

/// Whether `name` is a metric one of promptgate's own assertions records when `metric:` names
/// none: a type's own name (each higher for a better output), `preference`, or the lower-is-
/// better rates of `pii` and `hallucination`. A test in `suite` holds it to what each records.
fn own_default(name: &str) -> bool {
    matches!(name, "preference" | PII_LEAK_RATE | "hallucination_rate")
        || (ASSERTION_TYPES.contains(&name) && !matches!(name, "exec" | "llm-compare" | "pii" | "hallucination"))
}

/// A metric, by name.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    pub name: String,
    pub kind: Kind,
    pub unit: Unit,
}

impl Metric {
    pub fn of(name: &str) -> Metric {
        let kind = match name {
            PASS_RATE => Kind::Pass,
            ERROR_RATE => Kind::Error,
            COST => Kind::Cost,
            FLAKY_SHARE => Kind::Flaky,
            CONSISTENCY => Kind::Consistency,
            n => match latency_quantile(n) {
                Some(quantile) => Kind::Latency { quantile },
                None => Kind::Score,
            },
        };
        Metric {
            name: name.to_owned(),
            kind,
            unit: unit_of(name),
        }
    }

    /// Whether promptgate computes this metric from the calls themselves (pass and error
    /// rates, latency quantiles, cost, flakiness, consistency), rather than an assertion's
    /// scores feeding it: no assertion may take its name.
    pub fn is_computed(&self) -> bool {
        self.kind != Kind::Score
    }

    /// The quantile a latency metric reports.
    pub fn quantile(&self) -> Option<f64> {
        match self.kind {
            Kind::Latency { quantile } => Some(quantile),
            _ => None,
        }
    }

    /// Higher is better for quality scores; lower for errors, latency, cost and hallucination.
    pub fn default_direction(&self) -> Direction {
        let lower = matches!(self.kind, Kind::Error | Kind::Latency { .. } | Kind::Cost | Kind::Flaky)
            || matches!(self.unit, Unit::Milliseconds | Unit::Usd)
            || self.name.contains("hallucination")
            || self.name.contains("leak");
        if lower { Direction::Lower } else { Direction::Higher }
    }

    /// Whether [`Metric::default_direction`] knows this metric's direction rather than guesses
    /// it: every computed metric, and the scores promptgate's own assertions record by default
    /// ([`own_default`]). Any other name is a guess from
    /// its words (an `exec` script's `toxicity` read higher-is-better, its
    /// `hallucination_free_rate` lower); ungated, its change is reported as a rise or a fall,
    /// not as an improvement or a regression (see [`direction_assumed`]).
    pub fn direction_known(&self) -> bool {
        self.kind != Kind::Score || own_default(&self.name)
    }

    /// The range a metric's values are known to lie in, whatever the suite's scorers: 0 to 1
    /// for the rates and shares promptgate records and for `consistency`. A margin as wide as
    /// the range is no gate at all. `None` for anything a scorer may record under its name (an
    /// `exec` script may record `relevance` on a 0–100 scale, and a similarity by embeddings
    /// is a cosine, −1 to 1), a latency or a cost.
    pub fn known_range(&self) -> Option<(f64, f64)> {
        let share = self.unit == Unit::Share && self.direction_known();
        (share || self.kind == Kind::Consistency).then_some((0.0, 1.0))
    }

    /// Quality and errors block by default; latency and cost inform unless the suite says so.
    pub fn default_blocking(&self) -> bool {
        matches!(self.kind, Kind::Pass | Kind::Error)
    }

    /// The value `call` contributes, if any. `timeout_ms` is its arm's provider timeout: an
    /// errored call counts there in latency (censored: it took at least that long, or failed
    /// outright), and a cache hit has no latency of this run.
    pub fn call_value(&self, call: &Call, timeout_ms: u64) -> Option<f64> {
        let errored = call.error().is_some();
        match self.kind {
            // Unknown (a judge or scorer could not score it, nothing else failed): no value.
            Kind::Pass => call.pass().map(|pass| f64::from(u8::from(pass))),
            Kind::Error => Some(if errored { 1.0 } else { 0.0 }),
            // An errored call reports no usage: what it cost is unknown (a timed-out call may
            // well have been billed), so it has no value rather than a free one that would pull
            // its arm's cost down. Nor has a call whose model has no price.
            Kind::Cost if errored || call.unpriced => None,
            Kind::Cost => Some(call.list_cost_usd),
            // A batched call waited for its batch, not for the model: no latency to count,
            // not even an errored one's timeout.
            Kind::Latency { .. } if call.batch => None,
            Kind::Latency { .. } if errored => Some(timeout_ms as f64),
            Kind::Latency { .. } if call.cached => None,
            Kind::Latency { .. } => call.latency_ms.get(),
            Kind::Flaky => None,
            Kind::Consistency | Kind::Score => call.scores.get(&self.name).map(|s| s.as_f64()),
        }
    }

    /// One arm's values for a case: a value per call (repeats), or for [`Kind::Flaky`] and
    /// [`Kind::Consistency`] the single value of its repeats together.
    pub fn values(&self, calls: &[Call], timeout_ms: u64) -> Vec<f64> {
        let mut values = Vec::new();
        self.values_into(calls, timeout_ms, &mut values);
        values
    }

    /// [`Metric::values`], appended to `out`.
    pub fn values_into(&self, calls: &[Call], timeout_ms: u64, out: &mut Vec<f64>) {
        match self.kind {
            Kind::Flaky => out.extend(is_flaky(calls).map(|f| f64::from(u8::from(f)))),
            Kind::Consistency => {
                let (sum, n) = calls
                    .iter()
                    .filter_map(|c| self.call_value(c, timeout_ms))
                    .fold((0.0, 0usize), |(sum, n), x| (sum + x, n + 1));
                if n > 0 {
                    out.push(sum / n as f64);
                }
            }
            _ => out.extend(calls.iter().filter_map(|c| self.call_value(c, timeout_ms))),
        }
    }

    /// Whether every value of this metric is 0/1 (an assertion, a pass or an error flag).
    pub fn is_binary(&self, cases: &[CaseResult]) -> bool {
        match self.kind {
            Kind::Pass | Kind::Error | Kind::Flaky => true,
            // Agreements are fractions, averaged over pairs: a mean, never a proportion.
            Kind::Cost | Kind::Latency { .. } | Kind::Consistency => false,
            Kind::Score => cases
                .iter()
                .flat_map(|c| c.baseline.iter().chain(&c.candidate))
                .filter_map(|call| call.scores.get(&self.name))
                .all(|s| matches!(s, Score::Bool(_))),
        }
    }

    /// The test for this metric's data.
    pub fn test(&self, data: DataShape) -> Test {
        let DataShape {
            binary,
            single,
            grouped,
        } = data;
        match self.kind {
            Kind::Latency { .. } => Test::SignFlip,
            // McNemar needs independent pairs of single outcomes; repeats or groups make the
            // per-unit value a mean.
            _ if binary && (single || self.kind == Kind::Flaky) && !grouped => Test::McnemarExact,
            // Amounts (cost, custom `_usd`/`_ms` means) are skewed: a few calls cost or take far
            // more than the rest.
            _ if !binary && self.is_ratio() => Test::BootstrapT,
            _ => Test::PairedT,
        }
    }

    pub fn estimand(&self, test: Test) -> Estimand {
        match test {
            Test::SignFlip => Estimand::QuantileDifference,
            Test::McnemarExact => Estimand::ProportionDifference,
            Test::PairedT | Test::BootstrapT | Test::None => Estimand::MeanDifference,
        }
    }

    /// The fewest units (cases, or groups) this metric's test can judge: below it the metric is
    /// "too few cases to judge" and not gated. Before the data says which test applies, the
    /// strictest of this metric's tests.
    pub fn min_units(&self) -> usize {
        match self.quantile() {
            Some(_) => self.min_units_for(Test::SignFlip),
            None if self.is_skewed_amount() => MIN_UNITS_AMOUNT,
            None => MIN_UNITS_MEAN,
        }
    }

    /// The fewest units `test` judges for this metric.
    pub fn min_units_for(&self, test: Test) -> usize {
        match (test, self.quantile()) {
            (Test::SignFlip, Some(q)) => {
                let tail = if q >= 0.5 { 1.0 - q } else { q };
                (TAIL_CALLS / tail.max(1e-6)).ceil() as usize
            }
            (Test::BootstrapT, _) => MIN_UNITS_AMOUNT,
            _ => MIN_UNITS_MEAN,
        }
    }

    /// Whether `test` on `n` units may prove a bound (non-inferiority, equivalence) of this
    /// metric: not for a skewed amount's paired t below [`MIN_UNITS_AMOUNT`] units, whose
    /// symmetric interval falls short on the long tail.
    pub fn proves_bounds(&self, test: Test, n: usize) -> bool {
        !(test == Test::PairedT && self.is_skewed_amount() && n < MIN_UNITS_AMOUNT)
    }

    /// A mean of positive amounts (cost, a custom `…_usd`/`…_ms` mean), not a quantile: the
    /// bootstrap-t judges it from [`MIN_UNITS_AMOUNT`] units, and only from there proves a bound.
    pub fn is_skewed_amount(&self) -> bool {
        self.is_ratio() && self.quantile().is_none()
    }

    /// Whether a relative change ("10% dearer") is natural for this metric: positive amounts.
    pub fn is_ratio(&self) -> bool {
        matches!(self.kind, Kind::Cost | Kind::Latency { .. }) || matches!(self.unit, Unit::Usd | Unit::Milliseconds)
    }
}

/// The unit a metric's name implies.
pub fn unit_of(name: &str) -> Unit {
    if name.ends_with("_ms") {
        Unit::Milliseconds
    } else if name.starts_with("cost") || name.ends_with("_usd") {
        Unit::Usd
    } else if name.ends_with("_rate") || name == FLAKY_SHARE {
        Unit::Share
    } else {
        Unit::Number
    }
}

/// `latency_p95_ms` → 0.95.
fn latency_quantile(name: &str) -> Option<f64> {
    let p = name.strip_prefix("latency_p")?.strip_suffix("_ms")?;
    let q: f64 = p.parse().ok()?;
    (q > 0.0 && q < 100.0).then_some(q / 100.0)
}

/// Of `calls`, the repeats whose outcome is known (see `Call::pass`) and those that passed.
pub fn known_passes(calls: &[Call]) -> (usize, usize) {
    calls
        .iter()
        .filter_map(Call::pass)
        .fold((0, 0), |(known, passed), pass| (known + 1, passed + usize::from(pass)))
}

/// A case flips when its majority outcome over the repeats whose outcome is known changes.
pub fn flip(baseline: &[Call], candidate: &[Call]) -> Option<crate::results::Flip> {
    let majority = |calls: &[Call]| -> Option<bool> {
        let (known, passed) = known_passes(calls);
        (known > 0).then_some(2 * passed > known)
    };
    match (majority(baseline)?, majority(candidate)?) {
        (true, false) => Some(crate::results::Flip::PassToFail),
        (false, true) => Some(crate::results::Flip::FailToPass),
        _ => None,
    }
}

/// Whether a case's repeats disagree on `pass`; `None` with fewer than two repeats.
pub fn is_flaky(calls: &[Call]) -> Option<bool> {
    let (known, passed) = known_passes(calls);
    if known < 2 {
        return None;
    }
    Some(passed != 0 && passed != known)
}

/// A metric whose direction nothing set: no gate, and a name [`Metric::direction_known`] does
/// not know. Its significant change is a rise or a fall, which the report and the summary say
/// in those words (its verdict's improvement or regression is the assumed direction's).
pub fn direction_assumed(m: &crate::results::MetricResult) -> bool {
    !m.gated && !Metric::of(&m.name).direction_known()
}

/// For a metric whose direction is assumed ([`direction_assumed`]) and that changed
/// significantly, which way it went: "higher" or "lower" (the words the report uses instead
/// of improvement or regression).
pub fn assumed_change(m: &crate::results::MetricResult) -> Option<&'static str> {
    use crate::results::MetricVerdict;
    let better = match m.verdict {
        MetricVerdict::Improvement => true,
        MetricVerdict::Regression | MetricVerdict::MinorRegression => false,
        _ => return None,
    };
    direction_assumed(m).then_some(if better == (m.direction == Direction::Higher) {
        "higher"
    } else {
        "lower"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_known_for_what_promptgate_records() {
        for name in [PASS_RATE, ERROR_RATE, FLAKY_SHARE, CONSISTENCY, PII_LEAK_RATE] {
            assert_eq!(Metric::of(name).known_range(), Some((0.0, 1.0)), "{name}");
        }
        // A score a scorer records under its name has no range the name can tell (an `exec`
        // script's `relevance` on a 0–100 scale, a cosine similarity), nor has a latency or a
        // cost (the review).
        for name in [
            "relevance",
            "similarity",
            "contains",
            "preference",
            "toxicity",
            "custom_rate",
            LATENCY_P95,
            COST,
        ] {
            assert_eq!(Metric::of(name).known_range(), None, "{name}");
        }
    }

    #[test]
    fn builtins_are_known_by_name() {
        let p95 = Metric::of(LATENCY_P95);
        assert_eq!(
            (p95.quantile(), p95.unit, p95.min_units()),
            (Some(0.95), Unit::Milliseconds, 100)
        );
        assert_eq!(Metric::of(LATENCY_P50).min_units(), 10);
        assert_eq!(Metric::of("latency_p99_ms").min_units(), 500);
        assert_eq!(Metric::of("latency_p100_ms").kind, Kind::Score);
        assert_eq!(Metric::of(COST).unit, Unit::Usd);
        assert_eq!(Metric::of(COST).min_units(), MIN_UNITS_AMOUNT);
        assert_eq!(Metric::of(COST).min_units_for(Test::PairedT), MIN_UNITS_MEAN);
        assert_eq!(Metric::of(PASS_RATE).min_units(), MIN_UNITS_MEAN);
        assert_eq!(Metric::of(PASS_RATE).default_direction(), Direction::Higher);
        assert_eq!(Metric::of(ERROR_RATE).default_direction(), Direction::Lower);
        assert_eq!(Metric::of("hallucination_rate").default_direction(), Direction::Lower);
        assert_eq!(Metric::of("hallucination_rate").unit, Unit::Share);
        assert_eq!(Metric::of("judge_cost_usd").default_direction(), Direction::Lower);
        assert_eq!(Metric::of("relevance").unit, Unit::Number);
        assert!(Metric::of(PASS_RATE).default_blocking() && !Metric::of(COST).default_blocking());
    }

    /// What is not known has no value: the outcome of a call no judge or scorer could score,
    /// the cost of an errored call (it reports no usage) or of one whose model has no price.
    #[test]
    fn unknown_outcomes_and_costs_are_no_value_never_a_pass_or_free() {
        let scored = |pass: Option<bool>| Call {
            scores: pass.map(|p| ("pass".to_owned(), Score::Bool(p))).into_iter().collect(),
            list_cost_usd: 0.002,
            ..Call::default()
        };
        let pass_rate = Metric::of(PASS_RATE);
        assert_eq!(pass_rate.call_value(&scored(Some(true)), 1000), Some(1.0));
        assert_eq!(pass_rate.call_value(&scored(Some(false)), 1000), Some(0.0));
        assert_eq!(pass_rate.call_value(&scored(None), 1000), None);
        assert_eq!(
            is_flaky(&[scored(Some(true)), scored(None), scored(Some(true))]),
            Some(false)
        );
        assert_eq!(is_flaky(&[scored(Some(true)), scored(None)]), None, "one known repeat");

        let cost = Metric::of(COST);
        assert_eq!(cost.call_value(&scored(Some(true)), 1000), Some(0.002));
        let mut errored = scored(Some(false));
        errored.set_error(Some("timed out".into()));
        assert_eq!(cost.call_value(&errored, 1000), None);
        let unpriced = Call {
            unpriced: true,
            list_cost_usd: 0.0,
            ..scored(Some(true))
        };
        assert_eq!(cost.call_value(&unpriced, 1000), None);
    }

    #[test]
    fn consistency_is_one_mean_per_case_and_arm() {
        let call = |score: Option<f64>| Call {
            output: Some("x".into()),
            attempts: 1,
            scores: score
                .map(|s| (CONSISTENCY.to_owned(), Score::Number(s)))
                .into_iter()
                .collect(),
            ..Call::default()
        };
        let m = Metric::of(CONSISTENCY);
        assert_eq!(
            (m.kind, m.unit, m.default_direction()),
            (Kind::Consistency, Unit::Number, Direction::Higher)
        );
        // Three repeats scoring 0.5, 0.5 and 0 (two agree, the third agrees with neither): the
        // case's value is their mean, the mean agreement over the three pairs.
        let calls = [call(Some(0.5)), call(Some(0.5)), call(Some(0.0))];
        assert_eq!(m.values(&calls, DEFAULT_TIMEOUT_MS), vec![1.0 / 3.0]);
        assert_eq!(m.values(&[call(None)], DEFAULT_TIMEOUT_MS), Vec::<f64>::new());
        // A mean of agreements, never a proportion: the paired t even when every value is 0 or 1.
        assert!(!m.is_binary(&[]));
        assert_eq!(
            m.test(DataShape {
                binary: false,
                single: true,
                grouped: false
            }),
            Test::PairedT
        );
        assert_eq!(m.min_units(), MIN_UNITS_MEAN);
        assert_eq!(Metric::of(PII_LEAK_RATE).default_direction(), Direction::Lower);
        assert_eq!(Metric::of(PII_LEAK_RATE).unit, Unit::Share);
        assert_eq!(
            Metric::of("similarity").test(DataShape {
                binary: false,
                single: true,
                grouped: false
            }),
            Test::PairedT
        );
    }

    /// A batched call waited for its batch, not the model: it has no latency, not even an
    /// errored one's timeout; a timed call keeps its own, an errored one counts at its timeout.
    #[test]
    fn batched_calls_have_no_latency_errored_or_not() {
        let call = |batch: bool, error: Option<&str>, latency_ms: Option<f64>| Call {
            output: error.is_none().then(|| "x".into()),
            evaluation: crate::results::Evaluation {
                error: error.map(Into::into),
                ..Default::default()
            }
            .into(),
            latency_ms: latency_ms.into(),
            attempts: 1,
            batch,
            ..Call::default()
        };
        let p95 = Metric::of("latency_p95_ms");
        assert_eq!(p95.call_value(&call(true, None, None), 30_000), None);
        assert_eq!(p95.call_value(&call(true, Some("batch b expired"), None), 30_000), None);
        assert_eq!(p95.call_value(&call(false, None, Some(420.0)), 30_000), Some(420.0));
        assert_eq!(
            p95.call_value(&call(false, Some("timed out"), None), 30_000),
            Some(30_000.0)
        );
        // Errors still count as errors.
        assert_eq!(
            Metric::of(ERROR_RATE).call_value(&call(true, Some("expired"), None), 30_000),
            Some(1.0)
        );
    }

    #[test]
    fn tests_follow_the_data() {
        const ONE_CALL: DataShape = DataShape {
            binary: true,
            single: true,
            grouped: false,
        };
        let amounts = DataShape {
            binary: false,
            ..ONE_CALL
        };
        let pass = Metric::of(PASS_RATE);
        assert_eq!(pass.test(ONE_CALL), Test::McnemarExact);
        let repeats = DataShape {
            single: false,
            ..ONE_CALL
        };
        assert_eq!(pass.test(repeats), Test::PairedT, "repeats: per-case means");
        let groups = DataShape {
            grouped: true,
            ..ONE_CALL
        };
        assert_eq!(pass.test(groups), Test::PairedT, "groups: clustered means");
        assert_eq!(Metric::of(COST).test(amounts), Test::BootstrapT);
        assert_eq!(Metric::of("relevance").test(amounts), Test::PairedT);
        let grouped_calls = DataShape {
            single: false,
            grouped: true,
            ..amounts
        };
        assert_eq!(Metric::of(LATENCY_P95).test(grouped_calls), Test::SignFlip);
    }
}

/// A metric of a canary (production logs, unpaired): the one home of its direction, what it
/// estimates and how it is tested (`src/canary/analyse.rs` computes each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CanaryMetric {
    /// A latency quantile in ms; the difference of the arms' quantiles, Maritz–Jarrett
    /// standard errors.
    LatencyQuantile(u8),
    /// The Hodges–Lehmann shift of latency (Mann–Whitney's estimand).
    LatencyShift,
    ErrorRate,
    /// The ratio of mean cost per request.
    Cost,
    ThumbsDownRate,
    /// A sampled quality score, higher is better: the difference of means.
    Quality,
    HallucinationRate,
}

impl CanaryMetric {
    /// Every canary metric, in the order reports list them.
    pub const ALL: [CanaryMetric; 9] = [
        CanaryMetric::LatencyQuantile(50),
        CanaryMetric::LatencyQuantile(95),
        CanaryMetric::LatencyQuantile(99),
        CanaryMetric::LatencyShift,
        CanaryMetric::ErrorRate,
        CanaryMetric::Cost,
        CanaryMetric::ThumbsDownRate,
        CanaryMetric::Quality,
        CanaryMetric::HallucinationRate,
    ];

    pub fn of(name: &str) -> Option<CanaryMetric> {
        CanaryMetric::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            CanaryMetric::LatencyQuantile(50) => "latency_p50_ms",
            CanaryMetric::LatencyQuantile(95) => "latency_p95_ms",
            CanaryMetric::LatencyQuantile(_) => "latency_p99_ms",
            CanaryMetric::LatencyShift => "latency_shift_ms",
            CanaryMetric::ErrorRate => "error_rate",
            CanaryMetric::Cost => "cost_per_request",
            CanaryMetric::ThumbsDownRate => "thumbs_down_rate",
            CanaryMetric::Quality => "quality",
            CanaryMetric::HallucinationRate => "hallucination_rate",
        }
    }

    /// Only quality is better higher.
    pub fn default_direction(self) -> Direction {
        if self == CanaryMetric::Quality {
            Direction::Higher
        } else {
            Direction::Lower
        }
    }

    pub fn unit(self) -> Unit {
        unit_of(self.name())
    }

    /// Whether it is a share of requests (a two-proportion comparison).
    pub fn is_rate(self) -> bool {
        matches!(
            self,
            CanaryMetric::ErrorRate | CanaryMetric::ThumbsDownRate | CanaryMetric::HallucinationRate
        )
    }
}
