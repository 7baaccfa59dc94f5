//! The desired state: rendered from templates, validated, published as versions with a
//! `desired` tag, shown and compared.
//!
//! - [`config`]: `.margo-gitops.yaml`; [`source`]: inputs from the work tree or a commit;
//! - [`render`]: the deployments rendered, with [`templates`] (the engine) and [`package`]
//!   (the package a deployment runs, as templates see it);
//! - [`versions`]: what a version holds, and the versions listed;
//! - [`commit`]: a commit's version published and `desired` moved to it;
//! - [`diff`]: semantic diffs; [`pipeline`]: the commands' render → validate → publish.

pub mod commit;
pub mod config;
pub mod diff;
pub mod package;
pub mod pipeline;
pub mod render;
pub mod source;
pub mod templates;
pub mod versions;
