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
//! - [`state`]: the state folder (applied version, status manifests, trust policy), each
//!   file replaced durably, and the repair of what a killed pass left;
//! - [`policy`]: who must have signed the packages and the desired state;
//! - [`desired`]: the desired-state version checked (signature, age) before a pass reads it;
//! - [`lock`]: one pass at a time per state folder;
//! - [`children`]: compose in a process group of its own, recorded, and what a killed pass
//!   left running waited for and ended;
//! - [`poll`]: when `watch` makes its next pass (jitter, splay, backoff);
//! - [`status`]: what the device runs, from the state folder alone (`device status`);
//! - [`sync`]: one pass and the watch loop, with rollback protection.

pub(crate) mod children;
pub(crate) mod desired;
pub(crate) mod engine;
pub(crate) mod install;
pub mod lock;
pub mod policy;
pub mod poll;
pub(crate) mod project;
pub(crate) mod read;
pub mod state;
pub mod status;
pub mod sync;
pub mod unpack;
