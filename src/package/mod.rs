//! Compose packages: a compose app folder turned into a Margo Compose Archive, published as
//! OCI artifacts, and shown.
//!
//! - [`compose`]: the compose app folder, checked and pinned;
//! - [`image`]: container images resolved to one platform and written as archives;
//! - [`archive`]: reproducible tar streams; [`gzip`]: parallel, reproducible gzip;
//! - [`yaml`]: compose files written so YAML 1.1 and 1.2 readers read the same values;
//! - [`descriptor`]: what `prepare` writes beside the archive and `publish` reads;
//! - [`prepare`]: `package prepare`;
//! - [`plan`]: what publishing writes, in order, from the descriptor alone;
//! - [`publish`]: `package publish`, the plan executed; [`show`]: `package show`;
//! - [`diff`]: `package diff`, what changes on a device between two versions of the app;
//!   [`pins`]: the image digests it compares, from a published package or looked up now.

pub mod archive;
pub mod compose;
pub mod descriptor;
pub mod diff;
pub mod gzip;
pub mod image;
pub mod pins;
pub mod plan;
pub mod prepare;
pub mod publish;
pub mod show;
pub mod yaml;
