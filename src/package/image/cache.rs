//! The image cache: an OCI layout folder whose blobs outlive a run, so images are fetched
//! and imported once (`--cache-dir`, `MARGO_GITOPS_CACHE_DIR`, else the XDG cache).

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::oci::layout::LayoutStore;

/// Where images are kept between runs: an OCI layout folder used for its blobs.
pub(crate) fn open_cache(dir: Option<&Path>) -> Result<LayoutStore> {
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
