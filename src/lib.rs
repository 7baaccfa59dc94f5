//! margo-gitops: GitOps for Margo edge deployments.
//!
//! The library does everything the `margo-gitops` binary does; the binary parses the
//! command line, calls one function per command and prints what it returns. The folders
//! are the capabilities, each using only those above it in this list:
//!
//! | module | what it owns |
//! | --- | --- |
//! | [`error`], [`progress`], [`paths`] | the error type and exit codes; progress lines; paths that stay inside their folder |
//! | [`oci`] | references, digests, media types, credentials, the registry and layout stores, referrers |
//! | [`git`] | commits, trees and history read with gix; a commit exported as files |
//! | [`margo`] | the Margo documents: the line-aware YAML tree, validation, the app description |
//! | [`signing`] | signing modes, signatures attached and found, verification, keys, OpenPGP, Sigstore |
//! | [`package`] | compose apps and images turned into packages, published and shown |
//! | [`desired`] | the desired state: config, rendering, versions and `desired`, diffs |
//! | [`gitops`] | git history mirrored, the hooks, the GitHub Action's job |
//! | [`device`] | the device end: following `desired`, verifying, running on a Docker engine |
//!
//! Where new things go: a new command is a function in the binary's `commands` over a
//! library function that returns data, and its words in the binary's `report`; a new
//! signing mode is a [`signing::mode::SignMode`] variant with its arm in
//! [`signing::signer::Signer`] and its check in [`signing::verify`]; a registry's quirk
//! belongs in [`oci::registry`], behind [`oci::store::Store`], so nothing above sees it.

pub mod desired;
pub mod device;
pub mod error;
pub mod git;
pub mod gitops;
pub mod margo;
pub mod oci;
pub mod package;
pub mod paths;
pub mod progress;
pub mod signing;

pub use error::{Error, Result};
