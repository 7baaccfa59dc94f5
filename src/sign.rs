//! Signatures of published packages, stored where cosign 3 looks for them.
//!
//! Key mode (`--sign key:PATH`): the package manifest's bytes are signed with a P-256 key
//! (ECDSA, SHA-256, deterministic nonces, so signing again yields the same bundle) into a
//! Sigstore bundle v0.3 whose verification material names the key by hint instead of a
//! certificate. The bundle is an OCI 1.1 referrer of the package manifest (artifactType
//! `application/vnd.dev.sigstore.bundle.v0.3+json`, `subject` = the package), listed, for
//! registries without the referrers API (GHCR, CNCF Distribution 2.8), in the image index
//! under the `sha256-<hex>` tag. Signing never touches the package itself. Keyless
//! (Fulcio, Rekor) and OpenPGP modes are not implemented yet and are refused as such.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use oci_client::manifest::{OciDescriptor, OciImageIndex, OciImageManifest};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
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
use crate::store::{Connect, Manifest, Store};

pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const ANN_BUNDLE_CONTENT: &str = "dev.sigstore.bundle.content";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// How to sign: `none`, or `key:PATH`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignMode {
    None,
    Key(PathBuf),
}

impl FromStr for SignMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(SignMode::None),
            _ if s.starts_with("key:") && s.len() > 4 => Ok(SignMode::Key(PathBuf::from(&s[4..]))),
            "keyless" => Err(Error::Usage(
                "--sign keyless is not available yet; use --sign key:PATH".into(),
            )),
            _ if s.starts_with("pgp:") => Err(Error::Usage(
                "--sign pgp:PATH is not available yet; use --sign key:PATH".into(),
            )),
            _ => Err(Error::Usage(format!(
                "--sign `{s}`: expected none or key:PATH"
            ))),
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

#[derive(Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    media_type: String,
    verification_material: Material,
    message_signature: MessageSignature,
}

#[derive(Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Material {
    public_key: Option<PublicKeyHint>,
    #[serde(default)]
    tlog_entries: Vec<serde_json::Value>,
}

#[derive(Serialize, serde::Deserialize)]
struct PublicKeyHint {
    hint: String,
}

#[derive(Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageSignature {
    message_digest: MessageDigest,
    signature: String,
}

#[derive(Serialize, serde::Deserialize)]
struct MessageDigest {
    algorithm: String,
    digest: String,
}

/// A Sigstore bundle v0.3 of `artifact` signed with `key`.
fn bundle(key: &SigningKey, artifact: &[u8]) -> Vec<u8> {
    let signature: DerSignature = key.sign(artifact);
    let b = Bundle {
        media_type: BUNDLE_MEDIA_TYPE.into(),
        verification_material: Material {
            public_key: Some(PublicKeyHint {
                hint: key_hint(key.verifying_key()),
            }),
            tlog_entries: Vec::new(),
        },
        message_signature: MessageSignature {
            message_digest: MessageDigest {
                algorithm: "SHA2_256".into(),
                digest: B64.encode(sha2::Sha256::digest(artifact)),
            },
            signature: B64.encode(signature.as_bytes()),
        },
    };
    serde_json::to_vec(&b).expect("JSON")
}

/// Checks a key bundle against the artifact bytes the store serves; `Err` says why not.
pub fn verify_bundle(
    bundle: &[u8],
    artifact: &[u8],
    key: &VerifyingKey,
) -> std::result::Result<(), String> {
    let b: Bundle =
        serde_json::from_slice(bundle).map_err(|e| format!("not a Sigstore bundle: {e}"))?;
    if b.media_type != BUNDLE_MEDIA_TYPE {
        return Err(format!(
            "bundle media type {} is not {BUNDLE_MEDIA_TYPE}",
            b.media_type
        ));
    }
    match &b.verification_material.public_key {
        Some(h) if h.hint == key_hint(key) => {}
        Some(h) => return Err(format!("signed by another key (hint {})", h.hint)),
        None => return Err("not a key signature (keyless bundles are not verified yet)".into()),
    }
    let m = &b.message_signature;
    if m.message_digest.algorithm != "SHA2_256"
        || m.message_digest.digest != B64.encode(sha2::Sha256::digest(artifact))
    {
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

/// A signature found for a package.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    pub referrer: String,
    pub bundle_digest: String,
    pub key_hint: Option<String>,
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
        let hint = serde_json::from_slice::<Bundle>(&bytes)
            .ok()
            .and_then(|b| b.verification_material.public_key.map(|k| k.hint));
        out.push((
            Found {
                referrer: entry.digest.clone(),
                bundle_digest: layer.digest.clone(),
                key_hint: hint,
            },
            bytes,
        ));
    }
    Ok(out)
}

/// A loaded signing key: made before anything is pushed, so a bad key stops a publish early.
pub struct Signer {
    key: SigningKey,
}

impl Signer {
    /// The signer `mode` asks for; `None` for `none`.
    pub fn new(mode: &SignMode) -> Result<Option<Signer>> {
        match mode {
            SignMode::None => Ok(None),
            SignMode::Key(path) => Ok(Some(Signer {
                key: load_key(path)?,
            })),
        }
    }

    /// Signs the package `subject` in `store` and attaches the bundle; returns the referrer.
    pub async fn attach(&self, store: &Store, subject: &Manifest) -> Result<Digest> {
        sign_with(&self.key, store, subject).await
    }
}

async fn sign_with(key: &SigningKey, store: &Store, subject: &Manifest) -> Result<Digest> {
    let bundle = bundle(key, &subject.bytes);
    let layer = OciDescriptor {
        media_type: BUNDLE_MEDIA_TYPE.into(),
        digest: Digest::of(&bundle).to_string(),
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
    store.push_blob_bytes(&bundle).await?;
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
    mode: &SignMode,
    connect: &Connect,
) -> Result<(Digest, Option<Digest>)> {
    let signer = Signer::new(mode)?;
    let (store, _, subject) = open_subject(reference, connect, true).await?;
    let referrer = match &signer {
        Some(s) => Some(s.attach(&store, &subject).await?),
        None => None,
    };
    Ok((subject.digest, referrer))
}

/// The outcome of `package verify`.
#[derive(Clone, Debug, Serialize)]
pub struct Verified {
    pub reference: String,
    pub digest: Digest,
    pub signature: Found,
}

/// Verifies that the manifest `reference` serves now carries a valid signature by `key`.
pub async fn verify(reference: &str, key_path: &Path, connect: &Connect) -> Result<Verified> {
    let key = load_public_key(key_path)?;
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
        match verify_bundle(&bundle, &subject.bytes, &key) {
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
        "{target} has no valid signature by {}: {}",
        key_path.display(),
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
        let b = bundle(&key, b"manifest");
        assert_eq!(b, bundle(&key, b"manifest"), "deterministic");
        assert!(verify_bundle(&b, b"manifest", key.verifying_key()).is_ok());
        assert!(verify_bundle(&b, b"manifesT", key.verifying_key())
            .unwrap_err()
            .contains("another artifact"));
        assert!(verify_bundle(&b, b"manifest", other.verifying_key())
            .unwrap_err()
            .contains("another key"));
        let forged = String::from_utf8(b.clone())
            .unwrap()
            .replace("\"signature\":\"M", "\"signature\":\"N");
        assert!(verify_bundle(forged.as_bytes(), b"manifest", key.verifying_key()).is_err());
    }

    #[test]
    fn modes() {
        assert_eq!("none".parse::<SignMode>().unwrap(), SignMode::None);
        assert_eq!(
            "key:k.pem".parse::<SignMode>().unwrap(),
            SignMode::Key("k.pem".into())
        );
        assert!("keyless"
            .parse::<SignMode>()
            .unwrap_err()
            .to_string()
            .contains("not available yet"));
    }
}
