//! Container images: resolve them to one platform, keep their blobs, write them as archives.
//!
//! An image comes from a registry (by reference; a multi-platform index is narrowed to
//! `--platform`) or from a local archive (`docker save` output, old or new, or the OCI
//! tarball of `docker buildx build --output type=oci`, gzipped or not). Either way its
//! manifest, config and layers land in a content-addressed cache (an OCI layout folder),
//! checked against their digests, and the image is pinned by its manifest digest.
//!
//! The archive written into a package is both an OCI image layout and a `docker save`
//! tarball (`manifest.json` beside `index.json`, sharing the blobs), as Docker 25+ writes
//! it: `docker load` accepts it with either image store, skopeo reads it as
//! `oci-archive:` and `docker-archive:`, and its manifest digest is the one the compose
//! file pins. Layers are copied as they are, never recompressed.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_client::manifest::{OciDescriptor, OciImageManifest};
use serde_json::json;

use crate::error::{Error, Result};
use crate::oci::digest::{Digest, HashingWriter};
use crate::oci::layout::{copy_verified, LayoutStore};
use crate::oci::manifest::Manifest;
use crate::oci::media;
use crate::oci::reference::{Repo, Target};
use crate::oci::store::{Connect, Store};
use crate::package::archive::{tar_size, GzipWriter, TarWriter};
use crate::progress::Progress;

/// `os/arch[/variant]`, as `--platform` and Docker spell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: parts.get(2).map(|v| v.to_string()),
            }),
            _ => Err(Error::Usage(format!(
                "--platform `{s}` is not os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8"
            ))),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Platform {
    fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        let variant_ok = match (&self.variant, variant) {
            (None, _) => true,
            (Some(want), Some(have)) => want == have,
            // arm64 images often omit their (only) variant v8.
            (Some(want), None) => want == "v8" && arch == "arm64",
        };
        self.os == os && self.architecture == arch && variant_ok
    }
}

/// An image narrowed to one platform, pinned by its manifest digest.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    /// The name to write in the compose file, without tag or digest.
    pub name: String,
    pub tag: Option<String>,
    pub manifest: Manifest,
    pub config: OciDescriptor,
    pub layers: Vec<OciDescriptor>,
    /// Where it came from, for messages.
    pub source: String,
}

impl ResolvedImage {
    /// `name[:tag]@sha256:…`, the reference the compose file pins.
    pub fn pinned(&self) -> String {
        match &self.tag {
            Some(t) => format!("{}:{t}@{}", self.name, self.manifest.digest),
            None => format!("{}@{}", self.name, self.manifest.digest),
        }
    }

    /// Config and layers, each once, in manifest order.
    pub fn blobs(&self) -> Vec<&OciDescriptor> {
        let mut seen = std::collections::BTreeSet::new();
        std::iter::once(&self.config)
            .chain(&self.layers)
            .filter(|d| seen.insert(d.digest.clone()))
            .collect()
    }

    fn archive_parts(&self) -> (Vec<u8>, Vec<u8>) {
        let mut annotations = serde_json::Map::new();
        if let Some(tag) = &self.tag {
            let full = Target::parse(&self.name)
                .map(|t| t.repo.to_string())
                .unwrap_or_else(|_| self.name.clone());
            annotations.insert(
                media::ANN_CONTAINERD_NAME.into(),
                json!(format!("{full}:{tag}")),
            );
            annotations.insert(media::ANN_REF_NAME.into(), json!(tag));
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": [{
                "mediaType": self.manifest.media_type,
                "digest": self.manifest.digest.to_string(),
                "size": self.manifest.bytes.len(),
                "annotations": annotations,
            }],
        });
        let blob = |d: &str| format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
        let repo_tags: Vec<String> = self
            .tag
            .iter()
            .map(|t| format!("{}:{t}", self.name))
            .collect();
        let docker = json!([{
            "Config": blob(&self.config.digest),
            "RepoTags": repo_tags,
            "Layers": self.layers.iter().map(|l| blob(&l.digest)).collect::<Vec<_>>(),
        }]);
        (
            serde_json::to_vec(&index).expect("JSON"),
            serde_json::to_vec(&docker).expect("JSON"),
        )
    }

    /// The size in bytes of the archive [`Self::write_archive`] writes.
    pub fn archive_size(&self) -> u64 {
        let (index, docker) = self.archive_parts();
        let mut sizes = vec![
            OCI_LAYOUT.len() as u64,
            index.len() as u64,
            docker.len() as u64,
        ];
        sizes.push(self.manifest.bytes.len() as u64);
        sizes.extend(self.blobs().iter().map(|d| d.size as u64));
        tar_size(sizes)
    }

    /// Writes the image archive (see the module doc) into `out`, reading blobs from `cache`
    /// and checking each one. Compressed layers are stored without recompression.
    pub fn write_archive<W: Write>(
        &self,
        cache: &LayoutStore,
        out: &mut GzipWriter<W>,
        mtime: u64,
    ) -> Result<()> {
        let (index, docker) = self.archive_parts();
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        entries.insert("oci-layout".into(), Entry::Bytes(OCI_LAYOUT.to_vec()));
        entries.insert("index.json".into(), Entry::Bytes(index));
        entries.insert("manifest.json".into(), Entry::Bytes(docker));
        entries.insert(
            format!("blobs/sha256/{}", self.manifest.digest.hex()),
            Entry::Bytes(self.manifest.bytes.clone()),
        );
        for d in self.blobs() {
            let digest: Digest = d.digest.parse()?;
            entries.insert(
                format!("blobs/sha256/{}", digest.hex()),
                Entry::Blob(d.clone()),
            );
        }
        let io_err = |e: io::Error| Error::io("write", "the package archive")(e);
        let mut tar = TarWriter::new(&mut *out, mtime);
        for (path, entry) in entries {
            match entry {
                Entry::Bytes(b) => tar.file_bytes(&path, 0o644, &b).map_err(io_err)?,
                Entry::Blob(d) => {
                    let digest: Digest = d.digest.parse()?;
                    let size = d.size as u64;
                    let compressed = is_compressed(&d.media_type);
                    if compressed {
                        tar.get_mut().set_stored(true).map_err(io_err)?;
                    }
                    tar.begin_file(&path, 0o644, size).map_err(io_err)?;
                    let src = cache.open_blob(&digest)?;
                    let progress = Progress::new(
                        format!("archiving {} layer {}", self.name, &digest.hex()[..12]),
                        size,
                    );
                    copy_checked(src, tar.get_mut(), &digest, size, &progress)?;
                    progress.finish();
                    tar.end_file(size).map_err(io_err)?;
                    if compressed {
                        tar.get_mut().set_stored(false).map_err(io_err)?;
                    }
                }
            }
        }
        tar.finish().map_err(io_err)?;
        Ok(())
    }
}

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

enum Entry {
    Bytes(Vec<u8>),
    Blob(OciDescriptor),
}

fn is_compressed(media_type: &str) -> bool {
    media_type.ends_with("gzip") || media_type.ends_with("zstd")
}

/// Copies exactly `size` bytes of blob `digest` from `src` into `out`, checking the digest.
fn copy_checked(
    src: impl Read,
    out: &mut impl Write,
    digest: &Digest,
    size: u64,
    progress: &Progress,
) -> Result<()> {
    let mut verifier =
        crate::oci::digest::Verifier::new(format!("cached blob {digest}"), digest, Some(size));
    let mut src = src.take(size);
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = src
            .read(&mut buf)
            .map_err(Error::io("read", format!("cached blob {digest}")))?;
        if n == 0 {
            break;
        }
        verifier.update(&buf[..n])?;
        out.write_all(&buf[..n])
            .map_err(Error::io("write", "the package archive"))?;
        progress.advance(n as u64);
    }
    verifier.finish()?;
    Ok(())
}

/// Where images are kept between runs: an OCI layout folder used for its blobs.
pub fn open_cache(dir: Option<&Path>) -> Result<LayoutStore> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => default_cache_dir(),
    };
    LayoutStore::create(&dir)
}

fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MARGO_GITOPS_CACHE_DIR") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("margo-gitops/oci")
}

/// Checks the image config's platform against the one asked for.
fn check_platform(config: &[u8], platform: &Platform, what: &str) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Cfg {
        os: Option<String>,
        architecture: Option<String>,
        variant: Option<String>,
    }
    let cfg: Cfg = serde_json::from_slice(config)
        .map_err(|e| Error::invalid(format!("{what}: the image config is not JSON: {e}")))?;
    let (os, arch) = (
        cfg.os.unwrap_or_default(),
        cfg.architecture.unwrap_or_default(),
    );
    if !platform.matches(&os, &arch, cfg.variant.as_deref()) {
        let have = match cfg.variant {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        };
        return Err(
            Error::invalid(format!("{what} is built for {have}, not {platform}"))
                .with_hint("pass --platform to match, or provide an image for that platform"),
        );
    }
    Ok(())
}

/// Picks the manifest for `platform` out of an index.
fn pick_platform(index: &Manifest, platform: &Platform, what: &str) -> Result<OciDescriptor> {
    let index = index.index()?;
    let mut offered = Vec::new();
    for m in &index.manifests {
        let Some(p) = &m.platform else { continue };
        let (os, arch) = (p.os.to_string(), p.architecture.to_string());
        if platform.matches(&os, &arch, p.variant.as_deref()) {
            return Ok(OciDescriptor {
                media_type: m.media_type.clone(),
                digest: m.digest.clone(),
                size: m.size,
                ..Default::default()
            });
        }
        if os != "unknown" {
            offered.push(match &p.variant {
                Some(v) => format!("{os}/{arch}/{v}"),
                None => format!("{os}/{arch}"),
            });
        }
    }
    Err(Error::NotFound {
        what: format!("a {platform} image in {what}"),
        hint: Some(format!(
            "it offers {}; choose one with --platform",
            offered.join(", ")
        )),
    })
}

/// Resolves `reference` from its registry; fetches config and (when `with_layers`) layers.
pub async fn from_registry(
    reference: &str,
    platform: &Platform,
    connect: &Connect,
    cache: &LayoutStore,
    with_layers: bool,
) -> Result<ResolvedImage> {
    let target = Target::parse(reference)?;
    let selector = target.selector().unwrap_or_else(|| "latest".into());
    let store = Store::open(&target.repo, connect).await?;
    let what = format!("image {reference}");
    let mut manifest = store
        .manifest(&selector)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: format!("image {reference} (looked up as {target})"),
            hint: Some(
                "check the name and tag, or build it and pass --image SERVICE=ARCHIVE".into(),
            ),
        })?;
    if manifest.is_index() {
        let desc = pick_platform(&manifest, platform, &what)?;
        manifest = store
            .manifest(&desc.digest)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("manifest {} listed by {reference}", desc.digest),
                hint: None,
            })?;
    }
    let image = manifest.image()?;
    let config_digest: Digest = image.config.digest.parse()?;
    if !cache.has_blob(&config_digest) {
        let bytes = store
            .fetch_blob_bytes(&config_digest, Some(image.config.size as u64))
            .await?;
        cache.put_blob_bytes(&config_digest, &bytes)?;
    }
    check_platform(
        &cache.read_blob_bytes(&config_digest, None)?,
        platform,
        &what,
    )?;
    if with_layers {
        for layer in &image.layers {
            let digest: Digest = layer.digest.parse()?;
            if !cache.has_blob(&digest) {
                store
                    .fetch_blob_to_file(layer, &cache.blob_path(&digest))
                    .await?;
            }
        }
    }
    cache.put_blob_bytes(&manifest.digest, &manifest.bytes)?;
    let (name, tag) = split_name(reference);
    Ok(ResolvedImage {
        name,
        tag,
        manifest,
        config: image.config,
        layers: image.layers,
        source: match &target.repo {
            Repo::Registry { registry, .. } => format!("registry {registry}"),
            Repo::Layout(p) => format!("OCI layout {}", p.display()),
        },
    })
}

/// `name[:tag][@digest]` → (name, tag).
pub fn split_name(reference: &str) -> (String, Option<String>) {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    match no_digest.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n.to_string(), Some(t.to_string())),
        _ => (no_digest.to_string(), None),
    }
}

/// Entries of an uncompressed tar: path → (offset of the data, size).
struct TarIndex {
    file: File,
    path: PathBuf,
    entries: BTreeMap<String, (u64, u64)>,
}

impl TarIndex {
    fn open(file: File, path: &Path) -> Result<Self> {
        let bad = |e: io::Error| {
            Error::invalid_file(path, None, format!("not a readable image archive (tar): {e}"))
                .with_hint("pass a `docker save` tarball or an OCI archive from `docker buildx build --output type=oci`")
        };
        let mut entries = BTreeMap::new();
        let mut archive = tar::Archive::new(&file);
        for entry in archive.entries().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = entry
                .path()
                .map_err(bad)?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            entries.insert(name, (entry.raw_file_position(), entry.size()));
        }
        let file = File::open(path).map_err(Error::io("open", path))?;
        Ok(TarIndex {
            file,
            path: path.to_path_buf(),
            entries,
        })
    }

    fn reader(&self, name: &str) -> Result<impl Read + '_> {
        let (offset, size) = *self.entries.get(name).ok_or_else(|| {
            Error::invalid_file(&self.path, None, format!("the archive lacks `{name}`"))
        })?;
        let mut f = &self.file;
        f.seek(SeekFrom::Start(offset))
            .map_err(Error::io("read", &self.path))?;
        Ok(f.take(size))
    }

    fn size(&self, name: &str) -> Option<u64> {
        self.entries.get(name).map(|e| e.1)
    }

    fn read_small(&self, name: &str) -> Result<Vec<u8>> {
        if self.size(name).unwrap_or(0) > crate::oci::store::MAX_SMALL_BLOB {
            return Err(Error::invalid_file(
                &self.path,
                None,
                format!("`{name}` is too large"),
            ));
        }
        let mut out = Vec::new();
        self.reader(name)?
            .read_to_end(&mut out)
            .map_err(Error::io("read", &self.path))?;
        Ok(out)
    }

    fn blob(&self, digest: &Digest) -> String {
        format!("blobs/sha256/{}", digest.hex())
    }

    /// Copies the OCI blob `desc` into the cache, checked against its digest.
    fn import_blob(&self, desc: &OciDescriptor, cache: &LayoutStore) -> Result<()> {
        let digest: Digest = desc.digest.parse()?;
        if cache.has_blob(&digest) {
            return Ok(());
        }
        let reader = self.reader(&self.blob(&digest))?;
        let progress = Progress::new(
            format!("importing {}", &digest.hex()[..12]),
            desc.size as u64,
        );
        copy_verified(
            reader,
            &cache.blob_path(&digest),
            &digest,
            Some(desc.size as u64),
            &format!("blob {digest} in {}", self.path.display()),
            &progress,
        )?;
        progress.finish();
        Ok(())
    }

    /// Copies an entry whose digest is not known yet into the cache; returns its descriptor.
    fn import_unnamed(
        &self,
        name: &str,
        cache: &LayoutStore,
        media_type: &str,
    ) -> Result<OciDescriptor> {
        let mut tmp = crate::oci::layout::temp_beside(&cache.root().join("import"))?;
        let mut w = HashingWriter::new(tmp.as_file_mut());
        io::copy(&mut self.reader(name)?, &mut w).map_err(Error::io("copy", &self.path))?;
        let (digest, size, _) = w.finish();
        if !cache.has_blob(&digest) {
            tmp.persist(cache.blob_path(&digest))
                .map_err(|e| Error::io("write", cache.root())(e.error))?;
        }
        Ok(OciDescriptor {
            media_type: media_type.to_string(),
            digest: digest.to_string(),
            size: size as i64,
            ..Default::default()
        })
    }
}

/// Imports the image in a local archive. `want` (the compose `image:` name) picks one
/// image out of an archive holding several.
pub fn from_archive(
    path: &Path,
    platform: &Platform,
    cache: &LayoutStore,
    want: Option<&str>,
) -> Result<ResolvedImage> {
    let mut file = File::open(path).map_err(Error::io("open", path))?;
    let mut magic = [0u8; 2];
    let gzipped =
        file.read(&mut magic).map_err(Error::io("read", path))? == 2 && magic == [0x1f, 0x8b];
    file.seek(SeekFrom::Start(0))
        .map_err(Error::io("read", path))?;
    // A gzipped tar cannot be read out of order: unpack it once into the cache folder.
    let unpacked;
    let (tar_file, tar_path) = if gzipped {
        let mut tmp = tempfile::Builder::new()
            .prefix(".unpacked-")
            .tempfile_in(cache.root())
            .map_err(Error::io("create a temporary file in", cache.root()))?;
        io::copy(&mut flate2::read::GzDecoder::new(file), tmp.as_file_mut()).map_err(|e| {
            Error::invalid_file(path, None, format!("not a valid gzip stream: {e}"))
        })?;
        let f = tmp.reopen().map_err(Error::io("open", tmp.path()))?;
        let p = tmp.path().to_path_buf();
        unpacked = tmp;
        let _ = &unpacked;
        (f, p)
    } else {
        (file, path.to_path_buf())
    };
    let mut index = TarIndex::open(tar_file, &tar_path)?;
    index.path = path.to_path_buf();
    let what = format!("image archive {}", path.display());
    let image = if index.size("index.json").is_some() {
        from_oci_archive(&index, platform, cache, want, &what)?
    } else if index.size("manifest.json").is_some() {
        from_docker_archive(&index, cache, want, &what)?
    } else {
        return Err(Error::invalid_file(path, None, "neither an OCI archive (index.json) nor a docker save tarball (manifest.json)")
            .with_hint("create it with `docker save IMAGE -o FILE` or `docker buildx build --output type=oci,dest=FILE`"));
    };
    let config: Digest = image.config.digest.parse()?;
    check_platform(&cache.read_blob_bytes(&config, None)?, platform, &what)?;
    cache.put_blob_bytes(&image.manifest.digest, &image.manifest.bytes)?;
    Ok(image)
}

fn from_oci_archive(
    index: &TarIndex,
    platform: &Platform,
    cache: &LayoutStore,
    want: Option<&str>,
    what: &str,
) -> Result<ResolvedImage> {
    let top = Manifest::from_bytes(index.read_small("index.json")?, Some(media::OCI_INDEX))?;
    let entries = top.index()?.manifests;
    let name_of = |annotations: &Option<BTreeMap<String, String>>| {
        annotations.as_ref().and_then(|a| {
            a.get(media::ANN_CONTAINERD_NAME).cloned().or_else(|| {
                a.get(media::ANN_REF_NAME)
                    .filter(|r| r.contains(['/', ':']))
                    .cloned()
            })
        })
    };
    let chosen = match entries.as_slice() {
        [] => return Err(Error::invalid(format!("{what}: index.json lists no image"))),
        [one] => one.clone(),
        many => {
            let by_name = want.and_then(|w| {
                many.iter().find(|m| {
                    name_of(&m.annotations).is_some_and(|n| {
                        n == w || n.ends_with(&format!("/{w}")) || same_image(&n, w)
                    })
                })
            });
            match by_name {
                Some(m) => m.clone(),
                None if many.iter().all(|m| m.platform.is_some()) => {
                    let d = pick_platform(&top, platform, what)?;
                    many.iter()
                        .find(|m| m.digest == d.digest)
                        .cloned()
                        .expect("picked from these")
                }
                None => {
                    let names: Vec<String> = many
                        .iter()
                        .filter_map(|m| name_of(&m.annotations))
                        .collect();
                    return Err(Error::invalid(format!(
                        "{what} holds {} images ({}); name the one to use in the service's `image:`",
                        many.len(),
                        names.join(", ")
                    )));
                }
            }
        }
    };
    let archive_name = name_of(&chosen.annotations);
    let read_manifest = |digest: &str, size: i64| -> Result<Manifest> {
        let d: Digest = digest.parse()?;
        let bytes = index.read_small(&index.blob(&d))?;
        let mut v = crate::oci::digest::Verifier::new(
            format!("manifest {d} in {what}"),
            &d,
            Some(size as u64),
        );
        v.update(&bytes)?;
        v.finish()?;
        Manifest::from_bytes(bytes, None)
    };
    let mut manifest = read_manifest(&chosen.digest, chosen.size)?;
    if manifest.is_index() {
        let d = pick_platform(&manifest, platform, what)?;
        manifest = read_manifest(&d.digest, d.size)?;
    }
    let image: OciImageManifest = manifest.image()?;
    index.import_blob(&image.config, cache)?;
    for layer in &image.layers {
        index.import_blob(layer, cache)?;
    }
    let (name, tag) = match archive_name {
        Some(n) => split_name(&n),
        None => (String::new(), None),
    };
    Ok(ResolvedImage {
        name,
        tag,
        manifest,
        config: image.config,
        layers: image.layers,
        source: what.to_string(),
    })
}

fn same_image(a: &str, b: &str) -> bool {
    match (Target::parse(a), Target::parse(b)) {
        (Ok(x), Ok(y)) => x.repo == y.repo && x.tag == y.tag,
        _ => false,
    }
}

fn from_docker_archive(
    index: &TarIndex,
    cache: &LayoutStore,
    want: Option<&str>,
    what: &str,
) -> Result<ResolvedImage> {
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(rename = "Config")]
        config: String,
        #[serde(rename = "RepoTags", default)]
        repo_tags: Option<Vec<String>>,
        #[serde(rename = "Layers")]
        layers: Vec<String>,
    }
    let list: Vec<Entry> =
        serde_json::from_slice(&index.read_small("manifest.json")?).map_err(|e| {
            Error::invalid(format!(
                "{what}: manifest.json is not a docker save manifest: {e}"
            ))
        })?;
    let entry = match list.as_slice() {
        [] => {
            return Err(Error::invalid(format!(
                "{what}: manifest.json lists no image"
            )))
        }
        [one] => one,
        many => want
            .and_then(|w| {
                many.iter().find(|e| {
                    e.repo_tags
                        .iter()
                        .flatten()
                        .any(|t| t == w || same_image(t, w))
                })
            })
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{what} holds {} images; name the one to use in the service's `image:`",
                    many.len()
                ))
            })?,
    };
    let config = index.import_unnamed(&entry.config, cache, media::OCI_CONFIG)?;
    let mut layers = Vec::new();
    for layer in &entry.layers {
        let mut head = [0u8; 2];
        let n = index
            .reader(layer)?
            .read(&mut head)
            .map_err(Error::io("read", &index.path))?;
        let media_type = if n == 2 && head == [0x1f, 0x8b] {
            media::OCI_LAYER_GZIP
        } else {
            media::OCI_LAYER_TAR
        };
        layers.push(index.import_unnamed(layer, cache, media_type)?);
    }
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        config: config.clone(),
        layers: layers.clone(),
        ..Default::default()
    };
    let bytes = serde_json::to_vec(&manifest).expect("JSON");
    let (name, tag) = entry
        .repo_tags
        .iter()
        .flatten()
        .next()
        .map(|t| split_name(t))
        .unwrap_or((String::new(), None));
    Ok(ResolvedImage {
        name,
        tag,
        manifest: Manifest::new(media::OCI_MANIFEST, bytes),
        config,
        layers,
        source: what.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert!(p.matches("linux", "arm64", None));
        assert!(!p.matches("linux", "amd64", None));
        assert!("linux".parse::<Platform>().is_err());
    }

    #[test]
    fn names_split_from_tags() {
        assert_eq!(
            split_name("redis:alpine"),
            ("redis".into(), Some("alpine".into()))
        );
        assert_eq!(
            split_name("127.0.0.1:5000/x/web"),
            ("127.0.0.1:5000/x/web".into(), None)
        );
        assert_eq!(
            split_name(&format!("a/b:1@{}", Digest::of(b""))),
            ("a/b".into(), Some("1".into()))
        );
    }
}
