//! OCI plumbing: where content lives, how it is named and checked, and the stores that
//! read and write it. Nothing here knows what a package or a desired state is.
//!
//! - [`reference`]: `registry/repository[:tag][@digest]` and `oci-layout:PATH[:tag]`;
//! - [`digest`]: `sha256:` digests, and the streaming check every blob read goes through;
//! - [`media`]: media types, annotation keys and the time format annotations use;
//! - [`manifest`]: manifests as exact bytes, and the one builder of artifact manifests;
//! - [`referrers`]: artifacts that refer to another (signatures), listed and added;
//! - [`credentials`]: registry credentials found as Docker and ORAS find them, never shown;
//! - [`store`]: the one interface for both kinds of store, with [`registry`] (a registry
//!   repository over HTTP) and [`layout`] (an OCI image-layout folder) behind it.

pub mod credentials;
pub mod digest;
pub mod layout;
pub mod manifest;
pub mod media;
pub mod reference;
pub mod referrers;
pub mod registry;
pub mod store;
