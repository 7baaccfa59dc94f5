//! The push job: publish the package when the app changed (or its version is missing),
//! then a desired-state version for every pushed commit, and say what was published.

use std::path::{Path, PathBuf};

use super::{repositories, Actions, CiOptions, Job};
use crate::desired::commit::Committed;
use crate::desired::config::Config;
use crate::desired::pipeline::{self, RenderRequest, Workspace};
use crate::desired::render::RenderOptions;
use crate::desired::source::Source;
use crate::desired::versions;
use crate::error::{Error, Result};
use crate::git::CommitInfo;
use crate::gitops::mirror::{self, MirrorRequest, Mirrored};
use crate::oci::digest::Digest;
use crate::oci::reference::Target;
use crate::oci::store::{Connect, Store};
use crate::package::plan::Format;
use crate::package::prepare::{self, PrepareOptions};
use crate::package::publish::{self, PublishOptions};
use crate::signing::mode::SignOptions;

const ZERO: &str = "0000000000000000000000000000000000000000";

/// What a push published.
pub struct Pushed {
    /// A `workflow_dispatch` backfill of the whole history.
    pub backfill: bool,
    pub head: CommitInfo,
    pub package_ref: String,
    pub package_digest: Digest,
    pub package: PackageOutcome,
    pub desired_repository: String,
    /// The version tag of the head commit, and its digest (`None` when no version of it
    /// was published, e.g. its package is missing).
    pub version_tag: String,
    pub desired_digest: Option<Digest>,
    /// The version `desired-state commit` published, when the push was not mirrored.
    pub committed: Option<Committed>,
    /// What mirroring the pushed commits did.
    pub mirrored: Option<Mirrored>,
}

/// What became of the package.
pub enum PackageOutcome {
    /// Its version was there and the push did not change the app.
    AlreadyPublished,
    /// Published now, with the signature's referrer when it was signed.
    Published { signature: Option<Digest> },
}

impl Pushed {
    /// The action's outputs.
    pub fn outputs(&self) -> Vec<(String, String)> {
        let pair = |k: &str, v: String| (k.to_string(), v);
        vec![
            pair("package-ref", self.package_ref.clone()),
            pair("package-digest", self.package_digest.to_string()),
            pair(
                "desired-ref",
                format!("{}:{}", self.desired_repository, self.version_tag),
            ),
            pair(
                "desired-digest",
                self.desired_digest
                    .as_ref()
                    .map(Digest::to_string)
                    .unwrap_or_default(),
            ),
            pair("desired-tag", self.version_tag.clone()),
        ]
    }
}

pub(super) async fn on_push(
    actions: &Actions,
    ws: &Workspace,
    opts: &CiOptions,
    backfill: bool,
) -> Result<Job> {
    let repo = ws.repo("margo-gitops ci")?;
    let default_branch = actions.event["repository"]["default_branch"]
        .as_str()
        .unwrap_or("main");
    if actions.event_name == "push" && actions.git_ref != format!("refs/heads/{default_branch}") {
        return Ok(Job::Skipped {
            git_ref: actions.git_ref.clone(),
            default_branch: default_branch.to_string(),
        });
    }
    let head = repo.resolve(&actions.sha)?;
    let head_info = repo.commit(&head)?;
    let before = actions.event["before"]
        .as_str()
        .filter(|b| *b != ZERO)
        .and_then(|b| repo.resolve(b).ok())
        .filter(|b| repo.is_ancestor(b, &head) == Some(true));

    // The package of the version HEAD names.
    let head_source = Source::Commit {
        repo,
        commit: head.clone(),
    };
    let mut head_config = Config::load(&head_source)?;
    let mut connect = opts.connect.clone();
    connect.plain_http |= head_config.plain_http;
    let (package_repo, desired_repo) = repositories(opts, &head_config, &head_source)?;
    head_config.package_repository = Some(package_repo.clone());
    let package_ref = pipeline::package_ref(&head_source, &head_config, None)?;
    let target = Target::parse(&package_ref)?;
    let tag = target.tag.clone().unwrap_or_default();
    let existing = Store::open(&target.repo, &connect)
        .await?
        .resolve(&tag)
        .await?;
    let app = PathBuf::from(head_config.app.clone().unwrap_or_else(|| ".".into()));
    let app_changed = match &before {
        Some(b) => repo.entry_id(b, &app)? != repo.entry_id(&head, &app)?,
        None => true,
    };
    let (package_digest, package) = match existing {
        Some(d) if !app_changed => (d, PackageOutcome::AlreadyPublished),
        _ => publish_package(ws, opts, &connect, &package_repo, &app).await?,
    };

    // Desired state: a version per pushed commit.
    let desired_target = Target::parse_repository(&desired_repo)?;
    let since = if backfill { None } else { before.clone() };
    let (committed, mirrored) = if since.is_none() && !backfill {
        let req = RenderRequest {
            at: Some(head.clone()),
            options: RenderOptions::default(),
            package: Some(package_ref.clone()),
            connect: connect.clone(),
        };
        let (committed, _) = pipeline::commit(ws, &req, Some(&desired_repo)).await?;
        (Some(committed), None)
    } else {
        let req = MirrorRequest {
            to: desired_target.clone(),
            branch: Some(head.clone()),
            since,
            package_repository: Some(package_repo.clone()),
            skip_missing: true,
            allow_rewrite: false,
            options: RenderOptions::default(),
            connect: connect.clone(),
            source_url: Some(format!("{}/{}", actions.server_url, actions.repository)),
        };
        (None, Some(mirror::mirror(repo, &req).await?))
    };
    let version_tag = versions::version_tag(head_info.time);
    let desired_digest = Store::open(&desired_target, &connect)
        .await?
        .resolve(&version_tag)
        .await?;
    Ok(Job::Push(Box::new(Pushed {
        backfill,
        head: head_info,
        package_ref,
        package_digest,
        package,
        desired_repository: desired_repo,
        version_tag,
        desired_digest,
        committed,
        mirrored,
    })))
}

/// Prepares the app (into a temporary folder) and publishes it, signed as the action says.
async fn publish_package(
    ws: &Workspace,
    opts: &CiOptions,
    connect: &Connect,
    package_repo: &str,
    app: &Path,
) -> Result<(Digest, PackageOutcome)> {
    let out = tempfile::tempdir().map_err(Error::io("create", std::env::temp_dir()))?;
    let prepared = prepare::prepare(&PrepareOptions {
        app_dir: ws.root.join(app),
        out_dir: out.path().to_path_buf(),
        platform: opts.platform.clone(),
        images: opts.images.clone(),
        no_images: false,
        version: None,
        app_id: None,
        cache_dir: opts.cache_dir.clone(),
        connect: connect.clone(),
        sign: SignOptions::none(),
    })
    .await?;
    let published = publish::publish(&PublishOptions {
        input: prepared.archive_path,
        to: Target::parse_repository(package_repo)?,
        app_to: None,
        version: None,
        format: Format::Margo,
        extra_tags: Vec::new(),
        connect: connect.clone(),
        sign: opts.sign.clone(),
        replace: false,
    })
    .await?;
    let first = published
        .artifacts
        .into_iter()
        .next()
        .ok_or_else(|| Error::invalid("publish wrote no artifact"))?;
    Ok((
        first.digest,
        PackageOutcome::Published {
            signature: first.signature,
        },
    ))
}
