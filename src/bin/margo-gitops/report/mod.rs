//! Everything the commands print, in one place: short human summaries on stdout (JSON
//! with `--json`), problems on stderr, and for `ci` the log lines, annotations, step
//! summary and pull-request comment. The library returns data; this module words it.

pub mod ci;
pub mod desired;
pub mod device;
pub mod gitops;
pub mod package;

/// The first seven characters of a commit id, or `-`.
fn short(revision: Option<&str>) -> &str {
    revision.map(|r| &r[..r.len().min(7)]).unwrap_or("-")
}
