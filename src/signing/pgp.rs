//! OpenPGP signatures, as the seed PoC made them, for its consumers.
//!
//! `--sign pgp:PATH` reads an armored OpenPGP secret key (what `gpg --export-secret-keys
//! --armor` writes; a passphrase comes from `MARGO_GITOPS_PGP_PASSPHRASE`) and makes a
//! detached, armored binary signature over the package archive, the blob a desired state's
//! `packageLocation` names, so that `gpg --verify SIG ARCHIVE` checks what a device
//! downloads. The signature (`application/vnd.margo.app.v1+sig`, the PoC's type) and the
//! armored public key (`application/pgp-keys`) are the two layers of one OCI referrer of
//! the package. Archives are read as streams, never whole.

use std::io::Read;
use std::path::Path;

use pgp::composed::{
    ArmorOptions, Deserializable, DetachedSignature, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::{KeyDetails, Password, SigningKey};

use crate::error::{Error, Result};
use crate::signing::refusal::Refusal;

pub(crate) const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.margo.app.v1+sig";
pub(crate) const KEY_MEDIA_TYPE: &str = "application/pgp-keys";
/// The referrer's artifactType.
pub(crate) const ARTIFACT_TYPE: &str = "application/vnd.margo.app.v1+sig";

/// A loaded OpenPGP signing key.
pub(crate) struct PgpSigner {
    key: SignedSecretKey,
    password: Password,
    /// The armored public key, published beside every signature.
    pub public_armored: String,
    pub fingerprint: String,
}

impl PgpSigner {
    pub(crate) fn load(path: &Path) -> Result<PgpSigner> {
        let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
        crate::signing::keys::warn_if_readable(path);
        let (key, _) = SignedSecretKey::from_string(&text).map_err(|_| {
            Error::invalid_file(path, None, "not an armored OpenPGP secret key")
                .with_hint("export one with `gpg --export-secret-keys --armor KEYID`")
        })?;
        let password = std::env::var("MARGO_GITOPS_PGP_PASSPHRASE")
            .map(Password::from)
            .unwrap_or_else(|_| Password::empty());
        let public_armored = key
            .to_public_key()
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| {
                Error::invalid_file(path, None, format!("cannot export the public key: {e}"))
            })?;
        let fingerprint = key.primary_key.fingerprint().to_string().to_uppercase();
        let signer = PgpSigner {
            key,
            password,
            public_armored,
            fingerprint,
        };
        // Sign once now, so a wrong passphrase or a key that cannot sign stops early.
        signer.sign(&b""[..]).map_err(|e| match e {
            Error::Invalid { message, .. } => Error::invalid_file(path, None, message),
            other => other,
        })?;
        Ok(signer)
    }

    /// A detached, armored signature over what `data` yields.
    pub(crate) fn sign(&self, data: impl Read) -> Result<String> {
        // The primary key when it can sign, else the first subkey that can.
        let primary = &self.key.primary_key;
        let key: Box<&dyn SigningKey> = if primary.algorithm().can_sign() {
            Box::new(primary)
        } else {
            let sub = self
                .key
                .secret_subkeys
                .iter()
                .find(|s| s.key.algorithm().can_sign())
                .ok_or_else(|| Error::invalid("the OpenPGP key has no key that can sign"))?;
            Box::new(&sub.key)
        };
        let sig = DetachedSignature::sign_binary_data(
            rand_core::OsRng,
            &key,
            &self.password,
            HashAlgorithm::Sha256,
            data,
        )
        .map_err(|_| {
            Error::invalid(
                "cannot sign with the OpenPGP key: wrong or missing MARGO_GITOPS_PGP_PASSPHRASE?",
            )
        })?;
        sig.to_armored_string(ArmorOptions::default())
            .map_err(|e| Error::invalid(format!("cannot armor the signature: {e}")))
    }

    /// Signs a file, streamed.
    pub(crate) fn sign_file(&self, path: &Path) -> Result<String> {
        let f = std::fs::File::open(path).map_err(Error::io("read", path))?;
        self.sign(std::io::BufReader::new(f))
    }
}

/// Reads an armored public key.
pub(crate) fn load_public_key(path: &Path) -> Result<SignedPublicKey> {
    let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
    parse_public_key(&text).map_err(|m| Error::invalid_file(path, None, m.to_string()))
}

pub(crate) fn parse_public_key(armored: &str) -> std::result::Result<SignedPublicKey, Refusal> {
    SignedPublicKey::from_string(armored)
        .map(|(k, _)| k)
        .map_err(|_| Refusal::NotPgpPublicKey)
}

/// The fingerprint of a public key, upper-case hex.
pub(crate) fn fingerprint(key: &SignedPublicKey) -> String {
    key.primary_key.fingerprint().to_string().to_uppercase()
}

/// Checks an armored detached signature over `data` (streamed) with `key`: the primary
/// key or the subkey the signature names as its issuer.
pub(crate) fn verify(
    signature: &str,
    key: &SignedPublicKey,
    data: impl Read,
) -> std::result::Result<(), Refusal> {
    let (sig, _) =
        DetachedSignature::from_string(signature).map_err(|_| Refusal::NotPgpSignature)?;
    let sig = sig.signature;
    let fingerprints: Vec<String> = sig
        .issuer_fingerprint()
        .iter()
        .map(|f| f.to_string())
        .collect();
    let key_ids: Vec<String> = sig.issuer_key_id().iter().map(|k| k.to_string()).collect();
    let names = |fp: String, id: String| fingerprints.contains(&fp) || key_ids.contains(&id);
    let by = fingerprints
        .first()
        .or(key_ids.first())
        .map(|f| f.to_uppercase())
        .unwrap_or_else(|| "an unnamed key".into());
    let outcome = if names(
        key.primary_key.fingerprint().to_string(),
        key.primary_key.legacy_key_id().to_string(),
    ) {
        sig.verify(&key.primary_key, data)
    } else if let Some(sub) = key.public_subkeys.iter().find(|s| {
        names(
            s.key.fingerprint().to_string(),
            s.key.legacy_key_id().to_string(),
        )
    }) {
        sig.verify(&sub.key, data)
    } else {
        return Err(Refusal::AnotherPgpKey {
            by,
            key: fingerprint(key),
        });
    };
    outcome.map_err(|_| Refusal::PgpMismatch)
}
