//! Images pulled from a registry (or an OCI layout) by reference: narrowed to the
//! platform, config checked, layers fetched into the cache.

use futures_util::{StreamExt as _, TryStreamExt as _};
use oci_client::manifest::OciDescriptor;

use crate::error::{Error, Result};
use crate::oci::blocking;
use crate::oci::digest::Digest;
use crate::oci::layout::LayoutStore;
use crate::oci::manifest::Manifest;
use crate::oci::reference::{Repo, Target};
use crate::oci::store::{Connect, Store};
use crate::package::image::platform::{check_platform, pick_platform, Platform};
use crate::package::image::{split_name, ResolvedImage};

/// An image resolved in its registry whose layers are not all in the cache yet.
pub(crate) struct Remote {
    store: Store,
    missing: Vec<OciDescriptor>,
}

/// Resolves `reference` to one platform and caches its config and manifest; its layers
/// are left to [`fetch_layers`], so that those of several images travel at once, and are
/// announced to the cache as coming ([`LayoutStore::expect`]).
pub(crate) async fn resolve(
    reference: &str,
    platform: &Platform,
    connect: &Connect,
    cache: &LayoutStore,
) -> Result<(ResolvedImage, Remote)> {
    let target = Target::parse(reference)?;
    let store = Store::open(&target.repo, connect).await?;
    let what = format!("image {reference}");
    let manifest = platform_manifest(&store, &target, reference, platform).await?;
    let image = manifest.image()?;
    let config_digest: Digest = image.config.digest.parse()?;
    if !cache.has_blob(&config_digest) {
        let bytes = store
            .fetch_blob_bytes(&config_digest, Some(image.config.size as u64))
            .await?;
        blocking(|| cache.put_blob_bytes(&config_digest, &bytes))?;
    }
    let config = blocking(|| cache.read_blob_bytes(&config_digest, None))?;
    check_platform(&config, platform, &what)?;
    let mut missing = Vec::new();
    for layer in &image.layers {
        let digest: Digest = layer.digest.parse()?;
        if !cache.has_blob(&digest)
            && !missing
                .iter()
                .any(|m: &OciDescriptor| m.digest == layer.digest)
        {
            cache.expect(&digest);
            missing.push(layer.clone());
        }
    }
    blocking(|| cache.put_blob_bytes(&manifest.digest, &manifest.bytes))?;
    let (name, tag) = split_name(reference);
    let resolved = ResolvedImage {
        name,
        tag,
        manifest,
        config: image.config,
        layers: image.layers,
        source: match &target.repo {
            Repo::Registry { registry, .. } => format!("registry {registry}"),
            Repo::Layout(p) => format!("OCI layout {}", p.display()),
        },
    };
    Ok((resolved, Remote { store, missing }))
}

/// The manifest `reference` names for `platform`: itself, or the one its index lists.
async fn platform_manifest(
    store: &Store,
    target: &Target,
    reference: &str,
    platform: &Platform,
) -> Result<Manifest> {
    let selector = target.selector().unwrap_or_else(|| "latest".into());
    let manifest = store
        .manifest(&selector)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: format!("image {reference} (looked up as {target})"),
            hint: Some(
                "check the name and tag, or build it and pass --image SERVICE=ARCHIVE".into(),
            ),
        })?;
    if !manifest.is_index() {
        return Ok(manifest);
    }
    let desc = pick_platform(&manifest, platform, &format!("image {reference}"))?;
    store
        .manifest(&desc.digest)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: format!("manifest {} listed by {reference}", desc.digest),
            hint: None,
        })
}

/// The digest `package prepare` would pin `reference` to for `platform`, read from its
/// registry now (manifests only, no blob is fetched).
pub(crate) async fn pin_digest(
    reference: &str,
    platform: &Platform,
    connect: &Connect,
) -> Result<Digest> {
    let target = Target::parse(reference)?;
    let store = Store::open(&target.repo, connect).await?;
    Ok(platform_manifest(&store, &target, reference, platform)
        .await?
        .digest)
}

/// Fetches the missing layers of every image into the cache, as many at once as the
/// registries allow (`--concurrency`); a layer several images share travels once. Layers
/// start in the order of `first` (those it does not name last), so that a writer waiting
/// for them ([`LayoutStore::wait_for`]) in that order can begin early; when one fails,
/// the cache gives up on the rest ([`LayoutStore::abandon`]).
pub(crate) async fn fetch_layers(
    remotes: Vec<Remote>,
    first: &[Digest],
    cache: &LayoutStore,
) -> Result<()> {
    let fetched = fetch_all(remotes, first, cache).await;
    if fetched.is_err() {
        cache.abandon();
    }
    fetched
}

async fn fetch_all(remotes: Vec<Remote>, first: &[Digest], cache: &LayoutStore) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    let mut jobs = Vec::new();
    let mut width = 1;
    for r in &remotes {
        width = width.max(r.store.concurrency());
        for layer in &r.missing {
            if seen.insert(layer.digest.clone()) {
                jobs.push((&r.store, layer));
            }
        }
    }
    let rank = |d: &str| {
        first
            .iter()
            .position(|f| f.as_str() == d)
            .unwrap_or(first.len())
    };
    jobs.sort_by_key(|(_, layer)| rank(&layer.digest));
    futures_util::stream::iter(jobs)
        .map(|(store, layer)| async move {
            let digest: Digest = layer.digest.parse()?;
            store
                .fetch_blob_to_file(layer, &cache.blob_path(&digest))
                .await?;
            cache.checked(&digest);
            Ok(())
        })
        .buffer_unordered(width)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}
