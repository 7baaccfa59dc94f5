//! What the desired-state commands print: `render`, `validate`, `commit`, `show`,
//! `diff`, `log`.

use std::io::Write;

use margo_gitops::desired::commit::Committed;
use margo_gitops::desired::diff::Diff;
use margo_gitops::desired::render::Rendered;
use margo_gitops::desired::versions;
use margo_gitops::gitops::log::LogEntry;
use margo_gitops::margo::validate::Report;

use super::short;

pub fn rendered(docs: &[Rendered], output: Option<&std::path::Path>) -> anyhow::Result<()> {
    let text = docs
        .iter()
        .map(|d| d.text.as_str())
        .collect::<Vec<_>>()
        .join("---\n");
    match output {
        Some(path) => {
            margo_gitops::oci::layout::write_atomic(path, text.as_bytes())?;
            eprintln!(
                "rendered {} deployment(s) to {}",
                docs.len(),
                path.display()
            );
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}

/// Prints the problems; returns how many are errors.
pub fn validated(reports: &[Report], json: bool) -> std::io::Result<usize> {
    let errors = reports.iter().map(|r| r.errors().count()).sum();
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, reports)?;
        writeln!(out)?;
        return Ok(errors);
    }
    for r in reports {
        write!(out, "{r}")?;
        if r.errors().count() == 0 {
            writeln!(out, "{}: valid", r.file.display())?;
        }
    }
    Ok(errors)
}

pub fn committed(c: &Committed, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, c)?;
        return writeln!(out);
    }
    let what = if c.published {
        "committed"
    } else {
        "already there"
    };
    writeln!(
        out,
        "{what}: desired state {} (manifestVersion {})",
        c.version, c.manifest_version
    )?;
    writeln!(out, "  repository  {}", c.repository)?;
    writeln!(out, "  digest      {}", c.digest)?;
    if let Some(signature) = &c.signature {
        writeln!(out, "  signed      {signature} (a referrer of the version)")?;
    } else if c.already_signed {
        writeln!(
            out,
            "  signed      already (a signature by this signer was attached before)"
        )?;
    } else {
        writeln!(out, "  signed      no (--sign none)")?;
    }
    if c.desired_moved {
        writeln!(out, "  desired     now {}", c.version)?;
    }
    if let Some(note) = &c.note {
        writeln!(out, "  note        {note}")?;
    }
    writeln!(
        out,
        "next: margo-gitops desired-state show {}",
        c.repository
    )
}

pub fn shown(s: &versions::Shown, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, s)?;
        return writeln!(out);
    }
    writeln!(out, "{}", s.repository)?;
    match &s.desired {
        None => writeln!(out, "desired: none yet")?,
        Some(d) => {
            let commit = short(d.revision.as_deref());
            writeln!(
                out,
                "desired: {}  {}  {commit}  {}",
                d.tag,
                d.digest,
                d.subject.as_deref().unwrap_or("")
            )?;
            signed(&mut out, &d.signed_by, "")?;
            for (title, text) in &s.documents {
                writeln!(out, "--- {title}")?;
                write!(out, "{text}")?;
                if !text.ends_with('\n') {
                    writeln!(out)?; // a document written without its last newline
                }
            }
        }
    }
    writeln!(out, "versions, newest first:")?;
    for v in &s.versions {
        let commit = short(v.revision.as_deref());
        writeln!(
            out,
            "{} {}  {}  {commit}  {}",
            if v.desired { "*" } else { " " },
            v.tag,
            &v.digest.as_str()[..19],
            v.subject.as_deref().unwrap_or("")
        )?;
        signed(&mut out, &v.signed_by, "    ")?;
    }
    Ok(())
}

/// Who signed a version, as its signatures say (unverified: `desired-state verify`).
fn signed(out: &mut impl Write, signers: &[String], indent: &str) -> std::io::Result<()> {
    if signers.is_empty() {
        return writeln!(out, "{indent}unsigned");
    }
    for s in signers {
        writeln!(out, "{indent}signed by {s}")?;
    }
    Ok(())
}

pub fn diffed(d: &Diff, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, d)?;
        return writeln!(out);
    }
    write!(out, "{d}")
}

/// Prints the log; returns how many versions have problems.
pub fn logged(entries: &[LogEntry], json: bool) -> std::io::Result<usize> {
    let mut out = std::io::stdout().lock();
    let breaks = entries.iter().filter(|e| !e.problems.is_empty()).count();
    if json {
        serde_json::to_writer_pretty(&mut out, entries)?;
        writeln!(out)?;
        return Ok(breaks);
    }
    for e in entries {
        let v = &e.version;
        writeln!(
            out,
            "{}{} {} {} {}",
            if v.desired { "* " } else { "  " },
            v.tag,
            &v.digest.as_str()[7..19],
            short(v.revision.as_deref()),
            v.subject.as_deref().unwrap_or("")
        )?;
        signed(&mut out, &v.signed_by, "    ")?;
        for p in &e.problems {
            writeln!(out, "    ! {p}")?;
        }
    }
    Ok(breaks)
}

/// Validation warnings of what was committed, on stderr.
pub fn warnings(reports: &[Report]) {
    for w in reports {
        eprint!("{w}");
    }
}
