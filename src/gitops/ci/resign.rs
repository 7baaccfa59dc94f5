//! The schedule job: a fresh signature on the version `desired` holds, so that a device
//! whose policy has `maxAge` keeps accepting the desired state of a repository that has
//! not changed for a while. Nothing else changes: no tag moves, no version is published;
//! the new signature is one more referrer of the same manifest.
//!
//! A signature says "this workflow publishes this", so the job signs only what the
//! default branch itself publishes now: the version's commit must be in the branch's
//! history, and it must hold exactly what the branch's head renders (with the package its
//! `margo.yaml` names) as its own commit publishes it: the documents, the bundle and the
//! State Manifest byte for byte ([`versions::what_differs`]). A `desired` that someone moved
//! to anything else (an older version included) is refused, not laundered into a freshly
//! signed one.

use serde::Serialize;

use super::push::{desired_signing, Targets};
use super::{Actions, CiOptions};
use crate::desired::pipeline::{self, RenderRequest, Workspace};
use crate::desired::render::RenderOptions;
use crate::desired::versions::{self, ARTIFACT, DESIRED_TAG};
use crate::error::{Error, Result};
use crate::oci::blocking;
use crate::oci::digest::Digest;
use crate::oci::reference::Target;
use crate::oci::store::Store;
use crate::signing::signer::Signer;

/// What the schedule job signed.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resigned {
    pub repository: String,
    /// The version tag `desired` holds, and its digest.
    pub version: String,
    pub digest: Digest,
    /// The commit it was rendered from.
    pub revision: String,
    /// The new signature (a referrer of the version).
    pub signature: Digest,
}

pub(super) async fn on_schedule(
    actions: &Actions,
    ws: &Workspace,
    opts: &CiOptions,
) -> Result<Resigned> {
    let repo = ws.repo("margo-gitops ci")?;
    repo.require_whole_history()?;
    let head = repo.resolve(&actions.sha)?;
    let signer = blocking(|| Signer::new(&desired_signing(&opts.sign)))?.ok_or_else(|| {
        Error::Usage(
            "the schedule job re-signs the desired state: sign with keyless (the default in \
             GitHub Actions, with `id-token: write`) or key:PATH"
                .into(),
        )
    })?;
    let targets = Targets::at(repo, &head, opts)?;
    let to = Target::parse_repository(&targets.desired_repo)?;
    let store = Store::open_for_push(&to, &targets.connect).await?;
    let what = format!("{}:{DESIRED_TAG}", targets.desired_repo);
    let manifest = store
        .manifest(DESIRED_TAG)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: format!("desired state {what}"),
            hint: Some("nothing to re-sign: a push publishes the first version".into()),
        })?;
    if manifest.image()?.artifact_type.as_deref() != Some(ARTIFACT) {
        return Err(Error::invalid(format!(
            "{what} is not a desired-state version; not signed"
        )));
    }
    let existing = versions::existing(&manifest)?;
    let revision = existing
        .revision
        .clone()
        .filter(|r| r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()))
        .filter(|r| repo.is_ancestor(r, &head) == Some(true))
        .ok_or_else(|| {
            Error::invalid(format!(
                "{what} ({}) records no commit of this branch's history ({}); not signed",
                manifest.digest,
                existing.revision.as_deref().unwrap_or("none")
            ))
            .with_hint("check who moved `desired`; a push to the branch publishes a new version")
        })?;
    // What the branch's head renders, with the package its margo.yaml names.
    let req = RenderRequest {
        at: Some(head.clone()),
        options: RenderOptions::default(),
        package: Some(targets.package_ref.clone()),
        connect: targets.connect.clone(),
    };
    let rendered = pipeline::render_state(ws, &req).await?;
    // Exactly that, as the version of its own commit publishes it (its manifestVersion
    // that commit's position in the branch).
    let input = versions::VersionInput {
        to: &to,
        plain_http: targets.connect.plain_http,
        docs: &rendered.docs,
        git: &repo.commit(&revision)?,
        source: None,
        manifest_version: repo.first_parent_count(&revision)?,
    };
    if let Some(why) = versions::what_differs(&manifest, &input)? {
        return Err(Error::invalid(format!(
            "{what} ({}, commit {}) does not hold what the branch's head {} renders ({why}); \
             not signed",
            manifest.digest,
            &revision[..7],
            &head[..7.min(head.len())]
        ))
        .with_hint(
            "a push publishes the head's version; if none is pending, check who moved `desired`",
        ));
    }
    let signature = signer.attach(&store, &manifest).await?;
    Ok(Resigned {
        repository: targets.desired_repo,
        version: existing.version.unwrap_or_default(),
        digest: manifest.digest,
        revision,
        signature,
    })
}
