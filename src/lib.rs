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
//! - [`config`] reads `.margo-gitops.yaml`; [`source`] reads inputs from the work tree or a commit;
//! - [`render`] renders ApplicationDeployments with minijinja;
//! - [`yamltree`] and [`validate`] check them against the Margo model, with lines;
//! - [`desired`] publishes desired-state versions and the `desired` tag, and shows them;
//! - [`diff`] compares two desired states by meaning;
//! - [`pipeline`] chains render, validate and publish for the commands;
//! - [`mirror`] mirrors a branch's history into versions, and verifies the chain;
//! - [`hook`] runs the pre-push and pre-commit checks and installs the hook;
//! - [`sign`] signs packages and verifies their signatures ([`keys`]: key files, key bundles;
//!   [`pgp`]: the PoC's OpenPGP form); [`sigstore`] speaks to Fulcio
//!   and Rekor and verifies Sigstore bundles completely;
//! - [`store`] reads and writes OCI content in registries and image-layout folders;
//! - [`location`] parses where content lives (`oci-layout:PATH` or a registry reference);
//! - [`credentials`] finds registry credentials the way Docker and ORAS do;
//! - [`gitinfo`] reads commits, trees and history with gix;
//! - [`digest`] and [`media`] hold content digests and media types;
//! - [`ci`] is what the GitHub Action runs; [`github`] posts its pull-request comment;
//! - [`progress`] reports long transfers on a terminal and in CI logs.

pub mod archive;
pub mod ci;
pub mod compose;
pub mod config;
pub mod credentials;
pub mod desired;
pub mod diff;
pub mod digest;
pub mod error;
pub mod github;
pub mod gitinfo;
pub mod hook;
pub mod image;
pub mod keys;
pub mod location;
pub mod margo_app;
pub mod media;
pub mod mirror;
pub mod package;
pub mod pgp;
pub mod pipeline;
pub mod progress;
pub mod publish;
pub mod render;
pub mod show;
pub mod sign;
pub mod sigstore;
pub mod source;
pub mod store;
pub mod validate;
pub mod yamltree;

pub use error::{Error, Result};
