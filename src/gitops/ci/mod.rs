//! `margo-gitops ci`: the entry point of the GitHub Action. It reads the workflow event
//! (`GITHUB_EVENT_NAME`, `GITHUB_EVENT_PATH`, `GITHUB_SHA`, `GITHUB_REF`, …) and does what
//! the event calls for:
//! - push to the default branch ([`push`]): prepare, sign and publish the package when the
//!   app changed (or its version's package is missing), then publish a desired-state
//!   version for every pushed commit (a mirror since the push's `before`);
//! - pull request ([`review`]): render and validate the desired state at the base and at
//!   the head, and compare them; nothing is pushed;
//! - `workflow_dispatch` from the default branch, with input `mirror: true`: backfill the
//!   whole history; without it, the same as a push. From any other branch nothing is
//!   published (a dispatch runs the workflow of the branch it names, and `desired` follows
//!   the default branch only);
//! - `schedule` ([`resign`]): a fresh signature on the version `desired` holds (only when
//!   it is what its commit of the default branch renders), so that devices with `maxAge`
//!   keep accepting a quiet repository's desired state;
//! - `pull_request_target` is refused: it runs with the base repository's write token on
//!   a pull request's code, which is what `pull_request` exists to avoid.
//!
//! The outcome is data ([`Job`]); the binary renders the step summary, the review comment
//! and the annotations from it. This module also speaks the runner's file protocol:
//! `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY`.

pub mod push;
pub mod resign;
pub mod review;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::desired::config::Config;
use crate::desired::pipeline::{self, Workspace};
use crate::desired::source::Source;
use crate::error::{Error, Result};
use crate::oci::credentials::Secret;
use crate::oci::store::Connect;
use crate::package::image::Platform;
use crate::signing::mode::SignOptions;

/// The Actions environment of one job step.
pub struct Actions {
    pub event_name: String,
    pub event: Value,
    pub sha: String,
    pub git_ref: String,
    pub repository: String,
    /// `GITHUB_REPOSITORY_OWNER` (as GitHub spells it: `Acme`).
    pub repository_owner: String,
    pub api_url: String,
    pub graphql_url: String,
    pub server_url: String,
    pub output: Option<PathBuf>,
    pub summary: Option<PathBuf>,
    pub token: Option<Secret>,
}

impl Actions {
    /// From the process environment; `token` is the action's `token` input.
    pub fn from_env(token: Option<Secret>) -> Result<Actions> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let need = |k: &str| {
            var(k).ok_or_else(|| {
                Error::Usage(format!(
                    "{k} is not set: `margo-gitops ci` runs inside GitHub Actions (or a job that sets its variables)"
                ))
            })
        };
        let event_name = need("GITHUB_EVENT_NAME")?;
        let event_path = PathBuf::from(need("GITHUB_EVENT_PATH")?);
        let text = std::fs::read(&event_path).map_err(Error::io("read", &event_path))?;
        let event = serde_json::from_slice(&text)
            .map_err(|e| Error::invalid_file(&event_path, None, format!("not JSON: {e}")))?;
        Ok(Actions {
            event_name,
            event,
            sha: need("GITHUB_SHA")?,
            git_ref: var("GITHUB_REF").unwrap_or_default(),
            repository_owner: var("GITHUB_REPOSITORY_OWNER").unwrap_or_default(),
            repository: need("GITHUB_REPOSITORY")?,
            graphql_url: var("GITHUB_GRAPHQL_URL").unwrap_or_else(|| {
                graphql_url(
                    &var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into()),
                )
            }),
            api_url: var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into()),
            server_url: var("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into()),
            output: var("GITHUB_OUTPUT").map(PathBuf::from),
            summary: var("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            token: token.or_else(|| var("GITHUB_TOKEN").map(Secret::from)),
        })
    }

    /// The web page of a commit of this repository.
    pub fn commit_url(&self, sha: &str) -> String {
        format!("{}/{}/commit/{sha}", self.server_url, self.repository)
    }

    /// The registry namespace of repositories nothing else names: `ghcr.io/OWNER`, the
    /// owner lowercased (GitHub keeps its capitals, OCI repository names have none).
    pub fn default_registry(&self) -> Option<String> {
        let owner = if self.repository_owner.is_empty() {
            self.repository.split('/').next().unwrap_or_default()
        } else {
            &self.repository_owner
        };
        (!owner.is_empty()).then(|| format!("ghcr.io/{}", owner.to_lowercase()))
    }

    /// The default branch, as the event's repository names it.
    pub fn default_branch(&self) -> &str {
        self.event["repository"]["default_branch"]
            .as_str()
            .unwrap_or("main")
    }
}

/// GraphQL's address next to a REST API's: `/graphql` on github.com, `/api/graphql` beside
/// GitHub Enterprise Server's `/api/v3`.
fn graphql_url(api: &str) -> String {
    let api = api.trim_end_matches('/');
    match api.strip_suffix("/v3") {
        Some(root) => format!("{root}/graphql"),
        None => format!("{api}/graphql"),
    }
}

/// How the action was configured (its inputs, passed as flags or environment).
pub struct CiOptions {
    pub sign: SignOptions,
    pub images: Vec<(String, PathBuf)>,
    /// Build the services that are built and have no archive (`--build`).
    pub build: bool,
    pub platform: Platform,
    pub cache_dir: Option<PathBuf>,
    pub connect: Connect,
    /// Overrides of `.margo-gitops.yaml`'s repositories.
    pub package_repository: Option<String>,
    pub desired_repository: Option<String>,
    /// The namespace for repositories nothing names: REGISTRY/APP-ID(-desired).
    pub registry: Option<String>,
}

/// What the job did.
pub enum Job {
    /// A push or a `workflow_dispatch` on another branch than the default one: nothing
    /// published.
    Skipped {
        event_name: String,
        git_ref: String,
        default_branch: String,
    },
    Push(Box<push::Pushed>),
    Review(Box<review::Review>),
    Resigned(Box<resign::Resigned>),
}

pub async fn run(actions: &Actions, ws: &Workspace, opts: &CiOptions) -> Result<Job> {
    match actions.event_name.as_str() {
        "push" => push::on_push(actions, ws, opts, false).await,
        "workflow_dispatch" => {
            let backfill = matches!(actions.event["inputs"]["mirror"], Value::Bool(true))
                || actions.event["inputs"]["mirror"] == "true";
            push::on_push(actions, ws, opts, backfill).await
        }
        "schedule" => resign::on_schedule(actions, ws, opts)
            .await
            .map(|r| Job::Resigned(Box::new(r))),
        "pull_request" => review::on_pull_request(actions, ws, opts)
            .await
            .map(|r| Job::Review(Box::new(r))),
        "pull_request_target" => Err(Error::Usage(
            "event `pull_request_target` is refused: it runs with the base repository's write \
             token and secrets while the job reads the pull request's files, which a fork \
             controls. Run the review on `pull_request`: a fork's pull request gets a \
             read-only token, and margo-gitops then puts the review in the step summary"
                .into(),
        )),
        other => Err(Error::Usage(format!(
            "event `{other}` is not handled: run on push, pull_request, workflow_dispatch or schedule"
        ))),
    }
}

/// The first seven characters of a commit id.
pub fn short(sha: &str) -> &str {
    &sha[..7.min(sha.len())]
}

/// Where packages are when nothing else says, as the hooks' rendering check takes it.
fn package_defaults(opts: &CiOptions) -> crate::gitops::hook::PackageRepository {
    crate::gitops::hook::PackageRepository {
        overriding: opts.package_repository.clone(),
        registry: opts.registry.clone(),
    }
}

/// The package and desired-state repositories: the action's inputs, else the config at
/// `source`, else `REGISTRY/APP-ID` and `REGISTRY/APP-ID-desired`.
fn repositories(opts: &CiOptions, config: &Config, source: &Source) -> Result<(String, String)> {
    let fallback = |suffix: &str, key: &str| -> Result<String> {
        match &opts.registry {
            Some(r) => Ok(format!(
                "{}/{}{suffix}",
                r.trim_end_matches('/'),
                pipeline::app_metadata(source, config, "id")?
            )),
            None => Err(Error::Usage(format!(
                "no repository: set `{key}` in .margo-gitops.yaml, or the action's `registry` input"
            ))),
        }
    };
    let package = match opts
        .package_repository
        .clone()
        .or(config.package_repository.clone())
    {
        Some(p) => p,
        None => fallback("", "packageRepository")?,
    };
    let desired = match opts
        .desired_repository
        .clone()
        .or(config.desired_state_repository.clone())
    {
        Some(d) => d,
        None => fallback("-desired", "desiredStateRepository")?,
    };
    Ok((package, desired))
}

/// Appends `name=value` lines to the `GITHUB_OUTPUT` file.
pub fn write_outputs(path: &Path, outputs: &[(String, String)]) -> Result<()> {
    let text: String = outputs.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    append(path, &text)
}

/// Appends markdown to the `GITHUB_STEP_SUMMARY` file.
pub fn write_summary(path: &Path, markdown: &str) -> Result<()> {
    append(path, markdown)
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(Error::io("open", path))?;
    f.write_all(text.as_bytes())
        .map_err(Error::io("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(owner: &str, repository: &str) -> Actions {
        Actions {
            event_name: "push".into(),
            event: serde_json::json!({}),
            sha: String::new(),
            git_ref: String::new(),
            repository: repository.into(),
            repository_owner: owner.into(),
            api_url: String::new(),
            graphql_url: String::new(),
            server_url: "https://github.com".into(),
            output: None,
            summary: None,
            token: None,
        }
    }

    #[test]
    fn the_default_registry_is_the_owners_namespace_on_ghcr_in_lower_case() {
        let a = actions("Acme-Edge", "Acme-Edge/Poc-App");
        assert_eq!(a.default_registry().as_deref(), Some("ghcr.io/acme-edge"));
        let a = actions("", "Acme/poc-app");
        assert_eq!(a.default_registry().as_deref(), Some("ghcr.io/acme"));
        assert_eq!(actions("", "").default_registry(), None);
        assert_eq!(actions("", "").default_branch(), "main");
    }

    #[test]
    fn graphql_lives_beside_the_rest_api() {
        assert_eq!(
            graphql_url("https://api.github.com"),
            "https://api.github.com/graphql"
        );
        assert_eq!(
            graphql_url("https://ghe.example/api/v3/"),
            "https://ghe.example/api/graphql"
        );
    }
}
