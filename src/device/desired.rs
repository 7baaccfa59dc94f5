//! The desired-state version as a pass checks it before reading anything it holds: its
//! signature against the policy's desired-state part ([`crate::device::policy`]), the
//! time of its newest keyless signature against `maxAge`, and the record of a refusal in
//! the state folder (`refused.json`) that `device status` shows until a pass accepts a
//! version.

use std::time::Duration;

use crate::device::policy::{self, DesiredTrust, TrustPolicy};
use crate::device::state::{AppliedVersion, Refused, StateDir};
use crate::device::sync::now;
use crate::error::{Error, Result};
use crate::oci::digest::Digest;
use crate::oci::manifest::Manifest;
use crate::oci::store::Store;
use crate::signing::verify::{self, Requirement};

/// What the check of a desired-state version found.
pub(super) struct DesiredCheck {
    /// Who signed it (`None` when the policy does not check).
    pub signer: Option<String>,
    /// The trusted time of its newest signature, when it has one (keyless).
    pub signed_at: Option<i64>,
}

/// [`verify_desired`], its refusal recorded in the state folder for `device status`
/// (forgotten by the next pass that accepts a version).
pub(super) async fn check_desired(
    store: &Store,
    state: &StateDir,
    source: &str,
    manifest: &Manifest,
    policy: &TrustPolicy,
) -> Result<DesiredCheck> {
    let checked = verify_desired(store, source, manifest, policy).await;
    if let Err(e) = &checked {
        record_refusal(state, source, &manifest.digest, e)?;
    }
    checked
}

/// Records why the version `digest` was refused, when it was (a failed check, not an
/// unreachable registry).
pub(super) fn record_refusal(
    state: &StateDir,
    source: &str,
    digest: &Digest,
    e: &Error,
) -> Result<()> {
    if !matches!(e, Error::Invalid { .. }) {
        return Ok(());
    }
    state.save_refused(&Refused {
        source: source.to_string(),
        digest: digest.to_string(),
        at: now().unwrap_or_default(),
        reason: e.to_string(),
    })
}

/// Whether the applied version's newest signature is younger than `age`.
pub(super) fn fresh_for(done: &AppliedVersion, age: Duration) -> bool {
    let Some(at) = done.signed_at.as_deref().and_then(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    }) else {
        return false;
    };
    let elapsed = time::OffsetDateTime::now_utc() - at;
    elapsed < time::Duration::try_from(age).unwrap_or(time::Duration::MAX)
}

pub(super) fn rfc3339(unix: i64) -> String {
    crate::oci::media::rfc3339(unix.max(0) as u64)
}

/// Checks the desired-state version `source` names (its `manifest`) as the policy says:
/// who signed it and when, or nothing when the policy opts out. A refusal names the
/// version and who was expected (or how old it may be); nothing has been read from the
/// version yet.
async fn verify_desired(
    store: &Store,
    source: &str,
    manifest: &Manifest,
    policy: &TrustPolicy,
) -> Result<DesiredCheck> {
    let req = match &policy.desired {
        DesiredTrust::Unsigned(file) => {
            policy::warn_unsigned(file, source);
            return Ok(DesiredCheck {
                signer: None,
                signed_at: None,
            });
        }
        DesiredTrust::Signed(req) => req,
    };
    let version = manifest
        .image()
        .ok()
        .and_then(|i| i.annotations)
        .and_then(|a| a.get(crate::oci::media::ANN_VERSION).cloned())
        .map(|v| format!("version {v}, "))
        .unwrap_or_default();
    let what = format!("{source} ({version}{})", manifest.digest);
    // Keyless signatures have a trusted time: the newest one counts (for maxAge, and for
    // what the device records).
    let newest = matches!(req, Requirement::Identity { .. });
    let (found, signed_at) =
        match verify::verify_manifest(store, source, manifest, req, newest).await {
            Ok(found) => found,
            Err(Error::Invalid { message, .. }) => return Err(Error::invalid(format!(
                "refusing the desired state {what}: {message}; this device's policy wants it \
                 signed by {}. Nothing was changed.",
                req.describe()
            ))
            .with_hint(
                "sign it (`desired-state commit --sign …`, or `package sign --sign … REFERENCE`), \
                 or set `desiredState:` in the device's policy.yaml",
            )),
            Err(e) => return Err(e),
        };
    if let Some(max_age) = policy.max_age {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Some(ahead) = signed_at.map(|t| t - now).filter(|a| *a > CLOCK_SLACK) {
            return Err(Error::invalid(format!(
                "refusing the desired state {what}: its newest signature was made {} after this \
                 device's clock says it is now; with maxAge the device needs the right time. \
                 Nothing was changed.",
                words(ahead)
            ))
            .with_hint("set the device's clock (NTP, systemd-timesyncd)"));
        }
        let age = signed_at.map(|t| now - t);
        if age.is_none_or(|a| a > max_age.as_secs() as i64) {
            let when = signed_at.map_or("at no trusted time".into(), |t| {
                format!("at {} ({} ago)", rfc3339(t), words(now - t))
            });
            return Err(Error::invalid(format!(
                "refusing the desired state {what}: its newest signature was made {when}, longer \
                 ago than this device's maxAge {}: a registry that keeps serving an old version \
                 would hold the device there. Nothing was changed.",
                words(max_age.as_secs() as i64)
            ))
            .with_hint(
                "the publisher's scheduled run re-signs what `desired` holds (the Action on \
                 `schedule`); ask whoever publishes it, or raise maxAge",
            ));
        }
    }
    Ok(DesiredCheck {
        signer: Some(found.signer()),
        signed_at,
    })
}

/// How far ahead of the device's clock a signature's time may be (clocks drift).
const CLOCK_SLACK: i64 = 600;

/// A duration in words: `3d 4h`, `5h 2m`, `40s`.
fn words(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}
