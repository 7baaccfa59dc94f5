//! `package show`: what a reference holds, for people and for scripts (`--json`).
//!
//! Reads the manifest a tag or digest names (listing an index's platforms), its layers
//! with titles and sizes, its annotations, the repository's tags, and the referrers found
//! under the `sha256-<hex>` tag that registries without the referrers API use. It only
//! reads; nothing here writes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::oci::digest::Digest;
use crate::oci::manifest::Manifest;
use crate::oci::media;
use crate::oci::reference::Target;
use crate::oci::store::{Connect, Store};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shown {
    pub reference: String,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Layer>,
    pub layers: Vec<Layer>,
    pub manifests: Vec<Layer>,
    pub tags: Vec<String>,
    pub referrers: Vec<Layer>,
    pub signatures: Vec<crate::signing::found::Found>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn layer(
    media_type: &str,
    digest: &str,
    size: i64,
    annotations: Option<&BTreeMap<String, String>>,
) -> Layer {
    let annotations = annotations.cloned().unwrap_or_default();
    Layer {
        media_type: media_type.to_string(),
        digest: digest.to_string(),
        size,
        title: annotations.get(media::ANN_TITLE).cloned(),
        platform: None,
        artifact_type: None,
        annotations,
    }
}

pub async fn show(reference: &str, connect: &Connect) -> Result<Shown> {
    let target = Target::parse(reference)?;
    let store = Store::open(&target.repo, connect).await?;
    let tags = store.tags().await?;
    let selector = target.selector().ok_or_else(|| {
        let listing = if tags.is_empty() {
            "the repository has no tags".to_string()
        } else {
            format!("its tags: {}", tags.join(", "))
        };
        Error::Usage(format!(
            "{reference} names a repository; add :TAG or @DIGEST ({listing})"
        ))
    })?;
    let manifest = store
        .manifest(&selector)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: format!("{target}"),
            hint: Some(if tags.is_empty() {
                "the repository has no tags".into()
            } else {
                format!("its tags: {}", tags.join(", "))
            }),
        })?;
    let mut shown = Shown {
        reference: target.to_string(),
        digest: manifest.digest.clone(),
        media_type: manifest.media_type.clone(),
        size: manifest.bytes.len() as u64,
        artifact_type: None,
        annotations: BTreeMap::new(),
        config: None,
        layers: Vec::new(),
        manifests: Vec::new(),
        tags,
        referrers: Vec::new(),
        signatures: Vec::new(),
    };
    describe(&mut shown, &manifest)?;
    let referrers_tag = manifest.digest.dashed();
    if shown.tags.contains(&referrers_tag) {
        if let Some(index) = store.manifest(&referrers_tag).await? {
            for m in index.index()?.manifests {
                let mut l = layer(&m.media_type, &m.digest, m.size, m.annotations.as_ref());
                l.artifact_type = m.artifact_type.clone();
                shown.referrers.push(l);
            }
        }
        shown.signatures = crate::signing::found::signatures(&store, &manifest.digest)
            .await?
            .into_iter()
            .map(|(f, _)| f)
            .collect();
    }
    Ok(shown)
}

/// What the manifest itself says: an index's manifests, or an image's config and layers.
fn describe(shown: &mut Shown, manifest: &Manifest) -> Result<()> {
    if manifest.is_index() {
        let index = manifest.index()?;
        shown.artifact_type = index.artifact_type.clone();
        shown.annotations = index.annotations.clone().unwrap_or_default();
        for m in &index.manifests {
            let mut l = layer(&m.media_type, &m.digest, m.size, m.annotations.as_ref());
            l.platform = m
                .platform
                .as_ref()
                .map(|p| format!("{}/{}", p.os, p.architecture));
            l.artifact_type = m.artifact_type.clone();
            shown.manifests.push(l);
        }
        return Ok(());
    }
    let image = manifest.image()?;
    shown.artifact_type = image.artifact_type.clone();
    shown.annotations = image.annotations.clone().unwrap_or_default();
    let c = &image.config;
    shown.config = Some(layer(
        &c.media_type,
        &c.digest,
        c.size,
        c.annotations.as_ref(),
    ));
    shown.layers = image
        .layers
        .iter()
        .map(|l| layer(&l.media_type, &l.digest, l.size, l.annotations.as_ref()))
        .collect();
    Ok(())
}
