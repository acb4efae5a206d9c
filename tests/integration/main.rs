//! Integration tests: the built binary on temporary git repositories the tests create.

mod support;

mod arms;
mod bad_input;
mod batch;
mod canary;
mod compare;
mod detect;
mod embeddings;
mod gate;
mod github;
mod judges;
mod ledger;
pub(crate) mod live;
mod merge;
mod outputs;
mod policy;
mod prometheus;
mod resume;
mod scorers;
mod verdicts;
mod workflows;
mod worktree;
