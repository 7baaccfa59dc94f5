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
//!
//! [`platform`] matches platforms, [`pull`] resolves images in registries, [`import`] reads
//! local archives, [`build`] makes them with Docker (`--build`), [`cache`] keeps their
//! blobs, [`write`] writes the archive.

pub mod build;
pub mod cache;
pub mod import;
pub mod platform;
pub mod pull;
pub mod write;

use oci_client::manifest::OciDescriptor;

use crate::oci::manifest::Manifest;

pub(crate) use cache::open_cache;
pub(crate) use import::from_archive;
pub use platform::Platform;

/// An image narrowed to one platform, pinned by its manifest digest.
#[derive(Clone, Debug)]
pub(crate) struct ResolvedImage {
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
    pub(crate) fn pinned(&self) -> String {
        match &self.tag {
            Some(t) => format!("{}:{t}@{}", self.name, self.manifest.digest),
            None => format!("{}@{}", self.name, self.manifest.digest),
        }
    }

    /// Config and layers, each once, in manifest order.
    pub(crate) fn blobs(&self) -> Vec<&OciDescriptor> {
        let mut seen = std::collections::BTreeSet::new();
        std::iter::once(&self.config)
            .chain(&self.layers)
            .filter(|d| seen.insert(d.digest.clone()))
            .collect()
    }
}

/// `name[:tag][@digest]` → (name, tag).
pub(crate) fn split_name(reference: &str) -> (String, Option<String>) {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    match no_digest.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n.to_string(), Some(t.to_string())),
        _ => (no_digest.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::digest::Digest;

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
