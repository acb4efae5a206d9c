//! Quantiles over calls, compared within pairs: the sign-flip permutation test and the
//! bootstrap over whole units, for metrics such as p95 latency.
//!
//! A unit is a case (or a cluster of cases) with its calls in both arms, repeats included.
//! The statistic is `Q_q(candidate calls) − Q_q(baseline calls)` over every call of the units
//! compared: the quantile a user's requests see, not a quantile of per-case means. Under "no
//! change" a unit's two arms are exchangeable, so swapping them (a sign flip) leaves the
//! statistic's distribution unchanged; the test compares the observed statistic with all 2^G
//! swaps when there are few units, else with seeded random ones (Good, P. (2005), *Permutation,
//! Parametric and Bootstrap Tests of Hypotheses*, 3rd ed., Springer, §3.3). The p-value is exact
//! at every n, however skewed the latencies.
//!
//! A quantile reads a few order statistics, so many swaps leave it where it was (those of units
//! whose calls lie away from it): its difference ties the observed one in a large share of the
//! arrangements, and with tied values (a pipeline that reports the same latency every call)
//! in most of them — a uniform 100 → 300 ms slowdown of 40 cases tied in all arrangements
//! with more than half the units unswapped, p = 0.88. A tie is broken by the difference of the
//! arms' means where the quantiles differ: the statistic is the pair (|ΔQ|, |Δmean| when
//! ΔQ ≠ 0, else 0), ordered lexicographically — still a function of the arrangement alone, so
//! the test stays exact (Good §3.3 again); that 100 → 300 ms slowdown now p = 2/2^40. An
//! observed ΔQ of 0 is reached by every arrangement (p = 1): the test never calls its own
//! estimate significant.
//!
//! The interval resamples whole units with replacement (Davison, A. C. & Hinkley, D. V. (1997),
//! *Bootstrap Methods and their Application*, §3.8, the cluster bootstrap), so repeats stay with
//! their case; callers widen it for small samples with [`expanded_alpha`].

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use super::bootstrap::Draws;
use super::describe::{all_finite, lerp};
use super::rng::Rng;

/// Enumerate every arrangement up to this many units (2^16 = 65,536), else draw.
pub const EXACT_UNITS: usize = 16;

/// One unit's calls: baseline values, candidate values. The functions below take any storage
/// of a unit's values (`Vec`, slices borrowed from a larger array, `Cow`), so a caller holding
/// every call in one array lends slices of it instead of copying each unit out.
pub type PairedUnit = (Vec<f64>, Vec<f64>);

/// The result of a sign-flip permutation test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SignFlip {
    /// The observed statistic, `Q(candidate) − Q(baseline)`.
    pub estimate: f64,
    /// Two-sided: the share of arrangements whose |statistic| reaches the observed one; with
    /// random draws `(1 + count) / (1 + draws)`, never 0.
    pub p_value: f64,
    /// Arrangements compared (2^G when exact).
    pub arrangements: usize,
    pub exact: bool,
}

/// The sign-flip permutation test of the `q` quantile difference over `units`.
///
/// Exact (all 2^G swaps) when G ≤ [`EXACT_UNITS`], else `draws` random swaps from `seed`. `None`
/// without units, with a unit missing an arm, a non-finite value, or `q` outside [0, 1].
pub fn sign_flip_quantile<U: AsRef<[f64]>>(units: &[(U, U)], q: f64, draws: usize, seed: u64) -> Option<SignFlip> {
    let flat = Flat::new(units, q)?;
    let mut swaps = flat.no_swaps();
    let estimate = flat.statistic(&swaps)?;
    // Ties by construction (the identity, mirror images) must count: compare with a tolerance
    // far below any latency resolution and far above rounding.
    let near = |value: f64, observed: f64| (value - observed).abs() <= 1e-9 * (1.0 + observed.abs());
    // The tie-break reads the means only where the quantiles differ: an arrangement whose
    // quantile difference is 0 ranks (0, 0), whatever its means, so an observed difference of 0
    // is reached by every arrangement (p = 1), as without the tie-break. Were the means read
    // there too, a change away from the quantile (cases faster below the median) would be
    // "significant" beside a difference of 0, and the test would reject its own estimate,
    // which the interval's inversion accepts by construction.
    let observed = estimate.abs();
    let differs = !near(observed, 0.0);
    let mean = if differs {
        flat.mean_difference(&swaps)?.abs()
    } else {
        0.0
    };
    let reaches = |t: f64, swaps: &[u64]| -> Option<bool> {
        let t = t.abs();
        Some(if near(t, observed) {
            !differs || {
                let m = flat.mean_difference(swaps)?.abs();
                m > mean || near(m, mean)
            }
        } else {
            t > observed
        })
    };
    let g = units.len();
    if g <= EXACT_UNITS {
        let total = 1usize << g;
        let mut count = 0usize;
        for mask in 0..total {
            // Unit `i` is swapped when bit `i` of the mask is set: one word holds them all.
            swaps[0] = mask as u64;
            if reaches(flat.statistic(&swaps)?, &swaps)? {
                count += 1;
            }
        }
        return Some(SignFlip {
            estimate,
            p_value: count as f64 / total as f64,
            arrangements: total,
            exact: true,
        });
    }
    let mut rng = Rng::new(seed);
    let mut count = 0usize;
    // The last word's bits past the last unit stay clear (nothing reads them).
    let last_word = match g % 64 {
        0 => u64::MAX,
        used => (1u64 << used) - 1,
    };
    for _ in 0..draws {
        // A fair coin per unit: one output of the generator is 64 units' coins (the bits of a
        // xoshiro256** output are uniform and independent; its scrambler leaves no weak
        // bits). One output per coin, as before, was five sixths of a p95 test's time
        // (`benches/quantiles.rs`).
        for word in swaps.iter_mut() {
            *word = rng.next_u64();
        }
        if let Some(word) = swaps.last_mut() {
            *word &= last_word;
        }
        if reaches(flat.statistic(&swaps)?, &swaps)? {
            count += 1;
        }
    }
    Some(SignFlip {
        estimate,
        p_value: ((1 + count) as f64 / (1 + draws) as f64).min(1.0),
        arrangements: draws,
        exact: false,
    })
}

/// What [`unit_bootstrap_quantile`] resampled.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantileDraws {
    /// Of `Q(candidate) − Q(baseline)`.
    pub difference: Draws,
    /// Of `Q(candidate) / Q(baseline) − 1`, when the baseline's quantile is positive in every
    /// draw.
    pub ratio: Option<Draws>,
    /// The bootstrap variances of each arm's quantile and their covariance: how the
    /// difference's variance would grow if the candidate's values were scaled (planning a
    /// relative margin).
    pub var_baseline: f64,
    pub var_candidate: f64,
    pub covariance: f64,
    /// Of the candidate's own quantile: the unit bootstrap [`unit_bootstrap_one_quantile`]
    /// does, over the same units, read from these resamples at no further draw.
    pub candidate: Draws,
}

/// Bootstrap draws of the quantile difference and of the quantile ratio, resampling whole
/// units. `None` on the same inputs as [`sign_flip_quantile`].
pub fn unit_bootstrap_quantile<U: AsRef<[f64]>>(
    units: &[(U, U)],
    q: f64,
    resamples: usize,
    seed: u64,
) -> Option<QuantileDraws> {
    let arms = Arms::new(units, q)?;
    if resamples == 0 {
        return None;
    }
    // Every unit once: the same order statistics the test's unswapped statistic reads.
    let (qb, qc) = arms.quantiles(&(0..units.len()).collect::<Vec<_>>())?;
    let estimate = qc - qb;
    let ratio_estimate = (qb > 0.0).then(|| qc / qb - 1.0);
    let g = units.len();
    let mut rng = Rng::new(seed);
    let mut picks = vec![0usize; g];
    let mut diffs = Vec::with_capacity(resamples);
    let mut ratios = Vec::with_capacity(resamples);
    let (mut bs, mut cs) = (Vec::with_capacity(resamples), Vec::with_capacity(resamples));
    for _ in 0..resamples {
        for p in picks.iter_mut() {
            *p = rng.below(g);
        }
        let (b, c) = arms.quantiles(&picks)?;
        diffs.push(c - b);
        ratios.push((b > 0.0).then(|| c / b - 1.0));
        bs.push(b);
        cs.push(c);
    }
    let ratio = match (ratio_estimate, ratios.iter().all(Option::is_some)) {
        (Some(r), true) => Draws::new(r, ratios.into_iter().flatten().collect()),
        _ => None,
    };
    let (mb, mc) = (super::mean(&bs)?, super::mean(&cs)?);
    let k = (resamples.max(2) - 1) as f64;
    let var = |xs: &[f64], m: f64| xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / k;
    let covariance = bs.iter().zip(&cs).map(|(b, c)| (b - mb) * (c - mc)).sum::<f64>() / k;
    let (var_baseline, var_candidate) = (var(&bs, mb), var(&cs, mc));
    Some(QuantileDraws {
        difference: Draws::new(estimate, diffs)?,
        ratio,
        var_baseline,
        var_candidate,
        covariance,
        candidate: Draws::new(qc, cs)?,
    })
}

/// Bootstrap draws of one arm's `q` quantile over its calls, resampling whole units: the
/// interval an SLO ("p95 ≤ 800 ms") is proven against.
pub fn unit_bootstrap_one_quantile<U: AsRef<[f64]>>(units: &[U], q: f64, resamples: usize, seed: u64) -> Option<Draws> {
    let ok = !units.is_empty()
        && (0.0..=1.0).contains(&q)
        && units.iter().all(|u| !u.as_ref().is_empty() && all_finite(u.as_ref()));
    if !ok || resamples == 0 {
        return None;
    }
    let calls = Sorted::of(units, U::as_ref)?;
    let sizes: Vec<usize> = units.iter().map(|u| u.as_ref().len()).collect();
    let mut times = vec![0u32; units.len()];
    // The quantile over the units picked (with repetition): each picked unit's calls counted
    // once per pick, read by the sorted walk.
    let mut quantile = |picks: &[usize]| {
        times.fill(0);
        let mut n = 0;
        for &i in picks {
            times[i] += 1;
            n += sizes[i];
        }
        quantile_of_counts(&calls.values, n, q, |j| times[calls.unit[j] as usize] as usize)
    };
    let mut picks: Vec<usize> = (0..units.len()).collect();
    let estimate = quantile(&picks)?;
    let mut rng = Rng::new(seed);
    let mut stats = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for p in picks.iter_mut() {
            *p = rng.below(units.len());
        }
        stats.push(quantile(&picks)?);
    }
    Draws::new(estimate, stats)
}

/// The level at which to read a percentile interval so that it covers as a t interval would
/// with `n` units: `α' = 2·Φ(−√(n/(n−1)) · t_{1−α/2, n−1})`, Hesterberg's "expanded percentile"
/// interval (Hesterberg, T. C. (2015), "What teachers should know about the bootstrap", *The
/// American Statistician* 69(4), 371–386, §5). The plain percentile interval is too narrow for
/// small samples; this widens it by the t-to-normal and n/(n−1) factors. `None` for n < 2.
pub fn expanded_alpha(alpha: f64, n: usize) -> Option<f64> {
    if n < 2 || !(alpha > 0.0 && alpha < 1.0) {
        return None;
    }
    let df = (n - 1) as f64;
    let t = StudentsT::new(0.0, 1.0, df).ok()?.inverse_cdf(1.0 - alpha / 2.0);
    Some(2.0 * Normal::standard().cdf(-(n as f64 / df).sqrt() * t))
}

/// The units' calls sorted once, so each arrangement's quantiles are read by walking the
/// sorted calls from the nearer end instead of gathering and selecting them again: a p95 reads
/// about a twentieth of the calls per draw. The order statistics read are those
/// `quantile_select` would select, so every statistic is the same number to the bit.
///
/// `Flat` is the sign-flip test's view (both arms' calls in one order, since a swap moves calls
/// between arms) and [`Arms`] the bootstrap's (each arm apart): each builds only its own, so
/// neither holds or sorts the other's copy of every call.
struct Flat {
    q: f64,
    units: usize,
    /// Every call of both arms, ascending.
    values: Vec<f64>,
    /// `values`' calls as `unit << 1 | candidate`, what a swap reads per call.
    tags: Vec<u32>,
    /// Baseline calls with no unit swapped, and the units whose arms differ in size with
    /// `candidate − baseline` calls: swapping one moves that many more calls to the baseline.
    n_baseline: usize,
    uneven: Vec<(usize, isize)>,
}

/// Each arm's calls alone, ascending, with their units: what the bootstrap picks from.
struct Arms {
    q: f64,
    /// Each unit's number of baseline and candidate calls (32 bits: half the room).
    sizes: Vec<(u32, u32)>,
    baseline: Sorted,
    candidate: Sorted,
    /// Scratch: how often a unit was picked (32 bits: half the cache a draw's counting walks).
    per_unit: std::cell::RefCell<Vec<u32>>,
}

struct Sorted {
    values: Vec<f64>,
    unit: Vec<u32>,
}

impl Sorted {
    /// Sorts `calls` (value, unit) by value.
    fn new(mut calls: Vec<(f64, u32)>) -> Sorted {
        calls.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        // The units copied out, then the values collected in the calls' own buffer (the
        // standard library reuses it) and its unused half given back: at most 20 bytes a call
        // held at once, where unzipping into two new vectors held 28 (28 MB at a million).
        let unit = calls.iter().map(|&(_, unit)| unit).collect();
        let mut values: Vec<f64> = calls.into_iter().map(|(value, _)| value).collect();
        values.shrink_to_fit();
        Sorted { values, unit }
    }

    /// One arm's calls of every unit (`arm` picks them from a unit), with their units.
    fn of<'u, U: 'u>(units: &'u [U], arm: impl Fn(&'u U) -> &'u [f64]) -> Option<Sorted> {
        let mut calls = Vec::with_capacity(units.iter().map(|u| arm(u).len()).sum());
        for (i, unit) in units.iter().enumerate() {
            let i = u32::try_from(i).ok()?;
            calls.extend(arm(unit).iter().map(|&v| (v, i)));
        }
        Some(Sorted::new(calls))
    }
}

/// Whether the paired functions can use `units`: some (fewer than 2^31), each with calls in
/// both arms, all finite, and `q` in [0, 1].
fn usable<U: AsRef<[f64]>>(units: &[(U, U)], q: f64) -> bool {
    // A unit's tag (`unit << 1 | candidate`) is 32 bits: both views refuse what the test's cannot tag.
    !units.is_empty()
        && units.len() <= (u32::MAX >> 1) as usize
        && (0.0..=1.0).contains(&q)
        && units.iter().all(|(b, c)| {
            let (b, c) = (b.as_ref(), c.as_ref());
            !b.is_empty() && !c.is_empty() && all_finite(b) && all_finite(c)
        })
}

impl Flat {
    fn new<U: AsRef<[f64]>>(units: &[(U, U)], q: f64) -> Option<Flat> {
        if !usable(units, q) {
            return None;
        }
        let n: usize = units.iter().map(|(b, c)| b.as_ref().len() + c.as_ref().len()).sum();
        let mut calls: Vec<(f64, u32)> = Vec::with_capacity(n);
        let mut n_baseline = 0;
        for (i, (b, c)) in units.iter().enumerate() {
            let tag = u32::try_from(i).ok()?.checked_mul(2)?;
            n_baseline += b.as_ref().len();
            calls.extend(b.as_ref().iter().map(|&v| (v, tag)));
            calls.extend(c.as_ref().iter().map(|&v| (v, tag | 1)));
        }
        // How calls of equal value are ordered changes no quantile: an arm's k-th smallest
        // value is the same whichever of the equal calls stands first.
        let Sorted { values, unit: tags } = Sorted::new(calls);
        let uneven = units
            .iter()
            .enumerate()
            .map(|(i, (b, c))| (i, b.as_ref().len(), c.as_ref().len()))
            .filter(|&(_, b, c)| b != c)
            .map(|(i, b, c)| (i, c as isize - b as isize))
            .collect();
        Some(Flat {
            q,
            units: units.len(),
            values,
            tags,
            n_baseline,
            uneven,
        })
    }

    /// The candidate arm's mean less the baseline's, with the units `swaps` marks swapped: a
    /// walk over the calls the statistic walks too, holding nothing more (the analysis of a
    /// large run is at its memory's peak).
    fn mean_difference(&self, swaps: &[u64]) -> Option<f64> {
        let (mut sum, mut count) = ([0.0f64; 2], [0usize; 2]);
        for (&value, &tag) in self.values.iter().zip(&self.tags) {
            let unit = (tag >> 1) as usize;
            let arm = ((u64::from(tag) & 1) ^ ((swaps[unit >> 6] >> (unit & 63)) & 1)) as usize;
            sum[arm] += value;
            count[arm] += 1;
        }
        (count[0] > 0 && count[1] > 0).then(|| sum[1] / count[1] as f64 - sum[0] / count[0] as f64)
    }

    /// A swap set with no unit swapped: one bit per unit, [`Flat::statistic`]'s argument.
    fn no_swaps(&self) -> Vec<u64> {
        vec![0; self.units.div_ceil(64)]
    }

    /// The statistic with unit `i`'s arms swapped where bit `i` of `swaps` is set (bit `i % 64`
    /// of word `i / 64`).
    fn statistic(&self, swaps: &[u64]) -> Option<f64> {
        let swapped = |unit: usize| (swaps[unit >> 6] >> (unit & 63)) & 1;
        // Only units with unequal arms change how many calls each arm holds.
        let mut n_baseline = self.n_baseline as isize;
        for &(unit, more) in &self.uneven {
            if swapped(unit) == 1 {
                n_baseline += more;
            }
        }
        let n_baseline = usize::try_from(n_baseline).ok()?;
        let n_candidate = self.values.len().checked_sub(n_baseline)?;
        let tags = &self.tags;
        // A call lands in the candidate arm when it is a candidate call of an unswapped unit or
        // a baseline call of a swapped one.
        let in_candidate = |j: usize| {
            let tag = tags[j];
            ((tag & 1) as u64 ^ swapped((tag >> 1) as usize)) as usize
        };
        let [b, c] = split_quantiles(&self.values, [n_baseline, n_candidate], self.q, in_candidate)?;
        Some(c - b)
    }
}

impl Arms {
    fn new<U: AsRef<[f64]>>(units: &[(U, U)], q: f64) -> Option<Arms> {
        if !usable(units, q) {
            return None;
        }
        Some(Arms {
            q,
            sizes: units
                .iter()
                .map(|(b, c)| {
                    Some((
                        u32::try_from(b.as_ref().len()).ok()?,
                        u32::try_from(c.as_ref().len()).ok()?,
                    ))
                })
                .collect::<Option<_>>()?,
            baseline: Sorted::of(units, |(b, _)| b.as_ref())?,
            candidate: Sorted::of(units, |(_, c)| c.as_ref())?,
            per_unit: std::cell::RefCell::new(vec![0; units.len()]),
        })
    }

    /// Both arms' quantiles over the units picked (with repetition).
    fn quantiles(&self, picks: &[usize]) -> Option<(f64, f64)> {
        let mut times = self.per_unit.borrow_mut();
        times.fill(0);
        let (mut n_baseline, mut n_candidate) = (0, 0);
        for &i in picks {
            times[i] += 1;
            let (b, c) = self.sizes[i];
            n_baseline += b as usize;
            n_candidate += c as usize;
        }
        let (base, cand) = (&self.baseline, &self.candidate);
        let b = quantile_of_counts(&base.values, n_baseline, self.q, |j| {
            times[base.unit[j] as usize] as usize
        })?;
        let c = quantile_of_counts(&cand.values, n_candidate, self.q, |j| {
            times[cand.unit[j] as usize] as usize
        })?;
        Some((b, c))
    }
}

/// Both arms' type-7 `q` quantiles over calls each in one arm (`arm(j)`, 0 or 1; `n` each
/// arm's number of calls): what [`quantile_of_counts`] reads for each arm, to the bit, in one
/// walk from the end both arms' order statistics are nearer to, which reads about half as
/// many calls as walking twice.
fn split_quantiles(sorted: &[f64], n: [usize; 2], q: f64, arm: impl Fn(usize) -> usize) -> Option<[f64; 2]> {
    let mut wanted = [Wanted::new(n[0], q)?, Wanted::new(n[1], q)?];
    let up = wanted[0].up;
    if wanted[1].up != up {
        let of = |a: usize| quantile_of_counts(sorted, n[a], q, |j| usize::from(arm(j) == a));
        return Some([of(0)?, of(1)?]);
    }
    // The calls are walked 64 at a time: their arms gathered into one word without a branch
    // (a call's arm is a coin flip to the branch predictor), and a word that fills no wanted
    // rank is passed over on its two counts; only the few words that fill one are read call by
    // call. A filled arm's `need` is `usize::MAX`, which no count passes.
    #[inline(always)]
    fn walk(len: usize, at: impl Fn(usize) -> usize, wanted: &mut [Wanted; 2], arm: impl Fn(usize) -> usize) -> bool {
        let (mut walked, mut arm1) = (0usize, 0usize);
        while walked < len {
            let width = (len - walked).min(64);
            let mut word = 0u64;
            for k in 0..width {
                word |= ((arm(at(walked + k)) & 1) as u64) << k;
            }
            let ones = word.count_ones() as usize;
            if arm1 + ones <= wanted[1].need && walked - arm1 + (width - ones) <= wanted[0].need {
                walked += width;
                arm1 += ones;
                continue;
            }
            for k in 0..width {
                let a = ((word >> k) & 1) as usize;
                arm1 += a;
                walked += 1;
                let seen = if a == 1 { arm1 } else { walked - arm1 };
                if seen > wanted[a].need {
                    wanted[a].fill(at(walked - 1));
                    if wanted[0].need == usize::MAX && wanted[1].need == usize::MAX {
                        return true;
                    }
                }
            }
        }
        false
    }
    let len = sorted.len();
    let done = if up {
        walk(len, |i| i, &mut wanted, arm)
    } else {
        walk(len, |i| len - 1 - i, &mut wanted, arm)
    };
    if !done {
        return None;
    }
    Some([wanted[0].value(sorted)?, wanted[1].value(sorted)?])
}

/// The order statistics one arm's type-7 quantile reads, as [`quantile_of_counts`] finds
/// them: rank `lo`, and `lo + 1` when it interpolates, walked to from the nearer end.
struct Wanted {
    t: f64,
    next: bool,
    up: bool,
    /// Which of this arm's calls, counted from the walk's end (0 the first), fills the next
    /// wanted rank; `usize::MAX` once all are filled.
    need: usize,
    /// The indices of ranks `lo` and `lo + 1` once walked past.
    low: Option<usize>,
    high: Option<usize>,
}

impl Wanted {
    fn new(n: usize, q: f64) -> Option<Wanted> {
        let last = n.checked_sub(1)?;
        let h = last as f64 * q;
        let lo = (h.floor() as usize).min(last);
        let t = h - lo as f64;
        let next = lo < last && t > 0.0;
        let up = lo <= last - lo;
        Some(Wanted {
            t,
            next,
            up,
            // Walking down, rank `r` is the `last − r`-th call; `lo + 1` comes before `lo`.
            need: match (up, next) {
                (true, _) => lo,
                (false, true) => last - lo - 1,
                (false, false) => last - lo,
            },
            low: None,
            high: None,
        })
    }

    /// The call at index `j` is the one [`Wanted::need`] waited for.
    fn fill(&mut self, j: usize) {
        let lower_first = self.up;
        let is_low = if lower_first {
            self.low.is_none()
        } else {
            self.high.is_some() || !self.next
        };
        if is_low {
            self.low = Some(j);
        } else {
            self.high = Some(j);
        }
        let more = self.next && (self.low.is_none() || self.high.is_none());
        self.need = if more { self.need + 1 } else { usize::MAX };
    }

    fn value(&self, sorted: &[f64]) -> Option<f64> {
        let low = *sorted.get(self.low?)?;
        if !self.next {
            return Some(low);
        }
        Some(lerp(low, *sorted.get(self.high?)?, self.t))
    }
}

/// The type-7 `q` quantile of the multiset holding `count(j)` copies of `sorted[j]` (`sorted`
/// ascending, `n` the sum of the counts): order statistics `⌊(n−1)q⌋` and the next one,
/// interpolated as `quantile_select` does, found by walking from the end nearer to them. The
/// walk only adds counts and tests one predictable bound per call, so a draw of a p50 costs
/// little more than reading half its calls.
fn quantile_of_counts(sorted: &[f64], n: usize, q: f64, count: impl Fn(usize) -> usize) -> Option<f64> {
    let last = n.checked_sub(1)?;
    let h = last as f64 * q;
    let lo = (h.floor() as usize).min(last);
    let t = h - lo as f64;
    // `quantile_select` interpolates only when an order statistic above `lo` exists.
    let next = lo < last && t > 0.0;
    // The index of the value at rank `rank`, counted from the smallest (`up`) or the largest,
    // walking on from index `j` (exclusive when down) with `seen` calls behind.
    let walk = |mut j: usize, mut seen: usize, rank: usize, up: bool| -> Option<(usize, usize)> {
        while seen <= rank {
            if up {
                if j >= sorted.len() {
                    return None;
                }
                seen += count(j);
                if seen > rank {
                    break;
                }
                j += 1;
            } else {
                j = j.checked_sub(1)?;
                seen += count(j);
            }
        }
        Some((j, seen))
    };
    if lo <= last - lo {
        let (j, seen) = walk(0, 0, lo, true)?;
        let a = *sorted.get(j)?;
        if !next {
            return Some(a);
        }
        // Rank `lo + 1` is this value again when it fills that rank too, else a later one.
        let (k, _) = if seen > lo + 1 {
            (j, seen)
        } else {
            walk(j + 1, seen, lo + 1, true)?
        };
        Some(lerp(a, *sorted.get(k)?, t))
    } else {
        // Counted from the largest, rank `r` from the smallest is `last − r`.
        if !next {
            let (j, _) = walk(sorted.len(), 0, last - lo, false)?;
            return sorted.get(j).copied();
        }
        let (k, seen) = walk(sorted.len(), 0, last - lo - 1, false)?;
        let (j, _) = walk(k, seen, last - lo, false)?;
        Some(lerp(*sorted.get(j)?, *sorted.get(k)?, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::{Just, Strategy as _};

    /// Twelve units, every fourth with two calls per arm; the candidate about 35 ms slower.
    fn units() -> Vec<PairedUnit> {
        let b: [&[f64]; 12] = [
            &[512.1, 489.2],
            &[383.4],
            &[416.1],
            &[547.0, 505.6],
            &[320.4],
            &[271.6],
            &[358.8, 354.2],
            &[433.4],
            &[297.3],
            &[445.4, 370.6],
            &[425.5],
            &[458.7],
        ];
        let c: [&[f64]; 12] = [
            &[499.5, 517.0],
            &[469.6],
            &[495.5],
            &[576.7, 605.6],
            &[297.6],
            &[370.9],
            &[375.4, 282.2],
            &[474.9],
            &[312.2],
            &[436.6, 473.3],
            &[469.4],
            &[545.7],
        ];
        b.iter().zip(c).map(|(b, c)| (b.to_vec(), c.to_vec())).collect()
    }

    #[test]
    fn exact_p_values_match_a_brute_force_enumeration() {
        // Python (numpy 2): for every mask in range(2**12) swap the masked units,
        // t1 = numpy.quantile(concat(cand), q) - numpy.quantile(concat(base), q),
        // t2 = numpy.mean(concat(cand)) - numpy.mean(concat(base)); count the masks where
        // abs(t1) > abs(o1) beyond 1e-9*(1 + abs(o1)), or abs(t1) is abs(o1) within it and
        // abs(t2) >= abs(o2) within the same tolerance. q = 0.5: obs 50.650000000000034,
        // 24 of 4096; q = 0.9: obs 52.35000000000002, 26 of 4096. (The quantile alone, ties
        // counted as reaching: 128 and 1024 of 4096.)
        let u = units();
        let p50 = sign_flip_quantile(&u, 0.5, 0, 1).unwrap();
        assert!((p50.estimate - 50.650_000_000_000_034).abs() < 1e-9);
        assert_eq!((p50.p_value, p50.arrangements, p50.exact), (24.0 / 4096.0, 4096, true));
        let p90 = sign_flip_quantile(&u, 0.9, 0, 1).unwrap();
        assert!((p90.estimate - 52.350_000_000_000_02).abs() < 1e-9);
        assert_eq!(p90.p_value, 26.0 / 4096.0);
    }

    /// Tied values: every baseline call 100 ms, every candidate call 300. The quantile
    /// difference is 200 in every arrangement with more than half the units unswapped, so
    /// alone it gave p = 0.88 at 40 units beside a 3× slowdown of every case (the audit's);
    /// the means break the tie. Python, the brute force above: 2 of 65,536 at 16 units, for
    /// q = 0.5 and 0.95 (the identity and its mirror image). Drawn at 40 units, no arrangement
    /// but those two reaches it: p = 1/(1 + draws).
    #[test]
    fn tied_values_are_told_apart_by_their_means() {
        for q in [0.5, 0.95] {
            let tied: Vec<PairedUnit> = vec![(vec![100.0], vec![300.0]); 16];
            let exact = sign_flip_quantile(&tied, q, 0, 1).unwrap();
            assert_eq!(
                (exact.estimate, exact.p_value, exact.exact),
                (200.0, 2.0 / 65_536.0, true)
            );
            let tied: Vec<PairedUnit> = vec![(vec![100.0], vec![300.0]); 40];
            let drawn = sign_flip_quantile(&tied, q, 10_000, 1).unwrap();
            assert_eq!((drawn.estimate, drawn.p_value), (200.0, 1.0 / 10_001.0));
        }
    }

    /// The means break ties only where the quantiles differ: an observed difference of 0 is
    /// reached by every arrangement, so the test never rejects its own estimate (a review found
    /// a first version calling p50 "significant" at Δ = 0 when 7 of 15 cases got faster below
    /// the median, p = 0.0156, which lost a non-inferiority gate). Python, the brute force with
    /// the mean read only where |ΔQ| > 0: 15 units, baseline 100 each; candidate 8 × 100 and
    /// 7 × 50: ΔQ 0, 32,768 of 32,768; candidate 8 × 110 and 7 × 50: ΔQ 10, 18 of 32,768, and
    /// shifted by 10, 32,768 of 32,768.
    #[test]
    fn a_quantile_difference_of_zero_is_never_significant() {
        let mut faster_below: Vec<PairedUnit> = vec![(vec![100.0], vec![100.0]); 8];
        faster_below.extend(vec![(vec![100.0], vec![50.0]); 7]);
        let at_zero = sign_flip_quantile(&faster_below, 0.5, 0, 1).unwrap();
        assert_eq!((at_zero.estimate, at_zero.p_value), (0.0, 1.0));
        let mut mixed: Vec<PairedUnit> = vec![(vec![100.0], vec![110.0]); 8];
        mixed.extend(vec![(vec![100.0], vec![50.0]); 7]);
        let test = sign_flip_quantile(&mixed, 0.5, 0, 1).unwrap();
        assert_eq!((test.estimate, test.p_value), (10.0, 18.0 / 32_768.0));
        let shifted: Vec<PairedUnit> = mixed
            .iter()
            .map(|(b, c)| (b.clone(), c.iter().map(|v| v - test.estimate).collect()))
            .collect();
        assert_eq!(sign_flip_quantile(&shifted, 0.5, 0, 1).unwrap().p_value, 1.0);
    }

    #[test]
    fn random_draws_agree_with_the_exact_test() {
        // 24 units: the first twelve twice. The exact p-value is out of reach (2^24); 20,000
        // draws estimate it with a standard error under 0.004, and the two halves of the same
        // draws agree with each other and with a second seed.
        let mut u = units();
        u.extend(units());
        let a = sign_flip_quantile(&u, 0.5, 20_000, 1).unwrap();
        let b = sign_flip_quantile(&u, 0.5, 20_000, 2).unwrap();
        assert!(!a.exact && a.arrangements == 20_000);
        assert!((a.p_value - b.p_value).abs() < 0.02, "{} vs {}", a.p_value, b.p_value);
        // Twice the evidence: far smaller than the 12-unit p of 0.03125.
        assert!(a.p_value < 0.01, "{}", a.p_value);
        assert!(a.p_value >= 1.0 / 20_001.0);
    }

    #[test]
    fn random_draws_estimate_the_exact_p_value_of_twenty_units() {
        // 20 units of one call per arm: 2^20 arrangements, more than the test enumerates, so it
        // draws; the exact p-values by brute force in Python (numpy 2), vectorised: for every
        // mask in range(2**20) swap the masked units, t1 = numpy.quantile(C, q, axis=1) -
        // numpy.quantile(B, q, axis=1), t2 = C.mean(axis=1) - B.mean(axis=1), counted as in
        // `exact_p_values_match_a_brute_force_enumeration`. q = 0.5: obs 23.200000000000045,
        // 80 of 1,048,576 (7.63e-5); q = 0.95: obs 27.594999999999914, 94 (8.96e-5).
        // 200,000 draws estimate them with standard errors of about 2e-5.
        let b = [
            612.0, 455.5, 731.2, 502.9, 389.4, 840.1, 577.3, 498.8, 661.0, 420.7, 533.3, 708.6, 465.2, 599.9, 381.5,
            752.4, 547.8, 490.1, 635.6, 512.2,
        ];
        let c = [
            640.3, 470.1, 722.8, 561.4, 401.9, 869.5, 570.0, 541.2, 690.7, 433.8, 549.6, 760.3, 458.9, 622.4, 410.2,
            779.9, 566.1, 487.5, 668.0, 547.7,
        ];
        let u: Vec<PairedUnit> = b.iter().zip(&c).map(|(&b, &c)| (vec![b], vec![c])).collect();
        for (q, obs, exact, tolerance) in [
            (0.5, 23.200_000_000_000_045, 80.0 / 1_048_576.0, 1e-4),
            (0.95, 27.594_999_999_999_914, 94.0 / 1_048_576.0, 1e-4),
        ] {
            for seed in [1, 2, 3] {
                let test = sign_flip_quantile(&u, q, 200_000, seed).unwrap();
                assert!(!test.exact);
                assert!((test.estimate - obs).abs() < 1e-9, "{}", test.estimate);
                assert!(
                    (test.p_value - exact).abs() < tolerance,
                    "q {q} seed {seed}: {}",
                    test.p_value
                );
            }
        }
    }

    #[test]
    fn every_word_of_a_draw_swaps_its_units() {
        // 70 and 128 units (a last word of 6 units, and two full words): every unit's arms are
        // equal but five, spread over both words, which alone decide the median. Python, numpy
        // 2, with b and c built as below: enumerating the five units' 32 swaps (the others
        // change nothing), stat = numpy.quantile(C, 0.5) - numpy.quantile(B, 0.5), counted as in
        // the test: obs 22.5, 2 of 32 (0.0625) for both sizes. Were the second word never
        // drawn, its deciding units would stay put: 1 of the 4 arrangements left (0.25).
        for (g, deciding) in [(70, [5, 63, 64, 66, 69]), (128, [0, 63, 64, 100, 127])] {
            let equal = g - deciding.len();
            let mut same = (0..equal / 2)
                .map(|i| 100.0 + i as f64)
                .chain((0..equal - equal / 2).map(|i| 900.0 + i as f64));
            let mut k = 0.0;
            let u: Vec<PairedUnit> = (0..g)
                .map(|unit| {
                    if deciding.contains(&unit) {
                        k += 1.0;
                        (vec![489.0 + k], vec![508.0 + 2.0 * k])
                    } else {
                        let v = same.next().unwrap();
                        (vec![v], vec![v])
                    }
                })
                .collect();
            for seed in [1, 2] {
                let test = sign_flip_quantile(&u, 0.5, 20_000, seed).unwrap();
                assert!((test.estimate - 22.5).abs() < 1e-9, "{}", test.estimate);
                assert!(
                    (test.p_value - 0.0625).abs() < 0.01,
                    "{g} units, seed {seed}: {}",
                    test.p_value
                );
            }
        }
    }

    #[test]
    fn identical_arms_never_reject_and_swaps_mirror() {
        let u: Vec<PairedUnit> = units().into_iter().map(|(b, _)| (b.clone(), b)).collect();
        assert_eq!(sign_flip_quantile(&u, 0.95, 0, 1).unwrap().p_value, 1.0);
        let swapped: Vec<PairedUnit> = units().into_iter().map(|(b, c)| (c, b)).collect();
        let (f, s) = (
            sign_flip_quantile(&units(), 0.9, 0, 1).unwrap(),
            sign_flip_quantile(&swapped, 0.9, 0, 1).unwrap(),
        );
        assert!((f.estimate + s.estimate).abs() < 1e-9);
        assert_eq!(f.p_value, s.p_value);
    }

    #[test]
    fn unit_bootstrap_keeps_repeats_together_and_brackets_the_estimate() {
        let draws = unit_bootstrap_quantile(&units(), 0.5, 2000, 9).unwrap();
        let (diff, ratio) = (draws.difference.clone(), draws.ratio.clone());
        // The difference's variance is the arms' variances less twice their covariance.
        let sd = diff.standard_error().unwrap();
        let parts = draws.var_baseline + draws.var_candidate - 2.0 * draws.covariance;
        assert!((sd * sd - parts).abs() < 1e-6 * parts, "{} vs {parts}", sd * sd);
        let main = diff.summary(0.95).unwrap();
        assert!((main.estimate - 50.65).abs() < 1e-9);
        assert!(main.ci[0] < main.estimate && main.estimate < main.ci[1], "{main:?}");
        let ratio = ratio.unwrap().summary(0.95).unwrap();
        assert!(ratio.ci[0] < ratio.estimate && ratio.estimate < ratio.ci[1]);
        // A constant shift of every call by 40 ms: every resample's difference is 40 exactly.
        let shifted: Vec<PairedUnit> = units()
            .into_iter()
            .map(|(b, _)| {
                let c = b.iter().map(|x| x + 40.0).collect();
                (b, c)
            })
            .collect();
        let d = unit_bootstrap_quantile(&shifted, 0.95, 500, 3).unwrap().difference;
        let s = d.summary(0.95).unwrap();
        assert!((s.ci[0] - 40.0).abs() < 1e-9 && (s.ci[1] - 40.0).abs() < 1e-9);
        let one = unit_bootstrap_one_quantile(&[vec![1.0, 2.0], vec![3.0]], 0.5, 100, 1).unwrap();
        assert_eq!(one.summary(0.9).unwrap().estimate, 2.0);
    }

    /// The paired bootstrap's candidate draws are one arm's bootstrap of the candidate's units
    /// with the same seed, to the bit: the same picks, the same quantile of the calls picked.
    #[test]
    fn the_candidates_draws_are_its_own_bootstrap_over_the_same_units() {
        let shifted: Vec<PairedUnit> = units()
            .into_iter()
            .enumerate()
            .map(|(i, (b, c))| (b, c.iter().map(|x| x * (1.0 + i as f64 / 7.0)).collect()))
            .collect();
        for (units, q, seed) in [(units(), 0.5, 9), (units(), 0.95, 2), (shifted, 0.9, 77)] {
            let paired = unit_bootstrap_quantile(&units, q, 700, seed).unwrap();
            let candidate: Vec<&Vec<f64>> = units.iter().map(|(_, c)| c).collect();
            let own = unit_bootstrap_one_quantile(&candidate, q, 700, seed).unwrap();
            assert_eq!(paired.candidate, own, "q {q}, seed {seed}");
            let other = unit_bootstrap_one_quantile(&candidate, q, 700, seed ^ 1).unwrap();
            assert_ne!(paired.candidate, other, "another seed draws other picks");
        }
    }

    #[test]
    fn expanded_alpha_matches_hesterbergs_formula() {
        // 2*scipy.stats.norm.cdf(-numpy.sqrt(n/(n-1))*scipy.stats.t.ppf(1-a/2, n-1))
        for (n, alpha, expected) in [
            (10, 0.05, 0.017_101_278_048_812_733),
            (30, 0.05, 0.037_507_800_556_441_08),
            (100, 0.1, 0.095_165_765_794_435_27),
            (5, 0.05, 0.001_908_201_103_764_981_4),
        ] {
            let got = expanded_alpha(alpha, n).unwrap();
            // statrs' t quantile is good to about 1e-11.
            assert!((got - expected).abs() < 1e-10, "{n} {alpha}: {got}");
        }
        assert_eq!(expanded_alpha(0.05, 1), None);
    }

    /// `swapped` as [`Flat::statistic`]'s bit set.
    fn swaps_of(swapped: &[bool]) -> Vec<u64> {
        let mut words = vec![0u64; swapped.len().div_ceil(64)];
        for (i, _) in swapped.iter().enumerate().filter(|(_, s)| **s) {
            words[i / 64] |= 1 << (i % 64);
        }
        words
    }

    /// The statistic as it was computed before the calls were sorted once: gather each arm's
    /// calls, then select. The sorted walk must give the same number to the bit.
    fn gathered(units: &[PairedUnit], q: f64, swapped: &[bool], picks: &[usize]) -> (f64, (f64, f64)) {
        use super::super::describe::quantile_select;
        let (mut b, mut c) = (Vec::new(), Vec::new());
        for (i, (ub, uc)) in units.iter().enumerate() {
            let (to_b, to_c) = if swapped[i] { (uc, ub) } else { (ub, uc) };
            b.extend_from_slice(to_b);
            c.extend_from_slice(to_c);
        }
        let statistic = quantile_select(&mut c, q).unwrap() - quantile_select(&mut b, q).unwrap();
        let (mut b, mut c) = (Vec::new(), Vec::new());
        for &i in picks {
            b.extend_from_slice(&units[i].0);
            c.extend_from_slice(&units[i].1);
        }
        (
            statistic,
            (quantile_select(&mut b, q).unwrap(), quantile_select(&mut c, q).unwrap()),
        )
    }

    proptest::proptest! {
        #[test]
        fn the_sorted_walk_reads_the_same_quantiles_as_selecting(
            units in proptest::collection::vec(
                (
                    proptest::collection::vec((0u8..12).prop_map(|v| f64::from(v) * 12.5), 1..4),
                    proptest::collection::vec((0u8..12).prop_map(|v| f64::from(v) * 12.5), 1..4),
                ),
                1..30,
            ),
            q in proptest::prop_oneof![Just(0.0), Just(0.5), Just(0.95), Just(1.0), 0.0f64..=1.0],
            seed in 0u64..1000,
        ) {
            let flat = Flat::new(&units, q).unwrap();
            let arms = Arms::new(&units, q).unwrap();
            // The bootstrap's estimate (every unit picked once) is the test's, to the bit.
            let every: Vec<usize> = (0..units.len()).collect();
            let (b, c) = arms.quantiles(&every).unwrap();
            proptest::prop_assert_eq!((c - b).to_bits(), flat.statistic(&flat.no_swaps()).unwrap().to_bits());
            let mut rng = Rng::new(seed);
            for _ in 0..8 {
                let swapped: Vec<bool> = units.iter().map(|_| rng.below(2) == 1).collect();
                let picks: Vec<usize> = units.iter().map(|_| rng.below(units.len())).collect();
                let (statistic, quantiles) = gathered(&units, q, &swapped, &picks);
                proptest::prop_assert_eq!(flat.statistic(&swaps_of(&swapped)).unwrap().to_bits(), statistic.to_bits());
                let (b, c) = arms.quantiles(&picks).unwrap();
                proptest::prop_assert_eq!((b.to_bits(), c.to_bits()), (quantiles.0.to_bits(), quantiles.1.to_bits()));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn one_arm_draws_are_the_quantiles_of_the_units_picked(
            units in proptest::collection::vec(
                proptest::collection::vec((0u8..12).prop_map(|v| f64::from(v) * 12.5), 1..4),
                1..30,
            ),
            q in proptest::prop_oneof![Just(0.0), Just(0.5), Just(0.95), Just(1.0), 0.0f64..=1.0],
            seed in 0u64..1000,
        ) {
            use super::super::describe::quantile_select;
            // Each draw: the units picked by `below(g)` in turn, their calls gathered and the
            // quantile selected.
            let g = units.len();
            let of = |picks: &mut dyn Iterator<Item = usize>| {
                let mut calls: Vec<f64> = picks.flat_map(|i| units[i].clone()).collect();
                quantile_select(&mut calls, q).unwrap()
            };
            let mut rng = Rng::new(seed);
            let stats: Vec<f64> = (0..16).map(|_| of(&mut (0..g).map(|_| rng.below(g)))).collect();
            let expected = Draws::new(of(&mut (0..g)), stats);
            proptest::prop_assert_eq!(unit_bootstrap_one_quantile(&units, q, 16, seed), expected);
        }
    }

    #[test]
    fn units_lent_as_slices_give_what_units_held_as_vectors_give() {
        // The analysis lends each case's calls as slices of one array; the tests above hold
        // each unit in vectors of its own. Same units, same draws, same answers.
        let mut rng = Rng::new(11);
        let owned: Vec<PairedUnit> = (0..40)
            .map(|i| {
                let n = 1 + i % 3;
                let draw = |rng: &mut Rng| (0..n).map(|_| rng.below(1000) as f64).collect::<Vec<f64>>();
                (draw(&mut rng), draw(&mut rng))
            })
            .collect();
        let lent: Vec<(&[f64], &[f64])> = owned.iter().map(|(b, c)| (b.as_slice(), c.as_slice())).collect();
        assert_eq!(
            sign_flip_quantile(&lent, 0.9, 200, 5),
            sign_flip_quantile(&owned, 0.9, 200, 5)
        );
        let (a, b) = (
            unit_bootstrap_quantile(&lent, 0.9, 200, 5).unwrap(),
            unit_bootstrap_quantile(&owned, 0.9, 200, 5).unwrap(),
        );
        assert_eq!(
            (a.difference, a.ratio, a.covariance),
            (b.difference, b.ratio, b.covariance)
        );
        let one: Vec<&[f64]> = owned.iter().map(|(_, c)| c.as_slice()).collect();
        let held: Vec<Vec<f64>> = owned.iter().map(|(_, c)| c.clone()).collect();
        assert_eq!(
            unit_bootstrap_one_quantile(&one, 0.5, 200, 5),
            unit_bootstrap_one_quantile(&held, 0.5, 200, 5)
        );
    }

    #[test]
    fn refuses_unusable_input() {
        assert_eq!(sign_flip_quantile::<Vec<f64>>(&[], 0.5, 10, 1), None);
        assert_eq!(sign_flip_quantile(&[(vec![1.0], vec![])], 0.5, 10, 1), None);
        assert_eq!(sign_flip_quantile(&[(vec![1.0], vec![f64::NAN])], 0.5, 10, 1), None);
        assert_eq!(sign_flip_quantile(&[(vec![1.0], vec![2.0])], 1.5, 10, 1), None);
    }
}
