//! The terminal summary: the verdict, each experiment's notable metrics, the run's facts and
//! the files written, as the plain text `run`, `merge` and `demo` print on stdout.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::words;
use crate::format;
use crate::results::*;

/// The summary of a finished run; `failed` when the run ended in a run error (the statistics
/// of a broken run are not a verdict; the error follows on stderr).
pub fn render(r: &Results, failed: bool, written: &[PathBuf]) -> String {
    let mut out = String::new();
    let word = match r.verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Waived => "WAIVED",
        Verdict::Error => "ERROR",
        Verdict::NeedsApproval => "NEEDS APPROVAL",
    };
    let _ = writeln!(out, "verdict: {word}: {}", r.reason);
    if r.trust.untrusted {
        let _ = writeln!(
            out,
            "  untrusted code's results (a fork's, evaluated without secrets): not yet verified by a trusted run"
        );
    }
    if failed && crate::verdict::base_error_only(r) {
        let _ = writeln!(out, "  the experiments were judged candidate-only: see the error below");
    } else if failed && crate::verdict::error_is_missing_shards(r) {
        let _ = writeln!(out, "  judged on the merged shards' cases only: see the error below");
    } else if failed {
        // The statistics of a broken run are not a verdict on the change; the error and what
        // to do follow on stderr.
        let _ = writeln!(out, "  no metric was judged: see the error below");
    }
    for e in &r.experiments {
        let _ = writeln!(out, "  {} [{}]: {}", e.name, status_word(e.status), e.reason);
        for m in e
            .metrics
            .iter()
            .filter(|m| m.gated || !matches!(m.verdict, MetricVerdict::NoChange | MetricVerdict::TooFew))
        {
            let judged = !matches!(m.verdict, MetricVerdict::NoData | MetricVerdict::TooFew);
            let (baseline, candidate) = format::values(&m.name, m.baseline, m.candidate);
            let _ = writeln!(
                out,
                "    {:<18} {:>12} → {:<12} {}{}{}",
                m.name,
                baseline,
                candidate,
                words::verdict_text(m, e.status == ExperimentStatus::New),
                words::gate_qualifier(m).map(|q| format!(" · {q}")).unwrap_or_default(),
                m.p_adjusted
                    .or(m.p_value)
                    .filter(|_| judged)
                    .map(|p| format!(" ({})", format::p_sentence(p)))
                    .unwrap_or_default()
            );
        }
    }
    for e in &r.experiments {
        if let Some(aa) = &e.noise.aa {
            let _ = writeln!(
                out,
                "  {} A/A: false-alarm rate {:.1}% over {} arm swaps",
                e.name,
                aa.false_alarm_rate * 100.0,
                aa.permutations
            );
            // As report.md says it (the margin read as a level, "5.0%", and "× – repeats").
            for rec in &aa.recommendations {
                let _ = writeln!(
                    out,
                    "    {} (80% power)",
                    crate::report::words::aa_recommendation(rec, &rec.metric)
                );
            }
        }
        if let Some(s) = &e.noise.sequential {
            let saved = 1.0 - s.calls_made as f64 / s.calls_planned.max(1) as f64;
            // Stopped by what made it no verdict (the budget's cap), it saved nothing.
            let (how, saved) = match (s.stopped_early, e.verdict == ExperimentVerdict::Error) {
                (true, true) => ("stopped without a verdict", String::new()),
                (false, true) => ("ran to the end without a verdict", String::new()),
                (true, false) => ("stopped early", format!(" ({:.0}% saved)", saved * 100.0)),
                (false, false) => ("ran to the end", format!(" ({:.0}% saved)", saved * 100.0)),
            };
            let _ = writeln!(
                out,
                "  {} sequential: {} look(s), {how}; {} of {} calls{saved}",
                e.name,
                s.looks.len(),
                s.calls_made,
                s.calls_planned,
            );
        }
    }
    let _ = writeln!(
        out,
        "run: {} cases, {} calls ({} errored, {} cached), spend ${:.4}{}",
        r.run.cases,
        r.run.calls,
        r.run.errored,
        r.run.cache_hits,
        r.run.spend_usd,
        if r.run.simulated { " (simulated)" } else { "" }
    );
    if r.run.remeasured > 0 {
        let _ = writeln!(
            out,
            "measured again: {} pair(s) whose one call failed with a rate limit, a server error or a timeout while the other came from the cache; both arms sent again, in this run",
            r.run.remeasured
        );
    }
    if r.run.judge_calls > 0 {
        let _ = writeln!(
            out,
            "judging: {} judge calls ({} failed), ${:.4} of the spend (not in cost_per_request)",
            r.run.judge_calls, r.run.judge_errors, r.run.judge_spend_usd
        );
    }
    for path in written {
        let _ = writeln!(out, "wrote {}", path.display());
    }
    out
}

fn status_word(s: ExperimentStatus) -> &'static str {
    match s {
        ExperimentStatus::Changed => "changed",
        ExperimentStatus::New => "new",
        ExperimentStatus::Removed => "removed",
        ExperimentStatus::Forced => "forced",
    }
}
