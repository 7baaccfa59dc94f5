//! Sigstore, spoken directly: keyless signing against Fulcio and Rekor, and complete
//! offline verification of what they produce.
//!
//! The `sigstore` crate cannot sign from a GitHub workflow (it wants an `email` claim) nor
//! against another instance, and its verifier skips the signed entry timestamp and the
//! inclusion proof; so this module owns a thin client for the two calls and the whole
//! verification, over RustCrypto's X.509 and ECDSA:
//! - [`bundle`]: the bundle v0.3 JSON;
//! - [`trust`]: the client trust config (which instance, what to trust);
//! - [`client`]: identity token, Fulcio certificate, Rekor entry, bundle;
//! - [`log`]: Rekor entries, SET, inclusion proof and checkpoint;
//! - [`cert`]: certificates, keys, identity extensions and SCTs;
//! - [`verify`]: the verification of a bundle over an artifact.

pub mod bundle;
pub mod cert;
pub mod client;
pub mod log;
pub mod trust;
pub mod verify;

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod refusals;
