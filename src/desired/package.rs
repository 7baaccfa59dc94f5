//! The package a deployment runs, as templates see it: looked up where it was published
//! (digests, blob URLs, the signature a PoC-form template needs), or placeholders where
//! only a registry would know (offline checks, packages not published yet).

use serde::Serialize;

use crate::error::{Error, Result};
use crate::oci::reference::{Repo, Target};
use crate::oci::store::{Connect, Store};

/// The digest offline renderings use where the registry's would stand.
pub(crate) const PLACEHOLDER_DIGEST: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// A blob of the package, with the URL a device fetches it from.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BlobRef {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    pub url: String,
}

/// What the templates know about the package a deployment runs.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PackageInfo {
    pub registry: String,
    pub repository: String,
    pub tag: String,
    pub digest: String,
    /// `registry/repository:tag`.
    pub reference: String,
    /// `oci://registry/repository`, as the current Margo model's `repository` wants it.
    pub oci: String,
    pub archive: BlobRef,
    pub signature: Option<BlobRef>,
    pub key: Option<BlobRef>,
    pub signer: Option<String>,
}

/// Where a blob of `repo` is fetched from over the registry API (or the layout folder).
pub(crate) fn blob_url(repo: &Repo, digest: &str, plain_http: bool) -> String {
    match repo {
        Repo::Registry {
            registry,
            repository,
        } => {
            let scheme = if plain_http { "http" } else { "https" };
            let host = if registry == "docker.io" {
                "registry-1.docker.io"
            } else {
                registry
            };
            format!("{scheme}://{host}/v2/{repository}/blobs/{digest}")
        }
        Repo::Layout(path) => {
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            format!(
                "file://{}/blobs/sha256/{}",
                abs.display(),
                digest.trim_start_matches("sha256:")
            )
        }
    }
}

/// `(registry, repository, oci://…)` of a package repository, as the templates name them.
/// A layout has no registry; its `oci` is the `oci-layout:` form.
pub(crate) fn coordinates(repo: &Repo) -> (String, String, String) {
    match repo {
        Repo::Registry {
            registry,
            repository,
        } => (
            registry.clone(),
            repository.clone(),
            format!("oci://{registry}/{repository}"),
        ),
        Repo::Layout(p) => (String::new(), p.display().to_string(), repo.to_string()),
    }
}

/// Looks the package up where it was published.
pub(crate) async fn resolve_package(reference: &str, connect: &Connect) -> Result<PackageInfo> {
    let target = Target::parse(reference)?;
    let tag = target.tag.clone().ok_or_else(|| {
        Error::Usage(format!(
            "--package {reference}: name the version tag (`…:1.2.0`)"
        ))
    })?;
    let store = Store::open(&target.repo, connect).await?;
    let manifest = store
        .manifest(&target.selector().unwrap_or(tag.clone()))
        .await?
        .ok_or_else(|| Error::NotFound {
            what: format!("package {target}"),
            hint: Some("publish it first with `margo-gitops package publish`".into()),
        })?;
    let layer = crate::oci::manifest::compose_layer(&manifest)?
        .ok_or_else(|| Error::invalid(format!("{target} holds no compose package layer")))?;
    let blob = |d: &str, size: i64, mt: &str| BlobRef {
        digest: d.to_string(),
        size: size as u64,
        media_type: mt.to_string(),
        url: blob_url(&target.repo, d, connect.plain_http),
    };
    let (registry, repository, oci) = coordinates(&target.repo);
    let shown = crate::signing::found::template_signature(&store, &manifest.digest).await?;
    let shown = shown.as_ref();
    Ok(PackageInfo {
        signer: shown.map(|f| f.signer()),
        signature: shown.map(|f| {
            let media_type = if f.is_pgp() {
                crate::signing::pgp::SIGNATURE_MEDIA_TYPE
            } else {
                crate::signing::sigstore::bundle::MEDIA_TYPE
            };
            blob(&f.bundle_digest, f.bundle_size as i64, media_type)
        }),
        key: shown.and_then(|f| {
            let digest = f.pgp_key_digest.as_deref()?;
            Some(blob(
                digest,
                f.pgp_key_size.unwrap_or(0) as i64,
                crate::signing::pgp::KEY_MEDIA_TYPE,
            ))
        }),
        reference: format!("{}:{tag}", target.repo),
        registry,
        repository,
        digest: manifest.digest.to_string(),
        tag,
        oci,
        archive: blob(&layer.digest, layer.size, &layer.media_type),
    })
}

/// A package as rendering sees it, with placeholders where only the registry knows.
pub(crate) fn placeholder_package(reference: &str, plain_http: bool) -> Result<PackageInfo> {
    let target = Target::parse(reference)?;
    let tag = target.tag.clone().unwrap_or_else(|| "0.0.0".into());
    let (registry, repository, oci) = coordinates(&target.repo);
    Ok(PackageInfo {
        reference: format!("{}:{tag}", target.repo),
        registry,
        repository,
        tag,
        digest: PLACEHOLDER_DIGEST.into(),
        oci,
        archive: BlobRef {
            digest: PLACEHOLDER_DIGEST.into(),
            size: 0,
            media_type: crate::oci::media::MARGO_COMPOSE_LAYER.into(),
            url: blob_url(&target.repo, PLACEHOLDER_DIGEST, plain_http),
        },
        signature: None,
        key: None,
        signer: None,
    })
}
