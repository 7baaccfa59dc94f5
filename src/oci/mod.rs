//! OCI plumbing: where content lives, how it is named and checked, and the stores that
//! read and write it. Nothing here knows what a package or a desired state is.
//!
//! - [`reference`]: `registry/repository[:tag][@digest]` and `oci-layout:PATH[:tag]`;
//! - [`digest`]: `sha256:` digests, and the streaming check every blob read goes through;
//! - [`media`]: media types, annotation keys and the time format annotations use;
//! - [`manifest`]: manifests as exact bytes, and the one builder of artifact manifests;
//! - [`referrers`]: artifacts that refer to another (signatures), listed and added;
//! - [`credentials`]: registry credentials found as Docker and ORAS find them, never shown;
//! - [`retry`]: the one retry policy every registry request goes through;
//! - [`locations`]: where blobs were seen, so another repository can mount them;
//! - [`store`]: the one interface for both kinds of store, with [`registry`] (a registry
//!   repository over HTTP) and [`layout`] (an OCI image-layout folder) behind it.

pub mod credentials;
pub mod digest;
pub mod layout;
pub mod locations;
pub mod manifest;
pub mod media;
pub mod reference;
pub mod referrers;
pub mod registry;
pub mod retry;
pub mod store;

/// Where margo-gitops keeps things between runs: `MARGO_GITOPS_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/margo-gitops/oci` (or `~/.cache/…`).
pub fn cache_dir() -> std::path::PathBuf {
    use std::path::{Path, PathBuf};
    if let Some(d) = std::env::var_os("MARGO_GITOPS_CACHE_DIR") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("margo-gitops/oci")
}

/// Runs file system work off the async threads (a layout folder, a credential helper).
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
