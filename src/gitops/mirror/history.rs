//! What git alone says about a branch: which of its first-parent commits change the
//! desired state's inputs (no registry, no rendering), and the version tag of each.
//!
//! The inputs of a commit are the config file when it has one, and the files the config
//! (or the environment that stands in for it: the Action's `app`, `values` and `template`
//! inputs) names: the app's `margo.yaml`, the templates and the values files. A commit
//! where neither the config file nor the app's `margo.yaml` exists has no inputs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::desired::config::{Config, FILE_NAME};
use crate::desired::source::Source;
use crate::desired::templates;
use crate::desired::versions;
use crate::error::{Error, Result};
use crate::git::{CommitInfo, GitRepo};

/// A commit whose desired-state inputs changed, with its version tag.
pub(super) struct Change {
    pub tag: String,
    pub git: CommitInfo,
    /// Its place on the first-parent chain, from 1: the version's `manifestVersion`.
    pub position: u64,
}

/// The commits of a branch that change the inputs, oldest first.
pub(super) struct History {
    pub changes: Vec<Change>,
}

/// The files whose content makes a commit's desired state, with their blob ids; empty
/// when the commit has none.
fn inputs(repo: &GitRepo, commit: &str) -> Result<BTreeMap<String, String>> {
    let mut ids = BTreeMap::new();
    let config_id = repo.blob_id(commit, Path::new(FILE_NAME))?;
    let config = Config::load(&Source::Commit {
        repo,
        commit: commit.to_string(),
    })?;
    let app = PathBuf::from(config.app.clone().unwrap_or_else(|| ".".into()));
    let app_file = app.join(crate::margo::app::FILE_NAME);
    let app_id = repo.blob_id(commit, &app_file)?;
    match (config_id, app_id) {
        (None, None) => return Ok(ids),
        (Some(id), _) => {
            ids.insert(FILE_NAME.to_string(), id);
        }
        (None, Some(_)) => {}
    }
    let mut paths: BTreeSet<PathBuf> = BTreeSet::from([app_file]);
    let builtin = |t: &str| templates::BUILTIN.iter().any(|(n, _, _)| *n == t);
    let configured = config
        .deployments
        .iter()
        .filter_map(|d| d.template.as_ref());
    for t in config.template.iter().chain(configured) {
        if !builtin(t) {
            paths.insert(PathBuf::from(t));
        }
    }
    for d in &config.deployments {
        paths.extend(d.values.iter().map(PathBuf::from));
    }
    paths.extend(config.default_values.iter().map(PathBuf::from));
    for p in paths {
        let id = repo.blob_id(commit, &p)?.unwrap_or_else(|| "-".into());
        ids.insert(p.display().to_string(), id);
    }
    Ok(ids)
}

impl History {
    /// The changes on the first-parent chain of `tip` (after `since`, when given). A
    /// chain where no commit has any input is an error that says what was looked for.
    pub fn read(repo: &GitRepo, tip: &str, since: Option<&str>) -> Result<History> {
        let mut chain = repo.first_parents(tip)?; // newest first
        let total = chain.len() as u64;
        let positions: HashMap<String, u64> = chain
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), total - i as u64))
            .collect();
        if let Some(since) = since {
            let since = repo.resolve(since)?;
            let cut = chain.iter().position(|c| *c == since).ok_or_else(|| {
                Error::Usage(format!(
                    "--since {since} is not on the first-parent history of the branch"
                ))
            })?;
            chain.truncate(cut + 1); // keep `since` to compare its successor with
        }
        chain.reverse(); // oldest first
        let mut changes = Vec::new();
        let mut used = BTreeSet::new();
        let mut before: Option<BTreeMap<String, String>> = None;
        let mut recognised = false;
        for (i, c) in chain.iter().enumerate() {
            let ids = inputs(repo, c).map_err(|e| in_commit(repo, c, e))?;
            let differs = before.as_ref() != Some(&ids);
            let is_since_itself = since.is_some() && i == 0;
            let nothing_to_render = ids.is_empty();
            recognised |= !nothing_to_render;
            before = Some(ids);
            if !differs || nothing_to_render || is_since_itself {
                continue;
            }
            let git = repo.commit(c)?;
            let mut tag = versions::version_tag(git.time);
            if !used.insert(tag.clone()) {
                tag = format!("{tag}-{}", git.short_commit);
                used.insert(tag.clone());
            }
            changes.push(Change {
                tag,
                git,
                position: positions.get(c).copied().unwrap_or(0),
            });
        }
        if !recognised && !chain.is_empty() {
            return Err(no_inputs(repo, tip));
        }
        Ok(History { changes })
    }
}

/// Why a history has nothing to mirror: what was looked for, and where.
fn no_inputs(repo: &GitRepo, tip: &str) -> Error {
    let app = Config::load(&Source::Commit {
        repo,
        commit: tip.to_string(),
    })
    .ok()
    .and_then(|c| c.app)
    .unwrap_or_else(|| ".".into());
    let margo = Path::new(&app).join(crate::margo::app::FILE_NAME);
    Error::invalid(format!(
        "no commit of this history has desired-state inputs: neither {FILE_NAME} nor {} is in any of them",
        margo.display()
    ))
    .with_hint("name the app folder with the action's `app` input (MARGO_GITOPS_APP) or in .margo-gitops.yaml")
}

/// Puts the commit in front of an error about rendering it.
pub(super) fn in_commit(repo: &GitRepo, commit: &str, e: Error) -> Error {
    let label = repo
        .commit(commit)
        .map(|c| format!("commit {} ({})", c.short_commit, c.subject))
        .unwrap_or_else(|_| format!("commit {commit}"));
    e.in_context(&label)
}
