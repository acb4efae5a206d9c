//! The ledger: the running log of every change and whether it shipped (docs/ledger.md).
//!
//! One JSON line per record in `ledger.jsonl`, append-only. `ledger record` appends a gate
//! entry per changed experiment of a `results.json` (its version, commit, pull request,
//! verdict, each gated metric's value with its interval, the waiver), and a canary entry per
//! `canary.json` (its decision). `ledger show` joins them by experiment and version into one
//! row per version ([`history`]), draws each metric's trend and flags drift ([`drift`]).
//!
//! This module is synchronous and does no I/O besides reading the files it is given: where the
//! lines are stored (a local file, or the `promptgate-ledger` branch through the Git Data API)
//! is decided by `commands::ledger` and `github::ledger`.

mod canary;
mod drift;
mod history;
mod parse;
mod render;
mod time;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::results::{AcceptedRegression, ExperimentStatus, ExperimentVerdict, Results};

pub use canary::{CanaryFile, canary_entry, read_canary};
pub use drift::{DriftFlag, GateMargin, Window, drift, parse_window};
pub use history::{Row, history};
pub use parse::{MAX_LEDGER_BYTES, parse_ledger, read_ledger_file};
pub use render::{Show, drift_definition, render_markdown, render_terminal, trend_charts};
pub use time::{now_rfc3339, parse as parse_rfc3339, rfc3339};

/// The ledger's file, at the top of its branch (or wherever `--ledger` points).
pub const FILE: &str = "ledger.jsonl";
/// The branch the ledger lives on unless `--branch` says otherwise.
pub const BRANCH: &str = "promptgate-ledger";

/// One line of `ledger.jsonl`. Every key is written, `null` when unknown, so a reader with `jq`
/// never meets a missing key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// When the line was recorded (RFC 3339, UTC).
    pub time: String,
    pub experiment: String,
    /// The variant's `version:` (the candidate's, for a gate entry).
    #[serde(default)]
    pub version: Option<String>,
    /// The commit evaluated (a gate entry) or deployed (a canary entry).
    #[serde(default)]
    pub commit: Option<String>,
    /// The pull request that made the change.
    #[serde(default)]
    pub pr: Option<u64>,
    /// A gate entry: `pass`, `fail`, `waived` or `error`. A canary entry: `promote`, `hold` or
    /// `rollback`.
    pub verdict: String,
    /// A gate entry's gated metrics: the version's own value and its (1 − α) interval.
    /// Empty for a canary entry (its numbers are in `canary`).
    pub metrics: BTreeMap<String, MetricValue>,
    #[serde(default)]
    pub waiver: Option<LedgerWaiver>,
    /// Set on a canary entry only.
    #[serde(default)]
    pub canary: Option<CanaryRecord>,
}

/// A metric's value and the (1 − α) interval of that value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    pub value: Option<f64>,
    #[serde(default)]
    pub ci: Option<[f64; 2]>,
}

/// Who accepted a regression of this experiment, and which metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LedgerWaiver {
    pub by: String,
    pub reason: String,
    /// `label` or `comment`.
    pub via: String,
    #[serde(default)]
    pub at: Option<String>,
    /// The metrics accepted (`*`: the experiment as a whole).
    #[serde(default)]
    pub metrics: Vec<String>,
}

/// What a canary run decided for a version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanaryRecord {
    /// `shipped` (promote), `rolled back` (rollback) or `hold`.
    pub decision: String,
    /// `canary.json`'s own verdict: `promote`, `hold` or `rollback`.
    pub verdict: String,
    /// Requests (or spans) per arm.
    #[serde(default)]
    pub baseline_n: Option<u64>,
    #[serde(default)]
    pub canary_n: Option<u64>,
    /// The canary's metrics: its value, the baseline's, the difference's interval, the verdict.
    #[serde(default)]
    pub metrics: BTreeMap<String, CanaryMetric>,
    /// For a hold: how much more traffic or time `canary` said it needs, as it said it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needed: Option<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanaryMetric {
    pub baseline: Option<f64>,
    pub canary: Option<f64>,
    pub delta: Option<f64>,
    #[serde(default)]
    pub ci: Option<[f64; 2]>,
    pub verdict: Option<String>,
}

/// The gate entries of `results`: one per experiment the change touched (changed, new or
/// forced; a removed experiment has no version to record). `pr` is the pull request, when
/// known; `time` the instant recorded.
pub fn gate_entries(results: &Results, pr: Option<u64>, time: &str) -> Vec<Entry> {
    results
        .experiments
        .iter()
        .filter(|e| e.status != ExperimentStatus::Removed)
        .map(|e| {
            let gated: Vec<_> = e.metrics.iter().filter(|m| m.gated).collect();
            // An experiment with no gated metric still has a history worth drawing.
            let shown = if gated.is_empty() {
                e.metrics.iter().collect()
            } else {
                gated
            };
            let metrics = shown
                .into_iter()
                .map(|m| {
                    let value = MetricValue {
                        value: m.candidate.filter(|x| x.is_finite()),
                        ci: m.details.candidate_ci.filter(|ci| ci.iter().all(|x| x.is_finite())),
                    };
                    (m.name.clone(), value)
                })
                .collect();
            let waiver = results.waiver.as_ref().and_then(|w| {
                let accepted: Vec<String> = w
                    .accepted
                    .iter()
                    .filter(|a| a.experiment == e.name)
                    .map(|a| a.metric.clone())
                    .collect();
                // A waiver that names no regression, or accepts a base that does not load (every
                // experiment ran without its baseline), covers the whole pull request.
                let whole = w.accepted.is_empty() || w.accepted.iter().any(AcceptedRegression::is_base);
                (whole || !accepted.is_empty()).then(|| LedgerWaiver {
                    by: w.by.clone(),
                    reason: w.reason.clone(),
                    via: w.via.clone(),
                    at: w.at.clone(),
                    metrics: accepted,
                })
            });
            let verdict = match e.verdict {
                // A maintainer accepted this experiment's regression.
                ExperimentVerdict::Fail if waiver.is_some() => "waived",
                ExperimentVerdict::Pass => "pass",
                ExperimentVerdict::Fail => "fail",
                ExperimentVerdict::Error => "error",
            };
            Entry {
                time: time.to_owned(),
                experiment: e.name.clone(),
                version: e.candidate.as_ref().and_then(|c| c.version.clone()),
                commit: Some(results.head.sha.clone()),
                pr,
                verdict: verdict.to_owned(),
                metrics,
                waiver,
                canary: None,
            }
        })
        .collect()
}

/// The lines to append for `entries`, each ending in a newline.
pub fn to_lines(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| serde_json::to_string(e).map(|line| line + "\n"))
        .collect::<Result<String, _>>()
        // An entry holds strings, numbers and maps with string keys: it always serialises.
        .unwrap_or_default()
}

/// [`append`], once `existing` (the ledger named `label`) reads as a ledger: a line appended
/// after a corrupt one would sit in the middle of an append-only history that `ledger show`
/// then refuses whole (the audit: `record` appended after `{"time": broken`, exit 0).
pub fn append_checked(existing: &str, lines: &str, label: &str) -> Result<String, crate::error::Error> {
    parse_ledger(existing, label)?;
    Ok(append(existing, lines))
}

/// `existing` with `lines` appended, a newline put between them when `existing` lacks its last.
pub fn append(existing: &str, lines: &str) -> String {
    // A line equal but for its time to one the ledger holds is a record made again, not a
    // second gating or look. A canary's decision carries its window and counts, so the same
    // `canary.json` recorded again is the same look wherever the earlier line stands (after a
    // later look, it read "hold after 3 looks" for a promoted version). A gating is compared
    // with the latest gating of its experiment at its commit: a rerun of an older job after
    // another pull request's is no second gating, while the same results after a waiver came
    // and went are that commit's state returning, and the history says so.
    let without_time = |line: &str| {
        serde_json::from_str::<serde_json::Value>(line).ok().map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.shift_remove("time");
            }
            v
        })
    };
    let is_look = |v: &serde_json::Value| v.get("canary").is_some_and(|c| !c.is_null());
    let gating_key = |v: &serde_json::Value| {
        let field = |k: &str| v.get(k).map(ToString::to_string).unwrap_or_default();
        (field("experiment"), field("commit"))
    };
    let mut looks: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut latest_gating: std::collections::HashMap<(String, String), String> = std::collections::HashMap::new();
    let mut held = |v: serde_json::Value| -> bool {
        let text = v.to_string();
        if is_look(&v) {
            !looks.insert(text)
        } else {
            latest_gating
                .insert(gating_key(&v), text.clone())
                .is_some_and(|before| before == text)
        }
    };
    for v in existing.lines().filter_map(without_time) {
        held(v);
    }
    let mut text = existing.to_owned();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for line in lines.lines() {
        if without_time(line).is_some_and(&mut held) {
            continue;
        }
        text.push_str(line);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests;
