//! `device status`: what the device runs, read from its state folder alone (no registry,
//! no engine): the repository and tag it follows, the desired-state version it applied
//! and when, and every deployment it knows (from `applied.json` and the status manifests)
//! with its components, state, since when, and the last error.

use serde::Serialize;

use crate::device::state::{Refused, State, StateDir, StatusError};
use crate::error::{Error, Result};

/// What `device status` shows.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceStatus {
    pub state_dir: String,
    /// The repository and tag the last pass followed.
    pub following: Option<String>,
    /// The version applied completely, when one was.
    pub applied: Option<AppliedView>,
    /// The desired state the last pass refused (unsigned, signed by someone else, too
    /// old), when it did: the device runs what it ran before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refused>,
    pub deployments: Vec<DeploymentView>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedView {
    pub source: String,
    pub digest: String,
    pub manifest_version: u64,
    pub applied_at: Option<String>,
    /// Only some deployments (`--deployment`).
    pub partial: bool,
    /// The time of its newest verified signature, when it has a trusted one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentView {
    pub id: String,
    /// Its `metadata.name`, when the device knows it.
    pub name: Option<String>,
    pub state: State,
    /// Since when it is in that state (RFC 3339, UTC), when a status manifest says so.
    pub since: Option<String>,
    pub components: Vec<ComponentView>,
    /// Why it failed, when it did.
    pub error: Option<StatusError>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentView {
    pub name: String,
    pub state: State,
    /// What it runs (`repository@digest`) and its compose project, when it runs.
    pub package: Option<String>,
    pub project: Option<String>,
}

impl DeviceStatus {
    /// Whether any deployment is failed, or the last desired state was refused.
    pub fn failed(&self) -> bool {
        self.refused.is_some() || self.deployments.iter().any(|d| d.state == State::Failed)
    }
}

/// Reads the state folder `dir` (it must exist: a device that never ran has none).
pub fn read(dir: &std::path::Path) -> Result<DeviceStatus> {
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{} is no state folder: a device that ran `device sync` or `device watch --state-dir {}` has one",
            dir.display(),
            dir.display()
        )));
    }
    let state = StateDir::open(dir)?;
    let applied = state.applied()?;
    let mut deployments: Vec<DeploymentView> = Vec::new();
    for (status, since) in state.statuses()? {
        let runs = applied.deployments.get(&status.deployment_id);
        let components = status
            .components
            .iter()
            .map(|c| {
                let running = runs.and_then(|r| r.components.get(&c.name));
                ComponentView {
                    name: c.name.clone(),
                    state: c.state,
                    package: running.map(|r| r.package.clone()),
                    project: running.map(|r| r.project.clone()),
                }
            })
            .collect();
        deployments.push(DeploymentView {
            id: status.deployment_id.clone(),
            name: runs
                .map(|r| r.name.clone())
                .or_else(|| status.status.error.as_ref().map(|e| e.source.clone())),
            state: status.status.state,
            since: rfc3339(since),
            components,
            error: status.status.error.clone(),
        });
    }
    // Deployments that run but have no status manifest (a state folder from before they
    // were written): installed, since unknown.
    for (id, a) in &applied.deployments {
        if deployments.iter().any(|d| &d.id == id) {
            continue;
        }
        deployments.push(DeploymentView {
            id: id.clone(),
            name: Some(a.name.clone()),
            state: State::Installed,
            since: None,
            components: a
                .components
                .iter()
                .map(|(name, c)| ComponentView {
                    name: name.clone(),
                    state: State::Installed,
                    package: Some(c.package.clone()),
                    project: Some(c.project.clone()),
                })
                .collect(),
            error: None,
        });
    }
    Ok(DeviceStatus {
        state_dir: state.0.display().to_string(),
        following: applied.following.clone(),
        applied: applied.desired.map(|d| AppliedView {
            source: d.source,
            digest: d.digest,
            manifest_version: d.manifest_version,
            applied_at: d.applied_at,
            partial: d.partial,
            signed_at: d.signed_at,
        }),
        refused: state.refused()?,
        deployments,
    })
}

fn rfc3339(t: std::time::SystemTime) -> Option<String> {
    time::OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}
