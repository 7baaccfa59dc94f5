//! Referrers: artifacts that point at another one through their `subject` (signatures).
//!
//! Registries with the OCI 1.1 referrers API list them themselves; for those without it
//! (GHCR, CNCF Distribution 2.8) and for layout folders, the writer keeps an image index
//! of them under the `sha256-<hex>` tag of the subject, as cosign 3 does. [`list`] reads
//! either; [`add`] maintains the tag.

use std::collections::BTreeMap;

use oci_client::manifest::{ImageIndexEntry, OciImageIndex};

use crate::error::Result;
use crate::oci::digest::Digest;
use crate::oci::manifest::Manifest;
use crate::oci::media;
use crate::oci::store::Store;

/// The referrers of `subject`: the registry's referrers API, else the referrers tag.
pub(crate) async fn list(store: &Store, subject: &Digest) -> Result<Vec<ImageIndexEntry>> {
    match store {
        Store::Registry(r) => r.referrers(subject).await,
        Store::Layout(_) => Ok(match store.manifest(&subject.dashed()).await? {
            Some(index) => index.index()?.manifests,
            None => Vec::new(),
        }),
    }
}

/// Lists `referrer` (already in the store) under the referrers tag of `subject`, once.
pub(crate) async fn add(
    store: &Store,
    subject: &Manifest,
    referrer: &Manifest,
    artifact_type: &str,
    annotations: BTreeMap<String, String>,
) -> Result<()> {
    let tag = subject.digest.dashed();
    let mut index = match store.manifest(&tag).await? {
        Some(m) => m.index()?,
        None => OciImageIndex {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.into()),
            manifests: Vec::new(),
            artifact_type: None,
            annotations: None,
        },
    };
    if index
        .manifests
        .iter()
        .any(|m| m.digest == referrer.digest.as_str())
    {
        return Ok(());
    }
    index.manifests.push(ImageIndexEntry {
        media_type: media::OCI_MANIFEST.into(),
        digest: referrer.digest.to_string(),
        size: referrer.bytes.len() as i64,
        platform: None,
        annotations: Some(annotations),
        artifact_type: Some(artifact_type.into()),
    });
    let index = Manifest::new(
        media::OCI_INDEX,
        serde_json::to_vec(&index).expect("an index serialises"),
    );
    store.put_manifest(&index).await?;
    store.set_tag(&index, &tag).await?;
    Ok(())
}
