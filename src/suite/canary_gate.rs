//! One written canary gate resolved and checked (`canary.gates` or a canary metric's entry of
//! `gates:`): `require` refused, a blocking gate's zero margin, a direction against the
//! metric's own, a rate's margin of its whole range, α, the objective.

use serde_saphyr::Spanned;

use super::Margin;
use super::canary::{CanaryGate, default_blocking, default_direction, default_margin};
use super::raw::{RawDirection, RawGate};
use crate::error::{Diagnostic, Error};
use crate::metrics::CanaryMetric;
use crate::results::Direction;

/// `gate`, written for `metric`, as the canary judges it; `at` places a problem in the file.
pub(super) fn resolve(
    metric: &str,
    gate: &Spanned<RawGate>,
    alpha: f64,
    at: &dyn Fn(u64, u64, String) -> Diagnostic,
) -> Result<CanaryGate, Error> {
    let spec = &gate.value;
    let (l, c) = (gate.referenced.line(), gate.referenced.column());
    if spec.require.is_some() {
        return Err(
            at(l, c, format!("gate `{metric}`: `require` does not apply to a canary"))
                .hint(
                    "a canary is promoted only when its interval proves it no worse than the margin; remove `require`",
                )
                .into(),
        );
    }
    let margin = spec.margin.unwrap_or_else(|| default_margin(metric));
    let blocking = spec.blocking.unwrap_or(default_blocking(metric));
    let zero = match margin {
        Margin::Absolute(m) | Margin::Relative(m) => m == 0.0,
    };
    if blocking && zero {
        return Err(at(l, c, format!("blocking canary gate `{metric}` has a zero margin"))
            .hint(format!(
                "a canary is promoted when its interval proves it no worse than the margin, which a margin of 0 never is; give one, e.g. `{metric}: {{margin: {}}}`",
                if matches!(default_margin(metric), Margin::Relative(_)) { "\"10%\"" } else { "0.01" }
            ))
            .into());
    }
    // As a gate's (`suite::gates::contradictions`): a direction against the metric's own
    // turned the gate upside down, and a rate's margin of 1 or more is its whole range.
    let known = CanaryMetric::of(metric).map(CanaryMetric::default_direction);
    if let (Some(written), Some(own)) = (spec.direction, known) {
        let written = match written {
            RawDirection::Higher => Direction::Higher,
            RawDirection::Lower => Direction::Lower,
        };
        if written != own {
            let (better, said) = match own {
                Direction::Higher => ("higher", "lower"),
                Direction::Lower => ("lower", "higher"),
            };
            return Err(at(
                l,
                c,
                format!("gate `{metric}`: `direction: {said}` contradicts the metric: a {better} `{metric}` is better"),
            )
            .hint("remove `direction:` from this gate: promptgate knows which way this metric is better")
            .into());
        }
    }
    if let Margin::Absolute(m) = margin
        && m >= 1.0
        && CanaryMetric::of(metric).is_some_and(CanaryMetric::is_rate)
    {
        return Err(at(
            l,
            c,
            format!("gate `{metric}`: a margin of {m} is a rate's whole range (0 to 1): no change could fail it"),
        )
        .hint(format!(
            "write a rate's margin as a share of 1 (`margin: 0.01` for 1 percentage point) or as a share of the baseline (`margin: \"10%\"`){}",
            if m <= 100.0 { format!("; `{m}` looks meant as `{}`", m / 100.0) } else { String::new() }
        ))
        .into());
    }
    let gate_alpha = spec.alpha.unwrap_or(alpha);
    if !(gate_alpha > 0.0 && gate_alpha < 0.5) {
        return Err(at(
            l,
            c,
            format!("gate `{metric}`: alpha must be between 0 and 0.5, got {gate_alpha}"),
        )
        .into());
    }
    let slo =
        spec.slo.map(|s| s.resolve(metric)).transpose().map_err(|e| {
            at(l, c, e).hint("e.g. `slo: 800` for latency in ms, `slo: \"5%\"` or `slo: 0.05` for a rate")
        })?;
    Ok(CanaryGate {
        metric: metric.to_owned(),
        direction: match spec.direction {
            Some(RawDirection::Higher) => Direction::Higher,
            Some(RawDirection::Lower) => Direction::Lower,
            None => default_direction(metric),
        },
        margin,
        alpha: gate_alpha,
        blocking,
        slo,
        explicit: true,
    })
}
