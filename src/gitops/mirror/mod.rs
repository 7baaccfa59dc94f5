//! `mirror`: the registry as a faithful mirror of the git history of the desired state.
//!
//! Walks the branch's first-parent history with gix. Every commit whose desired-state
//! inputs (the config, the app's `margo.yaml`, the templates and values it names) differ
//! from its first parent's becomes one version, rendered from that commit's own tree
//! with the package its `margo.yaml` version names, exactly as `desired-state commit`
//! would publish it; versions chain through their `previous` digest. Rendering is
//! reproducible, so a missing version is restored with the digest it had.
//!
//! Cost follows what is new: a no-op run on an up-to-date mirror reads the tag list and
//! `desired` and stops, a constant number of requests whatever the history's length. The
//! tag list says which versions exist; only the missing ones are rendered and published
//! (about seven requests each), chained to the digest of the version before them (one
//! request, none when `desired` holds it). `--verify-existing` renders every version and
//! checks each existing one against the registry. `desired` ends at the newest version.
//! A `desired` on a commit that left the branch (a force push) is reported and left alone
//! unless `--allow-rewrite`.
//!
//! Signing (`--sign`): the version `desired` moves to is signed before it moves, unless it
//! carries this signer's signature already; that is the version every device reads. The
//! signer renders it (also when its tag exists) and signs only what holds exactly that. `--sign-all` signs
//! every version the run publishes too, each before its tag names it, for whoever follows
//! a version tag instead. One keyless certificate serves the whole run (one Fulcio
//! request, one Rekor entry per signature).
//!
//! [`history`] reads the changed commits from git; [`chain`] renders and publishes them.

mod chain;
mod history;

use std::collections::BTreeSet;

use serde::Serialize;

use crate::desired::config::Config;
use crate::desired::render::RenderOptions;
use crate::desired::source::Source;
use crate::desired::versions::{self, DESIRED_TAG};
use crate::error::{Error, Result};
use crate::git::GitRepo;
use crate::oci::blocking;
use crate::oci::reference::Repo;
use crate::oci::store::{Connect, Store};
use crate::signing::mode::{SignMode, SignOptions};
use crate::signing::signer::Signer;

use chain::{Link, Registry};
use history::History;

pub struct MirrorRequest {
    pub to: Repo,
    /// The branch (or any revision) to mirror; HEAD by default.
    pub branch: Option<String>,
    /// Mirror only the commits after this one.
    pub since: Option<String>,
    /// The package repository; the version tag comes from each commit's margo.yaml.
    pub package_repository: Option<String>,
    pub skip_missing: bool,
    pub allow_rewrite: bool,
    /// Render every version and check the existing ones against the registry.
    pub verify_existing: bool,
    pub options: RenderOptions,
    pub connect: Connect,
    /// The repository's public URL, for the `source` annotation.
    pub source_url: Option<String>,
    /// How versions are signed: the one `desired` moves to always (before it moves), and
    /// with `sign_all` every version this run publishes (before its tag names it).
    pub sign: SignOptions,
    pub sign_all: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub commit: String,
    pub subject: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mirrored {
    pub repository: String,
    /// Versions this run published.
    pub published: Vec<String>,
    /// Versions that were there already, with the expected content.
    pub present: usize,
    pub skipped: Vec<Skipped>,
    pub desired: Option<String>,
    pub desired_moved: bool,
    /// True when the mirror was found up to date without rendering anything.
    pub up_to_date: bool,
    /// Versions this run signed.
    pub signed: Vec<String>,
}

pub async fn mirror(repo: &GitRepo, req: &MirrorRequest) -> Result<Mirrored> {
    // A bad key or a missing identity token stops the run before anything is pushed.
    if matches!(req.sign.mode, SignMode::Pgp(_)) {
        return Err(Error::Usage(
            "--sign pgp: signs package archives only; sign desired-state versions with \
             --sign keyless or --sign key:PATH"
                .into(),
        ));
    }
    let signer = blocking(|| Signer::new(&req.sign))?;
    if req.sign_all && signer.is_none() {
        return Err(Error::Usage(
            "--sign-all: say how to sign (--sign keyless or --sign key:PATH)".into(),
        ));
    }
    let tip = repo.resolve(req.branch.as_deref().unwrap_or("HEAD"))?;
    let history = History::read(repo, &tip, req.since.as_deref())?;
    let mut connect = req.connect.clone();
    let tip_config = Config::load(&Source::Commit {
        repo,
        commit: tip.clone(),
    })?;
    connect.plain_http |= tip_config.plain_http;
    let store = Store::open_for_push(&req.to, &connect).await?;
    let tags: BTreeSet<String> = store.tags().await?.into_iter().collect();
    let current = match store.manifest(DESIRED_TAG).await? {
        Some(m) => Some(versions::existing(&m)?),
        None => None,
    };
    let mut result = Mirrored {
        repository: req.to.to_string(),
        ..Default::default()
    };
    check_rewrite(repo, req, &tip, current.as_ref())?;
    let changes = &history.changes;
    let at_last = |c: &versions::Existing| {
        changes.last().map(|l| l.git.commit.as_str()) == c.revision.as_deref()
    };
    if let (Some(last), Some(cur)) = (changes.last(), &current) {
        if !req.verify_existing && changes.iter().all(|c| tags.contains(&c.tag)) && at_last(cur) {
            result.up_to_date = true;
            result.present = changes.len();
            result.desired = Some(last.tag.clone());
            return Ok(result);
        }
    }
    // Render what is new (everything with --verify-existing) before anything is pushed: a
    // missing package or a broken commit stops the run with the registry untouched.
    // The head too when a signer may have to sign it on its way to `desired`: a signer
    // signs only what it rendered (or checked against its rendering), never what it merely
    // found under a tag.
    let head = changes.last();
    let sign_head = signer.is_some()
        && head.is_some_and(|h| {
            tags.contains(&h.tag)
                && current.as_ref().and_then(|c| c.revision.as_deref())
                    != Some(h.git.commit.as_str())
        });
    let to_render: Vec<_> = changes
        .iter()
        .filter(|c| {
            req.verify_existing
                || !tags.contains(&c.tag)
                || (sign_head && head.is_some_and(|h| std::ptr::eq(h, *c)))
        })
        .collect();
    let (rendered, mut missing) = chain::render_all(repo, req, &to_render, &connect).await?;
    // A version that is there stays in the chain even when its package is gone (it is
    // linked as the tag list says, not rendered, so it is not signed).
    // (`--verify-existing` still reports it: it was asked to check every version.)
    missing.retain(|m| {
        req.verify_existing
            || !changes
                .iter()
                .any(|c| c.git.short_commit == m.commit && tags.contains(&c.tag))
    });
    if !missing.is_empty() && !req.skip_missing {
        return Err(missing_packages(&missing));
    }
    let links = link(changes, rendered, &missing);
    result.skipped = missing;
    let previous = match (&req.since, &current) {
        (Some(_), Some(cur)) => Some(cur.digest.clone()),
        _ => None,
    };
    let reg = Registry {
        store: &store,
        tags: &tags,
        desired: current
            .as_ref()
            .and_then(|c| Some((c.version.clone()?, c.digest.clone()))),
    };
    let sign_new = signer.as_ref().filter(|_| req.sign_all);
    let head =
        chain::publish_chain(&reg, req, &connect, &links, previous, sign_new, &mut result).await?;
    if let Some(head) = head {
        result.desired = Some(head.tag.clone());
        result.desired_moved =
            move_desired(&store, head, current.as_ref(), signer.as_ref(), &mut result).await?;
    }
    Ok(result)
}

/// Refuses a `desired` on a commit that left the branch, unless `--allow-rewrite`.
fn check_rewrite(
    repo: &GitRepo,
    req: &MirrorRequest,
    tip: &str,
    current: Option<&versions::Existing>,
) -> Result<()> {
    let Some(rev) = current.and_then(|c| c.revision.as_deref()) else {
        return Ok(());
    };
    if repo.is_ancestor(rev, tip) == Some(true) || req.allow_rewrite {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "history was rewritten: `desired` holds commit {}, which is not in the history of {}",
        &rev[..rev.len().min(7)],
        req.branch.as_deref().unwrap_or("HEAD")
    ))
    .with_hint(
        "check the force push; --allow-rewrite mirrors the new history and moves `desired` to it",
    ))
}

/// The error for commits whose package is not published.
fn missing_packages(missing: &[Skipped]) -> Error {
    let list: Vec<String> = missing
        .iter()
        .map(|m| format!("{} {} ({})", m.commit, m.subject, m.reason))
        .collect();
    Error::NotFound {
        what: format!(
            "the packages of {} commit(s): {}",
            missing.len(),
            list.join("; ")
        ),
        hint: Some("publish them, or pass --skip-missing to mirror the others".into()),
    }
}

/// The chain: every change, in order, rendered or trusted to the tag list; the commits
/// whose package is missing are left out.
fn link<'a>(
    changes: &'a [history::Change],
    rendered: Vec<Link<'a>>,
    missing: &[Skipped],
) -> Vec<Link<'a>> {
    let skipped: BTreeSet<&str> = missing.iter().map(|m| m.commit.as_str()).collect();
    let mut rendered = rendered.into_iter().peekable();
    let mut links = Vec::new();
    for change in changes {
        match rendered.peek() {
            Some(l) if std::ptr::eq(l.change, change) => links.extend(rendered.next()),
            _ if skipped.contains(change.git.short_commit.as_str()) => {}
            _ => links.push(Link {
                change,
                planned: None,
            }),
        }
    }
    links
}

/// Points `desired` at the chain's head unless it is there, signing the head first when
/// a signer is given (and has not signed it); true when it moved.
async fn move_desired(
    store: &Store,
    head: chain::Head,
    current: Option<&versions::Existing>,
    signer: Option<&Signer>,
    result: &mut Mirrored,
) -> Result<bool> {
    let at_head = current.is_some_and(|c| match &head.digest {
        Some(d) => *d == c.digest,
        None => c.revision.as_deref() == Some(head.commit.as_str()),
    });
    if at_head {
        return Ok(false);
    }
    let manifest = match head.manifest {
        Some(m) => m,
        None => store
            .manifest(&head.tag)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("version {}", head.tag),
                hint: Some("it left the registry during this run: mirror again".into()),
            })?,
    };
    if let Some(signer) = signer.filter(|_| !result.signed.contains(&head.tag)) {
        if !head.checked {
            return Err(Error::invalid(format!(
                "version {} was not rendered by this run (its package is missing?): not \
                 signed, `desired` not moved",
                head.tag
            ))
            .with_hint("publish its package again, then mirror again"));
        }
        if signer
            .attach_unless_signed(store, &manifest)
            .await?
            .is_some()
        {
            result.signed.push(head.tag.clone());
        }
    }
    store.put_manifest_tagged(&manifest, DESIRED_TAG).await?;
    Ok(true)
}
