//! Integration tests: the built binary on temporary git repositories the tests create.

mod support;

mod arms;
mod bad_input;
mod canary;
mod detect;
mod gate;
mod github;
mod judges;
mod live;
mod merge;
mod outputs;
mod policy;
mod prometheus;
mod scorers;
mod verdicts;
mod workflows;
mod worktree;
