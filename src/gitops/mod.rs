//! GitOps around git history: mirroring it into versions, the git hooks, and the GitHub
//! Action's job.
//!
//! - [`mirror`]: history mirrored into desired-state versions;
//! - [`log`]: `desired-state log`, the versions as git log shows commits, and their checks;
//! - [`hook`]: the pre-push and pre-commit checks;
//! - [`ci`]: what the GitHub Action runs; [`github`]: its pull-request comment.

pub mod ci;
pub mod github;
pub mod hook;
pub mod log;
pub mod mirror;
