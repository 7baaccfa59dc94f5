//! `mirror`, `hook pre-push|pre-commit|install|uninstall` and `ci`.

use std::io::{IsTerminal as _, Read as _};

use anyhow::Context as _;
use margo_gitops::desired::pipeline::Workspace;
use margo_gitops::desired::render::RenderOptions;
use margo_gitops::git;
use margo_gitops::gitops::ci::{self, review, Actions, CiOptions, Job};
use margo_gitops::gitops::hook;
use margo_gitops::gitops::mirror::{self, MirrorRequest};
use margo_gitops::Error;

use super::{connect, sign_options};
use crate::args::{self, CiArgs, InstallArgs, MirrorArgs, PreCommitArgs, PrePushArgs};
use crate::report;

pub async fn mirror(a: MirrorArgs) -> anyhow::Result<()> {
    let ws = Workspace::discover()?;
    let repo = ws.repo("mirror")?;
    let req = MirrorRequest {
        to: ws.desired_repository(a.to.as_deref())?,
        branch: a.branch,
        since: a.since,
        package_repository: a.package,
        skip_missing: a.skip_missing,
        allow_rewrite: a.allow_rewrite,
        verify_existing: a.verify_existing,
        options: RenderOptions::default(),
        connect: ws.connect(&connect(&a.registry)?)?,
        source_url: git::discover(&ws.root).and_then(|g| g.source),
        sign: sign_options(a.signing),
        sign_all: a.sign_all,
    };
    let mirrored = mirror::mirror(repo, &req).await.context("mirror")?;
    report::gitops::mirrored(&mirrored, a.json)?;
    Ok(())
}

pub async fn pre_push(a: PrePushArgs) -> anyhow::Result<()> {
    let ws = Workspace::discover()?;
    let repo = ws.repo("hook pre-push")?;
    let mut input = String::new();
    if !std::io::stdin().is_terminal() {
        std::io::stdin()
            .read_to_string(&mut input)
            .context("reading git's ref updates")?;
    }
    let updates = hook::updates(repo, &input)?;
    let remote = a
        .remote
        .or_else(|| std::env::var("PRE_COMMIT_REMOTE_NAME").ok())
        .unwrap_or_else(|| "origin".into());
    let connect = connect(&a.registry)?;
    let packages = hook::PackageRepository::default();
    let findings = hook::pre_push(
        repo,
        &remote,
        &updates,
        a.check_registry,
        &connect,
        &packages,
    )
    .await?;
    report::gitops::findings(&findings, "push")
}

pub async fn pre_commit(a: PreCommitArgs) -> anyhow::Result<()> {
    let ws = Workspace::discover()?;
    let connect = connect(&a.registry)?;
    let findings = hook::pre_commit(&ws.root, &a.files, a.check_registry, &connect).await?;
    report::gitops::findings(&findings, "commit")
}

pub fn install(a: InstallArgs) -> anyhow::Result<()> {
    let ws = Workspace::discover()?;
    report::gitops::hook_outcome(&hook::install(ws.repo("hook install")?, a.force)?)?;
    Ok(())
}

pub fn uninstall() -> anyhow::Result<()> {
    let ws = Workspace::discover()?;
    report::gitops::hook_outcome(&hook::uninstall(ws.repo("hook uninstall")?)?)?;
    Ok(())
}

/// `margo-gitops ci`: runs the event's job, then writes outputs, summary and annotations,
/// and puts the review on the pull request.
pub async fn ci(a: CiArgs) -> anyhow::Result<()> {
    let ws = Workspace::discover()?;
    let mut sign = sign_options(a.signing);
    sign.tokens.mask_in_actions = true;
    let actions = Actions::from_env(a.token)?;
    let mut images = a.images;
    if let Ok(text) = std::env::var("MARGO_GITOPS_IMAGES") {
        images.extend(
            args::parse_image_lines(&text).map_err(|e| e.in_context("MARGO_GITOPS_IMAGES"))?,
        );
    }
    let opts = CiOptions {
        sign,
        images,
        build: a.build,
        platform: a.platform,
        cache_dir: a.cache_dir,
        connect: connect(&a.registry)?,
        package_repository: a.package_repository.filter(|s| !s.is_empty()),
        desired_repository: a.desired_repository.filter(|s| !s.is_empty()),
        registry: a
            .registry_namespace
            .filter(|s| !s.is_empty())
            .or_else(|| actions.default_registry()),
    };
    let job = match ci::run(&actions, &ws, &opts).await {
        Ok(job) => job,
        Err(e) => {
            if let Some(summary) = &actions.summary {
                ci::write_summary(summary, &report::ci::failed(&e))?;
            }
            return Err(e.into());
        }
    };
    let (failure, summary) = match &job {
        Job::Skipped {
            event_name,
            git_ref,
            default_branch,
        } => (
            None,
            report::ci::skipped(event_name, git_ref, default_branch),
        ),
        Job::Push(p) => {
            report::ci::push_log(p);
            if let Some(path) = &actions.output {
                ci::write_outputs(path, &p.outputs())?;
            }
            (None, report::ci::push_summary(&actions, p))
        }
        Job::Resigned(r) => {
            report::ci::resigned_log(r);
            (None, report::ci::resigned_summary(r))
        }
        Job::Review(r) => {
            let body = report::ci::review_comment(r);
            let outcome = review::post_comment(&actions, r.number, &body).await?;
            report::ci::review_log(r, &outcome);
            (
                r.failure.clone(),
                report::ci::review_summary(&body, &outcome),
            )
        }
    };
    if let Some(path) = &actions.summary {
        ci::write_summary(path, &summary)?;
    }
    match failure {
        Some(reason) => Err(Error::invalid(reason).into()),
        None => Ok(()),
    }
}
