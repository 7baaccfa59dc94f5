//! margo-gitops: GitOps for Margo edge deployments.

pub mod desired;
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
