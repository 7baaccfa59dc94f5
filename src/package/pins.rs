//! Image digests for `package diff` and the pull-request review. An app folder names its
//! images by tag; what a device runs is the manifest a tag named when the package was
//! prepared. A side's digests come from the package published for its version (what devices
//! run) or are looked up in each image's registry now, exactly as `package prepare` would
//! pin them (the manifest for the platform, nothing else fetched). Built services and
//! services taken from archives have no registry to ask; an image that cannot be looked up
//! is left without a digest and the reason becomes a note, never an error.

use std::collections::BTreeSet;

use futures_util::future::join_all;

use crate::oci::store::Connect;
use crate::package::diff::AppView;
use crate::package::image::pull::pin_digest;
use crate::package::image::Platform;

/// Takes the digests of `published` (a package's view) for the services of `view` that
/// name the same image.
pub fn take_published(view: &mut AppView, published: &AppView) {
    for (name, service) in &mut view.services {
        let Some(p) = published.services.get(name) else {
            continue;
        };
        if service.digest.is_none() && service.image == p.image {
            service.digest = p.digest.clone();
        }
    }
}

/// Looks up, in their registries, the digests of the images of `view` that have none yet,
/// all at once; services in `skip` (taken from archives) and built ones are left alone.
/// Returns a note for each image that could not be looked up.
pub async fn resolve(
    view: &mut AppView,
    platform: &Platform,
    connect: &Connect,
    skip: &BTreeSet<String>,
) -> Vec<String> {
    let wanted: Vec<(String, String)> = view
        .services
        .iter()
        .filter(|(name, s)| s.digest.is_none() && !s.built && !skip.contains(*name))
        .filter_map(|(name, s)| Some((name.clone(), s.image.clone()?)))
        .collect();
    let found = join_all(
        wanted
            .iter()
            .map(|(_, image)| pin_digest(image, platform, connect)),
    )
    .await;
    let mut notes = Vec::new();
    for ((name, image), result) in wanted.into_iter().zip(found) {
        match result {
            Ok(digest) => {
                if let Some(s) = view.services.get_mut(&name) {
                    s.digest = Some(digest.to_string());
                }
            }
            Err(e) => notes.push(format!(
                "{}: the digest of {image} (service {name}) is unknown: {e}",
                view.label
            )),
        }
    }
    notes
}
