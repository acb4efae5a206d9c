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
//! - [`holm`]: Holm–Bonferroni step-down adjustment — Holm, S. (1979), *Scandinavian Journal
//!   of Statistics* 6(2), 65–70.
//! - [`mde_paired`]: minimum detectable effect of a paired two-sided test (normal
//!   approximation).
//! - [`mean`], [`std_dev`], [`quantile`]: descriptive statistics; quantiles are numpy's
//!   default "linear" (Hyndman & Fan 1996, type 7).
//!
//! Distributions come from `statrs`; only the tests it lacks are written here.

mod bootstrap;
mod describe;
mod holm;
mod mcnemar;
mod power;
mod rng;
mod wilcoxon;

pub use bootstrap::{Bootstrap, paired_bootstrap_mean, paired_bootstrap_quantile};
pub use describe::{mean, quantile, std_dev};
pub use holm::holm;
pub use mcnemar::mcnemar_exact;
pub use power::mde_paired;
pub use rng::Rng;
pub use wilcoxon::{Wilcoxon, WilcoxonMethod, ZeroMethod, wilcoxon_signed_rank};
