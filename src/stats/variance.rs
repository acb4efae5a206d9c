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
}
