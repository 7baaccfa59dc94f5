//! The signatures stored beside a package, found and described as they describe
//! themselves (nothing here verifies: see [`crate::signing::verify`]).
//!
//! Each signature is an OCI 1.1 referrer of the package manifest, listed for registries
//! without the referrers API under the `sha256-<hex>` tag ([`crate::oci::referrers`]):
//! a Sigstore bundle, or the PoC's OpenPGP signature with its public key.

use futures_util::{StreamExt as _, TryStreamExt as _};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::oci::digest::Digest;
use crate::oci::media;
use crate::oci::referrers;
use crate::oci::store::Store;
use crate::signing::pgp;
use crate::signing::sigstore::bundle::{Bundle, MEDIA_TYPE as BUNDLE_MEDIA_TYPE};

pub(crate) const ANN_BUNDLE_CONTENT: &str = "dev.sigstore.bundle.content";
pub(crate) const ANN_PGP_FINGERPRINT: &str = "org.margo.signature.pgp.fingerprint";
pub(crate) const ANN_SIGNED_BLOB: &str = "org.margo.signature.signed-blob";

/// A signature found for a package, as it describes itself (not verified).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    pub referrer: String,
    /// The blob holding the signature: the Sigstore bundle, or the OpenPGP signature.
    pub bundle_digest: String,
    pub bundle_size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_index: Option<i64>,
    /// When the transparency log integrated the entry (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
    /// OpenPGP signatures: the signing key's fingerprint and the public key's blob.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgp_fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgp_key_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgp_key_size: Option<u64>,
}

impl Found {
    fn describe(&mut self, bundle: &[u8]) {
        let Ok(b) = Bundle::parse(bundle) else {
            return;
        };
        self.key_hint = b
            .verification_material
            .public_key
            .as_ref()
            .map(|k| k.hint.clone());
        if let Some(d) = crate::signing::sigstore::verify::describe(&b) {
            self.identity = Some(d.identity);
            self.issuer = Some(d.issuer);
            self.log_index = (d.log_index >= 0).then_some(d.log_index);
            self.signed_at =
                (d.integrated_time > 0).then(|| media::rfc3339(d.integrated_time as u64));
        }
    }

    /// Whether this is an OpenPGP signature (over the archive) rather than a bundle.
    pub(crate) fn is_pgp(&self) -> bool {
        self.pgp_key_digest.is_some()
    }

    /// Who signed, in words: `key HINT`, `OpenPGP key FINGERPRINT` or
    /// `IDENTITY (issuer ISSUER, log index N, TIME)`.
    pub fn signer(&self) -> String {
        match (&self.key_hint, &self.identity, &self.pgp_fingerprint) {
            (Some(h), _, _) => format!("key {h}"),
            (None, Some(id), _) => format!(
                "{id} (issuer {}, log index {}, {})",
                self.issuer.as_deref().unwrap_or("?"),
                self.log_index.map_or("?".into(), |i| i.to_string()),
                self.signed_at.as_deref().unwrap_or("?")
            ),
            (None, None, Some(fp)) => format!("OpenPGP key {fp}"),
            (None, None, None) => "an unreadable signature".into(),
        }
    }
}

/// The signatures of `subject`, with their content: the bundle, or the armored OpenPGP signature.
pub(crate) async fn signatures(store: &Store, subject: &Digest) -> Result<Vec<(Found, Vec<u8>)>> {
    let entries = signature_entries(store, subject).await?;
    // Read together, listed in order.
    // A referrer that cannot be read as a signature is left out, not the end of the list.
    let found: Vec<Option<(Found, Vec<u8>)>> = futures_util::stream::iter(&entries)
        .map(|(referrer, _)| async move {
            match fetch_signature(store, referrer).await {
                Err(
                    Error::Invalid { .. } | Error::NotFound { .. } | Error::DigestMismatch { .. },
                ) => Ok(None),
                other => other,
            }
        })
        .buffered(store.concurrency())
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

/// The one signature templates show: the OpenPGP one when there is one (the PoC form's
/// `keyLocation` needs its key), else the first; only that one is read.
pub(crate) async fn template_signature(store: &Store, subject: &Digest) -> Result<Option<Found>> {
    let mut entries = signature_entries(store, subject).await?;
    // Stable: OpenPGP entries first, the listing order kept otherwise.
    entries.sort_by_key(|(_, t)| t.as_deref() != Some(pgp::ARTIFACT_TYPE));
    for (referrer, _) in entries {
        if let Some((found, _)) = fetch_signature(store, &referrer).await? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The referrers of `subject` that may be signatures, with their listed artifact types.
pub(crate) async fn signature_entries(
    store: &Store,
    subject: &Digest,
) -> Result<Vec<(String, Option<String>)>> {
    // Entries are not filtered out for a missing `artifactType`: some tools drop it when
    // they copy the index; the referrer manifest itself says what it is.
    Ok(referrers::list(store, subject)
        .await?
        .into_iter()
        .filter(|m| {
            m.artifact_type
                .as_deref()
                .is_none_or(|t| t == BUNDLE_MEDIA_TYPE || t == pgp::ARTIFACT_TYPE)
        })
        .map(|m| (m.digest, m.artifact_type))
        .collect())
}

/// One referrer, read: `None` when it turns out not to be a signature.
pub(crate) async fn fetch_signature(
    store: &Store,
    referrer: &str,
) -> Result<Option<(Found, Vec<u8>)>> {
    let Some(m) = store.manifest(referrer).await? else {
        return Ok(None);
    };
    let image = m.image()?;
    let find = |t: &str| image.layers.iter().find(|l| l.media_type == t);
    let Some(layer) = find(BUNDLE_MEDIA_TYPE).or(find(pgp::SIGNATURE_MEDIA_TYPE)) else {
        return Ok(None);
    };
    let digest: Digest = layer.digest.parse()?;
    let bytes = store
        .fetch_blob_bytes(&digest, Some(layer.size as u64))
        .await?;
    let mut f = Found {
        referrer: referrer.to_string(),
        bundle_digest: layer.digest.clone(),
        bundle_size: layer.size as u64,
        ..Default::default()
    };
    if layer.media_type == BUNDLE_MEDIA_TYPE {
        f.describe(&bytes);
    } else {
        let key = find(pgp::KEY_MEDIA_TYPE);
        f.pgp_key_digest = key.map(|k| k.digest.clone());
        f.pgp_key_size = key.map(|k| k.size as u64);
        f.pgp_fingerprint = image
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANN_PGP_FINGERPRINT).cloned());
        if f.pgp_key_digest.is_none() {
            return Ok(None);
        }
    }
    Ok(Some((f, bytes)))
}
