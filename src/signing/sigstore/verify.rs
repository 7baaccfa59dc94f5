//! Complete offline verification of a keyless bundle over an artifact.
//!
//! In order: the leaf certificate chains to a certificate authority of the trusted root and
//! allows code signing; its embedded SCT is signed by a trusted CT log; the Rekor entry's
//! signed entry timestamp verifies with a trusted log key and its time falls inside the
//! certificate's validity; the inclusion proof leads to the root a signed checkpoint
//! commits to; the entry records this artifact's digest, this signature and this
//! certificate; the signature verifies with the certificate's key over the artifact; and
//! the certified identity and issuer match the policy. Any failure names its step.

use base64::Engine as _;

use super::bundle::{Bundle, TlogEntry};
use super::cert::{pem_certificate, Cert};
use super::log;
use super::trust::TrustedRoot;
use crate::signing::refusal::Refusal;
use sha2::Digest as _;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// How an identity or issuer must match.
#[derive(Clone, Debug)]
pub enum Match {
    Exact(String),
    /// Anchored: the whole value must match.
    Regex(regex_lite::Regex),
}

impl Match {
    pub fn regex(pattern: &str) -> crate::Result<Match> {
        regex_lite::Regex::new(&format!("^(?:{pattern})$"))
            .map(Match::Regex)
            .map_err(|e| {
                crate::Error::Usage(format!("`{pattern}` is not a regular expression: {e}"))
            })
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Match::Exact(s) => s == value,
            Match::Regex(r) => r.is_match(value),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Match::Exact(s) => format!("`{s}`"),
            Match::Regex(r) => format!("/{}/", &r.as_str()[4..r.as_str().len() - 2]),
        }
    }
}

/// Who must have signed.
#[derive(Clone, Debug)]
pub struct Policy {
    pub identity: Match,
    pub issuer: Match,
}

/// What a verified signature says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Signed {
    pub identity: String,
    pub issuer: String,
    pub log_index: i64,
    pub integrated_time: i64,
}

/// What a keyless bundle claims, unverified (for listings).
pub(crate) fn describe(bundle: &Bundle) -> Option<Signed> {
    let leaf = Cert::from_der(B64.decode(bundle.leaf_certificate()?).ok()?).ok()?;
    let entry = bundle.verification_material.tlog_entries.first();
    Some(Signed {
        identity: leaf.identity().unwrap_or_default(),
        issuer: leaf.oidc_issuer().unwrap_or_default(),
        log_index: entry.map_or(-1, |e| e.log_index.0),
        integrated_time: entry.map_or(0, |e| e.integrated_time.0),
    })
}

/// Verifies `bundle` over the artifact whose SHA-256 is `artifact_digest`, against `root`
/// and `policy`.
pub(crate) fn verify(
    bundle: &Bundle,
    artifact_digest: &[u8; 32],
    root: &TrustedRoot,
    policy: &Policy,
) -> Result<Signed, Refusal> {
    let leaf_b64 = bundle.leaf_certificate().ok_or(Refusal::NoCertificate)?;
    let leaf = Cert::from_der(
        B64.decode(leaf_b64)
            .map_err(|_| Refusal::CertificateNotBase64)?,
    )?;
    // The transparency log first, since its time is the signing time we trust.
    let entry = verify_log_entry(bundle, root)?;
    let time = entry.integrated_time.0;
    verify_certificate(&leaf, root, time)?;

    // The signature and what the log recorded.
    let sig = B64
        .decode(&bundle.message_signature.signature)
        .map_err(|_| Refusal::SignatureNotBase64)?;
    if let Some(d) = &bundle.message_signature.message_digest {
        if d.algorithm != "SHA2_256"
            || B64.decode(&d.digest).ok().as_deref() != Some(&artifact_digest[..])
        {
            return Err(Refusal::AnotherArtifact);
        }
    }
    check_entry_body(entry, artifact_digest, &sig, &leaf.der)?;
    leaf.public_key()?
        .verify_prehash(artifact_digest, &sig)
        .map_err(|_| Refusal::BadArtifactSignature)?;

    // Who signed.
    let identity = leaf.identity().ok_or(Refusal::NoIdentity)?;
    let oidc_issuer = leaf.oidc_issuer().ok_or(Refusal::NoIssuer)?;
    if !policy.identity.matches(&identity) {
        return Err(Refusal::WrongIdentity {
            identity,
            wanted: policy.identity.describe(),
        });
    }
    if !policy.issuer.matches(&oidc_issuer) {
        return Err(Refusal::WrongIssuer {
            issuer: oidc_issuer,
            wanted: policy.issuer.describe(),
        });
    }
    Ok(Signed {
        identity,
        issuer: oidc_issuer,
        log_index: entry.log_index.0,
        integrated_time: time,
    })
}

/// The bundle's log entry, with its SET checked (its time is the signing time), the log
/// key valid at that time, and its inclusion proof and checkpoint checked.
fn verify_log_entry<'b>(bundle: &'b Bundle, root: &TrustedRoot) -> Result<&'b TlogEntry, Refusal> {
    let entry = bundle
        .verification_material
        .tlog_entries
        .first()
        .ok_or(Refusal::NoLogEntry)?;
    let key_id = B64
        .decode(&entry.log_id.key_id)
        .map_err(|_| Refusal::LogIdNotBase64)?;
    let tlog = root.tlog(&key_id).ok_or(Refusal::UnknownLog)?;
    log::verify_set(entry, tlog)?;
    if !tlog.valid.contains(entry.integrated_time.0) {
        return Err(Refusal::LogKeyNotValidThen);
    }
    log::verify_inclusion(entry, tlog)?;
    Ok(entry)
}

/// The certificate at the signing time `time`: its chain, its validity, its SCT, its usage.
fn verify_certificate(leaf: &Cert, root: &TrustedRoot, time: i64) -> Result<(), Refusal> {
    let issuer = verify_chain(leaf, root, time)?;
    let (not_before, not_after) = leaf.validity();
    if time < not_before as i64 || time > not_after as i64 {
        return Err(Refusal::OutsideCertificateValidity);
    }
    verify_sct(leaf, issuer, root)?;
    if !leaf.allows_code_signing() {
        return Err(Refusal::NotForCodeSigning);
    }
    Ok(())
}

/// Finds the authority whose chain issued `leaf` and checks every link; returns the
/// leaf's issuer certificate.
fn verify_chain<'a>(leaf: &Cert, root: &'a TrustedRoot, time: i64) -> Result<&'a Cert, Refusal> {
    let mut reason = Refusal::NoTrustedAuthority;
    for ca in &root.authorities {
        let Some(first) = ca.chain.first() else {
            continue;
        };
        if first.subject_der() != leaf.issuer_der() {
            continue;
        }
        if !ca.valid.contains(time) {
            reason = Refusal::AuthorityNotValidThen;
            continue;
        }
        let linked = std::iter::once(leaf)
            .chain(ca.chain.iter())
            .zip(ca.chain.iter().chain(ca.chain.last()))
            .try_for_each(|(child, parent)| {
                if child.issuer_der() != parent.subject_der() {
                    return Err(Refusal::BrokenChain);
                }
                let (nb, na) = parent.validity();
                if time < nb as i64 || time > na as i64 {
                    return Err(Refusal::CaCertificateNotValidThen);
                }
                child
                    .verify_signed_by(&parent.public_key()?)
                    .map_err(|_| Refusal::BadCertificateSignature)
            });
        match linked {
            Ok(()) => return Ok(first),
            Err(e) => reason = e,
        }
    }
    Err(reason)
}

/// Checks that a trusted CT log signed one of the leaf's embedded SCTs.
fn verify_sct(leaf: &Cert, issuer: &Cert, root: &TrustedRoot) -> Result<(), Refusal> {
    let (scts, tbs) = leaf.embedded_scts()?;
    if scts.is_empty() {
        return Err(Refusal::NoSct);
    }
    let issuer_key_hash = sha2::Sha256::digest(issuer.spki_der());
    for sct in &scts {
        let (Some(log), Some(hash)) = (root.ctlog(&sct.log_id), sct.hash()) else {
            continue;
        };
        let t = (sct.timestamp_ms / 1000) as i64;
        if log.valid.contains(t)
            && log
                .key
                .verify(
                    hash,
                    &sct.signed_data(&issuer_key_hash, &tbs),
                    &sct.signature,
                )
                .is_ok()
        {
            return Ok(());
        }
    }
    Err(Refusal::BadSct)
}

/// The log entry must record this artifact, this signature and this certificate.
fn check_entry_body(
    entry: &TlogEntry,
    artifact_digest: &[u8],
    sig: &[u8],
    leaf_der: &[u8],
) -> Result<(), Refusal> {
    if entry.kind_version.kind != "hashedrekord" {
        return Err(Refusal::NotAHashedRekord(entry.kind_version.kind.clone()));
    }
    let body: serde_json::Value = B64
        .decode(&entry.canonicalized_body)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(Refusal::BodyNotJson)?;
    // What the bundle says the entry is must be what the log's body says it is.
    let body_kind = format!(
        "{} {}",
        body["kind"].as_str().unwrap_or("(no kind)"),
        body["apiVersion"].as_str().unwrap_or("(no apiVersion)")
    );
    let said = format!("{} {}", entry.kind_version.kind, entry.kind_version.version);
    if said != body_kind {
        return Err(Refusal::EntryKindNotItsBody {
            said,
            body: body_kind,
        });
    }
    let spec = &body["spec"];
    let hash = spec["data"]["hash"]["value"].as_str().unwrap_or_default();
    if spec["data"]["hash"]["algorithm"] != "sha256" || hash != hex::encode(artifact_digest) {
        return Err(Refusal::EntryForAnotherArtifact);
    }
    if B64
        .decode(spec["signature"]["content"].as_str().unwrap_or_default())
        .ok()
        .as_deref()
        != Some(sig)
    {
        return Err(Refusal::EntryWithAnotherSignature);
    }
    let pem = spec["signature"]["publicKey"]["content"]
        .as_str()
        .and_then(|c| B64.decode(c).ok())
        .and_then(|p| String::from_utf8(p).ok())
        .unwrap_or_default();
    if pem_certificate(&pem).as_deref() != Some(leaf_der) {
        return Err(Refusal::EntryWithAnotherCertificate);
    }
    Ok(())
}
