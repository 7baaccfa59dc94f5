//! The pull-request job: the desired state rendered and validated at the base and at the
//! head, compared by meaning, and the problems of the pull request's own commits, as the
//! pre-push hook finds them. Nothing is pushed; the verdict depends on the desired state.

use super::{repositories, short, Actions, CiOptions};
use crate::desired::config::Config;
use crate::desired::diff::{self, Diff, Side};
use crate::desired::package;
use crate::desired::pipeline::{self, RenderRequest, Workspace};
use crate::desired::render::{self, RenderOptions, Rendered};
use crate::desired::source::Source;
use crate::error::{Error, Result};
use crate::gitops::github::{CommentOutcome, GitHub};
use crate::gitops::hook::{self, Finding, Update};
use crate::margo::validate::{Problem, Report};
use crate::oci::reference::Target;
use crate::oci::store::{Connect, Store};
use crate::package::diff::{diff, read_app, read_side, AppDiff, AppView};
use crate::package::pins;

/// The hidden marker that finds our pull-request comment again.
pub const COMMENT_MARKER: &str = "<!-- margo-gitops:desired-state-diff -->";

/// What the review found.
pub struct Review {
    pub number: u64,
    pub base: String,
    pub head: String,
    /// The app changed while its version, already published, did not: the push after the
    /// merge would be refused, so the pull request learns it now.
    pub version_bump: Option<Finding>,
    /// What changes on the devices, when the app folder changed.
    pub app_diff: Option<AppDiff>,
    /// Problems in the pull request's commits (deployment documents, the rendering).
    pub findings: Vec<Finding>,
    pub comparison: Comparison,
    /// Why the check fails, when it does (a one-line reason).
    pub failure: Option<String>,
}

/// The desired state at the base and at the head, compared.
pub enum Comparison {
    Compared {
        diff: Diff,
        /// Why some digests are placeholders (a package not published yet).
        notes: Vec<String>,
        /// Validation problems of the rendered documents, at each side.
        base_problems: Vec<Report>,
        head_problems: Vec<Report>,
    },
    /// The head does not render: the error.
    HeadFails(String),
    /// The base does not render (the head does): the error; no diff.
    BaseFails(String),
}

pub(super) async fn on_pull_request(
    actions: &Actions,
    ws: &Workspace,
    opts: &CiOptions,
) -> Result<Review> {
    let repo = ws.repo("margo-gitops ci")?;
    repo.require_whole_history()?;
    let pr = &actions.event["pull_request"];
    let number = pr["number"]
        .as_u64()
        .or(actions.event["number"].as_u64())
        .ok_or_else(|| Error::Usage("the pull_request event has no number".into()))?;
    let base = repo.resolve(pr["base"]["sha"].as_str().unwrap_or_default())?;
    let head = repo.resolve(pr["head"]["sha"].as_str().unwrap_or(&actions.sha))?;
    let connect = ws.connect(&opts.connect)?;
    let update = Update {
        local_sha: head.clone(),
        remote_sha: base.clone(),
    };
    let findings = hook::pre_push(
        repo,
        "origin",
        &[update],
        false,
        &connect,
        &super::package_defaults(opts),
    )
    .await?;
    let comparison = compare(ws, opts, &connect, &base, &head).await?;
    let app_diff = app_changes(ws, opts, &connect, &base, &head).await?;
    let version_bump = match &app_diff {
        // The app changed, its version did not.
        Some(d) if d.version.is_none() => stale_version(ws, opts, &connect, &head).await?,
        _ => None,
    };
    let failure = match &comparison {
        _ if version_bump.is_some() => {
            Some("the app changed and its published version did not: bump metadata.version".into())
        }
        Comparison::HeadFails(e) => Some(format!(
            "the desired state at the head does not render: {e}"
        )),
        Comparison::Compared { head_problems, .. }
            if head_problems.iter().any(|r| r.errors().next().is_some()) =>
        {
            Some("the desired state at the head is not valid".into())
        }
        _ if !findings.is_empty() => {
            Some(format!("{} problem(s) in the pull request", findings.len()))
        }
        _ => None,
    };
    Ok(Review {
        number,
        base,
        head,
        version_bump,
        app_diff,
        findings,
        comparison,
        failure,
    })
}

async fn compare(
    ws: &Workspace,
    opts: &CiOptions,
    connect: &Connect,
    base: &str,
    head: &str,
) -> Result<Comparison> {
    let base_side = render_for_review(ws, base, opts, connect).await;
    let head_side = render_for_review(ws, head, opts, connect).await;
    Ok(match (base_side, head_side) {
        (Ok((b, bdocs, bn)), Ok((h, hdocs, hn))) => Comparison::Compared {
            diff: diff::diff(&b, &h)?,
            notes: [bn, hn].into_iter().flatten().collect(),
            base_problems: pipeline::validate_rendered(&bdocs),
            head_problems: pipeline::validate_rendered(&hdocs),
        },
        (_, Err(e)) => Comparison::HeadFails(e.to_string()),
        (Err(e), Ok(_)) => Comparison::BaseFails(e.to_string()),
    })
}

/// What changes on the devices between `base` and `head`, when the app folder changed.
/// Images show with their digests: each side's from the package published for its
/// version (the head's only when it names another version than the base), else looked up
/// in the images' registries now, as `package prepare` would pin them.
async fn app_changes(
    ws: &Workspace,
    opts: &CiOptions,
    connect: &Connect,
    base: &str,
    head: &str,
) -> Result<Option<AppDiff>> {
    let repo = ws.repo("margo-gitops ci")?;
    let (old, new) = (ws.source(Some(base))?, ws.source(Some(head))?);
    let app_of = |source| -> Result<std::path::PathBuf> {
        Ok(Config::load(source)?
            .app
            .unwrap_or_else(|| ".".into())
            .into())
    };
    let (old_app, new_app) = (app_of(&old)?, app_of(&new)?);
    if repo.entry_id(base, &old_app)? == repo.entry_id(head, &new_app)? {
        return Ok(None);
    }
    // A side without a readable app (added or broken in the pull request, which the other
    // checks report) counts as an app with nothing in it.
    let view = |source, app, rev| {
        read_app(source, app, short(rev)).unwrap_or_else(|_| AppView {
            label: short(rev).to_string(),
            ..Default::default()
        })
    };
    let mut old_view = view(&old, &old_app, base);
    let mut new_view = view(&new, &new_app, head);
    let archives = opts.images.iter().map(|(s, _)| s.clone()).collect();
    let base_version = old_view.version.clone();
    let mut notes = Vec::new();
    for (rev, side) in [(base, &mut old_view), (head, &mut new_view)] {
        // The head's version, when the base has it too, was published with other content.
        if rev == base || side.version != base_version {
            if let Some(published) = published_view(ws, opts, connect, rev).await {
                pins::take_published(side, &published);
            }
        }
        notes.extend(pins::resolve(side, &opts.platform, connect, &archives).await);
    }
    let mut d = diff(&old_view, &new_view);
    d.notes = notes;
    Ok(Some(d))
}

/// Called when the app folder changed and its `margo.yaml` kept its version: a finding at
/// the `version:` line of the head's `margo.yaml` when that version is published, since
/// versions are immutable and the push after the merge would be refused.
async fn stale_version(
    ws: &Workspace,
    opts: &CiOptions,
    connect: &Connect,
    head: &str,
) -> Result<Option<Finding>> {
    let source = ws.source(Some(head))?;
    let mut config = Config::load(&source)?;
    let app = std::path::PathBuf::from(config.app.clone().unwrap_or_else(|| ".".into()));
    let file = app.join(crate::margo::app::FILE_NAME);
    let Some(bytes) = source.read(&file)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap_or_default();
    let Some(version) = doc["metadata"]["version"].as_str().map(str::to_string) else {
        return Ok(None);
    };
    let reference = package_reference(&source, opts, &mut config)?;
    let target = Target::parse(&reference)?;
    let store = Store::open(&target.repo, connect).await?;
    let tag = target.tag.clone().unwrap_or_default();
    if store.resolve(&tag).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(Finding {
        commit: head.to_string(),
        file: file.display().to_string(),
        problem: Problem {
            line: crate::margo::yamltree::line_of(&text, "version:").unwrap_or(1),
            path: "metadata.version".into(),
            message: format!(
                "the app changed but its version is still {version}, which is published as {reference}: versions are immutable, so the push after merging would be refused; bump metadata.version"
            ),
            warning: false,
        },
    }))
}

/// The package reference of the app's version as `source` has it, with the repository the
/// action's inputs or `config` name (written into `config`).
fn package_reference(source: &Source, opts: &CiOptions, config: &mut Config) -> Result<String> {
    let (package_repo, _) = repositories(opts, config, source)?;
    config.package_repository = Some(package_repo);
    pipeline::package_ref(source, config, None)
}

/// The package published for the app's version at `rev`, as the diff sees it; `None`
/// when there is none or it cannot be read (the diff then looks images up itself).
async fn published_view(
    ws: &Workspace,
    opts: &CiOptions,
    connect: &Connect,
    rev: &str,
) -> Option<AppView> {
    let source = ws.source(Some(rev)).ok()?;
    let mut config = Config::load(&source).ok()?;
    let reference = package_reference(&source, opts, &mut config).ok()?;
    read_side(ws, &reference, connect).await.ok()
}

/// Renders at `rev`; a package not published yet renders with placeholder digests.
async fn render_for_review(
    ws: &Workspace,
    rev: &str,
    opts: &CiOptions,
    connect: &Connect,
) -> Result<(Side, Vec<Rendered>, Option<String>)> {
    let source = ws.source(Some(rev))?;
    let mut config = Config::load(&source)?;
    let reference = package_reference(&source, opts, &mut config)?;
    let req = RenderRequest {
        at: Some(rev.to_string()),
        options: RenderOptions::default(),
        package: Some(reference.clone()),
        connect: connect.clone(),
    };
    let (docs, note) = match pipeline::render_state(ws, &req).await {
        Ok(state) => (state.docs, None),
        Err(Error::NotFound { .. }) => {
            let repo = ws.repo("margo-gitops ci")?;
            let package =
                package::placeholder_package(&reference, connect.plain_http || config.plain_http)?;
            let git = repo.commit(rev).ok();
            let options = RenderOptions::default();
            let docs = render::render(&source, &config, &options, &package, git.as_ref())?;
            (
                docs,
                Some(format!(
                    "`{reference}` is not published yet: its digests are placeholders here"
                )),
            )
        }
        Err(e) => return Err(e),
    };
    Ok((
        Side {
            label: short(rev).to_string(),
            documents: docs.iter().map(|d| d.text.clone()).collect(),
        },
        docs,
        note,
    ))
}

/// Puts `body` (which carries [`COMMENT_MARKER`]) on the pull request: the comment of an
/// earlier run is updated in place. Without a token, or with one that may not write here
/// (a pull request from a fork), nothing is written and the outcome says why.
pub async fn post_comment(actions: &Actions, number: u64, body: &str) -> Result<CommentOutcome> {
    let Some(token) = actions.token.as_ref() else {
        return Ok(CommentOutcome::NotAllowed(
            "no token: set the action's `token` input or GITHUB_TOKEN".into(),
        ));
    };
    let gh = GitHub::new(
        &actions.api_url,
        &actions.graphql_url,
        token,
        &actions.repository,
    )?;
    gh.upsert_comment(number, COMMENT_MARKER, body).await
}
