//! The chain of versions a mirror run writes: the changed commits rendered, each version
//! built on the digest of the one before it, the new ones published.
//!
//! Publishing is pipelined: the blobs of all new versions travel at once (bounded by the
//! store's concurrency, in chain order), and each version's manifest is written with its
//! tag as soon as its own blobs and the version before it are in, so a version is only
//! ever tagged after the one it chains to, and no tag names a manifest with a missing blob.

use std::collections::{BTreeSet, HashMap, HashSet};

use futures_util::{StreamExt as _, TryStreamExt as _};

use super::history::{in_commit, Change};
use super::{MirrorRequest, Mirrored, Skipped};
use crate::desired::config::Config;
use crate::desired::package::{self, PackageInfo};
use crate::desired::render::{self, Rendered};
use crate::desired::source::Source;
use crate::desired::versions::{self, VersionInput};
use crate::error::{Error, Result};
use crate::git::GitRepo;
use crate::oci::digest::Digest;
use crate::oci::manifest::Manifest;
use crate::oci::store::{Connect, Store};
use crate::signing::signer::Signer;

/// A change, rendered.
pub(super) struct Planned {
    pub docs: Vec<Rendered>,
}

/// One link of the chain: a change, rendered when this run needs its content.
pub(super) struct Link<'a> {
    pub change: &'a Change,
    pub planned: Option<Planned>,
}

/// Renders and validates `changes` with their packages (each package looked up once); the
/// commits whose package is not published are returned apart.
pub(super) async fn render_all<'a>(
    repo: &GitRepo,
    req: &MirrorRequest,
    changes: &[&'a Change],
    connect: &Connect,
) -> Result<(Vec<Link<'a>>, Vec<Skipped>)> {
    let mut packages: HashMap<String, Option<PackageInfo>> = HashMap::new();
    let mut planned = Vec::new();
    let mut missing = Vec::new();
    for &change in changes {
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
        planned.push(Link {
            change,
            planned: Some(Planned { docs }),
        });
    }
    Ok((planned, missing))
}

/// A version of the chain as this run knows it.
struct Known<'a> {
    link: &'a Link<'a>,
    /// Its digest, when this run needed it.
    digest: Option<Digest>,
    /// Its manifest, when built or read by this run.
    manifest: Option<Manifest>,
    /// Its blobs, when it is new.
    blobs: Option<Vec<Vec<u8>>>,
}

/// What the chain ends at: the last version's tag and digest, and its manifest when this
/// run has it.
pub(super) struct Head {
    pub tag: String,
    pub commit: String,
    pub digest: Option<Digest>,
    pub manifest: Option<Manifest>,
    /// Its manifest is what this run built, or was checked to hold what it renders.
    pub checked: bool,
}

/// The state of the repository a chain is published into.
pub(super) struct Registry<'a> {
    pub store: &'a Store,
    pub tags: &'a BTreeSet<String>,
    /// What `desired` holds: (its version tag, its digest).
    pub desired: Option<(String, Digest)>,
}

/// Publishes the chain: builds each rendered version on the digest of the one before it,
/// checks the ones that exist (rendered ones only: the others are trusted to the tag
/// list), writes the new ones. Returns the chain's head.
pub(super) async fn publish_chain(
    reg: &Registry<'_>,
    req: &MirrorRequest,
    connect: &Connect,
    links: &[Link<'_>],
    mut previous: Option<Digest>,
    signer: Option<&Signer>,
    result: &mut Mirrored,
) -> Result<Option<Head>> {
    let store = reg.store;
    // The digests this run needs of versions it does not render: the one before each new
    // version, read together (`desired` answers for its own).
    let is_new = |l: &Link| !reg.tags.contains(&l.change.tag);
    let needed: Vec<&str> = links
        .windows(2)
        .filter(|w| w[0].planned.is_none() && is_new(&w[1]))
        .map(|w| w[0].change.tag.as_str())
        .chain(
            links
                .iter()
                .filter(|l| l.planned.is_some() && !is_new(l))
                .map(|l| l.change.tag.as_str()),
        )
        .collect();
    let resolved = resolve_tags(reg, &needed).await?;
    let mut chain: Vec<Known> = Vec::new();
    for link in links {
        let tag = &link.change.tag;
        let known = match &link.planned {
            None => Known {
                link,
                digest: resolved.get(tag.as_str()).cloned().flatten(),
                manifest: None,
                blobs: None,
            },
            Some(p) => {
                let input = VersionInput {
                    to: &req.to,
                    plain_http: connect.plain_http,
                    docs: &p.docs,
                    git: &link.change.git,
                    source: req.source_url.as_deref(),
                    manifest_version: link.change.position,
                };
                let built = versions::build(&input, tag, previous.as_ref())?;
                match resolved.get(tag.as_str()).cloned().flatten() {
                    Some(d) if d == built.manifest.digest => known(link, built.manifest, None),
                    Some(d) => {
                        let strict = signer.is_some().then_some(&input);
                        known(link, existing_version(store, link, &d, strict).await?, None)
                    }
                    None => known(link, built.manifest, Some(built.blobs)),
                }
            }
        };
        previous = known.digest.clone();
        chain.push(known);
    }
    publish_new(store, &chain, signer, result).await?;
    result.present += chain.iter().filter(|k| k.blobs.is_none()).count();
    Ok(chain.pop().map(|k| Head {
        tag: k.link.change.tag.clone(),
        commit: k.link.change.git.commit.clone(),
        digest: k.digest,
        manifest: k.manifest,
        checked: k.link.planned.is_some(),
    }))
}

fn known<'a>(link: &'a Link<'a>, m: Manifest, blobs: Option<Vec<Vec<u8>>>) -> Known<'a> {
    Known {
        link,
        digest: Some(m.digest.clone()),
        manifest: Some(m),
        blobs,
    }
}

/// The digests of `tags`, read together; `desired`'s own version needs no request.
async fn resolve_tags<'t>(
    reg: &Registry<'_>,
    tags: &[&'t str],
) -> Result<HashMap<&'t str, Option<Digest>>> {
    futures_util::stream::iter(tags)
        .map(|&t| async move {
            match &reg.desired {
                Some((tag, digest)) if tag == t => Ok((t, Some(digest.clone()))),
                _ => Ok((t, reg.store.resolve(t).await?)),
            }
        })
        .buffer_unordered(reg.store.concurrency())
        .try_collect()
        .await
}

/// Writes the new versions of `chain`: every blob once, at once; each manifest, with its
/// tag, when its blobs and the manifest before it are in.
/// With a `signer`, each is signed before its tag names it.
async fn publish_new(
    store: &Store,
    chain: &[Known<'_>],
    signer: Option<&Signer>,
    result: &mut Mirrored,
) -> Result<()> {
    let new: Vec<(&Known, &Vec<Vec<u8>>)> = chain
        .iter()
        .filter_map(|k| k.blobs.as_ref().map(|b| (k, b)))
        .collect();
    // Every blob once, in chain order; `ready[i]`: how many blobs version i waits for.
    let mut seen = HashSet::new();
    let mut blobs: Vec<&[u8]> = Vec::new();
    let mut ready = Vec::new();
    for (_, bs) in &new {
        blobs.extend(
            bs.iter()
                .filter(|b| seen.insert(Digest::of(b)))
                .map(Vec::as_slice),
        );
        ready.push(blobs.len());
    }
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let send = async move {
        // `buffered` yields in order: when blob j is reported, all before it are in.
        let mut sent = futures_util::stream::iter(blobs.into_iter().enumerate())
            .map(|(j, b)| async move { store.put_blob_bytes(b).await.map(|()| j + 1) })
            .buffered(store.concurrency());
        while let Some(count) = sent.try_next().await? {
            let _ = done_tx.send(count);
        }
        Ok::<(), Error>(())
    };
    let write = async {
        let mut in_store = 0;
        for ((k, _), need) in new.iter().zip(&ready) {
            while in_store < *need {
                match done_rx.recv().await {
                    Some(count) => in_store = count,
                    // The uploads stopped: their error is the one to report.
                    None => return Ok(()),
                }
            }
            let manifest = k.manifest.as_ref().expect("a new version is built");
            if let Some(signer) = signer {
                store.put_manifest(manifest).await?;
                signer.attach(store, manifest).await?;
                result.signed.push(k.link.change.tag.clone());
            }
            store
                .put_manifest_tagged(manifest, &k.link.change.tag)
                .await?;
            result.published.push(k.link.change.tag.clone());
        }
        Ok::<(), Error>(())
    };
    futures_util::future::try_join(send, write).await?;
    Ok(())
}

/// A version already published under the planned tag with another digest (it chains to
/// another previous version): kept when it holds what the commit renders, else an error.
/// With `strict` (a signer may sign it), it must hold exactly what that input publishes
/// ([`versions::what_differs`]).
async fn existing_version(
    store: &Store,
    link: &Link<'_>,
    digest: &Digest,
    strict: Option<&VersionInput<'_>>,
) -> Result<Manifest> {
    let change = link.change;
    let m = store
        .manifest(digest.as_str())
        .await?
        .ok_or_else(|| Error::NotFound {
            what: format!("version {}", change.tag),
            hint: None,
        })?;
    let e = versions::existing(&m)?;
    let ours: Vec<String> = link
        .planned
        .iter()
        .flat_map(|p| &p.docs)
        .map(|d| Digest::of(d.text.as_bytes()).to_string())
        .collect();
    let differs = match (
        e.docs == ours && e.revision.as_deref() == Some(change.git.commit.as_str()),
        strict,
    ) {
        (false, _) => Some("its documents or commit differ".into()),
        (true, Some(input)) => versions::what_differs(&m, input)?,
        (true, None) => None,
    };
    if let Some(why) = differs {
        return Err(Error::invalid(format!(
            "version {} holds another desired state than commit {} renders ({why}); versions \
             are immutable",
            change.tag, change.git.short_commit
        ))
        .with_hint("delete the version if it is wrong, then mirror again"));
    }
    Ok(m)
}
