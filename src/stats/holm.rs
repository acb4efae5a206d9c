//! Holm–Bonferroni step-down adjustment for several tests in one decision (Holm 1979).

/// Holm-adjusted p-values, in the input order, monotone in the raw p-values and capped at 1.
///
/// Sorting ascending, the i-th smallest (0-based) becomes `max over j ≤ i of (m − j)·p₍ⱼ₎`,
/// as `statsmodels.stats.multitest.multipletests(p, method="holm")[1]` and R's
/// `p.adjust(p, "holm")` compute it. A NaN p-value — a bug upstream, but never a reason to
/// panic — is treated as 1 and still counts towards `m`, the conservative reading; values
/// outside `[0, 1]` are clamped into it.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let clean: Vec<f64> = p_values
        .iter()
        .map(|&p| if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) })
        .collect();
    let mut order: Vec<usize> = (0..m).collect();
    // A stable sort keeps tied p-values in input order; ties get equal adjusted values anyway.
    order.sort_by(|&i, &j| clean[i].total_cmp(&clean[j]));
    let mut adjusted = vec![1.0; m];
    let mut running_max: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running_max = running_max.max(((m - rank) as f64 * clean[i]).min(1.0));
        adjusted[i] = running_max;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(p: &[f64], expected: &[f64]) {
        let actual = holm(p);
        assert_eq!(actual.len(), expected.len(), "{p:?}");
        for (a, e) in actual.iter().zip(expected) {
            assert!(
                (a - e).abs() <= 1e-12,
                "holm({p:?}) = {actual:?}, reference {expected:?}"
            );
        }
    }

    #[test]
    fn matches_statsmodels() {
        // statsmodels.stats.multitest.multipletests(p, method="holm")[1] for each p below.
        // [0.01, 0.04, 0.03, 0.005] -> [0.03, 0.06, 0.06, 0.02]
        check(&[0.01, 0.04, 0.03, 0.005], &[0.03, 0.06, 0.06, 0.02]);
        // [0.5] -> [0.5]
        check(&[0.5], &[0.5]);
        // [0.01, 0.01, 0.02] -> [0.03, 0.03, 0.03]
        check(&[0.01, 0.01, 0.02], &[0.03, 0.03, 0.03]);
        // [0.2, 0.3, 0.9, 0.04, 0.001] -> [0.6000000000000001, 0.6000000000000001, 0.9, 0.16, 0.005]
        check(&[0.2, 0.3, 0.9, 0.04, 0.001], &[0.6, 0.6, 0.9, 0.16, 0.005]);
        // [1.0, 1.0] -> [1.0, 1.0]
        check(&[1.0, 1.0], &[1.0, 1.0]);
        // [0.02, 0.5, 0.049] -> [0.06, 0.5, 0.098]
        check(&[0.02, 0.5, 0.049], &[0.06, 0.5, 0.098]);
        check(&[], &[]);
    }

    #[test]
    fn degenerate_inputs_are_conservative() {
        // NaN is read as 1 and counts towards m: same as
        // multipletests([0.01, 1.0, 0.02], method="holm")[1] -> [0.03, 1.0, 0.04]
        check(&[0.01, f64::NAN, 0.02], &[0.03, 1.0, 0.04]);
        // Out-of-range values are clamped first: multipletests([0.0, 1.0], method="holm")[1]
        // -> [0.0, 1.0]
        check(&[-0.5, 7.0], &[0.0, 1.0]);
    }
}
