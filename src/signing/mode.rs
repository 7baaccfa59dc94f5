//! How to sign: the `--sign` modes, and what signing needs besides the artifact.

use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::signing::sigstore::client::TokenSource;

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
    pub(crate) fn none() -> SignOptions {
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
