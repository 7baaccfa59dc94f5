//! The integration tests: margo-gitops run as a user runs it, against real registries
//! (CNCF Distribution on 127.0.0.1), with skopeo, umoci and the oras SDK checking what
//! it wrote. `scripts/test` installs those tools; see the README.

mod util;

mod action;
mod agent;
mod app_diff;
mod build;
mod ci;
mod desired;
mod device;
mod errors;
mod hooks;
mod install;
mod interop;
mod keyless;
mod mirror;
mod pgp;
mod prepare;
mod publish;
mod quickstart;
mod registries;
mod release;
mod sign;
mod transport;
mod workflow;
