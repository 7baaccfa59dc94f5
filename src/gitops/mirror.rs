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

use futures_util::{StreamExt as _, TryStreamExt as _};
use serde::Serialize;

use crate::desired::config::{Config, FILE_NAME};
use crate::desired::package;
use crate::desired::package::PackageInfo;
use crate::desired::render::{self, RenderOptions, Rendered};
use crate::desired::source::Source;
use crate::desired::templates;
use crate::desired::versions::{self, VersionInput, DESIRED_TAG};
use crate::error::{Error, Result};
use crate::git::{CommitInfo, GitRepo};
use crate::oci::digest::Digest;
use crate::oci::manifest::Manifest;
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
    let builtin = |t: &str| templates::BUILTIN.iter().any(|(n, _, _)| *n == t);
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
    let changes = &history.changes;
    if let (Some(last), Some(cur)) = (changes.last(), &current) {
        if changes.iter().all(|c| tags.contains(&c.tag))
            && cur.revision.as_deref() == Some(last.git.commit.as_str())
        {
            result.up_to_date = true;
            result.present = changes.len();
            result.desired = Some(last.tag.clone());
            return Ok(result);
        }
    }
    // Render every version first: a missing package stops the run before anything is pushed.
    let (planned, missing) = render_all(repo, req, &history, &connect).await?;
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
    let previous = match (&req.since, &current) {
        (Some(_), Some(cur)) => Some(cur.digest.clone()),
        _ => None,
    };
    let head = publish_chain(
        &store,
        req,
        &connect,
        &planned,
        &tags,
        previous,
        &mut result,
    )
    .await?;
    if let (Some(m), Some(p)) = (head, planned.last()) {
        result.desired = Some(p.tag.clone());
        if current.as_ref().map(|c| &c.digest) != Some(&m.digest) {
            store.set_tag(&m, DESIRED_TAG).await?;
            result.desired_moved = true;
        }
    }
    Ok(result)
}

/// A commit whose desired-state inputs changed, with its version tag.
struct Change {
    tag: String,
    git: CommitInfo,
    /// Its place on the first-parent chain, from 1: the version's `manifestVersion`.
    position: u64,
}

/// What git alone says: which commits of the branch change the inputs (no registry, no
/// rendering), oldest first.
struct History {
    changes: Vec<Change>,
}

impl History {
    fn read(repo: &GitRepo, tip: &str, since: Option<&str>) -> Result<History> {
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
        for (i, c) in chain.iter().enumerate() {
            let ids = inputs(repo, c).map_err(|e| in_commit(repo, c, e))?;
            let differs = before.as_ref() != Some(&ids);
            let is_since_itself = since.is_some() && i == 0;
            let nothing_to_render = ids.is_empty(); // no config at this commit
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
        Ok(History { changes })
    }
}

/// Renders and validates every changed commit with its package; the commits whose package
/// is not published are returned apart.
async fn render_all(
    repo: &GitRepo,
    req: &MirrorRequest,
    history: &History,
    connect: &Connect,
) -> Result<(Vec<Planned>, Vec<Skipped>)> {
    let mut packages: HashMap<String, Option<PackageInfo>> = HashMap::new();
    let mut planned = Vec::new();
    let mut missing = Vec::new();
    for change in &history.changes {
        let c = &change.git.commit;
        let source = Source::Commit {
            repo,
            commit: c.clone(),
        };
        let mut config = Config::load(&source).map_err(|e| in_commit(repo, c, e))?;
        if let Some(r) = &req.package_repository {
            config.package_repository = Some(r.clone());
        }
        let reference = crate::desired::pipeline::package_ref(&source, &config, None)
            .map_err(|e| in_commit(repo, c, e))?;
        if !packages.contains_key(&reference) {
            let found = match package::resolve_package(&reference, connect).await {
                Ok(p) => Some(p),
                Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            packages.insert(reference.clone(), found);
        }
        let Some(package) = &packages[&reference] else {
            missing.push(Skipped {
                commit: change.git.short_commit.clone(),
                subject: change.git.subject.clone(),
                reason: format!("package {reference} not found"),
            });
            continue;
        };
        let docs = render::render(&source, &config, &req.options, package, Some(&change.git))
            .map_err(|e| in_commit(repo, c, e))?;
        crate::desired::pipeline::require_valid(&docs).map_err(|e| in_commit(repo, c, e))?;
        planned.push(Planned {
            commit: c.clone(),
            tag: change.tag.clone(),
            docs,
            manifest_version: change.position,
            git: change.git.clone(),
        });
    }
    Ok((planned, missing))
}

/// Publishes the planned versions, each chained to the one before it; returns the last
/// one's manifest. The blobs of every new version travel at once; manifests and tags are
/// then written in the chain's order, so a version is only ever tagged after the one
/// before it.
async fn publish_chain(
    store: &Store,
    req: &MirrorRequest,
    connect: &Connect,
    planned: &[Planned],
    tags: &BTreeSet<String>,
    mut previous: Option<Digest>,
    result: &mut Mirrored,
) -> Result<Option<Manifest>> {
    // What each version is, and which are new: git and the tag list, one lookup per
    // existing version.
    // (the version, its manifest, its blobs when it is new)
    type Link<'a> = (&'a Planned, Manifest, Option<Vec<Vec<u8>>>);
    let mut chain: Vec<Link> = Vec::new();
    for p in planned {
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
        let (manifest, blobs) = match found {
            Some(d) if d == built.manifest.digest => (built.manifest, None),
            Some(d) => (existing_version(store, p, &d).await?, None),
            None => (built.manifest, Some(built.blobs)),
        };
        previous = Some(manifest.digest.clone());
        chain.push((p, manifest, blobs));
    }
    // Every new blob at once (each once).
    let mut seen = std::collections::HashSet::new();
    let blobs: Vec<&Vec<u8>> = chain
        .iter()
        .filter_map(|(_, _, b)| b.as_ref())
        .flatten()
        .filter(|b| seen.insert(Digest::of(b)))
        .collect();
    futures_util::stream::iter(blobs)
        .map(|b| store.put_blob_bytes(b))
        .buffer_unordered(store.concurrency())
        .try_collect::<Vec<()>>()
        .await?;
    // Manifests with their tags, in order.
    let mut head = None;
    for (p, manifest, blobs) in chain {
        if blobs.is_some() {
            store.put_manifest_tagged(&manifest, &p.tag).await?;
            result.published.push(p.tag.clone());
        } else {
            result.present += 1;
        }
        head = Some(manifest);
    }
    Ok(head)
}

/// A version already published under the planned tag with another digest (it chains to
/// another previous version): kept when it holds what the commit renders, else an error.
async fn existing_version(store: &Store, p: &Planned, digest: &Digest) -> Result<Manifest> {
    let m = store
        .manifest(digest.as_str())
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
    Ok(m)
}

/// Puts the commit in front of an error about rendering it.
fn in_commit(repo: &GitRepo, commit: &str, e: Error) -> Error {
    let label = repo
        .commit(commit)
        .map(|c| format!("commit {} ({})", c.short_commit, c.subject))
        .unwrap_or_else(|_| format!("commit {commit}"));
    e.in_context(&label)
}
