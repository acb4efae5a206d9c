//! Which experiments a change touches, and why.
//!
//! An experiment is affected when a changed path is one of its dependencies (variant config,
//! prompt, every partial its template read, dataset, assertion files, `depends_on` globs) at
//! base or at head, or when its entry in the suite file changed.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::results::ExperimentStatus;
use crate::suite::Suite;
use crate::workspace::Change;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Affected {
    pub name: String,
    pub status: ExperimentStatus,
    /// The changed paths that made it affected; empty for `forced`.
    pub affected_by: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Detection {
    /// To run: changed, new and forced experiments, in suite order.
    pub affected: Vec<Affected>,
    /// At base, gone at head: reported, not run.
    pub removed: Vec<Affected>,
    /// Not touched by the change (and not forced).
    pub unaffected: Vec<String>,
    /// Every path the change touched (renames: both sides).
    pub changed_paths: Vec<String>,
}

/// Decides which experiments of `head` to run. `base` is `None` when the suite does not exist
/// at base (every experiment is new). `all` forces every experiment.
pub fn detect(base: Option<&Suite>, head: &Suite, changes: &[Change], all: bool) -> Detection {
    let changed: BTreeSet<String> = changes
        .iter()
        .flat_map(|c| std::iter::once(c.path.clone()).chain(c.old_path.clone()))
        .collect();
    let mut detection = Detection {
        changed_paths: changed.iter().cloned().collect(),
        ..Detection::default()
    };
    for experiment in &head.experiments {
        let Some(before) = base.and_then(|b| b.experiments.iter().find(|e| e.name == experiment.name)) else {
            detection.affected.push(Affected {
                name: experiment.name.clone(),
                status: ExperimentStatus::New,
                affected_by: experiment.touched_by(changed.iter().map(String::as_str)),
            });
            continue;
        };
        let mut reasons: BTreeSet<String> = experiment
            .touched_by(changed.iter().map(String::as_str))
            .into_iter()
            .collect();
        reasons.extend(before.touched_by(changed.iter().map(String::as_str)));
        if before.definition != experiment.definition {
            reasons.insert(head.config_path.clone());
        }
        if !reasons.is_empty() {
            detection.affected.push(Affected {
                name: experiment.name.clone(),
                status: ExperimentStatus::Changed,
                affected_by: reasons.into_iter().collect(),
            });
        } else if all {
            detection.affected.push(Affected {
                name: experiment.name.clone(),
                status: ExperimentStatus::Forced,
                affected_by: Vec::new(),
            });
        } else {
            detection.unaffected.push(experiment.name.clone());
        }
    }
    if let Some(base) = base {
        for e in &base.experiments {
            if !head.experiments.iter().any(|h| h.name == e.name) {
                detection.removed.push(Affected {
                    name: e.name.clone(),
                    status: ExperimentStatus::Removed,
                    affected_by: if changed.contains(&head.config_path) {
                        vec![head.config_path.clone()]
                    } else {
                        Vec::new()
                    },
                });
            }
        }
    }
    detection
}
