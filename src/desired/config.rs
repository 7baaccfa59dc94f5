//! `.margo-gitops.yaml`: what the PoC kept in `common.source`, at the repository root.
//!
//! Every field is optional; command-line flags and `MARGO_GITOPS_*` variables win over it.
//! The file is read through a [`Source`], so a commit's own config is used when rendering
//! that commit. Unknown fields are errors (a misspelt key would otherwise be ignored).

use std::path::Path;

use serde::Deserialize;

use crate::desired::source::Source;
use crate::error::{Error, Result};

pub(crate) const FILE_NAME: &str = ".margo-gitops.yaml";

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
    /// The `metadata.namespace` of every deployment that names none (default `margo`).
    pub namespace: Option<String>,
    /// The deployments to render; one named after the app when empty.
    #[serde(default)]
    pub deployments: Vec<Deployment>,
    /// Values files for that one deployment when none is configured (`MARGO_GITOPS_VALUES`,
    /// the action's `values` input); not a field of the file.
    #[serde(skip)]
    pub default_values: Vec<String>,
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
    /// Reads the config from `source`, or the defaults when there is none; the
    /// environment fills what the file leaves out (see [`Config::with_defaults`]).
    pub(crate) fn load(source: &Source) -> Result<Config> {
        let env = |k: &str| std::env::var(k).ok();
        let config = Self::parse(source)?.with_defaults(env);
        if let Some(app) = &config.app {
            // Read from a commit, and packaged from an export of it: a folder of the
            // repository, never one around it.
            let inside = Path::new(app).components().all(|c| {
                matches!(
                    c,
                    std::path::Component::Normal(_) | std::path::Component::CurDir
                )
            });
            if !inside {
                return Err(Error::invalid_file(
                    source.describe(Path::new(FILE_NAME)),
                    None,
                    format!("`app: {app}` (or MARGO_GITOPS_APP) must be a folder inside the repository: relative, without `..`"),
                ));
            }
        }
        Ok(config)
    }

    fn parse(source: &Source) -> Result<Config> {
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

    /// Fills what the file does not set: `app` from `MARGO_GITOPS_APP`, `template` from
    /// `MARGO_GITOPS_TEMPLATE`, and, when no deployment is configured, the values files of
    /// the one rendered from `MARGO_GITOPS_VALUES` (one path per line). The file wins, so
    /// every commit of a history renders as its own config says.
    pub(crate) fn with_defaults(mut self, env: impl Fn(&str) -> Option<String>) -> Config {
        let get = |k: &str| {
            env(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if self.app.is_none() {
            self.app = get("MARGO_GITOPS_APP");
        }
        if self.template.is_none() {
            self.template = get("MARGO_GITOPS_TEMPLATE");
        }
        if self.deployments.is_empty() {
            self.default_values = get("MARGO_GITOPS_VALUES")
                .map(|v| {
                    v.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_folder_is_inside_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let source = Source::WorkTree(dir.path().to_path_buf());
        for app in ["../outside", "/etc", "app/../../x"] {
            std::fs::write(dir.path().join(FILE_NAME), format!("app: {app}\n")).unwrap();
            let err = Config::load(&source).unwrap_err().to_string();
            assert!(
                err.contains("must be a folder inside the repository"),
                "{app}: {err}"
            );
        }
        for app in [".", "app", "./apps/web"] {
            std::fs::write(dir.path().join(FILE_NAME), format!("app: {app}\n")).unwrap();
            assert_eq!(Config::load(&source).unwrap().app.as_deref(), Some(app));
        }
    }

    #[test]
    fn the_environment_fills_only_what_the_file_leaves_out() {
        let env = |k: &str| match k {
            "MARGO_GITOPS_APP" => Some("app".to_string()),
            "MARGO_GITOPS_TEMPLATE" => Some("poc".to_string()),
            "MARGO_GITOPS_VALUES" => Some("a.yaml\n\n b.yaml\n".to_string()),
            _ => None,
        };
        let filled = Config::default().with_defaults(env);
        assert_eq!(filled.app.as_deref(), Some("app"));
        assert_eq!(filled.template.as_deref(), Some("poc"));
        assert_eq!(filled.default_values, vec!["a.yaml", "b.yaml"]);
        let own = Config {
            app: Some("mine".into()),
            template: Some("margo".into()),
            deployments: vec![Deployment {
                name: "site".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
        .with_defaults(env);
        assert_eq!(own.app.as_deref(), Some("mine"));
        assert_eq!(own.template.as_deref(), Some("margo"));
        assert!(own.default_values.is_empty());
    }
}
