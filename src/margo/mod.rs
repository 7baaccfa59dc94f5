//! The Margo model: the documents Margo defines and how margo-gitops checks them.
//!
//! - [`yamltree`]: YAML read into a tree that remembers lines, so problems point at them;
//! - [`validate`]: documents checked on that tree, with their problems at file:line;
//! - [`deployment`]: the rules of an `ApplicationDeployment`;
//! - [`description`]: the rules of an `ApplicationDescription` (the app's `margo.yaml`);
//! - [`app`]: the app's Application Description (`margo.yaml`), as packaging reads it.
//!
//! It sits below packaging and the desired state, which both read Margo documents.

pub mod app;
pub mod deployment;
pub mod description;
pub mod validate;
pub mod yamltree;
