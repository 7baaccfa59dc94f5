//! Images imported from local archives: `docker save` tarballs (old and new format) and
//! OCI archives (`docker buildx build --output type=oci`), gzipped or not. Blobs are
//! copied into the cache, each checked against its digest (or hashed, for the old
//! format's unnamed files).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use oci_client::manifest::{ImageIndexEntry, OciDescriptor, OciImageManifest};

use crate::error::{Error, Result};
use crate::oci::digest::{Digest, HashingWriter, Verifier};
use crate::oci::layout::{copy_verified, LayoutStore};
use crate::oci::manifest::Manifest;
use crate::oci::media;
use crate::oci::reference::Target;
use crate::package::image::platform::{check_platform, pick_platform, Platform};
use crate::package::image::{split_name, ResolvedImage};
use crate::progress::Progress;

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
        if self.size(name).unwrap_or(0) > crate::oci::manifest::MAX_SMALL_BLOB {
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
            false, // the cache: checked when read
        )?;
        cache.checked(&digest);
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
            // Its digest is the hash of exactly these bytes.
            cache.checked(&digest);
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
pub(crate) fn from_archive(
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

/// The name an OCI archive's index entry carries: containerd's, or a full ref name.
fn name_of(annotations: &Option<BTreeMap<String, String>>) -> Option<String> {
    annotations.as_ref().and_then(|a| {
        a.get(media::ANN_CONTAINERD_NAME).cloned().or_else(|| {
            a.get(media::ANN_REF_NAME)
                .filter(|r| r.contains(['/', ':']))
                .cloned()
        })
    })
}

/// The entry of an OCI archive's `index.json` to use: the only one, the one named `want`,
/// or the one for `platform` when every entry names its platform.
fn choose_oci_entry(
    top: &Manifest,
    platform: &Platform,
    want: Option<&str>,
    what: &str,
) -> Result<ImageIndexEntry> {
    let entries = top.index()?.manifests;
    let many = match entries.as_slice() {
        [] => return Err(Error::invalid(format!("{what}: index.json lists no image"))),
        [one] => return Ok(one.clone()),
        many => many,
    };
    let by_name = want.and_then(|w| {
        many.iter().find(|m| {
            name_of(&m.annotations)
                .is_some_and(|n| n == w || n.ends_with(&format!("/{w}")) || same_image(&n, w))
        })
    });
    if let Some(m) = by_name {
        return Ok(m.clone());
    }
    if many.iter().all(|m| m.platform.is_some()) {
        let d = pick_platform(top, platform, what)?;
        return Ok(many
            .iter()
            .find(|m| m.digest == d.digest)
            .cloned()
            .expect("picked from these"));
    }
    let names: Vec<String> = many
        .iter()
        .filter_map(|m| name_of(&m.annotations))
        .collect();
    Err(Error::invalid(format!(
        "{what} holds {} images ({}); name the one to use in the service's `image:`",
        many.len(),
        names.join(", ")
    )))
}

fn from_oci_archive(
    index: &TarIndex,
    platform: &Platform,
    cache: &LayoutStore,
    want: Option<&str>,
    what: &str,
) -> Result<ResolvedImage> {
    let top = Manifest::from_bytes(index.read_small("index.json")?, Some(media::OCI_INDEX))?;
    let chosen = choose_oci_entry(&top, platform, want, what)?;
    let read_manifest = |digest: &str, size: i64| -> Result<Manifest> {
        let d: Digest = digest.parse()?;
        let bytes = index.read_small(&index.blob(&d))?;
        let mut v = Verifier::new(format!("manifest {d} in {what}"), &d, Some(size as u64));
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
    let (name, tag) = match name_of(&chosen.annotations) {
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

/// One image of a `docker save` tarball's `manifest.json`.
#[derive(serde::Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// The image of a `docker save` tarball to use: the only one, or the one tagged `want`.
fn choose_docker_entry(index: &TarIndex, want: Option<&str>, what: &str) -> Result<DockerEntry> {
    let mut list: Vec<DockerEntry> = serde_json::from_slice(&index.read_small("manifest.json")?)
        .map_err(|e| {
            Error::invalid(format!(
                "{what}: manifest.json is not a docker save manifest: {e}"
            ))
        })?;
    match list.len() {
        0 => Err(Error::invalid(format!(
            "{what}: manifest.json lists no image"
        ))),
        1 => Ok(list.remove(0)),
        n => {
            let found = want.and_then(|w| {
                list.iter().position(|e| {
                    e.repo_tags
                        .iter()
                        .flatten()
                        .any(|t| t == w || same_image(t, w))
                })
            });
            found.map(|i| list.remove(i)).ok_or_else(|| {
                Error::invalid(format!(
                    "{what} holds {n} images; name the one to use in the service's `image:`"
                ))
            })
        }
    }
}

fn from_docker_archive(
    index: &TarIndex,
    cache: &LayoutStore,
    want: Option<&str>,
    what: &str,
) -> Result<ResolvedImage> {
    let entry = choose_docker_entry(index, want, what)?;
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
