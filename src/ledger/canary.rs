//! `canary.json` as `promptgate canary` writes it (DESIGN.md, "Contracts": `schema_version`,
//! `verdict`, `experiment`, `version`, `arms`, `metrics[]`, `needed`), read from the file only,
//! and the ledger entry it becomes.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{CanaryMetric, CanaryRecord, Entry};
use crate::error::{Diagnostic, Error};

/// The `canary.json` schema this promptgate reads.
const CANARY_SCHEMA_VERSION: u64 = 1;
/// A canary.json is a summary: a few kilobytes. Anything far larger is not one.
const MAX_CANARY_BYTES: u64 = 16 << 20;

/// The keys of `canary.json` the ledger keeps.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CanaryFile {
    pub schema_version: u64,
    pub verdict: CanaryVerdict,
    pub experiment: Option<String>,
    pub version: Option<String>,
    #[serde(default)]
    pub arms: Option<Arms>,
    #[serde(default)]
    pub metrics: Vec<CanaryFileMetric>,
    #[serde(default)]
    pub needed: Option<serde_json::Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CanaryVerdict {
    Promote,
    Hold,
    Rollback,
}

impl CanaryVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            CanaryVerdict::Promote => "promote",
            CanaryVerdict::Hold => "hold",
            CanaryVerdict::Rollback => "rollback",
        }
    }

    /// What the ledger calls the outcome: the change shipped, was rolled back, or waits.
    pub fn decision(self) -> &'static str {
        match self {
            CanaryVerdict::Promote => "shipped",
            CanaryVerdict::Hold => "hold",
            CanaryVerdict::Rollback => "rolled back",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Arms {
    pub baseline: Option<ArmCount>,
    pub canary: Option<ArmCount>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ArmCount {
    pub n: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CanaryFileMetric {
    pub name: String,
    pub baseline: Option<f64>,
    pub canary: Option<f64>,
    pub delta: Option<f64>,
    #[serde(default)]
    pub ci: Option<[f64; 2]>,
    #[serde(default)]
    pub verdict: Option<String>,
}

const HINT: &str = "pass the canary.json that `promptgate canary` wrote into its --out folder";

/// Reads `canary.json`: exit 2 for a file that is not one, of another schema, or that names no
/// experiment and version (the ledger joins on them).
pub fn read_canary(path: &Path) -> Result<CanaryFile, Error> {
    let shown = path.display().to_string();
    let text = super::parse::read_capped(path, MAX_CANARY_BYTES)
        .map_err(|e| Error::from(Diagnostic::new(format!("cannot read {shown}: {e}")).hint(HINT)))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::from(
            Diagnostic::new(format!("{shown} is not JSON: {}", super::parse::json_message(&e)))
                .in_file(&shown)
                .at_byte(&text, e.line() as u64, e.column() as u64)
                .hint(HINT),
        )
    })?;
    let version = value.get("schema_version").and_then(serde_json::Value::as_u64);
    if version != Some(CANARY_SCHEMA_VERSION) {
        let found = version.map_or_else(|| "no schema_version".to_owned(), |v| format!("schema_version {v}"));
        return Err(Diagnostic::new(format!(
            "{shown} has {found}; this promptgate reads canary.json of schema_version {CANARY_SCHEMA_VERSION}"
        ))
        .in_file(&shown)
        .hint("write it with the same version of promptgate that records it")
        .into());
    }
    let canary: CanaryFile = serde_json::from_value(value).map_err(|e| {
        Error::from(
            Diagnostic::new(format!("{shown} does not match the canary.json schema: {e}"))
                .in_file(&shown)
                .hint("`verdict` is promote, hold or rollback; `metrics` a list of {name, baseline, canary, delta, ci, verdict}"),
        )
    })?;
    for (key, present) in [
        ("experiment", canary.experiment.as_deref()),
        ("version", canary.version.as_deref()),
    ] {
        if present.is_none_or(str::is_empty) {
            return Err(Diagnostic::new(format!(
                "{shown} names no `{key}`: the ledger joins a canary to the version it measured"
            ))
            .in_file(&shown)
            .hint("set `canary.experiment` in the canary config (the variant's version comes with it)")
            .into());
        }
    }
    Ok(canary)
}

/// The canary entry for `canary`: it joins the gate entry of the same experiment and version.
pub fn canary_entry(canary: &CanaryFile, commit: Option<String>, pr: Option<u64>, time: &str) -> Entry {
    let metrics: BTreeMap<String, CanaryMetric> = canary
        .metrics
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                CanaryMetric {
                    baseline: m.baseline,
                    canary: m.canary,
                    delta: m.delta,
                    ci: m.ci,
                    verdict: m.verdict.clone(),
                },
            )
        })
        .collect();
    let arm = |a: fn(&Arms) -> Option<&ArmCount>| canary.arms.as_ref().and_then(a).and_then(|c| c.n);
    Entry {
        time: time.to_owned(),
        experiment: canary.experiment.clone().unwrap_or_default(),
        version: canary.version.clone(),
        commit,
        pr,
        verdict: canary.verdict.as_str().to_owned(),
        metrics: BTreeMap::new(),
        waiver: None,
        canary: Some(CanaryRecord {
            decision: canary.verdict.decision().to_owned(),
            verdict: canary.verdict.as_str().to_owned(),
            baseline_n: arm(|a| a.baseline.as_ref()),
            canary_n: arm(|a| a.canary.as_ref()),
            metrics,
            needed: canary.needed.clone().filter(|n| !n.is_null()),
        }),
    }
}
