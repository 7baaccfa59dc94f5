//! Images pulled from a registry (or an OCI layout) by reference: narrowed to the
//! platform, config checked, layers fetched into the cache.

use crate::error::{Error, Result};
use crate::oci::digest::Digest;
use crate::oci::layout::LayoutStore;
use crate::oci::reference::{Repo, Target};
use crate::oci::store::{Connect, Store};
use crate::package::image::platform::{check_platform, pick_platform, Platform};
use crate::package::image::{split_name, ResolvedImage};

/// Resolves `reference` from its registry; fetches config and (when `with_layers`) layers.
pub(crate) async fn from_registry(
    reference: &str,
    platform: &Platform,
    connect: &Connect,
    cache: &LayoutStore,
    with_layers: bool,
) -> Result<ResolvedImage> {
    let target = Target::parse(reference)?;
    let selector = target.selector().unwrap_or_else(|| "latest".into());
    let store = Store::open(&target.repo, connect).await?;
    let what = format!("image {reference}");
    let mut manifest = store
        .manifest(&selector)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: format!("image {reference} (looked up as {target})"),
            hint: Some(
                "check the name and tag, or build it and pass --image SERVICE=ARCHIVE".into(),
            ),
        })?;
    if manifest.is_index() {
        let desc = pick_platform(&manifest, platform, &what)?;
        manifest = store
            .manifest(&desc.digest)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("manifest {} listed by {reference}", desc.digest),
                hint: None,
            })?;
    }
    let image = manifest.image()?;
    let config_digest: Digest = image.config.digest.parse()?;
    if !cache.has_blob(&config_digest) {
        let bytes = store
            .fetch_blob_bytes(&config_digest, Some(image.config.size as u64))
            .await?;
        cache.put_blob_bytes(&config_digest, &bytes)?;
    }
    check_platform(
        &cache.read_blob_bytes(&config_digest, None)?,
        platform,
        &what,
    )?;
    if with_layers {
        for layer in &image.layers {
            let digest: Digest = layer.digest.parse()?;
            if !cache.has_blob(&digest) {
                store
                    .fetch_blob_to_file(layer, &cache.blob_path(&digest))
                    .await?;
            }
        }
    }
    cache.put_blob_bytes(&manifest.digest, &manifest.bytes)?;
    let (name, tag) = split_name(reference);
    Ok(ResolvedImage {
        name,
        tag,
        manifest,
        config: image.config,
        layers: image.layers,
        source: match &target.repo {
            Repo::Registry { registry, .. } => format!("registry {registry}"),
            Repo::Layout(p) => format!("OCI layout {}", p.display()),
        },
    })
}
