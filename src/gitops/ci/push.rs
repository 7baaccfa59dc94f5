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
use crate::signing::mode::{SignMode, SignOptions};

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
    let default_branch = actions.default_branch();
    // A push elsewhere, or a dispatch that names another branch (whose workflow and commits
    // no review approved): `desired` follows the default branch only.
    if actions.git_ref != format!("refs/heads/{default_branch}") {
        return Ok(Job::Skipped {
            event_name: actions.event_name.clone(),
            git_ref: actions.git_ref.clone(),
            default_branch: default_branch.to_string(),
        });
    }
    repo.require_whole_history()?;
    let head = repo.resolve(&actions.sha)?;
    let head_info = repo.commit(&head)?;
    let before = actions.event["before"]
        .as_str()
        .filter(|b| *b != ZERO)
        .and_then(|b| repo.resolve(b).ok())
        .filter(|b| repo.is_ancestor(b, &head) == Some(true));

    let target = Targets::at(repo, &head, opts)?;
    let desired_sign = desired_signing(&opts.sign);
    let (package_digest, package) =
        ensure_package(ws, opts, &target, before.as_deref(), &head).await?;
    // Desired state: a version per pushed commit, and per commit of an earlier push whose
    // job was cancelled or failed (everything after what `desired` holds).
    let since = match backfill {
        true => None,
        false => published_up_to(repo, &target, &head)
            .await?
            .or(before.clone()),
    };
    let (committed, mirrored) = if since.is_none() && !backfill {
        let req = RenderRequest {
            at: Some(head.clone()),
            options: RenderOptions::default(),
            package: Some(target.package_ref.clone()),
            connect: target.connect.clone(),
        };
        // Signed as the package is, before `desired` moves to it.
        let (committed, _) =
            pipeline::commit(ws, &req, Some(&target.desired_repo), &desired_sign).await?;
        (Some(committed), None)
    } else {
        let req = MirrorRequest {
            to: Target::parse_repository(&target.desired_repo)?,
            branch: Some(head.clone()),
            since,
            package_repository: Some(target.package_repo.clone()),
            skip_missing: true,
            allow_rewrite: false,
            verify_existing: false,
            options: RenderOptions::default(),
            connect: target.connect.clone(),
            source_url: Some(format!("{}/{}", actions.server_url, actions.repository)),
            // The version `desired` moves to; the others are history.
            sign: desired_sign,
            sign_all: false,
        };
        (None, Some(mirror::mirror(repo, &req).await?))
    };
    let version_tag = versions::version_tag(head_info.time);
    let desired_target = Target::parse_repository(&target.desired_repo)?;
    let desired_digest = Store::open(&desired_target, &target.connect)
        .await?
        .resolve(&version_tag)
        .await?;
    Ok(Job::Push(Box::new(Pushed {
        backfill,
        head: head_info,
        package_ref: target.package_ref,
        package_digest,
        package,
        desired_repository: target.desired_repo,
        version_tag,
        desired_digest,
        committed,
        mirrored,
    })))
}

/// The commit `desired` holds, when it is an ancestor of `head`: what is mirrored already
/// (a concurrency group cancels pending jobs, whose commits the next push then covers).
async fn published_up_to(
    repo: &crate::git::GitRepo,
    target: &Targets,
    head: &str,
) -> Result<Option<String>> {
    let store = Store::open(
        &Target::parse_repository(&target.desired_repo)?,
        &target.connect,
    )
    .await?;
    let Some(m) = store.manifest(versions::DESIRED_TAG).await? else {
        return Ok(None);
    };
    Ok(versions::existing(&m)?
        .revision
        .filter(|r| repo.is_ancestor(r, head) == Some(true)))
}

/// Where the push publishes, as the head commit's config (and the action's inputs) say.
pub(super) struct Targets {
    pub connect: Connect,
    pub package_repo: String,
    pub desired_repo: String,
    /// The package of the version the head's `margo.yaml` names.
    pub package_ref: String,
    /// The app folder.
    pub app: PathBuf,
}

impl Targets {
    pub(super) fn at(repo: &crate::git::GitRepo, head: &str, opts: &CiOptions) -> Result<Targets> {
        let source = Source::Commit {
            repo,
            commit: head.to_string(),
        };
        let mut config = Config::load(&source)?;
        let mut connect = opts.connect.clone();
        connect.plain_http |= config.plain_http;
        let (package_repo, desired_repo) = repositories(opts, &config, &source)?;
        config.package_repository = Some(package_repo.clone());
        Ok(Targets {
            package_ref: pipeline::package_ref(&source, &config, None)?,
            app: PathBuf::from(config.app.clone().unwrap_or_else(|| ".".into())),
            connect,
            package_repo,
            desired_repo,
        })
    }
}

/// The package of the head's version: kept when it is published and the app folder is
/// what it was made from, else prepared and published.
async fn ensure_package(
    ws: &Workspace,
    opts: &CiOptions,
    t: &Targets,
    before: Option<&str>,
    head: &str,
) -> Result<(Digest, PackageOutcome)> {
    let repo = ws.repo("margo-gitops ci")?;
    let target = Target::parse(&t.package_ref)?;
    let tag = target.tag.clone().unwrap_or_default();
    let store = Store::open(&target.repo, &t.connect).await?;
    let Some(manifest) = store.manifest(&tag).await? else {
        return publish_package(ws, opts, &t.connect, &t.package_repo, &t.app, head).await;
    };
    // What the app folder was made from: the commit the package records, when this clone
    // has it; else the push's `before`. A dispatch has no `before`, and a package made
    // from the same folder at another commit differs in its time stamps, so without this
    // it would be published again and refused as a changed version.
    // Only a full commit id of this branch's history counts (not `HEAD` or a branch name,
    // which would always match): the registry's word for what the package was made from,
    // which whoever may write the registry could change as they can change the tag itself;
    // what guards a device against that is the package's signature.
    let made_from = manifest
        .image()
        .ok()
        .and_then(|m| m.annotations)
        .and_then(|a| a.get(crate::oci::media::ANN_REVISION).cloned())
        .filter(|r| r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()))
        .filter(|r| repo.is_ancestor(r, head) == Some(true))
        .or_else(|| before.map(str::to_string));
    let app_changed = match made_from {
        Some(b) => repo.entry_id(&b, &t.app)? != repo.entry_id(head, &t.app)?,
        None => true,
    };
    match app_changed {
        false => Ok((manifest.digest, PackageOutcome::AlreadyPublished)),
        true => publish_package(ws, opts, &t.connect, &t.package_repo, &t.app, head).await,
    }
}

/// How desired-state versions are signed: as the package is, except that an OpenPGP key
/// signs package archives only; then the desired state goes unsigned, said in the log.
pub(super) fn desired_signing(sign: &SignOptions) -> SignOptions {
    if !matches!(sign.mode, SignMode::Pgp(_)) {
        return sign.clone();
    }
    eprintln!(
        "::warning title=margo-gitops::the desired state is published unsigned: an OpenPGP key \
         signs package archives only. Sign with keyless (or a key) for devices that verify \
         the desired state."
    );
    SignOptions::none()
}

/// Prepares the app as `head` holds it (exported into a temporary folder: no untracked
/// file, no `.git`, is in what is published or in a build's context) and publishes it,
/// signed as the action says.
async fn publish_package(
    ws: &Workspace,
    opts: &CiOptions,
    connect: &Connect,
    package_repo: &str,
    app: &Path,
    head: &str,
) -> Result<(Digest, PackageOutcome)> {
    let repo = ws.repo("margo-gitops ci")?;
    let tree = tempfile::tempdir().map_err(Error::io("create", std::env::temp_dir()))?;
    repo.export(head, tree.path())?;
    let out = tempfile::tempdir().map_err(Error::io("create", std::env::temp_dir()))?;
    let prepared = prepare::prepare(&PrepareOptions {
        app_dir: tree.path().join(app),
        out_dir: out.path().to_path_buf(),
        platform: opts.platform.clone(),
        images: opts.images.clone(),
        build: opts.build,
        no_images: false,
        version: None,
        app_id: None,
        cache_dir: opts.cache_dir.clone(),
        connect: connect.clone(),
        sign: SignOptions::none(),
        git: Some(repo.info(head)?),
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
