//! `report.md` (the PR comment) and `summary.md` (the step summary), rendered from [`Results`]
//! with minijinja templates.
//!
//! All decisions live here, in a view model computed in Rust: numbers are formatted per metric
//! unit, verdicts are words, flipped cases are picked and counted. The templates only lay the
//! view out, so a user's own template gets the same facts without redoing any of it.
//!
//! Everything textual that comes from the run (names and paths from the PR's config, case
//! inputs, model outputs, git refs) stays raw in the view and is escaped when a template prints
//! it: escaping is the default for every template, ours and a user's, so a template that forgets
//! to escape cannot leak raw model output into the comment. What the view builds itself (our own
//! formatted numbers and words, notes whose names it already escaped, a checked image URL, the
//! text chart for a code block) is [`Safe`] and printed as it is. The `untrusted` filter is the
//! same escaping with a length of one's choosing: `{{ output | untrusted(300) }}`.

mod escaping;
mod flips;
mod metric_row;
mod notes;
mod text_chart;

use std::collections::{BTreeMap, BTreeSet};

use minijinja::Value;
use minijinja::value::Serde;
use serde::Serialize;

use super::charts;
use super::escape::escape_untrusted;
use super::figures;
use super::words::{self, MetricText};
use crate::format::{self, dash, dollars, duration, finite};
use crate::results::{
    ArmInfo, Call, CaseResult, DatasetChanges, ExperimentResult, ExperimentStatus, ExperimentVerdict, Flip,
    MetricVerdict, Results, Verdict,
};
use escaping::{Safe, environment};
use metric_row::{MetricRow, unpriced_models};
use notes::{arm_changes, dataset_note, design_notes, projection_sentence, sequential_note};
use text_chart::text_chart;

/// GitHub refuses comments over 65,536 characters; this leaves room for the waiver note and
/// anything the publisher appends.
pub const MAX_COMMENT_CHARS: usize = 60_000;

/// The hidden line the publisher finds its own sticky comment by.
pub const REPORT_MARKER: &str = "<!-- promptgate:report -->";

/// Renders `report.md`, the PR comment, with the built-in template. No chart is published yet,
/// so the charts appear as text.
pub fn render_report(results: &Results) -> anyhow::Result<String> {
    render_report_with(COMMENT_TEMPLATE, results)
}

/// Renders the PR comment with the charts shown inline: `images` maps a chart's name (see
/// [`charts::plan_charts`], e.g. `customer-support-quality`) to the URL its PNG was published
/// at. A chart without a URL, or with one that is not a plain `https://` URL, is left out; the
/// text form of the charts is always there, collapsed when images are shown.
pub fn render_report_with_images(results: &Results, images: &BTreeMap<String, String>) -> anyhow::Result<String> {
    render_comment(COMMENT_TEMPLATE, results, images, RENDER_FUEL)
}

/// Renders the PR comment with a user-supplied template, which sees the same view as the
/// built-in one. When the comment would exceed [`MAX_COMMENT_CHARS`], fewer flipped cases are
/// shown (then none, then a compact list); a template that ignores the view's limits can still
/// come out longer, and is returned as it is rather than failing the gate over its length.
pub fn render_report_with(template_source: &str, results: &Results) -> anyhow::Result<String> {
    render_comment(template_source, results, &BTreeMap::new(), RENDER_FUEL)
}

/// Renders `summary.md`, the short form for `$GITHUB_STEP_SUMMARY`.
pub fn render_summary(results: &Results) -> anyhow::Result<String> {
    let env = environment(RENDER_FUEL)?;
    let template = env
        .template_from_named_str("summary.md.j2", SUMMARY_TEMPLATE)
        .map_err(describe)?;
    let view = ReportView::new(results, &BTreeMap::new(), LIMITS[0], Fit::Full);
    template.render(Value::from(Serde(&view))).map_err(describe)
}

const COMMENT_TEMPLATE: &str = include_str!("../../templates/comment.md.j2");
const SUMMARY_TEMPLATE: &str = include_str!("../../templates/summary.md.j2");

/// A user template comes from the repository, so a pull request can change it: `fuel` bounds
/// the work one render may do. The built-in report of 2,000 experiments needs under 2M.
const RENDER_FUEL: u64 = 10_000_000;

fn render_comment(
    template_source: &str,
    results: &Results,
    images: &BTreeMap<String, String>,
    fuel: u64,
) -> anyhow::Result<String> {
    let env = environment(fuel)?;
    let template = env
        .template_from_named_str("report template", template_source)
        .map_err(describe)?;
    let fits = |text: &str| text.chars().count() <= MAX_COMMENT_CHARS;
    let render = |view: &ReportView| template.render(Value::from(Serde(view))).map_err(describe);
    let full = render(&ReportView::new(results, images, LIMITS[0], Fit::Full))?;
    if fits(&full) {
        return Ok(full);
    }
    // Showing no case at all is the last step before the compact list; when even that does not
    // fit, the steps between need not be tried.
    let last = LIMITS.len() - 1;
    if fits(&render(&ReportView::new(results, images, LIMITS[last], Fit::Shrunk))?) {
        for limits in &LIMITS[1..] {
            let rendered = render(&ReportView::new(results, images, *limits, Fit::Shrunk))?;
            if fits(&rendered) {
                return Ok(rendered);
            }
        }
    }
    // Even without cases the comment is too long: list experiments in one line each, and as
    // a last resort show only the first ones.
    let mut view = ReportView::new(results, images, LIMITS[last], Fit::Compact);
    loop {
        let rendered = render(&view)?;
        if fits(&rendered) || view.experiments.is_empty() {
            return Ok(rendered);
        }
        let keep = view.experiments.len() / 2;
        view.omitted_experiments += view.experiments.len() - keep;
        view.experiments.truncate(keep);
    }
}

/// How much of each flipped case is shown; the renderer walks down this list until the
/// comment fits.
const LIMITS: [SizeLimits; 5] = [
    SizeLimits::new(20, 300, 1_000),
    SizeLimits::new(10, 200, 500),
    SizeLimits::new(5, 150, 300),
    SizeLimits::new(2, 100, 200),
    SizeLimits::new(0, 100, 200),
];

/// How the comment was made to fit under [`MAX_COMMENT_CHARS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fit {
    /// As the limits allow: nothing was cut for size.
    Full,
    /// Fewer flipped cases than usual.
    Shrunk,
    /// One line per experiment, no tables, no cases.
    Compact,
}

#[derive(Clone, Copy, Debug, Serialize)]
struct SizeLimits {
    /// Flipped cases shown per experiment and direction.
    cases: usize,
    input_chars: usize,
    output_chars: usize,
    failure_chars: usize,
    /// Failure messages shown per call side.
    failures: usize,
    /// Names, paths, refs: anything that should be short but comes from the PR.
    name_chars: usize,
    reason_chars: usize,
}

impl SizeLimits {
    const fn new(cases: usize, input_chars: usize, output_chars: usize) -> SizeLimits {
        SizeLimits {
            cases,
            input_chars,
            output_chars,
            failure_chars: 200,
            failures: 5,
            name_chars: 100,
            reason_chars: 500,
        }
    }
}

/// Unaffected experiment names listed before "and N more".
const UNAFFECTED_SHOWN: usize = 30;

/// minijinja's error `Display` omits the template line; its alternate form has it.
fn describe(err: minijinja::Error) -> anyhow::Error {
    anyhow::anyhow!("rendering the report template: {err:#}")
}

// ---------------------------------------------------------------------------------------------
// The view model. Field names are the template's vocabulary: keep them stable, a user template
// depends on them.

#[derive(Debug, Serialize)]
struct ReportView<'a> {
    marker: Safe,
    tool_version: &'a str,
    verdict: VerdictView,
    reason: &'a str,
    /// Why a passing PR still "needs attention": non-blocking regressions and missed SLOs.
    attention: Vec<AttentionView<'a>>,
    base: RefView<'a>,
    head: RefView<'a>,
    /// An A/A check (`run --aa`): both arms are the base's files, so any difference found is a
    /// false alarm; the header says so instead of "base → head".
    aa: bool,
    /// What the pull request changes in the policy that judges it: it takes effect after merge.
    policy_changes: Vec<&'a str>,
    unchecked_judges: Vec<&'a str>,
    /// "2 changed, 1 new, 1 removed".
    counts: Safe,
    experiments: Vec<ExperimentView<'a>>,
    /// Experiments dropped from the end because even the compact list was too long.
    omitted_experiments: usize,
    unaffected: Vec<&'a str>,
    unaffected_more: usize,
    /// Whether any p shown is Holm-adjusted.
    any_adjusted: bool,
    /// The rule the verdicts follow, in one sentence.
    rule: Safe,
    /// Some experiment ran sequentially: its p-values are repeated p-values.
    any_sequential: bool,
    run: RunView,
    limits: SizeLimits,
    /// Fewer flipped cases are shown than usual, to keep the comment under the size limit.
    shrunk: bool,
    /// One line per experiment, no tables: the full report did not fit.
    compact: bool,
    max_chars: usize,
}

#[derive(Debug, Serialize)]
struct AttentionView<'a> {
    experiment: &'a str,
    metric: &'a str,
    /// "regressed (not blocking)", "missed its SLO ≤ 800 ms".
    what: Safe,
}

#[derive(Debug, Serialize)]
struct VerdictView {
    symbol: &'static str,
    word: String,
}

#[derive(Debug, Serialize)]
struct RefView<'a> {
    name: &'a str,
    sha: &'a str,
    short_sha: &'a str,
    /// The working tree, with edits its commit does not have.
    dirty: bool,
}

#[derive(Debug, Serialize)]
struct ExperimentView<'a> {
    name: &'a str,
    status: &'static str,
    /// What the status means for this report, e.g. "new at head: candidate only, no baseline".
    status_note: Option<&'static str>,
    removed: bool,
    symbol: &'static str,
    verdict: &'static str,
    reason: &'a str,
    provider: &'a str,
    affected_by: Vec<&'a str>,
    /// Why it is affected, in words ("provider `sim`: base_url changed"); raw, escaped by the
    /// template.
    change_notes: Vec<&'a str>,
    /// The pull request's edits to the cases it is judged on, for the verdict line: "3 cases
    /// removed (a, b, c), 1 added". Built here, ids escaped.
    dataset_note: Option<Safe>,
    repeats: u32,
    /// What differs between the baseline and candidate configs (model, temperature, …); empty
    /// when `change_notes` says it.
    changes: Vec<ArmChange>,
    metrics: Vec<MetricRow<'a>>,
    /// Its calls failed beyond tolerance: nothing was judged, the comment says so.
    run_failed: bool,
    /// Refused before any call (the budget): nothing was sent, the reason says why.
    not_run: bool,
    /// The interval column's header: "95% CI" when every metric shares one α, "repeated CI"
    /// in a sequential run (each at its look's nominal level), else "CI (1 − α)".
    ci_label: Safe,
    /// "At 1,000,000 requests/month: $412 → $405 per month; the candidate saves $7/month."
    projection: Option<Safe>,
    /// Published chart images, in the order of [`charts::plan_charts`].
    images: Vec<ImageView>,
    /// The charts as text bars, one line each, for a code block: only characters that cannot
    /// end the block (names from the config are reduced to a safe alphabet).
    text_chart: Vec<Safe>,
    /// "this suite can detect a change of N; the margin is M" for underpowered metrics.
    power_notes: Vec<PowerNote<'a>>,
    /// The design of the run in sentences: repeats and flaky cases, variance components,
    /// sequential looks, A/A results, equivalence, drift. Built here, names escaped.
    design_notes: Vec<Safe>,
    flips: Vec<FlipGroup<'a>>,
}

#[derive(Debug, Serialize)]
struct ImageView {
    /// "quality", "latency", …: ours, no escaping needed.
    kind: &'static str,
    /// Checked by [`safe_image_url`]: placed in the template as it is.
    url: Safe,
}

#[derive(Debug, Serialize)]
struct ArmChange {
    field: &'static str,
    baseline: String,
    candidate: String,
}

#[derive(Debug, Serialize)]
struct PowerNote<'a> {
    metric: &'a str,
    mde: Safe,
    margin: Safe,
    /// "about 1,240 cases would detect it", when the power analysis could say.
    cases_needed: Option<usize>,
}

#[derive(Debug, Serialize)]
struct FlipGroup<'a> {
    /// "3 cases flipped pass → fail".
    summary: Safe,
    symbol: &'static str,
    total: usize,
    cases: Vec<CaseView<'a>>,
    hidden: usize,
}

#[derive(Debug, Serialize)]
struct CaseView<'a> {
    id: &'a str,
    input: &'a str,
    baseline: SideView<'a>,
    candidate: SideView<'a>,
    /// The candidate's output as a word diff against the baseline's; empty when either side
    /// has no output.
    diff: Vec<DiffSegment<'a>>,
    /// The outputs were longer than the diff shows.
    diff_cut: bool,
}

/// A run of words the same on both sides (`same`), only in the baseline (`del`) or only in the
/// candidate (`ins`).
#[derive(Debug, PartialEq, Serialize)]
struct DiffSegment<'a> {
    op: &'static str,
    text: &'a str,
}

/// One side of a flipped case: a representative call (one with the side's majority outcome)
/// and the assertion failures across all its repeats.
#[derive(Debug, Serialize)]
struct SideView<'a> {
    output: &'a str,
    error: Option<&'a str>,
    failures: Vec<&'a str>,
    failures_more: usize,
    /// "2/3 repeats passed" when there were several repeats.
    repeats: Option<Safe>,
}

#[derive(Debug, Serialize)]
struct RunView {
    cases: usize,
    repeats: Safe,
    calls: usize,
    completed: usize,
    errored: usize,
    cache_hits: usize,
    /// Calls the budget refused (before the run, or at its hard cap).
    budget_refused: usize,
    spend: Safe,
    simulated: bool,
    estimated: Safe,
    /// Spend per completed call, the unit a reviewer compares with the per-request cost.
    spend_per_call: Safe,
    /// Judging is the evaluation's cost, never the change's: shown apart from generation.
    judge_calls: usize,
    judge_errors: usize,
    generation_spend: Safe,
    judge_spend: Safe,
    retries: usize,
    fallbacks: usize,
    rate_limited: usize,
    resumed: usize,
    remeasured: usize,
    duration: Safe,
    /// `promptgate run --base … --head …`, only when both SHAs are plain hex: the command is
    /// shown in a code block, where escaping does not apply.
    reproduce: Option<Safe>,
}

impl<'a> ReportView<'a> {
    fn new(results: &'a Results, images: &BTreeMap<String, String>, limits: SizeLimits, fit: Fit) -> ReportView<'a> {
        let attention = attention(results);
        let (symbol, word) = match results.verdict {
            Verdict::Pass if attention.is_empty() => ("✅", "pass"),
            Verdict::Pass => ("⚠️", "needs attention"),
            Verdict::Fail => ("❌", words::fail_word(words::regressed(results))),
            Verdict::Waived => ("⚠️", "waived"),
            Verdict::Error => ("⛔", "run error"),
            Verdict::NeedsApproval => ("⏸️", "needs approval"),
        };
        // Results untrusted code produced (a fork's, run without secrets) are its own word,
        // whatever it says: no ✅ in the heading a reviewer reads first, and the heading says so.
        let (symbol, word) = if results.trust.untrusted {
            ("🔓", format!("untrusted code's {word}, not yet verified"))
        } else {
            (symbol, word.to_owned())
        };
        let mut image_urls: BTreeMap<usize, Vec<ImageView>> = BTreeMap::new();
        for plan in charts::plan_charts(results) {
            if let Some(url) = images.get(&plan.name).filter(|u| safe_image_url(u)) {
                image_urls.entry(plan.experiment).or_default().push(ImageView {
                    kind: plan.kind.as_str(),
                    url: Safe(url.clone()),
                });
            }
        }
        let any_adjusted = results
            .experiments
            .iter()
            .flat_map(|e| &e.metrics)
            .any(|m| m.p_adjusted.is_some());
        ReportView {
            marker: Safe::from(REPORT_MARKER),
            tool_version: &results.tool_version,
            verdict: VerdictView { symbol, word },
            reason: &results.reason,
            attention,
            base: RefView::new(&results.base.name, &results.base.sha, results.base.dirty),
            head: RefView::new(&results.head.name, &results.head.sha, results.head.dirty),
            aa: results.defaults.as_ref().is_some_and(|d| d.aa),
            policy_changes: results.policy_changes.iter().map(String::as_str).collect(),
            unchecked_judges: results.unchecked_judges.iter().map(String::as_str).collect(),
            counts: Safe(status_counts(
                &results.experiments,
                results.trust.approval.as_ref().map_or(0, |a| a.experiments.len()),
            )),
            experiments: results
                .experiments
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let images = image_urls.remove(&i).unwrap_or_default();
                    let aa = results.defaults.as_ref().is_some_and(|d| d.aa);
                    let mut view = ExperimentView::new(e, limits, images, (results.requests_per_month, aa));
                    // Untrusted code's pass is its own word here too.
                    if results.trust.untrusted && view.symbol == "✅" {
                        view.symbol = "🔓";
                    }
                    view
                })
                .collect(),
            omitted_experiments: 0,
            unaffected: results
                .unaffected
                .iter()
                .take(UNAFFECTED_SHOWN)
                .map(String::as_str)
                .collect(),
            unaffected_more: results.unaffected.len().saturating_sub(UNAFFECTED_SHOWN),
            any_adjusted,
            rule: Safe::from(words::RULE),
            any_sequential: results.experiments.iter().any(|e| e.noise.sequential.is_some()),
            run: RunView::new(results),
            limits,
            shrunk: fit != Fit::Full,
            compact: fit == Fit::Compact,
            max_chars: MAX_COMMENT_CHARS,
        }
    }
}

impl<'a> RefView<'a> {
    fn new(name: &'a str, sha: &'a str, dirty: bool) -> RefView<'a> {
        let short_sha = match sha.char_indices().nth(7) {
            Some((byte, _)) => &sha[..byte],
            None => sha,
        };
        RefView {
            name,
            sha,
            short_sha,
            dirty,
        }
    }
}

/// Non-blocking regressions and missed SLOs that did not fail the gate: a passing PR with any of
/// them reads "needs attention", not a plain pass.
fn attention(results: &Results) -> Vec<AttentionView<'_>> {
    let mut notes = Vec::new();
    for e in &results.experiments {
        if e.status == ExperimentStatus::Removed {
            continue;
        }
        for m in e.metrics.iter().filter(|m| !m.fails_gate) {
            // Errors that rose significantly are always shown, gated or not.
            let errors_rose = m.name == crate::metrics::ERROR_RATE
                && matches!(m.verdict, MetricVerdict::Regression | MetricVerdict::MinorRegression);
            if (m.gated || errors_rose) && m.verdict == MetricVerdict::Regression {
                notes.push(AttentionView {
                    experiment: &e.name,
                    metric: &m.name,
                    what: Safe::from(match m.gated {
                        true => "regressed (not blocking)",
                        false => "is significantly worse (not gated)",
                    }),
                });
            }
            if (m.gated || errors_rose) && m.verdict == MetricVerdict::MinorRegression {
                notes.push(AttentionView {
                    experiment: &e.name,
                    metric: &m.name,
                    what: Safe(format!(
                        "is slightly worse, within its margin of {}",
                        MetricText::new(m).margin
                    )),
                });
            }
            // Worse beyond its margin, too noisy to tell: the verdict's reason says it, and
            // the heading must not read a plain pass (`verdict::worse_but_unproven`).
            if crate::verdict::worse_but_unproven(m).is_some() {
                notes.push(AttentionView {
                    experiment: &e.name,
                    metric: &m.name,
                    what: Safe(format!(
                        "is worse beyond its margin of {}, but not significantly: too few cases to tell",
                        MetricText::new(m).margin
                    )),
                });
            }
            if let Some(slo) = MetricText::new(m).slo_missed {
                notes.push(AttentionView {
                    experiment: &e.name,
                    metric: &m.name,
                    what: Safe(format!(
                        "candidate misses its {slo}",
                        slo = slo.trim_end_matches(" missed")
                    )),
                });
            }
        }
    }
    notes
}

/// An image URL the comment may show: https (or http, for GitHub Enterprise on a private
/// network), and nothing that could end the Markdown image or open HTML.
fn safe_image_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2_000
        && url.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '(' | ')' | '<' | '>' | '"' | '\'' | '`' | '\\' | '[' | ']' | '|')
        })
}

fn status_counts(experiments: &[ExperimentResult], held: usize) -> String {
    let mut parts = Vec::new();
    for status in [
        ExperimentStatus::Changed,
        ExperimentStatus::New,
        ExperimentStatus::Removed,
        ExperimentStatus::Forced,
    ] {
        let n = experiments.iter().filter(|e| e.status == status).count();
        if n > 0 {
            parts.push(format!("{n} {}", status_word(status)));
        }
    }
    // Held for a maintainer's approval: affected, not run (the report said "no experiments
    // affected" of a run holding its one experiment).
    if held > 0 {
        parts.push(format!("{held} waiting for approval"));
    }
    if parts.is_empty() {
        "no experiments affected".to_owned()
    } else {
        parts.join(", ")
    }
}

fn status_word(status: ExperimentStatus) -> &'static str {
    match status {
        ExperimentStatus::Changed => "changed",
        ExperimentStatus::New => "new",
        ExperimentStatus::Removed => "removed",
        ExperimentStatus::Forced => "forced",
    }
}

impl<'a> ExperimentView<'a> {
    fn new(
        e: &'a ExperimentResult,
        limits: SizeLimits,
        images: Vec<ImageView>,
        (requests_per_month, aa): (Option<u64>, bool),
    ) -> ExperimentView<'a> {
        let status_note = match e.status {
            ExperimentStatus::Changed => None,
            ExperimentStatus::New => Some("new at head: candidate only, no baseline"),
            ExperimentStatus::Removed => Some("removed at head: not run"),
            // An A/A run forces every experiment: nothing changed, by design.
            ExperimentStatus::Forced if aa => Some("A/A: the base against itself"),
            ExperimentStatus::Forced => Some("not affected by this change, run with --all"),
        };
        let (symbol, verdict) = match (e.status, e.verdict) {
            (ExperimentStatus::Removed, ExperimentVerdict::Fail) => ("❌", "fail"),
            (ExperimentStatus::Removed, _) => ("➖", "not run"),
            (_, ExperimentVerdict::Pass) => ("✅", "pass"),
            (_, ExperimentVerdict::Fail) => ("❌", "fail"),
            (_, ExperimentVerdict::Error) => ("⛔", "run error"),
        };
        let power_notes =
            e.metrics
                .iter()
                .filter(|m| m.gated && e.status != ExperimentStatus::New)
                .filter_map(|m| {
                    let mde = finite(m.mde)?;
                    let unit = format::unit(&m.name);
                    // A metric settled at an early sequential look was seen well enough; its MDE
                    // describes that look's few cases (`underpowered` is cleared for it too).
                    let settled_early = e.noise.sequential.as_ref().is_some_and(|s| s.stopped_early)
                        && (m.non_inferior || m.verdict == MetricVerdict::Regression);
                    // An interval that proved the metric within its margin already rules out the
                    // regression a power note warns of ("would pass unnoticed" beside "equivalent").
                    let proven = m.non_inferior || m.details.equivalent == Some(true);
                    (!settled_early && !proven && m.details.underpowered && mde > m.margin && m.margin.is_finite())
                        .then(|| PowerNote {
                            metric: &m.name,
                            mde: Safe(unit.magnitude(mde)),
                            margin: Safe(unit.magnitude(m.margin)),
                            cases_needed: m.details.cases_needed,
                        })
                })
                .collect();
        let flips = if e.status == ExperimentStatus::Removed {
            Vec::new()
        } else {
            [Flip::PassToFail, Flip::FailToPass]
                .into_iter()
                .filter_map(|flip| FlipGroup::new(&e.cases, flip, limits))
                .collect()
        };
        // A run that failed judged nothing: its numbers describe errors, not the change.
        let failed = e.verdict == ExperimentVerdict::Error;
        let shown = !failed && e.status != ExperimentStatus::Removed;
        ExperimentView {
            name: &e.name,
            status: status_word(e.status),
            status_note,
            removed: e.status == ExperimentStatus::Removed,
            run_failed: failed,
            not_run: failed && e.cases.is_empty(),
            symbol,
            verdict,
            // The status note is shown beside the reason; a reason that opens with it (a new
            // experiment's does) would say it twice.
            reason: status_note
                .and_then(|note| e.reason.strip_prefix(note))
                .map_or(e.reason.as_str(), |rest| rest.trim_start_matches([';', ' '])),
            provider: &e.provider,
            affected_by: e.affected_by.iter().map(String::as_str).collect(),
            change_notes: e.changed.changes.iter().map(String::as_str).collect(),
            dataset_note: e.changed.dataset_changes.as_ref().map(|d| Safe(dataset_note(d))),
            repeats: e.repeats,
            changes: if e.changed.changes.is_empty() {
                arm_changes(e.baseline.as_ref(), e.candidate.as_ref())
            } else {
                Vec::new()
            },
            metrics: if failed {
                Vec::new()
            } else {
                let batched = e
                    .cases
                    .iter()
                    .any(|c| c.baseline.iter().chain(&c.candidate).any(|call| call.batch));
                let unpriced = unpriced_models(e);
                e.metrics
                    .iter()
                    .map(|m| MetricRow::new(m, e.status, batched, &unpriced))
                    .collect()
            },
            ci_label: Safe(words::ci_label(e)),
            projection: projection_sentence(e, requests_per_month).filter(|_| !failed).map(Safe),
            images: if failed { Vec::new() } else { images },
            text_chart: if shown {
                text_chart(e, requests_per_month).into_iter().map(Safe).collect()
            } else {
                Vec::new()
            },
            power_notes: if failed { Vec::new() } else { power_notes },
            design_notes: match shown {
                true => design_notes(e).into_iter().map(Safe).collect(),
                // Its looks, that the cap stopped, are all that is known of a run that failed.
                false => sequential_note(e).filter(|_| failed).into_iter().map(Safe).collect(),
            },
            flips: if failed { Vec::new() } else { flips },
        }
    }
}

impl RunView {
    fn new(results: &Results) -> RunView {
        let run = &results.run;
        let repeats: BTreeSet<u32> = results
            .experiments
            .iter()
            .filter(|e| e.status != ExperimentStatus::Removed)
            .map(|e| e.repeats)
            .collect();
        let repeats = match (repeats.first(), repeats.last()) {
            (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
            (Some(lo), Some(hi)) => format!("{lo}–{hi}"),
            _ => "—".to_owned(),
        };
        // A working tree with uncommitted edits is not reproducible from its commit.
        // With the flags that made it what it is: an A/A check run without `--aa` is a real
        // comparison, a shard without `--shard` the whole run.
        let aa = results.defaults.as_ref().is_some_and(|d| d.aa);
        let flags = [
            aa.then(|| " --aa".to_owned()),
            results
                .shard
                .as_ref()
                .map(|s| format!(" --shard {}/{}", s.index, s.count)),
        ]
        .into_iter()
        .flatten()
        .collect::<String>();
        let reproduce =
            (is_hex_sha(&results.base.sha) && is_hex_sha(&results.head.sha) && !results.head.dirty).then(|| {
                if aa {
                    format!("promptgate run --base {}{flags}", results.base.sha)
                } else {
                    format!(
                        "promptgate run --base {} --head {}{flags}",
                        results.base.sha, results.head.sha
                    )
                }
            });
        RunView {
            cases: run.cases,
            repeats: Safe(repeats),
            calls: run.calls,
            completed: run.completed,
            errored: run.errored,
            cache_hits: run.cache_hits,
            budget_refused: run.budget_refused,
            spend: Safe(dollars(run.spend_usd)),
            simulated: run.simulated,
            estimated: Safe(dollars(run.estimated_usd)),
            spend_per_call: Safe(if run.completed > 0 {
                dollars((run.spend_usd - run.judge_spend_usd) / run.completed as f64)
            } else {
                dash()
            }),
            judge_calls: run.judge_calls,
            judge_errors: run.judge_errors,
            generation_spend: Safe(dollars(run.spend_usd - run.judge_spend_usd)),
            judge_spend: Safe(dollars(run.judge_spend_usd)),
            retries: run.retries,
            fallbacks: run.fallbacks,
            rate_limited: run.rate_limited,
            resumed: run.resumed,
            remeasured: run.remeasured,
            duration: Safe(duration(run.duration_ms)),
            reproduce: reproduce.map(Safe),
        }
    }
}

/// A name from the config, for a code block: nothing that could close the block or read as
/// something else, at most 20 characters.
fn safe_label(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/') {
                c
            } else {
                '?'
            }
        })
        .collect();
    if safe.chars().count() > 20 {
        format!("{}…", &safe[..19])
    } else {
        safe
    }
}

fn is_hex_sha(sha: &str) -> bool {
    (4..=64).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A realistic [`Results`] built by hand, shared by the markdown and JUnit tests.
#[cfg(test)]
pub(crate) mod test_fixtures {
    use std::collections::BTreeMap;

    use crate::results::*;

    pub(crate) fn demo_results() -> Results {
        Results {
            schema_version: SCHEMA_VERSION,
            tool_version: "0.1.0".to_owned(),
            verdict: Verdict::Fail,
            reason: "pass_rate regressed in customer-support (−6.0 pp, p=0.006, blocking).".to_owned(),
            base: GitRef {
                name: "main".to_owned(),
                sha: "3f2a9c1e0b7d4a5f6e8c9d0a1b2c3d4e5f6a7b8c".to_owned(),
                dirty: false,
            },
            head: GitRef {
                name: "prompt/shorter-answers".to_owned(),
                sha: "9b7d4e2a1c3f5e6d7a8b9c0d1e2f3a4b5c6d7e8f".to_owned(),
                dirty: false,
            },
            config: "promptgate.yaml".to_owned(),
            experiments: vec![customer_support(), billing_faq(), onboarding_tips(), legacy_greeting()],
            unaffected: vec!["translation".to_owned(), "summarize-ticket".to_owned()],
            run: RunFacts {
                cases: 184,
                calls: 584,
                completed: 582,
                errored: 2,
                cache_hits: 37,
                spend_usd: 0.01234,
                estimated_usd: 0.0151,
                simulated: true,
                duration_ms: 83_400,
                ..RunFacts::default()
            },
            requests_per_month: Some(1_000_000),
            waiver: None,
            trust: TrustFacts::default(),
            shard: None,
            merged: None,
            gates: None,
            defaults: None,
            policy_changes: Vec::new(),
            base_error: None,
            unchecked_judges: Vec::new(),
            outputs_from: Vec::new(),
        }
    }

    fn arm(version: &str, model: &str, temperature: f64) -> ArmInfo {
        ArmInfo {
            variant: "configs/customer-support.yaml".to_owned(),
            version: Some(version.to_owned()),
            model: model.to_owned(),
            prompt: "prompts/customer-support.md".to_owned(),
            temperature: Some(temperature),
            max_tokens: Some(1024),
            top_p: Some(0.9),
            sampling: crate::chat::Sampling::default(),
            evaluation_metrics: BTreeMap::new(),
            timeout_ms: 60_000,
        }
    }

    pub(crate) fn metric(name: &str, direction: Direction) -> MetricResult {
        MetricResult {
            name: name.to_owned(),
            direction,
            blocking: false,
            gated: true,
            baseline: None,
            candidate: None,
            delta: None,
            ci: None,
            p_value: None,
            p_adjusted: None,
            test: "none".to_owned(),
            n: 0,
            verdict: MetricVerdict::NoChange,
            non_inferior: false,
            mde: None,
            margin: 0.0,
            alpha: 0.05,
            slo: None,
            fails_gate: false,
            details: MetricDetails::default(),
        }
    }

    #[expect(clippy::too_many_arguments, reason = "a table of numbers reads best in one line")]
    fn compared(
        mut m: MetricResult,
        baseline: f64,
        candidate: f64,
        ci: [f64; 2],
        p: f64,
        p_adjusted: f64,
        n: usize,
        verdict: MetricVerdict,
    ) -> MetricResult {
        m.baseline = Some(baseline);
        m.candidate = Some(candidate);
        m.delta = Some(candidate - baseline);
        m.ci = Some(ci);
        m.p_value = Some(p);
        m.p_adjusted = Some(p_adjusted);
        m.n = n;
        m.verdict = verdict;
        m
    }

    pub(crate) fn call(passed: bool, output: &str, failures: &[&str]) -> Call {
        Call {
            output: Some(output.into()),
            latency_ms: Some(512.0).into(),
            tokens: Tokens {
                input: 310,
                cached_input: 0,
                output: 64,
            },
            cost_usd: 0.000412,
            list_cost_usd: 0.000412,
            attempts: 1,
            scores: Scores::from([("pass", Score::Bool(passed))]),
            evaluation: crate::results::Evaluation {
                failures: failures.iter().map(|f| (*f).to_owned()).collect(),
                ..Default::default()
            }
            .into(),
            ..Call::default()
        }
    }

    pub(crate) fn flipped(id: &str, input: &str, baseline: Call, candidate: Call) -> CaseResult {
        let flip = match (baseline.passed(), candidate.passed()) {
            (true, false) => Some(Flip::PassToFail),
            (false, true) => Some(Flip::FailToPass),
            _ => None,
        };
        CaseResult {
            text: CaseText::new(id, None, input),
            baseline: vec![baseline],
            candidate: vec![candidate],
            flip,
        }
    }

    fn customer_support() -> ExperimentResult {
        let mut pass_rate = compared(
            metric("pass_rate", Direction::Higher),
            0.87,
            0.81,
            [-0.095, -0.025],
            0.0021,
            0.0063,
            120,
            MetricVerdict::Regression,
        );
        pass_rate.test = "mcnemar-exact".to_owned();
        pass_rate.blocking = true;
        pass_rate.fails_gate = true;
        pass_rate.margin = 0.02;
        pass_rate.mde = Some(0.081);
        pass_rate.details.underpowered = true;

        let mut latency = compared(
            metric("latency_p95_ms", Direction::Lower),
            612.0,
            655.0,
            [-12.4, 97.6],
            0.21,
            0.42,
            120,
            MetricVerdict::NoChange,
        );
        latency.test = "sign-flip-permutation".to_owned();
        latency.margin = 91.8;
        latency.mde = Some(64.0);
        latency.slo = Some(SloResult {
            target: 800.0,
            met: true,
        });

        let mut cost = compared(
            metric("cost_per_request", Direction::Lower),
            0.000412,
            0.000405,
            [-0.0000201, 0.0000062],
            0.31,
            0.62,
            120,
            MetricVerdict::NoChange,
        );
        cost.test = "paired-bootstrap-t".to_owned();
        cost.blocking = true;
        cost.margin = 0.0000412;
        cost.non_inferior = true;
        cost.mde = Some(0.000019);

        let mut relevance = compared(
            metric("relevance", Direction::Higher),
            0.842,
            0.835,
            [-0.021, 0.007],
            0.27,
            0.27,
            120,
            MetricVerdict::NoChange,
        );
        relevance.test = "paired-t".to_owned();
        relevance.gated = false;
        relevance.p_adjusted = None;

        ExperimentResult {
            name: "customer-support".to_owned(),
            status: ExperimentStatus::Changed,
            affected_by: vec!["prompts/customer-support.md".to_owned()],
            verdict: ExperimentVerdict::Fail,
            reason: "pass_rate fell 6.0 pp, beyond the 2.0 pp margin.".to_owned(),
            provider: "offline".to_owned(),
            baseline: Some(arm("v1.2.3", "gpt-4-turbo", 0.5)),
            candidate: Some(arm("v1.3.0", "gpt-4-turbo", 0.5)),
            repeats: 1,
            metrics: vec![pass_rate, latency, cost, relevance],
            cases: vec![
                flipped(
                    "refund-late",
                    "Can I get a refund after 45 days?",
                    call(
                        true,
                        "Refunds are available within 30 days of purchase. After that, we can offer store credit.",
                        &[],
                    ),
                    call(
                        false,
                        "Sorry, no refunds.",
                        &["icontains: expected \"30 days\" in the output"],
                    ),
                ),
                flipped(
                    "cancel-plan",
                    "How do I cancel my plan?\nI tried the settings page.",
                    call(
                        true,
                        "Go to Settings → Billing → Cancel plan. Your plan stays active until the end of the period.",
                        &[],
                    ),
                    call(
                        false,
                        "Contact support.",
                        &[
                            "icontains: expected \"Settings\" in the output",
                            "min-length: 16 characters, expected at least 40",
                        ],
                    ),
                ),
                flipped(
                    "greeting",
                    "hi",
                    call(true, "Hello! How can I help you today?", &[]),
                    call(true, "Hi! How can I help?", &[]),
                ),
                flipped(
                    "invoice-copy",
                    "Where can I download last month's invoice?",
                    call(
                        false,
                        "I am not sure.",
                        &["icontains: expected \"Billing\" in the output"],
                    ),
                    call(true, "Open Billing → Invoices and pick the month.", &[]),
                ),
            ],
            dataset_cases: Vec::new(),
            noise: ExperimentNoise::default(),
            changed: ChangeFacts::default(),
        }
    }

    fn billing_faq() -> ExperimentResult {
        let mut pass_rate = compared(
            metric("pass_rate", Direction::Higher),
            0.92,
            0.91,
            [-0.03, 0.012],
            0.69,
            1.0,
            40,
            MetricVerdict::NoChange,
        );
        pass_rate.test = "paired-t".to_owned();
        pass_rate.blocking = true;
        pass_rate.margin = 0.05;
        pass_rate.non_inferior = true;
        pass_rate.mde = Some(0.041);

        let mut cost = compared(
            metric("cost_per_request", Direction::Lower),
            0.00812,
            0.00154,
            [-0.00688, -0.00629],
            0.000_002,
            0.000_012,
            40,
            MetricVerdict::Improvement,
        );
        cost.test = "paired-bootstrap-t".to_owned();
        cost.blocking = true;
        cost.margin = 0.000812;
        cost.non_inferior = true;
        cost.mde = Some(0.00021);

        let mut latency = compared(
            metric("latency_p95_ms", Direction::Lower),
            740.0,
            410.0,
            [-402.0, -251.0],
            0.0004,
            0.002,
            40,
            MetricVerdict::Improvement,
        );
        latency.test = "sign-flip-permutation".to_owned();
        latency.margin = 111.0;
        latency.non_inferior = true;
        latency.slo = Some(SloResult {
            target: 800.0,
            met: true,
        });

        let mut errors = compared(
            metric("error_rate", Direction::Lower),
            0.0,
            0.0083,
            [0.0, 0.025],
            1.0,
            1.0,
            40,
            MetricVerdict::NoChange,
        );
        errors.test = "mcnemar-exact".to_owned();
        errors.margin = 0.02;

        let mut case = flipped(
            "annual-discount",
            "Is there a discount for paying yearly?",
            call(false, "Yes.", &["min-length: 4 characters, expected at least 20"]),
            call(true, "Yes: paying yearly saves 15% compared with monthly billing.", &[]),
        );
        case.baseline = (0..3)
            .map(|repeat| Call {
                repeat,
                ..case.baseline[0].clone()
            })
            .collect();
        case.baseline[2].scores.insert("pass", Score::Bool(true));
        case.baseline[2].set_failures(thin_vec::ThinVec::new());
        case.candidate = (0..3)
            .map(|repeat| Call {
                repeat,
                ..case.candidate[0].clone()
            })
            .collect();

        ExperimentResult {
            name: "billing-faq".to_owned(),
            status: ExperimentStatus::Changed,
            affected_by: vec!["configs/billing-faq.yaml".to_owned()],
            verdict: ExperimentVerdict::Pass,
            reason: "cost_per_request fell 81%; quality is non-inferior within the margin.".to_owned(),
            provider: "offline".to_owned(),
            baseline: Some(ArmInfo {
                variant: "configs/billing-faq.yaml".to_owned(),
                ..arm("v2.0.0", "gpt-4-turbo", 0.3)
            }),
            candidate: Some(ArmInfo {
                variant: "configs/billing-faq.yaml".to_owned(),
                ..arm("v2.1.0", "gpt-4o-mini", 0.3)
            }),
            repeats: 3,
            metrics: vec![pass_rate, cost, latency, errors],
            cases: vec![case],
            dataset_cases: Vec::new(),
            noise: ExperimentNoise::default(),
            changed: ChangeFacts::default(),
        }
    }

    fn onboarding_tips() -> ExperimentResult {
        let mut pass_rate = metric("pass_rate", Direction::Higher);
        pass_rate.blocking = true;
        pass_rate.candidate = Some(0.95);
        pass_rate.n = 24;
        let mut latency = metric("latency_p95_ms", Direction::Lower);
        latency.candidate = Some(845.0);
        latency.n = 24;
        latency.slo = Some(SloResult {
            target: 800.0,
            met: false,
        });
        ExperimentResult {
            name: "onboarding-tips".to_owned(),
            status: ExperimentStatus::New,
            affected_by: vec![
                "configs/onboarding-tips.yaml".to_owned(),
                "datasets/onboarding.jsonl".to_owned(),
            ],
            verdict: ExperimentVerdict::Pass,
            reason: "New experiment: no baseline to compare against.".to_owned(),
            provider: "offline".to_owned(),
            baseline: None,
            candidate: Some(arm("v0.1.0", "gpt-4o-mini", 0.7)),
            repeats: 1,
            metrics: vec![pass_rate, latency],
            cases: Vec::new(),
            dataset_cases: Vec::new(),
            noise: ExperimentNoise::default(),
            changed: ChangeFacts::default(),
        }
    }

    fn legacy_greeting() -> ExperimentResult {
        ExperimentResult {
            name: "legacy-greeting".to_owned(),
            status: ExperimentStatus::Removed,
            affected_by: vec!["configs/legacy-greeting.yaml".to_owned()],
            verdict: ExperimentVerdict::Pass,
            reason: "Removed at head.".to_owned(),
            provider: "offline".to_owned(),
            baseline: Some(arm("v1.0.0", "gpt-3.5-turbo", 0.5)),
            candidate: None,
            repeats: 1,
            metrics: Vec::new(),
            cases: Vec::new(),
            dataset_cases: Vec::new(),
            noise: ExperimentNoise::default(),
            changed: ChangeFacts::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::flips::word_diff;
    use super::test_fixtures::{call, demo_results, flipped, metric};
    use super::*;
    use crate::results::*;

    /// The structure a hostile output must not be able to change.
    #[track_caller]
    fn assert_structure(md: &str) {
        assert_eq!(md.matches(REPORT_MARKER).count(), 1, "exactly one marker");
        assert!(md.starts_with(REPORT_MARKER));
        assert_eq!(md.matches("<!--").count(), 1, "no other comment opens");
        assert_eq!(md.matches("-->").count(), 1, "no other comment closes");
        let mut depth = 0i32;
        for tag in md.match_indices("details>") {
            let closing = md[..tag.0].ends_with("</");
            let opening = md[..tag.0].ends_with('<');
            if closing {
                depth -= 1;
            } else if opening {
                depth += 1;
            }
            assert!((0..=1).contains(&depth), "<details> never nests or closes early");
        }
        assert_eq!(depth, 0, "<details> balanced");
        assert_eq!(md.matches("<details>").count(), md.matches("</details>").count());
        let lower = md.to_lowercase();
        assert!(!lower.contains("<script"), "no raw <script>");
        assert!(!lower.contains("<img"), "no raw <img>");
        assert!(!md.contains("@octocat"), "no bare @mention");
        let bare_reference = md.match_indices("#1").any(|(at, _)| !md[..at].ends_with('&'));
        assert!(!bare_reference, "no bare issue reference (`&#124;` is a pipe, not one)");
        // Code blocks are the charts as text and the reproduce command, and nothing in them can
        // close them.
        let mut in_block = false;
        for line in md.lines() {
            if line.starts_with("```") {
                if in_block {
                    assert_eq!(line, "```", "a block closes with a bare fence");
                } else {
                    assert!(line == "```text" || line == "```sh", "{line}");
                }
                in_block = !in_block;
            } else if in_block {
                assert!(!line.contains('`') && !line.contains('<'), "{line}");
            }
        }
        assert!(!in_block, "every code block closes");
        // Every table row has as many cell separators as its header.
        let mut header_pipes = None;
        for line in md.lines() {
            if line.starts_with('|') {
                let pipes = line.matches('|').count();
                match header_pipes {
                    None => header_pipes = Some(pipes),
                    Some(expected) => assert_eq!(pipes, expected, "table row: {line}"),
                }
            } else {
                header_pipes = None;
            }
        }
    }

    #[test]
    fn report_snapshot() {
        let md = render_report(&demo_results()).unwrap();
        assert_structure(&md);
        insta::assert_snapshot!("report", md);
    }

    /// A case no judgement answered in an arm has no flip, and is not "unchanged": the cases
    /// line counts it apart (the audit: two unjudged cases were counted unchanged).
    #[test]
    fn a_case_not_judged_in_an_arm_is_not_counted_unchanged() {
        let mut results = demo_results();
        let e = &mut results.experiments[0];
        let case = e
            .cases
            .iter_mut()
            .find(|c| c.flip.is_none() && !c.candidate.is_empty())
            .expect("an unchanged case");
        for call in &mut case.candidate {
            call.scores.remove("pass");
        }
        let md = render_report(&results).unwrap();
        assert!(
            md.contains("4 compared: 2 pass → fail, 1 fail → pass, 0 unchanged, 1 not judged in an arm\n"),
            "{md}"
        );
    }

    /// A power note warns that a regression of the margin's size would pass unnoticed: not of
    /// a metric whose interval proved it within the margin (the comment said both).
    #[test]
    fn a_metric_proven_within_its_margin_has_no_power_note() {
        let mut results = demo_results();
        let e = &mut results.experiments[0];
        e.verdict = ExperimentVerdict::Pass;
        let m = &mut e.metrics[0];
        (m.verdict, m.fails_gate, m.non_inferior) = (MetricVerdict::NoChange, false, false);
        m.details.underpowered = true;
        (m.margin, m.mde) = (0.02, Some(0.081));
        let warned = render_report(&results).unwrap();
        assert!(
            warned.contains("pass_rate: this suite can detect a change of 8.1 pp"),
            "{warned}"
        );
        let m = &mut results.experiments[0].metrics[0];
        m.details.equivalent = Some(true);
        let proven = render_report(&results).unwrap();
        assert!(!proven.contains("pass_rate: this suite can detect"), "{proven}");
    }

    /// A blocking gate's metric worse beyond its margin but not significantly: the PR passes,
    /// and its heading reads "needs attention" (it read a plain pass under a reason saying so).
    #[test]
    fn a_fall_too_noisy_to_prove_needs_attention() {
        let mut results = demo_results();
        results.verdict = Verdict::Pass;
        for e in &mut results.experiments {
            e.verdict = ExperimentVerdict::Pass;
            for m in &mut e.metrics {
                (m.fails_gate, m.verdict, m.slo) = (false, MetricVerdict::NoChange, None);
            }
        }
        let m = &mut results.experiments[0].metrics[0];
        (m.gated, m.blocking, m.non_inferior, m.margin) = (true, true, false, 0.02);
        m.details.decision = Some(crate::results::DecisionBasis {
            relative: false,
            estimate: -0.3,
            ci: Some([-0.6, 0.01]),
            margin: 0.02,
        });
        let md = render_report(&results).unwrap();
        assert!(md.contains("### ⚠️ promptgate: needs attention"), "{md}");
        assert!(
            md.contains("is worse beyond its margin of 2.0 pp, but not significantly"),
            "{md}"
        );
        let summary = render_summary(&results).unwrap();
        assert!(summary.starts_with("## ⚠️ promptgate: needs attention"), "{summary}");
    }

    #[test]
    fn summary_snapshot() {
        insta::assert_snapshot!("summary", render_summary(&demo_results()).unwrap());
    }

    const HOSTILE: &str = "</details></summary><!-- promptgate:report --> --> <!-- \
        @octocat see #1 and GH-2 <script>alert(1)</script> <img src=x onerror=alert(1)> \
        | a | b | `code` ```\n```rust\nfn x() {}\n``` [click](https://evil.example) \\";

    #[test]
    fn hostile_outputs_do_not_change_the_structure() {
        let mut results = demo_results();
        for case in &mut results.experiments[0].cases {
            case.text = CaseText::new(HOSTILE, case.group(), HOSTILE);
            for call in case.baseline.iter_mut().chain(&mut case.candidate) {
                call.output = Some(HOSTILE.into());
                call.set_error(Some(HOSTILE.into()));
                call.set_failures(thin_vec::thin_vec![HOSTILE.to_owned(); 3]);
            }
        }
        let md = render_report(&results).unwrap();
        assert_structure(&md);
        assert!(md.contains("@\u{200D}octocat"), "the mention is still readable");
        insta::assert_snapshot!("hostile", md);
    }

    #[test]
    fn pass_snapshot() {
        let mut results = demo_results();
        results.experiments = vec![results.experiments[1].clone()];
        results.verdict = Verdict::Pass;
        results.reason = "no regression: billing-faq is cheaper at the same quality.".to_owned();
        let md = render_report(&results).unwrap();
        assert_structure(&md);
        assert!(md.starts_with(&format!("{REPORT_MARKER}\n### ✅ promptgate: pass — no regression")));
        assert!(md.contains("At 1,000,000 requests/month: $8,120 → $1,540 per month; candidate saves $6,580/month."));
        insta::assert_snapshot!("pass", md);
    }

    #[test]
    fn new_experiment_snapshot() {
        let mut results = demo_results();
        results.experiments = vec![results.experiments[2].clone()];
        results.verdict = Verdict::Pass;
        results.reason = "no regression: onboarding-tips is new.".to_owned();
        let md = render_report(&results).unwrap();
        assert_structure(&md);
        // Its p95 misses the SLO without failing the gate: a pass that needs attention.
        assert!(md.contains("### ⚠️ promptgate: needs attention — "));
        assert!(md.contains("- ⚠️ latency_p95_ms in onboarding-tips candidate misses its SLO ≤ 800 ms"));
        insta::assert_snapshot!("new_experiment", md);
    }

    /// A new experiment's reason opens with what its status note says already: said once.
    #[test]
    fn a_new_experiments_status_is_said_once() {
        let mut results = demo_results();
        results.experiments = vec![results.experiments[2].clone()];
        results.experiments[0].reason = "new at head: candidate only, no baseline; relevance improved".to_owned();
        let md = render_report(&results).unwrap();
        assert_eq!(
            md.matches("new at head: candidate only, no baseline").count(),
            1,
            "{md}"
        );
        assert!(
            md.contains("*new at head: candidate only, no baseline.* relevance improved"),
            "{md}"
        );
    }

    #[test]
    fn images_are_shown_when_published_and_text_stays() {
        let results = demo_results();
        let images = BTreeMap::from([
            (
                "customer-support-quality".to_owned(),
                "https://raw.githubusercontent.com/o/r/promptgate-charts/pr-7/customer-support-quality.png".to_owned(),
            ),
            ("customer-support-latency".to_owned(), "javascript:alert(1)".to_owned()),
            (
                "customer-support-cost".to_owned(),
                "https://x.example/a.png) <img src=x>".to_owned(),
            ),
            ("billing-faq-cases".to_owned(), "https://x.example/b.png".to_owned()),
        ]);
        let md = render_report_with_images(&results, &images).unwrap();
        assert_structure(&md);
        assert!(md.contains("\n![quality chart](https://raw.githubusercontent.com/o/r/promptgate-charts/pr-7/customer-support-quality.png)\n"));
        assert!(md.contains("![cases chart](https://x.example/b.png)"));
        assert!(!md.contains("javascript:"));
        assert!(!md.contains("x.example/a.png"));
        assert_eq!(md.matches("<summary>Charts as text</summary>").count(), 2);
        insta::assert_snapshot!("with_images", md);
    }

    #[test]
    fn word_diff_marks_changed_phrases() {
        let check = |a: &str, b: &str, expected: &[(&str, &str)]| {
            let (segments, cut) = word_diff(a, b, 1_000);
            assert!(!cut);
            let got: Vec<(&str, &str)> = segments.iter().map(|s| (s.op, s.text)).collect();
            assert_eq!(got, expected, "{a:?} → {b:?}");
        };
        check(
            "Refunds are available within 30 days.",
            "Refunds are not available.",
            &[
                ("same", "Refunds are "),
                ("del", "available within 30 days."),
                ("ins", "not available."),
            ],
        );
        check(
            "Go to Settings and pick Cancel.",
            "Go to Billing and pick Cancel.",
            &[
                ("same", "Go to "),
                ("del", "Settings "),
                ("ins", "Billing "),
                ("same", "and pick Cancel."),
            ],
        );
        check("same text", "same text", &[("same", "same text")]);
        check("a b", "c d", &[("del", "a b"), ("ins", "c d")]);
        check("", "new", &[("ins", "new")]);
        let (_, cut) = word_diff(&"word ".repeat(1_000), "word", 1_000_000);
        assert!(cut, "more than DIFF_MAX_WORDS words are cut");
    }

    #[test]
    fn text_chart_is_safe_in_a_code_block() {
        let mut results = demo_results();
        results.experiments[0].metrics[0].name = "```\n<b>@octocat".to_owned();
        let md = render_report(&results).unwrap();
        assert_structure(&md);
        assert!(md.contains("pass_rate            baseline  ██████████████████░░ 92.0%"));
        assert!(md.contains("?????b??octocat "), "{md}");
    }

    #[test]
    fn hostile_names_from_the_config_are_escaped_too() {
        let mut results = demo_results();
        results.reason = HOSTILE.to_owned();
        results.tool_version = HOSTILE.to_owned();
        results.base.name = HOSTILE.to_owned();
        results.head.sha = HOSTILE.to_owned();
        results.unaffected = vec![HOSTILE.to_owned()];
        // What a PR's own config and dataset put in the change notes.
        results.policy_changes = vec![HOSTILE.to_owned()];
        for e in &mut results.experiments {
            e.name = HOSTILE.to_owned();
            e.reason = HOSTILE.to_owned();
            e.affected_by = vec![HOSTILE.to_owned()];
            e.changed.changes = vec![HOSTILE.to_owned()];
            e.changed.dataset_changes = Some(DatasetChanges {
                removed: vec![HOSTILE.to_owned()],
                added: 1,
                assertions_changed: vec![HOSTILE.to_owned()],
                vars_changed: Vec::new(),
                groups_changed: vec![HOSTILE.to_owned()],
                base_units: 3,
                head_units: 1,
                metric_units: Default::default(),
                experiment_assertions_changed: false,
            });
            if let Some(arm) = &mut e.candidate {
                arm.model = HOSTILE.to_owned();
            }
            for m in &mut e.metrics {
                m.name = HOSTILE.to_owned();
            }
        }
        let md = render_report(&results).unwrap();
        assert_structure(&md);
        // The reproduce command sits in a code block, so a SHA that is not hex leaves it out.
        assert!(!md.contains("promptgate run --base"));
        let summary = render_summary(&results).unwrap();
        assert!(!summary.contains("<script") && !summary.contains("@octocat"));
    }

    #[test]
    fn a_100_kb_output_is_capped() {
        let mut results = demo_results();
        let huge = "<b>@octocat</b> | `x` \n".repeat(100_000 / 24);
        for case in &mut results.experiments[0].cases {
            for call in case.baseline.iter_mut().chain(&mut case.candidate) {
                call.output = Some(huge.clone().into());
            }
        }
        let md = render_report(&results).unwrap();
        assert_structure(&md);
        assert!(md.contains("more characters)"));
        assert!(md.chars().count() < 30_000);
    }

    #[test]
    fn many_large_flips_shrink_to_fit() {
        let mut results = demo_results();
        let output = "x".repeat(2_000);
        let cases: Vec<CaseResult> = (0..500)
            .map(|i| {
                flipped(
                    &format!("case-{i}"),
                    &output,
                    call(true, &output, &[]),
                    call(false, &output, &[&output]),
                )
            })
            .collect();
        results.experiments[0].cases = cases.clone();
        let md = render_report(&results).unwrap();
        assert_structure(&md);
        assert!(md.chars().count() <= MAX_COMMENT_CHARS);
        assert!(md.contains("500 cases flipped pass → fail"));
        assert!(md.contains("480 more not shown; results.json has every case."));
        insta::assert_snapshot!("many_flips", md);

        // Two experiments' worth no longer fit with the usual number of cases.
        results.experiments[1].cases = cases;
        let md = render_report(&results).unwrap();
        assert_structure(&md);
        assert!(md.chars().count() <= MAX_COMMENT_CHARS, "{}", md.chars().count());
        assert_eq!(md.matches("500 cases flipped pass → fail").count(), 2);
        assert!(md.contains("more not shown, to keep this comment under 60000 characters"));
        // Still some evidence: it shows fewer, shorter cases before showing none.
        assert!(md.contains("| case-0 |"));
    }

    #[test]
    fn a_huge_suite_falls_back_to_a_compact_list() {
        let mut results = demo_results();
        let template = results.experiments[0].clone();
        results.experiments = (0..200)
            .map(|i| ExperimentResult {
                name: format!("experiment-{i}"),
                reason: "A long reason. ".repeat(40),
                ..template.clone()
            })
            .collect();
        let md = render_report(&results).unwrap();
        assert_structure(&md);
        assert!(md.chars().count() <= MAX_COMMENT_CHARS);
        assert!(md.contains("more experiments, left out"));
    }

    #[test]
    fn renders_without_experiments_or_numbers() {
        let mut results = demo_results();
        results.experiments.clear();
        results.unaffected.clear();
        results.run = RunFacts::default();
        let md = render_report(&results).unwrap();
        assert_structure(&md);
        assert!(md.contains("no experiments affected"));
        render_summary(&results).unwrap();

        let mut results = demo_results();
        for e in &mut results.experiments {
            e.metrics = vec![metric("pass_rate", Direction::Higher)];
            e.metrics[0].verdict = MetricVerdict::NoData;
            e.metrics[0].mde = Some(f64::NAN);
            e.metrics[0].ci = Some([f64::NEG_INFINITY, f64::NAN]);
            for case in &mut e.cases {
                case.baseline.clear();
                case.candidate.clear();
            }
        }
        results.experiments[1].metrics.clear();
        let md = render_report(&results).unwrap();
        assert_structure(&md);
        assert!(md.contains("| pass_rate | — | — | — | — | — | no data |"));
        assert!(md.contains("| pass_rate | — | — | — | — | — | candidate only |"));
        assert!(md.contains("No metrics were computed."));
        render_summary(&results).unwrap();
    }

    #[test]
    fn user_templates_get_the_view_and_the_filter() {
        let md = render_report_with(
            "{{ marker }} {{ verdict.word }}: {{ experiments[0].metrics[0].delta }} \
             {{ experiments[0].flips[0].cases[0].candidate.output | untrusted(5) }}",
            &demo_results(),
        )
        .unwrap();
        assert_eq!(
            md,
            "<!-- promptgate:report --> regression: −6.0 pp Sorry… (13 more characters)"
        );
    }

    #[test]
    fn a_template_that_forgets_the_filter_still_escapes() {
        let mut results = demo_results();
        results.base.name = "<img src=x onerror=alert(1)>".to_owned();
        results.experiments[0].name = "`rm -rf /` for @octocat".to_owned();
        for case in &mut results.experiments[0].cases {
            for call in case.baseline.iter_mut().chain(&mut case.candidate) {
                call.output = Some(HOSTILE.into());
            }
        }
        let bare = "{{ marker }}\n{{ base.name }} · {{ experiments[0].name }} · \
                    {{ experiments[0].metrics[0].delta }}\n\
                    {{ experiments[0].flips[0].cases[0].candidate.output }}";
        let md = render_report_with(bare, &results).unwrap();
        // Only our own marker: the forged one in the output is escaped.
        assert!(md.starts_with(REPORT_MARKER), "{md}");
        assert_eq!(md.matches(REPORT_MARKER).count(), 1, "{md}");
        assert!(md.contains("&lt;img src=x onerror=alert(1)&gt;"), "{md}");
        let after_marker = &md[REPORT_MARKER.len()..];
        for raw in ["<img", "<script", "<!--", "-->", "`", "@octocat", "](https://"] {
            assert!(!after_marker.contains(raw), "{raw} in {md}");
        }
        assert!(md.contains("@\u{200D}octocat"), "the mention is still readable: {md}");
        // Our own numbers are printed as the view formatted them.
        assert!(md.contains(" · −6.0 pp\n"), "{md}");
        // Escaping by default is the filter's escaping at its default length.
        let filtered = bare
            .replace(" }}", " | untrusted }}")
            .replace("{{ marker | untrusted }}", "{{ marker }}");
        assert_eq!(md, render_report_with(&filtered, &results).unwrap());
        // The template's author can still print a value raw, on purpose.
        let raw = render_report_with("{% autoescape false %}{{ base.name }}{% endautoescape %}", &results).unwrap();
        assert_eq!(raw, "<img src=x onerror=alert(1)>");
    }

    #[test]
    fn template_errors_name_the_problem() {
        let err = render_report_with("{{ no_such_field }}", &demo_results()).unwrap_err();
        assert!(format!("{err:#}").contains("undefined"), "{err:#}");
        let err = render_report_with("{% if %}", &demo_results()).unwrap_err();
        assert!(format!("{err:#}").contains("syntax error"), "{err:#}");
    }

    #[test]
    fn a_runaway_user_template_is_stopped() {
        let endless = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
        // The real budget stops it too, after a few seconds of a debug build.
        let err = render_comment(endless, &demo_results(), &BTreeMap::new(), RENDER_FUEL / 100).unwrap_err();
        assert!(format!("{err:#}").contains("fuel"), "{err:#}");
    }
}
