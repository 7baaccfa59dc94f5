//! The package descriptor: what `package prepare` wrote (`<app-id>-<version>.json` beside
//! the archive) and what `package publish` reads back, so that publishing needs no access
//! to the app folder or the images.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::oci::digest::Digest;

/// Identifies descriptors written by this version of the format.
pub(crate) const DESCRIPTOR_SCHEMA: &str = "margo-gitops.package.v1";

/// What `prepare` wrote, and what `publish` reads back.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub schema: String,
    pub app_id: String,
    pub version: String,
    pub archive: FileRef,
    pub source_date_epoch: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitRef>,
    pub platform: String,
    pub images: Vec<ImageRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppRef>,
    /// The Sigstore bundle over the archive (`--sign`), a file beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileRef {
    pub file: String,
    pub digest: Digest,
    pub size: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GitRef {
    pub commit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ImageRef {
    pub services: Vec<String>,
    pub reference: String,
    pub digest: Digest,
    pub source: String,
    /// Path of the image archive inside the package, when images are included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_size: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppRef {
    /// Folder (beside the archive) holding `margo.yaml` and its resources.
    pub folder: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub authors: Vec<String>,
    pub resources: Vec<ResourceRef>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResourceRef {
    pub field: String,
    pub file: String,
}

impl Descriptor {
    /// Reads the descriptor for a package file or an output folder.
    pub(crate) fn find(input: &Path) -> Result<(Descriptor, PathBuf)> {
        let path = if input.is_dir() {
            let mut found = Vec::new();
            for entry in fs::read_dir(input).map_err(Error::io("read", input))? {
                let p = entry.map_err(Error::io("read", input))?.path();
                if p.extension().is_some_and(|e| e == "json") && Self::read(&p).is_ok() {
                    found.push(p);
                }
            }
            found.sort();
            match found.len() {
                1 => found.remove(0),
                0 => {
                    return Err(Error::Usage(format!(
                        "{} holds no prepared package; run `margo-gitops package prepare` first",
                        input.display()
                    )))
                }
                _ => {
                    let names: Vec<String> =
                        found.iter().map(|p| p.display().to_string()).collect();
                    return Err(Error::Usage(format!(
                        "{} holds several packages ({}); name the .tar.gz to publish",
                        input.display(),
                        names.join(", ")
                    )));
                }
            }
        } else {
            let name = input.to_string_lossy();
            let stem = name.strip_suffix(".tar.gz").ok_or_else(|| {
                Error::Usage(format!(
                    "{} is neither a folder nor a .tar.gz package",
                    input.display()
                ))
            })?;
            PathBuf::from(format!("{stem}.json"))
        };
        let d = Self::read(&path)?;
        Ok((d, path))
    }

    fn read(path: &Path) -> Result<Descriptor> {
        let text = fs::read(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Usage(format!(
                    "{} not found: publish reads what `package prepare` wrote beside the archive",
                    path.display()
                ))
            } else {
                Error::io("read", path)(e)
            }
        })?;
        let d: Descriptor = serde_json::from_slice(&text).map_err(|e| {
            Error::invalid_file(
                path,
                Some(e.line()),
                format!("not a package descriptor: {e}"),
            )
        })?;
        if d.schema != DESCRIPTOR_SCHEMA {
            return Err(Error::invalid_file(
                path,
                None,
                format!("unknown descriptor schema `{}`", d.schema),
            ));
        }
        Ok(d)
    }
}

/// The OCI tag of a version: tags cannot hold `+`, so SemVer build metadata gets `_`, as
/// Helm does.
pub(crate) fn tag_for_version(version: &str) -> String {
    version.replace('+', "_")
}
