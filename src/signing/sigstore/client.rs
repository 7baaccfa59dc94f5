//! Keyless signing: an OIDC identity token, an ephemeral P-256 key, a Fulcio certificate
//! for it (`POST /api/v2/signingCert`, with proof of possession), the signature, a Rekor
//! entry, and the bundle v0.3 that carries them.
//!
//! The token comes from `--identity-token`/`SIGSTORE_ID_TOKEN`, or inside GitHub Actions
//! from the job's token endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL` with
//! `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, audience `sigstore`). Tokens are [`Secret`]s: they go
//! to Fulcio and nowhere else. The ephemeral key lives in memory for one run (a few
//! minutes at most, see [`Certified`]).

use secrecy::ExposeSecret as _;
use std::time::Duration;

use base64::Engine as _;
use p256::ecdsa::signature::hazmat::PrehashSigner as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde::Deserialize;

use super::bundle::{Bundle, Material, RawBytes};
use super::cert::{certificate_pem, pem_certificate, Cert};
use super::log;
use super::trust::Trust;
use super::verify::{self, Match, Policy};
use crate::error::{Error, Result};
use crate::oci::credentials::Secret;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Where the identity token comes from, read once from the environment or flags.
#[derive(Clone, Debug, Default)]
pub struct TokenSource {
    /// `--identity-token` or `SIGSTORE_ID_TOKEN`.
    pub explicit: Option<Secret>,
    /// `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
    pub actions: Option<(String, Secret)>,
    /// Print `::add-mask::` for a token fetched from the Actions endpoint, so that the
    /// runner hides it from the job's log (`margo-gitops ci` sets it).
    pub mask_in_actions: bool,
}

impl TokenSource {
    /// From the process environment, `explicit` (a flag) first.
    pub fn from_env(explicit: Option<Secret>) -> TokenSource {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        TokenSource {
            explicit: explicit.or_else(|| var("SIGSTORE_ID_TOKEN").map(Secret::from)),
            actions: var("ACTIONS_ID_TOKEN_REQUEST_URL")
                .zip(var("ACTIONS_ID_TOKEN_REQUEST_TOKEN").map(Secret::from)),
            mask_in_actions: false,
        }
    }

    pub(crate) fn is_available(&self) -> bool {
        self.explicit.is_some() || self.actions.is_some()
    }

    /// The identity token, fetched from the Actions endpoint when not given.
    pub(crate) async fn token(&self, http: &reqwest::Client) -> Result<Secret> {
        if let Some(t) = &self.explicit {
            return Ok(t.clone());
        }
        let Some((url, request_token)) = &self.actions else {
            return Err(Error::Usage(
                "keyless signing needs an OIDC identity token: run inside GitHub Actions with \
                 `permissions: id-token: write`, or pass --identity-token / SIGSTORE_ID_TOKEN"
                    .into(),
            ));
        };
        let service = "GitHub Actions token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL)";
        let sep = if url.contains('?') { '&' } else { '?' };
        let resp = http
            .get(format!("{url}{sep}audience=sigstore"))
            .bearer_auth(request_token.expose_secret())
            .send()
            .await
            // The endpoint's URL may carry a token in its query: errors do not show it.
            .map_err(|e| {
                Error::service(service, format!("cannot reach it: {}", e.without_url()))
            })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Error::service(service, format!("refused ({status})"))
                .with_hint("does the job have `permissions: id-token: write`?"));
        }
        #[derive(Deserialize)]
        struct Answer {
            value: String,
        }
        let bytes = resp.bytes().await.unwrap_or_default();
        let a: Answer = serde_json::from_slice(&bytes)
            .map_err(|_| Error::service(service, "the answer holds no token"))?;
        if self.mask_in_actions {
            // The runner's own protocol: it hides the value from the log from now on.
            println!("::add-mask::{}", a.value);
        }
        Ok(Secret::from(a.value))
    }
}

/// The claims of an identity token Fulcio cares about (the token is not verified here:
/// Fulcio verifies it).
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    email: Option<String>,
    exp: Option<i64>,
}

fn claims(token: &Secret) -> Result<Claims> {
    let bad = || Error::Usage("the identity token is not a JWT".into());
    let payload = token.expose_secret().split('.').nth(1).ok_or_else(bad)?;
    let json = B64URL
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad())?;
    serde_json::from_slice(&json).map_err(|_| bad())
}

pub(crate) fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(20))
        .timeout(Duration::from_secs(120))
        .user_agent(concat!("margo-gitops/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::service("HTTP client", e.to_string()))
}

/// An ephemeral key and the Fulcio certificate for it: one per run, however many
/// artifacts it signs (each signature still gets its own Rekor entry).
pub(crate) struct Certified {
    key: SigningKey,
    leaf: Vec<u8>,
    obtained: std::time::Instant,
}

impl std::fmt::Debug for Certified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Certified { key: <redacted>, .. }")
    }
}

/// How long a certificate is used: Fulcio's last 10 minutes, and a signature must be
/// logged while it is valid.
const CERTIFICATE_USE: Duration = Duration::from_secs(8 * 60);

impl Certified {
    /// Still young enough to sign with.
    pub(crate) fn fresh(&self) -> bool {
        self.obtained.elapsed() < CERTIFICATE_USE
    }
}

/// An ephemeral key certified by Fulcio for the token's identity.
pub(crate) async fn certify(tokens: &TokenSource, trust: &Trust) -> Result<Certified> {
    let http = http_client()?;
    let token = tokens.token(&http).await?;
    let claims = claims(&token)?;
    if let Some(exp) = claims.exp {
        if exp < time::OffsetDateTime::now_utc().unix_timestamp() {
            return Err(Error::Usage(
                "the identity token has expired; fetch a new one".into(),
            ));
        }
    }
    // Fulcio's challenge: the e-mail for e-mail identities, else the subject.
    let challenge = claims
        .email
        .clone()
        .or(claims.sub.clone())
        .ok_or_else(|| Error::Usage("the identity token has no `sub` claim".into()))?;

    let key = SigningKey::random(&mut rand_core::OsRng);
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| Error::invalid(format!("cannot encode the ephemeral key: {e}")))?;
    let pop: DerSignature = key.sign(challenge.as_bytes());
    let chain = signing_certificate(
        &http,
        &trust.fulcio_url,
        &token,
        &public_pem,
        pop.as_bytes(),
    )
    .await?;
    drop(token);
    let leaf = chain.first().cloned().ok_or_else(|| {
        Error::service(
            format!("Fulcio {}", trust.fulcio_url),
            "the answer holds no certificate",
        )
    })?;
    Ok(Certified {
        key,
        leaf,
        obtained: std::time::Instant::now(),
    })
}

/// Signs the artifact whose SHA-256 is `digest` with a certified key, logs the signature
/// in Rekor, and checks the bundle with our own verifier when the trust config holds a
/// trusted root.
pub(crate) async fn sign_with(
    certified: &Certified,
    digest: &[u8; 32],
    trust: &Trust,
) -> Result<Bundle> {
    let http = http_client()?;
    let (key, leaf) = (&certified.key, certified.leaf.clone());
    let signature: p256::ecdsa::Signature = key
        .sign_prehash(digest)
        .map_err(|e| Error::invalid(format!("cannot sign: {e}")))?;
    let signature = signature.to_der();
    let body = log::hashedrekord_body(digest, signature.as_bytes(), &certificate_pem(&leaf));
    let entry = log::submit(&http, &trust.rekor_url, body).await?;

    let bundle = Bundle::of_message(
        Material {
            certificate: Some(RawBytes {
                raw_bytes: B64.encode(&leaf),
            }),
            tlog_entries: vec![entry],
            ..Default::default()
        },
        digest,
        signature.as_bytes(),
    );
    if let Some(root) = &trust.root {
        let leaf = Cert::from_der(leaf).map_err(|e| Error::invalid(e.to_string()))?;
        let policy = Policy {
            identity: Match::Exact(leaf.identity().unwrap_or_default()),
            issuer: Match::Exact(leaf.oidc_issuer().unwrap_or_default()),
        };
        verify::verify(&bundle, digest, root, &policy).map_err(|why| {
            Error::invalid(format!(
                "the signature Fulcio and Rekor produced does not verify: {why}"
            ))
            .with_hint("is --trust-config the trust config of the instance that signed?")
        })?;
    }
    Ok(bundle)
}

/// Asks Fulcio for a certificate for `public_pem`; returns the chain as DER, leaf first.
async fn signing_certificate(
    http: &reqwest::Client,
    url: &str,
    token: &Secret,
    public_pem: &str,
    proof: &[u8],
) -> Result<Vec<Vec<u8>>> {
    let service = format!("Fulcio {url}");
    let request = serde_json::json!({
        "credentials": {"oidcIdentityToken": token.expose_secret()},
        "publicKeyRequest": {
            "publicKey": {"algorithm": "ECDSA", "content": public_pem},
            "proofOfPossession": B64.encode(proof),
        }
    });
    let resp = http
        .post(format!("{url}/api/v2/signingCert"))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(request.to_string())
        .send()
        .await
        .map_err(|e| Error::service(&service, format!("cannot reach it: {}", e.without_url())))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        let reason = text.lines().next().unwrap_or("").trim();
        return Err(Error::service(
            &service,
            format!("refused the certificate request ({status}): {reason}"),
        ));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        signed_certificate_embedded_sct: Option<Signed>,
        signed_certificate_detached_sct: Option<Signed>,
    }
    #[derive(Deserialize)]
    struct Signed {
        chain: Chain,
    }
    #[derive(Deserialize)]
    struct Chain {
        certificates: Vec<String>,
    }
    let a: Answer = serde_json::from_str(&text)
        .map_err(|e| Error::service(&service, format!("unexpected answer: {e}")))?;
    if a.signed_certificate_detached_sct.is_some() {
        return Err(Error::service(
            &service,
            "answered with a detached SCT; only certificates with embedded SCTs are supported",
        ));
    }
    let chain = a
        .signed_certificate_embedded_sct
        .map(|s| s.chain.certificates)
        .unwrap_or_default();
    Ok(chain
        .iter()
        .filter_map(|pem| pem_certificate(pem))
        .collect())
}
