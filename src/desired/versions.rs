//! Desired-state versions in a registry: what one version holds, and how versions and the
//! `desired` tag are listed (`desired-state show`, `log`).
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
//! Publishing them and moving `desired` is [`crate::desired::commit`]'s job.

use std::collections::BTreeMap;

use futures_util::{StreamExt as _, TryStreamExt as _};
use oci_client::manifest::OciDescriptor;
use serde::Serialize;

use crate::desired::package::blob_url;
use crate::desired::render::Rendered;
use crate::error::{Error, Result};
use crate::git::CommitInfo;
use crate::oci::digest::Digest;
use crate::oci::manifest::{self, Manifest};
use crate::oci::media;
use crate::oci::reference::Repo;
use crate::oci::store::{Connect, Store};
use crate::package::archive::TarWriter;
use crate::package::gzip::GzipWriter;

pub(crate) const ARTIFACT: &str = "application/vnd.margo.desired-state.v1";
pub(crate) const LAYER_YAML: &str = "application/vnd.margo.desired-state.v1+yaml";
pub(crate) const MANIFEST_JSON: &str = "application/vnd.margo.manifest.v1+json";
pub(crate) const BUNDLE: &str = "application/vnd.margo.bundle.v1+tar+gzip";
pub(crate) const DESIRED_TAG: &str = "desired";

pub(crate) const ANN_PREVIOUS: &str = "org.margo.gitops.previous";
pub(crate) const ANN_MANIFEST_VERSION: &str = "org.margo.gitops.manifest-version";
pub(crate) const ANN_SUBJECT: &str = "org.margo.gitops.subject";
pub(crate) const ANN_DEPLOYMENT_ID: &str = "org.margo.deployment.id";

/// The version tag of a commit time: `YYYYMMDDHHMMSS`, UTC.
pub(crate) fn version_tag(epoch: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year][month][day][hour][minute][second]");
    t.format(&f).unwrap_or_default()
}

/// True for tags that name versions (`YYYYMMDDHHMMSS`, optionally `-<short commit>`).
pub(crate) fn is_version_tag(tag: &str) -> bool {
    let (time, rest) = tag.split_at(tag.len().min(14));
    time.len() == 14
        && time.bytes().all(|b| b.is_ascii_digit())
        && (rest.is_empty()
            || (rest.starts_with('-') && rest[1..].bytes().all(|b| b.is_ascii_hexdigit())))
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

/// What differs between `m`, a version found in the registry rather than built by this
/// run, and what `v` would publish; `None` when it holds exactly that, so that signing it
/// signs nothing else: the documents and the bundle by digest, the State Manifest byte for
/// byte (its `manifestVersion`, deployments, digests, URLs and sizes, and bundle), and its
/// annotated `manifestVersion`, if any, the same. Annotations a device does not read
/// (subject, source, previous, created) are not compared.
pub(crate) fn what_differs(m: &Manifest, v: &VersionInput) -> Result<Option<String>> {
    let image = m.image()?;
    if image.artifact_type.as_deref() != Some(ARTIFACT) {
        return Ok(Some("it is not a desired-state version".into()));
    }
    let built = build(v, "", None)?;
    let ours = built.manifest.image()?;
    let same = |l: &OciDescriptor, o: &OciDescriptor| {
        l.media_type == o.media_type && l.digest == o.digest && l.size == o.size
    };
    let documents = |i: &oci_client::manifest::OciImageManifest| -> Vec<String> {
        i.layers
            .iter()
            .filter(|l| l.media_type == LAYER_YAML)
            .map(|l| l.digest.clone())
            .collect()
    };
    if image.layers.len() != ours.layers.len()
        || !image
            .layers
            .iter()
            .zip(&ours.layers)
            .all(|(l, o)| same(l, o))
    {
        let what = match documents(&image) == documents(&ours) {
            false => "its deployment documents differ",
            true => "its bundle or its State Manifest (manifestVersion, deployments) differ",
        };
        return Ok(Some(format!(
            "{what} (this one publishes manifestVersion {})",
            v.manifest_version
        )));
    }
    let annotated = image
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANN_MANIFEST_VERSION));
    if annotated.is_some_and(|a| a.parse::<u64>().ok() != Some(v.manifest_version)) {
        return Ok(Some(format!(
            "its annotation {ANN_MANIFEST_VERSION} is not {}",
            v.manifest_version
        )));
    }
    Ok(None)
}

/// What one version holds: the rendered documents of one commit, and where it is served
/// from (the blob URLs of the Desired State Manifest name it).
pub(crate) struct VersionInput<'a> {
    pub to: &'a Repo,
    pub plain_http: bool,
    pub docs: &'a [Rendered],
    pub git: &'a CommitInfo,
    /// The repository's public URL, for the `source` annotation.
    pub source: Option<&'a str>,
    pub manifest_version: u64,
}

/// The bytes of one version: its blobs and its manifest.
pub(crate) struct Built {
    pub blobs: Vec<Vec<u8>>,
    pub manifest: Manifest,
}

/// The blob of `bytes` as a layer of `media_type`, annotated.
fn layer(media_type: &str, bytes: &[u8], annotations: BTreeMap<String, String>) -> OciDescriptor {
    OciDescriptor {
        media_type: media_type.into(),
        digest: Digest::of(bytes).to_string(),
        size: bytes.len() as i64,
        annotations: Some(annotations),
        ..Default::default()
    }
}

fn titled(title: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(media::ANN_TITLE.to_string(), title.to_string())])
}

/// The version `tag` of `v`, chained to `previous`.
pub(crate) fn build(v: &VersionInput, tag: &str, previous: Option<&Digest>) -> Result<Built> {
    let mut blobs = Vec::new();
    let mut layers = Vec::new();
    let mut deployments = Vec::new();
    let url = |d: &Digest| blob_url(v.to, d.as_str(), v.plain_http);
    for d in v.docs {
        let bytes = d.text.as_bytes().to_vec();
        let mut ann = titled(&format!("{}.yaml", d.name));
        ann.insert(ANN_DEPLOYMENT_ID.to_string(), d.id.clone());
        let digest = Digest::of(&bytes);
        deployments.push(serde_json::json!({
            "deploymentId": d.id,
            "digest": digest.to_string(),
            "url": url(&digest),
            "sizeBytes": bytes.len(),
        }));
        layers.push(layer(LAYER_YAML, &bytes, ann));
        blobs.push(bytes);
    }
    let bundle = bundle(v.docs)?;
    let bundle_digest = Digest::of(&bundle);
    let bundle_json = if v.docs.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!({
            "mediaType": BUNDLE,
            "digest": bundle_digest.to_string(),
            "url": url(&bundle_digest),
            "sizeBytes": bundle.len(),
        })
    };
    layers.push(layer(BUNDLE, &bundle, titled("bundle.tar.gz")));
    blobs.push(bundle);
    let dsm = serde_json::to_vec(&serde_json::json!({
        "manifestVersion": v.manifest_version,
        "bundle": bundle_json,
        "deployments": deployments,
    }))
    .expect("JSON");
    layers.push(layer(MANIFEST_JSON, &dsm, titled("manifest.json")));
    blobs.push(dsm);
    blobs.push(media::EMPTY_JSON.to_vec());
    Ok(Built {
        blobs,
        manifest: manifest::artifact(ARTIFACT, layers, annotations(v, tag, previous), None),
    })
}

/// The bundle: every document, by name, with fixed times so equal states give equal bytes.
fn bundle(docs: &[Rendered]) -> Result<Vec<u8>> {
    let mut sorted: Vec<&Rendered> = docs.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let io = |e: std::io::Error| Error::io("write", "the desired-state bundle")(e);
    let gz = GzipWriter::new(Vec::new(), flate2::Compression::best()).map_err(io)?;
    let mut tar = TarWriter::new(gz, 0);
    for d in &sorted {
        tar.file_bytes(&format!("{}.yaml", d.name), 0o644, d.text.as_bytes())
            .map_err(io)?;
    }
    tar.finish().map_err(io)?.finish().map_err(io)
}

fn annotations(v: &VersionInput, tag: &str, previous: Option<&Digest>) -> BTreeMap<String, String> {
    let mut ann = BTreeMap::new();
    ann.insert(
        media::ANN_CREATED.to_string(),
        media::rfc3339(v.git.time.max(0) as u64),
    );
    ann.insert(media::ANN_REVISION.to_string(), v.git.commit.clone());
    ann.insert(media::ANN_VERSION.to_string(), tag.to_string());
    ann.insert(ANN_SUBJECT.to_string(), v.git.subject.clone());
    ann.insert(
        ANN_MANIFEST_VERSION.to_string(),
        v.manifest_version.to_string(),
    );
    if let Some(s) = v.source {
        ann.insert(media::ANN_SOURCE.to_string(), s.to_string());
    }
    if let Some(p) = previous {
        ann.insert(ANN_PREVIOUS.to_string(), p.to_string());
    }
    ann
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
    /// Who signed it, as its signatures say, newest first (`desired-state verify`, and
    /// `log --verify` with a trust policy, check them); empty when unsigned.
    pub signed_by: Vec<String>,
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
        signed_by: Vec::new(),
    })
}

/// Who signed the version `digest`, as its signatures describe themselves, newest first.
async fn signers(store: &Store, digest: &Digest) -> Result<Vec<String>> {
    let found = crate::signing::found::signatures(store, digest).await?;
    Ok(found.iter().rev().map(|(f, _)| f.signer()).collect())
}

/// The YAML documents of a desired-state manifest: (title, text), in layer order.
pub(crate) async fn documents(store: &Store, m: &Manifest) -> Result<Vec<(String, String)>> {
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
pub(crate) async fn versions(store: &Store, desired: Option<&Digest>) -> Result<Vec<Version>> {
    Ok(versions_read(store, desired)
        .await?
        .into_iter()
        .map(|(v, _)| v)
        .collect())
}

/// [`versions`], each with its manifest as the registry served it.
pub(crate) async fn versions_read(
    store: &Store,
    desired: Option<&Digest>,
) -> Result<Vec<(Version, Manifest)>> {
    let mut tags: Vec<String> = store
        .tags()
        .await?
        .into_iter()
        .filter(|t| is_version_tag(t))
        .collect();
    tags.sort_by(|a, b| b.cmp(a));
    // Read together (each manifest, then who signed it), listed in order.
    let read: Vec<Option<(Manifest, Vec<String>)>> = futures_util::stream::iter(&tags)
        .map(|t| async move {
            let Some(m) = store.manifest(t).await? else {
                return Ok(None);
            };
            let signed_by = signers(store, &m.digest).await?;
            Ok::<_, Error>(Some((m, signed_by)))
        })
        .buffered(store.concurrency())
        .try_collect()
        .await?;
    let mut out = Vec::new();
    for (t, read) in tags.iter().zip(read) {
        if let Some((m, signed_by)) = read {
            let mut v = version_of(t, &m, desired)?;
            v.signed_by = signed_by;
            out.push((v, m));
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
            let mut head = version_of(&tag, m, Some(&m.digest))?;
            head.signed_by = signers(&store, &m.digest).await?;
            (Some(head), documents(&store, m).await?)
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

/// `desired-state verify`: the signature of the desired-state version `reference` names,
/// checked as `package verify` checks a package's; anything but a desired-state version is
/// refused, and so is an OpenPGP requirement (OpenPGP signs package archives).
pub async fn verify(
    reference: &str,
    req: &crate::signing::verify::Requirement,
    connect: &Connect,
) -> Result<crate::signing::verify::Verified> {
    if matches!(req, crate::signing::verify::Requirement::Pgp(_)) {
        return Err(Error::Usage(
            "--pgp-key: OpenPGP signs package archives only; name a --key or a keyless identity"
                .into(),
        ));
    }
    let (verified, _, subject) =
        crate::signing::verify::verify_subject(reference, req, connect).await?;
    let image = subject.image()?;
    if image.artifact_type.as_deref() != Some(ARTIFACT) {
        return Err(Error::invalid(format!(
            "{reference} is signed, but it is not a desired state (artifactType {:?}, not {ARTIFACT})",
            image.artifact_type.as_deref().unwrap_or("none")
        )));
    }
    Ok(verified)
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
