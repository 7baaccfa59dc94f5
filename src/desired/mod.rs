//! The desired state: rendered from templates, validated, published as versions with a
//! `desired` tag, shown and compared.
//!
//! - [`config`]: `.margo-gitops.yaml`; [`source`]: inputs from the work tree or a commit;
//! - [`render`]: the templates and their context;
//! - [`versions`]: versions and `desired` in a registry;
//! - [`diff`]: semantic diffs; [`pipeline`]: the commands' render → validate → publish.

pub mod commit;
pub mod config;
pub mod diff;
pub mod pipeline;
pub mod render;
pub mod source;
pub mod versions;
