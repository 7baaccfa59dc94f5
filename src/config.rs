//! `.margo-gitops.yaml`: what the PoC kept in `common.source`, at the repository root.
//!
//! Every field is optional; command-line flags and `MARGO_GITOPS_*` variables win over it.
//! The file is read through a [`Source`], so a commit's own config is used when rendering
//! that commit. Unknown fields are errors (a misspelt key would otherwise be ignored).

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::source::Source;

pub const FILE_NAME: &str = ".margo-gitops.yaml";

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// The app folder (compose file, margo.yaml), relative to the repository root.
    pub app: Option<String>,
    /// Where packages are published: `registry/name` or `oci-layout:PATH`.
    pub package_repository: Option<String>,
    /// Where the desired state is committed.
    pub desired_state_repository: Option<String>,
    /// The template: a path, or `margo` / `poc` for the shipped ones.
    pub template: Option<String>,
    /// Talk plain HTTP to the registries.
    #[serde(default)]
    pub plain_http: bool,
    /// The deployments to render; one named after the app when empty.
    #[serde(default)]
    pub deployments: Vec<Deployment>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deployment {
    pub name: String,
    /// The ApplicationDeployment id (a UUID); derived from the app and the name when absent.
    pub id: Option<String>,
    pub namespace: Option<String>,
    /// Values files (parameter name → value), merged in order.
    #[serde(default)]
    pub values: Vec<String>,
    /// A template for this deployment only.
    pub template: Option<String>,
}

impl Config {
    /// Reads the config from `source`, or the defaults when there is none.
    pub fn load(source: &Source) -> Result<Config> {
        let path = Path::new(FILE_NAME);
        let Some(bytes) = source.read(path)? else {
            return Ok(Config::default());
        };
        let name = source.describe(path);
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::invalid_file(&name, None, "not UTF-8 text"))?;
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_norway::from_str(&text).map_err(|e| {
            Error::invalid_file(&name, e.location().map(|l| l.line()), e.to_string())
                .with_hint("see the README, section Configuration")
        })
    }
}
