//! What a device keeps in its state folder, each file replaced atomically (written beside,
//! then renamed), so a power cut leaves the old or the new file, never half of one:
//!
//! - `applied.json`: the desired-state version applied last (its digest and
//!   `manifestVersion`, for rollback protection) and, per deployment, what runs;
//! - `status/<deploymentId>.json`: each deployment's Margo `DeploymentStatusManifest`;
//! - `deployments/<deploymentId>/<component>/`: the unpacked package a component runs
//!   from, its compose file rewritten for this engine;
//! - `policy.yaml` (optional, written by the operator): the trust policy, when the command
//!   line gives none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::oci::layout::write_atomic;

/// The state folder.
#[derive(Clone, Debug)]
pub struct StateDir(pub PathBuf);

/// What was applied last.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// The desired-state version applied completely, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<AppliedVersion>,
    /// Deployments that run (or failed to start), by deployment id.
    #[serde(default)]
    pub deployments: BTreeMap<String, AppliedDeployment>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AppliedVersion {
    /// The repository and tag it was read from.
    pub source: String,
    pub digest: String,
    pub manifest_version: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AppliedDeployment {
    pub name: String,
    /// The digest of its ApplicationDeployment document.
    pub document: String,
    /// Per component: the package it runs (`repository@digest`) and its compose project.
    pub components: BTreeMap<String, AppliedComponent>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AppliedComponent {
    pub package: String,
    pub project: String,
}

/// A Margo `DeploymentStatusManifest` (deployment-status page of the specification and
/// the Workload Management API's schema).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StatusManifest {
    pub api_version: String,
    pub kind: String,
    pub deployment_id: String,
    pub status: Status,
    pub components: Vec<ComponentStatus>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StatusError>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ComponentStatus {
    pub name: String,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StatusError>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusError {
    pub code: String,
    /// The deployment's `metadata.name` or the component's name, as the page asks.
    pub source: String,
    pub message: String,
}

/// The states the specification names.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Installing,
    Installed,
    Removing,
    Removed,
    Failed,
}

pub const STATUS_API_VERSION: &str = "deployment.margo.org/v1alpha1";

impl StatusManifest {
    /// Every component in `state`; an error, when given, on the deployment and on each
    /// component it concerns (`components`, or all when empty).
    pub fn new(id: &str, components: &[String], state: State) -> Self {
        StatusManifest {
            api_version: STATUS_API_VERSION.into(),
            kind: "DeploymentStatusManifest".into(),
            deployment_id: id.into(),
            status: Status { state, error: None },
            components: components
                .iter()
                .map(|c| ComponentStatus {
                    name: c.clone(),
                    state,
                    error: None,
                })
                .collect(),
        }
    }

    /// The deployment failed with `code` and `message`; `component` names the one at fault.
    pub fn failed(
        mut self,
        name: &str,
        component: Option<&str>,
        code: &str,
        message: &str,
    ) -> Self {
        let error = |source: &str| StatusError {
            code: code.into(),
            source: source.into(),
            message: message.into(),
        };
        self.status = Status {
            state: State::Failed,
            error: Some(error(name)),
        };
        for c in &mut self.components {
            if component.is_none_or(|f| f == c.name) {
                c.state = State::Failed;
                c.error = Some(error(&c.name));
            }
        }
        self
    }
}

impl StateDir {
    /// The state folder, created when missing.
    pub fn open(path: &Path) -> Result<StateDir> {
        std::fs::create_dir_all(path).map_err(Error::io("create", path))?;
        // Absolute, since compose runs in the project's folder.
        let path = std::fs::canonicalize(path).map_err(Error::io("read", path))?;
        Ok(StateDir(path))
    }

    fn applied_path(&self) -> PathBuf {
        self.0.join("applied.json")
    }

    /// What was applied last (nothing, on a new device).
    pub fn applied(&self) -> Result<Applied> {
        let path = self.applied_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::invalid_file(
                    &path,
                    Some(e.line()),
                    format!("not the state margo-gitops writes: {e}"),
                )
                .with_hint(
                    "restore it, or remove it to start over (rollback protection restarts too)",
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Applied::default()),
            Err(e) => Err(Error::io("read", &path)(e)),
        }
    }

    pub fn save_applied(&self, applied: &Applied) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(applied).expect("JSON");
        write_atomic(&self.applied_path(), &bytes)
    }

    fn status_path(&self, id: &str) -> PathBuf {
        self.0.join("status").join(format!("{id}.json"))
    }

    pub fn save_status(&self, status: &StatusManifest) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(status).expect("JSON");
        bytes.push(b'\n');
        write_atomic(&self.status_path(&status.deployment_id), &bytes)
    }

    /// Where a deployment's components are unpacked.
    pub fn deployment_dir(&self, id: &str) -> PathBuf {
        self.0.join("deployments").join(id)
    }

    /// A fresh folder for unpacking, on the same file system as the deployments (so the
    /// rename into place is atomic); removed when dropped.
    pub fn staging(&self) -> Result<tempfile::TempDir> {
        let dir = self.0.join("staging");
        std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        tempfile::Builder::new()
            .prefix("sync-")
            .tempdir_in(&dir)
            .map_err(Error::io("create a folder in", &dir))
    }

    pub fn policy_path(&self) -> PathBuf {
        self.0.join("policy.yaml")
    }
}
