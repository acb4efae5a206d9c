//! What a maintainer decided about a run, in `results.json`: the approval a run waits for (a
//! provider change that moves a key, an `exec` program the pull request changed) and the
//! waiver that accepted a regression.

use serde::{Deserialize, Serialize};

use super::Direction;

/// `approval` and `untrusted` in `results.json`; both absent in a plain run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrustFacts {
    /// Experiments not run until a maintainer approves (`verdict` is then `needs_approval`
    /// unless another experiment failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalNeeded>,
    /// The results come from a run of a fork's code without secrets (the fork-safe pair's
    /// artifact): never published as a success.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub untrusted: bool,
}

/// Why part of the comparison did not run, and what a maintainer must do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalNeeded {
    /// One sentence: "a maintainer must approve to run with keys".
    pub reason: String,
    /// What changed where a key goes, one entry per provider setting.
    pub changes: Vec<ProviderChange>,
    /// The experiments that did not run.
    pub experiments: Vec<String>,
    /// How to approve, one sentence.
    pub how: String,
}

/// One setting of a provider that changed where a key (or an `exec` program) goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderChange {
    pub provider: String,
    /// `base_url`, `api_key_env`, `deployment`, `command`, `env`, `type`, `new provider`,
    /// `code` (a file the command runs changed), `key` (a keyed provider in an untrusted run),
    /// or for an `exec` scorer `scorer command` and `scorer code`.
    pub field: String,
    /// The setting at base (`None`: absent there).
    pub base: Option<String>,
    pub head: Option<String>,
    /// Set for an `exec` scorer's change (`field` is `scorer command` or `scorer code`): the
    /// experiment it scores, which waits as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
}

/// Who accepted a regression, why, how (`label` or `comment`), when, for which commit, and
/// exactly what: a later push stays waived only while its regressions are among `accepted`
/// and not worse beyond their interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Waiver {
    pub by: String,
    pub reason: String,
    pub via: String,
    /// The regression that was accepted (the failing verdict's reason).
    #[serde(default)]
    pub waived: String,
    /// When the label was added or the comment written (RFC 3339, as GitHub reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The head commit whose results the maintainer accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The regressions accepted, with their estimates then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<AcceptedRegression>,
    /// The comment id or label event id that gave the waiver: a waiver is bound once, when it is
    /// given, and a later run recognises it by this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<u64>,
}

/// A failing metric of an experiment as it stood when a maintainer accepted it. `metric` is
/// `*` for an experiment that fails as a whole (removed with blocking gates).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AcceptedRegression {
    pub experiment: String,
    pub metric: String,
    pub direction: Direction,
    /// `delta` then, in the metric's unit.
    pub estimate: Option<f64>,
    /// `ci` of `delta` then.
    pub ci: Option<[f64; 2]>,
}

impl AcceptedRegression {
    /// The `experiment` of the entry that accepts running without (part of) the baseline: a
    /// base suite that does not load. It covers every experiment of the pull request.
    pub const BASE: &'static str = "the base";

    /// The entry for a base that does not load with `error` (the results' `base_error`): named
    /// by what failed to load, so a waiver for one breakage does not cover another.
    pub fn base_not_loading(error: &str) -> AcceptedRegression {
        let what = error.split_once("does not load: ").map_or(error, |(_, what)| what);
        let what: String = what.chars().take(160).collect();
        AcceptedRegression {
            experiment: Self::BASE.to_owned(),
            metric: format!("does not load ({what})"),
            direction: Direction::Higher,
            estimate: None,
            ci: None,
        }
    }

    pub fn is_base(&self) -> bool {
        self.experiment == Self::BASE
    }
}
