//! `package publish`: lay a prepared package out as OCI artifacts and push them.
//!
//! Two layouts. `margo` (default) is the current spec's compose component artifact
//! (artifactType `application/vnd.org.margo.component.compose+json`, empty config, one
//! `…compose.tar+gzip` layer annotated with the component type and version), tagged
//! with the SemVer version, plus, when the app has a `margo.yaml`, the Application
//! Package (`application/vnd.margo.app.v1+json`: the description and one layer per
//! resource) in the sibling repository `<REPOSITORY>-app`. `poc` is the seed PoC's
//! package artifact, for its consumers. Manifests are built from the descriptor alone,
//! so the same package always yields the same manifest digests.
//!
//! Order: the package is signed first (with `--sign`; keyless asks Fulcio and Rekor), before
//! any write; then every blob (skipping those the store has), every manifest by digest,
//! the signature's referrer, and last the tags. A failure before the tags leaves no tag on
//! anything new, and a failed signature leaves the registry untouched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_client::manifest::{OciDescriptor, OciImageManifest};

use crate::oci::digest::Digest;

use crate::error::{Error, Result};
use crate::oci::manifest::Manifest;
use crate::oci::media;
use crate::oci::reference::{valid_tag, Repo};
use crate::oci::store::{Connect, Store};
use crate::package::descriptor::{tag_for_version, Descriptor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Margo,
    Poc,
}

pub struct PublishOptions {
    pub input: PathBuf,
    pub to: Repo,
    pub app_to: Option<Repo>,
    pub version: Option<String>,
    pub format: Format,
    pub extra_tags: Vec<String>,
    pub connect: Connect,
    pub sign: crate::signing::mode::SignOptions,
    /// Move a version tag that already names other content (`--replace`); refused otherwise.
    pub replace: bool,
}

/// One artifact as published.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PublishedArtifact {
    pub repository: String,
    pub tags: Vec<String>,
    pub digest: Digest,
    pub artifact_type: String,
    /// Blobs sent / blobs the store already had.
    pub blobs_uploaded: usize,
    pub blobs_present: usize,
    /// Tags that now point somewhere new.
    pub tags_moved: Vec<String>,
    /// The signature's referrer manifest, when the artifact was signed.
    pub signature: Option<Digest>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Published {
    pub app_id: String,
    pub version: String,
    pub artifacts: Vec<PublishedArtifact>,
}

/// A manifest to publish, the files behind its layers, and where.
struct Plan {
    repo: Repo,
    tags: Vec<String>,
    manifest: Manifest,
    artifact_type: String,
    blobs: Vec<(OciDescriptor, BlobSource)>,
}

enum BlobSource {
    File(PathBuf),
    Bytes(Vec<u8>),
}

fn empty_config() -> OciDescriptor {
    OciDescriptor {
        media_type: media::OCI_EMPTY.into(),
        digest: Digest::of(media::EMPTY_JSON).to_string(),
        size: media::EMPTY_JSON.len() as i64,
        ..Default::default()
    }
}

fn file_descriptor(
    path: &Path,
    media_type: &str,
    annotations: BTreeMap<String, String>,
) -> Result<OciDescriptor> {
    let f = std::fs::File::open(path).map_err(Error::io("read", path))?;
    let (digest, size) = crate::oci::digest::digest_reader(std::io::BufReader::new(f))
        .map_err(Error::io("read", path))?;
    Ok(OciDescriptor {
        media_type: media_type.into(),
        digest: digest.to_string(),
        size: size as i64,
        annotations: Some(annotations),
        ..Default::default()
    })
}

fn manifest_of(
    artifact_type: &str,
    layers: Vec<OciDescriptor>,
    annotations: BTreeMap<String, String>,
) -> Manifest {
    let m = OciImageManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: Some(artifact_type.into()),
        config: empty_config(),
        layers,
        annotations: Some(annotations),
        ..Default::default()
    };
    Manifest::new(media::OCI_MANIFEST, serde_json::to_vec(&m).expect("JSON"))
}

/// Media type of a resource file, by extension.
fn resource_media_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        Some("md") => "text/markdown",
        Some("txt") => "text/plain",
        Some("pdf") => "application/pdf",
        Some("html" | "htm") => "text/html",
        _ => "application/octet-stream",
    }
}

fn title(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub async fn publish(opts: &PublishOptions) -> Result<Published> {
    let (d, descriptor_path) = Descriptor::find(&opts.input)?;
    let signer = crate::signing::signer::Signer::new(&opts.sign)?;
    let base = descriptor_path
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let archive = base.join(&d.archive.file);
    // The archive must be the one prepare wrote: a changed file would publish unknown bytes.
    let f = std::fs::File::open(&archive).map_err(Error::io("read", &archive))?;
    let (digest, _) = crate::oci::digest::digest_reader(std::io::BufReader::new(f))
        .map_err(Error::io("read", &archive))?;
    if digest != d.archive.digest {
        return Err(Error::invalid_file(
            &archive,
            None,
            "the archive changed since `package prepare` wrote it",
        )
        .with_hint("run `margo-gitops package prepare` again"));
    }

    let version = opts.version.clone().unwrap_or_else(|| d.version.clone());
    if !crate::margo::app::is_semver(&version) {
        return Err(Error::Usage(format!(
            "--version `{version}` is not SemVer (MAJOR.MINOR.PATCH)"
        )));
    }
    let mut tags = vec![tag_for_version(&version)];
    for t in &opts.extra_tags {
        if !valid_tag(t) {
            return Err(Error::Usage(format!("--tag `{t}` is not a valid OCI tag")));
        }
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }

    let mut common = BTreeMap::new();
    common.insert(media::ANN_VERSION.to_string(), version.clone());
    common.insert(
        media::ANN_CREATED.to_string(),
        media::rfc3339(d.source_date_epoch),
    );
    if let Some(git) = &d.git {
        common.insert(media::ANN_REVISION.to_string(), git.commit.clone());
        if let Some(s) = &git.source {
            common.insert(media::ANN_SOURCE.to_string(), s.clone());
        }
    }
    let app_title = d
        .app
        .as_ref()
        .and_then(|a| a.name.clone())
        .unwrap_or_else(|| d.app_id.clone());
    common.insert(media::ANN_TITLE.to_string(), app_title);
    if let Some(app) = &d.app {
        if let Some(desc) = &app.description {
            common.insert(media::ANN_DESCRIPTION.to_string(), desc.clone());
        }
        if !app.authors.is_empty() {
            common.insert(media::ANN_AUTHORS.to_string(), app.authors.join(", "));
        }
    }

    let mut plans = Vec::new();
    match opts.format {
        Format::Margo => {
            let mut ann = BTreeMap::new();
            ann.insert(media::ANN_MARGO_TYPE.to_string(), "compose".to_string());
            ann.insert(media::ANN_MARGO_VERSION.to_string(), version.clone());
            ann.insert(media::ANN_TITLE.to_string(), d.archive.file.clone());
            let layer = OciDescriptor {
                media_type: media::MARGO_COMPOSE_LAYER.into(),
                digest: d.archive.digest.to_string(),
                size: d.archive.size as i64,
                annotations: Some(ann),
                ..Default::default()
            };
            plans.push(Plan {
                repo: opts.to.clone(),
                tags: tags.clone(),
                manifest: manifest_of(
                    media::MARGO_COMPOSE_ARTIFACT,
                    vec![layer.clone()],
                    common.clone(),
                ),
                artifact_type: media::MARGO_COMPOSE_ARTIFACT.into(),
                blobs: vec![(layer, BlobSource::File(archive.clone()))],
            });
            if let Some(app) = &d.app {
                let folder = base.join(&app.folder);
                let margo_path = folder.join(crate::margo::app::FILE_NAME);
                let mut ann = BTreeMap::new();
                ann.insert(
                    media::ANN_TITLE.to_string(),
                    crate::margo::app::FILE_NAME.to_string(),
                );
                let mut layers = vec![file_descriptor(
                    &margo_path,
                    media::MARGO_APP_DESCRIPTION,
                    ann,
                )?];
                let mut blobs = vec![(layers[0].clone(), BlobSource::File(margo_path))];
                for r in &app.resources {
                    let path = folder.join(&r.file);
                    let mut ann = BTreeMap::new();
                    ann.insert(media::ANN_MARGO_RESOURCE.to_string(), r.field.clone());
                    ann.insert(media::ANN_TITLE.to_string(), title(&path));
                    let desc = file_descriptor(&path, resource_media_type(&path), ann)?;
                    layers.push(desc.clone());
                    blobs.push((desc, BlobSource::File(path)));
                }
                plans.push(Plan {
                    repo: opts
                        .app_to
                        .clone()
                        .unwrap_or_else(|| opts.to.sibling("-app")),
                    tags: tags.clone(),
                    manifest: manifest_of(media::MARGO_APP_ARTIFACT, layers, common.clone()),
                    artifact_type: media::MARGO_APP_ARTIFACT.into(),
                    blobs,
                });
            }
        }
        Format::Poc => {
            let mut ann = BTreeMap::new();
            ann.insert(media::ANN_TITLE.to_string(), format!("{}.app", d.app_id));
            let layer = OciDescriptor {
                media_type: media::POC_APP_LAYER.into(),
                digest: d.archive.digest.to_string(),
                size: d.archive.size as i64,
                annotations: Some(ann),
                ..Default::default()
            };
            plans.push(Plan {
                repo: opts.to.clone(),
                tags: tags.clone(),
                manifest: manifest_of(
                    media::POC_PACKAGE_ARTIFACT,
                    vec![layer.clone()],
                    common.clone(),
                ),
                artifact_type: media::POC_PACKAGE_ARTIFACT.into(),
                blobs: vec![(layer, BlobSource::File(archive.clone()))],
            });
        }
    }
    for p in &mut plans {
        p.blobs.push((
            empty_config(),
            BlobSource::Bytes(media::EMPTY_JSON.to_vec()),
        ));
    }

    // Open every destination first: a refused login stops the run before any write.
    let mut stores = Vec::new();
    for p in &plans {
        stores.push(Store::open_for_push(&p.repo, &opts.connect).await?);
    }
    // Versions are immutable: desired states name packages by version, so a version tag
    // that already names other content is refused before anything is written.
    if !opts.replace {
        let version_tag = tag_for_version(&version);
        for (p, store) in plans.iter().zip(&stores) {
            match store.resolve(&version_tag).await? {
                Some(existing) if existing != p.manifest.digest => {
                    return Err(Error::invalid(format!(
                        "{}:{version_tag} already names {existing}, not this content ({}); a published version is immutable",
                        p.repo, p.manifest.digest
                    ))
                    .with_hint("bump `metadata.version` in margo.yaml, or pass --replace to move the tag"));
                }
                _ => {}
            }
        }
    }
    // The package (the first artifact) is signed before anything is written: a refused
    // token or an unreachable Fulcio or Rekor leaves the registry untouched.
    let signature = match (&signer, plans.first(), stores.first()) {
        (Some(signer), Some(p), Some(store)) => Some(
            signer
                .sign_package(&p.manifest, store, Some(&archive))
                .await?,
        ),
        _ => None,
    };
    let mut results: Vec<PublishedArtifact> = Vec::new();
    for (p, store) in plans.iter().zip(&stores) {
        let (mut up, mut present) = (0, 0);
        for (desc, source) in &p.blobs {
            let sent = match source {
                BlobSource::File(path) => store.push_blob_file(desc, path).await?,
                BlobSource::Bytes(b) => store.push_blob_bytes(b).await?,
            };
            if sent {
                up += 1;
            } else {
                present += 1;
            }
        }
        results.push(PublishedArtifact {
            repository: p.repo.to_string(),
            tags: p.tags.clone(),
            digest: p.manifest.digest.clone(),
            artifact_type: p.artifact_type.clone(),
            blobs_uploaded: up,
            blobs_present: present,
            tags_moved: Vec::new(),
            signature: None,
        });
    }
    for (p, store) in plans.iter().zip(&stores) {
        if store.resolve(p.manifest.digest.as_str()).await?.is_none() {
            store.put_manifest(&p.manifest).await?;
        }
    }
    // Its signature is attached before any tag moves.
    if let (Some(signature), Some(p), Some(store), Some(result)) = (
        &signature,
        plans.first(),
        stores.first(),
        results.first_mut(),
    ) {
        result.signature =
            Some(crate::signing::signer::attach_signature(store, &p.manifest, signature).await?);
    }
    for ((p, store), result) in plans.iter().zip(&stores).zip(&mut results) {
        for tag in &p.tags {
            if store.set_tag(&p.manifest, tag).await? {
                result.tags_moved.push(tag.clone());
            }
        }
    }
    Ok(Published {
        app_id: d.app_id,
        version,
        artifacts: results,
    })
}
