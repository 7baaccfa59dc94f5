//! What `mirror` and the hooks print.

use std::io::Write;

use margo_gitops::gitops::hook::{Finding, Outcome};
use margo_gitops::gitops::mirror::Mirrored;

/// Quiet when nothing was found; otherwise the findings on stderr and a refusal.
pub fn findings(findings: &[Finding], what: &str) -> anyhow::Result<()> {
    if findings.is_empty() {
        return Ok(());
    }
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "margo-gitops: {what} refused, the desired state is not valid:"
    )?;
    for f in findings {
        writeln!(err, "  {f}")?;
    }
    writeln!(
        err,
        "fix the files above and try again (`--no-verify` skips this check)"
    )?;
    Err(margo_gitops::Error::invalid(format!(
        "{} problem(s) in the desired state",
        findings.len()
    ))
    .into())
}

pub fn hook_outcome(o: &Outcome) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match o {
        Outcome::Installed(p) => writeln!(out, "installed the pre-push hook: {}", p.display()),
        Outcome::Replaced(p) => writeln!(out, "replaced the pre-push hook: {}", p.display()),
        Outcome::AlreadyInstalled(p) => writeln!(
            out,
            "the pre-push hook is already installed: {}",
            p.display()
        ),
        Outcome::Removed(p) => writeln!(out, "removed the pre-push hook: {}", p.display()),
        Outcome::NotInstalled(p) => writeln!(out, "no pre-push hook to remove at {}", p.display()),
    }
}

pub fn mirrored(m: &Mirrored, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, m)?;
        return writeln!(out);
    }
    if m.up_to_date {
        writeln!(
            out,
            "{}: up to date ({} versions, desired at {})",
            m.repository,
            m.present,
            m.desired.as_deref().unwrap_or("-")
        )?;
        return Ok(());
    }
    writeln!(out, "mirrored into {}", m.repository)?;
    writeln!(
        out,
        "  published  {} version(s){}",
        m.published.len(),
        if m.published.is_empty() {
            String::new()
        } else {
            format!(": {}", m.published.join(", "))
        }
    )?;
    writeln!(out, "  present    {} version(s), untouched", m.present)?;
    if !m.signed.is_empty() {
        writeln!(
            out,
            "  signed     {} version(s): {}",
            m.signed.len(),
            m.signed.join(", ")
        )?;
    }
    for s in &m.skipped {
        writeln!(
            out,
            "  skipped    {} {} ({})",
            s.commit, s.subject, s.reason
        )?;
    }
    match (&m.desired, m.desired_moved) {
        (Some(d), true) => writeln!(out, "  desired    now {d}"),
        (Some(d), false) => writeln!(out, "  desired    already {d}"),
        (None, _) => writeln!(out, "  desired    unchanged: nothing to mirror"),
    }
}
