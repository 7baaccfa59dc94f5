//! `desired-state commit`: one commit's desired state published as a version (signed,
//! when a signer is given, before any tag names it), and `desired` moved to it when it is
//! newer.
//!
//! `desired` moves only when the content changed and never back to an ancestor of the
//! commit it holds. Registries have no compare-and-swap for tags, so a committer reads
//! `desired` again just before moving it, then watches it briefly and puts it back if an
//! older commit overwrote it: two racing committers end with `desired` at the newer commit.

use std::time::Duration;

use serde::Serialize;

use crate::desired::versions::{
    build, existing, is_version_tag, version_tag, what_differs, Existing, VersionInput, DESIRED_TAG,
};
use crate::error::{Error, Result};
use crate::git::CommitInfo;
use crate::oci::digest::Digest;
use crate::oci::manifest::Manifest;
use crate::oci::store::{Connect, Store};
use crate::signing::signer::Signer;

/// How long a committer watches `desired` after moving it, and how often.
const WATCH: (u32, Duration) = (5, Duration::from_millis(200));

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Committed {
    pub repository: String,
    pub version: String,
    pub digest: Digest,
    pub manifest_version: u64,
    /// True when this run published the version (false: it was there already).
    pub published: bool,
    pub desired_moved: bool,
    /// Why `desired` stayed where it was, when it did.
    pub note: Option<String>,
    /// The signature this run attached to the version (a referrer), when it signed one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<Digest>,
    /// Asked to sign a version that was there before and already carries this key's
    /// signature.
    pub already_signed: bool,
}

/// What the committer knows about the history: is `a` an ancestor of (or equal to) `b`?
/// `None` when it cannot tell (a shallow clone).
pub(crate) type Ancestry<'a> = &'a dyn Fn(&str, &str) -> Option<bool>;

pub(crate) struct CommitRequest<'a> {
    pub version: VersionInput<'a>,
    pub connect: &'a Connect,
    pub ancestry: Ancestry<'a>,
    /// A commit's first-parent position (its manifestVersion), when the repository has it.
    pub position: &'a dyn Fn(&str) -> Option<u64>,
    /// Signs a version it publishes, before any tag names it.
    pub signer: Option<&'a Signer>,
}

/// Whether `desired` may move to this commit's version.
enum Move {
    Allowed,
    /// It stays where it is, for the reason given.
    Stays(String),
}

/// Decides whether `desired`, holding `current`, may move to the version of `git`.
fn may_move(current: &Existing, git: &CommitInfo, ancestry: Ancestry) -> Result<Move> {
    let Some(theirs) = current.revision.as_deref() else {
        return Ok(Move::Allowed);
    };
    if theirs == git.commit {
        return Ok(Move::Allowed);
    }
    let short = &theirs[..theirs.len().min(7)];
    match (ancestry(theirs, &git.commit), ancestry(&git.commit, theirs)) {
        (Some(true), _) => Ok(Move::Allowed),
        (_, Some(true)) => Ok(Move::Stays(format!(
            "`desired` stays at {short}: this commit ({}) is older than the one it holds",
            git.short_commit
        ))),
        (Some(false), Some(false)) => Err(Error::invalid(format!(
            "`desired` holds {short}, which is not in this branch's history (rewritten or another branch)"
        ))
        .with_hint("mirror the branch again, or move `desired` by hand once you have checked it")),
        _ => {
            // Not enough history to tell (a shallow clone): the newer commit time wins.
            let ours = crate::oci::media::rfc3339(git.time.max(0) as u64);
            if current.time.as_deref().is_some_and(|t| t > ours.as_str()) {
                Ok(Move::Stays(format!("`desired` stays at {short}: its commit is newer than {} (history too shallow to compare; fetch it whole for exact answers)", git.short_commit)))
            } else {
                Ok(Move::Allowed)
            }
        }
    }
}

async fn desired(store: &Store) -> Result<Option<Existing>> {
    match store.manifest(DESIRED_TAG).await? {
        Some(m) => Ok(Some(existing(&m)?)),
        None => Ok(None),
    }
}

pub(crate) async fn commit(req: CommitRequest<'_>) -> Result<Committed> {
    let v = &req.version;
    let store = Store::open_for_push(v.to, req.connect).await?;
    let current = desired(&store).await?;
    let ours_docs: Vec<String> = v
        .docs
        .iter()
        .map(|d| Digest::of(d.text.as_bytes()).to_string())
        .collect();
    let mut result = Committed {
        repository: v.to.to_string(),
        version: version_tag(v.git.time),
        digest: Digest::of(b""),
        manifest_version: v.manifest_version,
        published: false,
        desired_moved: false,
        note: None,
        signature: None,
        already_signed: false,
    };
    if let Some(cur) = current.as_ref().filter(|c| c.docs == ours_docs) {
        result.digest = cur.digest.clone();
        result.version = cur.version.clone().unwrap_or_default();
        result.note = Some("unchanged: `desired` already holds this desired state".into());
        if req.signer.is_some() {
            if let Some(m) = store.manifest(&cur.digest.to_string()).await? {
                // Signed only when it holds exactly what its own commit publishes with
                // these documents (its manifestVersion that commit's).
                let position = cur.revision.as_deref().and_then(|r| (req.position)(r));
                let differs = match position {
                    Some(manifest_version) => what_differs(
                        &m,
                        &VersionInput {
                            manifest_version,
                            ..*v
                        },
                    )?,
                    None => Some("its commit is not in this repository's history".into()),
                };
                if let Some(why) = differs {
                    return Err(Error::invalid(format!(
                        "`desired` ({}) holds this commit's documents, but not as a version of \
                         this branch publishes them ({why}): not signed",
                        m.digest
                    ))
                    .with_hint("check who moved `desired`; delete it or commit a change"));
                }
                sign_if_unsigned(&store, req.signer, &m, &mut result).await?;
            }
        }
        return Ok(result);
    }
    let mut move_desired = true;
    if let Some(cur) = &current {
        if let Move::Stays(note) = may_move(cur, v.git, req.ancestry)? {
            move_desired = false;
            result.note = Some(note);
        }
    }
    let tag = free_tag(&store, v.git, &ours_docs).await?;
    let previous = current.as_ref().filter(|_| move_desired).map(|c| &c.digest);
    let built = build(v, &tag, previous)?;
    result.version = tag.clone();
    result.digest = built.manifest.digest.clone();
    match store.manifest(&tag).await? {
        Some(m) => {
            // Published before, unsigned perhaps (`--sign none`): signed before `desired`
            // may move to it, and only when it holds exactly what this commit renders.
            if req.signer.is_some() {
                let mine = existing(&m)?.revision.as_deref() == Some(v.git.commit.as_str());
                let differs = match mine {
                    true => what_differs(&m, v)?,
                    false => Some("it records another commit".into()),
                };
                if let Some(why) = differs {
                    return Err(Error::invalid(format!(
                        "version {tag} ({}) does not hold what this commit publishes ({why}); \
                         versions are immutable: not signed, `desired` not moved",
                        m.digest
                    ))
                    .with_hint("delete the version if it is wrong, then commit again"));
                }
            }
            sign_if_unsigned(&store, req.signer, &m, &mut result).await?;
            result.digest = m.digest;
        }
        None => {
            for b in &built.blobs {
                store.put_blob_bytes(b).await?;
            }
            store.put_manifest(&built.manifest).await?;
            // Signed while no tag names it: a device never finds it unsigned.
            if let Some(signer) = req.signer {
                result.signature = Some(signer.attach(&store, &built.manifest).await?);
            }
            store.set_tag(&built.manifest, &tag).await?;
            result.published = true;
        }
    }
    if move_desired {
        move_to(&store, &req, &tag, current.as_ref(), &mut result).await?;
    }
    Ok(result)
}

/// Signs `version`, which was there before this run (and was checked to hold what this
/// run would publish), when a signer is given and its own signature is not attached yet.
async fn sign_if_unsigned(
    store: &Store,
    signer: Option<&Signer>,
    version: &Manifest,
    result: &mut Committed,
) -> Result<()> {
    let Some(signer) = signer else {
        return Ok(());
    };
    match signer.attach_unless_signed(store, version).await? {
        Some(referrer) => result.signature = Some(referrer),
        None => result.already_signed = true,
    }
    Ok(())
}

/// The version tag: the commit's time, unless another commit of the same second holds it
/// (then with `-<short commit>`); this commit's own version must hold this content.
async fn free_tag(store: &Store, git: &CommitInfo, ours_docs: &[String]) -> Result<String> {
    let tag = version_tag(git.time);
    let Some(m) = store.manifest(&tag).await? else {
        return Ok(tag);
    };
    let e = existing(&m)?;
    if e.revision.as_deref() != Some(git.commit.as_str()) {
        return Ok(format!("{tag}-{}", git.short_commit));
    }
    if e.docs != ours_docs {
        return Err(Error::invalid(format!(
            "version {tag} of commit {} already holds another desired state; versions are immutable",
            git.short_commit
        ))
        .with_hint("the package or the values changed outside git: commit the change, then commit the desired state"));
    }
    Ok(tag)
}

/// Moves `desired` to the version `tag`, unless a newer committer moved it meanwhile.
async fn move_to(
    store: &Store,
    req: &CommitRequest<'_>,
    tag: &str,
    seen: Option<&Existing>,
    result: &mut Committed,
) -> Result<()> {
    let git = req.version.git;
    let ours = store.manifest(tag).await?.ok_or_else(|| Error::NotFound {
        what: format!("version {tag}"),
        hint: None,
    })?;
    // Publishing took a while: ask again just before moving, so that the window in
    // which a newer committer's move could be overwritten is one request wide.
    let now = desired(store).await?;
    let moved_meanwhile = now.as_ref().map(|n| &n.digest) != seen.map(|c| &c.digest);
    if let Some(n) = now.as_ref().filter(|_| moved_meanwhile) {
        match may_move(n, git, req.ancestry) {
            Ok(Move::Allowed) => {}
            Ok(Move::Stays(note)) => {
                result.note = Some(note);
                return Ok(());
            }
            Err(_) => return Ok(()),
        }
    }
    store.set_tag(&ours, DESIRED_TAG).await?;
    result.desired_moved = true;
    watch_desired(store, &ours, git, req.ancestry).await?;
    converge(store, tag, git, req.ancestry).await
}

/// Puts `desired` back on `ours` if an older commit's committer overwrote it meanwhile.
async fn watch_desired(
    store: &Store,
    ours: &Manifest,
    git: &CommitInfo,
    ancestry: Ancestry<'_>,
) -> Result<()> {
    for _ in 0..WATCH.0 {
        tokio::time::sleep(WATCH.1).await;
        let Some(now) = store.manifest(DESIRED_TAG).await? else {
            continue;
        };
        if now.digest == ours.digest {
            continue;
        }
        let e = existing(&now)?;
        match e.revision.as_deref() {
            Some(theirs) if theirs != git.commit && ancestry(theirs, &git.commit) == Some(true) => {
                store.set_tag(ours, DESIRED_TAG).await?;
            }
            // Someone newer (or unrelated) holds it now: theirs to keep.
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// Hands `desired` on to a newer version of the branch, if one was published meanwhile.
///
/// Every committer publishes its version before it moves `desired`, so a committer that
/// finds a version of a descendant commit after its own move knows that a newer committer
/// ran alongside it, and makes sure `desired` ends there, however late its own move landed.
async fn converge(
    store: &Store,
    our_tag: &str,
    git: &CommitInfo,
    ancestry: Ancestry<'_>,
) -> Result<()> {
    let mut later: Vec<String> = store
        .tags()
        .await?
        .into_iter()
        .filter(|t| is_version_tag(t) && t.as_str() > our_tag)
        .collect();
    later.sort_by(|a, b| b.cmp(a));
    for t in later {
        let Some(m) = store.manifest(&t).await? else {
            continue;
        };
        let e = existing(&m)?;
        let Some(rev) = e.revision.as_deref() else {
            continue;
        };
        if rev != git.commit && ancestry(&git.commit, rev) == Some(true) {
            let holds = match store.manifest(DESIRED_TAG).await? {
                Some(d) => existing(&d)?.revision,
                None => None,
            };
            // Move only from ours or an older one: never over an even newer commit.
            if holds
                .as_deref()
                .is_none_or(|h| ancestry(h, rev) == Some(true) && h != rev)
            {
                store.set_tag(&m, DESIRED_TAG).await?;
            }
            return Ok(());
        }
    }
    Ok(())
}
