//! Reading and writing OCI content, in a registry or in an OCI image-layout folder.
//!
//! [`Store`] is the one interface the rest of margo-gitops uses; it does not know what a
//! package is. Its rules: every blob read is checked against its digest before anyone
//! uses it; blobs stream from and to files, never whole in memory; a blob the store
//! already has is not sent again; a manifest is written only after its blobs, and a tag
//! only after its manifest, so a failure never leaves a tag on half-written content.

use std::path::Path;

use oci_client::manifest::OciDescriptor;

use crate::error::{Error, Result};
use crate::oci::blocking;
use crate::oci::digest::Digest;
use crate::oci::manifest::Manifest;
use crate::oci::manifest::MAX_SMALL_BLOB;
use crate::oci::media;
use crate::oci::reference::Repo;
use crate::oci::registry::Body;
pub use crate::oci::registry::Connect;
use crate::progress::Progress;

/// Where content is read from or written to.
pub(crate) enum Store {
    Registry(super::registry::RegistryStore),
    Layout(super::layout::LayoutStore),
}

/// The digest and media type of a blob to move, and its size.
pub(crate) fn descriptor_digest(desc: &OciDescriptor) -> Result<Digest> {
    desc.digest.parse()
}

impl Store {
    /// Opens a repository for reading; a layout folder must exist.
    pub(crate) async fn open(repo: &Repo, connect: &Connect) -> Result<Store> {
        Self::open_mode(repo, connect, false).await
    }

    /// Opens a repository for writing; a layout folder is created when missing.
    pub(crate) async fn open_for_push(repo: &Repo, connect: &Connect) -> Result<Store> {
        Self::open_mode(repo, connect, true).await
    }

    async fn open_mode(repo: &Repo, connect: &Connect, push: bool) -> Result<Store> {
        Ok(match repo {
            Repo::Layout(path) => Store::Layout(if push {
                super::layout::LayoutStore::create(path)?
            } else {
                super::layout::LayoutStore::open(path)?
            }),
            Repo::Registry {
                registry,
                repository,
            } => Store::Registry(
                super::registry::RegistryStore::connect(registry, repository, connect, push)
                    .await?,
            ),
        })
    }

    pub(crate) async fn has_blob(&self, digest: &Digest) -> Result<bool> {
        match self {
            Store::Registry(r) => r.has_blob(digest).await,
            Store::Layout(l) => Ok(l.has_blob(digest)),
        }
    }

    /// Sends the blob in `file` unless the store has it; true when it was sent.
    pub(crate) async fn push_blob_file(&self, desc: &OciDescriptor, file: &Path) -> Result<bool> {
        let digest = descriptor_digest(desc)?;
        if self.has_blob(&digest).await? {
            return Ok(false);
        }
        let size = desc.size as u64;
        let progress = Progress::new(format!("pushing {}", short_name(desc)), size);
        match self {
            Store::Registry(r) => {
                let body = Body::File {
                    path: file,
                    size,
                    progress: &progress,
                };
                r.upload(&digest, size, body).await?
            }
            Store::Layout(l) => blocking(|| l.put_blob_file(&digest, size, file, &progress))?,
        }
        progress.finish();
        Ok(true)
    }

    /// Sends a small blob held in memory unless the store has it.
    pub(crate) async fn push_blob_bytes(&self, bytes: &[u8]) -> Result<bool> {
        let digest = Digest::of(bytes);
        if self.has_blob(&digest).await? {
            return Ok(false);
        }
        match self {
            Store::Registry(r) => {
                r.upload(&digest, bytes.len() as u64, Body::Bytes(bytes))
                    .await?
            }
            Store::Layout(l) => blocking(|| l.put_blob_bytes(&digest, bytes))?,
        }
        Ok(true)
    }

    /// Sends a small blob that is most likely new without asking about it first (the
    /// store keeps one copy anyway); blobs this run knows are there are skipped.
    pub(crate) async fn put_blob_bytes(&self, bytes: &[u8]) -> Result<()> {
        let digest = Digest::of(bytes);
        match self {
            Store::Registry(r) => r.put_blob(&digest, bytes).await,
            Store::Layout(l) if l.has_blob(&digest) => Ok(()),
            Store::Layout(l) => blocking(|| l.put_blob_bytes(&digest, bytes)),
        }
    }

    /// Copies a blob into `dest`, checking its digest and size; `dest` appears only when right.
    pub(crate) async fn fetch_blob_to_file(&self, desc: &OciDescriptor, dest: &Path) -> Result<()> {
        let digest = descriptor_digest(desc)?;
        let size = desc.size as u64;
        let progress = Progress::new(format!("fetching {}", short_name(desc)), size);
        match self {
            Store::Registry(r) => r.fetch_blob_to_file(&digest, size, dest, &progress).await?,
            Store::Layout(l) => {
                blocking(|| l.copy_blob_to_file(&digest, Some(size), dest, &progress))?
            }
        }
        progress.finish();
        Ok(())
    }

    /// Reads a small blob (a config, a descriptor file), checked against its digest.
    pub(crate) async fn fetch_blob_bytes(
        &self,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<Vec<u8>> {
        if size.is_some_and(|s| s > MAX_SMALL_BLOB) {
            return Err(Error::invalid(format!(
                "blob {digest} is {} bytes, too large to read into memory",
                size.unwrap_or(0)
            )));
        }
        match self {
            Store::Registry(r) => r.fetch_blob_bytes(digest, size).await,
            Store::Layout(l) => blocking(|| l.read_blob_bytes(digest, size)),
        }
    }

    /// The manifest a tag or digest names, or `None` when it names nothing.
    pub(crate) async fn manifest(&self, selector: &str) -> Result<Option<Manifest>> {
        match self {
            Store::Registry(r) => r.manifest(selector).await,
            Store::Layout(l) => blocking(|| l.manifest(selector)),
        }
    }

    /// The digest a tag (or digest) points at, or `None`: one `HEAD` for a registry.
    pub(crate) async fn resolve(&self, selector: &str) -> Result<Option<Digest>> {
        match self {
            Store::Registry(r) => r.resolve(selector).await,
            Store::Layout(l) => Ok(blocking(|| l.manifest(selector))?.map(|m| m.digest)),
        }
    }

    /// Writes a manifest by its digest; its blobs must be in the store already.
    pub(crate) async fn put_manifest(&self, manifest: &Manifest) -> Result<()> {
        match self {
            Store::Registry(r) => r.push_manifest(manifest, manifest.digest.as_str()).await,
            Store::Layout(l) => blocking(|| l.put_manifest(manifest, None)),
        }
    }

    /// Writes a manifest under a tag that does not exist yet: one request, the manifest
    /// and its tag at once. Its blobs must be in the store already.
    pub(crate) async fn put_manifest_tagged(&self, manifest: &Manifest, tag: &str) -> Result<()> {
        match self {
            Store::Registry(r) => r.push_manifest(manifest, tag).await,
            Store::Layout(l) => blocking(|| l.put_manifest(manifest, Some(tag))),
        }
    }

    /// Points `tag` at a manifest that is in the store; false when it pointed there already.
    pub(crate) async fn set_tag(&self, manifest: &Manifest, tag: &str) -> Result<bool> {
        if self.resolve(tag).await?.as_ref() == Some(&manifest.digest) {
            return Ok(false);
        }
        self.put_manifest_tagged(manifest, tag).await?;
        Ok(true)
    }

    /// Every tag of the repository, sorted.
    pub(crate) async fn tags(&self) -> Result<Vec<String>> {
        let mut tags = match self {
            Store::Registry(r) => r.tags().await?,
            Store::Layout(l) => blocking(|| l.tags())?,
        };
        tags.sort();
        Ok(tags)
    }

    /// How many transfers this store may have in flight at once.
    pub(crate) fn concurrency(&self) -> usize {
        match self {
            Store::Registry(r) => r.concurrency(),
            Store::Layout(_) => 2,
        }
    }
}

fn short_name(desc: &OciDescriptor) -> String {
    let title = desc
        .annotations
        .as_ref()
        .and_then(|a| a.get(media::ANN_TITLE))
        .cloned();
    let hex = desc.digest.trim_start_matches("sha256:");
    match title {
        Some(t) => t,
        None => format!("blob {}", &hex[..hex.len().min(12)]),
    }
}
