//! What `device sync` and `device watch` print: one line per deployment, what it runs now
//! and what happened to it, or the whole report as JSON; and `device status`'s table.

use std::io::Write as _;

use margo_gitops::device::state::State;
use margo_gitops::device::status::DeviceStatus;
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
    if let Some(signer) = &r.signed_by {
        writeln!(out, "  signed by {signer}")?;
    }
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

/// `device status`: a table a person reads at a glance, or JSON.
pub fn status(s: &DeviceStatus, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, s)?;
        return writeln!(out);
    }
    writeln!(out, "state folder  {}", s.state_dir)?;
    writeln!(
        out,
        "following     {}",
        s.following.as_deref().unwrap_or("nothing yet")
    )?;
    match &s.applied {
        Some(a) => writeln!(
            out,
            "applied       manifestVersion {} ({}){}{}",
            a.manifest_version,
            short_digest(&a.digest),
            a.applied_at
                .as_deref()
                .map(|t| format!(" at {t}"))
                .unwrap_or_default(),
            if a.partial {
                ", some deployments only"
            } else {
                ""
            }
        )?,
        None => writeln!(out, "applied       no version yet")?,
    }
    if let Some(t) = s.applied.as_ref().and_then(|a| a.signed_at.as_deref()) {
        writeln!(out, "signed at     {t}")?;
    }
    if let Some(r) = &s.refused {
        writeln!(out, "REFUSED       {} at {}", short_digest(&r.digest), r.at)?;
        writeln!(out, "  {}", r.reason)?;
    }
    if s.deployments.is_empty() {
        return writeln!(out, "\nno deployments");
    }
    let rows: Vec<[String; 5]> = s
        .deployments
        .iter()
        .map(|d| {
            let components = d
                .components
                .iter()
                .map(|c| match &c.package {
                    Some(p) => format!("{} {}", c.name, short_package(p)),
                    None => c.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ");
            [
                d.name.clone().unwrap_or_else(|| "-".into()),
                d.id.chars().take(8).collect(),
                state_word(d.state).into(),
                d.since.clone().unwrap_or_else(|| "-".into()),
                components,
            ]
        })
        .collect();
    let heads = ["DEPLOYMENT", "ID", "STATE", "SINCE", "COMPONENTS"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([heads[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..4).map(width).collect();
    writeln!(out)?;
    let line = |cells: [&str; 5]| {
        format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    writeln!(out, "{}", line(heads).trim_end())?;
    for (r, d) in rows.iter().zip(&s.deployments) {
        writeln!(
            out,
            "{}",
            line([&r[0], &r[1], &r[2], &r[3], &r[4]]).trim_end()
        )?;
        if let Some(e) = &d.error {
            writeln!(out, "  {} {}: {}", e.code, e.source, e.message)?;
        }
    }
    Ok(())
}

fn state_word(s: State) -> &'static str {
    match s {
        State::Pending => "pending",
        State::Installing => "installing",
        State::Installed => "installed",
        State::Removing => "removing",
        State::Removed => "removed",
        State::Failed => "FAILED",
    }
}

/// `sha256:0123456789ab`: enough to tell versions apart at a glance.
fn short_digest(d: &str) -> String {
    d.chars().take("sha256:".len() + 12).collect()
}

/// `registry/repo@sha256:…` as `repo@sha256:0123456789ab`.
fn short_package(p: &str) -> String {
    match p.split_once('@') {
        Some((repo, digest)) => {
            let name = repo.rsplit('/').next().unwrap_or(repo);
            format!("{name}@{}", short_digest(digest))
        }
        None => p.to_string(),
    }
}
