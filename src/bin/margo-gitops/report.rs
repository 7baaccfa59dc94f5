//! What the commands print on stdout: short human summaries, or JSON with `--json`.

use std::io::Write;

use margo_gitops::margo::validate::Report;
use margo_gitops::package::prepare::Prepared;
use margo_gitops::package::publish::Published;
use margo_gitops::package::show::Shown;
use margo_gitops::progress::human;

pub fn prepared(p: &Prepared) -> std::io::Result<()> {
    let d = &p.descriptor;
    let mut out = std::io::stdout().lock();
    writeln!(out, "prepared {} {}", d.app_id, d.version)?;
    writeln!(
        out,
        "  archive     {} ({})",
        p.archive_path.display(),
        human(d.archive.size)
    )?;
    writeln!(out, "  digest      {}", d.archive.digest)?;
    writeln!(out, "  descriptor  {}", p.descriptor_path.display())?;
    if let Some(sig) = &d.signature {
        writeln!(
            out,
            "  signature   {sig} (Sigstore bundle over the archive)"
        )?;
    }
    for img in &d.images {
        let place = match (&img.archive, img.archive_size) {
            (Some(a), Some(s)) => format!("{a}, {}", human(s)),
            _ => "left in its registry".to_string(),
        };
        writeln!(
            out,
            "  image       {}  {} ({place})",
            img.services.join(","),
            img.reference
        )?;
    }
    if let Some(app) = &d.app {
        writeln!(
            out,
            "  margo.yaml  {} resource(s) in {}",
            app.resources.len(),
            app.folder
        )?;
    }
    let dir = p
        .archive_path
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    writeln!(
        out,
        "next: margo-gitops package publish {dir} --to REPOSITORY"
    )
}

pub fn published(p: &Published, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, p)?;
        return writeln!(out);
    }
    writeln!(out, "published {} {}", p.app_id, p.version)?;
    for a in &p.artifacts {
        writeln!(out, "  {}@{}", a.repository, a.digest)?;
        writeln!(out, "    type   {}", a.artifact_type)?;
        writeln!(
            out,
            "    tags   {}{}",
            a.tags.join(", "),
            if a.tags_moved.is_empty() {
                " (unchanged)"
            } else {
                ""
            }
        )?;
        writeln!(
            out,
            "    blobs  {} uploaded, {} already there",
            a.blobs_uploaded, a.blobs_present
        )?;
        if let Some(sig) = &a.signature {
            writeln!(
                out,
                "    signed {sig} (the signature, a referrer of the package)"
            )?;
        }
    }
    if let Some(first) = p.artifacts.first() {
        writeln!(
            out,
            "next: margo-gitops package show {}:{}",
            first.repository, first.tags[0]
        )?;
    }
    Ok(())
}

pub fn shown(s: &Shown, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, s)?;
        return writeln!(out);
    }
    writeln!(out, "{}", s.reference)?;
    writeln!(out, "  digest         {}", s.digest)?;
    writeln!(out, "  media type     {} ({})", s.media_type, human(s.size))?;
    if let Some(t) = &s.artifact_type {
        writeln!(out, "  artifact type  {t}")?;
    }
    for (k, v) in &s.annotations {
        writeln!(out, "  {k}: {v}")?;
    }
    if !s.layers.is_empty() {
        writeln!(out, "layers:")?;
        for l in &s.layers {
            let title = l.title.as_deref().unwrap_or("(untitled)");
            writeln!(
                out,
                "  {title}  {}  {}  {}",
                human(l.size as u64),
                l.media_type,
                l.digest
            )?;
            for (k, v) in l
                .annotations
                .iter()
                .filter(|(k, _)| k.as_str() != margo_gitops::oci::media::ANN_TITLE)
            {
                writeln!(out, "    {k}: {v}")?;
            }
        }
    }
    if !s.manifests.is_empty() {
        writeln!(out, "manifests:")?;
        for m in &s.manifests {
            writeln!(
                out,
                "  {}  {}  {}",
                m.platform.as_deref().unwrap_or("-"),
                m.media_type,
                m.digest
            )?;
        }
    }
    if s.signatures.is_empty() {
        writeln!(out, "signatures: none")?;
    } else {
        writeln!(out, "signatures:")?;
        for sig in &s.signatures {
            writeln!(out, "  signature {}  by {}", sig.referrer, sig.signer())?;
        }
    }
    if !s.referrers.is_empty() {
        writeln!(out, "referrers:")?;
        for r in &s.referrers {
            writeln!(
                out,
                "  {}  {}",
                r.artifact_type.as_deref().unwrap_or(&r.media_type),
                r.digest
            )?;
        }
    }
    writeln!(out, "tags: {}", s.tags.join(", "))
}

pub fn rendered(
    docs: &[margo_gitops::desired::render::Rendered],
    output: Option<&std::path::Path>,
) -> anyhow::Result<()> {
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

pub fn committed(c: &margo_gitops::desired::commit::Committed, json: bool) -> std::io::Result<()> {
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

pub fn desired_shown(
    s: &margo_gitops::desired::versions::Shown,
    json: bool,
) -> std::io::Result<()> {
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
            for (title, text) in &s.documents {
                writeln!(out, "--- {title}")?;
                write!(out, "{text}")?;
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
    }
    Ok(())
}

pub fn diffed(d: &margo_gitops::desired::diff::Diff, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, d)?;
        return writeln!(out);
    }
    write!(out, "{d}")
}

/// The first seven characters of a commit id, or `-`.
fn short(revision: Option<&str>) -> &str {
    revision.map(|r| &r[..r.len().min(7)]).unwrap_or("-")
}

/// Quiet when nothing was found; otherwise the findings on stderr and a refusal.
pub fn findings(
    findings: &[margo_gitops::gitops::hook::Finding],
    what: &str,
) -> anyhow::Result<()> {
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

pub fn hook_outcome(o: &margo_gitops::gitops::hook::Outcome) -> std::io::Result<()> {
    use margo_gitops::gitops::hook::Outcome;
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

pub fn mirrored(m: &margo_gitops::gitops::mirror::Mirrored, json: bool) -> std::io::Result<()> {
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

/// Prints the log; returns how many versions have problems.
pub fn logged(
    entries: &[margo_gitops::gitops::log::LogEntry],
    json: bool,
) -> std::io::Result<usize> {
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
        for p in &e.problems {
            writeln!(out, "    ! {p}")?;
        }
    }
    Ok(breaks)
}

pub fn signed(
    reference: &str,
    digest: &margo_gitops::oci::digest::Digest,
    referrer: Option<&margo_gitops::oci::digest::Digest>,
) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match referrer {
        Some(r) => writeln!(out, "signed {reference} ({digest})\n  signature {r}"),
        None => writeln!(out, "not signed: --sign none"),
    }
}

pub fn verified(v: &margo_gitops::signing::verify::Verified, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, v)?;
        return writeln!(out);
    }
    writeln!(out, "verified {} ({})", v.reference, v.digest)?;
    writeln!(
        out,
        "  signature {} by {}",
        v.signature.referrer,
        v.signature.signer()
    )
}
