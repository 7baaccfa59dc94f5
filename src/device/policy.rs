//! The device's trust policy: who must have signed the packages it runs, and who must have
//! signed the desired state that names them.
//!
//! It comes from the command line (`--key`, `--certificate-identity` …), which then holds
//! for both, or from `policy.yaml` in the state folder: the package policy's fields at the
//! top, and an optional `desiredState:` section with the same fields when the desired
//! state is signed by someone else (for example a keyless identity restricted to
//! `…@refs/heads/main`). Without that section the desired state must be signed as the
//! packages are: the same workflow signs both in CI. `desiredState: unsigned` is the
//! explicit opt-out, warned about on stderr (once per process). An OpenPGP key verifies
//! package archives only, so a policy naming one must say how the desired state is
//! verified.
//!
//! `maxAge` (`--max-age`) bounds how old the desired state's newest signature may be, so
//! that a registry cannot hold a device on an old version forever. It needs a keyless
//! desired-state policy: only a transparency log's time is one the device can trust (a
//! key's signature carries no time).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::device::state::StateDir;
use crate::error::{Error, Result};
use crate::signing::verify::{Requirement, RequirementSpec};

/// What the device requires of what it reads.
#[derive(Clone)]
pub struct TrustPolicy {
    /// Every package it installs.
    pub packages: Requirement,
    /// The desired-state version, before any of its documents is read.
    pub desired: DesiredTrust,
    /// How old the desired state's newest signature may be.
    pub max_age: Option<Duration>,
}

/// How the desired state is checked.
#[derive(Clone)]
pub enum DesiredTrust {
    Signed(Requirement),
    /// `desiredState: unsigned`: not checked (the file that says so, for the warning).
    Unsigned(PathBuf),
}

/// `policy.yaml`: the package policy's fields, `desiredState` and `maxAge`. The fields of
/// [`RequirementSpec`] are spelled out again rather than `#[serde(flatten)]`ed: serde cannot
/// refuse unknown fields through a flatten, and a misspelt field must be an error at its
/// line.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PolicyFile {
    key: Option<PathBuf>,
    pgp_key: Option<PathBuf>,
    certificate_identity: Option<String>,
    certificate_identity_regexp: Option<String>,
    certificate_oidc_issuer: Option<String>,
    certificate_oidc_issuer_regexp: Option<String>,
    trust_config: Option<PathBuf>,
    desired_state: Option<DesiredSpec>,
    max_age: Option<String>,
}

/// `desiredState:` as written: `unsigned`, or a requirement.
enum DesiredSpec {
    Unsigned,
    Signed(RequirementSpec),
}

impl<'de> Deserialize<'de> for DesiredSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DesiredSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "`unsigned`, or the fields of a trust policy (key, certificateIdentity …)",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<DesiredSpec, E> {
                match s {
                    "unsigned" => Ok(DesiredSpec::Unsigned),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
            fn visit_map<M: MapAccess<'de>>(
                self,
                m: M,
            ) -> std::result::Result<DesiredSpec, M::Error> {
                RequirementSpec::deserialize(de::value::MapAccessDeserializer::new(m))
                    .map(DesiredSpec::Signed)
            }
        }
        d.deserialize_any(V)
    }
}

impl PolicyFile {
    fn packages(&self) -> RequirementSpec {
        RequirementSpec {
            key: self.key.clone(),
            pgp_key: self.pgp_key.clone(),
            certificate_identity: self.certificate_identity.clone(),
            certificate_identity_regexp: self.certificate_identity_regexp.clone(),
            certificate_oidc_issuer: self.certificate_oidc_issuer.clone(),
            certificate_oidc_issuer_regexp: self.certificate_oidc_issuer_regexp.clone(),
            trust_config: self.trust_config.clone(),
        }
    }
}

/// The policy: the command line's, else the state folder's `policy.yaml`; without either
/// nothing is installed. `max_age` (`--max-age`) overrides the file's `maxAge`.
pub fn load(
    spec: &RequirementSpec,
    state: &StateDir,
    max_age: Option<Duration>,
) -> Result<TrustPolicy> {
    let mut policy = read(spec, state)?;
    if max_age.is_some() {
        policy.max_age = max_age;
    }
    // A missing key or trusted root is the policy's fault, said as such, not a refusal
    // of what the registry holds.
    policy.packages.preflight()?;
    if let DesiredTrust::Signed(r) = &policy.desired {
        r.preflight()?;
    }
    if policy.max_age.is_some()
        && !matches!(
            policy.desired,
            DesiredTrust::Signed(Requirement::Identity { .. })
        )
    {
        return Err(Error::Usage(
            "maxAge needs a keyless desired-state policy (certificateIdentity and its issuer): \
             only a transparency log gives a signature a time the device can trust"
                .into(),
        ));
    }
    Ok(policy)
}

fn read(spec: &RequirementSpec, state: &StateDir) -> Result<TrustPolicy> {
    if !spec.is_empty() {
        let packages = spec.requirement()?;
        if matches!(packages, Requirement::Pgp(_)) {
            return Err(Error::Usage(format!(
                "--pgp-key verifies package archives only, and the desired state must be verified \
                 too: write the policy to {} with a `desiredState:` section (a key or a keyless \
                 identity), or `desiredState: unsigned`",
                state.policy_path().display()
            )));
        }
        return Ok(TrustPolicy {
            desired: DesiredTrust::Signed(packages.clone()),
            packages,
            max_age: None,
        });
    }
    let path = state.policy_path();
    let text = std::fs::read_to_string(&path).map_err(|_| {
        Error::Usage(format!(
            "no trust policy: name who must have signed the packages and the desired state \
             (--certificate-identity ID --certificate-oidc-issuer URL --trust-config FILE, or \
             --key PUB), or write them to {}",
            path.display()
        ))
    })?;
    parse(&text, &path)
}

/// Reads a `policy.yaml` at `path` (relative paths in it are taken from its folder).
fn parse(text: &str, path: &Path) -> Result<TrustPolicy> {
    let file: PolicyFile = serde_norway::from_str(text)
        .map_err(|e| Error::invalid_file(path, e.location().map(|l| l.line()), e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let at_file = |e: Error| match e {
        Error::Usage(m) => Error::invalid_file(path, None, m),
        e => e,
    };
    let packages = file
        .packages()
        .relative_to(dir)
        .requirement()
        .map_err(at_file)?;
    let desired =
        match file.desired_state {
            Some(DesiredSpec::Unsigned) => DesiredTrust::Unsigned(path.to_path_buf()),
            Some(DesiredSpec::Signed(spec)) => {
                let r = spec.relative_to(dir).requirement().map_err(|e| {
                    at_file(match e {
                        Error::Usage(m) => Error::Usage(format!("desiredState: {m}")),
                        e => e,
                    })
                })?;
                if matches!(r, Requirement::Pgp(_)) {
                    return Err(Error::invalid_file(
                    path,
                    None,
                    "desiredState: an OpenPGP key verifies package archives only; name a key or a \
                     keyless identity",
                ));
                }
                DesiredTrust::Signed(r)
            }
            None if matches!(packages, Requirement::Pgp(_)) => return Err(Error::invalid_file(
                path,
                None,
                "pgpKey verifies package archives only, and the desired state must be verified \
                 too: add a `desiredState:` section (a key or a keyless identity), or \
                 `desiredState: unsigned`",
            )),
            None => DesiredTrust::Signed(packages.clone()),
        };
    let max_age = file
        .max_age
        .as_deref()
        .map(parse_age)
        .transpose()
        .map_err(at_file)?;
    Ok(TrustPolicy {
        packages,
        desired,
        max_age,
    })
}

/// `7d`, `36h`, `90m`, `600s`: a whole number and its unit.
pub fn parse_age(text: &str) -> Result<Duration> {
    let bad = || {
        Error::Usage(format!(
            "maxAge `{text}`: a whole number with d, h, m or s (e.g. 7d)"
        ))
    };
    let split = text.char_indices().last().map_or(0, |(i, _)| i);
    let (num, unit) = text.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "d" => n.checked_mul(86_400),
        "h" => n.checked_mul(3_600),
        "m" => n.checked_mul(60),
        "s" => Some(n),
        _ => None,
    }
    .filter(|s| *s > 0)
    .ok_or_else(bad)?;
    Ok(Duration::from_secs(secs))
}

/// The opt-out's warning, once per process (a `watch` would repeat it every pass).
pub(crate) fn warn_unsigned(policy: &Path, source: &str) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "warning: {}: `desiredState: unsigned`: the desired state {source} is applied without \
             checking who wrote it; anyone who can push to that repository decides what this \
             device runs",
            policy.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<TrustPolicy> {
        parse(text, Path::new("/etc/margo/policy.yaml"))
    }

    #[test]
    fn the_desired_state_is_held_to_the_package_policy_unless_a_section_says_otherwise() {
        let p = read("key: k.pub\n").unwrap();
        assert!(
            matches!(&p.desired, DesiredTrust::Signed(Requirement::Key(k)) if k == Path::new("/etc/margo/k.pub"))
        );

        let p = read("key: k.pub\ndesiredState:\n  key: /keys/ds.pub\n").unwrap();
        assert!(matches!(&p.packages, Requirement::Key(k) if k == Path::new("/etc/margo/k.pub")));
        assert!(
            matches!(&p.desired, DesiredTrust::Signed(Requirement::Key(k)) if k == Path::new("/keys/ds.pub"))
        );

        let p = read("key: k.pub\ndesiredState: unsigned\n").unwrap();
        assert!(matches!(&p.desired, DesiredTrust::Unsigned(_)));
    }

    #[test]
    fn max_age_is_a_whole_number_and_a_unit() {
        assert_eq!(parse_age("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_age("36h").unwrap(), Duration::from_secs(36 * 3_600));
        assert_eq!(parse_age("600s").unwrap(), Duration::from_secs(600));
        for bad in [
            "",
            "7",
            "d",
            "0d",
            "1w",
            "-1d",
            "1.5d",
            "99999999999999999999d",
            "7é",
            "1日",
        ] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
        let p = read("key: k.pub\nmaxAge: 2d\n").unwrap();
        assert_eq!(p.max_age, Some(Duration::from_secs(2 * 86_400)));
        let e = read("key: k.pub\nmaxAge: soon\n")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("policy.yaml") && e.contains("maxAge `soon`"),
            "{e}"
        );
    }

    #[test]
    fn a_policy_that_cannot_verify_the_desired_state_is_refused_at_its_line() {
        // OpenPGP signs archives, not manifests.
        let e = read("pgpKey: p.asc\n").err().unwrap().to_string();
        assert!(e.contains("desiredState"), "{e}");
        let e = read("key: k.pub\ndesiredState:\n  pgpKey: p.asc\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("OpenPGP"), "{e}");
        // Misspelt fields and values, with their line.
        let e = read("key: k.pub\ndesiredState:\n  kee: x\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("policy.yaml:3"), "{e}");
        let e = read("key: k.pub\ndesiredState: unsinged\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("policy.yaml:2") && e.contains("unsigned"), "{e}");
        let e = read("key: k.pub\ndesiredState:\n  certificateIdentity: x\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("desiredState: name the OIDC issuer"), "{e}");
    }
}
