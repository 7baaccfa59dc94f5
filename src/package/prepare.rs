//! `package prepare`: turn a compose app folder into one Margo Compose Archive.
//!
//! The archive (`<app-id>-<version>.tar.gz`) holds one top-level folder named after the
//! app: `compose.yaml` with every image pinned by digest, the env files, configs and
//! bind-mounted files the compose file uses, and `images/*.tar`, one archive per image
//! (see [`crate::package::image`]) unless `--no-images`. It is reproducible: entries
//! sorted, owner 0:0, modes 0644/0755, every mtime `SOURCE_DATE_EPOCH` or the last
//! commit's time. Beside it go the [`Descriptor`] that `package publish` reads, and, when
//! the app has a `margo.yaml`, a copy of it and its resources (`<app-id>-<version>.app/`)
//! for the Application Package.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::Compression;

use crate::error::{Error, Result};
use crate::git;
use crate::margo::app::{self, AppDescription};
use crate::oci::blocking;
use crate::oci::digest::{Digest, HashingThread};
use crate::oci::layout::{temp_beside, write_atomic, LayoutStore};
use crate::oci::reference::LAYOUT_PREFIX;
use crate::oci::store::Connect;
use crate::package::archive::TarWriter;
use crate::package::compose::{ComposeApp, ServiceInfo};
use crate::package::descriptor::{
    AppRef, Descriptor, FileRef, GitRef, ImageRef, ResourceRef, DESCRIPTOR_SCHEMA,
};
use crate::package::gzip::GzipWriter;
use crate::package::image::pull::{self, Remote};
use crate::package::image::{self, Platform, ResolvedImage};
use crate::signing::mode::SignOptions;
use crate::signing::signer::Signer;

pub struct PrepareOptions {
    pub app_dir: PathBuf,
    pub out_dir: PathBuf,
    pub platform: Platform,
    /// `--image SERVICE=PATH`: local archives for services that are built.
    pub images: Vec<(String, PathBuf)>,
    /// `--build`: build the services that are built and have no archive, with Docker.
    pub build: bool,
    pub no_images: bool,
    pub version: Option<String>,
    pub app_id: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub connect: Connect,
    /// `--sign`: a signature over the archive, written beside it.
    pub sign: SignOptions,
    /// The commit the app comes from when `app_dir` is not inside its repository (an
    /// export of the commit); else HEAD of the repository around `app_dir` is read.
    pub git: Option<git::GitInfo>,
}

/// The result of a prepare: the descriptor and where it was written.
pub struct Prepared {
    pub descriptor: Descriptor,
    pub descriptor_path: PathBuf,
    pub archive_path: PathBuf,
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
    let signer = blocking(|| Signer::new(&opts.sign))?;
    let compose = ComposeApp::load(&opts.app_dir)?;
    let margo = app::load(&opts.app_dir)?;
    let (app_id, version) = identity(opts, &compose, margo.as_ref())?;
    let git = opts.git.clone().or_else(|| git::discover(&opts.app_dir));
    let mtime = git::source_date_epoch(git.as_ref())?;
    let built = tempfile::tempdir().map_err(Error::io("create", std::env::temp_dir()))?;
    let archives = built_images(
        opts,
        &compose,
        local_archives(opts, &compose)?,
        built.path(),
    )?;
    let cache = image::open_cache(opts.cache_dir.as_deref())?;
    let project = compose.name.clone().unwrap_or_else(|| app_id.clone());
    let (images, remotes) = resolve_images(opts, &compose, &archives, &cache, &project).await?;
    let (entries, image_refs) = plan_entries(opts, &compose, &images, &app_id)?;

    fs::create_dir_all(&opts.out_dir).map_err(Error::io("create", &opts.out_dir))?;
    let stem = format!("{app_id}-{version}");
    let archive_path = opts.out_dir.join(format!("{stem}.tar.gz"));
    let (digest, size) = pull_and_write(remotes, entries, &archive_path, cache, mtime).await?;
    let signature = match &signer {
        Some(signer) => {
            let (bytes, ext) = signer.sign_file(&archive_path, &digest).await?;
            let name = format!("{stem}.tar.gz.{ext}");
            write_atomic(&opts.out_dir.join(&name), &bytes)?;
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
            digest,
            size,
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
    write_atomic(&descriptor_path, &json)?;
    Ok(Prepared {
        descriptor,
        descriptor_path,
        archive_path,
    })
}

/// Pulls the missing layers and writes the package at once: the archive is written on a
/// thread of its own (compression and hashing are CPU work) and waits for each layer only
/// when it comes to it. A failed pull stops the writer; its error is the one reported.
async fn pull_and_write(
    remotes: Vec<Remote>,
    entries: BTreeMap<String, Source>,
    archive_path: &Path,
    cache: LayoutStore,
    mtime: u64,
) -> Result<(Digest, u64)> {
    // The order the writer reads layers in: image by image, each one's blobs by digest.
    let order: Vec<Digest> = entries
        .values()
        .filter_map(|e| match e {
            Source::Image(img) => Some(img.blobs()),
            _ => None,
        })
        .flat_map(|blobs| {
            let mut digests: Vec<Digest> =
                blobs.iter().filter_map(|b| b.digest.parse().ok()).collect();
            digests.sort();
            digests
        })
        .collect();
    let cache = Arc::new(cache);
    let writer = tokio::task::spawn_blocking({
        let (cache, path) = (cache.clone(), archive_path.to_path_buf());
        move || write_package(&path, &entries, &cache, mtime)
    });
    let fetched = pull::fetch_layers(remotes, &order, &cache).await;
    let written = writer.await.expect("the package writer does not panic");
    fetched?;
    written
}

/// The app's id and version: the flags, else `margo.yaml`, else (the id) the compose
/// project's or the folder's name.
fn identity(
    opts: &PrepareOptions,
    compose: &ComposeApp,
    margo: Option<&AppDescription>,
) -> Result<(String, String)> {
    let app_id = match (&opts.app_id, margo) {
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
    let version = match (&opts.version, margo) {
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
    Ok((app_id, version))
}

/// `--image SERVICE=PATH`, checked: the service exists and the archive is a file (or an
/// `oci-layout:` reference).
fn local_archives(
    opts: &PrepareOptions,
    compose: &ComposeApp,
) -> Result<BTreeMap<String, PathBuf>> {
    let mut archives = BTreeMap::new();
    for (service, path) in &opts.images {
        if !compose.services.iter().any(|s| &s.name == service) {
            let names: Vec<&str> = compose.services.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::Usage(format!(
                "--image {service}=…: the compose file has no service `{service}` (services: {})",
                names.join(", ")
            )));
        }
        let is_layout = path.to_string_lossy().starts_with(LAYOUT_PREFIX);
        if !is_layout && !path.is_file() {
            return Err(Error::Usage(format!(
                "--image {service}={}: no such file",
                path.display()
            )));
        }
        archives.insert(service.clone(), path.clone());
    }
    Ok(archives)
}

/// `archives` and, for every service with a `build:` section and no archive, the one
/// `--build` builds into `dir`; without `--build` such a service stops prepare here,
/// before anything is pulled (its `image:` names what a build would make, rarely an image
/// a registry has).
fn built_images(
    opts: &PrepareOptions,
    compose: &ComposeApp,
    mut archives: BTreeMap<String, PathBuf>,
    dir: &Path,
) -> Result<BTreeMap<String, PathBuf>> {
    for service in &compose.services {
        let Some(spec) = &service.build else {
            continue;
        };
        if archives.contains_key(&service.name) || opts.no_images {
            continue;
        }
        if !opts.build {
            let name = &service.name;
            return Err(Error::invalid_file(
                &compose.file,
                compose.line_of(&format!("{name}:")),
                format!("service `{name}` is built (`build:`) and no image archive was given for it"),
            )
            .with_hint(format!(
                "pass --image {name}=ARCHIVE (for example written by `docker buildx build --output type=oci,dest={name}.tar`), or --build to build it with the Docker engine here"
            )));
        }
        let archive = blocking(|| {
            image::build::build(&service.name, spec, &opts.app_dir, &opts.platform, dir)
        })?;
        archives.insert(service.name.clone(), archive);
    }
    Ok(archives)
}

/// Every distinct image (by manifest digest) with the services that use it, and each
/// service's pinned reference.
struct Images {
    by_digest: BTreeMap<Digest, (ResolvedImage, Vec<String>)>,
    pins: BTreeMap<String, String>,
}

async fn resolve_images(
    opts: &PrepareOptions,
    compose: &ComposeApp,
    archives: &BTreeMap<String, PathBuf>,
    cache: &LayoutStore,
    project: &str,
) -> Result<(Images, Vec<Remote>)> {
    let mut images = Images {
        by_digest: BTreeMap::new(),
        pins: BTreeMap::new(),
    };
    // Manifests here, service by service; every missing layer later, at once.
    let mut remotes = Vec::new();
    for service in &compose.services {
        let (resolved, remote) = match archives.get(&service.name) {
            Some(path) => from_local(opts, service, path, cache, project).await?,
            None => from_image_reference(opts, compose, service, cache).await?,
        };
        remotes.extend(remote);
        images.pins.insert(service.name.clone(), resolved.pinned());
        images
            .by_digest
            .entry(resolved.manifest.digest.clone())
            .or_insert_with(|| (resolved, Vec::new()))
            .1
            .push(service.name.clone());
    }
    if opts.no_images {
        remotes.clear();
    }
    Ok((images, remotes))
}

/// A service's image from `--image SERVICE=PATH`, named as the compose file names it.
async fn from_local(
    opts: &PrepareOptions,
    service: &ServiceInfo,
    path: &Path,
    cache: &LayoutStore,
    project: &str,
) -> Result<(ResolvedImage, Option<Remote>)> {
    if opts.no_images {
        return Err(Error::Usage(format!(
            "service `{}` comes from a local archive, which --no-images would leave nowhere; push it to a registry and name it in `image:`, or drop --no-images",
            service.name
        )));
    }
    let source = path.to_string_lossy();
    let (mut img, remote) = if source.starts_with(LAYOUT_PREFIX) {
        let (img, remote) = pull::resolve(&source, &opts.platform, &opts.connect, cache).await?;
        (img, Some(remote))
    } else {
        let want = service.image.as_deref();
        let img = blocking(|| image::from_archive(path, &opts.platform, cache, want))?;
        (img, None)
    };
    if let Some(written) = &service.image {
        (img.name, img.tag) = image::split_name(written);
    } else if img.name.is_empty() || img.name.starts_with(LAYOUT_PREFIX) {
        img.name = format!("{project}-{}", service.name);
        img.tag = Some("latest".into());
    }
    Ok((img, remote))
}

/// A service's image from its `image:` reference, in its registry.
async fn from_image_reference(
    opts: &PrepareOptions,
    compose: &ComposeApp,
    service: &ServiceInfo,
    cache: &LayoutStore,
) -> Result<(ResolvedImage, Option<Remote>)> {
    let Some(reference) = &service.image else {
        return Err(Error::invalid_file(
            &compose.file,
            compose.line_of(&format!("{}:", service.name)),
            format!(
                "service `{}` has no `image:`{}",
                service.name,
                if service.build.is_some() { " and is built" } else { "" }
            ),
        )
        .with_hint(format!(
            "pass --image {}=ARCHIVE (from `docker save` or `docker buildx build --output type=oci`)",
            service.name
        )));
    };
    let (img, remote) = pull::resolve(reference, &opts.platform, &opts.connect, cache)
        .await
        .map_err(|e| match e {
            Error::NotFound { what, hint } => Error::NotFound {
                what: format!("{what}, used by service `{}`", service.name),
                hint,
            },
            other => other,
        })?;
    Ok((img, Some(remote)))
}

/// What goes into the archive, by entry name, and what the descriptor says of each image.
fn plan_entries(
    opts: &PrepareOptions,
    compose: &ComposeApp,
    images: &Images,
    top: &str,
) -> Result<(BTreeMap<String, Source>, Vec<ImageRef>)> {
    let mut entries: BTreeMap<String, Source> = BTreeMap::new();
    entries.insert(
        format!("{top}/compose.yaml"),
        Source::Bytes(compose.pinned(&images.pins)?.into_bytes()),
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
    for (digest, (img, services)) in &images.by_digest {
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
    Ok((entries, image_refs))
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
    cache: &LayoutStore,
    mtime: u64,
) -> Result<(Digest, u64)> {
    let tmp = temp_beside(path)?;
    let io_err = |e: std::io::Error| Error::io("write", path)(e);
    // Hashing the output overlaps with producing it.
    let hashing = HashingThread::new(tmp.as_file().try_clone().map_err(io_err)?);
    let gz = GzipWriter::new(
        hashing,
        // gzip's own default: level 9 is four times slower for under 1% fewer bytes.
        Compression::default(),
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
    let hashing = gz.finish().map_err(io_err)?;
    // Not synced to disk (a tenth of a second per 256 MiB): a package is made again, not
    // recovered, and whatever reads it checks it against the descriptor's digest (the
    // registry on upload, the layout as it copies).
    let (digest, size, file) = hashing.finish().map_err(io_err)?;
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
