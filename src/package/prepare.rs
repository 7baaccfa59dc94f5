//! `package prepare`: turn a compose app folder into one Margo Compose Archive.
//!
//! The archive (`<app-id>-<version>.tar.gz`) holds one top-level folder named after the
//! app: `compose.yaml` with every image pinned by digest, the env files, configs and
//! bind-mounted files the compose file uses, and `images/*.tar`, one archive per image
//! (see [`crate::package::image`]) unless `--no-images`. It is reproducible: entries sorted, owner
//! 0:0, modes 0644/0755, every mtime `SOURCE_DATE_EPOCH` or the last commit's time.
//! Beside it go a descriptor (`<app-id>-<version>.json`) that `package publish` reads,
//! and, when the app has a `margo.yaml`, a copy of it and its resources
//! (`<app-id>-<version>.app/`) for the Application Package.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use flate2::Compression;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::git::{self, GitInfo};
use crate::margo::app::{self, AppDescription};
use crate::oci::digest::{Digest, HashingWriter};
use crate::oci::store::Connect;
use crate::package::archive::{GzipWriter, TarWriter};
use crate::package::compose::ComposeApp;
use crate::package::image::{self, Platform, ResolvedImage};

/// Identifies descriptors written by this version of the format.
pub const DESCRIPTOR_SCHEMA: &str = "margo-gitops.package.v1";

pub struct PrepareOptions {
    pub app_dir: PathBuf,
    pub out_dir: PathBuf,
    pub platform: Platform,
    /// `--image SERVICE=PATH`: local archives for services that are built.
    pub images: Vec<(String, PathBuf)>,
    pub no_images: bool,
    pub version: Option<String>,
    pub app_id: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub connect: Connect,
    /// `--sign`: a Sigstore bundle over the archive, written beside it.
    pub sign: crate::signing::mode::SignOptions,
}

/// What `prepare` wrote, and what `publish` reads back.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub schema: String,
    pub app_id: String,
    pub version: String,
    pub archive: FileRef,
    pub source_date_epoch: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitRef>,
    pub platform: String,
    pub images: Vec<ImageRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppRef>,
    /// The Sigstore bundle over the archive (`--sign`), a file beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileRef {
    pub file: String,
    pub digest: Digest,
    pub size: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct GitRef {
    pub commit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ImageRef {
    pub services: Vec<String>,
    pub reference: String,
    pub digest: Digest,
    pub source: String,
    /// Path of the image archive inside the package, when images are included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_size: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppRef {
    /// Folder (beside the archive) holding `margo.yaml` and its resources.
    pub folder: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub authors: Vec<String>,
    pub resources: Vec<ResourceRef>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResourceRef {
    pub field: String,
    pub file: String,
}

/// The result of a prepare: the descriptor and where it was written.
pub struct Prepared {
    pub descriptor: Descriptor,
    pub descriptor_path: PathBuf,
    pub archive_path: PathBuf,
}

impl Descriptor {
    /// Reads the descriptor for a package file or an output folder.
    pub fn find(input: &Path) -> Result<(Descriptor, PathBuf)> {
        let path = if input.is_dir() {
            let mut found = Vec::new();
            for entry in fs::read_dir(input).map_err(Error::io("read", input))? {
                let p = entry.map_err(Error::io("read", input))?.path();
                if p.extension().is_some_and(|e| e == "json") && Self::read(&p).is_ok() {
                    found.push(p);
                }
            }
            found.sort();
            match found.len() {
                1 => found.remove(0),
                0 => {
                    return Err(Error::Usage(format!(
                        "{} holds no prepared package; run `margo-gitops package prepare` first",
                        input.display()
                    )))
                }
                _ => {
                    let names: Vec<String> =
                        found.iter().map(|p| p.display().to_string()).collect();
                    return Err(Error::Usage(format!(
                        "{} holds several packages ({}); name the .tar.gz to publish",
                        input.display(),
                        names.join(", ")
                    )));
                }
            }
        } else {
            let name = input.to_string_lossy();
            let stem = name.strip_suffix(".tar.gz").ok_or_else(|| {
                Error::Usage(format!(
                    "{} is neither a folder nor a .tar.gz package",
                    input.display()
                ))
            })?;
            PathBuf::from(format!("{stem}.json"))
        };
        let d = Self::read(&path)?;
        Ok((d, path))
    }

    fn read(path: &Path) -> Result<Descriptor> {
        let text = fs::read(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Usage(format!(
                    "{} not found: publish reads what `package prepare` wrote beside the archive",
                    path.display()
                ))
            } else {
                Error::io("read", path)(e)
            }
        })?;
        let d: Descriptor = serde_json::from_slice(&text).map_err(|e| {
            Error::invalid_file(
                path,
                Some(e.line()),
                format!("not a package descriptor: {e}"),
            )
        })?;
        if d.schema != DESCRIPTOR_SCHEMA {
            return Err(Error::invalid_file(
                path,
                None,
                format!("unknown descriptor schema `{}`", d.schema),
            ));
        }
        Ok(d)
    }

    /// File name stem shared by the archive, the descriptor and the app folder.
    pub fn stem(&self) -> String {
        format!("{}-{}", self.app_id, self.version)
    }
}

/// The time every archive entry carries: `SOURCE_DATE_EPOCH`, else the commit's, else 0.
pub fn source_date_epoch(git: Option<&GitInfo>) -> Result<u64> {
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        return v.trim().parse().map_err(|_| {
            Error::Usage(format!(
                "SOURCE_DATE_EPOCH `{v}` is not a whole number of seconds"
            ))
        });
    }
    Ok(git.map(|g| g.commit_time.max(0) as u64).unwrap_or(0))
}

/// Turns a folder or project name into an app id (`My App` → `my-app`).
fn to_app_id(name: &str) -> String {
    let mut id: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    id.truncate(200);
    id.trim_matches('-').to_string()
}

pub async fn prepare(opts: &PrepareOptions) -> Result<Prepared> {
    // A bad key or a missing identity token stops before any work.
    let signer = crate::signing::signer::Signer::new(&opts.sign)?;
    let compose = ComposeApp::load(&opts.app_dir)?;
    let margo = app::load(&opts.app_dir)?;
    let app_id = match (&opts.app_id, &margo) {
        (Some(id), _) => id.clone(),
        (None, Some(m)) => m.id.clone(),
        (None, None) => {
            let folder = opts
                .app_dir
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default();
            to_app_id(compose.name.as_deref().unwrap_or(&folder))
        }
    };
    if !app::valid_app_id(&app_id) {
        return Err(Error::Usage(format!(
            "app id `{app_id}` must match ^[-a-z0-9]{{1,200}}$; set metadata.id in margo.yaml or pass --app-id"
        )));
    }
    let version = match (&opts.version, &margo) {
        (Some(v), _) => v.clone(),
        (None, Some(m)) => m.version.clone(),
        (None, None) => {
            return Err(Error::Usage(
                "no version: add a margo.yaml with metadata.version, or pass --version".into(),
            ))
        }
    };
    if !app::is_semver(&version) {
        return Err(Error::Usage(format!(
            "version `{version}` is not SemVer (MAJOR.MINOR.PATCH)"
        )));
    }

    let git = git::discover(&opts.app_dir);
    let mtime = source_date_epoch(git.as_ref())?;

    let mut archives: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (service, path) in &opts.images {
        if !compose.services.iter().any(|s| &s.name == service) {
            let names: Vec<&str> = compose.services.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::Usage(format!(
                "--image {service}=…: the compose file has no service `{service}` (services: {})",
                names.join(", ")
            )));
        }
        let is_layout = path
            .to_string_lossy()
            .starts_with(crate::oci::reference::LAYOUT_PREFIX);
        if !is_layout && !path.is_file() {
            return Err(Error::Usage(format!(
                "--image {service}={}: no such file",
                path.display()
            )));
        }
        archives.insert(service.clone(), path.clone());
    }

    let cache = image::open_cache(opts.cache_dir.as_deref())?;
    let project = compose.name.clone().unwrap_or_else(|| app_id.clone());
    // One entry per distinct image (by manifest digest), with the services that use it.
    let mut images: BTreeMap<Digest, (ResolvedImage, Vec<String>)> = BTreeMap::new();
    let mut pins = BTreeMap::new();
    for service in &compose.services {
        let resolved = if let Some(path) = archives.get(&service.name) {
            if opts.no_images {
                return Err(Error::Usage(format!(
                    "service `{}` comes from a local archive, which --no-images would leave nowhere; push it to a registry and name it in `image:`, or drop --no-images",
                    service.name
                )));
            }
            let source = path.to_string_lossy();
            let mut img = if source.starts_with(crate::oci::reference::LAYOUT_PREFIX) {
                image::from_registry(&source, &opts.platform, &opts.connect, &cache, true).await?
            } else {
                image::from_archive(path, &opts.platform, &cache, service.image.as_deref())?
            };
            if let Some(written) = &service.image {
                (img.name, img.tag) = image::split_name(written);
            } else if img.name.is_empty()
                || img.name.starts_with(crate::oci::reference::LAYOUT_PREFIX)
            {
                img.name = format!("{project}-{}", service.name);
                img.tag = Some("latest".into());
            }
            img
        } else if let Some(reference) = &service.image {
            image::from_registry(
                reference,
                &opts.platform,
                &opts.connect,
                &cache,
                !opts.no_images,
            )
            .await
            .map_err(|e| match e {
                Error::NotFound { what, hint } => Error::NotFound {
                    what: format!("{what}, used by service `{}`", service.name),
                    hint,
                },
                other => other,
            })?
        } else {
            return Err(Error::invalid_file(
                &compose.file,
                crate::package::compose::line_of(&fs::read_to_string(&compose.file).unwrap_or_default(), &format!("{}:", service.name)),
                format!("service `{}` has no `image:`{}", service.name, if service.built { " and is built" } else { "" }),
            )
            .with_hint(format!(
                "pass --image {}=ARCHIVE (from `docker save` or `docker buildx build --output type=oci`)",
                service.name
            )));
        };
        pins.insert(service.name.clone(), resolved.pinned());
        images
            .entry(resolved.manifest.digest.clone())
            .or_insert_with(|| (resolved, Vec::new()))
            .1
            .push(service.name.clone());
    }

    let top = app_id.clone();
    let compose_text = compose.pinned(&pins)?;
    let mut entries: BTreeMap<String, Source> = BTreeMap::new();
    entries.insert(
        format!("{top}/compose.yaml"),
        Source::Bytes(compose_text.into_bytes()),
    );
    for rel in &compose.files {
        let name = format!("{top}/{}", rel.to_string_lossy());
        if entries.contains_key(&name) {
            return Err(Error::invalid_file(
                &compose.file,
                None,
                format!(
                    "`{}` would replace the generated compose.yaml",
                    rel.display()
                ),
            ));
        }
        entries.insert(name, Source::File(compose.dir.join(rel)));
    }
    let mut image_refs = Vec::new();
    for (digest, (img, services)) in &images {
        let mut archive = None;
        let mut archive_size = None;
        if !opts.no_images {
            let base = img.name.rsplit('/').next().unwrap_or("image");
            let file = format!("images/{}-{}.tar", to_app_id(base), &digest.hex()[..12]);
            let name = format!("{top}/{file}");
            if entries.contains_key(&name) {
                return Err(Error::invalid_file(
                    &compose.file,
                    None,
                    format!("the app's own `{file}` collides with an image archive"),
                ));
            }
            archive_size = Some(img.archive_size());
            entries.insert(name, Source::Image(Box::new(img.clone())));
            archive = Some(file);
        }
        image_refs.push(ImageRef {
            services: services.clone(),
            reference: img.pinned(),
            digest: digest.clone(),
            source: img.source.clone(),
            archive,
            archive_size,
        });
    }

    fs::create_dir_all(&opts.out_dir).map_err(Error::io("create", &opts.out_dir))?;
    let stem = format!("{app_id}-{version}");
    let archive_path = opts.out_dir.join(format!("{stem}.tar.gz"));
    let archive = write_package(&archive_path, &entries, &cache, mtime)?;
    let signature = match &signer {
        Some(signer) => {
            let (bytes, ext) = signer.sign_file(&archive_path, &archive.0).await?;
            let name = format!("{stem}.tar.gz.{ext}");
            crate::oci::layout::write_atomic(&opts.out_dir.join(&name), &bytes)?;
            Some(name)
        }
        None => None,
    };

    let app = match &margo {
        Some(m) => Some(copy_app_files(
            m,
            &opts.app_dir,
            &opts.out_dir.join(format!("{stem}.app")),
        )?),
        None => None,
    };
    let descriptor = Descriptor {
        schema: DESCRIPTOR_SCHEMA.into(),
        app_id,
        version,
        archive: FileRef {
            file: format!("{stem}.tar.gz"),
            digest: archive.0,
            size: archive.1,
        },
        source_date_epoch: mtime,
        git: git.map(|g| GitRef {
            commit: g.commit,
            source: g.source,
        }),
        platform: opts.platform.to_string(),
        images: image_refs,
        app,
        signature,
    };
    let descriptor_path = opts.out_dir.join(format!("{stem}.json"));
    let mut json = serde_json::to_vec_pretty(&descriptor).expect("JSON");
    json.push(b'\n');
    crate::oci::layout::write_atomic(&descriptor_path, &json)?;
    Ok(Prepared {
        descriptor,
        descriptor_path,
        archive_path,
    })
}

enum Source {
    Bytes(Vec<u8>),
    File(PathBuf),
    Image(Box<ResolvedImage>),
}

/// Writes the archive through a temporary file; returns its digest and size.
fn write_package(
    path: &Path,
    entries: &BTreeMap<String, Source>,
    cache: &crate::oci::layout::LayoutStore,
    mtime: u64,
) -> Result<(Digest, u64)> {
    let tmp = crate::oci::layout::temp_beside(path)?;
    let io_err = |e: std::io::Error| Error::io("write", path)(e);
    let hashing = HashingWriter::new(tmp.as_file().try_clone().map_err(io_err)?);
    let gz = GzipWriter::new(
        BufWriter::with_capacity(1 << 20, hashing),
        Compression::best(),
    )
    .map_err(io_err)?;
    let mut tar = TarWriter::new(gz, mtime);

    let mut dirs = BTreeSet::new();
    for name in entries.keys() {
        let mut p = Path::new(name).parent();
        while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(d.to_string_lossy().into_owned());
            p = d.parent();
        }
    }
    let mut names: Vec<(&str, Option<&Source>)> = dirs.iter().map(|d| (d.as_str(), None)).collect();
    names.extend(entries.iter().map(|(n, s)| (n.as_str(), Some(s))));
    names.sort_by(|a, b| a.0.cmp(b.0));

    for (name, source) in names {
        match source {
            None => tar.dir(name).map_err(io_err)?,
            Some(Source::Bytes(b)) => tar.file_bytes(name, 0o644, b).map_err(io_err)?,
            Some(Source::File(p)) => {
                let f = File::open(p).map_err(Error::io("read", p))?;
                let meta = f.metadata().map_err(Error::io("read", p))?;
                tar.file(name, mode_of(&meta), meta.len(), f)
                    .map_err(|e| Error::io("archive", p)(e))?;
            }
            Some(Source::Image(img)) => {
                let size = img.archive_size();
                tar.begin_file(name, 0o644, size).map_err(io_err)?;
                img.write_archive(cache, tar.get_mut(), mtime)?;
                tar.end_file(size).map_err(io_err)?;
            }
        }
    }
    let gz = tar.finish().map_err(io_err)?;
    let buffered = gz.finish().map_err(io_err)?;
    let hashing = buffered.into_inner().map_err(|e| io_err(e.into_error()))?;
    let (digest, size, file) = hashing.finish();
    file.sync_all().map_err(io_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(io_err)?;
    }
    tmp.persist(path).map_err(|e| io_err(e.error))?;
    Ok((digest, size))
}

fn mode_of(meta: &fs::Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o111 != 0 {
            return 0o755;
        }
    }
    let _ = meta;
    0o644
}

/// Copies `margo.yaml` and its resources into `dest` (replaced whole).
fn copy_app_files(m: &AppDescription, app_dir: &Path, dest: &Path) -> Result<AppRef> {
    if dest.exists() {
        fs::remove_dir_all(dest).map_err(Error::io("replace", dest))?;
    }
    let copy = |rel: &Path| -> Result<()> {
        let to = dest.join(rel);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
        }
        fs::copy(app_dir.join(rel), &to).map_err(Error::io("copy to", &to))?;
        Ok(())
    };
    copy(Path::new(app::FILE_NAME))?;
    let mut resources = Vec::new();
    for r in &m.resources {
        copy(&r.path)?;
        resources.push(ResourceRef {
            field: r.field.clone(),
            file: r.path.to_string_lossy().into_owned(),
        });
    }
    let folder = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(AppRef {
        folder,
        name: m.name.clone(),
        description: m.description.clone(),
        authors: m.authors.clone(),
        resources,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn app_ids_from_names() {
        assert_eq!(super::to_app_id("My App_2"), "my-app-2");
    }
}
