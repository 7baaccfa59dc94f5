//! Where OCI content lives: a registry repository or an OCI image-layout folder.
//!
//! A REPOSITORY or REFERENCE on the command line is either a registry reference
//! (`ghcr.io/acme/poc-app`, `127.0.0.1:5000/acme/poc-app:1.2.0`, `…@sha256:…`; Docker Hub
//! short names such as `redis:alpine` are expanded as Docker does) or `oci-layout:PATH`,
//! optionally followed by `:TAG` or `@sha256:…`, a folder laid out by the OCI image-layout
//! spec, which skopeo reads as `oci:PATH:TAG`. This module only parses and prints them;
//! [`crate::oci::store`] talks to them.

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::oci::digest::Digest;

pub(crate) const LAYOUT_PREFIX: &str = "oci-layout:";

/// A repository: the place that holds tags and manifests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repo {
    Registry {
        registry: String,
        repository: String,
    },
    Layout(PathBuf),
}

/// A repository, optionally narrowed to a tag and/or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub repo: Repo,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Target {
    /// Parses a REFERENCE: a tag or digest may follow the repository.
    pub(crate) fn parse(input: &str) -> Result<Self> {
        let usage = |why: &str| {
            Error::Usage(format!(
                "`{input}` is not a valid reference: {why}; expected `registry/repository[:tag][@sha256:…]` or `oci-layout:PATH[:tag]`"
            ))
        };
        let (rest, digest) = match input.rsplit_once('@') {
            Some((rest, d)) => (
                rest,
                Some(d.parse::<Digest>().map_err(|_| usage("bad digest"))?),
            ),
            None => (input, None),
        };
        if let Some(path) = rest.strip_prefix(LAYOUT_PREFIX) {
            let (path, tag) = split_layout_tag(path);
            if path.is_empty() {
                return Err(usage("the layout path is empty"));
            }
            return Ok(Target {
                repo: Repo::Layout(PathBuf::from(path)),
                tag: tag.map(str::to_string),
                digest,
            });
        }
        let (name, tag) = match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(usage(&format!("`{tag}` is not a valid tag")));
            }
        }
        let parsed = oci_client::Reference::try_from(format!("{name}:x").as_str())
            .map_err(|e| usage(&e.to_string()))?;
        Ok(Target {
            repo: Repo::Registry {
                registry: parsed.registry().to_string(),
                repository: parsed.repository().to_string(),
            },
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// Parses a REPOSITORY: no tag or digest may follow.
    pub fn parse_repository(input: &str) -> Result<Repo> {
        let t = Self::parse(input)?;
        if t.tag.is_some() || t.digest.is_some() {
            return Err(Error::Usage(format!(
                "`{input}` names a tag or digest, but a repository is expected here; drop the `:tag` (the tag comes from the version)"
            )));
        }
        Ok(t.repo)
    }

    /// The tag or digest to resolve: the digest when both are given.
    pub(crate) fn selector(&self) -> Option<String> {
        self.digest
            .as_ref()
            .map(|d| d.to_string())
            .or_else(|| self.tag.clone())
    }
}

fn split_layout_tag(path: &str) -> (&str, Option<&str>) {
    match path.rsplit_once(':') {
        Some((p, tag)) if !tag.is_empty() && valid_tag(tag) && !p.is_empty() => (p, Some(tag)),
        _ => (path, None),
    }
}

/// The OCI distribution spec's tag grammar: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub(crate) fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl Repo {
    /// A sibling repository whose name has `suffix` appended (`acme/app` → `acme/app-app`).
    pub(crate) fn sibling(&self, suffix: &str) -> Repo {
        match self {
            Repo::Registry {
                registry,
                repository,
            } => Repo::Registry {
                registry: registry.clone(),
                repository: format!("{repository}{suffix}"),
            },
            Repo::Layout(p) => {
                let mut s = p.clone().into_os_string();
                s.push(suffix);
                Repo::Layout(PathBuf::from(s))
            }
        }
    }
}

impl fmt::Display for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Repo::Registry {
                registry,
                repository,
            } => write!(f, "{registry}/{repository}"),
            Repo::Layout(p) => write!(f, "{LAYOUT_PREFIX}{}", p.display()),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repo)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_references() {
        let t = Target::parse("127.0.0.1:5000/acme/poc-app:1.2.0").unwrap();
        assert_eq!(
            t.repo,
            Repo::Registry {
                registry: "127.0.0.1:5000".into(),
                repository: "acme/poc-app".into()
            }
        );
        assert_eq!(t.tag.as_deref(), Some("1.2.0"));
        let t = Target::parse("redis:alpine").unwrap();
        assert_eq!(t.to_string(), "docker.io/library/redis:alpine");
        let t = Target::parse("ghcr.io/acme/poc-app").unwrap();
        assert_eq!(t.tag, None);
        let d = Digest::of(b"x");
        let t = Target::parse(&format!("localhost:5000/a@{d}")).unwrap();
        assert_eq!(t.digest, Some(d));
        assert!(Target::parse("ghcr.io/Acme/App").is_err());
    }

    #[test]
    fn layout_references() {
        let t = Target::parse("oci-layout:dist/oci:1.0.0").unwrap();
        assert_eq!(t.repo, Repo::Layout("dist/oci".into()));
        assert_eq!(t.tag.as_deref(), Some("1.0.0"));
        let t = Target::parse("oci-layout:/tmp/x").unwrap();
        assert_eq!(t.tag, None);
        assert!(Target::parse_repository("oci-layout:dist/oci:1.0.0").is_err());
        assert_eq!(
            Repo::Layout("dist/oci".into()).sibling("-app").to_string(),
            "oci-layout:dist/oci-app"
        );
    }
}
