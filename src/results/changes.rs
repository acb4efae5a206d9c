//! What a pull request changed for one experiment: why it is affected, and its edits to the
//! cases it is judged on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::is_zero;

/// What the pull request changed for one experiment; every key optional in `results.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeFacts {
    /// Why the experiment is affected, in words: "provider `sim`: base_url changed", "variant
    /// configs/x.yaml: model gpt-4o → gpt-4o-mini", "renamed from `old`".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// The pull request's edits to the cases both arms are scored on (head's), by case id,
    /// against the base's dataset. Absent when the cases are unchanged or there is no baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_changes: Option<DatasetChanges>,
    /// The metrics the base's assertions of this experiment score: a blocking gate on one of
    /// them is judged (`no_data` when head's assertions no longer score it), so a pull request
    /// cannot drop a gate by renaming or removing the metric it judges. Absent when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub base_scored: Vec<String>,
}

/// Cases removed, added or edited by the pull request, by id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetChanges {
    /// Ids of cases at base that head no longer has.
    pub removed: Vec<String>,
    /// How many cases head has that the base did not.
    pub added: usize,
    /// Ids of cases whose own assertions differ between base and head.
    pub assertions_changed: Vec<String>,
    /// Ids of cases whose vars (the input) differ between base and head.
    pub vars_changed: Vec<String>,
    /// Ids of cases whose `group` differs between base and head (cases of a group are one unit
    /// of inference: regrouping changes how many units a metric has).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups_changed: Vec<String>,
    /// The units (groups where the dataset has them, else cases) the base's dataset had, and
    /// head's has.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub base_units: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub head_units: usize,
    /// The units scoring each metric that only some cases' assertions score, at base and at
    /// head (`[base, head]`); every other metric is scored by every unit (`base_units`,
    /// `head_units`). A PR that takes units from a metric (removing its assertion from cases,
    /// or merging the cases that score it into fewer groups while adding others) cannot then
    /// escape its gate as too few.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metric_units: BTreeMap<String, [usize; 2]>,
    /// The experiment's own `assert:` list (applied to every case) differs between base and
    /// head: the PR changed what every case is judged by, as surely as editing each case.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub experiment_assertions_changed: bool,
}

impl DatasetChanges {
    /// The units scoring `metric` at base and at head.
    pub fn units_of(&self, metric: &str) -> [usize; 2] {
        self.metric_units
            .get(metric)
            .copied()
            .unwrap_or([self.base_units, self.head_units])
    }

    pub fn is_empty(&self) -> bool {
        self.removed.is_empty()
            && self.added == 0
            && self.assertions_changed.is_empty()
            && self.vars_changed.is_empty()
            && self.groups_changed.is_empty()
            && !self.experiment_assertions_changed
            && self.metric_units.values().all(|[base, head]| head >= base)
    }
}
