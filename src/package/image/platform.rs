//! Platforms: `os/arch[/variant]` as `--platform` and Docker spell it, matched against
//! an image config or picked out of a multi-platform index.

use std::fmt;
use std::str::FromStr;

use oci_client::manifest::OciDescriptor;

use crate::error::{Error, Result};
use crate::oci::manifest::Manifest;

/// `os/arch[/variant]`, as `--platform` and Docker spell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: parts.get(2).map(|v| v.to_string()),
            }),
            _ => Err(Error::Usage(format!(
                "--platform `{s}` is not os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8"
            ))),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Platform {
    pub(crate) fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        let variant_ok = match (&self.variant, variant) {
            (None, _) => true,
            (Some(want), Some(have)) => want == have,
            // arm64 images often omit their (only) variant v8.
            (Some(want), None) => want == "v8" && arch == "arm64",
        };
        self.os == os && self.architecture == arch && variant_ok
    }
}

/// Checks the image config's platform against the one asked for.
pub(super) fn check_platform(config: &[u8], platform: &Platform, what: &str) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Cfg {
        os: Option<String>,
        architecture: Option<String>,
        variant: Option<String>,
    }
    let cfg: Cfg = serde_json::from_slice(config)
        .map_err(|e| Error::invalid(format!("{what}: the image config is not JSON: {e}")))?;
    let (os, arch) = (
        cfg.os.unwrap_or_default(),
        cfg.architecture.unwrap_or_default(),
    );
    if !platform.matches(&os, &arch, cfg.variant.as_deref()) {
        let have = match cfg.variant {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        };
        return Err(
            Error::invalid(format!("{what} is built for {have}, not {platform}"))
                .with_hint("pass --platform to match, or provide an image for that platform"),
        );
    }
    Ok(())
}

/// Picks the manifest for `platform` out of an index.
pub(super) fn pick_platform(
    index: &Manifest,
    platform: &Platform,
    what: &str,
) -> Result<OciDescriptor> {
    let index = index.index()?;
    let mut offered = Vec::new();
    for m in &index.manifests {
        let Some(p) = &m.platform else { continue };
        let (os, arch) = (p.os.to_string(), p.architecture.to_string());
        if platform.matches(&os, &arch, p.variant.as_deref()) {
            return Ok(OciDescriptor {
                media_type: m.media_type.clone(),
                digest: m.digest.clone(),
                size: m.size,
                ..Default::default()
            });
        }
        if os != "unknown" {
            offered.push(match &p.variant {
                Some(v) => format!("{os}/{arch}/{v}"),
                None => format!("{os}/{arch}"),
            });
        }
    }
    Err(Error::NotFound {
        what: format!("a {platform} image in {what}"),
        hint: Some(format!(
            "it offers {}; choose one with --platform",
            offered.join(", ")
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert!(p.matches("linux", "arm64", None));
        assert!(!p.matches("linux", "amd64", None));
        assert!("linux".parse::<Platform>().is_err());
    }
}
