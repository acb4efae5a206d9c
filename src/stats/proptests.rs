//! Property tests for invariants every paired method must satisfy, whatever the data.

use proptest::prelude::*;

use super::*;

/// Values on a dyadic grid, so `(c + k) − (b + k) == c − b` holds exactly in floating point.
fn grid() -> impl Strategy<Value = f64> {
    (-64i32..=64).prop_map(|i| f64::from(i) / 8.0)
}

fn paired(max: usize) -> impl Strategy<Value = (Vec<f64>, Vec<f64>)> {
    (1..=max).prop_flat_map(|n| (prop::collection::vec(grid(), n), prop::collection::vec(grid(), n)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn p_values_are_probabilities((b, c) in paired(40), low in -2.0f64..0.0, width in 0.01f64..4.0) {
        let d: Vec<f64> = c.iter().zip(&b).map(|(c, b)| c - b).collect();
        let w = wilcoxon_signed_rank(&d, ZeroMethod::Wilcox).p_value;
        prop_assert!((0.0..=1.0).contains(&w), "wilcoxon {w}");
        let worse = b.iter().zip(&c).filter(|(b, c)| b > c).count() as u64;
        let better = b.iter().zip(&c).filter(|(b, c)| b < c).count() as u64;
        let m = mcnemar_exact(worse, better);
        prop_assert!((0.0..=1.0).contains(&m), "mcnemar {m}");
        if let Some(t) = tost_paired(&d, low, low + width) {
            prop_assert!((0.0..=1.0).contains(&t.p_value), "tost {t:?}");
        }
        let adjusted = holm(&[w, m]);
        prop_assert!(adjusted.iter().all(|p| (0.0..=1.0).contains(p)));
    }

    #[test]
    fn swapping_arms_mirrors_effects_and_intervals((b, c) in paired(40)) {
        let d: Vec<f64> = c.iter().zip(&b).map(|(c, b)| c - b).collect();
        let minus: Vec<f64> = d.iter().map(|x| -x).collect();
        let (f, s) = (hodges_lehmann(&d, 0.95).unwrap(), hodges_lehmann(&minus, 0.95).unwrap());
        let near = |x: f64, y: f64| (x - y).abs() <= 1e-12 * (1.0 + x.abs());
        prop_assert!(near(s.estimate, -f.estimate) && near(s.ci[0], -f.ci[1]) && near(s.ci[1], -f.ci[0]), "{f:?} {s:?}");
        prop_assert!(f.ci[0] <= f.estimate && f.estimate <= f.ci[1], "{f:?}");
        let (wf, ws) = (wilcoxon_signed_rank(&d, ZeroMethod::Wilcox), wilcoxon_signed_rank(&minus, ZeroMethod::Wilcox));
        prop_assert_eq!(wf.p_value, ws.p_value);
        let count = |pred: fn(bool, bool) -> bool| b.iter().zip(&c).filter(|(b, c)| pred(**b > 0.0, **c > 0.0)).count() as u64;
        let counts = PairedCounts {
            both: count(|b, c| b && c),
            baseline_only: count(|b, c| b && !c),
            candidate_only: count(|b, c| !b && c),
            neither: count(|b, c| !b && !c),
        };
        let swapped = PairedCounts { baseline_only: counts.candidate_only, candidate_only: counts.baseline_only, ..counts };
        let (nf, ns) = (newcombe_paired(counts, 0.95).unwrap(), newcombe_paired(swapped, 0.95).unwrap());
        prop_assert!((nf[0] + ns[1]).abs() < 1e-12 && (nf[1] + ns[0]).abs() < 1e-12, "{nf:?} {ns:?}");
        let diff = counts.difference().unwrap();
        prop_assert!(nf[0] <= diff + 1e-12 && diff <= nf[1] + 1e-12, "{nf:?} {diff}");
        if let (Some(tf), Some(ts)) = (tost_paired(&d, -0.5, 0.5), tost_paired(&minus, -0.5, 0.5)) {
            prop_assert!((tf.p_value - ts.p_value).abs() < 1e-12);
        }
    }

    #[test]
    fn shifting_both_arms_changes_nothing((b, c) in paired(30), k in grid()) {
        let shift = |xs: &[f64]| -> Vec<f64> { xs.iter().map(|x| x + k * 4.0).collect() };
        let (bk, ck) = (shift(&b), shift(&c));
        let d: Vec<f64> = c.iter().zip(&b).map(|(c, b)| c - b).collect();
        let dk: Vec<f64> = ck.iter().zip(&bk).map(|(c, b)| c - b).collect();
        prop_assert_eq!(&d, &dk);
        let (f, s) = (paired_bootstrap_mean(&b, &c, 0.9, 200, 7).unwrap(), paired_bootstrap_mean(&bk, &ck, 0.9, 200, 7).unwrap());
        prop_assert!((f.estimate - s.estimate).abs() < 1e-9 && (f.ci[0] - s.ci[0]).abs() < 1e-9 && (f.ci[1] - s.ci[1]).abs() < 1e-9);
        prop_assert_eq!(f.p_value, s.p_value);
    }

    #[test]
    fn identical_arms_show_no_difference(b in prop::collection::vec(grid(), 1..40)) {
        let d = vec![0.0; b.len()];
        prop_assert_eq!(wilcoxon_signed_rank(&d, ZeroMethod::Wilcox).p_value, 1.0);
        prop_assert_eq!(mcnemar_exact(0, 0), 1.0);
        let boot = paired_bootstrap_mean(&b, &b, 0.95, 200, 1).unwrap();
        prop_assert_eq!((boot.estimate, boot.ci, boot.p_value), (0.0, [0.0, 0.0], 1.0));
        prop_assert_eq!(hodges_lehmann(&d, 0.95).unwrap(), HodgesLehmann { estimate: 0.0, ci: [0.0, 0.0] });
    }
}
