//! Signatures of published packages: how they are made, stored beside the package, found
//! and verified.
//!
//! - [`mode`]: the `--sign` modes and their options;
//! - [`signer`]: signing a package and attaching the signature as a referrer;
//! - [`found`]: the signatures stored beside a package, as they describe themselves;
//! - [`verify`]: `package verify`, a signature checked against a key or an identity;
//! - [`refusal`]: why a signature was refused, one variant per check;
//! - [`keys`]: key files and key bundles; [`pgp`]: the PoC's OpenPGP form;
//! - [`sigstore`]: keyless signing against Fulcio and Rekor and complete verification.

pub mod found;
pub mod keys;
pub mod mode;
pub mod pgp;
pub mod refusal;
pub mod signer;
pub mod sigstore;
pub mod verify;
