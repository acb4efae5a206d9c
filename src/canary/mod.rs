//! Canary analysis: production logs, traces or metrics of a baseline and a canary version,
//! compared unpaired, anytime-valid, into promote / hold / rollback.

pub mod logs;
pub mod otlp;
pub mod records;
pub mod time;
