//! `desired-state commit` and `show`: the desired state as OCI versions and a `desired` tag.
//!
//! One artifact per version (artifactType `application/vnd.margo.desired-state.v1`, the
//! PoC's type, so its consumers keep working): a `…desired-state.v1+yaml` layer per
//! deployment, the bundle of all of them (`application/vnd.margo.bundle.v1+tar+gzip`), and
//! the Margo Desired State Manifest (`application/vnd.margo.manifest.v1+json`) whose
//! digests are those of the YAML layers, so a fleet manager can serve it as is.
//!
//! Versions come from git: the tag is the commit's time (`YYYYMMDDHHMMSS`, UTC), the
//! annotations carry the commit, its time and subject, `manifestVersion` (the first-parent
//! commit count) and the digest of the version `desired` held before, so versions chain.
//! `desired` moves only when the content changed and never back to an ancestor of the
//! commit it holds. Registries have no compare-and-swap for tags, so a committer reads
//! `desired` again just before moving it, then watches it briefly and puts it back if an
//! older commit overwrote it: two racing committers end with `desired` at the newer commit.

use std::collections::BTreeMap;
use std::time::Duration;

use oci_client::manifest::{OciDescriptor, OciImageManifest};
use serde::Serialize;

use crate::desired::render::{blob_url, Rendered};
use crate::error::{Error, Result};
use crate::git::CommitInfo;
use crate::oci::digest::Digest;
use crate::oci::manifest::Manifest;
use crate::oci::media;
use crate::oci::reference::Repo;
use crate::oci::store::{Connect, Store};
use crate::package::archive::{GzipWriter, TarWriter};

pub const ARTIFACT: &str = "application/vnd.margo.desired-state.v1";
pub const LAYER_YAML: &str = "application/vnd.margo.desired-state.v1+yaml";
pub const MANIFEST_JSON: &str = "application/vnd.margo.manifest.v1+json";
pub const BUNDLE: &str = "application/vnd.margo.bundle.v1+tar+gzip";
pub const DESIRED_TAG: &str = "desired";

pub const ANN_PREVIOUS: &str = "org.margo.gitops.previous";
pub const ANN_MANIFEST_VERSION: &str = "org.margo.gitops.manifest-version";
pub const ANN_SUBJECT: &str = "org.margo.gitops.subject";
pub const ANN_DEPLOYMENT_ID: &str = "org.margo.deployment.id";

/// How long a committer watches `desired` after moving it, and how often.
const WATCH: (u32, Duration) = (5, Duration::from_millis(200));

/// The version tag of a commit time: `YYYYMMDDHHMMSS`, UTC.
pub fn version_tag(epoch: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year][month][day][hour][minute][second]");
    t.format(&f).unwrap_or_default()
}

/// True for tags that name versions (`YYYYMMDDHHMMSS`, optionally `-<short commit>`).
pub fn is_version_tag(tag: &str) -> bool {
    let (time, rest) = tag.split_at(tag.len().min(14));
    time.len() == 14
        && time.bytes().all(|b| b.is_ascii_digit())
        && (rest.is_empty()
            || (rest.starts_with('-') && rest[1..].bytes().all(|b| b.is_ascii_hexdigit())))
}

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
}

/// The parts of a published version that decide what it is.
pub(crate) struct Existing {
    pub digest: Digest,
    /// The version tag the manifest records for itself.
    pub version: Option<String>,
    pub revision: Option<String>,
    pub time: Option<String>,
    pub docs: Vec<String>,
}

pub(crate) fn existing(m: &Manifest) -> Result<Existing> {
    let image = m.image()?;
    let ann = image.annotations.unwrap_or_default();
    Ok(Existing {
        digest: m.digest.clone(),
        version: ann.get(media::ANN_VERSION).cloned(),
        revision: ann.get(media::ANN_REVISION).cloned(),
        time: ann.get(media::ANN_CREATED).cloned(),
        docs: image
            .layers
            .iter()
            .filter(|l| l.media_type == LAYER_YAML)
            .map(|l| l.digest.clone())
            .collect(),
    })
}

/// The bytes of one version: its blobs and its manifest.
pub(crate) struct Built {
    pub blobs: Vec<Vec<u8>>,
    pub manifest: Manifest,
}

pub(crate) fn build(req: &CommitRequest, tag: &str, previous: Option<&Digest>) -> Result<Built> {
    let mut blobs = Vec::new();
    let mut layers = Vec::new();
    let mut deployments = Vec::new();
    let (docs, repo, plain_http, git) = (req.docs, req.to, req.connect.plain_http, req.git);
    for d in docs {
        let bytes = d.text.as_bytes().to_vec();
        let digest = Digest::of(&bytes);
        let mut ann = BTreeMap::new();
        ann.insert(media::ANN_TITLE.to_string(), format!("{}.yaml", d.name));
        ann.insert(ANN_DEPLOYMENT_ID.to_string(), d.id.clone());
        layers.push(OciDescriptor {
            media_type: LAYER_YAML.into(),
            digest: digest.to_string(),
            size: bytes.len() as i64,
            annotations: Some(ann),
            ..Default::default()
        });
        deployments.push(serde_json::json!({
            "deploymentId": d.id,
            "digest": digest.to_string(),
            "url": blob_url(repo, digest.as_str(), plain_http),
            "sizeBytes": bytes.len(),
        }));
        blobs.push(bytes);
    }

    // The bundle: every document, by name, with fixed times so equal states give equal bytes.
    let mut sorted: Vec<&Rendered> = docs.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let io = |e: std::io::Error| Error::io("write", "the desired-state bundle")(e);
    let gz = GzipWriter::new(Vec::new(), flate2::Compression::best()).map_err(io)?;
    let mut tar = TarWriter::new(gz, 0);
    for d in &sorted {
        tar.file_bytes(&format!("{}.yaml", d.name), 0o644, d.text.as_bytes())
            .map_err(io)?;
    }
    let bundle = tar.finish().map_err(io)?.finish().map_err(io)?;
    let bundle_digest = Digest::of(&bundle);
    let bundle_json = if docs.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!({
            "mediaType": BUNDLE,
            "digest": bundle_digest.to_string(),
            "url": blob_url(repo, bundle_digest.as_str(), plain_http),
            "sizeBytes": bundle.len(),
        })
    };
    let mut title = BTreeMap::new();
    title.insert(media::ANN_TITLE.to_string(), "bundle.tar.gz".to_string());
    layers.push(OciDescriptor {
        media_type: BUNDLE.into(),
        digest: bundle_digest.to_string(),
        size: bundle.len() as i64,
        annotations: Some(title),
        ..Default::default()
    });
    blobs.push(bundle);

    let dsm = serde_json::to_vec(&serde_json::json!({
        "manifestVersion": req.manifest_version,
        "bundle": bundle_json,
        "deployments": deployments,
    }))
    .expect("JSON");
    let mut title = BTreeMap::new();
    title.insert(media::ANN_TITLE.to_string(), "manifest.json".to_string());
    layers.push(OciDescriptor {
        media_type: MANIFEST_JSON.into(),
        digest: Digest::of(&dsm).to_string(),
        size: dsm.len() as i64,
        annotations: Some(title),
        ..Default::default()
    });
    blobs.push(dsm);
    blobs.push(media::EMPTY_JSON.to_vec());

    let mut ann = BTreeMap::new();
    ann.insert(
        media::ANN_CREATED.to_string(),
        crate::oci::media::rfc3339(git.time.max(0) as u64),
    );
    ann.insert(media::ANN_REVISION.to_string(), git.commit.clone());
    ann.insert(media::ANN_VERSION.to_string(), tag.to_string());
    ann.insert(ANN_SUBJECT.to_string(), git.subject.clone());
    ann.insert(
        ANN_MANIFEST_VERSION.to_string(),
        req.manifest_version.to_string(),
    );
    if let Some(s) = req.source {
        ann.insert(media::ANN_SOURCE.to_string(), s.to_string());
    }
    if let Some(p) = previous {
        ann.insert(ANN_PREVIOUS.to_string(), p.to_string());
    }
    let m = OciImageManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: Some(ARTIFACT.into()),
        config: OciDescriptor {
            media_type: media::OCI_EMPTY.into(),
            digest: Digest::of(media::EMPTY_JSON).to_string(),
            size: 2,
            ..Default::default()
        },
        layers,
        annotations: Some(ann),
        ..Default::default()
    };
    Ok(Built {
        blobs,
        manifest: Manifest::new(media::OCI_MANIFEST, serde_json::to_vec(&m).expect("JSON")),
    })
}

/// What the committer knows about the history: is `a` an ancestor of (or equal to) `b`?
/// `None` when it cannot tell (a shallow clone).
pub type Ancestry<'a> = &'a dyn Fn(&str, &str) -> Option<bool>;

pub struct CommitRequest<'a> {
    pub to: &'a Repo,
    pub connect: &'a Connect,
    pub docs: &'a [Rendered],
    pub git: &'a CommitInfo,
    pub source: Option<&'a str>,
    pub manifest_version: u64,
    pub ancestry: Ancestry<'a>,
}

/// Decides whether `desired`, holding `current`, may move to `ours`; `Err` is the note.
fn may_move(
    current: &Existing,
    git: &CommitInfo,
    ancestry: Ancestry,
) -> Result<std::result::Result<(), String>> {
    let Some(theirs) = current.revision.as_deref() else {
        return Ok(Ok(()));
    };
    if theirs == git.commit {
        return Ok(Ok(()));
    }
    let short = &theirs[..theirs.len().min(7)];
    match (ancestry(theirs, &git.commit), ancestry(&git.commit, theirs)) {
        (Some(true), _) => Ok(Ok(())),
        (_, Some(true)) => Ok(Err(format!(
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
                Ok(Err(format!("`desired` stays at {short}: its commit is newer than {} (history too shallow to compare; fetch it whole for exact answers)", git.short_commit)))
            } else {
                Ok(Ok(()))
            }
        }
    }
}

pub async fn commit(req: CommitRequest<'_>) -> Result<Committed> {
    let store = Store::open_for_push(req.to, req.connect).await?;
    let current = match store.manifest(DESIRED_TAG).await? {
        Some(m) => Some(existing(&m)?),
        None => None,
    };
    let ours_docs: Vec<String> = req
        .docs
        .iter()
        .map(|d| Digest::of(d.text.as_bytes()).to_string())
        .collect();
    let mut tag = version_tag(req.git.time);
    let mut result = Committed {
        repository: req.to.to_string(),
        version: tag.clone(),
        digest: Digest::of(b""),
        manifest_version: req.manifest_version,
        published: false,
        desired_moved: false,
        note: None,
    };
    if let Some(cur) = &current {
        if cur.docs == ours_docs {
            result.digest = cur.digest.clone();
            result.version = cur.version.clone().unwrap_or_default();
            result.note = Some("unchanged: `desired` already holds this desired state".into());
            return Ok(result);
        }
    }
    let mut move_desired = true;
    if let Some(cur) = &current {
        if let Err(note) = may_move(cur, req.git, req.ancestry)? {
            move_desired = false;
            result.note = Some(note);
        }
    }
    // The version tag: this commit's, unless another commit of the same second holds it.
    if let Some(m) = store.manifest(&tag).await? {
        let e = existing(&m)?;
        if e.revision.as_deref() != Some(req.git.commit.as_str()) {
            tag = format!("{tag}-{}", req.git.short_commit);
        } else if e.docs != ours_docs {
            return Err(Error::invalid(format!(
                "version {tag} of commit {} already holds another desired state; versions are immutable",
                req.git.short_commit
            ))
            .with_hint("the package or the values changed outside git: commit the change, then commit the desired state"));
        }
    }
    let previous = if move_desired {
        current.as_ref().map(|c| c.digest.clone())
    } else {
        None
    };
    let built = build(&req, &tag, previous.as_ref())?;
    result.version = tag.clone();
    result.digest = built.manifest.digest.clone();
    match store.manifest(&tag).await? {
        Some(m) => result.digest = m.digest,
        None => {
            for b in &built.blobs {
                store.push_blob_bytes(b).await?;
            }
            store.put_manifest(&built.manifest).await?;
            store.set_tag(&built.manifest, &tag).await?;
            result.published = true;
        }
    }
    if move_desired {
        let ours = store.manifest(&tag).await?.ok_or_else(|| Error::NotFound {
            what: format!("version {tag}"),
            hint: None,
        })?;
        // Publishing took a while: ask again just before moving, so that the window in
        // which a newer committer's move could be overwritten is one request wide.
        let now = match store.manifest(DESIRED_TAG).await? {
            Some(m) => Some(existing(&m)?),
            None => None,
        };
        let moved_meanwhile =
            now.as_ref().map(|n| &n.digest) != current.as_ref().map(|c| &c.digest);
        let still_ours = match now.as_ref().filter(|_| moved_meanwhile) {
            Some(n) => match may_move(n, req.git, req.ancestry) {
                Ok(Ok(())) => true,
                Ok(Err(note)) => {
                    result.note = Some(note);
                    false
                }
                Err(_) => false,
            },
            None => true,
        };
        if still_ours {
            store.set_tag(&ours, DESIRED_TAG).await?;
            result.desired_moved = true;
            watch_desired(&store, &ours, req.git, req.ancestry).await?;
            converge(&store, &tag, req.git, req.ancestry).await?;
        }
    }
    Ok(result)
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

/// One version as `show` and `log` list it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    pub tag: String,
    pub digest: Digest,
    pub revision: Option<String>,
    pub subject: Option<String>,
    pub created: Option<String>,
    pub manifest_version: Option<u64>,
    pub previous: Option<String>,
    pub desired: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Shown {
    pub repository: String,
    pub desired: Option<Version>,
    /// The deployments `desired` holds: (title, YAML).
    pub documents: Vec<(String, String)>,
    pub versions: Vec<Version>,
}

fn version_of(tag: &str, m: &Manifest, desired: Option<&Digest>) -> Result<Version> {
    let ann = m.image()?.annotations.unwrap_or_default();
    Ok(Version {
        tag: tag.to_string(),
        digest: m.digest.clone(),
        revision: ann.get(media::ANN_REVISION).cloned(),
        subject: ann.get(ANN_SUBJECT).cloned(),
        created: ann.get(media::ANN_CREATED).cloned(),
        manifest_version: ann.get(ANN_MANIFEST_VERSION).and_then(|v| v.parse().ok()),
        previous: ann.get(ANN_PREVIOUS).cloned(),
        desired: desired == Some(&m.digest),
    })
}

/// The YAML documents of a desired-state manifest: (title, text), in layer order.
pub async fn documents(store: &Store, m: &Manifest) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for l in m
        .image()?
        .layers
        .iter()
        .filter(|l| l.media_type == LAYER_YAML)
    {
        let digest: Digest = l.digest.parse()?;
        let bytes = store.fetch_blob_bytes(&digest, Some(l.size as u64)).await?;
        let title = l
            .annotations
            .as_ref()
            .and_then(|a| a.get(media::ANN_TITLE).cloned())
            .unwrap_or_else(|| digest.to_string());
        out.push((title, String::from_utf8_lossy(&bytes).into_owned()));
    }
    Ok(out)
}

/// Every version of the repository, newest first.
pub async fn versions(store: &Store, desired: Option<&Digest>) -> Result<Vec<Version>> {
    let mut tags: Vec<String> = store
        .tags()
        .await?
        .into_iter()
        .filter(|t| is_version_tag(t))
        .collect();
    tags.sort_by(|a, b| b.cmp(a));
    let mut out = Vec::new();
    for t in tags {
        if let Some(m) = store.manifest(&t).await? {
            out.push(version_of(&t, &m, desired)?);
        }
    }
    Ok(out)
}

pub async fn show(repo: &Repo, connect: &Connect) -> Result<Shown> {
    let store = Store::open(repo, connect).await?;
    let desired = store.manifest(DESIRED_TAG).await?;
    let (head, documents) = match &desired {
        Some(m) => {
            let tag = m
                .image()?
                .annotations
                .unwrap_or_default()
                .get(media::ANN_VERSION)
                .cloned()
                .unwrap_or_default();
            (
                Some(version_of(&tag, m, Some(&m.digest))?),
                documents(&store, m).await?,
            )
        }
        None => (None, Vec::new()),
    };
    let versions = versions(&store, desired.as_ref().map(|m| &m.digest)).await?;
    Ok(Shown {
        repository: repo.to_string(),
        desired: head,
        documents,
        versions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_tags() {
        assert_eq!(version_tag(1_700_000_000), "20231114221320");
        assert!(is_version_tag("20231114221320"));
        assert!(is_version_tag("20231114221320-abc1234"));
        assert!(!is_version_tag("desired"));
        assert!(!is_version_tag("2023111422132"));
    }
}
