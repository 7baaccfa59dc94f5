//! Signatures of published packages, stored where cosign 3 looks for them: which mode
//! signs, how a signature is attached, how signatures are found and verified.
//!
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
//! package itself. Verification reads what the registry serves now and checks the
//! signature over exactly those bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_client::manifest::{OciDescriptor, OciImageIndex, OciImageManifest};
use p256::ecdsa::{SigningKey, VerifyingKey};
use serde::Serialize;
use sha2::Digest as _;

use crate::error::{Error, Result};
use crate::oci::digest::Digest;
use crate::oci::media;
use crate::oci::reference::Target;
use crate::oci::store::{Connect, Manifest, Store};
use crate::signing::keys::{key_bundle_for, load_key, load_public_key, verify_key_bundle};
use crate::signing::sigstore::bundle::Bundle;
use crate::signing::sigstore::client::TokenSource;
use crate::signing::sigstore::trust::{Trust, TrustedRoot};
use crate::signing::sigstore::verify::Policy;

pub use crate::signing::sigstore::bundle::MEDIA_TYPE as BUNDLE_MEDIA_TYPE;
const ANN_BUNDLE_CONTENT: &str = "dev.sigstore.bundle.content";

/// How to sign: `none`, `keyless`, `key:PATH` or `pgp:PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignMode {
    None,
    Keyless,
    Key(PathBuf),
    Pgp(PathBuf),
}

impl FromStr for SignMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(SignMode::None),
            "keyless" => Ok(SignMode::Keyless),
            _ if s.starts_with("key:") && s.len() > 4 => Ok(SignMode::Key(PathBuf::from(&s[4..]))),
            _ if s.starts_with("pgp:") && s.len() > 4 => Ok(SignMode::Pgp(PathBuf::from(&s[4..]))),
            _ => Err(Error::Usage(format!(
                "--sign `{s}`: expected keyless, key:PATH, pgp:PATH or none"
            ))),
        }
    }
}

impl SignMode {
    /// The default: keyless inside GitHub Actions (`GITHUB_ACTIONS=true`), none elsewhere.
    pub fn default_for(github_actions: bool) -> SignMode {
        if github_actions {
            SignMode::Keyless
        } else {
            SignMode::None
        }
    }
}

/// Everything signing needs besides the artifact.
#[derive(Clone, Debug)]
pub struct SignOptions {
    pub mode: SignMode,
    /// Where a keyless signature's identity token comes from.
    pub tokens: TokenSource,
    /// The Sigstore client trust config; Sigstore's public-good instance when `None`.
    pub trust_config: Option<PathBuf>,
}

impl SignOptions {
    pub fn none() -> SignOptions {
        SignOptions {
            mode: SignMode::None,
            tokens: TokenSource::default(),
            trust_config: None,
        }
    }
}

impl From<SignMode> for SignOptions {
    fn from(mode: SignMode) -> SignOptions {
        SignOptions {
            mode,
            ..SignOptions::none()
        }
    }
}

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
            self.signed_at = (d.integrated_time > 0)
                .then(|| crate::package::publish::rfc3339(d.integrated_time as u64));
        }
    }

    /// Whether this is an OpenPGP signature (over the archive) rather than a bundle.
    pub fn is_pgp(&self) -> bool {
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

/// The signatures listed under the `sha256-<hex>` referrers tag of `subject`, with their
/// content: the bundle, or the armored OpenPGP signature.
pub async fn signatures(store: &Store, subject: &Digest) -> Result<Vec<(Found, Vec<u8>)>> {
    let mut out = Vec::new();
    for (referrer, _) in signature_entries(store, subject).await? {
        if let Some(found) = fetch_signature(store, &referrer).await? {
            out.push(found);
        }
    }
    Ok(out)
}

/// The one signature templates show: the OpenPGP one when there is one (the PoC form's
/// `keyLocation` needs its key), else the first; only that one is read.
pub async fn template_signature(store: &Store, subject: &Digest) -> Result<Option<Found>> {
    let mut entries = signature_entries(store, subject).await?;
    // Stable: OpenPGP entries first, the listing order kept otherwise.
    entries.sort_by_key(|(_, t)| t.as_deref() != Some(crate::signing::pgp::ARTIFACT_TYPE));
    for (referrer, _) in entries {
        if let Some((found, _)) = fetch_signature(store, &referrer).await? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The referrers under the referrers tag that may be signatures, with their listed
/// artifact types.
async fn signature_entries(
    store: &Store,
    subject: &Digest,
) -> Result<Vec<(String, Option<String>)>> {
    let Some(index) = store.manifest(&subject.dashed()).await? else {
        return Ok(Vec::new());
    };
    // Entries are not filtered out for a missing `artifactType`: some tools drop it when
    // they copy the index; the referrer manifest itself says what it is.
    Ok(index
        .index()?
        .manifests
        .into_iter()
        .filter(|m| {
            m.artifact_type
                .as_deref()
                .is_none_or(|t| t == BUNDLE_MEDIA_TYPE || t == crate::signing::pgp::ARTIFACT_TYPE)
        })
        .map(|m| (m.digest, m.artifact_type))
        .collect())
}

/// One referrer, read: `None` when it turns out not to be a signature.
async fn fetch_signature(store: &Store, referrer: &str) -> Result<Option<(Found, Vec<u8>)>> {
    let Some(m) = store.manifest(referrer).await? else {
        return Ok(None);
    };
    let image = m.image()?;
    let find = |t: &str| image.layers.iter().find(|l| l.media_type == t);
    let Some(layer) = find(BUNDLE_MEDIA_TYPE).or(find(crate::signing::pgp::SIGNATURE_MEDIA_TYPE))
    else {
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
        let key = find(crate::signing::pgp::KEY_MEDIA_TYPE);
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

const ANN_PGP_FINGERPRINT: &str = "org.margo.signature.pgp.fingerprint";
const ANN_SIGNED_BLOB: &str = "org.margo.signature.signed-blob";

/// A ready signer: keys are loaded and the identity token source checked before anything
/// is pushed, so a bad key or a missing token stops a publish early.
pub enum Signer {
    Key(SigningKey),
    Keyless { tokens: TokenSource, trust: Trust },
    Pgp(Box<crate::signing::pgp::PgpSigner>),
}

/// A package's signature, made and not yet published.
pub enum Signature {
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
    pub fn new(opts: &SignOptions) -> Result<Option<Signer>> {
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
                }))
            }
            SignMode::Pgp(path) => Ok(Some(Signer::Pgp(Box::new(
                crate::signing::pgp::PgpSigner::load(path)?,
            )))),
        }
    }

    /// A Sigstore bundle v0.3 over the artifact whose SHA-256 is `digest` (Sigstore modes).
    async fn bundle(&self, digest: &[u8; 32]) -> Result<Vec<u8>> {
        match self {
            Signer::Key(key) => Ok(key_bundle_for(key, digest)),
            Signer::Keyless { tokens, trust } => Ok(crate::signing::sigstore::client::sign(
                digest, tokens, trust,
            )
            .await?
            .to_json()),
            Signer::Pgp(_) => unreachable!("OpenPGP signs archives, not digests"),
        }
    }

    /// Signs a local file (`package prepare --sign`): returns the signature's bytes and
    /// the file extension it is written under.
    pub async fn sign_file(&self, path: &Path, digest: &Digest) -> Result<(Vec<u8>, &'static str)> {
        match self {
            Signer::Pgp(p) => Ok((p.sign_file(path)?.into_bytes(), "asc")),
            _ => Ok((self.bundle(&digest_bytes(digest)).await?, "sigstore.json")),
        }
    }

    /// Signs a package: its manifest (Sigstore modes) or its archive, read from
    /// `archive_file` when given, else fetched from `store` (OpenPGP).
    pub async fn sign_package(
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
        let layer = archive_layer(subject)?;
        let archive: Digest = layer.digest.parse()?;
        let signature = match archive_file {
            Some(path) => pgp.sign_file(path)?,
            None => {
                let tmp = tempfile::NamedTempFile::new()
                    .map_err(Error::io("create", std::env::temp_dir()))?;
                store.fetch_blob_to_file(&layer, tmp.path()).await?;
                pgp.sign_file(tmp.path())?
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
    pub async fn attach(&self, store: &Store, subject: &Manifest) -> Result<Digest> {
        let signature = self.sign_package(subject, store, None).await?;
        attach_signature(store, subject, &signature).await
    }
}

fn digest_bytes(d: &Digest) -> [u8; 32] {
    hex::decode(d.hex())
        .ok()
        .and_then(|b| b.try_into().ok())
        .expect("a SHA-256 digest")
}

/// The compose archive layer of a package manifest.
fn archive_layer(subject: &Manifest) -> Result<OciDescriptor> {
    subject
        .image()?
        .layers
        .into_iter()
        .find(|l| {
            l.media_type == media::MARGO_COMPOSE_LAYER || l.media_type == media::POC_APP_LAYER
        })
        .ok_or_else(|| {
            Error::invalid(format!(
                "{} holds no compose package layer to sign",
                subject.digest
            ))
        })
}

/// Publishes `signature` as a referrer of `subject` and lists it under the referrers tag.
pub async fn attach_signature(
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
                crate::signing::pgp::ARTIFACT_TYPE,
                vec![
                    (
                        crate::signing::pgp::SIGNATURE_MEDIA_TYPE,
                        signature.as_bytes(),
                    ),
                    (crate::signing::pgp::KEY_MEDIA_TYPE, public_key.as_bytes()),
                ],
            )
        }
    };
    for (_, bytes) in &layers {
        store.push_blob_bytes(bytes).await?;
    }
    store.push_blob_bytes(media::EMPTY_JSON).await?;
    let referrer = OciImageManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: Some(artifact_type.into()),
        config: OciDescriptor {
            media_type: media::OCI_EMPTY.into(),
            digest: Digest::of(media::EMPTY_JSON).to_string(),
            size: 2,
            ..Default::default()
        },
        layers: layers
            .iter()
            .map(|(t, bytes)| OciDescriptor {
                media_type: t.to_string(),
                digest: Digest::of(bytes).to_string(),
                size: bytes.len() as i64,
                ..Default::default()
            })
            .collect(),
        subject: Some(subject.descriptor()),
        annotations: Some(ann.clone()),
    };
    let referrer = Manifest::new(
        media::OCI_MANIFEST,
        serde_json::to_vec(&referrer).expect("JSON"),
    );
    if store.resolve(referrer.digest.as_str()).await?.is_none() {
        store.put_manifest(&referrer).await?;
    }

    // The referrers tag: an index of every referrer of the subject, ours added once.
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
    if !index
        .manifests
        .iter()
        .any(|m| m.digest == referrer.digest.as_str())
    {
        index.manifests.push(oci_client::manifest::ImageIndexEntry {
            media_type: media::OCI_MANIFEST.into(),
            digest: referrer.digest.to_string(),
            size: referrer.bytes.len() as i64,
            platform: None,
            annotations: Some(ann),
            artifact_type: Some(artifact_type.into()),
        });
        let index = Manifest::new(media::OCI_INDEX, serde_json::to_vec(&index).expect("JSON"));
        store.put_manifest(&index).await?;
        store.set_tag(&index, &tag).await?;
    }
    Ok(referrer.digest)
}

/// The store of `reference` and the manifest it names (a tag or digest is required).
async fn open_subject(
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
    let signer = Signer::new(opts)?;
    let (store, _, subject) = open_subject(reference, connect, true).await?;
    let referrer = match &signer {
        Some(s) => Some(s.attach(&store, &subject).await?),
        None => None,
    };
    Ok((subject.digest, referrer))
}

/// What a signature must satisfy.
pub enum Requirement {
    /// Signed by this key (`--key`).
    Key(PathBuf),
    /// Signed keylessly by this identity, checked against this trusted root.
    Identity {
        policy: Policy,
        trust_config: Option<PathBuf>,
    },
    /// An OpenPGP signature of the archive by this key (`--pgp-key`).
    Pgp(PathBuf),
}

enum Check {
    Key(VerifyingKey),
    Identity { policy: Policy, root: TrustedRoot },
    Pgp(Box<::pgp::composed::SignedPublicKey>),
}

impl Check {
    fn new(req: &Requirement) -> Result<Check> {
        Ok(match req {
            Requirement::Key(path) => Check::Key(load_public_key(path)?),
            Requirement::Pgp(path) => {
                Check::Pgp(Box::new(crate::signing::pgp::load_public_key(path)?))
            }
            Requirement::Identity {
                policy,
                trust_config,
            } => {
                let path = trust_config.as_deref().ok_or_else(|| {
                    Error::Usage(
                        "verifying a keyless signature needs the trusted root: pass --trust-config \
                         FILE (a Sigstore client trust config or trusted_root.json; Sigstore's \
                         public-good root is not built in)"
                            .into(),
                    )
                })?;
                let root = Trust::load(path)?
                    .root
                    .expect("a loaded trust config has a root");
                Check::Identity {
                    policy: policy.clone(),
                    root,
                }
            }
        })
    }

    /// Checks one signature of `subject`; the archive is fetched (once) for OpenPGP.
    async fn run(
        &self,
        found: &Found,
        content: &[u8],
        subject: &Manifest,
        store: &Store,
        archive: &mut Option<tempfile::NamedTempFile>,
    ) -> Result<std::result::Result<(), String>> {
        Ok(match self {
            Check::Key(_) | Check::Identity { .. } if found.is_pgp() => {
                Err("an OpenPGP signature (verify it with --pgp-key)".into())
            }
            Check::Pgp(_) if !found.is_pgp() => {
                Err("a Sigstore bundle, not an OpenPGP signature".into())
            }
            Check::Key(key) => verify_key_bundle(content, &subject.bytes, key),
            Check::Identity { policy, root } => Bundle::parse(content).and_then(|b| {
                let digest: [u8; 32] = sha2::Sha256::digest(&subject.bytes).into();
                crate::signing::sigstore::verify::verify(&b, &digest, root, policy).map(|_| ())
            }),
            Check::Pgp(key) => {
                if archive.is_none() {
                    let tmp = tempfile::NamedTempFile::new()
                        .map_err(Error::io("create", std::env::temp_dir()))?;
                    store
                        .fetch_blob_to_file(&archive_layer(subject)?, tmp.path())
                        .await?;
                    *archive = Some(tmp);
                }
                let path = archive.as_ref().expect("fetched").path();
                let file = std::fs::File::open(path).map_err(Error::io("read", path))?;
                let text = String::from_utf8_lossy(content);
                crate::signing::pgp::verify(&text, key, std::io::BufReader::new(file))
            }
        })
    }
}

/// The outcome of `package verify`.
#[derive(Clone, Debug, Serialize)]
pub struct Verified {
    pub reference: String,
    pub digest: Digest,
    pub signature: Found,
}

/// Verifies that the manifest `reference` serves now carries a valid signature meeting
/// `req`; `Err` with each signature's reason when none does.
pub async fn verify(reference: &str, req: &Requirement, connect: &Connect) -> Result<Verified> {
    let check = Check::new(req)?;
    let (store, target, subject) = open_subject(reference, connect, false).await?;
    let entries = signature_entries(&store, &subject.digest).await?;
    // Newest first (signatures are appended), each read only when the ones after it fail.
    let mut reasons = Vec::new();
    let mut archive = None;
    for (referrer, _) in entries.iter().rev() {
        let Some((f, content)) = fetch_signature(&store, referrer).await? else {
            continue;
        };
        match check
            .run(&f, &content, &subject, &store, &mut archive)
            .await?
        {
            Ok(()) => {
                return Ok(Verified {
                    reference: target.to_string(),
                    digest: subject.digest,
                    signature: f,
                })
            }
            Err(why) => reasons.push(format!(
                "{}: {why}",
                &f.referrer[..19.min(f.referrer.len())]
            )),
        }
    }
    if reasons.is_empty() {
        return Err(Error::invalid(format!(
            "{target} ({}) is not signed",
            subject.digest
        )));
    }
    Err(Error::invalid(format!(
        "{target} has no valid signature: {}",
        reasons.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_an_identity_token() {
        let opts = SignOptions {
            mode: SignMode::Keyless,
            tokens: TokenSource {
                explicit: Some(crate::oci::credentials::Secret::new(
                    "eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
                )),
                actions: Some((
                    "http://127.0.0.1/token".into(),
                    crate::oci::credentials::Secret::new("request-token-xyz"),
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
