//! `desired-state log`: the OCI history as `git log --oneline` shows it, with who signed
//! each version, and `--verify`, which checks the chain of previous-version digests, that
//! every version's commit is in the branch's history and, given a trust policy, each
//! version's signature.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::desired::versions::{self, DESIRED_TAG};
use crate::error::{Error, Result};
use crate::git::GitRepo;
use crate::oci::reference::Repo;
use crate::oci::store::{Connect, Store};
use crate::signing::verify::{verify_manifest, Requirement};

/// One version of the log, with what `--verify` found wrong with it.
#[derive(Clone, Debug, Serialize)]
pub struct LogEntry {
    #[serde(flatten)]
    pub version: versions::Version,
    /// Problems `--verify` found with this version.
    pub problems: Vec<String>,
}

pub async fn log(
    repo: Option<&GitRepo>,
    to: &Repo,
    connect: &Connect,
    verify: bool,
    branch: Option<&str>,
    signed_by: Option<&Requirement>,
) -> Result<Vec<LogEntry>> {
    if signed_by.is_some() && !verify {
        return Err(Error::Usage(
            "a trust policy (--key, --certificate-identity …) is for --verify: pass it too".into(),
        ));
    }
    if matches!(signed_by, Some(Requirement::Pgp(_))) {
        return Err(Error::Usage(
            "--pgp-key: OpenPGP signs package archives only; name a --key or a keyless identity"
                .into(),
        ));
    }
    let store = Store::open(to, connect).await?;
    let desired = store.manifest(DESIRED_TAG).await?;
    let read = versions::versions_read(&store, desired.as_ref().map(|m| &m.digest)).await?;
    let (versions, manifests): (Vec<_>, Vec<_>) = read.into_iter().unzip();
    let digests: BTreeSet<String> = versions.iter().map(|v| v.digest.to_string()).collect();
    let tip = match (verify, repo) {
        (true, Some(r)) => Some(r.resolve(branch.unwrap_or("HEAD"))?),
        (true, None) => {
            return Err(Error::Usage(
                "--verify needs the git repository the versions come from".into(),
            ))
        }
        _ => None,
    };
    let mut out = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let mut problems = Vec::new();
        if verify {
            // Versions are newest first: the one after this is the one before it in time.
            match (&v.previous, versions.get(i + 1)) {
                (Some(p), _) if !digests.contains(p) => problems.push(format!(
                    "previous version {} is not in the repository",
                    &p[..19.min(p.len())]
                )),
                (Some(p), Some(older)) if *p != older.digest.to_string() => problems.push(format!(
                    "previous is {}, but the version before is {} ({})",
                    &p[..19.min(p.len())],
                    older.tag,
                    &older.digest.as_str()[..19]
                )),
                (None, Some(older)) => problems.push(format!(
                    "no previous version recorded, but {} precedes it",
                    older.tag
                )),
                _ => {}
            }
            if let Some(req) = signed_by {
                let what = format!("{to}:{}", v.tag);
                match verify_manifest(&store, &what, &manifests[i], req, false).await {
                    Ok(_) => {}
                    Err(Error::Invalid { message, .. }) => problems.push(message),
                    Err(e) => return Err(e),
                }
            }
            if let (Some(r), Some(tip), Some(rev)) = (repo, &tip, &v.revision) {
                if r.is_ancestor(rev, tip) != Some(true) {
                    problems.push(format!(
                        "commit {} is not in the branch's history",
                        &rev[..rev.len().min(7)]
                    ));
                }
            }
        }
        out.push(LogEntry {
            version: v.clone(),
            problems,
        });
    }
    Ok(out)
}
