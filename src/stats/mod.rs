//! Paired statistics for comparing a candidate prompt with its baseline.
//!
//! Pure functions over slices: no I/O, no printing, no global state, and no panics on any
//! input. Where a question has no answer (no cases, NaN in the data) functions return `None`,
//! or p = 1 where "no evidence of a difference" is the honest reading; each item's docs say
//! which. Every reference value in the tests comes from scipy 1.17.1, statsmodels 0.15.0 or
//! numpy 2.4.6, with the call that produced it written beside it.
//!
//! Methods:
//!
//! - [`mcnemar_exact`]: McNemar's test on discordant pairs of binary outcomes, exact binomial
//!   form — McNemar, Q. (1947), *Psychometrika* 12(2), 153–157.
//! - [`wilcoxon_signed_rank`]: Wilcoxon signed-rank test — Wilcoxon, F. (1945), *Biometrics
//!   Bulletin* 1(6), 80–83; zeros optionally per Pratt, J. W. (1959), *JASA* 54(287),
//!   655–667. Method choice mirrors `scipy.stats.wilcoxon(method="auto")`; see `wilcoxon.rs`.
//! - [`paired_bootstrap_mean`], [`paired_bootstrap_quantile`]: paired bootstrap over cases
//!   with percentile intervals — Efron, B. & Tibshirani, R. J. (1993), *An Introduction to
//!   the Bootstrap*, Chapman & Hall — driven by our own seeded [`Rng`] (xoshiro256**) so
//!   results never change with a dependency upgrade.
//! - [`cohens_kappa`]: Cohen's kappa, unweighted or quadratic-weighted, with the
//!   Fleiss–Cohen–Everitt (1969) standard error — a judge's agreement with labels.
//! - [`holm`]: Holm–Bonferroni step-down adjustment — Holm, S. (1979), *Scandinavian Journal
//!   of Statistics* 6(2), 65–70.
//! - [`mde_paired`]: minimum detectable effect of a paired two-sided test (normal
//!   approximation).
//! - [`paired_bootstrap_ratio`]: the same bootstrap for a relative change (cost per request).
//! - [`newcombe_paired`]: Newcombe's (1998) hybrid score interval for the difference of two
//!   paired proportions (method 10), with Wilson (1927) score intervals.
//! - [`hodges_lehmann`]: Hodges–Lehmann (1963) shift estimate with the signed-rank interval.
//! - [`tost_paired`]: Schuirmann's (1987) two one-sided tests for equivalence.
//! - [`cases_needed`]: the inverse of [`mde_paired`]; [`cases_needed_mcnemar`]: McNemar's
//!   sample size from the discordance under the alternative (Connor 1987).
//! - [`mcnemar_exact_power`], [`cases_needed_mcnemar_exact`]: the exact McNemar test's
//!   unconditional power and the sample size that reaches it, robust to the saw-tooth (Chernick
//!   & Liu 2002); [`cases_needed_signed_rank`]: [`cases_needed`] over the signed-rank test's
//!   asymptotic relative efficiency 3/π (Lehmann 1975, §4.2).
//! - [`variance_components`]: between- and within-case variance, one-way random-effects
//!   ANOVA (Searle, Casella & McCulloch 1992); [`nested_components`]: cases, generation repeats
//!   and judge repeats, the balanced nested ANOVA (Sokal & Rohlf 1995), with the variance of the
//!   mean and the best judge repeats for a spend (Cochran 1977).
//! - [`obrien_fleming_spent`], [`boundaries`], [`nominal_levels`], [`inflation`],
//!   [`sequential_power`], [`Look`]: group-sequential looks — Lan–DeMets (1983) alpha spending,
//!   O'Brien–Fleming type, two-sided boundaries by the recursive integration of Armitage,
//!   McPherson & Rowe (1969), repeated p-values (Jennison & Turnbull 2000, §9.1).
//! - [`paired_t`], [`paired_ratio`]: the paired t-test of a mean difference, cluster-robust
//!   when cases are grouped (Miller 2024), and Fieller's (1954) interval of the ratio of means
//!   — its inversion; [`paired_t_power`], [`cases_needed_t`], [`mde_t`]: its exact power by
//!   the noncentral t ([`noncentral_t_cdf`], Lenth 1989, AS 243) and the plans from it.
//! - [`sign_flip_quantile`], [`unit_bootstrap_quantile`]: quantiles over calls compared by a
//!   within-pair sign-flip permutation test (exact up to 2^16 arrangements) and a bootstrap over
//!   whole units; [`expanded_alpha`]: Hesterberg's (2015) small-sample widening of percentile
//!   intervals.
//! - [`studentized_mean`], [`studentized_ratio`]: the bootstrap-t (Hall 1992) of a mean
//!   difference and of a ratio of means, for skewed amounts such as cost.
//! - Unpaired, for canaries on production logs (`unpaired.rs`): [`mann_whitney`],
//!   [`hodges_lehmann_shift`] (Hollander & Wolfe 1999, §4.3), [`maritz_jarrett_se`] (Maritz &
//!   Jarrett 1978), [`agresti_caffo`] (Agresti & Caffo 2000), [`welch_z`], [`mean_ratio`].
//! - [`mixture_sequence`]: the normal-mixture confidence sequence and always-valid p-value
//!   (Robbins 1970; Johari et al. 2017; Howard et al. 2021) — anytime-valid canary looks.
//! - [`mean`], [`std_dev`], [`quantile`]: descriptive statistics; quantiles are numpy's
//!   default "linear" (Hyndman & Fan 1996, type 7).
//!
//! Distributions come from `statrs`; only the tests it lacks are written here.

mod bootstrap;
mod confseq;
mod describe;
mod equivalence;
mod hodges_lehmann;
mod holm;
mod inversion;
mod kappa;
mod mcnemar;
mod nct;
mod permutation;
mod power;
mod proportion;
#[cfg(test)]
mod proptests;
mod rng;
mod sequential;
mod studentized;
mod ttest;
mod unpaired;
mod variance;
mod wilcoxon;

pub use bootstrap::{
    Bootstrap, Draws, paired_bootstrap_mean, paired_bootstrap_mean_draws, paired_bootstrap_quantile,
    paired_bootstrap_quantile_draws, paired_bootstrap_ratio,
};
pub use confseq::{Sequential, mixture_radius, mixture_sequence};
pub use describe::{mean, quantile, quantile_sorted, std_dev};
pub use equivalence::{Tost, tost_paired};
pub use hodges_lehmann::{HodgesLehmann, hodges_lehmann};
pub use holm::holm;
pub use inversion::QuantileTest;
pub use kappa::{Kappa, KappaWeights, cohens_kappa, contingency};
pub use mcnemar::mcnemar_exact;
pub use nct::noncentral_t_cdf;
pub use permutation::{
    EXACT_UNITS, PairedUnit, QuantileDraws, SignFlip, expanded_alpha, sign_flip_quantile, unit_bootstrap_one_quantile,
    unit_bootstrap_quantile,
};
pub use power::{
    MAX_EXACT_CASES, cases_needed, cases_needed_mcnemar, cases_needed_mcnemar_exact, cases_needed_signed_rank,
    cases_needed_t, mcnemar_exact_power, mde_paired, mde_t, paired_t_power,
};
pub use proportion::{PairedCounts, newcombe_paired, wilson_interval};
pub use rng::{GOLDEN_GAMMA, Rng, SplitMix64, fnv1a, mix64};
pub use sequential::{Look, boundaries, inflation, nominal_levels, obrien_fleming_spent, sequential_power};
pub use studentized::{Studentized, studentized_mean, studentized_ratio};
pub use ttest::{MeanTest, Ratio, paired_ratio, paired_t};
pub use unpaired::{
    Estimate, MannWhitney, agresti_caffo, hodges_lehmann_shift, mann_whitney, maritz_jarrett_se, mean_ratio, mean_var,
    one_value, separation_p, separation_smallest_p, welch_z,
};
pub use variance::{NestedComponents, VarianceComponents, nested_components, variance_components};
pub use wilcoxon::{Wilcoxon, WilcoxonMethod, ZeroMethod, wilcoxon_signed_rank};
