//! Signatures of published packages: how they are made, stored beside the package, found
//! and verified.
//!
//! - [`signer`]: the signing modes, the signer, attaching a signature, finding and checking them;
//! - [`keys`]: key files and key bundles; [`pgp`]: the PoC's OpenPGP form;
//! - [`sigstore`]: keyless signing against Fulcio and Rekor and complete verification.

pub mod keys;
pub mod pgp;
pub mod signer;
pub mod sigstore;
