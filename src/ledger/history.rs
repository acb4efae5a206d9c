//! The ledger's lines joined into one row per version of each experiment.
//!
//! The join key is (experiment, version). A version's gate entry gives the row its commit, pull
//! request, verdict and metrics (the latest, when a version was gated more than once — a
//! variant changed without bumping its `version:`, which the gate flags); its canary entries
//! give the canary decision (the latest: a hold followed by a promotion reads "shipped").
//! A gate entry without a version cannot be joined and is a row of its own.

use std::collections::BTreeMap;

use super::{CanaryRecord, Entry, LedgerWaiver, MetricValue};

/// One version of one experiment, as the history shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub experiment: String,
    pub version: Option<String>,
    /// When the version was first recorded.
    pub time: String,
    pub commit: Option<String>,
    pub pr: Option<u64>,
    /// The gate's verdict; `None` when only a canary entry names this version.
    pub verdict: Option<String>,
    pub metrics: BTreeMap<String, MetricValue>,
    pub waiver: Option<LedgerWaiver>,
    /// Gate entries recorded for this version (more than one: gated again without a new version).
    pub gated: usize,
    /// The latest canary decision, and how many canary entries there are.
    pub canary: Option<CanaryRecord>,
    pub canary_entries: usize,
}

/// The rows of every experiment (or only `only`), by experiment name, each experiment's rows in
/// the order their versions first appear in the ledger (the order they were recorded).
pub fn history(entries: &[Entry], only: Option<&str>) -> BTreeMap<String, Vec<Row>> {
    let mut out: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for entry in entries.iter().filter(|e| only.is_none_or(|o| o == e.experiment)) {
        let rows = out.entry(entry.experiment.clone()).or_default();
        let existing = entry
            .version
            .as_ref()
            .and_then(|v| rows.iter().position(|r| r.version.as_ref() == Some(v)));
        let row = match existing {
            Some(at) => &mut rows[at],
            None => {
                rows.push(Row {
                    experiment: entry.experiment.clone(),
                    version: entry.version.clone(),
                    time: entry.time.clone(),
                    commit: None,
                    pr: None,
                    verdict: None,
                    metrics: BTreeMap::new(),
                    waiver: None,
                    gated: 0,
                    canary: None,
                    canary_entries: 0,
                });
                rows.last_mut().expect("just pushed")
            }
        };
        match &entry.canary {
            Some(canary) => {
                row.canary = Some(canary.clone());
                row.canary_entries += 1;
                // A canary names the deployed commit; the gate's commit and PR take precedence.
                row.commit = row.commit.take().or_else(|| entry.commit.clone());
                row.pr = row.pr.or(entry.pr);
            }
            None => {
                row.gated += 1;
                row.verdict = Some(entry.verdict.clone());
                row.metrics = entry.metrics.clone();
                row.waiver = entry.waiver.clone();
                row.commit = entry.commit.clone().or(row.commit.take());
                row.pr = entry.pr.or(row.pr);
            }
        }
    }
    out
}
