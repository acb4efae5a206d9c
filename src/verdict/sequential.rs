//! The stop rule of a sequential run: looks at equal shares of each experiment's cases in a
//! seeded order, judged against two-sided Lan–DeMets O'Brien–Fleming-type boundaries (see
//! docs/statistics.md). The command runs the batches; this module says which cases each look
//! adds, whether a look settles the verdict, and what the results record of the design.

use std::collections::BTreeMap;

use crate::results::{ExperimentResult, ExperimentStatus, MetricVerdict, Results, SequentialSummary};
use crate::stats;

use super::decide::{accepts_at, sequential_settled};

/// The looks of a sequential design: where they fall and the nominal level of each.
#[derive(Clone, Debug)]
pub struct Design {
    /// Cumulative shares of the cases, the last 1.
    pub fractions: Vec<f64>,
    /// Two-sided nominal level of each look.
    pub levels: Vec<f64>,
    /// R: the cases the design needs, as a multiple of the fixed design's, for the same power.
    pub inflation: Option<f64>,
}

impl Design {
    /// `looks` equal shares at overall level `alpha`.
    pub fn new(alpha: f64, looks: u32) -> Design {
        let looks = looks.max(1);
        let fractions: Vec<f64> = (1..=looks).map(|k| f64::from(k) / f64::from(looks)).collect();
        let levels = stats::nominal_levels(alpha, &fractions).unwrap_or_else(|| vec![alpha; fractions.len()]);
        let inflation = stats::inflation(alpha, &fractions, 0.8);
        Design {
            fractions,
            levels,
            inflation,
        }
    }

    /// The look after `k` looks (0-based), for intervals at its nominal level.
    pub fn look(&self, k: usize) -> Option<stats::Look> {
        stats::Look::new(self.fractions[..=k].to_vec())
    }
}

/// Each experiment's cases in a seeded random order: `(experiment, case) → (rank, cases)`.
/// `cases` lists each experiment's case indexes.
pub fn case_order(cases: &BTreeMap<usize, Vec<usize>>, seed: u64) -> BTreeMap<(usize, usize), (usize, usize)> {
    let mut position = BTreeMap::new();
    for (ei, cases) in cases {
        let mut cases = cases.clone();
        let mut rng = stats::Rng::new(seed ^ (*ei as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9));
        // Fisher–Yates with our own generator, so the order never changes with a dependency.
        for i in (1..cases.len()).rev() {
            cases.swap(i, rng.below(i + 1));
        }
        for (rank, case) in cases.iter().enumerate() {
            position.insert((*ei, *case), (rank, cases.len()));
        }
    }
    position
}

/// Cases of `n` seen by the look at share `t`.
pub fn upto(t: f64, n: usize) -> usize {
    (t * n as f64).ceil() as usize
}

/// Whether the look at nominal `level` settles every compared experiment's verdict. Without a
/// baseline there is nothing to settle: every case runs.
pub fn settled(results: &Results, level: f64) -> bool {
    settled_experiments(&results.experiments, level)
}

/// [`settled`] over the experiments themselves (the calibration bench judges without a whole
/// `Results`).
pub fn settled_experiments(experiments: &[ExperimentResult], level: f64) -> bool {
    let compared = || {
        experiments
            .iter()
            .filter(|e| e.baseline.is_some() && e.status != ExperimentStatus::Removed)
    };
    compared().next().is_some() && compared().all(|e| sequential_settled(&e.metrics, accepts_at(level)))
}

/// What a sequential run's results record: per experiment the looks made (its cases counted in
/// `cases`, calls made and planned in `calls`), and the plans inflated by R.
pub fn record(
    results: &mut Results,
    design: &Design,
    looks_made: usize,
    cases: &BTreeMap<usize, usize>,
    calls: &BTreeMap<usize, (usize, usize)>,
) {
    let last = looks_made == design.fractions.len();
    for (ei, e) in results.experiments.iter_mut().enumerate() {
        let Some(&n) = cases.get(&ei) else { continue };
        for m in &mut e.metrics {
            // The fixed design's plan needs R times the cases to keep its power with looks.
            if let Some(r) = design.inflation {
                m.details.cases_needed = m.details.cases_needed.map(|c| (c as f64 * r).ceil() as usize);
            }
            // A metric settled at an early look was seen well enough: its smallest detectable
            // effect describes that look's few cases, not a weak suite.
            if !last && (m.non_inferior || m.verdict == MetricVerdict::Regression) {
                m.details.underpowered = false;
            }
        }
        let (made, planned) = calls.get(&ei).copied().unwrap_or_default();
        e.noise.sequential = Some(SequentialSummary {
            looks: design.fractions[..looks_made].iter().map(|&t| upto(t, n)).collect(),
            look_alphas: design.levels[..looks_made].to_vec(),
            inflation: design.inflation,
            stopped_early: !last,
            calls_made: made,
            calls_planned: planned,
        });
    }
}
