//! What `device sync` and `device watch` print: one line per deployment, what it runs now
//! and what happened to it, or the whole report as JSON.

use std::io::Write as _;

use margo_gitops::device::sync::{Action, SyncReport};

pub fn synced(r: &SyncReport, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, r)?;
        return writeln!(out);
    }
    let state = if r.failed() {
        "not applied"
    } else if r.up_to_date {
        "up to date"
    } else {
        "applied"
    };
    writeln!(
        out,
        "{} manifestVersion {} ({}): {state}",
        r.source, r.manifest_version, r.digest
    )?;
    for d in &r.deployments {
        let action = match d.action {
            Action::Installed => "installed",
            Action::Updated => "updated",
            Action::Unchanged => "unchanged",
            Action::Removed => "removed",
            Action::Failed => "FAILED",
        };
        let runs = if d.packages.is_empty() {
            "-".to_string()
        } else {
            d.packages.join(", ")
        };
        write!(out, "  {:<10} {} ({})  {runs}", action, d.name, d.id)?;
        match &d.error {
            Some(e) => writeln!(out, "\n    {e}")?,
            None => writeln!(out)?,
        }
    }
    Ok(())
}

/// One pass of `watch`: its report, or its error on stderr; the loop goes on.
pub fn pass(result: &margo_gitops::Result<SyncReport>, json: bool) {
    match result {
        Ok(r) => {
            let _ = synced(r, json);
        }
        Err(e) => eprintln!("error: device sync: {e} (trying again at the next interval)"),
    }
}
