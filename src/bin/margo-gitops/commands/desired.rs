//! `desired-state render|validate|commit|show|diff|log|verify`.

use anyhow::Context as _;
use margo_gitops::desired::pipeline::{self, Workspace};
use margo_gitops::desired::{diff as semantic, versions};
use margo_gitops::gitops::log as history;
use margo_gitops::margo::validate;

use super::{connect, fail_on, render_request, sign_options};
use crate::args::{
    CommitArgs, DesiredShowArgs, DesiredVerifyArgs, DiffArgs, LogArgs, RenderArgs, ValidateArgs,
};
use crate::report;

pub async fn render(a: RenderArgs) -> anyhow::Result<()> {
    let ws = Workspace::discover()?;
    let req = render_request(a.template, &a.registry)?;
    let state = pipeline::render_state(&ws, &req)
        .await
        .context("desired-state render")?;
    report::desired::rendered(&state.docs, a.output.as_deref())
}

pub fn validate(a: ValidateArgs) -> anyhow::Result<()> {
    let reports = validate::validate_files(&a.files);
    let errors = report::desired::validated(&reports, a.json)?;
    fail_on(errors, |n| {
        format!(
            "{n} problem{} in {} file(s)",
            if n == 1 { "" } else { "s" },
            a.files.len()
        )
    })
}

pub async fn commit(a: CommitArgs) -> anyhow::Result<()> {
    let ws = Workspace::discover()?;
    let req = render_request(a.template, &a.registry)?;
    let sign = sign_options(a.signing);
    let (committed, warnings) = pipeline::commit(&ws, &req, a.to.as_deref(), &sign)
        .await
        .context("desired-state commit")?;
    report::desired::warnings(&warnings);
    report::desired::committed(&committed, a.json)?;
    Ok(())
}

pub async fn show(a: DesiredShowArgs) -> anyhow::Result<()> {
    let ws = Workspace::discover()?;
    let repo = ws.desired_repository(a.repository.as_deref())?;
    let shown = versions::show(&repo, &ws.connect(&connect(&a.registry)?)?)
        .await
        .with_context(|| format!("desired-state show {repo}"))?;
    report::desired::shown(&shown, a.json)?;
    Ok(())
}

pub async fn diff(a: DiffArgs) -> anyhow::Result<()> {
    let ws = Workspace::discover()?;
    let req = render_request(a.template, &a.registry)?;
    let from = pipeline::diff_side(&ws, &a.from, &req)
        .await
        .with_context(|| format!("reading {}", a.from))?;
    let to = pipeline::diff_side(&ws, &a.to, &req)
        .await
        .with_context(|| format!("reading {}", a.to))?;
    report::desired::diffed(&semantic::diff(&from, &to)?, a.json)?;
    Ok(())
}

pub async fn log(a: LogArgs) -> anyhow::Result<()> {
    let ws = Workspace::discover()?;
    let repo = ws.desired_repository(a.repository.as_deref())?;
    let connect = ws.connect(&connect(&a.registry)?)?;
    let spec = a.signer.spec();
    let signed_by = match spec.is_empty() {
        true => None,
        false => Some(spec.requirement()?),
    };
    let entries = history::log(
        ws.repo.as_ref(),
        &repo,
        &connect,
        a.verify,
        a.branch.as_deref(),
        signed_by.as_ref(),
    )
    .await
    .with_context(|| format!("desired-state log {repo}"))?;
    let breaks = report::desired::logged(&entries, a.json)?;
    fail_on(breaks, |n| format!("{n} break(s) in the version history"))
}

pub async fn verify(a: DesiredVerifyArgs) -> anyhow::Result<()> {
    let requirement = a.signer.spec().requirement()?;
    let verified = versions::verify(&a.reference, &requirement, &connect(&a.registry)?)
        .await
        .with_context(|| format!("desired-state verify {}", a.reference))?;
    report::package::verified(&verified, a.json)?;
    Ok(())
}
