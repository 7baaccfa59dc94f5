//! `mirror`: the registry as a faithful mirror of the git history of the desired state.
//!
//! Walks the branch's first-parent history with gix. Every commit whose desired-state
//! inputs (the config, the app's `margo.yaml`, the templates and values it names) differ
//! from its first parent's becomes one version, rendered from that commit's own tree
//! with the package its `margo.yaml` version names, exactly as `desired-state commit`
//! would publish it; versions chain through their `previous` digest. Rendering is
//! reproducible, so a missing version is restored with the digest it had.
//!
//! Cost: a no-op run on an up-to-date mirror reads the tag list and `desired` and stops,
//! a constant number of requests whatever the history's length. Otherwise every version
//! is checked by resolving its digest, missing ones are published, and `desired` ends at
//! the newest version. A `desired` on a commit that left the branch (a force push) is
//! reported and left alone unless `--allow-rewrite`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::desired::config::{Config, FILE_NAME};
use crate::desired::render::{self, PackageInfo, RenderOptions, Rendered};
use crate::desired::source::Source;
use crate::desired::versions::{self, VersionInput, DESIRED_TAG};
use crate::error::{Error, Result};
use crate::git::GitRepo;
use crate::oci::digest::Digest;
use crate::oci::reference::Repo;
use crate::oci::store::{Connect, Store};

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
    pub options: RenderOptions,
    pub connect: Connect,
    /// The repository's public URL, for the `source` annotation.
    pub source_url: Option<String>,
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
}

/// The files whose content makes a commit's desired state, with their blob ids.
fn inputs(repo: &GitRepo, commit: &str) -> Result<BTreeMap<String, String>> {
    let mut ids = BTreeMap::new();
    let Some(config_id) = repo.blob_id(commit, Path::new(FILE_NAME))? else {
        return Ok(ids); // no config: nothing to mirror at this commit
    };
    ids.insert(FILE_NAME.to_string(), config_id);
    let config = Config::load(&Source::Commit {
        repo,
        commit: commit.to_string(),
    })?;
    let mut paths: BTreeSet<PathBuf> = BTreeSet::new();
    let app = PathBuf::from(config.app.clone().unwrap_or_else(|| ".".into()));
    paths.insert(app.join(crate::margo::app::FILE_NAME));
    let builtin = |t: &str| render::BUILTIN.iter().any(|(n, _, _)| *n == t);
    for t in config.template.iter().chain(
        config
            .deployments
            .iter()
            .filter_map(|d| d.template.as_ref()),
    ) {
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

/// A commit to publish, rendered.
struct Planned {
    commit: String,
    tag: String,
    docs: Vec<Rendered>,
    git: crate::git::CommitInfo,
    manifest_version: u64,
}

pub async fn mirror(repo: &GitRepo, req: &MirrorRequest) -> Result<Mirrored> {
    let tip = repo.resolve(req.branch.as_deref().unwrap_or("HEAD"))?;
    let mut chain = repo.first_parents(&tip)?; // newest first
    let total = chain.len() as u64;
    let positions: HashMap<String, u64> = chain
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), total - i as u64))
        .collect();
    if let Some(since) = &req.since {
        let since = repo.resolve(since)?;
        let cut = chain.iter().position(|c| *c == since).ok_or_else(|| {
            Error::Usage(format!(
                "--since {since} is not on the first-parent history of the branch"
            ))
        })?;
        chain.truncate(cut + 1); // keep `since` to compare its successor with
    }
    chain.reverse(); // oldest first

    // Which commits changed the inputs: git alone, no registry, no rendering.
    let mut changed = Vec::new();
    let mut before: Option<BTreeMap<String, String>> = None;
    for (i, c) in chain.iter().enumerate() {
        let ids = inputs(repo, c).map_err(|e| in_commit(repo, c, e))?;
        let differs = before.as_ref() != Some(&ids);
        let is_since_itself = req.since.is_some() && i == 0;
        if differs && !ids.is_empty() && !is_since_itself {
            changed.push(c.clone());
        }
        before = Some(ids);
    }
    // (commit, its version tag, what git says of it), oldest first.
    let mut tags_of: Vec<(String, String, crate::git::CommitInfo)> = Vec::new();
    let mut used = BTreeSet::new();
    for c in &changed {
        let info = repo.commit(c)?;
        let mut tag = versions::version_tag(info.time);
        if !used.insert(tag.clone()) {
            tag = format!("{tag}-{}", info.short_commit);
            used.insert(tag.clone());
        }
        tags_of.push((c.clone(), tag, info));
    }

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

    if let Some(rev) = current.as_ref().and_then(|c| c.revision.clone()) {
        if repo.is_ancestor(&rev, &tip) != Some(true) && !req.allow_rewrite {
            return Err(Error::invalid(format!(
                "history was rewritten: `desired` holds commit {}, which is not in the history of {}",
                &rev[..rev.len().min(7)],
                req.branch.as_deref().unwrap_or("HEAD")
            ))
            .with_hint("check the force push; --allow-rewrite mirrors the new history and moves `desired` to it"));
        }
    }
    let last = tags_of.last().map(|(c, _, _)| c.clone());
    if let (Some(last_commit), Some(cur)) = (&last, &current) {
        if tags_of.iter().all(|(_, t, _)| tags.contains(t))
            && cur.revision.as_deref() == Some(last_commit.as_str())
        {
            result.up_to_date = true;
            result.present = tags_of.len();
            result.desired = tags_of.last().map(|(_, t, _)| t.clone());
            return Ok(result);
        }
    }

    // Render every version first: a missing package stops the run before anything is pushed.
    let mut packages: HashMap<String, Option<PackageInfo>> = HashMap::new();
    let mut planned = Vec::new();
    let mut missing = Vec::new();
    for (c, tag, git) in &tags_of {
        let source = Source::Commit {
            repo,
            commit: c.clone(),
        };
        let git = git.clone();
        let config = Config::load(&source).map_err(|e| in_commit(repo, c, e))?;
        let reference = match &req.package_repository {
            Some(r) => {
                let mut cfg = config.clone();
                cfg.package_repository = Some(r.clone());
                crate::desired::pipeline::package_ref(&source, &cfg, None)
            }
            None => crate::desired::pipeline::package_ref(&source, &config, None),
        }
        .map_err(|e| in_commit(repo, c, e))?;
        if !packages.contains_key(&reference) {
            let found = match render::resolve_package(&reference, &connect).await {
                Ok(p) => Some(p),
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            packages.insert(reference.clone(), found);
        }
        let Some(package) = packages[&reference].clone() else {
            missing.push(Skipped {
                commit: git.short_commit.clone(),
                subject: git.subject.clone(),
                reason: format!("package {reference} not found"),
            });
            continue;
        };
        let docs = render::render(&source, &config, &req.options, &package, Some(&git))
            .map_err(|e| in_commit(repo, c, e))?;
        crate::desired::pipeline::require_valid(&docs).map_err(|e| in_commit(repo, c, e))?;
        planned.push(Planned {
            commit: c.clone(),
            tag: tag.clone(),
            docs,
            manifest_version: positions.get(c).copied().unwrap_or(0),
            git,
        });
    }
    if !missing.is_empty() && !req.skip_missing {
        let list: Vec<String> = missing
            .iter()
            .map(|m| format!("{} {} ({})", m.commit, m.subject, m.reason))
            .collect();
        return Err(Error::NotFound {
            what: format!(
                "the packages of {} commit(s): {}",
                missing.len(),
                list.join("; ")
            ),
            hint: Some("publish them, or pass --skip-missing to mirror the others".into()),
        });
    }
    result.skipped = missing;

    // Publish in order, each version chained to the one before it.
    let mut previous: Option<Digest> = match (&req.since, &current) {
        (Some(_), Some(cur)) => Some(cur.digest.clone()),
        _ => None,
    };
    let mut head: Option<crate::oci::manifest::Manifest> = None;
    for p in &planned {
        let input = VersionInput {
            to: &req.to,
            plain_http: connect.plain_http,
            docs: &p.docs,
            git: &p.git,
            source: req.source_url.as_deref(),
            manifest_version: p.manifest_version,
        };
        let built = versions::build(&input, &p.tag, previous.as_ref())?;
        let found = if tags.contains(&p.tag) {
            store.resolve(&p.tag).await?
        } else {
            None
        };
        let manifest = match found {
            Some(d) if d == built.manifest.digest => {
                result.present += 1;
                built.manifest
            }
            Some(d) => {
                let m = store
                    .manifest(d.as_str())
                    .await?
                    .ok_or_else(|| Error::NotFound {
                        what: format!("version {}", p.tag),
                        hint: None,
                    })?;
                let e = versions::existing(&m)?;
                let ours: Vec<String> = p
                    .docs
                    .iter()
                    .map(|d| Digest::of(d.text.as_bytes()).to_string())
                    .collect();
                if e.docs != ours || e.revision.as_deref() != Some(p.commit.as_str()) {
                    return Err(Error::invalid(format!(
                        "version {} holds another desired state than commit {} renders; versions are immutable",
                        p.tag, p.git.short_commit
                    ))
                    .with_hint("delete the version if it is wrong, then mirror again"));
                }
                result.present += 1;
                m
            }
            None => {
                for b in &built.blobs {
                    store.push_blob_bytes(b).await?;
                }
                store.put_manifest(&built.manifest).await?;
                store.set_tag(&built.manifest, &p.tag).await?;
                result.published.push(p.tag.clone());
                built.manifest
            }
        };
        previous = Some(manifest.digest.clone());
        head = Some(manifest);
    }
    if let (Some(m), Some(p)) = (head, planned.last()) {
        result.desired = Some(p.tag.clone());
        if current.as_ref().map(|c| &c.digest) != Some(&m.digest) {
            store.set_tag(&m, DESIRED_TAG).await?;
            result.desired_moved = true;
        }
    }
    Ok(result)
}

/// Puts the commit in front of an error about rendering it.
fn in_commit(repo: &GitRepo, commit: &str, e: Error) -> Error {
    let label = repo
        .commit(commit)
        .map(|c| format!("commit {} ({})", c.short_commit, c.subject))
        .unwrap_or_else(|_| format!("commit {commit}"));
    e.in_context(&label)
}

/// `desired-state log`: the OCI history as `git log --oneline` shows it, and its checks.
#[derive(Clone, Debug, Serialize)]
pub struct LogEntry {
    #[serde(flatten)]
    pub version: versions::Version,
    /// Problems `--verify` found with this version.
    pub problems: Vec<String>,
}

pub async fn log(
    repo: Option<&GitRepo>,
    to: &Repo,
    connect: &Connect,
    verify: bool,
    branch: Option<&str>,
) -> Result<Vec<LogEntry>> {
    let store = Store::open(to, connect).await?;
    let desired = store.manifest(DESIRED_TAG).await?;
    let versions = versions::versions(&store, desired.as_ref().map(|m| &m.digest)).await?;
    let digests: BTreeSet<String> = versions.iter().map(|v| v.digest.to_string()).collect();
    let tip = match (verify, repo) {
        (true, Some(r)) => Some(r.resolve(branch.unwrap_or("HEAD"))?),
        (true, None) => {
            return Err(Error::Usage(
                "--verify needs the git repository the versions come from".into(),
            ))
        }
        _ => None,
    };
    let mut out = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let mut problems = Vec::new();
        if verify {
            // Versions are newest first: the one after this is the one before it in time.
            match (&v.previous, versions.get(i + 1)) {
                (Some(p), _) if !digests.contains(p) => problems.push(format!(
                    "previous version {} is not in the repository",
                    &p[..19.min(p.len())]
                )),
                (Some(p), Some(older)) if *p != older.digest.to_string() => problems.push(format!(
                    "previous is {}, but the version before is {} ({})",
                    &p[..19.min(p.len())],
                    older.tag,
                    &older.digest.as_str()[..19]
                )),
                (None, Some(older)) => problems.push(format!(
                    "no previous version recorded, but {} precedes it",
                    older.tag
                )),
                _ => {}
            }
            if let (Some(r), Some(tip), Some(rev)) = (repo, &tip, &v.revision) {
                if r.is_ancestor(rev, tip) != Some(true) {
                    problems.push(format!(
                        "commit {} is not in the branch's history",
                        &rev[..rev.len().min(7)]
                    ));
                }
            }
        }
        out.push(LogEntry {
            version: v.clone(),
            problems,
        });
    }
    Ok(out)
}
