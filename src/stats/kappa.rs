//! Agreement between two raters (a judge and the labels): Cohen's kappa, unweighted for
//! pass/fail and quadratic-weighted for ordinal 1–5 scores, with the large-sample standard error
//! under the alternative and its normal interval.
//!
//! Cohen, J. (1960), *Educational and Psychological Measurement* 20(1), 37–46; Cohen, J.
//! (1968), *Psychological Bulletin* 70(4), 213–220 (weighted); variances of Fleiss, J. L.,
//! Cohen, J. & Everitt, B. S. (1969), *Psychological Bulletin* 72(5), 323–327, as
//! `statsmodels.stats.inter_rater.cohens_kappa` computes them (its `std_kappa`, `kappa_low`,
//! `kappa_upp`); the interval is clipped to kappa's range [−1, 1], which statsmodels' is not.

use statrs::distribution::{ContinuousCDF, Normal};

/// How disagreements weigh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KappaWeights {
    /// Every disagreement counts fully (nominal categories, pass/fail).
    Unweighted,
    /// A disagreement counts by the squared distance of the categories (ordinal scores).
    Quadratic,
}

/// Kappa, its standard error and its interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Kappa {
    pub kappa: f64,
    pub se: f64,
    pub interval: [f64; 2],
}

/// Cohen's kappa of a square contingency table (`table[i][j]`: items rater one put in
/// category `i` and rater two in `j`; categories in order, unused ones as zero rows and
/// columns). `None` for an empty or non-square table, or when agreement by chance is total
/// (every item in one category: kappa is undefined).
pub fn cohens_kappa(table: &[Vec<f64>], weights: KappaWeights, confidence: f64) -> Option<Kappa> {
    let k = table.len();
    if k < 2 || table.iter().any(|row| row.len() != k) || !(confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    let n: f64 = table.iter().flatten().sum();
    // NaN fails every comparison, so these also refuse NaN.
    if n.is_nan() || n <= 0.0 || table.iter().flatten().any(|x| x.is_nan() || *x < 0.0) {
        return None;
    }
    let p: Vec<Vec<f64>> = table.iter().map(|row| row.iter().map(|x| x / n).collect()).collect();
    let row: Vec<f64> = p.iter().map(|r| r.iter().sum()).collect();
    let col: Vec<f64> = (0..k).map(|j| p.iter().map(|r| r[j]).sum()).collect();
    // Agreement weights w (1 on the diagonal); the unweighted kappa is w = identity.
    let w = |i: usize, j: usize| match weights {
        KappaWeights::Unweighted => f64::from(u8::from(i == j)),
        KappaWeights::Quadratic => {
            let d = (i as f64 - j as f64) / (k - 1) as f64;
            1.0 - d * d
        }
    };
    let mut observed = 0.0;
    let mut expected = 0.0;
    for i in 0..k {
        for j in 0..k {
            observed += w(i, j) * p[i][j];
            expected += w(i, j) * row[i] * col[j];
        }
    }
    if expected.is_nan() || 1.0 - expected <= 1e-12 {
        return None;
    }
    let kappa = (observed - expected) / (1.0 - expected);
    // Fleiss, Cohen & Everitt (1969), eq. 13: the weighted marginal means of w.
    let w_row: Vec<f64> = (0..k).map(|i| (0..k).map(|j| col[j] * w(i, j)).sum()).collect();
    let w_col: Vec<f64> = (0..k).map(|j| (0..k).map(|i| row[i] * w(i, j)).sum()).collect();
    let mut sum = 0.0;
    for i in 0..k {
        for j in 0..k {
            sum += p[i][j] * (w(i, j) - (w_col[j] + w_row[i]) * (1.0 - kappa)).powi(2);
        }
    }
    let variance = (sum - (kappa - expected * (1.0 - kappa)).powi(2)) / ((1.0 - expected).powi(2) * n);
    let se = variance.max(0.0).sqrt();
    let z = Normal::standard().inverse_cdf(1.0 - (1.0 - confidence) / 2.0);
    // Kappa lies in [−1, 1]; the normal interval does not know it, and near perfect agreement
    // it would claim more than perfect. Clipping keeps the coverage and drops the impossible.
    Some(Kappa {
        kappa,
        se,
        interval: [(kappa - z * se).max(-1.0), (kappa + z * se).min(1.0)],
    })
}

/// The `k × k` table of paired ratings in categories `0..k` (ratings outside are left out).
pub fn contingency(pairs: impl IntoIterator<Item = (usize, usize)>, k: usize) -> Vec<Vec<f64>> {
    let mut table = vec![vec![0.0; k]; k];
    for (a, b) in pairs {
        if a < k && b < k {
            table[a][b] += 1.0;
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn close(got: f64, expected: f64) {
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    }

    const BINARY_A: [usize; 20] = [1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 1, 0, 1];
    const BINARY_B: [usize; 20] = [1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1];
    const SCORES_A: [usize; 22] = [5, 4, 4, 3, 2, 1, 5, 3, 2, 4, 1, 5, 3, 4, 2, 5, 1, 3, 4, 2, 5, 4];
    const SCORES_B: [usize; 22] = [5, 4, 3, 3, 2, 2, 4, 3, 1, 4, 1, 5, 4, 4, 2, 5, 2, 3, 5, 2, 4, 4];

    #[test]
    fn unweighted_kappa_matches_sklearn_and_statsmodels() {
        let table = contingency(BINARY_A.into_iter().zip(BINARY_B), 2);
        assert_eq!(table, vec![vec![6.0, 2.0], vec![2.0, 10.0]]);
        let k = cohens_kappa(&table, KappaWeights::Unweighted, 0.95).unwrap();
        // sklearn.metrics.cohen_kappa_score(a, b) = 0.5833333333333333
        close(k.kappa, 0.5833333333333333);
        // statsmodels.stats.inter_rater.cohens_kappa([[6, 2], [2, 10]]):
        // std_kappa = 0.18552847232489647, kappa_low = 0.21970420946980007,
        // kappa_upp = 0.9469624571968667
        close(k.se, 0.18552847232489647);
        close(k.interval[0], 0.21970420946980007);
        close(k.interval[1], 0.9469624571968667);
    }

    #[test]
    fn weighted_kappa_matches_sklearn_and_statsmodels() {
        let pairs = SCORES_A.into_iter().zip(SCORES_B).map(|(a, b)| (a - 1, b - 1));
        let table = contingency(pairs, 5);
        let k = cohens_kappa(&table, KappaWeights::Quadratic, 0.95).unwrap();
        // sklearn.metrics.cohen_kappa_score(a, b, weights='quadratic') = 0.8929440389294404
        close(k.kappa, 0.8929440389294404);
        // statsmodels.stats.inter_rater.cohens_kappa(table, wt='quadratic'):
        // std_kappa = 0.032786876734716974, kappa_low = 0.8286829413638409,
        // kappa_upp = 0.9572051364950399
        close(k.se, 0.032786876734716974);
        close(k.interval[0], 0.8286829413638409);
        close(k.interval[1], 0.9572051364950399);
        let unweighted = cohens_kappa(&table, KappaWeights::Unweighted, 0.95).unwrap();
        // sklearn.metrics.cohen_kappa_score(a, b) = 0.5368421052631578;
        // statsmodels cohens_kappa(table).std_kappa = 0.12984679371835164
        close(unweighted.kappa, 0.5368421052631578);
        close(unweighted.se, 0.12984679371835164);
    }

    #[test]
    fn the_interval_is_clipped_to_kappas_range() {
        // statsmodels.stats.inter_rater.cohens_kappa([[5, 0], [1, 4]]): kappa = 0.8,
        // std_kappa = 0.18590320061795604, kappa_low = 0.4356364221780818,
        // kappa_upp = 1.1643635778219183 — beyond perfect agreement, so 1.
        let k = cohens_kappa(&[vec![5.0, 0.0], vec![1.0, 4.0]], KappaWeights::Unweighted, 0.95).unwrap();
        close(k.kappa, 0.8);
        close(k.se, 0.18590320061795604);
        close(k.interval[0], 0.4356364221780818);
        assert_eq!(k.interval[1], 1.0);
        // Systematic disagreement: statsmodels cohens_kappa([[1, 5], [4, 1]]): kappa =
        // -0.622950819672131, kappa_low = -1.0940492950034102 (below −1, so −1),
        // kappa_upp = -0.15185234434085176.
        let k = cohens_kappa(&[vec![1.0, 5.0], vec![4.0, 1.0]], KappaWeights::Unweighted, 0.95).unwrap();
        close(k.kappa, -0.622950819672131);
        assert_eq!(k.interval[0], -1.0);
        close(k.interval[1], -0.15185234434085176);
    }

    #[test]
    fn degenerate_tables_have_no_kappa() {
        assert_eq!(cohens_kappa(&[], KappaWeights::Unweighted, 0.95), None);
        assert_eq!(
            cohens_kappa(&[vec![0.0, 0.0], vec![0.0, 0.0]], KappaWeights::Unweighted, 0.95),
            None
        );
        // Both raters always say "pass": chance agreement is total.
        assert_eq!(
            cohens_kappa(&[vec![0.0, 0.0], vec![0.0, 9.0]], KappaWeights::Unweighted, 0.95),
            None
        );
        assert_eq!(cohens_kappa(&[vec![1.0, 0.0]], KappaWeights::Unweighted, 0.95), None);
        let perfect = cohens_kappa(&[vec![4.0, 0.0], vec![0.0, 6.0]], KappaWeights::Unweighted, 0.95).unwrap();
        assert_eq!((perfect.kappa, perfect.se), (1.0, 0.0));
    }
}
