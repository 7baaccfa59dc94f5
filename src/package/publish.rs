//! `package publish`: a prepared package pushed as OCI artifacts, as [`Plan`] lays them out.
//!
//! The package is signed first (with `--sign`; keyless asks Fulcio and Rekor), before any
//! write, so a failed signature leaves the registry untouched; a version tag that already
//! names other content is refused before anything is written (versions are immutable
//! unless `--replace`); then the plan's writes are made in its order: the blobs the store
//! lacks all at once, then manifests, the signature, and the tags last.
//!
//! The archive is not read when the store has its blob already (publishing an unchanged
//! package asks and sends nothing else); when it is sent, the store checks its digest as
//! it arrives, and an archive changed since `package prepare` is refused by name.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use futures_util::{StreamExt as _, TryStreamExt as _};

use crate::oci::blocking;
use crate::oci::digest::Digest;
use crate::oci::reference::Repo;
use crate::oci::store::{Connect, Store};
use crate::package::descriptor::{tag_for_version, Descriptor};
use crate::package::plan::{BlobSource, Format, Plan, PlanRequest, Write};
use crate::signing::mode::SignOptions;
use crate::signing::signer::{attach_signature, Signature, Signer};

pub struct PublishOptions {
    pub input: PathBuf,
    pub to: Repo,
    pub app_to: Option<Repo>,
    pub version: Option<String>,
    pub format: Format,
    pub extra_tags: Vec<String>,
    pub connect: Connect,
    pub sign: SignOptions,
    /// Move a version tag that already names other content (`--replace`); refused otherwise.
    pub replace: bool,
}

/// One artifact as published.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PublishedArtifact {
    pub repository: String,
    pub tags: Vec<String>,
    pub digest: Digest,
    pub artifact_type: String,
    /// Blobs sent / blobs the store already had.
    pub blobs_uploaded: usize,
    pub blobs_present: usize,
    /// Tags that now point somewhere new.
    pub tags_moved: Vec<String>,
    /// The signature's referrer manifest, when the artifact was signed.
    pub signature: Option<Digest>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Published {
    pub app_id: String,
    pub version: String,
    pub artifacts: Vec<PublishedArtifact>,
}

pub async fn publish(opts: &PublishOptions) -> Result<Published> {
    let (d, descriptor_path) = Descriptor::find(&opts.input)?;
    let signer = blocking(|| Signer::new(&opts.sign))?;
    let base = descriptor_path
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let plan = Plan::new(
        &d,
        &base,
        &PlanRequest {
            to: &opts.to,
            app_to: opts.app_to.as_ref(),
            version: opts.version.as_deref(),
            format: opts.format,
            extra_tags: &opts.extra_tags,
        },
    )?;
    check_archive(&plan.archive, &d)?;
    // Open every destination first: a refused login stops the run before any write.
    let mut stores = Vec::new();
    for a in &plan.artifacts {
        stores.push(Store::open_for_push(&a.repo, &opts.connect).await?);
    }
    if !opts.replace {
        check_immutable(&plan, &stores).await?;
    }
    // The package (the first artifact) is signed before anything is written: a refused
    // token or an unreachable Fulcio or Rekor leaves the registry untouched.
    let signature = match &signer {
        Some(signer) => Some(
            signer
                .sign_package(&plan.artifacts[0].manifest, &stores[0], Some(&plan.archive))
                .await?,
        ),
        None => None,
    };
    let artifacts = execute(&plan, &stores, signature.as_ref()).await?;
    Ok(Published {
        app_id: d.app_id,
        version: plan.version,
        artifacts,
    })
}

/// The archive must be the one prepare wrote: a file of another size is refused before
/// anything is written; other bytes of the same size, when the store checks the digest.
fn check_archive(archive: &Path, d: &Descriptor) -> Result<()> {
    let size = std::fs::metadata(archive)
        .map_err(Error::io("read", archive))?
        .len();
    if size != d.archive.size {
        return Err(changed(archive));
    }
    Ok(())
}

fn changed(archive: &Path) -> Error {
    Error::invalid_file(
        archive,
        None,
        "the archive changed since `package prepare` wrote it",
    )
    .with_hint("run `margo-gitops package prepare` again")
}

/// Versions are immutable: desired states name packages by version, so a version tag that
/// already names other content is refused before anything is written.
async fn check_immutable(plan: &Plan, stores: &[Store]) -> Result<()> {
    let version_tag = tag_for_version(&plan.version);
    for (a, store) in plan.artifacts.iter().zip(stores) {
        match store.resolve(&version_tag).await? {
            Some(existing) if existing != a.manifest.digest => {
                return Err(Error::invalid(format!(
                    "{}:{version_tag} already names {existing}, not this content ({}); a published version is immutable",
                    a.repo, a.manifest.digest
                ))
                .with_hint("bump `metadata.version` in margo.yaml, or pass --replace to move the tag"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Makes the plan's writes in its order, the blobs at once; `stores[i]` holds artifact `i`.
async fn execute(
    plan: &Plan,
    stores: &[Store],
    signature: Option<&Signature>,
) -> Result<Vec<PublishedArtifact>> {
    let mut results: Vec<PublishedArtifact> = plan
        .artifacts
        .iter()
        .map(|a| PublishedArtifact {
            repository: a.repo.to_string(),
            tags: a.tags.clone(),
            digest: a.manifest.digest.clone(),
            artifact_type: a.artifact_type.clone(),
            blobs_uploaded: 0,
            blobs_present: 0,
            tags_moved: Vec::new(),
            signature: None,
        })
        .collect();
    let (blobs, rest): (Vec<Write>, Vec<Write>) = plan
        .writes(signature.is_some())
        .into_iter()
        .partition(|w| matches!(w, Write::Blob { .. }));
    let width = stores.iter().map(Store::concurrency).max().unwrap_or(1);
    let sent: Vec<(usize, bool)> = futures_util::stream::iter(blobs)
        .map(|w| push_blob(plan, stores, w))
        .buffer_unordered(width)
        .try_collect()
        .await?;
    for (artifact, sent) in sent {
        let r = &mut results[artifact];
        if sent {
            r.blobs_uploaded += 1;
        } else {
            r.blobs_present += 1;
        }
    }
    for write in rest {
        match write {
            Write::Blob { .. } => unreachable!("blobs went first"),
            Write::Manifest { artifact } => {
                let m = &plan.artifacts[artifact].manifest;
                if stores[artifact].resolve(m.digest.as_str()).await?.is_none() {
                    stores[artifact].put_manifest(m).await?;
                }
            }
            Write::Signature => {
                let sig = signature.expect("planned only when signed");
                results[0].signature =
                    Some(attach_signature(&stores[0], &plan.artifacts[0].manifest, sig).await?);
            }
            Write::Tag { artifact, tag } => {
                let m = &plan.artifacts[artifact].manifest;
                if stores[artifact].set_tag(m, &tag).await? {
                    results[artifact].tags_moved.push(tag);
                }
            }
        }
    }
    Ok(results)
}

/// One blob of the plan, unless its store has it: `(artifact, sent)`.
async fn push_blob(plan: &Plan, stores: &[Store], write: Write) -> Result<(usize, bool)> {
    let Write::Blob { artifact, blob } = write else {
        unreachable!("only blobs")
    };
    let b = &plan.artifacts[artifact].blobs[blob];
    let sent = match &b.source {
        BlobSource::File(path) => stores[artifact]
            .push_blob_file(&b.descriptor, path)
            .await
            .map_err(|e| match e {
                Error::DigestMismatch { .. } if *path == plan.archive => changed(path),
                other => other,
            })?,
        BlobSource::Bytes(bytes) => stores[artifact].push_blob_bytes(bytes).await?,
    };
    Ok((artifact, sent))
}
