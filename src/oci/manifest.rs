//! Manifests as bytes, and the one builder of the artifact manifests margo-gitops writes.
//!
//! A [`Manifest`] keeps the exact bytes a store served or will store, with their digest:
//! signatures and digests are over those bytes, never over a re-serialisation. Every
//! artifact we publish (packages, signatures, desired-state versions) is an OCI 1.1
//! artifact: an image manifest with an `artifactType`, the empty config and its layers;
//! [`artifact`] builds them all, so they are written one way.

use std::collections::BTreeMap;

use oci_client::manifest::{OciDescriptor, OciImageIndex, OciImageManifest};

use crate::error::{Error, Result};
use crate::oci::digest::Digest;
use crate::oci::media;

/// Largest manifest or config margo-gitops will hold in memory (the registry's own limit is 4 MiB).
pub(crate) const MAX_SMALL_BLOB: u64 = 16 << 20;

/// A manifest as bytes, with the digest of those exact bytes and its media type.
#[derive(Clone, Debug)]
pub(crate) struct Manifest {
    pub bytes: Vec<u8>,
    pub digest: Digest,
    pub media_type: String,
}

impl Manifest {
    /// Wraps bytes margo-gitops produced.
    pub(crate) fn new(media_type: impl Into<String>, bytes: Vec<u8>) -> Self {
        Manifest {
            digest: Digest::of(&bytes),
            bytes,
            media_type: media_type.into(),
        }
    }

    /// Wraps bytes read from somewhere, taking the media type from the JSON when not given.
    pub(crate) fn from_bytes(bytes: Vec<u8>, media_type: Option<&str>) -> Result<Self> {
        #[derive(serde::Deserialize)]
        struct Probe {
            #[serde(rename = "mediaType")]
            media_type: Option<String>,
            manifests: Option<serde_json::Value>,
        }
        let probe: Probe = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid(format!("manifest is not JSON: {e}")))?;
        let media_type = match (probe.media_type, media_type) {
            (Some(m), _) => m,
            (None, Some(m)) if !m.is_empty() => m.to_string(),
            (None, _) if probe.manifests.is_some() => media::OCI_INDEX.to_string(),
            (None, _) => media::OCI_MANIFEST.to_string(),
        };
        Ok(Manifest::new(media_type, bytes))
    }

    pub(crate) fn is_index(&self) -> bool {
        media::is_index(&self.media_type)
    }

    pub(crate) fn image(&self) -> Result<OciImageManifest> {
        serde_json::from_slice(&self.bytes).map_err(|e| {
            Error::invalid(format!(
                "manifest {} is not an image manifest: {e}",
                self.digest
            ))
        })
    }

    pub(crate) fn index(&self) -> Result<OciImageIndex> {
        serde_json::from_slice(&self.bytes)
            .map_err(|e| Error::invalid(format!("manifest {} is not an index: {e}", self.digest)))
    }

    /// A descriptor pointing at this manifest.
    pub(crate) fn descriptor(&self) -> OciDescriptor {
        OciDescriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.to_string(),
            size: self.bytes.len() as i64,
            ..Default::default()
        }
    }
}

/// The descriptor of the empty JSON config (`{}`) artifacts carry.
pub(crate) fn empty_config() -> OciDescriptor {
    OciDescriptor {
        media_type: media::OCI_EMPTY.into(),
        digest: Digest::of(media::EMPTY_JSON).to_string(),
        size: media::EMPTY_JSON.len() as i64,
        ..Default::default()
    }
}

/// An artifact manifest: `artifact_type`, the empty config, `layers`, `annotations` and,
/// for a referrer, the `subject` it refers to.
pub(crate) fn artifact(
    artifact_type: &str,
    layers: Vec<OciDescriptor>,
    annotations: BTreeMap<String, String>,
    subject: Option<&Manifest>,
) -> Manifest {
    let m = OciImageManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: Some(artifact_type.into()),
        config: empty_config(),
        layers,
        subject: subject.map(Manifest::descriptor),
        annotations: Some(annotations),
    };
    Manifest::new(
        media::OCI_MANIFEST,
        serde_json::to_vec(&m).expect("a manifest serialises"),
    )
}

/// The compose archive layer of a package manifest (the current Margo layout's, or the
/// PoC's), when it has one.
pub(crate) fn compose_layer(package: &Manifest) -> Result<Option<OciDescriptor>> {
    Ok(package.image()?.layers.into_iter().find(|l| {
        l.media_type == media::MARGO_COMPOSE_LAYER || l.media_type == media::POC_APP_LAYER
    }))
}
