//! The desired-state pipelines behind the commands: render, validate, commit, diff.
//!
//! This module wires the pieces together (config, source, package lookup, rendering,
//! validation, publishing) in the order the commands promise: render, validate, publish,
//! stopping at the first failure with nothing pushed. Each piece lives in its own module.

use std::path::PathBuf;

use crate::desired::commit::{CommitRequest, Committed};
use crate::desired::config::Config;
use crate::desired::diff::Side;
use crate::desired::package;
use crate::desired::package::PackageInfo;
use crate::desired::render::{self, RenderOptions, Rendered};
use crate::desired::source::Source;
use crate::desired::versions::{self, VersionInput};
use crate::error::{Error, Result};
use crate::git::{CommitInfo, GitRepo};
use crate::margo::validate::{self, Report};
use crate::oci::reference::{Repo, Target};
use crate::oci::store::{Connect, Store};
use crate::signing::mode::{SignMode, SignOptions};
use crate::signing::signer::Signer;

/// What to render, as the command line says it.
#[derive(Clone, Debug, Default)]
pub struct RenderRequest {
    /// Render this commit's tree instead of the work tree.
    pub at: Option<String>,
    pub options: RenderOptions,
    /// The package reference (`registry/name:tag`); else from the config and margo.yaml.
    pub package: Option<String>,
    pub connect: Connect,
}

/// The repository (if any), its root, and the config read from the chosen source.
pub struct Workspace {
    pub repo: Option<GitRepo>,
    pub root: PathBuf,
}

impl Workspace {
    pub fn discover() -> Result<Self> {
        let cwd = std::env::current_dir().map_err(Error::io("read", "the current folder"))?;
        let repo = GitRepo::discover(&cwd);
        let root = repo
            .as_ref()
            .and_then(|r| r.workdir().map(|p| p.to_path_buf()))
            .unwrap_or(cwd);
        Ok(Workspace { repo, root })
    }

    pub fn repo(&self, why: &str) -> Result<&GitRepo> {
        self.repo
            .as_ref()
            .ok_or_else(|| Error::Usage(format!("{why} needs a git repository; run it inside one")))
    }

    /// The work tree's `.margo-gitops.yaml` (defaults when there is none).
    pub fn config(&self) -> Result<Config> {
        Config::load(&Source::WorkTree(self.root.clone()))
    }

    /// `connect`, with the work tree's config applied (`plainHttp`).
    pub fn connect(&self, connect: &Connect) -> Result<Connect> {
        let mut c = connect.clone();
        c.plain_http |= self.config()?.plain_http;
        Ok(c)
    }

    /// The desired-state repository: the one given, else the config's.
    pub fn desired_repository(&self, given: Option<&str>) -> Result<Repo> {
        let config = self.config()?;
        let name = given
            .map(str::to_string)
            .or(config.desired_state_repository)
            .ok_or_else(|| Error::Usage("name the desired-state repository, or set desiredStateRepository in .margo-gitops.yaml".into()))?;
        Target::parse_repository(&name)
    }

    /// The source to read inputs from: a commit's tree, or the work tree.
    pub(crate) fn source(&self, at: Option<&str>) -> Result<Source<'_>> {
        Ok(match at {
            Some(rev) => {
                let repo = self.repo("rendering at a commit")?;
                Source::Commit {
                    commit: repo.resolve(rev)?,
                    repo,
                }
            }
            None => Source::WorkTree(self.root.clone()),
        })
    }
}

/// The rendered deployments, the commit they come from, and the package they run.
pub struct RenderedState {
    pub docs: Vec<Rendered>,
    pub git: Option<CommitInfo>,
    pub package: PackageInfo,
    pub config: Config,
}

/// The package reference: the flag, else `packageRepository` at the app's version.
pub(crate) fn package_ref(source: &Source, config: &Config, flag: Option<&str>) -> Result<String> {
    if let Some(p) = flag {
        return Ok(p.to_string());
    }
    let repo = config.package_repository.as_deref().ok_or_else(|| {
        Error::Usage(
            "name the package with --package REF, or set packageRepository in .margo-gitops.yaml"
                .into(),
        )
    })?;
    let version = app_metadata(source, config, "version")?;
    Ok(format!(
        "{repo}:{}",
        crate::package::descriptor::tag_for_version(&version)
    ))
}

/// A `metadata.FIELD` of the app's margo.yaml as `source` has it (`id`, `version`).
pub(crate) fn app_metadata(source: &Source, config: &Config, field: &str) -> Result<String> {
    let folder = config.app.clone().unwrap_or_else(|| ".".into());
    let path = PathBuf::from(folder).join(crate::margo::app::FILE_NAME);
    let text = source.read_text(&path)?;
    let doc: serde_norway::Value = serde_norway::from_str(&text).map_err(|e| {
        Error::invalid_file(
            source.describe(&path),
            e.location().map(|l| l.line()),
            e.to_string(),
        )
    })?;
    doc["metadata"][field]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| {
            Error::invalid_file(
                source.describe(&path),
                None,
                format!("`metadata.{field}` is missing"),
            )
        })
}

pub async fn render_state(ws: &Workspace, req: &RenderRequest) -> Result<RenderedState> {
    let source = ws.source(req.at.as_deref())?;
    let config = Config::load(&source)?;
    let mut connect = req.connect.clone();
    connect.plain_http |= config.plain_http;
    let mut options = req.options.clone();
    if matches!(source, Source::WorkTree(_)) {
        // Values named on the command line are relative to where the command runs.
        let cwd = std::env::current_dir().map_err(Error::io("read", "the current folder"))?;
        options.values = options.values.iter().map(|v| cwd.join(v)).collect();
    }
    let reference = package_ref(&source, &config, req.package.as_deref())?;
    let package = package::resolve_package(&reference, &connect).await?;
    let git = match (&ws.repo, &source) {
        (_, Source::Commit { repo, commit }) => Some(repo.commit(commit)?),
        (Some(repo), Source::WorkTree(_)) => repo.commit("HEAD").ok(),
        (None, _) => None,
    };
    let docs = render::render(&source, &config, &options, &package, git.as_ref())?;
    Ok(RenderedState {
        docs,
        git,
        package,
        config,
    })
}

/// Validates rendered documents; the reports of those with problems.
pub(crate) fn validate_rendered(docs: &[Rendered]) -> Vec<Report> {
    docs.iter()
        .map(|d| {
            validate::validate_text(
                &PathBuf::from(format!("{} (deployment {})", d.template, d.name)),
                &d.text,
            )
        })
        .filter(|r| !r.problems.is_empty())
        .collect()
}

/// Fails with every problem when any rendered document is invalid.
pub(crate) fn require_valid(docs: &[Rendered]) -> Result<Vec<Report>> {
    let reports = validate_rendered(docs);
    let errors: usize = reports.iter().map(|r| r.errors().count()).sum();
    if errors > 0 {
        let text: String = reports.iter().map(|r| r.to_string()).collect();
        return Err(Error::invalid(format!(
            "the rendered desired state is not valid ({errors} problem{}); nothing was published:\n{}",
            if errors == 1 { "" } else { "s" },
            text.trim_end()
        )));
    }
    Ok(reports)
}

/// Render, validate, publish: `desired-state commit`.
pub async fn commit(
    ws: &Workspace,
    req: &RenderRequest,
    to: Option<&str>,
    sign: &SignOptions,
) -> Result<(Committed, Vec<Report>)> {
    let repo = ws.repo("desired-state commit (versions come from git)")?;
    if matches!(sign.mode, SignMode::Pgp(_)) {
        return Err(Error::Usage(
            "--sign pgp: signs package archives only; sign desired-state versions with \
             --sign keyless or --sign key:PATH"
                .into(),
        ));
    }
    // Loading a key can be slow work (scrypt): off the async threads.
    let signer = crate::oci::blocking(|| Signer::new(sign))?;
    let state = render_state(ws, req).await?;
    let warnings = require_valid(&state.docs)?;
    let to = to
        .map(str::to_string)
        .or_else(|| state.config.desired_state_repository.clone())
        .ok_or_else(|| Error::Usage("name the repository with --to, or set desiredStateRepository in .margo-gitops.yaml".into()))?;
    let to: Repo = Target::parse_repository(&to)?;
    let git = state
        .git
        .clone()
        .ok_or_else(|| Error::Usage("the repository has no commit yet".into()))?;
    let manifest_version = repo.first_parent_count(&git.commit)?;
    let source = crate::git::discover(&ws.root).and_then(|g| g.source);
    let mut connect = req.connect.clone();
    connect.plain_http |= state.config.plain_http;
    let ancestry = |a: &str, b: &str| repo.is_ancestor(a, b);
    let position = |c: &str| repo.first_parent_count(c).ok();
    let committed = crate::desired::commit::commit(CommitRequest {
        version: VersionInput {
            to: &to,
            plain_http: connect.plain_http,
            docs: &state.docs,
            git: &git,
            source: source.as_deref(),
            manifest_version,
        },
        connect: &connect,
        ancestry: &ancestry,
        position: &position,
        signer: signer.as_ref(),
    })
    .await?;
    Ok((committed, warnings))
}

/// One side of `desired-state diff`: a file, `git:REV` (rendered at that commit), or a
/// published version (`registry/name:tag`, `oci-layout:PATH:tag`).
pub async fn diff_side(ws: &Workspace, spec: &str, req: &RenderRequest) -> Result<Side> {
    if let Some(rev) = spec.strip_prefix("git:") {
        let mut r = req.clone();
        r.at = Some(rev.to_string());
        let state = render_state(ws, &r).await?;
        return Ok(Side {
            label: spec.to_string(),
            documents: state.docs.into_iter().map(|d| d.text).collect(),
        });
    }
    let path = PathBuf::from(spec);
    if path.is_file() {
        let text = std::fs::read_to_string(&path).map_err(Error::io("read", &path))?;
        return Ok(Side {
            label: spec.to_string(),
            documents: vec![text],
        });
    }
    let target = Target::parse(spec)?;
    let store = Store::open(&target.repo, &ws.connect(&req.connect)?).await?;
    let selector = target
        .selector()
        .unwrap_or_else(|| versions::DESIRED_TAG.into());
    let m = store
        .manifest(&selector)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: format!("desired state {spec}"),
            hint: Some("a diff side is a file, git:REV, or a published version".into()),
        })?;
    Ok(Side {
        label: spec.to_string(),
        documents: versions::documents(&store, &m)
            .await?
            .into_iter()
            .map(|(_, t)| t)
            .collect(),
    })
}
