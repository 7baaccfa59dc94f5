//! Which Sigstore instance to use and what to trust: the client trust config
//! (`application/vnd.dev.sigstore.clienttrustconfig.v0.1+json`, the file sigstore-python's
//! `--trust-config` reads), or a bare trusted root.
//!
//! The trusted root holds the Fulcio certificate chains, the Rekor keys and the CT log keys,
//! each with the time window it is valid for; the signing config says where Fulcio and
//! Rekor answer. Without a file, signing goes to Sigstore's public-good instance.

use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;
use sha2::Digest as _;

use super::cert::{Cert, PublicKey};
use crate::error::{Error, Result};

pub(crate) const PUBLIC_FULCIO: &str = "https://fulcio.sigstore.dev";
pub(crate) const PUBLIC_REKOR: &str = "https://rekor.sigstore.dev";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Services and trust material of one Sigstore instance.
pub(crate) struct Trust {
    pub fulcio_url: String,
    pub rekor_url: String,
    /// `None` when no trust config was given (public good, nothing to verify against).
    pub root: Option<TrustedRoot>,
}

/// A log's key and its validity window.
pub(crate) struct LogKey {
    pub key_id: Vec<u8>,
    pub key: PublicKey,
    pub valid: Window,
}

/// A certificate authority: its chain, issuer first, root last.
pub(crate) struct Authority {
    pub chain: Vec<Cert>,
    pub valid: Window,
}

/// Unix seconds; open ends are `None`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Window {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl Window {
    pub(crate) fn contains(&self, t: i64) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t <= e)
    }
}

pub(crate) struct TrustedRoot {
    pub tlogs: Vec<LogKey>,
    pub ctlogs: Vec<LogKey>,
    pub authorities: Vec<Authority>,
}

impl TrustedRoot {
    pub(crate) fn tlog(&self, key_id: &[u8]) -> Option<&LogKey> {
        self.tlogs.iter().find(|l| l.key_id == key_id)
    }
    pub(crate) fn ctlog(&self, key_id: &[u8]) -> Option<&LogKey> {
        self.ctlogs.iter().find(|l| l.key_id == key_id)
    }
}

impl Trust {
    /// Sigstore's public-good services; verification needs a trust config.
    pub(crate) fn public_good() -> Trust {
        Trust {
            fulcio_url: PUBLIC_FULCIO.into(),
            rekor_url: PUBLIC_REKOR.into(),
            root: None,
        }
    }

    /// Reads a client trust config, or a bare trusted root (verification only).
    pub(crate) fn load(path: &Path) -> Result<Trust> {
        let text = std::fs::read(path).map_err(Error::io("read", path))?;
        let bad = |m: String| {
            Error::invalid_file(path, None, m)
                .with_hint("expected a Sigstore client trust config or trusted root (JSON)")
        };
        let doc: Doc = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
        let (root, signing) = if doc.media_type.starts_with(ROOT_MEDIA_TYPE) {
            (
                serde_json::from_slice::<RootJson>(&text).map_err(|e| bad(e.to_string()))?,
                None,
            )
        } else if doc.media_type.starts_with(CONFIG_MEDIA_TYPE) {
            let c: ConfigJson = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
            (c.trusted_root, c.signing_config)
        } else {
            return Err(bad(format!("media type `{}` is not known", doc.media_type)));
        };
        let root = root.load().map_err(|m| bad(m.0))?;
        let first = |urls: &Option<Vec<Service>>| {
            urls.as_ref()
                .and_then(|u| u.iter().find(|s| s.major_api_version.unwrap_or(1) == 1))
                .map(|s| s.url.trim_end_matches('/').to_string())
        };
        let (fulcio_url, rekor_url) = match &signing {
            Some(s) => (first(&s.ca_urls), first(&s.rekor_tlog_urls)),
            None => (None, None),
        };
        Ok(Trust {
            fulcio_url: fulcio_url.unwrap_or_default(),
            rekor_url: rekor_url.unwrap_or_default(),
            root: Some(root),
        })
    }
}

const ROOT_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.trustedroot";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.clienttrustconfig";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    media_type: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigJson {
    trusted_root: RootJson,
    signing_config: Option<SigningJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SigningJson {
    ca_urls: Option<Vec<Service>>,
    rekor_tlog_urls: Option<Vec<Service>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Service {
    url: String,
    major_api_version: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RootJson {
    #[serde(default)]
    tlogs: Vec<LogJson>,
    #[serde(default)]
    ctlogs: Vec<LogJson>,
    #[serde(default)]
    certificate_authorities: Vec<AuthorityJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogJson {
    public_key: KeyJson,
    log_id: LogIdJson,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogIdJson {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyJson {
    raw_bytes: Option<String>,
    valid_for: Option<WindowJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthorityJson {
    cert_chain: ChainJson,
    valid_for: Option<WindowJson>,
}

#[derive(Deserialize)]
struct ChainJson {
    certificates: Vec<RawJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawJson {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct WindowJson {
    start: Option<String>,
    end: Option<String>,
}

/// What is wrong with the trust material (the caller names the file).
struct Invalid(String);

fn window(w: &Option<WindowJson>) -> std::result::Result<Window, Invalid> {
    let t = |s: &Option<String>| -> std::result::Result<Option<i64>, Invalid> {
        s.as_deref()
            .map(|s| {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .map(|t| t.unix_timestamp())
                    .map_err(|_| Invalid(format!("`{s}` is not an RFC 3339 time")))
            })
            .transpose()
    };
    Ok(match w {
        Some(w) => Window {
            start: t(&w.start)?,
            end: t(&w.end)?,
        },
        None => Window::default(),
    })
}

impl LogJson {
    /// The log's key, or `None` for a log without one.
    fn load(self, what: &str) -> Option<std::result::Result<LogKey, Invalid>> {
        let raw = self.public_key.raw_bytes.as_ref()?;
        let bad = |m: String| Invalid(format!("{what} {m}"));
        Some((|| {
            let der = B64
                .decode(raw)
                .map_err(|_| bad("key is not base64".into()))?;
            let key_id = B64
                .decode(&self.log_id.key_id)
                .map_err(|_| bad("log id is not base64".into()))?;
            if key_id != sha2::Sha256::digest(&der).as_slice() {
                return Err(bad("log id is not the SHA-256 of its key".into()));
            }
            Ok(LogKey {
                key_id,
                key: PublicKey::from_spki_der(&der).map_err(|e| bad(format!("key: {e}")))?,
                valid: window(&self.public_key.valid_for)?,
            })
        })())
    }
}

impl RootJson {
    fn load(self) -> std::result::Result<TrustedRoot, Invalid> {
        let logs = |logs: Vec<LogJson>, what: &str| {
            logs.into_iter()
                .filter_map(|l| l.load(what))
                .collect::<std::result::Result<Vec<_>, _>>()
        };
        let authorities = self
            .certificate_authorities
            .into_iter()
            .map(|a| {
                let chain = a
                    .cert_chain
                    .certificates
                    .iter()
                    .map(|c| {
                        let der = B64
                            .decode(&c.raw_bytes)
                            .map_err(|_| Invalid("a CA certificate is not base64".into()))?;
                        Cert::from_der(der).map_err(|e| Invalid(e.to_string()))
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                Ok(Authority {
                    chain,
                    valid: window(&a.valid_for)?,
                })
            })
            .collect::<std::result::Result<Vec<_>, Invalid>>()?;
        Ok(TrustedRoot {
            tlogs: logs(self.tlogs, "transparency log")?,
            ctlogs: logs(self.ctlogs, "CT log")?,
            authorities,
        })
    }
}
