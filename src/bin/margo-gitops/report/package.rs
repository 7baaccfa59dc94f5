//! What the package commands print: `prepare`, `publish`, `show`, `sign`, `verify`,
//! `key generate`.

use std::io::Write;
use std::path::Path;

use margo_gitops::oci::digest::Digest;
use margo_gitops::oci::media;
use margo_gitops::package::prepare::Prepared;
use margo_gitops::package::publish::Published;
use margo_gitops::package::show::Shown;
use margo_gitops::progress::human;
use margo_gitops::signing::verify::Verified;

/// `package diff`: one line per change, or JSON.
pub fn diffed(d: &margo_gitops::package::diff::AppDiff, json: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, d)?;
        return writeln!(out);
    }
    write!(out, "{}", margo_gitops::package::diff::render_text(d))
}

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
                .filter(|(k, _)| k.as_str() != media::ANN_TITLE)
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

pub fn signed(reference: &str, digest: &Digest, referrer: Option<&Digest>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match referrer {
        Some(r) => writeln!(out, "signed {reference} ({digest})\n  signature {r}"),
        None => writeln!(out, "not signed: --sign none"),
    }
}

pub fn verified(v: &Verified, json: bool) -> std::io::Result<()> {
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

pub fn key_generated(key: &Path, public: &Path) -> std::io::Result<()> {
    writeln!(
        std::io::stdout().lock(),
        "wrote {} (private, keep it secret) and {}",
        key.display(),
        public.display()
    )
}
