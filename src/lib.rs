//! promptgate: a statistical A/B gate for prompt and model-config changes.
//!
//! The data flows one way: workspace → suite → detect → plan → runner → scorers → analyze →
//! gate → report. See ARCHITECTURE.md for the map.

pub mod allocator;
pub mod analyze;
pub mod arms;
pub mod assemble;
pub mod canary;
pub mod chat;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod detect;
pub mod error;
pub mod format;
pub mod github;
pub mod ledger;
pub mod metrics;
pub mod output;
pub mod plan;
pub mod providers;
pub mod report;
pub mod results;
pub mod runner;
pub mod scorers;
pub mod secrets;
pub mod stats;
pub mod suite;
pub mod time;
pub mod tokens;
pub mod trust;
pub mod verdict;
pub mod workspace;
