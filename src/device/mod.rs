//! The device end of the loop: a device follows `desired` in the desired-state repository
//! and runs what it names on its own Docker engine (`device sync`, `device watch`).
//!
//! - [`read`]: the desired-state version as a device reads it (State Manifest, documents by
//!   digest, validated; components, packages and parameters);
//! - [`install`]: one deployment verified, fetched, unpacked, loaded and brought up, or
//!   taken down, keeping what runs when anything fails;
//! - [`unpack`]: the package archive unpacked with every entry checked;
//! - [`project`]: an unpacked package as a compose project this engine runs offline;
//! - [`engine`]: the Docker Engine API (bollard) and the compose the device has;
//! - [`state`]: the state folder (applied version, status manifests, trust policy);
//! - [`sync`]: one pass and the watch loop, with rollback protection.

pub(crate) mod engine;
pub(crate) mod install;
pub(crate) mod project;
pub(crate) mod read;
pub mod state;
pub mod sync;
pub mod unpack;
