//! The app's Margo Application Description (`margo.yaml`): its id, version and resources.
//!
//! Only what packaging needs is read here: `metadata.id`, `metadata.version`, the catalog
//! texts used as OCI annotations, and the resource files (icon, description, release
//! notes, license) that travel with the Application Package. Full validation of the
//! document against the Margo model belongs to the desired-state validator.

use std::path::{Path, PathBuf};

use serde_norway::Value;

use crate::error::{Error, Result};
use crate::margo::yamltree::line_of;
use crate::paths::safe_relative;

pub(crate) const FILE_NAME: &str = "margo.yaml";

/// Resource fields under `metadata.catalog.application`, in the order they are published.
const RESOURCE_FIELDS: [&str; 4] = ["icon", "descriptionFile", "releaseNotes", "licenseFile"];

#[derive(Clone, Debug)]
pub(crate) struct AppDescription {
    pub id: String,
    pub version: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub authors: Vec<String>,
    pub resources: Vec<Resource>,
}

/// A file the description points at, with the dotted path of the field that names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Resource {
    pub field: String,
    pub path: PathBuf,
}

/// Reads `margo.yaml` from `app_dir` when there is one.
pub(crate) fn load(app_dir: &Path) -> Result<Option<AppDescription>> {
    let path = app_dir.join(FILE_NAME);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(Error::io("read", &path))?;
    let report = crate::margo::validate::validate_description(&path, &text, app_dir);
    let errors = report.errors().count();
    if errors > 0 {
        return Err(Error::invalid(format!(
            "{} is not a valid ApplicationDescription ({errors} problem{}):\n{}",
            path.display(),
            if errors == 1 { "" } else { "s" },
            report.to_string().trim_end()
        ))
        .with_hint("see the Margo specification's application-description page"));
    }
    let doc: Value = serde_norway::from_str(&text).map_err(|e| {
        Error::invalid_file(
            &path,
            e.location().map(|l| l.line()),
            format!("not valid YAML: {e}"),
        )
    })?;
    let field = |key: &str| -> Result<String> {
        doc["metadata"][key]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                Error::invalid_file(
                    &path,
                    line_of(&text, "metadata:"),
                    format!("`metadata.{key}` is missing or not a string"),
                )
                .with_hint("margo.yaml needs metadata.id and metadata.version")
            })
    };
    let id = field("id")?;
    if !valid_app_id(&id) {
        return Err(Error::invalid_file(
            &path,
            line_of(&text, "id:"),
            format!("`metadata.id` `{id}` must match ^[-a-z0-9]{{1,200}}$"),
        ));
    }
    let version = field("version")?;
    if !is_semver(&version) {
        return Err(Error::invalid_file(
            &path,
            line_of(&text, "version:"),
            format!("`metadata.version` `{version}` is not a SemVer version (MAJOR.MINOR.PATCH, no leading v)"),
        ));
    }
    let app = &doc["metadata"]["catalog"]["application"];
    let resources = resources(app_dir, &path, &text, app)?;
    let authors = doc["metadata"]["catalog"]["author"]
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|a| a["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(AppDescription {
        id,
        version,
        name: doc["metadata"]["name"].as_str().map(str::to_string),
        description: doc["metadata"]["description"]
            .as_str()
            .or_else(|| app["tagline"].as_str())
            .map(str::to_string),
        authors,
        resources,
    }))
}

/// The resource files `metadata.catalog.application` names, each checked to exist in the
/// app folder (and not to leave it).
fn resources(app_dir: &Path, path: &Path, text: &str, app: &Value) -> Result<Vec<Resource>> {
    let mut resources = Vec::new();
    for key in RESOURCE_FIELDS {
        let Some(file) = app[key].as_str() else {
            continue;
        };
        let field = format!("metadata.catalog.application.{key}");
        let rel = safe_relative(app_dir, Path::new(file)).map_err(|why| {
            Error::invalid_file(path, line_of(text, key), format!("`{field}`: {why}"))
        })?;
        if !app_dir.join(&rel).is_file() {
            return Err(Error::invalid_file(
                path,
                line_of(text, key),
                format!("`{field}` names `{file}`, which does not exist"),
            ));
        }
        resources.push(Resource { field, path: rel });
    }
    Ok(resources)
}

/// Margo's application id pattern: `^[-a-z0-9]{1,200}$`.
pub(crate) fn valid_app_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// SemVer 2.0: `MAJOR.MINOR.PATCH[-pre][+build]`, numbers without leading zeros, no `v`.
pub(crate) fn is_semver(v: &str) -> bool {
    semver::Version::parse(v).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver() {
        for ok in ["1.0.0", "0.1.2-rc.1", "1.2.3+build.5", "10.20.30-alpha-1"] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in ["v1.0.0", "1.0", "01.0.0", "1.0.0-", "1.0.0-01", "latest"] {
            assert!(!is_semver(bad), "{bad}");
        }
    }

    #[test]
    fn app_ids() {
        assert!(valid_app_id("poc-app"));
        assert!(!valid_app_id("PoC_App"));
        assert!(!valid_app_id(&"a".repeat(201)));
    }
}
