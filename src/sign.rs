//! Signatures of published packages, stored where cosign 3 looks for them.
//!
//! Every signature is a Sigstore bundle v0.3 over the package manifest's bytes:
//! - keyless (`--sign keyless`, the default inside GitHub Actions): a Fulcio certificate for
//!   the workflow's OIDC identity and a Rekor entry (see [`crate::sigstore`]);
//! - key (`--sign key:PATH`): a P-256 key (ECDSA, SHA-256, deterministic nonces, so signing
//!   again yields the same bundle); the bundle names the key by hint instead of a
//!   certificate.
//!
//! The bundle is an OCI 1.1 referrer of the package manifest (artifactType
//! `application/vnd.dev.sigstore.bundle.v0.3+json`, `subject` = the package), listed, for
//! registries without the referrers API (GHCR, CNCF Distribution 2.8), in the image index
//! under the `sha256-<hex>` tag. Signing never touches the package itself. Verification
//! reads what the registry serves now and checks the bundle over exactly those bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use oci_client::manifest::{OciDescriptor, OciImageIndex, OciImageManifest};
use p256::ecdsa::signature::hazmat::PrehashSigner as _;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use serde::Serialize;
use sha2::Digest as _;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::location::Target;
use crate::media;
use crate::sigstore::bundle::{Bundle, Material, PublicKeyHint};
use crate::sigstore::client::TokenSource;
use crate::sigstore::trust::{Trust, TrustedRoot};
use crate::sigstore::verify::Policy;
use crate::store::{Connect, Manifest, Store};

pub use crate::sigstore::bundle::MEDIA_TYPE as BUNDLE_MEDIA_TYPE;
const ANN_BUNDLE_CONTENT: &str = "dev.sigstore.bundle.content";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

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

/// Writes a new P-256 key pair: `PREFIX.key` (PKCS#8 PEM, mode 0600) and `PREFIX.pub`.
pub fn generate(prefix: &Path) -> Result<(PathBuf, PathBuf)> {
    let key_path = PathBuf::from(format!("{}.key", prefix.display()));
    let pub_path = PathBuf::from(format!("{}.pub", prefix.display()));
    if key_path.exists() {
        return Err(Error::Usage(format!(
            "{} exists; remove it or choose another name",
            key_path.display()
        )));
    }
    if let Some(dir) = key_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    }
    let key = SigningKey::random(&mut rand_core::OsRng);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| Error::invalid(format!("cannot encode the key: {e}")))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&key_path)
        .map_err(Error::io("create", &key_path))?;
    std::io::Write::write_all(&mut f, pem.as_bytes()).map_err(Error::io("write", &key_path))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| Error::invalid(format!("cannot encode the public key: {e}")))?;
    std::fs::write(&pub_path, public).map_err(Error::io("write", &pub_path))?;
    Ok((key_path, pub_path))
}

/// Reads a private key (PKCS#8 or SEC1 PEM); warns when others may read the file.
fn load_key(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                eprintln!(
                    "warning: key file {} can be read by others (mode {mode:o}); run `chmod 600 {}`",
                    path.display(),
                    path.display()
                );
            }
        }
    }
    if text.contains("ENCRYPTED") {
        return Err(Error::invalid_file(
            path,
            None,
            "encrypted keys (cosign's) are not supported yet",
        )
        .with_hint("use `margo-gitops key generate`, or an unencrypted PKCS#8 P-256 key"));
    }
    SigningKey::from_pkcs8_pem(&text)
        .or_else(|_| p256::SecretKey::from_sec1_pem(&text).map(SigningKey::from))
        .map_err(|_| {
            Error::invalid_file(path, None, "not a P-256 private key (PKCS#8 or SEC1 PEM)")
        })
}

/// Reads a public key (SPKI PEM).
pub fn load_public_key(path: &Path) -> Result<VerifyingKey> {
    let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
    VerifyingKey::from_public_key_pem(&text)
        .map_err(|_| Error::invalid_file(path, None, "not a P-256 public key (PEM)"))
}

/// The key's hint: base64 of the SHA-256 of its SubjectPublicKeyInfo, as Sigstore names keys.
pub fn key_hint(key: &VerifyingKey) -> String {
    let der = key
        .to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default();
    B64.encode(sha2::Sha256::digest(der))
}

/// A Sigstore bundle v0.3 of `artifact` signed with `key`.
#[cfg(test)]
fn key_bundle(key: &SigningKey, artifact: &[u8]) -> Vec<u8> {
    key_bundle_for(key, &sha2::Sha256::digest(artifact).into())
}

/// A Sigstore bundle v0.3 of the artifact whose SHA-256 is `digest`, signed with `key`.
fn key_bundle_for(key: &SigningKey, digest: &[u8; 32]) -> Vec<u8> {
    let signature: p256::ecdsa::Signature =
        key.sign_prehash(digest).expect("a 32-byte digest signs");
    let signature = signature.to_der();
    Bundle::of_message(
        Material {
            public_key: Some(PublicKeyHint {
                hint: key_hint(key.verifying_key()),
            }),
            ..Default::default()
        },
        digest,
        signature.as_bytes(),
    )
    .to_json()
}

/// Checks a key bundle against the artifact bytes the store serves; `Err` says why not.
pub fn verify_key_bundle(
    bundle: &[u8],
    artifact: &[u8],
    key: &VerifyingKey,
) -> std::result::Result<(), String> {
    let b = Bundle::parse(bundle)?;
    match &b.verification_material.public_key {
        Some(h) if h.hint == key_hint(key) => {}
        Some(h) => return Err(format!("signed by another key (hint {})", h.hint)),
        None => return Err("a keyless signature, not one by a key".into()),
    }
    let m = &b.message_signature;
    if m.message_digest.as_ref().is_some_and(|d| {
        d.algorithm != "SHA2_256" || d.digest != B64.encode(sha2::Sha256::digest(artifact))
    }) {
        return Err("the signature is of another artifact than the one the registry serves".into());
    }
    let raw = B64
        .decode(&m.signature)
        .map_err(|_| "the signature is not base64".to_string())?;
    let sig = DerSignature::from_bytes(&raw)
        .map_err(|_| "the signature is not a DER ECDSA signature".to_string())?;
    key.verify(artifact, &sig)
        .map_err(|_| "the signature does not match the key".to_string())
}

/// A signature found for a package, as the bundle describes it (not verified).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    pub referrer: String,
    pub bundle_digest: String,
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
}

impl Found {
    fn describe(referrer: String, bundle_digest: String, bundle: &[u8]) -> Found {
        let mut f = Found {
            referrer,
            bundle_digest,
            ..Default::default()
        };
        let Ok(b) = Bundle::parse(bundle) else {
            return f;
        };
        f.key_hint = b
            .verification_material
            .public_key
            .as_ref()
            .map(|k| k.hint.clone());
        if let Some(d) = crate::sigstore::verify::describe(&b) {
            f.identity = Some(d.identity);
            f.issuer = Some(d.issuer);
            f.log_index = (d.log_index >= 0).then_some(d.log_index);
            f.signed_at =
                (d.integrated_time > 0).then(|| crate::publish::rfc3339(d.integrated_time as u64));
        }
        f
    }

    /// Who signed, in words: `key HINT` or `IDENTITY (issuer ISSUER, log index N, TIME)`.
    pub fn signer(&self) -> String {
        match (&self.key_hint, &self.identity) {
            (Some(h), _) => format!("key {h}"),
            (None, Some(id)) => format!(
                "{id} (issuer {}, log index {}, {})",
                self.issuer.as_deref().unwrap_or("?"),
                self.log_index.map_or("?".into(), |i| i.to_string()),
                self.signed_at.as_deref().unwrap_or("?")
            ),
            (None, None) => "an unreadable bundle".into(),
        }
    }
}

/// The bundles listed under the `sha256-<hex>` referrers tag of `subject`.
pub async fn signatures(store: &Store, subject: &Digest) -> Result<Vec<(Found, Vec<u8>)>> {
    let Some(index) = store.manifest(&subject.dashed()).await? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    // Entries are not filtered on their `artifactType`: some tools drop it when they copy
    // the index; the referrer manifest itself says what it is.
    for entry in index.index()?.manifests.iter().filter(|m| {
        m.artifact_type
            .as_deref()
            .is_none_or(|t| t == BUNDLE_MEDIA_TYPE)
    }) {
        let Some(m) = store.manifest(&entry.digest).await? else {
            continue;
        };
        let image = m.image()?;
        let Some(layer) = image
            .layers
            .iter()
            .find(|l| l.media_type == BUNDLE_MEDIA_TYPE)
        else {
            continue;
        };
        let digest: Digest = layer.digest.parse()?;
        let bytes = store
            .fetch_blob_bytes(&digest, Some(layer.size as u64))
            .await?;
        out.push((
            Found::describe(entry.digest.clone(), layer.digest.clone(), &bytes),
            bytes,
        ));
    }
    Ok(out)
}

/// A ready signer: keys are loaded and the identity token source checked before anything
/// is pushed, so a bad key or a missing token stops a publish early.
pub enum Signer {
    Key(SigningKey),
    Keyless { tokens: TokenSource, trust: Trust },
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
            SignMode::Pgp(_) => Err(Error::Usage(
                "--sign pgp:PATH is not available yet; use --sign keyless or key:PATH".into(),
            )),
        }
    }

    /// A Sigstore bundle v0.3 over the artifact whose SHA-256 is `digest`.
    pub async fn bundle(&self, digest: &[u8; 32]) -> Result<Vec<u8>> {
        match self {
            Signer::Key(key) => Ok(key_bundle_for(key, digest)),
            Signer::Keyless { tokens, trust } => {
                Ok(crate::sigstore::client::sign(digest, tokens, trust)
                    .await?
                    .to_json())
            }
        }
    }

    /// Signs the package `subject` in `store` and attaches the bundle; returns the referrer.
    pub async fn attach(&self, store: &Store, subject: &Manifest) -> Result<Digest> {
        let bundle = self
            .bundle(&sha2::Sha256::digest(&subject.bytes).into())
            .await?;
        attach_bundle(store, subject, &bundle).await
    }
}

/// Publishes `bundle` as a referrer of `subject` and lists it under the referrers tag.
pub async fn attach_bundle(store: &Store, subject: &Manifest, bundle: &[u8]) -> Result<Digest> {
    let layer = OciDescriptor {
        media_type: BUNDLE_MEDIA_TYPE.into(),
        digest: Digest::of(bundle).to_string(),
        size: bundle.len() as i64,
        ..Default::default()
    };
    let mut ann = BTreeMap::new();
    ann.insert(
        ANN_BUNDLE_CONTENT.to_string(),
        "message-signature".to_string(),
    );
    let referrer = OciImageManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: Some(BUNDLE_MEDIA_TYPE.into()),
        config: OciDescriptor {
            media_type: media::OCI_EMPTY.into(),
            digest: Digest::of(media::EMPTY_JSON).to_string(),
            size: 2,
            ..Default::default()
        },
        layers: vec![layer],
        subject: Some(subject.descriptor()),
        annotations: Some(ann.clone()),
    };
    let referrer = Manifest::new(
        media::OCI_MANIFEST,
        serde_json::to_vec(&referrer).expect("JSON"),
    );
    store.push_blob_bytes(bundle).await?;
    store.push_blob_bytes(media::EMPTY_JSON).await?;
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
            artifact_type: Some(BUNDLE_MEDIA_TYPE.into()),
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
}

enum Check {
    Key(VerifyingKey),
    Identity { policy: Policy, root: TrustedRoot },
}

impl Check {
    fn new(req: &Requirement) -> Result<Check> {
        Ok(match req {
            Requirement::Key(path) => Check::Key(load_public_key(path)?),
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

    fn run(&self, bundle: &[u8], artifact: &[u8]) -> std::result::Result<(), String> {
        match self {
            Check::Key(key) => verify_key_bundle(bundle, artifact, key),
            Check::Identity { policy, root } => {
                let b = Bundle::parse(bundle)?;
                let digest: [u8; 32] = sha2::Sha256::digest(artifact).into();
                crate::sigstore::verify::verify(&b, &digest, root, policy).map(|_| ())
            }
        }
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
    let found = signatures(&store, &subject.digest).await?;
    if found.is_empty() {
        return Err(Error::invalid(format!(
            "{target} ({}) is not signed",
            subject.digest
        )));
    }
    let mut reasons = Vec::new();
    for (f, bundle) in found {
        match check.run(&bundle, &subject.bytes) {
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
    Err(Error::invalid(format!(
        "{target} has no valid signature: {}",
        reasons.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_verify_and_refuse_tampering() {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let other = SigningKey::random(&mut rand_core::OsRng);
        let b = key_bundle(&key, b"manifest");
        assert_eq!(b, key_bundle(&key, b"manifest"), "deterministic");
        assert!(verify_key_bundle(&b, b"manifest", key.verifying_key()).is_ok());
        assert!(verify_key_bundle(&b, b"manifesT", key.verifying_key())
            .unwrap_err()
            .contains("another artifact"));
        assert!(verify_key_bundle(&b, b"manifest", other.verifying_key())
            .unwrap_err()
            .contains("another key"));
        let forged = String::from_utf8(b.clone())
            .unwrap()
            .replace("\"signature\":\"M", "\"signature\":\"N");
        assert!(verify_key_bundle(forged.as_bytes(), b"manifest", key.verifying_key()).is_err());
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
