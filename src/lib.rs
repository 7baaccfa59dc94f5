//! margo-gitops: GitOps for Margo edge deployments.
//!
//! The library owns everything the `margo-gitops` binary does; `main.rs` only parses the
//! command line and maps errors to exit codes. Modules, one job each:
//! - [`compose`] reads and checks a docker-compose app folder and rewrites its compose file;
//! - [`margo_app`] reads the app's Margo Application Description (`margo.yaml`);
//! - [`image`] resolves container images (registry or local archive) and writes image archives;
//! - [`archive`] writes reproducible tar and tar+gzip streams;
//! - [`package`] builds a Margo Compose Archive (`package prepare`);
//! - [`publish`] lays packages out as OCI artifacts and pushes them (`package publish`);
//! - [`show`] describes what a reference holds (`package show`);
//! - [`store`] reads and writes OCI content in registries and image-layout folders;
//! - [`location`] parses where content lives (`oci-layout:PATH` or a registry reference);
//! - [`credentials`] finds registry credentials the way Docker and ORAS do;
//! - [`gitinfo`] reads the commit, its time and the source URL from git;
//! - [`digest`] and [`media`] hold content digests and media types;
//! - [`progress`] reports long transfers on a terminal and in CI logs.

pub mod archive;
pub mod compose;
pub mod config;
pub mod credentials;
pub mod desired;
pub mod diff;
pub mod digest;
pub mod error;
pub mod gitinfo;
pub mod hook;
pub mod image;
pub mod location;
pub mod margo_app;
pub mod media;
pub mod mirror;
pub mod package;
pub mod pipeline;
pub mod progress;
pub mod publish;
pub mod render;
pub mod show;
pub mod source;
pub mod store;
pub mod validate;
pub mod yamltree;

pub use error::{Error, Result};
