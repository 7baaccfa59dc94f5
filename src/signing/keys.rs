//! Signing keys kept in files: P-256 keys for key-mode Sigstore bundles (PKCS#8 or SEC1
//! PEM, or a key `cosign generate-key-pair` encrypted), their generation, and the key
//! bundles themselves: a Sigstore bundle v0.3 whose verification material names the key
//! by hint instead of a certificate. Signatures are deterministic (RFC 6979), so signing
//! the same manifest again yields the same bundle. Key files others can read get a warning.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use p256::ecdsa::signature::hazmat::PrehashSigner as _;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use sha2::Digest as _;

use crate::error::{Error, Result};
use crate::signing::refusal::Refusal;
use crate::signing::sigstore::bundle::{Bundle, Material, PublicKeyHint};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

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

/// Warns on stderr when others than the owner may read a private key file.
pub(crate) fn warn_if_readable(path: &Path) {
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
}

/// Reads a private key (PKCS#8 or SEC1 PEM, or a cosign key); warns when others may
/// read the file.
pub(crate) fn load_key(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
    warn_if_readable(path);
    if text.contains("ENCRYPTED SIGSTORE PRIVATE KEY")
        || text.contains("ENCRYPTED COSIGN PRIVATE KEY")
    {
        return decrypt_cosign_key(path, &text);
    }
    if text.contains("ENCRYPTED PRIVATE KEY") {
        return Err(
            Error::invalid_file(path, None, "a PKCS#8-encrypted key is not supported").with_hint(
                "decrypt it with `openssl pkcs8 -in KEY -out PLAIN.key`, or use a cosign key",
            ),
        );
    }
    SigningKey::from_pkcs8_pem(&text)
        .or_else(|_| p256::SecretKey::from_sec1_pem(&text).map(SigningKey::from))
        .map_err(|_| {
            Error::invalid_file(path, None, "not a P-256 private key (PKCS#8 or SEC1 PEM)")
        })
}

/// Decrypts a key `cosign generate-key-pair` wrote: scrypt over `COSIGN_PASSWORD`, then a
/// NaCl secretbox holding the PKCS#8 key.
fn decrypt_cosign_key(path: &Path, pem: &str) -> Result<SigningKey> {
    use crypto_secretbox::aead::{Aead as _, KeyInit as _};

    #[derive(serde::Deserialize)]
    struct Encrypted {
        kdf: Kdf,
        cipher: Cipher,
        ciphertext: String,
    }
    #[derive(serde::Deserialize)]
    struct Kdf {
        name: String,
        params: KdfParams,
        salt: String,
    }
    #[derive(serde::Deserialize)]
    #[allow(non_snake_case)]
    struct KdfParams {
        N: u64,
        r: u32,
        p: u32,
    }
    #[derive(serde::Deserialize)]
    struct Cipher {
        name: String,
        nonce: String,
    }
    let bad = |m: &str| Error::invalid_file(path, None, format!("not a cosign key: {m}"));
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    let json = B64
        .decode(body.trim())
        .map_err(|_| bad("the PEM body is not base64"))?;
    let e: Encrypted = serde_json::from_slice(&json).map_err(|_| bad("unexpected JSON"))?;
    if e.kdf.name != "scrypt" || e.cipher.name != "nacl/secretbox" {
        return Err(bad("only scrypt with nacl/secretbox is known"));
    }
    let password = std::env::var("COSIGN_PASSWORD").map_err(|_| {
        Error::Usage(format!(
            "{} is encrypted: set COSIGN_PASSWORD to its password",
            path.display()
        ))
    })?;
    let n = e.kdf.params.N;
    if !n.is_power_of_two() || n < 2 {
        return Err(bad("the scrypt N is not a power of two"));
    }
    let params = scrypt::Params::new(n.trailing_zeros() as u8, e.kdf.params.r, e.kdf.params.p, 32)
        .map_err(|_| bad("scrypt parameters out of range"))?;
    let salt = B64
        .decode(&e.kdf.salt)
        .map_err(|_| bad("the salt is not base64"))?;
    let mut secret = [0u8; 32];
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut secret)
        .map_err(|_| bad("scrypt failed"))?;
    let nonce = B64
        .decode(&e.cipher.nonce)
        .ok()
        .filter(|n| n.len() == 24)
        .ok_or_else(|| bad("the nonce is not 24 bytes of base64"))?;
    let ciphertext = B64
        .decode(&e.ciphertext)
        .map_err(|_| bad("the ciphertext is not base64"))?;
    let plain = crypto_secretbox::XSalsa20Poly1305::new(&secret.into())
        .decrypt(nonce.as_slice().into(), ciphertext.as_slice())
        .map_err(|_| {
            Error::invalid_file(path, None, "cannot decrypt the key: wrong COSIGN_PASSWORD?")
        })?;
    SigningKey::from_pkcs8_der(&plain)
        .map_err(|_| Error::invalid_file(path, None, "the decrypted key is not a P-256 key"))
}

/// Reads a public key (SPKI PEM).
pub(crate) fn load_public_key(path: &Path) -> Result<VerifyingKey> {
    let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
    VerifyingKey::from_public_key_pem(&text)
        .map_err(|_| Error::invalid_file(path, None, "not a P-256 public key (PEM)"))
}

/// The key's hint: base64 of the SHA-256 of its SubjectPublicKeyInfo, as Sigstore names keys.
pub(crate) fn key_hint(key: &VerifyingKey) -> String {
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
pub(crate) fn key_bundle_for(key: &SigningKey, digest: &[u8; 32]) -> Vec<u8> {
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
pub(crate) fn verify_key_bundle(
    bundle: &[u8],
    artifact: &[u8],
    key: &VerifyingKey,
) -> std::result::Result<(), Refusal> {
    let b = Bundle::parse(bundle)?;
    match &b.verification_material.public_key {
        Some(h) if h.hint == key_hint(key) => {}
        Some(h) => return Err(Refusal::AnotherKey(h.hint.clone())),
        None => return Err(Refusal::KeylessNotKey),
    }
    let m = &b.message_signature;
    if m.message_digest.as_ref().is_some_and(|d| {
        d.algorithm != "SHA2_256" || d.digest != B64.encode(sha2::Sha256::digest(artifact))
    }) {
        return Err(Refusal::AnotherArtifact);
    }
    let raw = B64
        .decode(&m.signature)
        .map_err(|_| Refusal::SignatureNotBase64)?;
    let sig = DerSignature::from_bytes(&raw).map_err(|_| Refusal::NotDerSignature)?;
    key.verify(artifact, &sig).map_err(|_| Refusal::KeyMismatch)
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
            .to_string()
            .contains("another artifact"));
        assert!(verify_key_bundle(&b, b"manifest", other.verifying_key())
            .unwrap_err()
            .to_string()
            .contains("another key"));
        let forged = String::from_utf8(b.clone())
            .unwrap()
            .replace("\"signature\":\"M", "\"signature\":\"N");
        assert!(verify_key_bundle(forged.as_bytes(), b"manifest", key.verifying_key()).is_err());
    }
}
