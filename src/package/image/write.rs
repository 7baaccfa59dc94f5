//! Image archives as a package carries them: an OCI image layout and a `docker save`
//! tarball at once (`index.json` and `manifest.json` over the same blobs), streamed into
//! the package's gzip stream with compressed layers stored, not compressed again.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use oci_client::manifest::OciDescriptor;
use serde_json::json;

use crate::error::{Error, Result};
use crate::oci::digest::Digest;
use crate::oci::layout::LayoutStore;
use crate::oci::media;
use crate::oci::reference::Target;
use crate::package::archive::{tar_size, TarWriter};
use crate::package::gzip::GzipWriter;
use crate::package::image::ResolvedImage;
use crate::progress::Progress;

impl ResolvedImage {
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
    pub(crate) fn archive_size(&self) -> u64 {
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
    pub(crate) fn write_archive<W: Write>(
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
                    // Layers still being pulled: this one is waited for, not the rest.
                    cache.wait_for(&digest)?;
                    tar.begin_file(&path, 0o644, size).map_err(io_err)?;
                    let src = cache.open_blob(&digest)?;
                    let progress = Progress::new(
                        format!("archiving {} layer {}", self.name, &digest.hex()[..12]),
                        size,
                    );
                    let check = !cache.was_checked(&digest);
                    copy_checked(src, tar.get_mut(), &digest, size, check, &progress)?;
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

/// Copies exactly `size` bytes of blob `digest` from `src` into `out`, checking the digest
/// unless `check` is false (a blob this run checked when it wrote it); the size always.
fn copy_checked(
    src: impl Read,
    out: &mut impl Write,
    digest: &Digest,
    size: u64,
    check: bool,
    progress: &Progress,
) -> Result<()> {
    let mut verifier =
        crate::oci::digest::Verifier::new(format!("cached blob {digest}"), digest, Some(size));
    let mut seen = 0u64;
    let mut src = src.take(size);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = src
            .read(&mut buf)
            .map_err(Error::io("read", format!("cached blob {digest}")))?;
        if n == 0 {
            break;
        }
        if check {
            verifier.update(&buf[..n])?;
        }
        seen += n as u64;
        out.write_all(&buf[..n])
            .map_err(Error::io("write", "the package archive"))?;
        progress.advance(n as u64);
    }
    if check {
        verifier.finish()?;
    } else if seen != size {
        return Err(Error::DigestMismatch {
            what: format!("cached blob {digest}"),
            expected: format!("{size} bytes"),
            actual: format!("{seen} bytes"),
        });
    }
    Ok(())
}
