//! The sentences under an experiment's table: what the run's design says about its own numbers,
//! what the pull request did to the dataset, the monthly projection, and what changed per arm.

use super::*;
use crate::results::{JudgeAdvice, JudgeVariance, MAX_JUDGE_REPEATS};

/// What the run's design says about its own numbers, one sentence each.
pub(super) fn design_notes(e: &ExperimentResult) -> Vec<String> {
    let name = |n: &str| escape_untrusted(n, 80);
    let percent = |x: f64| format!("{:.0}%", x * 100.0);
    let mut notes = Vec::new();
    if let Some(share) = e.noise.flaky_share {
        let mut note = format!(
            "Repeats: {} per case; {} flaky case{} (repeats disagree on pass): {} of case-arms.",
            e.repeats,
            e.noise.flaky_cases.len(),
            if e.noise.flaky_cases.len() == 1 { "" } else { "s" },
            percent(share)
        );
        if let Some(m) = e.metrics.iter().find(|m| m.name == "pass_rate")
            && let (Some(between), Some(within)) = (m.details.between_var, m.details.within_var)
        {
            note.push_str(&format!(
                " pass_rate variance between cases {between:.4}, within a case {within:.4}."
            ));
        }
        notes.push(note);
    }
    if !e.noise.least_consistent.is_empty() {
        // Case ids come from the dataset: escaped like any other text of the pull request.
        let value = |x: Option<f64>| x.map_or_else(format::dash, |x| format!("{x:.2}"));
        let cases: Vec<String> = e
            .noise
            .least_consistent
            .iter()
            .map(|c| format!("{} ({} → {})", name(&c.id), value(c.baseline), value(c.candidate)))
            .collect();
        notes.push(format!(
            "Least consistent cases (agreement between repeats, baseline → candidate): {}.",
            cases.join(", ")
        ));
    }
    for bias in &e.noise.position_bias {
        let share = bias.share.map_or_else(format::dash, percent);
        let interval = bias.ci.map_or_else(String::new, |[low, high]| {
            format!(", 95% CI {}–{}", percent(low), percent(high))
        });
        notes.push(format!(
            "Position bias ({}, each pair judged in both orders; disagreements count as ties): the output shown first won {} of {} decisive judgements ({share}{interval}; 50% is unbiased).",
            name(&bias.metric),
            bias.first_wins,
            bias.decisive,
        ));
    }
    notes.extend(sequential_note(e));
    if let Some(aa) = &e.noise.aa {
        notes.push(format!(
            "A/A (the baseline against itself): false-alarm rate {:.1}% over {} arm-swap permutations.",
            aa.false_alarm_rate * 100.0,
            aa.permutations
        ));
        for r in &aa.recommendations {
            notes.push(format!(
                "{}.",
                crate::report::words::aa_recommendation(r, &name(&r.metric))
            ));
        }
    }
    for m in &e.metrics {
        if let Some(v) = &m.details.variance_components {
            notes.push(judge_variance_note(&name(&m.name), v));
        }
        if m.details.equivalent == Some(true) {
            notes.push(format!(
                "{}: equivalent within ±{} (TOST).",
                name(&m.name),
                format::unit(&m.name).magnitude(m.margin)
            ));
        }
        if let Some(d) = m.details.drift.as_ref().filter(|d| !d.consistent) {
            let unit = format::unit(&m.name);
            notes.push(format!(
                "{}: the variant records {}, this run measured {} (outside its interval).",
                name(&m.name),
                unit.value(d.recorded),
                unit.value(d.measured)
            ));
        }
    }
    notes
}

/// Where a judged metric's noise comes from, and whether judge repeats or cases pay: one
/// sentence.
fn judge_variance_note(metric: &str, v: &JudgeVariance) -> String {
    let per_output = |k: u32| format!("{k} judge repeat{} per output", if k == 1 { "" } else { "s" });
    let outputs = match v.generation {
        Some(g) => format!("between a case's outputs {g:.4}, "),
        None => String::new(),
    };
    let cases_note = if v.generation.is_none() {
        " (one output per case: its noise included)"
    } else {
        ""
    };
    let advice = match v.advice {
        JudgeAdvice::MoreCases => format!(
            "more cases pay more than judge repeats (for this run's costs {} would be the best split)",
            per_output(v.best_judge_repeats)
        ),
        JudgeAdvice::MoreJudgeRepeats if v.best_judge_repeats >= MAX_JUDGE_REPEATS => format!(
            "more judge repeats pay (at least {}); a judge this noisy is worth re-checking with judge-check",
            per_output(v.best_judge_repeats)
        ),
        JudgeAdvice::MoreJudgeRepeats => format!(
            "more judge repeats pay (for this run's costs about {} is the best split)",
            per_output(v.best_judge_repeats)
        ),
        JudgeAdvice::Balanced => format!("{} is about the best split", per_output(v.judge_repeats as u32)),
    };
    format!(
        "Judge repeats ({metric}, {} over {} cases): variance between cases {:.4}{cases_note}, {outputs}between one output's judgements {:.4}; the judge is {:.0}% of the mean's variance, and {advice}.",
        per_output(v.judge_repeats as u32),
        v.cases,
        v.case,
        v.judge,
        v.judge_share * 100.0,
    )
}

/// The pull request's edits to the cases, for the verdict line: a reviewer sees a change that
/// edits its own test. Ids come from the pull request's dataset: escaped, and a few at most.
pub(super) fn dataset_note(d: &DatasetChanges) -> String {
    const IDS_SHOWN: usize = 8;
    let ids = |list: &[String]| {
        let shown: Vec<String> = list.iter().take(IDS_SHOWN).map(|id| escape_untrusted(id, 60)).collect();
        let more = list.len().saturating_sub(IDS_SHOWN);
        if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        }
    };
    let cases = |n: usize| format!("{n} case{}", if n == 1 { "" } else { "s" });
    let mut parts = Vec::new();
    if d.experiment_assertions_changed {
        parts.push("the assertions every case gets (the experiment's `assert:`) changed".to_owned());
    }
    if !d.removed.is_empty() {
        parts.push(format!("{} removed ({})", cases(d.removed.len()), ids(&d.removed)));
    }
    if d.added > 0 {
        parts.push(format!("{} added", cases(d.added)));
    }
    if !d.assertions_changed.is_empty() {
        parts.push(format!(
            "assertions changed in {} ({})",
            cases(d.assertions_changed.len()),
            ids(&d.assertions_changed)
        ));
    }
    if !d.vars_changed.is_empty() {
        parts.push(format!(
            "inputs changed in {} ({})",
            cases(d.vars_changed.len()),
            ids(&d.vars_changed)
        ));
    }
    if !d.groups_changed.is_empty() {
        parts.push(format!(
            "group changed in {} ({})",
            cases(d.groups_changed.len()),
            ids(&d.groups_changed)
        ));
    }
    format!("this PR edits the cases it is judged on: {}", parts.join(", "))
}

pub(super) fn projection_sentence(e: &ExperimentResult, requests_per_month: Option<u64>) -> Option<String> {
    let rpm = requests_per_month?;
    let p = figures::monthly_projection(e, Some(rpm))?;
    let (savings, _) = figures::savings_sentence(&p);
    Some(format!(
        "At {} requests/month: {} → {} per month; {savings}.",
        figures::thousands(rpm),
        figures::whole_dollars(p.baseline),
        figures::whole_dollars(p.candidate),
    ))
}

pub(super) fn arm_changes(baseline: Option<&ArmInfo>, candidate: Option<&ArmInfo>) -> Vec<ArmChange> {
    let (Some(b), Some(c)) = (baseline, candidate) else {
        return Vec::new();
    };
    fn opt<T: ToString>(v: Option<T>) -> String {
        v.map_or_else(|| "unset".to_owned(), |v| v.to_string())
    }
    let fields = [
        ("variant", b.variant.clone(), c.variant.clone()),
        ("version", opt(b.version.as_ref()), opt(c.version.as_ref())),
        ("model", b.model.clone(), c.model.clone()),
        ("prompt", b.prompt.clone(), c.prompt.clone()),
        ("temperature", opt(b.temperature), opt(c.temperature)),
        ("max_tokens", opt(b.max_tokens), opt(c.max_tokens)),
        ("top_p", opt(b.top_p), opt(c.top_p)),
        (
            "frequency_penalty",
            opt(b.sampling.frequency_penalty),
            opt(c.sampling.frequency_penalty),
        ),
        (
            "presence_penalty",
            opt(b.sampling.presence_penalty),
            opt(c.sampling.presence_penalty),
        ),
        (
            "stop",
            opt(b.sampling.stop.as_ref().map(|s| format!("{s:?}"))),
            opt(c.sampling.stop.as_ref().map(|s| format!("{s:?}"))),
        ),
    ];
    fields
        .into_iter()
        .filter(|(_, b, c)| b != c)
        .map(|(field, baseline, candidate)| ArmChange {
            field,
            baseline,
            candidate,
        })
        .collect()
}

/// How a sequential design's looks went, also for an experiment they left without a verdict
/// (the budget's cap stopped them): the only note such an experiment shows.
pub(super) fn sequential_note(e: &ExperimentResult) -> Option<String> {
    let percent = |x: f64| format!("{:.0}%", x * 100.0);
    let s = e.noise.sequential.as_ref()?;
    let saved = 1.0 - s.calls_made as f64 / s.calls_planned.max(1) as f64;
    // Stopped by what made it no verdict (the budget's cap), it saved nothing.
    let unjudged = e.verdict == ExperimentVerdict::Error;
    let saved = match unjudged {
        true => String::new(),
        false => format!(" ({} saved)", percent(saved)),
    };
    Some(format!(
        "Sequential: {} look{} ({} at the last, tested at its nominal level {}), {}; {} of {} calls made{saved}.",
        s.looks.len(),
        if s.looks.len() == 1 { "" } else { "s" },
        s.looks
            .last()
            .map_or_else(|| "no cases".to_owned(), |n| format!("{n} cases")),
        s.look_alphas
            .last()
            .map_or_else(|| "–".to_owned(), |a| format!("{a:.4}")),
        match (s.stopped_early, unjudged) {
            (true, true) => "stopped without a verdict",
            (false, true) => "ran to the last look without a verdict",
            (true, false) => "stopped early: the verdict was settled",
            (false, false) => "ran to the last look",
        },
        s.calls_made,
        s.calls_planned,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn components(advice: JudgeAdvice, best: u32, generation: Option<f64>) -> JudgeVariance {
        JudgeVariance {
            cases: 40,
            repeats: 2,
            judge_repeats: 3,
            case: 0.063,
            generation,
            judge: 0.0208,
            variance_of_mean: 0.0018,
            judge_share: 0.048,
            generation_cost_usd: 0.01,
            judge_cost_usd: 0.001,
            best_judge_repeats: best,
            advice,
        }
    }

    #[test]
    fn the_judge_variance_note_names_the_components_and_what_pays() {
        assert_eq!(
            judge_variance_note("relevance", &components(JudgeAdvice::MoreCases, 1, Some(0.0111))),
            "Judge repeats (relevance, 3 judge repeats per output over 40 cases): variance between cases 0.0630, \
             between a case's outputs 0.0111, between one output's judgements 0.0208; the judge is 5% of the \
             mean's variance, and more cases pay more than judge repeats (for this run's costs 1 judge repeat \
             per output would be the best split)."
        );
        let noisy = judge_variance_note(
            "tone",
            &components(JudgeAdvice::MoreJudgeRepeats, MAX_JUDGE_REPEATS, None),
        );
        assert!(
            noisy.contains(
                "variance between cases 0.0630 (one output per case: its noise included), between one output's"
            ),
            "{noisy}"
        );
        assert!(
            noisy.contains("more judge repeats pay (at least 10 judge repeats per output)"),
            "{noisy}"
        );
        let even = judge_variance_note("tone", &components(JudgeAdvice::Balanced, 3, None));
        assert!(
            even.ends_with("and 3 judge repeats per output is about the best split."),
            "{even}"
        );
    }
}
