//! What `package publish` writes, and in which order, decided from the descriptor alone:
//! no registry is asked, so the plan can be shown, tested and executed the same way.
//!
//! Two layouts. `margo` (default) is the current spec's compose component artifact
//! (artifactType `application/vnd.org.margo.component.compose+json`, empty config, one
//! `…compose.tar+gzip` layer annotated with the component type and version), tagged with
//! the SemVer version, plus, when the app has a `margo.yaml`, the Application Package
//! (`application/vnd.margo.app.v1+json`: the description and one layer per resource) in
//! the sibling repository `<REPOSITORY>-app`. `poc` is the seed PoC's package artifact,
//! for its consumers. The same descriptor always yields the same manifest digests.
//!
//! The order ([`Plan::writes`]): every blob, every manifest by digest, the signature's
//! referrer, and last the tags; a failure before the tags leaves no tag on anything new.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_client::manifest::OciDescriptor;

use crate::error::{Error, Result};
use crate::margo::app;
use crate::oci::digest::{digest_reader, Digest};
use crate::oci::manifest::{self, Manifest};
use crate::oci::media;
use crate::oci::reference::{valid_tag, Repo};
use crate::package::descriptor::{tag_for_version, Descriptor};

/// The artifact layout to publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The current Margo specification's compose component (and Application Package).
    Margo,
    /// The seed PoC's package artifact.
    Poc,
}

/// Where and how to publish, as the command line says it.
pub(crate) struct PlanRequest<'a> {
    pub to: &'a Repo,
    pub app_to: Option<&'a Repo>,
    /// Tag with this version instead of the package's.
    pub version: Option<&'a str>,
    pub format: Format,
    pub extra_tags: &'a [String],
}

/// Every artifact to publish.
pub(crate) struct Plan {
    pub version: String,
    /// The package archive, as a file.
    pub archive: PathBuf,
    /// The package first; the Application Package after it.
    pub artifacts: Vec<Artifact>,
}

/// One artifact: its manifest, the blobs behind it, where it goes and its tags.
pub(crate) struct Artifact {
    pub repo: Repo,
    pub tags: Vec<String>,
    pub manifest: Manifest,
    pub artifact_type: String,
    pub blobs: Vec<Blob>,
}

pub(crate) struct Blob {
    pub descriptor: OciDescriptor,
    pub source: BlobSource,
}

pub(crate) enum BlobSource {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// One write, naming artifacts and blobs by their place in the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Write {
    Blob {
        artifact: usize,
        blob: usize,
    },
    Manifest {
        artifact: usize,
    },
    /// The package's signature, a referrer of the first artifact.
    Signature,
    Tag {
        artifact: usize,
        tag: String,
    },
}

impl Plan {
    /// Plans the publication of the package `d` whose files are in `base`.
    pub(crate) fn new(d: &Descriptor, base: &Path, req: &PlanRequest) -> Result<Plan> {
        let version = req.version.unwrap_or(&d.version).to_string();
        if !app::is_semver(&version) {
            return Err(Error::Usage(format!(
                "--version `{version}` is not SemVer (MAJOR.MINOR.PATCH)"
            )));
        }
        let mut tags = vec![tag_for_version(&version)];
        for t in req.extra_tags {
            if !valid_tag(t) {
                return Err(Error::Usage(format!("--tag `{t}` is not a valid OCI tag")));
            }
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
        let archive = base.join(&d.archive.file);
        let common = annotations(d, &version);
        let mut artifacts = vec![package_artifact(d, req, &archive, &version, &tags, &common)];
        if let (Format::Margo, Some(a)) = (req.format, &d.app) {
            let repo = req
                .app_to
                .cloned()
                .unwrap_or_else(|| req.to.sibling("-app"));
            artifacts.push(app_artifact(
                &base.join(&a.folder),
                d,
                repo,
                &tags,
                &common,
            )?);
        }
        for a in &mut artifacts {
            a.blobs.push(Blob {
                descriptor: manifest::empty_config(),
                source: BlobSource::Bytes(media::EMPTY_JSON.to_vec()),
            });
        }
        Ok(Plan {
            version,
            archive,
            artifacts,
        })
    }

    /// The writes, in the order they are made: blobs, manifests, the signature, tags.
    pub(crate) fn writes(&self, signed: bool) -> Vec<Write> {
        let each = || self.artifacts.iter().enumerate();
        let mut out: Vec<Write> = each()
            .flat_map(|(i, a)| {
                (0..a.blobs.len()).map(move |b| Write::Blob {
                    artifact: i,
                    blob: b,
                })
            })
            .collect();
        out.extend(each().map(|(i, _)| Write::Manifest { artifact: i }));
        if signed {
            out.push(Write::Signature);
        }
        out.extend(each().flat_map(|(i, a)| {
            a.tags.iter().map(move |t| Write::Tag {
                artifact: i,
                tag: t.clone(),
            })
        }));
        out
    }
}

/// The annotations every artifact of the package carries.
fn annotations(d: &Descriptor, version: &str) -> BTreeMap<String, String> {
    let mut common = BTreeMap::new();
    common.insert(media::ANN_VERSION.to_string(), version.to_string());
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
    common
}

/// The package itself: one compose archive layer, in the layout the format asks for.
fn package_artifact(
    d: &Descriptor,
    req: &PlanRequest,
    archive: &Path,
    version: &str,
    tags: &[String],
    common: &BTreeMap<String, String>,
) -> Artifact {
    let mut ann = BTreeMap::new();
    let (artifact_type, layer_type) = match req.format {
        Format::Margo => {
            ann.insert(media::ANN_MARGO_TYPE.to_string(), "compose".to_string());
            ann.insert(media::ANN_MARGO_VERSION.to_string(), version.to_string());
            ann.insert(media::ANN_TITLE.to_string(), d.archive.file.clone());
            (media::MARGO_COMPOSE_ARTIFACT, media::MARGO_COMPOSE_LAYER)
        }
        Format::Poc => {
            ann.insert(media::ANN_TITLE.to_string(), format!("{}.app", d.app_id));
            (media::POC_PACKAGE_ARTIFACT, media::POC_APP_LAYER)
        }
    };
    let layer = OciDescriptor {
        media_type: layer_type.into(),
        digest: d.archive.digest.to_string(),
        size: d.archive.size as i64,
        annotations: Some(ann),
        ..Default::default()
    };
    Artifact {
        repo: req.to.clone(),
        tags: tags.to_vec(),
        manifest: manifest::artifact(artifact_type, vec![layer.clone()], common.clone(), None),
        artifact_type: artifact_type.into(),
        blobs: vec![Blob {
            descriptor: layer,
            source: BlobSource::File(archive.to_path_buf()),
        }],
    }
}

/// The Application Package: `margo.yaml` and one layer per resource it names.
fn app_artifact(
    folder: &Path,
    d: &Descriptor,
    repo: Repo,
    tags: &[String],
    common: &BTreeMap<String, String>,
) -> Result<Artifact> {
    let app = d.app.as_ref().expect("called for packages with an app");
    let margo_path = folder.join(app::FILE_NAME);
    let mut ann = BTreeMap::new();
    ann.insert(media::ANN_TITLE.to_string(), app::FILE_NAME.to_string());
    let mut blobs = vec![file_blob(&margo_path, media::MARGO_APP_DESCRIPTION, ann)?];
    for r in &app.resources {
        let path = folder.join(&r.file);
        let mut ann = BTreeMap::new();
        ann.insert(media::ANN_MARGO_RESOURCE.to_string(), r.field.clone());
        ann.insert(media::ANN_TITLE.to_string(), title(&path));
        blobs.push(file_blob(&path, resource_media_type(&path), ann)?);
    }
    let layers = blobs.iter().map(|b| b.descriptor.clone()).collect();
    Ok(Artifact {
        repo,
        tags: tags.to_vec(),
        manifest: manifest::artifact(media::MARGO_APP_ARTIFACT, layers, common.clone(), None),
        artifact_type: media::MARGO_APP_ARTIFACT.into(),
        blobs,
    })
}

/// A file as a blob: its descriptor (hashed now) and the file.
fn file_blob(path: &Path, media_type: &str, annotations: BTreeMap<String, String>) -> Result<Blob> {
    let f = std::fs::File::open(path).map_err(Error::io("read", path))?;
    let (digest, size): (Digest, u64) =
        digest_reader(std::io::BufReader::new(f)).map_err(Error::io("read", path))?;
    Ok(Blob {
        descriptor: OciDescriptor {
            media_type: media_type.into(),
            digest: digest.to_string(),
            size: size as i64,
            annotations: Some(annotations),
            ..Default::default()
        },
        source: BlobSource::File(path.to_path_buf()),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::descriptor::{AppRef, FileRef, ResourceRef, DESCRIPTOR_SCHEMA};

    /// A prepared package in a folder: an archive, `margo.yaml` and one resource.
    fn prepared(dir: &Path) -> Descriptor {
        std::fs::write(dir.join("app-1.2.0.tar.gz"), b"archive bytes").unwrap();
        std::fs::create_dir_all(dir.join("app-1.2.0.app/resources")).unwrap();
        std::fs::write(dir.join("app-1.2.0.app/margo.yaml"), b"metadata: {}\n").unwrap();
        std::fs::write(dir.join("app-1.2.0.app/resources/icon.svg"), b"<svg/>").unwrap();
        Descriptor {
            schema: DESCRIPTOR_SCHEMA.into(),
            app_id: "app".into(),
            version: "1.2.0+build.7".into(),
            archive: FileRef {
                file: "app-1.2.0.tar.gz".into(),
                digest: Digest::of(b"archive bytes"),
                size: 13,
            },
            source_date_epoch: 1_700_000_000,
            git: None,
            platform: "linux/amd64".into(),
            images: Vec::new(),
            app: Some(AppRef {
                folder: "app-1.2.0.app".into(),
                name: Some("The App".into()),
                description: None,
                authors: vec!["Acme".into()],
                resources: vec![ResourceRef {
                    field: "metadata.catalog.application.icon".into(),
                    file: "resources/icon.svg".into(),
                }],
            }),
            signature: None,
        }
    }

    fn request<'a>(to: &'a Repo, format: Format, tags: &'a [String]) -> PlanRequest<'a> {
        PlanRequest {
            to,
            app_to: None,
            version: None,
            format,
            extra_tags: tags,
        }
    }

    #[test]
    fn the_margo_plan_writes_blobs_then_manifests_then_the_signature_then_tags() {
        let dir = tempfile::tempdir().unwrap();
        let d = prepared(dir.path());
        let to = Repo::Layout("out/app".into());
        let extra = vec!["latest".to_string()];
        let plan = Plan::new(&d, dir.path(), &request(&to, Format::Margo, &extra)).unwrap();

        assert_eq!(plan.version, "1.2.0+build.7");
        let [package, app] = &plan.artifacts[..] else {
            panic!("two artifacts")
        };
        assert_eq!(package.repo, to);
        assert_eq!(app.repo, Repo::Layout("out/app-app".into()));
        assert_eq!(package.tags, ["1.2.0_build.7", "latest"]);
        assert_eq!(package.artifact_type, media::MARGO_COMPOSE_ARTIFACT);
        assert_eq!(package.blobs.len(), 2, "the archive and the empty config");
        assert_eq!(app.blobs.len(), 3, "margo.yaml, the icon, the empty config");
        let m = package.manifest.image().unwrap();
        assert_eq!(m.layers[0].digest, d.archive.digest.to_string());
        let ann = m.annotations.unwrap();
        assert_eq!(ann[media::ANN_TITLE], "The App");
        assert_eq!(ann[media::ANN_CREATED], "2023-11-14T22:13:20Z");
        assert_eq!(ann[media::ANN_AUTHORS], "Acme");

        use Write::*;
        let blob = |artifact, blob| Blob { artifact, blob };
        let tag = |artifact, t: &str| Tag {
            artifact,
            tag: t.into(),
        };
        assert_eq!(
            plan.writes(true),
            vec![
                blob(0, 0),
                blob(0, 1),
                blob(1, 0),
                blob(1, 1),
                blob(1, 2),
                Manifest { artifact: 0 },
                Manifest { artifact: 1 },
                Signature,
                tag(0, "1.2.0_build.7"),
                tag(0, "latest"),
                tag(1, "1.2.0_build.7"),
                tag(1, "latest"),
            ]
        );
        assert!(!plan.writes(false).contains(&Signature));

        // The same descriptor always plans the same manifests.
        let again = Plan::new(&d, dir.path(), &request(&to, Format::Margo, &extra)).unwrap();
        assert_eq!(again.artifacts[0].manifest.digest, package.manifest.digest);
        assert_eq!(again.artifacts[1].manifest.digest, app.manifest.digest);
    }

    #[test]
    fn the_poc_plan_is_one_artifact_and_bad_versions_or_tags_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = prepared(dir.path());
        let to = Repo::Layout("out/app".into());
        let plan = Plan::new(&d, dir.path(), &request(&to, Format::Poc, &[])).unwrap();
        assert_eq!(plan.artifacts.len(), 1);
        assert_eq!(plan.artifacts[0].artifact_type, media::POC_PACKAGE_ARTIFACT);

        let bad_tag = vec!["-nope".to_string()];
        let e = Plan::new(&d, dir.path(), &request(&to, Format::Margo, &bad_tag)).err();
        assert!(matches!(e, Some(Error::Usage(m)) if m.contains("not a valid OCI tag")));
        let mut req = request(&to, Format::Margo, &[]);
        req.version = Some("v2");
        let e = Plan::new(&d, dir.path(), &req).err();
        assert!(matches!(e, Some(Error::Usage(m)) if m.contains("not SemVer")));
    }
}
