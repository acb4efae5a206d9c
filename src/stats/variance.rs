//! Variance components of repeated measurements: how much of a metric's spread is between
//! cases (what the suite measures) and how much within a case (the model's non-determinism).
//!
//! One-way random-effects ANOVA, method-of-moments estimators for unbalanced groups (Searle,
//! S. R., Casella, G. & McCulloch, C. E. (1992), *Variance Components*, Wiley, §3.6):
//! `within = MSW`, `between = max(0, (MSB − MSW) / n₀)` with
//! `n₀ = (N − Σ nᵢ² / N) / (a − 1)`.

use super::describe::all_finite;

#[derive(Clone, Debug, PartialEq)]
pub struct VarianceComponents {
    /// Variance of the true per-case values across cases.
    pub between: f64,
    /// Variance of repeats around their case's value (non-determinism); `None` when no case
    /// has two repeats.
    pub within: Option<f64>,
    /// Cases (groups) used.
    pub groups: usize,
}

/// Variance components of `groups`, one slice of repeats per case; empty groups are ignored.
///
/// `None` with fewer than two non-empty groups or any non-finite value.
pub fn variance_components(groups: &[&[f64]]) -> Option<VarianceComponents> {
    let groups: Vec<&[f64]> = groups.iter().copied().filter(|g| !g.is_empty()).collect();
    let a = groups.len();
    if a < 2 || !groups.iter().all(|g| all_finite(g)) {
        return None;
    }
    let total: usize = groups.iter().map(|g| g.len()).sum();
    let nf = total as f64;
    let means: Vec<f64> = groups.iter().map(|g| g.iter().sum::<f64>() / g.len() as f64).collect();
    let grand = groups.iter().flat_map(|g| g.iter()).sum::<f64>() / nf;
    let ssw: f64 = groups
        .iter()
        .zip(&means)
        .map(|(g, m)| g.iter().map(|x| (x - m).powi(2)).sum::<f64>())
        .sum();
    let ssb: f64 = groups
        .iter()
        .zip(&means)
        .map(|(g, m)| g.len() as f64 * (m - grand).powi(2))
        .sum();
    let msb = ssb / (a - 1) as f64;
    let within = (total > a).then(|| ssw / (total - a) as f64);
    let n0 = (nf - groups.iter().map(|g| (g.len() as f64).powi(2)).sum::<f64>() / nf) / (a - 1) as f64;
    let between = (msb - within.unwrap_or(0.0)) / n0;
    Some(VarianceComponents {
        between: between.max(0.0),
        within,
        groups: a,
    })
}

/// Variance components of a balanced two-stage nested design: cases, outputs within a case
/// (generation repeats), judgements within an output (judge repeats).
#[derive(Clone, Debug, PartialEq)]
pub struct NestedComponents {
    /// Variance of the true per-case values across cases.
    pub case: f64,
    /// Variance of a case's outputs around its value (the model's non-determinism); `None`
    /// with one output per case, where it cannot be told apart from `case` (which then holds
    /// both).
    pub generation: Option<f64>,
    /// Variance of one output's judgements around their mean (the judge's non-determinism).
    pub judge: f64,
    /// Cases, outputs per case, judgements per output.
    pub cases: usize,
    pub repeats: usize,
    pub judgements: usize,
}

impl NestedComponents {
    /// The variance of the mean over `n` cases of `r` outputs judged `k` times each:
    /// σ²_case/n + σ²_gen/(n·r) + σ²_judge/(n·r·k).
    #[must_use]
    pub fn variance_of_mean(&self, n: f64, r: f64, k: f64) -> f64 {
        self.case / n + self.generation.unwrap_or(0.0) / (n * r) + self.judge / (n * r * k)
    }

    /// The judge repeats per output that make the mean's variance smallest for a given spend,
    /// when an output costs `generation_cost` and a judgement `judge_cost`: minimising
    /// (A + B/k)(c_g + k·c_j), with A = σ²_case + σ²_gen/r and B = σ²_judge/r, gives
    /// k* = √(B·c_g / (A·c_j)) — the optimal subsample size of two-stage sampling (Cochran,
    /// W. G. (1977), *Sampling Techniques*, 3rd ed., Wiley, §10.6). Infinite when the cases and
    /// outputs do not vary at all; 0 when the judge does not.
    #[must_use]
    pub fn best_judge_repeats(&self, generation_cost: f64, judge_cost: f64) -> f64 {
        let r = self.repeats as f64;
        let a = self.case + self.generation.unwrap_or(0.0) / r;
        let b = self.judge / r;
        if b <= 0.0 {
            return 0.0;
        }
        if a <= 0.0 || judge_cost <= 0.0 {
            return f64::INFINITY;
        }
        (b * generation_cost / (a * judge_cost)).sqrt()
    }
}

/// Variance components of `cases[i][j][l]`, judgement `l` of output `j` of case `i`, by the
/// expected mean squares of the balanced nested analysis of variance (Sokal, R. R. & Rohlf,
/// F. J. (1995), *Biometry*, 3rd ed., Freeman, §10.2; Montgomery, D. C., *Design and Analysis
/// of Experiments*, §14.1): with `a` cases, `r` outputs each and `k` judgements each,
/// E[MS_judge] = σ²_J, E[MS_output] = σ²_J + k·σ²_G, E[MS_case] = σ²_J + k·σ²_G + r·k·σ²_C.
/// A negative estimate is reported as 0 (the component is too small to see).
///
/// `None` unless the design is balanced (every case `r` outputs, every output `k ≥ 2`
/// judgements), there are two cases or more, and every value is finite: the caller keeps the
/// complete cases.
pub fn nested_components(cases: &[Vec<Vec<f64>>]) -> Option<NestedComponents> {
    let a = cases.len();
    let r = cases.first()?.len();
    let k = cases.first()?.first()?.len();
    let balanced = cases
        .iter()
        .all(|outputs| outputs.len() == r && outputs.iter().all(|j| j.len() == k && all_finite(j)));
    if a < 2 || r == 0 || k < 2 || !balanced {
        return None;
    }
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let output_means: Vec<Vec<f64>> = cases.iter().map(|o| o.iter().map(|j| mean(j)).collect()).collect();
    let case_means: Vec<f64> = output_means.iter().map(|m| mean(m)).collect();
    let grand = mean(&case_means);
    let (af, rf, kf) = (a as f64, r as f64, k as f64);
    let ss_case = rf * kf * case_means.iter().map(|m| (m - grand).powi(2)).sum::<f64>();
    let ss_output = kf
        * output_means
            .iter()
            .zip(&case_means)
            .map(|(outputs, c)| outputs.iter().map(|m| (m - c).powi(2)).sum::<f64>())
            .sum::<f64>();
    let ss_judge: f64 = cases
        .iter()
        .zip(&output_means)
        .flat_map(|(outputs, means)| outputs.iter().zip(means))
        .map(|(judgements, m)| judgements.iter().map(|x| (x - m).powi(2)).sum::<f64>())
        .sum();
    let ms_case = ss_case / (af - 1.0);
    let ms_judge = ss_judge / (af * rf * (kf - 1.0));
    let (case, generation) = if r > 1 {
        let ms_output = ss_output / (af * (rf - 1.0));
        (
            (ms_case - ms_output) / (rf * kf),
            Some(((ms_output - ms_judge) / kf).max(0.0)),
        )
    } else {
        ((ms_case - ms_judge) / kf, None)
    };
    Some(NestedComponents {
        case: case.max(0.0),
        generation,
        judge: ms_judge,
        cases: a,
        repeats: r,
        judgements: k,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_anova_estimators() {
        // numpy, for groups [[1,0,1],[0,0,0],[1,1,1],[0.5,0.75,1],[0.2,0.4]]:
        // msw = sum(((g - mean(g))**2).sum())/(N - a); msb = sum(len(g)*(mean(g) - gm)**2)/(a - 1);
        // n0 = (N - sum(len(g)**2)/N)/(a - 1); between = max(0, (msb - msw)/n0)
        // -> within 0.0901851851851852, between 0.1290948480531814
        let groups: [&[f64]; 5] = [
            &[1.0, 0.0, 1.0],
            &[0.0, 0.0, 0.0],
            &[1.0, 1.0, 1.0],
            &[0.5, 0.75, 1.0],
            &[0.2, 0.4],
        ];
        let v = variance_components(&groups).unwrap();
        assert!((v.within.unwrap() - 0.090_185_185_185_185_2).abs() < 1e-14, "{v:?}");
        assert!((v.between - 0.129_094_848_053_181_4).abs() < 1e-14, "{v:?}");
        assert_eq!(v.groups, 5);
    }

    #[test]
    fn single_repeats_have_no_within_variance() {
        // numpy.var([1.0, 2.0, 4.0], ddof=1) -> 2.3333333333333335: with one repeat per case
        // all spread is between cases.
        let v = variance_components(&[&[1.0], &[2.0], &[4.0]]).unwrap();
        assert_eq!(v.within, None);
        assert!((v.between - 2.333_333_333_333_333_5).abs() < 1e-14);
        // Pure noise: every case has the same mean, so between is clamped at zero.
        let v = variance_components(&[&[0.0, 1.0], &[1.0, 0.0]]).unwrap();
        assert_eq!((v.between, v.within), (0.0, Some(0.5)));
        assert_eq!(variance_components(&[&[1.0, 2.0]]), None);
        assert_eq!(variance_components(&[&[1.0], &[f64::NAN]]), None);
    }

    /// Five cases × two outputs × three judgements (judge scores scaled (s − 1)/4).
    fn judged() -> Vec<Vec<Vec<f64>>> {
        vec![
            vec![vec![1.00, 0.75, 1.00], vec![0.75, 0.75, 0.50]],
            vec![vec![0.25, 0.50, 0.25], vec![0.50, 0.50, 0.75]],
            vec![vec![0.75, 1.00, 1.00], vec![1.00, 1.00, 0.75]],
            vec![vec![0.00, 0.25, 0.25], vec![0.50, 0.25, 0.25]],
            vec![vec![0.50, 0.75, 0.50], vec![0.25, 0.50, 0.50]],
        ]
    }

    #[test]
    fn nested_components_match_statsmodels_reml_on_a_balanced_design() {
        // statsmodels 0.15.0, the same data as a long table (case, rep, judge, y):
        // smf.mixedlm("y ~ 1", df, groups="case", re_formula="1",
        //             vc_formula={"rep": "0 + C(rep)"}).fit(reml=True)
        // -> cov_re 0.06302077981302498 (case), vcomp[0] 0.011111077483283733 (generation),
        //    scale 0.020833345784025847 (judge).
        // On balanced data with positive estimates REML equals the ANOVA estimators; the
        // difference left is the optimiser's tolerance.
        let v = nested_components(&judged()).unwrap();
        assert!((v.case - 0.063_020_779_813_024_98).abs() < 1e-6, "{v:?}");
        assert!(
            (v.generation.unwrap() - 0.011_111_077_483_283_733).abs() < 1e-6,
            "{v:?}"
        );
        assert!((v.judge - 0.020_833_345_784_025_847).abs() < 1e-6, "{v:?}");
        assert_eq!((v.cases, v.repeats, v.judgements), (5, 2, 3));
    }

    #[test]
    fn one_output_per_case_leaves_generation_inside_case() {
        // One output per case and three judgements is the one-way design of
        // `variance_components`: the same estimators, over judgements.
        let data: Vec<Vec<Vec<f64>>> = judged().into_iter().map(|outputs| vec![outputs[0].clone()]).collect();
        let v = nested_components(&data).unwrap();
        let groups: Vec<&[f64]> = data.iter().map(|o| o[0].as_slice()).collect();
        let one_way = variance_components(&groups).unwrap();
        assert_eq!(v.generation, None);
        assert!((v.case - one_way.between).abs() < 1e-15);
        assert!((v.judge - one_way.within.unwrap()).abs() < 1e-15);
    }

    #[test]
    fn nested_components_need_a_balanced_design_with_judge_repeats() {
        let mut ragged = judged();
        ragged[2][1].pop();
        assert_eq!(nested_components(&ragged), None);
        let once: Vec<Vec<Vec<f64>>> = vec![vec![vec![1.0]], vec![vec![0.0]]];
        assert_eq!(
            nested_components(&once),
            None,
            "one judgement per output: no judge variance"
        );
        assert_eq!(nested_components(&judged()[..1]), None, "one case");
        assert_eq!(nested_components(&[]), None);
        // A judge that always agrees with itself has no variance; generation noise hidden by
        // a larger judge noise is clamped at 0.
        let steady = vec![
            vec![vec![1.0, 1.0], vec![0.0, 0.0]],
            vec![vec![1.0, 1.0], vec![1.0, 1.0]],
        ];
        let v = nested_components(&steady).unwrap();
        assert_eq!(v.judge, 0.0);
        let noisy = vec![
            vec![vec![0.0, 1.0], vec![1.0, 0.0]],
            vec![vec![1.0, 0.0], vec![0.0, 1.0]],
        ];
        let v = nested_components(&noisy).unwrap();
        assert_eq!((v.case, v.generation), (0.0, Some(0.0)));
        assert_eq!(v.judge, 0.5);
    }

    #[test]
    fn the_variance_of_the_mean_and_the_best_split_follow_the_design() {
        let v = NestedComponents {
            case: 0.04,
            generation: Some(0.02),
            judge: 0.08,
            cases: 50,
            repeats: 2,
            judgements: 2,
        };
        // 0.04/50 + 0.02/100 + 0.08/200 = 0.0008 + 0.0002 + 0.0004
        assert!((v.variance_of_mean(50.0, 2.0, 2.0) - 0.0014).abs() < 1e-15);
        // A = 0.04 + 0.02/2 = 0.05, B = 0.08/2 = 0.04: k* = √(0.04·c_g / (0.05·c_j)).
        // Equal costs: √0.8 = 0.894…; a judgement a tenth of an output's cost: √8 = 2.828….
        assert!((v.best_judge_repeats(1.0, 1.0) - 0.8_f64.sqrt()).abs() < 1e-15);
        assert!((v.best_judge_repeats(1.0, 0.1) - 8.0_f64.sqrt()).abs() < 1e-12);
        let quiet_judge = NestedComponents {
            judge: 0.0,
            ..v.clone()
        };
        assert_eq!(quiet_judge.best_judge_repeats(1.0, 1.0), 0.0);
        let identical_cases = NestedComponents {
            case: 0.0,
            generation: Some(0.0),
            ..v
        };
        assert_eq!(identical_cases.best_judge_repeats(1.0, 1.0), f64::INFINITY);
    }
}
