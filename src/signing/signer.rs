//! Signing a package and attaching the signature beside it, where cosign 3 looks:
//! - keyless (`--sign keyless`, the default inside GitHub Actions): a Sigstore bundle v0.3
//!   over the package manifest's bytes, with a Fulcio certificate for the workflow's OIDC
//!   identity and a Rekor entry (see [`crate::signing::sigstore`]);
//! - key (`--sign key:PATH`): a bundle over the manifest by a P-256 key ([`crate::signing::keys`]);
//! - OpenPGP (`--sign pgp:PATH`): the PoC's detached signature over the archive, with the
//!   public key ([`crate::signing::pgp`]).
//!
//! Each signature is an OCI 1.1 referrer of the package manifest (`subject` = the
//! package), listed, for registries without the referrers API (GHCR, CNCF Distribution
//! 2.8), in the image index under the `sha256-<hex>` tag. Signing never touches the
//! package itself.

use std::collections::BTreeMap;
use std::path::Path;

use oci_client::manifest::OciDescriptor;
use p256::ecdsa::SigningKey;
use sha2::Digest as _;

use crate::error::{Error, Result};
use crate::oci::blocking;
use crate::oci::digest::Digest;
use crate::oci::manifest::{self, Manifest};
use crate::oci::reference::Target;
use crate::oci::referrers;
use crate::oci::store::{Connect, Store};
use crate::signing::found::{ANN_BUNDLE_CONTENT, ANN_PGP_FINGERPRINT, ANN_SIGNED_BLOB};
use crate::signing::keys::{key_bundle_for, load_key};
use crate::signing::mode::{SignMode, SignOptions};
use crate::signing::pgp;
use crate::signing::sigstore::bundle::MEDIA_TYPE as BUNDLE_MEDIA_TYPE;
use crate::signing::sigstore::client::{self, Certified, TokenSource};
use crate::signing::sigstore::trust::Trust;

/// A ready signer: keys are loaded and the identity token source checked before anything
/// is pushed, so a bad key or a missing token stops a publish early.
pub(crate) enum Signer {
    Key(SigningKey),
    Keyless {
        tokens: TokenSource,
        trust: Trust,
        /// The run's certificate, asked for at the first signature.
        certified: Box<tokio::sync::Mutex<Option<Certified>>>,
    },
    Pgp(Box<pgp::PgpSigner>),
}

/// A package's signature, made and not yet published.
pub(crate) enum Signature {
    /// A Sigstore bundle over the package manifest.
    Bundle(Vec<u8>),
    /// An OpenPGP signature over the package archive (`archive` names the blob).
    Pgp {
        signature: String,
        public_key: String,
        fingerprint: String,
        archive: Digest,
    },
}

impl Signer {
    /// The signer the options ask for; `None` for `none`.
    pub(crate) fn new(opts: &SignOptions) -> Result<Option<Signer>> {
        match &opts.mode {
            SignMode::None => Ok(None),
            SignMode::Key(path) => Ok(Some(Signer::Key(load_key(path)?))),
            SignMode::Keyless => {
                if !opts.tokens.is_available() {
                    return Err(Error::Usage(
                        "--sign keyless needs an OIDC identity token: run inside GitHub Actions \
                         with `permissions: id-token: write`, or pass --identity-token (or \
                         SIGSTORE_ID_TOKEN)"
                            .into(),
                    ));
                }
                let trust = match &opts.trust_config {
                    Some(p) => Trust::load(p)?,
                    None => Trust::public_good(),
                };
                if trust.fulcio_url.is_empty() || trust.rekor_url.is_empty() {
                    return Err(Error::Usage(format!(
                        "{}: a trust config for signing needs a signingConfig with caUrls and rekorTlogUrls",
                        opts.trust_config.as_deref().unwrap_or(Path::new("?")).display()
                    )));
                }
                Ok(Some(Signer::Keyless {
                    tokens: opts.tokens.clone(),
                    trust,
                    certified: Box::new(tokio::sync::Mutex::new(None)),
                }))
            }
            SignMode::Pgp(path) => Ok(Some(Signer::Pgp(Box::new(pgp::PgpSigner::load(path)?)))),
        }
    }

    /// A Sigstore bundle v0.3 over the artifact whose SHA-256 is `digest` (Sigstore modes).
    async fn bundle(&self, digest: &[u8; 32]) -> Result<Vec<u8>> {
        match self {
            Signer::Key(key) => Ok(key_bundle_for(key, digest)),
            Signer::Keyless {
                tokens,
                trust,
                certified,
            } => {
                let mut certified = certified.lock().await;
                if !certified.as_ref().is_some_and(Certified::fresh) {
                    *certified = Some(client::certify(tokens, trust).await?);
                }
                let c = certified.as_ref().expect("certified above");
                Ok(client::sign_with(c, digest, trust).await?.to_json())
            }
            Signer::Pgp(_) => unreachable!("OpenPGP signs archives, not digests"),
        }
    }

    /// Signs a local file (`package prepare --sign`): returns the signature's bytes and
    /// the file extension it is written under.
    pub(crate) async fn sign_file(
        &self,
        path: &Path,
        digest: &Digest,
    ) -> Result<(Vec<u8>, &'static str)> {
        match self {
            Signer::Pgp(p) => Ok((blocking(|| p.sign_file(path))?.into_bytes(), "asc")),
            _ => Ok((self.bundle(&digest_bytes(digest)).await?, "sigstore.json")),
        }
    }

    /// Signs a package: its manifest (Sigstore modes) or its archive, read from
    /// `archive_file` when given, else fetched from `store` (OpenPGP).
    pub(crate) async fn sign_package(
        &self,
        subject: &Manifest,
        store: &Store,
        archive_file: Option<&Path>,
    ) -> Result<Signature> {
        let Signer::Pgp(pgp) = self else {
            return Ok(Signature::Bundle(
                self.bundle(&sha2::Sha256::digest(&subject.bytes).into())
                    .await?,
            ));
        };
        let layer = manifest::compose_layer(subject)?.ok_or_else(|| {
            Error::invalid(format!(
                "{} holds no compose package layer to sign",
                subject.digest
            ))
        })?;
        let archive: Digest = layer.digest.parse()?;
        let signature = match archive_file {
            Some(path) => blocking(|| pgp.sign_file(path))?,
            None => {
                let tmp = tempfile::NamedTempFile::new()
                    .map_err(Error::io("create", std::env::temp_dir()))?;
                store.fetch_blob_to_file(&layer, tmp.path()).await?;
                blocking(|| pgp.sign_file(tmp.path()))?
            }
        };
        Ok(Signature::Pgp {
            signature,
            public_key: pgp.public_armored.clone(),
            fingerprint: pgp.fingerprint.clone(),
            archive,
        })
    }

    /// Signs the package `subject` in `store` and attaches the signature; returns the
    /// referrer.
    pub(crate) async fn attach(&self, store: &Store, subject: &Manifest) -> Result<Digest> {
        let signature = self.sign_package(subject, store, None).await?;
        attach_signature(store, subject, &signature).await
    }

    /// [`Signer::attach`], unless this signer's own signature is attached to `subject`
    /// already: for a key, one that verifies with it; for keyless, one that names an
    /// identity (a run's certificate is new each run, so it cannot tell its own; what
    /// counts is that a keyless signature is there, which `verify` then judges). A
    /// referrer that is no readable signature, or another key's, does not count. Returns
    /// the new referrer, or `None`.
    pub(crate) async fn attach_unless_signed(
        &self,
        store: &Store,
        subject: &Manifest,
    ) -> Result<Option<Digest>> {
        use crate::signing::found::{fetch_signature, signature_entries};
        if !matches!(self, Signer::Pgp(_)) {
            for (referrer, _) in signature_entries(store, &subject.digest).await? {
                let Ok(Some((found, content))) = fetch_signature(store, &referrer).await else {
                    continue;
                };
                let ours = match self {
                    Signer::Key(key) => crate::signing::keys::verify_key_bundle(
                        &content,
                        &subject.bytes,
                        key.verifying_key(),
                    )
                    .is_ok(),
                    _ => found.identity.is_some(),
                };
                if ours {
                    return Ok(None);
                }
            }
        }
        self.attach(store, subject).await.map(Some)
    }
}

fn digest_bytes(d: &Digest) -> [u8; 32] {
    hex::decode(d.hex())
        .ok()
        .and_then(|b| b.try_into().ok())
        .expect("a SHA-256 digest")
}

/// Publishes `signature` as a referrer of `subject` and lists it under the referrers tag.
pub(crate) async fn attach_signature(
    store: &Store,
    subject: &Manifest,
    signature: &Signature,
) -> Result<Digest> {
    let mut ann = BTreeMap::new();
    let (artifact_type, layers): (&str, Vec<(&str, &[u8])>) = match signature {
        Signature::Bundle(bundle) => {
            ann.insert(
                ANN_BUNDLE_CONTENT.to_string(),
                "message-signature".to_string(),
            );
            (
                BUNDLE_MEDIA_TYPE,
                vec![(BUNDLE_MEDIA_TYPE, bundle.as_slice())],
            )
        }
        Signature::Pgp {
            signature,
            public_key,
            fingerprint,
            archive,
        } => {
            ann.insert(ANN_PGP_FINGERPRINT.to_string(), fingerprint.clone());
            ann.insert(ANN_SIGNED_BLOB.to_string(), archive.to_string());
            (
                pgp::ARTIFACT_TYPE,
                vec![
                    (pgp::SIGNATURE_MEDIA_TYPE, signature.as_bytes()),
                    (pgp::KEY_MEDIA_TYPE, public_key.as_bytes()),
                ],
            )
        }
    };
    for (_, bytes) in &layers {
        store.push_blob_bytes(bytes).await?;
    }
    store.push_blob_bytes(crate::oci::media::EMPTY_JSON).await?;
    let descriptors = layers
        .iter()
        .map(|(t, bytes)| OciDescriptor {
            media_type: t.to_string(),
            digest: Digest::of(bytes).to_string(),
            size: bytes.len() as i64,
            ..Default::default()
        })
        .collect();
    let referrer = manifest::artifact(artifact_type, descriptors, ann.clone(), Some(subject));
    if store.resolve(referrer.digest.as_str()).await?.is_none() {
        store.put_manifest(&referrer).await?;
    }
    referrers::add(store, subject, &referrer, artifact_type, ann).await?;
    Ok(referrer.digest)
}

/// The store of `reference` and the manifest it names (a tag or digest is required).
pub(crate) async fn open_subject(
    reference: &str,
    connect: &Connect,
    push: bool,
) -> Result<(Store, Target, Manifest)> {
    let target = Target::parse(reference)?;
    let selector = target.selector().ok_or_else(|| {
        Error::Usage(format!(
            "{reference}: name the tag or digest of the package"
        ))
    })?;
    let store = if push {
        Store::open_for_push(&target.repo, connect).await?
    } else {
        Store::open(&target.repo, connect).await?
    };
    let subject = store
        .manifest(&selector)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: format!("{target}"),
            hint: None,
        })?;
    Ok((store, target, subject))
}

/// `package sign REFERENCE`: signs what the reference names, leaving it untouched.
pub async fn sign_reference(
    reference: &str,
    opts: &SignOptions,
    connect: &Connect,
) -> Result<(Digest, Option<Digest>)> {
    // Loading a key can be slow work (scrypt): off the async threads.
    let signer = blocking(|| Signer::new(opts))?;
    let (store, _, subject) = open_subject(reference, connect, true).await?;
    let referrer = match &signer {
        Some(s) => Some(s.attach(&store, &subject).await?),
        None => None,
    };
    Ok((subject.digest, referrer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_an_identity_token() {
        let opts = SignOptions {
            mode: SignMode::Keyless,
            tokens: TokenSource {
                explicit: Some(crate::oci::credentials::Secret::from(
                    "eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
                )),
                actions: Some((
                    "http://127.0.0.1/token".into(),
                    crate::oci::credentials::Secret::from("request-token-xyz"),
                )),
                mask_in_actions: false,
            },
            trust_config: None,
        };
        let debug = format!("{opts:?}");
        assert!(
            !debug.contains("eyJhbGci") && !debug.contains("request-token-xyz"),
            "{debug}"
        );
    }

    #[test]
    fn modes() {
        assert_eq!("none".parse::<SignMode>().unwrap(), SignMode::None);
        assert_eq!(
            "key:k.pem".parse::<SignMode>().unwrap(),
            SignMode::Key("k.pem".into())
        );
        assert_eq!("keyless".parse::<SignMode>().unwrap(), SignMode::Keyless);
        assert!("key:".parse::<SignMode>().is_err());
    }
}
