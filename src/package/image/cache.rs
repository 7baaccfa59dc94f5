//! The image cache: an OCI layout folder whose blobs outlive a run, so images are fetched
//! and imported once (`--cache-dir`, `MARGO_GITOPS_CACHE_DIR`, else the XDG cache).

use std::path::Path;

use crate::error::Result;
use crate::oci::layout::LayoutStore;

/// Where images are kept between runs: an OCI layout folder used for its blobs.
pub(crate) fn open_cache(dir: Option<&Path>) -> Result<LayoutStore> {
    let store = match dir {
        Some(d) => LayoutStore::create(d)?,
        None => LayoutStore::create(&crate::oci::cache_dir())?,
    };
    Ok(store.into_cache())
}
