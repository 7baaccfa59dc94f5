//! `package verify`: does the package a reference names carry a valid signature that
//! meets a requirement (a key, an OpenPGP key, or a keyless identity and its issuer)?
//! Verification reads what the store serves now and checks the signature over exactly
//! those bytes.

use std::path::PathBuf;

use p256::ecdsa::VerifyingKey;
use serde::Serialize;
use sha2::Digest as _;

use crate::error::{Error, Result};
use crate::oci::blocking;
use crate::oci::digest::Digest;
use crate::oci::manifest::{self, Manifest};
use crate::oci::store::{Connect, Store};
use crate::signing::found::{fetch_signature, signature_entries, Found};
use crate::signing::keys::{load_public_key, verify_key_bundle};
use crate::signing::refusal::Refusal;
use crate::signing::signer::open_subject;
use crate::signing::sigstore::bundle::Bundle;
use crate::signing::sigstore::trust::{Trust, TrustedRoot};
use crate::signing::sigstore::verify::{Match, Policy};

/// What a signature must satisfy.
#[derive(Clone)]
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

/// A requirement as the command line or a device's `policy.yaml` spells it: a key, an
/// OpenPGP key, or a keyless identity and issuer (each exact or an anchored regex) with the
/// trust config to check them against.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequirementSpec {
    pub key: Option<PathBuf>,
    pub pgp_key: Option<PathBuf>,
    pub certificate_identity: Option<String>,
    pub certificate_identity_regexp: Option<String>,
    pub certificate_oidc_issuer: Option<String>,
    pub certificate_oidc_issuer_regexp: Option<String>,
    pub trust_config: Option<PathBuf>,
}

impl RequirementSpec {
    /// True when it names nothing at all.
    pub fn is_empty(&self) -> bool {
        self.key.is_none()
            && self.pgp_key.is_none()
            && self.certificate_identity.is_none()
            && self.certificate_identity_regexp.is_none()
            && self.certificate_oidc_issuer.is_none()
            && self.certificate_oidc_issuer_regexp.is_none()
    }

    /// Relative paths taken from `dir` (a policy file's folder).
    pub fn relative_to(mut self, dir: &std::path::Path) -> Self {
        for p in [&mut self.key, &mut self.pgp_key, &mut self.trust_config]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        self
    }

    pub fn requirement(&self) -> Result<Requirement> {
        if let Some(key) = &self.key {
            return Ok(Requirement::Key(key.clone()));
        }
        if let Some(key) = &self.pgp_key {
            return Ok(Requirement::Pgp(key.clone()));
        }
        let pick = |exact: &Option<String>, regex: &Option<String>| -> Result<Option<Match>> {
            match (exact, regex) {
                (Some(e), _) => Ok(Some(Match::Exact(e.clone()))),
                (None, Some(r)) => Match::regex(r).map(Some),
                (None, None) => Ok(None),
            }
        };
        let identity = pick(
            &self.certificate_identity,
            &self.certificate_identity_regexp,
        )?;
        let issuer = pick(
            &self.certificate_oidc_issuer,
            &self.certificate_oidc_issuer_regexp,
        )?;
        match (identity, issuer) {
            (Some(identity), Some(issuer)) => Ok(Requirement::Identity {
                policy: Policy { identity, issuer },
                trust_config: self.trust_config.clone(),
            }),
            (Some(_), None) => Err(Error::Usage(
                "name the OIDC issuer too: --certificate-oidc-issuer URL (or --certificate-oidc-issuer-regexp)".into(),
            )),
            _ => Err(Error::Usage(
                "name who must have signed: --certificate-identity ID --certificate-oidc-issuer URL \
                 (keyless), --key PUB, or --pgp-key PUB"
                    .into(),
            )),
        }
    }
}

impl Requirement {
    /// Loads what checking needs (the key, the trusted root) once, so that a missing or
    /// broken file is reported as such before any signature is looked at.
    pub fn preflight(&self) -> Result<()> {
        Check::new(self).map(|_| ())
    }

    /// Who must have signed, in words (for a refusal).
    pub fn describe(&self) -> String {
        match self {
            Requirement::Key(path) => format!("the key {}", path.display()),
            Requirement::Pgp(path) => format!("the OpenPGP key {}", path.display()),
            Requirement::Identity { policy, .. } => format!(
                "{} (issuer {})",
                policy.identity.describe(),
                policy.issuer.describe()
            ),
        }
    }
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

    /// Checks one signature of `subject`; the archive is fetched (once) for OpenPGP. A
    /// keyless signature gives its time, the transparency log's (which the log signed).
    async fn run(
        &self,
        found: &Found,
        content: &[u8],
        subject: &Manifest,
        store: &Store,
        archive: &mut Option<tempfile::NamedTempFile>,
    ) -> Result<std::result::Result<Option<i64>, Refusal>> {
        Ok(match self {
            Check::Key(_) | Check::Identity { .. } if found.is_pgp() => Err(Refusal::PgpNotBundle),
            Check::Pgp(_) if !found.is_pgp() => Err(Refusal::BundleNotPgp),
            Check::Key(key) => verify_key_bundle(content, &subject.bytes, key).map(|()| None),
            Check::Identity { policy, root } => Bundle::parse(content).and_then(|b| {
                let digest: [u8; 32] = sha2::Sha256::digest(&subject.bytes).into();
                crate::signing::sigstore::verify::verify(&b, &digest, root, policy)
                    .map(|signed| Some(signed.integrated_time))
            }),
            Check::Pgp(key) => {
                if archive.is_none() {
                    let tmp = tempfile::NamedTempFile::new()
                        .map_err(Error::io("create", std::env::temp_dir()))?;
                    store
                        .fetch_blob_to_file(
                            &manifest::compose_layer(subject)?.ok_or_else(|| {
                                Error::invalid(format!(
                                    "{} holds no compose package layer to sign",
                                    subject.digest
                                ))
                            })?,
                            tmp.path(),
                        )
                        .await?;
                    *archive = Some(tmp);
                }
                let path = archive.as_ref().expect("fetched").path();
                let file = std::fs::File::open(path).map_err(Error::io("read", path))?;
                let text = String::from_utf8_lossy(content);
                blocking(|| crate::signing::pgp::verify(&text, key, std::io::BufReader::new(file)))
                    .map(|()| None)
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
    verify_subject(reference, req, connect)
        .await
        .map(|(verified, _, _)| verified)
}

/// [`verify`], also handing back the store and the manifest whose bytes were verified, for
/// a caller that goes on to read the package (a device): nothing is asked twice, and what
/// it reads is what was verified.
pub(crate) async fn verify_subject(
    reference: &str,
    req: &Requirement,
    connect: &Connect,
) -> Result<(Verified, Store, Manifest)> {
    let check = Check::new(req)?;
    let (store, target, subject) = open_subject(reference, connect, false).await?;
    let (signature, _) =
        check_signatures(&check, &store, &target.to_string(), &subject, false).await?;
    let verified = Verified {
        reference: target.to_string(),
        digest: subject.digest.clone(),
        signature,
    };
    Ok((verified, store, subject))
}

/// Verifies `subject`, a manifest already read from `store` (`what` names it in errors),
/// against `req`: a signature that meets it, with its time when it has a trusted one
/// (keyless). With `newest`, every signature is checked and the one with the latest
/// trusted time is returned; else the first that meets it, newest listed first.
pub(crate) async fn verify_manifest(
    store: &Store,
    what: &str,
    subject: &Manifest,
    req: &Requirement,
    newest: bool,
) -> Result<(Found, Option<i64>)> {
    let check = Check::new(req)?;
    check_signatures(&check, store, what, subject, newest).await
}

async fn check_signatures(
    check: &Check,
    store: &Store,
    what: &str,
    subject: &Manifest,
    newest: bool,
) -> Result<(Found, Option<i64>)> {
    let entries = signature_entries(store, &subject.digest).await?;
    // Newest first (signatures are appended), each read only when the ones after it fail.
    let mut reasons = Vec::new();
    let mut archive = None;
    let mut best: Option<(Found, Option<i64>)> = None;
    for (referrer, _) in entries.iter().rev() {
        // A referrer that cannot be read as a signature (missing, malformed, bytes that
        // are not what it says) is one reason among others, not the end of the check.
        let (f, content) = match fetch_signature(store, referrer).await {
            Ok(Some(found)) => found,
            Ok(None) => continue,
            Err(
                e @ (Error::Invalid { .. } | Error::NotFound { .. } | Error::DigestMismatch { .. }),
            ) => {
                reasons.push(format!("{}: {e}", referrer.get(..19).unwrap_or(referrer)));
                continue;
            }
            Err(e) => return Err(e),
        };
        match check
            .run(&f, &content, subject, store, &mut archive)
            .await?
        {
            Ok(time) if !newest => return Ok((f, time)),
            Ok(time) => {
                if best.as_ref().is_none_or(|(_, t)| time > *t) {
                    best = Some((f, time));
                }
            }
            Err(why) => reasons.push(format!(
                "{}: {why}",
                f.referrer.get(..19).unwrap_or(&f.referrer)
            )),
        }
    }
    if let Some(best) = best {
        return Ok(best);
    }
    if reasons.is_empty() {
        return Err(Error::invalid(format!(
            "{what} ({}) is not signed",
            subject.digest
        )));
    }
    Err(Error::invalid(format!(
        "{what} has no valid signature: {}",
        reasons.join("; ")
    )))
}
